# The commands the README gives. `make setup` once on a fresh machine, then any of the others.
PYTHON := .venv/bin/python

.PHONY: setup test lint typecheck local benchmark

setup:
	bash scripts/setup.sh

test: lint typecheck
	$(PYTHON) -m pytest

lint:
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check .
	.venv/bin/actionlint .github/workflows/*.yml

# functions/ is its own app root (the Functions host imports its modules by file name).
typecheck:
	$(PYTHON) -m mypy components data_plane artifacts settings mocks preflight smoke pipeline local benchmarks preview policies/broadcast_policies
	cd functions && ../$(PYTHON) -m mypy --config-file ../pyproject.toml *.py

# The whole system on this machine: site, functions under /api/, SignalR endpoint, SQLite.
local:
	$(PYTHON) -m local $(ARGS)

benchmark:
	$(PYTHON) benchmarks/broadcast.py $(ARGS)

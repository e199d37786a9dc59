# The two set-up commands of the README. Each bootstraps .venv on first use.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test bench screenshots lint

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# `make run` needs the core install only (the embedded default); the tests use every driver.
$(VENV)/.installed-run: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev,all]'
	touch $@ $(VENV)/.installed-run

run: $(VENV)/.installed-run
	$(BIN)/apex serve

# Lint, format and type checks first (seconds), then the whole suite over two workers.
test: $(VENV)/.installed-dev
	bash scripts/system-deps.sh
	$(MAKE) --no-print-directory lint
	$(BIN)/python -m pytest -n 2 --dist worksteal

# Every benchmark, then one table of their figures against their targets (also written into
# the README's performance section); exits non-zero when a target was missed.
FIGURES := benchmarks/results/figures.jsonl
bench: $(VENV)/.installed-dev
	bash scripts/system-deps.sh
	mkdir -p benchmarks/results && rm -f $(FIGURES)
	status=0; for script in benchmarks/bench_*.py; do \
	  APEX_BENCH_FIGURES=$(FIGURES) PYTHONPATH=src:. $(BIN)/python $$script || status=1; done; \
	$(BIN)/python benchmarks/table.py $(FIGURES) --readme README.md || status=1; exit $$status

screenshots: $(VENV)/.installed-dev
	bash scripts/system-deps.sh
	SCREENSHOTS_DIR=docs/screenshots $(BIN)/python -m pytest -q tests/e2e/test_web_golden_path.py tests/e2e/test_web_shell.py tests/e2e/test_web_answers.py tests/e2e/test_web_usage.py

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy src/apex
	$(BIN)/lint-imports

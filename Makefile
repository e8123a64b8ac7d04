# splitplan developer commands. Every target sets up .venv itself, so each works on a fresh clone
# with only Python 3.11+ installed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup run test test-all lint bench check check-all reproduce docs clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

run: $(STAMP)
	$(BIN)/splitplan optimize scenarios/quickstart.yaml --out out/quickstart

test: $(STAMP)
	$(BIN)/python -m pytest -q

test-all: $(STAMP)
	$(BIN)/python -m pytest -q -m ''

lint: $(STAMP)
	$(BIN)/python -m compileall -q splitplan tests benchmarks
	@$(BIN)/python -m ruff --version >/dev/null 2>&1 && $(BIN)/python -m ruff check splitplan tests || echo "ruff not installed; compileall only"

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

check: $(STAMP)
	$(BIN)/splitplan check scenarios/

check-all: $(STAMP)
	$(BIN)/splitplan check scenarios/ --all

# Every study in both modes (SplitwiseSim-compatible and analytic), checked, and docs/reproduction.md rewritten.
reproduce: $(STAMP)
	$(BIN)/splitplan reproduce --out docs/reproduction.md --save-results out/repro-results.json

docs: $(STAMP)
	$(BIN)/splitplan docs cli --out docs/cli.md

clean:
	rm -rf $(VENV) out .pytest_cache

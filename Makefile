# Every target bootstraps .venv from nothing: a fresh machine needs only Python 3.11 and make.
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PACKAGES := libs/events libs/city libs/servicekit services/intake services/routing services/sla services/reporting
PYPROJECTS := pyproject.toml $(addsuffix /pyproject.toml,$(PACKAGES))

.PHONY: run run-fast test lint bench venv clean asyncapi

venv: $(STAMP)

$(STAMP): $(PYPROJECTS)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(addprefix -e ,$(PACKAGES)) -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/civicgrid up

# The shipped city with its service levels divided by 60 (config/longgang-fast), in its own
# data dir: with `civicgrid simulate --speed 60` breaches and the escalation ladder happen in
# minutes.
run-fast: $(STAMP)
	$(BIN)/civicgrid up --config config/longgang-fast --data-dir data-fast

test: $(STAMP)
	bash tools/system-deps.sh
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python -m bench

asyncapi: $(STAMP)
	$(BIN)/python -m civicgrid.cli.asyncapi_docs --write

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

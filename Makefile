# Every target bootstraps .venv from nothing: a fresh machine needs only Python 3.11 and make.
# Dependencies come from uv.lock (one lock for the uv workspace: the root, libs/* and services/*);
# `make lock` updates it after a pyproject.toml changes, and every target refuses a stale lock.
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BYTECODE := $(VENV)/.bytecode
# The pinned uv (tools/bootstrap_uv.py fetches it from PyPI with the standard library alone).
# `make UV=uv` uses another one.
UV ?= .tools/uv
UV_BOOTSTRAP := $(filter .tools/uv,$(UV))
PACKAGES := libs/events libs/city libs/servicekit services/intake services/routing services/sla services/reporting
PYPROJECTS := pyproject.toml $(addsuffix /pyproject.toml,$(PACKAGES))

.PHONY: run run-fast test lint bench venv lock lock-check images smoke clean asyncapi

venv: $(STAMP) $(BYTECODE)

.tools/uv: tools/bootstrap_uv.py
	$(PYTHON) tools/bootstrap_uv.py .tools

# --locked: install exactly uv.lock, and fail if it no longer matches the pyproject files.
$(STAMP): $(PYPROJECTS) uv.lock | $(UV_BOOTSTRAP)
	$(UV) sync --locked --all-extras --python $(PYTHON)
	touch $(STAMP)

# Every installed module compiled once. Python normally caches bytecode on first import, but not
# where PYTHONDONTWRITEBYTECODE is set (as on the machines the suite runs on): there every
# process compiled FastAPI, pydantic, SQLAlchemy ... from source again, about 1.5 s of each
# service's start (2.4 s -> 0.85 s for intake's imports). A stale or missing .pyc is only slower;
# a third-party file that does not compile (a template, say) is not a reason to stop.
$(BYTECODE): $(STAMP)
	-$(BIN)/python -m compileall -q -j 0 $(VENV)/lib
	touch $(BYTECODE)

# The project's own modules, before each run that starts processes: incremental, ~0.2 s.
COMPILE_SOURCES = $(BIN)/python -m compileall -q -j 0 src libs services tests bench

lock: | $(UV_BOOTSTRAP)
	$(UV) lock

lock-check: | $(UV_BOOTSTRAP)
	$(UV) lock --check

run: $(STAMP) $(BYTECODE)
	$(COMPILE_SOURCES)
	$(BIN)/civicgrid up

# The shipped city with its service levels divided by 60 (config/longgang-fast), in its own
# data dir: with `civicgrid simulate --speed 60` breaches and the escalation ladder happen in
# minutes.
run-fast: $(STAMP) $(BYTECODE)
	$(COMPILE_SOURCES)
	$(BIN)/civicgrid up --config config/longgang-fast --data-dir data-fast

# One pytest worker per core (pytest-xdist); a module's tests stay on one worker, so its
# module-scoped platform (a `civicgrid up`, a cluster) starts once.
TEST_WORKERS ?= auto

test: lock-check $(STAMP) $(BYTECODE)
	bash tools/system-deps.sh
	$(COMPILE_SOURCES)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadscope

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python -m bench

asyncapi: $(STAMP)
	$(BIN)/python -m civicgrid.cli.asyncapi_docs --write

# Every service image and the CLI image, with docker, podman or buildah (whichever works here).
# PYTHON_IMAGE=... picks the base (deploy/docker/debian-python-base.sh builds one locally).
images:
	$(PYTHON) deploy/docker/images.py build

# Start each built image against a nats-server, root-less and read-only, and check /readyz.
smoke: $(STAMP)
	$(BIN)/python deploy/docker/images.py smoke

clean:
	rm -rf $(VENV) .tools .pytest_cache .mypy_cache .ruff_cache

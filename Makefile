# The two commands a new user needs: `make run` (the system) and `make test` (the checks).
# Each does its own set-up: a virtual environment in .venv and the Kafka jars in ~/.cache/circles.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test lint typecheck unit integration schemas lock bench bench-quick kafka browser clean

# Installed from the lock file (exact versions, every file's sha256), then the project itself without
# dependencies; pyproject.toml keeps the ranges. `make lock` remakes the lock files (deploy/lock.py).
$(INSTALLED): pyproject.toml requirements-dev.lock
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q --require-hashes -r requirements-dev.lock
	$(BIN)/pip install -q --no-deps --no-build-isolation -e .
	@touch $(INSTALLED)

lock: $(INSTALLED)
	$(BIN)/python -m deploy.lock $(LOCK_ARGS)

kafka: $(INSTALLED)
	$(BIN)/python deploy/kafka/local_kafka.py fetch

# Browser tests drive Debian's chromium through Playwright (no browser download).
browser:
	@command -v chromium >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

run: $(INSTALLED) kafka
	CIRCLES_DATA_DIR=$${CIRCLES_DATA_DIR:-$(CURDIR)/.circles} $(BIN)/circles dev up

# Two pytest workers (pytest-xdist), each file on one worker, each worker with its own broker; the longest
# files first (tests/conftest.py). `make test TEST_WORKERS=0` runs it in one process.
TEST_WORKERS ?= 2
TEST_DIST = --durations=25 $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder)

test: $(INSTALLED) kafka browser lint typecheck
	$(BIN)/pytest $(TEST_DIST)

lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(INSTALLED)
	$(BIN)/mypy services schemas deploy tests bench

unit: $(INSTALLED)
	$(BIN)/pytest tests/unit

integration: $(INSTALLED) kafka browser
	$(BIN)/pytest -m integration $(TEST_DIST)

schemas: $(INSTALLED)
	$(BIN)/python -m schemas.generate
	$(BIN)/python -m services.security.acls
	$(BIN)/python -m deploy.k8s.generate

# Benchmarks are measurements, not tests: bench-results/results.json and results.png (about 30 minutes;
# `make bench BENCH_ARGS="--runs 5"`, see `python -m bench --help` and docs/benchmarks.md).
# `make bench-quick`: the same with small loads (about 6 minutes), to check that it all runs.
bench: $(INSTALLED) kafka
	$(BIN)/python -m bench $(BENCH_ARGS)

bench-quick: $(INSTALLED) kafka
	$(BIN)/python -m bench --quick $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache

# Two commands do everything on a fresh machine: `make demo` and `make test`.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
# The provider mirror is discovered, never hard-coded (see scripts/tf-mirror.sh).
export MLCTL_TF_PROVIDER_MIRROR ?= $(shell scripts/tf-mirror.sh)
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20,22
PYTEST_ARGS ?=
# Test processes (pytest-xdist; whole files go to one worker, so a file's fixtures and order hold):
# the suite mostly waits on terraform, servers and subprocesses. 0 runs it in this one process.
TEST_WORKERS ?= 2

.PHONY: setup demo demo-infra test lint typecheck check synth bench clean

setup:
	@scripts/setup.sh

demo: setup
	@$(PY) -m control_plane.demo

demo-infra: setup
	@$(PY) -m control_plane.demo.infra

test: setup
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports --no-cache

typecheck: setup
	$(VENV)/bin/mypy

check: lint typecheck test

synth: setup
	BLUEPRINT=$${BLUEPRINT:-blueprints/uae-local.yaml} $(PY) -m stacks

bench: setup
	$(PY) bench/synth.py
	$(PY) bench/signing.py
	$(PY) bench/cutover.py
	$(PY) bench/pipeline.py
	$(PY) bench/api.py

clean:
	rm -rf cdktf.out .pytest_cache .mypy_cache .ruff_cache

# The two commands a new machine needs: `make dev` and `make test`. Everything else supports them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# The first Python 3.11+ on PATH (pyenv shims for versions that are not selected fail the check and are skipped).
PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do \
	if command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1; \
	then echo $$p; break; fi; done)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: help dev test install lint bench clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | sort

dev: install  ## embedded database, migrations, demo data, API + redeem page on http://127.0.0.1:3000, monitor
	$(BIN)/giftcard dev

test: install  ## the whole suite against real PostgreSQL (embedded unless DATABASE_URL is set)
	$(BIN)/pytest

$(STAMP): pyproject.toml layers/shared/requirements.txt
	@test -n "$(PYTHON)" || { echo 'Python 3.11 or newer is needed on PATH' >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[local,dev]'
	@touch $(STAMP)

install: $(STAMP)  ## .venv with the project (editable) and its dev tools

lint: install  ## ruff and mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: install  ## benchmarks with their same-run baselines (see bench/README.md)
	$(BIN)/python -m bench

clean:  ## remove build output and caches (keeps .venv and the local database)
	rm -rf .aws-sam .pytest_cache .mypy_cache .ruff_cache

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

# The SAM CLI lives in its own venv: its pinned dependencies clash with the project's.
SAM_CLI_VERSION := 1.170.0
SAM_VENV := .venv-sam
SAM_STAMP := $(SAM_VENV)/.installed-$(SAM_CLI_VERSION)
SAM := SAM_CLI_TELEMETRY=0 $(SAM_VENV)/bin/sam
# `sam build` for the python3.12 runtime runs a python3.12 from PATH. The folder of a working one: PATH's own,
# else the newest pyenv 3.12.x (pyenv's shim for a version that is not selected fails to run, so it is skipped).
PYTHON312_DIR = $(shell \
	if python3.12 -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12))' >/dev/null 2>&1; then \
		dirname "$$(command -v python3.12)"; \
	elif command -v pyenv >/dev/null 2>&1; then \
		for v in $$(pyenv versions --bare 2>/dev/null | grep -E '^3\.12\.[0-9]+$$' | sort -t. -k3,3nr); do \
			d="$$(pyenv prefix $$v 2>/dev/null)/bin"; \
			if "$$d/python3.12" -c '' >/dev/null 2>&1; then echo "$$d"; break; fi; \
		done; \
	fi)
BUILT_MIGRATIONS := .aws-sam/build/SharedLayer/python/giftcards/migrations
BUILT_DOCS_PAGE := .aws-sam/build/SharedLayer/python/giftcards/docs_page

# Checkov, the template's policy scanner, in its own venv too (its pinned dependencies clash with the project's).
# The checks skipped on purpose, each with its reason, are in .checkov.yaml.
CHECKOV_VERSION := 3.3.30
CHECKOV_VENV := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed-$(CHECKOV_VERSION)

.PHONY: help dev test install lint fuzz bench clean sam checkov validate build

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | sort

dev: install  ## embedded database, migrations, demo data, API, console (/console) and redeem page on :3000, monitor
	$(BIN)/giftcard dev

test: install  ## the whole suite against real PostgreSQL (embedded unless DATABASE_URL is set); browser tests need chromium
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

$(SAM_STAMP):
	@test -n "$(PYTHON)" || { echo 'Python 3.11 or newer is needed on PATH' >&2; exit 1; }
	rm -rf $(SAM_VENV)
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(SAM_VENV)/bin/python -m pip install --quiet 'aws-sam-cli==$(SAM_CLI_VERSION)'
	@touch $(SAM_STAMP)

sam: $(SAM_STAMP)  ## the pinned SAM CLI in its own venv (.venv-sam)

$(CHECKOV_STAMP):
	@test -n "$(PYTHON)" || { echo 'Python 3.11 or newer is needed on PATH' >&2; exit 1; }
	rm -rf $(CHECKOV_VENV)
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(CHECKOV_VENV)/bin/python -m pip install --quiet 'checkov==$(CHECKOV_VERSION)'
	@touch $(CHECKOV_STAMP)

checkov: $(CHECKOV_STAMP)  ## the pinned checkov in its own venv (.venv-checkov)

validate: $(SAM_STAMP) $(CHECKOV_STAMP)  ## sam validate --lint (SAM transform + cfn-lint), then checkov, on template.yaml
	$(SAM) validate --lint --template-file template.yaml
	$(CHECKOV_VENV)/bin/checkov --config-file .checkov.yaml --file template.yaml --skip-download --compact --quiet

build: $(SAM_STAMP)  ## sam build: the shared layer and every function (python3.12, arm64) into .aws-sam/build
	@dir='$(PYTHON312_DIR)'; \
	if [ -z "$$dir" ]; then \
		echo 'make build: sam build needs Python 3.12: put python3.12 on PATH, or `pyenv install 3.12`' >&2; exit 1; \
	fi; \
	echo "sam build with $$dir/python3.12"; \
	PATH="$$dir:$$PATH" $(SAM) build --template-file template.yaml && \
	"$$dir/python3.12" -m compileall -q -j 0 --invalidation-mode unchecked-hash .aws-sam/build >/dev/null
	@# A Lambda's code is read-only, so it cannot keep the bytecode it compiles: without this, every cold start
	@# compiled every module it imported from source, about three quarters of its import time (bench/README.md).
	@# The layer reaches migrations/ through a symlink: the built layer must hold the same SQL files.
	@diff -r migrations $(BUILT_MIGRATIONS) >/dev/null || { \
		echo 'make build: $(BUILT_MIGRATIONS) differs from migrations/' >&2; exit 1; }
	@# So does the /docs page, through its link to web/docs.
	@diff -r web/docs $(BUILT_DOCS_PAGE) >/dev/null || { \
		echo 'make build: $(BUILT_DOCS_PAGE) differs from web/docs/' >&2; exit 1; }

fuzz: install  ## contract fuzzing of a real giftcard serve, many more examples per operation than make test runs
	FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-400} $(BIN)/pytest -p no:cacheprovider tests/http/test_contract_fuzz.py

bench: install  ## benchmarks with their same-run baselines (see bench/README.md)
	$(BIN)/python -m bench

clean:  ## remove build output and caches (keeps .venv and the local database)
	rm -rf .aws-sam .pytest_cache .mypy_cache .ruff_cache

# Agentic AI Foundation: every entry point a user or CI needs. Each target sets up what it needs.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
export PATH := $(CURDIR)/node_modules/.bin:$(CURDIR)/$(VENV)/bin:$(PATH)
export LITELLM_LOCAL_MODEL_COST_MAP := True
export PYTHONDONTWRITEBYTECODE := 1
CDK := $(CURDIR)/node_modules/.bin/cdk
CONTEXT ?=

.PHONY: help synth test lint format typecheck deploy destroy diff user clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip==26.3

$(VENV)/.synth-installed: requirements.txt requirements-synth.txt | $(VENV)/bin/python
	$(VENV)/bin/pip install --quiet -r requirements-synth.txt
	touch $@

$(VENV)/.dev-installed: $(VENV)/.synth-installed requirements-dev.txt $(wildcard */requirements.txt)
	$(VENV)/bin/pip install --quiet -r requirements-dev.txt
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

synth: $(VENV)/.synth-installed node_modules/.installed ## Synthesize every stack, run nag + cfn-lint, print a summary
	rm -rf cdk.out
	$(CDK) synth --quiet --output cdk.out $(CONTEXT) > cdk.out.log 2>&1 || { cat cdk.out.log; exit 1; }
	$(PY) -m scripts.synth_summary cdk.out

lint: $(VENV)/.dev-installed ## ruff lint and format check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(VENV)/.dev-installed ## Apply ruff formatting and fixes
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

typecheck: $(VENV)/.dev-installed ## mypy (strict) over the shipped code
	$(VENV)/bin/mypy

test: $(VENV)/.dev-installed node_modules/.installed lint typecheck ## Lint, type-check and run the whole test suite
	$(PY) -m pytest

deploy: $(VENV)/.synth-installed node_modules/.installed ## cdk deploy --all (needs AWS credentials)
	$(CDK) deploy --all --require-approval never $(CONTEXT)

diff: $(VENV)/.synth-installed node_modules/.installed ## cdk diff against the deployed stacks
	$(CDK) diff --all $(CONTEXT)

destroy: $(VENV)/.synth-installed node_modules/.installed ## cdk destroy --all
	$(CDK) destroy --all --force $(CONTEXT)

user: $(VENV)/.dev-installed ## Create a user: make user EMAIL=a@b.c [TEAM=support]
	@test -n "$(EMAIL)" || { echo "EMAIL is required: make user EMAIL=someone@example.com [TEAM=support]"; exit 2; }
	$(PY) -m scripts.create_user --email "$(EMAIL)" $(if $(TEAM),--team "$(TEAM)")

clean: ## Remove build output (keeps .venv and node_modules)
	rm -rf cdk.out cdk.out.log .mypy_cache .ruff_cache

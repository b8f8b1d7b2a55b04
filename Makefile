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

# --- chat (frontend/) ---------------------------------------------------------------------------
CHAT_PORT ?= 8501
STREAMLIT_FLAGS := --server.address 127.0.0.1 --server.port $(CHAT_PORT) --server.headless true \
	--browser.gatherUsageStats false --client.toolbarMode viewer --client.showErrorDetails none

.PHONY: chat
chat: $(VENV)/.dev-installed ## Chat on http://localhost:8501 with the local agent (AGENT_URL), or MODE=agentcore [PREFIX=aaf REGION=..] for the deployed one
	@if [ "$(MODE)" = "agentcore" ]; then \
	  settings="$$($(PY) -m frontend.outputs --prefix "$(or $(PREFIX),aaf)" $(if $(REGION),--region "$(REGION)"))" || exit 2; \
	  set -a; eval "$$settings"; set +a; \
	  PYTHONPATH=$(CURDIR) exec $(PY) -m streamlit run frontend/app.py $(STREAMLIT_FLAGS); \
	else \
	  CHAT_MODE=local PYTHONPATH=$(CURDIR) exec $(PY) -m streamlit run frontend/app.py $(STREAMLIT_FLAGS); \
	fi

# --- LLM gateway (llm_gateway/) --------------------------------------------------------------------
GATEWAY_PORT ?= 4000

.PHONY: gateway bench-gateway
gateway: $(VENV)/.dev-installed ## Run the LiteLLM gateway on 127.0.0.1:4000 from the model catalog (key in .local/gateway.env)
	PYTHONPATH=$(CURDIR) exec $(PY) -m llm_gateway.local --port $(GATEWAY_PORT) $(if $(PROFILE),--profile $(PROFILE))

bench-gateway: $(VENV)/.dev-installed ## Measure the latency the gateway adds (direct vs proxied, scripted model on loopback)
	PYTHONPATH=$(CURDIR) $(PY) -m benchmarks.gateway_overhead --json benchmarks/results/gateway_overhead.json

# --- Agent and local mode (agent/, tools/server.py, scripts/local.py) -----------------------------
.PHONY: local bench-agent
local: $(VENV)/.dev-installed ## Run gateway + tool server + agent (+ chat) locally; Ctrl-C stops all (Bedrock via your AWS credentials, or GATEWAY_UPSTREAM_BASE)
	PYTHONPATH=$(CURDIR) exec $(PY) -m scripts.local $(if $(PROFILE),--profile $(PROFILE))

bench-agent: $(VENV)/.dev-installed ## Agent benchmarks: cold start, per-turn + tracing overhead, image dependency size
	-PYTHONPATH=$(CURDIR) $(PY) -m benchmarks.agent_cold_start
	-PYTHONPATH=$(CURDIR) $(PY) -m benchmarks.agent_turn_overhead
	-PYTHONPATH=$(CURDIR) $(PY) -m benchmarks.agent_image_size

# --- Idle cost (cost/) ---------------------------------------------------------------------------------
.PHONY: cost
cost: synth ## Estimate the monthly cost of the synthesized foundation with zero traffic, per component (CONTEXT as for synth)
	$(PY) -m cost cdk.out --details

# --- Evaluation (eval/) ------------------------------------------------------------------------------
# `make eval` checks the evaluation PIPELINE with the scripted golden model (no credentials, CI-safe);
# it does not measure model quality. Against a real model: `python -m eval run` (docs/evaluation.md).
EVAL_REPORT_DIR ?= eval-reports/pipeline
EVAL_GATE ?= --fail-under tool_recall=1 --fail-under guardrail_correct=1 --fail-under retrieval_hit_rate=0.9 \
	--fail-under pass_hat_k=0.9 --fail-over error_rate=0 --fail-over judge_error_rate=0
EVAL_ARGS ?=

.PHONY: eval eval-validate
eval: $(VENV)/.dev-installed ## Golden dataset through the local stack with the scripted model + CI gate; report in eval-reports/pipeline/
	PYTHONPATH=$(CURDIR) $(PY) -m tests.eval.pipeline_stack --run-name pipeline --tags pipeline,scripted-model \
		--report-dir $(EVAL_REPORT_DIR) $(EVAL_GATE) $(EVAL_ARGS)

eval-validate: $(VENV)/.dev-installed ## Validate eval/datasets/golden.jsonl (schema, tools, corpus documents)
	PYTHONPATH=$(CURDIR) $(PY) -m eval validate

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

# Mutation testing (docs/testing.md): NOT part of `make test` (minutes to tens of minutes per package).
# MUTATION_ARGS e.g. "tools --max-children 2" or "agent --only 'agent.memory.*'".
MUTATION_ARGS ?=

.PHONY: mutation
mutation: $(VENV)/.dev-installed ## Mutation testing (mutmut) of tools/, agent/, functions/interceptor/, stacks/constructs/: kill rate per package
	PYTHONPATH=$(CURDIR) $(PY) -m scripts.mutation $(MUTATION_ARGS)

# The browser comes first: a machine without Chromium gets it installed (root + apt-get, or Playwright's
# download) or the run stops before lint, naming the one command that installs it.
test: $(VENV)/.dev-installed node_modules/.installed ## Find/install Chromium, lint, type-check and run the whole test suite
	$(PY) -m scripts.ensure_browser
	$(MAKE) --no-print-directory lint typecheck
	$(PY) -m pytest

deploy: $(VENV)/.dev-installed node_modules/.installed ## cdk deploy --all (needs AWS credentials); on failure prints the first failed resource's reason
	PYTHONPATH=$(CURDIR) $(PY) -m scripts.aws_checks.deploy --cdk $(CDK) -- deploy --all --require-approval never $(CONTEXT)

# --- First deploy (scripts/aws_checks/, docs/deploy.md) ------------------------------------------
VERIFY_ARGS ?=

.PHONY: preflight bootstrap verify
preflight: $(VENV)/.dev-installed ## Read-only checks before a first deploy: credentials, region, bootstrap, Docker arm64, AgentCore, Bedrock access, AZs, quotas
	PYTHONPATH=$(CURDIR) $(PY) -m scripts.aws_checks.preflight $(CONTEXT)

bootstrap: $(VENV)/.dev-installed node_modules/.installed ## cdk bootstrap (pinned CLI) into the account/region of your credentials (AWS_REGION)
	PYTHONPATH=$(CURDIR) $(PY) -m scripts.aws_checks.bootstrap --cdk $(CDK)

verify: $(VENV)/.dev-installed ## After deploy: token, agent answer + citation, guardrail, trace, tools, ticket isolation, ingestion, chat URL
	PYTHONPATH=$(CURDIR) $(PY) -m scripts.aws_checks.verify $(CONTEXT) $(VERIFY_ARGS)

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
# The Streamlit flags (loopback, headless, no Deploy button) live in local_stack/components.py (STREAMLIT_FLAGS), shared with `make local`.

.PHONY: chat
chat: $(VENV)/.dev-installed ## Only the chat on http://localhost:8501 (make local already starts one): for an agent you run yourself (AGENT_URL), or MODE=agentcore [PREFIX=aaf REGION=..] for the deployed one
	@if [ "$(MODE)" = "agentcore" ]; then \
	  settings="$$($(PY) -m frontend.outputs --prefix "$(or $(PREFIX),aaf)" $(if $(REGION),--region "$(REGION)"))" || exit 2; \
	  set -a; eval "$$settings"; set +a; \
	  PYTHONPATH=$(CURDIR) exec $(PY) -m scripts.local --chat-only --chat-port $(CHAT_PORT); \
	else \
	  CHAT_MODE=local PYTHONPATH=$(CURDIR) exec $(PY) -m scripts.local --chat-only --chat-port $(CHAT_PORT); \
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

# --- Reliability (benchmarks/soak.py, docs/reliability.md) -----------------------------------------------
SESSIONS ?= 50
TURNS ?= 10

.PHONY: soak
soak: $(VENV)/.dev-installed ## Soak the local stack (scripted model): SESSIONS x TURNS turns (default 50 x 10); fails on any error or agent RSS growth over 64 MiB
	PYTHONPATH=$(CURDIR) $(PY) -m benchmarks.soak --sessions $(SESSIONS) --turns $(TURNS) --json benchmarks/results/soak.json

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
	PYTHONPATH=$(CURDIR) $(PY) -m scripts.eval_pipeline --run-name pipeline --tags pipeline,scripted-model \
		--report-dir $(EVAL_REPORT_DIR) $(EVAL_GATE) $(EVAL_ARGS)

eval-validate: $(VENV)/.dev-installed ## Validate eval/datasets/golden.jsonl (schema, tools, corpus documents)
	PYTHONPATH=$(CURDIR) $(PY) -m eval validate

# `python -m eval ...` through the project's venv (no need to activate it): make eval-run ARGS="--k 3 ..."
EVAL_BASELINE_DIR ?= eval-reports/baseline

.PHONY: eval-run eval-online eval-baseline
eval-baseline: FROM ?= $(EVAL_REPORT_DIR)
eval-run: $(VENV)/.dev-installed ## python -m eval run $(ARGS) (e.g. ARGS="--target local --k 3 --baseline eval-reports/baseline/report.json")
	PYTHONPATH=$(CURDIR) $(PY) -m eval run $(ARGS)

eval-online: $(VENV)/.dev-installed ## python -m eval online $(ARGS): score recent production traces in Langfuse
	PYTHONPATH=$(CURDIR) $(PY) -m eval online $(ARGS)

eval-baseline: ## Keep a run's report as the baseline later runs compare with: FROM=eval-reports/<run> (default: make eval's)
	@test -f "$(FROM)/report.json" || { echo "error: $(FROM)/report.json does not exist: run \`make eval\` (or make eval-run ARGS=\"--run-name NAME\") first, or pass FROM=eval-reports/<run-name>" >&2; exit 2; }
	mkdir -p $(EVAL_BASELINE_DIR)
	cp "$(FROM)/report.json" "$(FROM)/report.html" $(EVAL_BASELINE_DIR)/
	@echo "baseline: $(EVAL_BASELINE_DIR)/report.json (compare with --baseline $(EVAL_BASELINE_DIR)/report.json)"

# --- README pictures (docs/images/) ----------------------------------------------------------------------
# Tests write screenshots only under test-artifacts/ (ignored); this target alone rewrites the tracked images.
.PHONY: screenshots
screenshots: $(VENV)/.dev-installed ## Regenerate docs/images/chat.png (browser test) and docs/images/eval-report.png (make eval)
	$(PY) -m scripts.ensure_browser
	$(PY) -m pytest tests/frontend/test_browser.py -q
	cp test-artifacts/chat-answer.png docs/images/chat.png
	$(MAKE) --no-print-directory eval
	PYTHONPATH=$(CURDIR) $(PY) -m scripts.screenshot_report $(EVAL_REPORT_DIR)/report.html docs/images/eval-report.png

"""The launch command and environment of each local component, written once.

`make local` (scripts/local.py), the e2e fixtures, `make eval`, the browser test, the reliability suite
and the benchmarks all start the tool server, the agent, the LiteLLM gateway and the Streamlit chat
through these functions; local_stack/stack.py puts them together. Each returns a `Launch`: argv, env,
health URL and start-up bound. Everything listens on 127.0.0.1.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from config import REPO_ROOT, AppConfig
from llm_gateway.local import LocalGateway
from local_stack.processes import ManagedProcess

logger = logging.getLogger(__name__)

__all__ = [
    "AGENT_LAUNCHER_SET",
    "AGENT_TUNABLES",
    "STREAMLIT_FLAGS",
    "Launch",
    "agent_server",
    "chat",
    "gateway",
    "guardrail_policy",
    "streamlit_argv",
    "tool_server",
    "without",
]

HOST = "127.0.0.1"
CHAT_APP = REPO_ROOT / "frontend" / "app.py"

# The agent settings (agent/settings.py, agent/main.py) a user may tune for `make local` by exporting them;
# documented in docs/local-mode.md. An allow-list: any other AGENT_* variable in the caller's environment
# is dropped (so nothing reaches the agent by accident), and OTEL_* too (tracing is configured through
# LANGFUSE_*).
AGENT_TUNABLES: frozenset[str] = frozenset(
    {
        "AGENT_LOG_LEVEL",
        "AGENT_MAX_OUTPUT_TOKENS",
        "AGENT_MODEL_TIMEOUT_SECONDS",
        "AGENT_TOOL_TIMEOUT_SECONDS",
        "AGENT_TURN_DEADLINE_SECONDS",
        "AGENT_HEARTBEAT_SECONDS",
        "AGENT_MAX_CONCURRENT_TURNS",
        "AGENT_MAX_CONNECTIONS",
        "AGENT_HEADER_TIMEOUT_SECONDS",
        "AGENT_BODY_TIMEOUT_SECONDS",
        "AGENT_ALLOWED_HOSTS",
        "AGENT_TRACE_EXPORT_TIMEOUT_SECONDS",
        "AGENT_HISTORY_TURNS",
    }
)
# Set by the launcher itself (a caller's value would break the wiring): mode, address, trace tags.
AGENT_LAUNCHER_SET: frozenset[str] = frozenset(
    {"AGENT_MODE", "AGENT_HOST", "AGENT_PORT", "AGENT_ENVIRONMENT", "AGENT_SERVICE_NAME"}
)

# The Streamlit flags of every chat we start (`make local`, `make chat`, the browser test): loopback only,
# headless, no telemetry, no "Deploy" button or developer menu (toolbarMode viewer), no tracebacks to users.
STREAMLIT_FLAGS: tuple[str, ...] = (
    "--server.headless",
    "true",
    "--browser.gatherUsageStats",
    "false",
    "--client.toolbarMode",
    "viewer",
    "--client.showErrorDetails",
    "none",
)


@dataclass(frozen=True)
class Launch:
    """How to start one component and how to know it is up."""

    name: str
    argv: list[str]
    env: dict[str, str]
    health_url: str
    url: str  # what a client of the component uses (the gateway's base URL, the tool server's /mcp, ...)
    startup_timeout: float

    @property
    def port(self) -> int:
        return int(self.health_url.split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)[1])

    def process(self, log_path: Path, *, grace_period: float = 5.0) -> ManagedProcess:
        """A ManagedProcess for this launch (only `env`, plus PATH and HOME; cwd the repository)."""
        return ManagedProcess(
            self.argv,
            name=self.name,
            health_url=self.health_url,
            env=self.env,
            inherit_env=False,
            cwd=REPO_ROOT,
            log_path=log_path,
            startup_timeout=self.startup_timeout,
            grace_period=grace_period,
        )


def without(environ: Mapping[str, str], *prefixes: str) -> dict[str, str]:
    """`environ` without the variables whose names start with one of `prefixes`."""
    return {k: v for k, v in environ.items() if not k.startswith(prefixes)}


def tool_server(
    port: int,
    *,
    db: Path,
    environ: Mapping[str, str],
    index_cache: Path | None = None,
    corpus: Path | None = None,
    light: bool = False,
    startup_timeout: float = 180.0,
) -> Launch:
    """The MCP tool server (tools/server.py): tickets in SQLite at `db`, knowledge search over the
    embedded index of `corpus` (cached in `index_cache`), or with `light` the keyword backend of
    local_stack/light_tools.py (starts in about a second; no index). `environ` is passed as is
    (TAVILY_API_KEY in it turns web search on)."""
    module = "local_stack.light_tools" if light else "tools.server"
    argv = [sys.executable, "-m", module, "--port", str(port), "--db", str(db)]
    if not light:
        if corpus is not None:
            argv += ["--corpus", str(corpus)]
        if index_cache is not None:
            argv += ["--index-cache", str(index_cache)]
    return Launch(
        "tools",
        argv,
        {**environ, "PYTHONPATH": str(REPO_ROOT)},
        f"http://{HOST}:{port}/health",
        f"http://{HOST}:{port}/mcp",
        startup_timeout,
    )


def guardrail_policy(config: AppConfig) -> str:
    """The agent's local guardrail policy, from the same config section as the Bedrock guardrail."""
    guardrail = config.guardrail
    return json.dumps(
        {
            "denied_topics": [
                {"name": topic.name, "examples": list(topic.examples)} for topic in guardrail.denied_topics
            ],
            "pii": [{"type": rule.type, "action": rule.action} for rule in guardrail.pii],
            "blocked_input_message": guardrail.blocked_input_message,
            "blocked_output_message": guardrail.blocked_output_message,
        }
    )


def agent_server(
    config: AppConfig,
    port: int,
    *,
    gateway_url: str,
    gateway_key: str,
    tools_url: str,
    memory_path: Path,
    environ: Mapping[str, str],
    environment: str,
    with_guardrail_policy: bool = True,
    extra: Mapping[str, str] | None = None,
    startup_timeout: float = 60.0,
) -> Launch:
    """The agent (agent/main.py) in local mode (docs/agent-api.md): `environ` without AGENT_* and OTEL_*
    variables except AGENT_TUNABLES, plus the wiring; `extra` last (a caller's own settings)."""
    entry = config.models.entry(config.models.agent_alias)
    env = {
        **{k: v for k, v in environ.items() if k in AGENT_TUNABLES or not k.startswith(("AGENT_", "OTEL_"))},
        "AGENT_MODE": "local",
        "AGENT_HOST": HOST,
        "AGENT_PORT": str(port),
        "AGENT_ENVIRONMENT": environment,
        "AGENT_SERVICE_NAME": f"{config.prefix}-agent",
        "LLM_GATEWAY_URL": gateway_url,
        "LLM_GATEWAY_KEY": gateway_key,
        "MODEL_ALIAS": config.models.agent_alias,
        "TOOL_GATEWAY_URL": tools_url,
        "LOCAL_USER": config.agentcore.local_user,
        "LOCAL_MEMORY_PATH": str(memory_path),
        "PYTHONPATH": str(REPO_ROOT),
    }
    if with_guardrail_policy:
        env["LOCAL_GUARDRAIL_POLICY"] = guardrail_policy(config)
    if entry.input_cost_per_million is not None:
        env["MODEL_INPUT_COST_PER_MILLION"] = str(entry.input_cost_per_million)
    if entry.output_cost_per_million is not None:
        env["MODEL_OUTPUT_COST_PER_MILLION"] = str(entry.output_cost_per_million)
    env.update(extra or {})
    return Launch(
        "agent",
        [sys.executable, "-m", "agent.main"],
        env,
        f"http://{HOST}:{port}/ping",
        f"http://{HOST}:{port}",
        startup_timeout,
    )


def gateway(local: LocalGateway, startup_timeout: float = 120.0) -> Launch:
    """The LiteLLM proxy prepared by llm_gateway.local (`prepare` or `prepare_for_upstream`)."""
    return Launch(
        "gateway",
        list(local.argv),
        dict(local.env),
        f"{local.url}/health/liveliness",
        local.url,
        startup_timeout,
    )


def streamlit_argv(port: int) -> list[str]:
    """The command line of the chat on 127.0.0.1:`port` (`make local`, `make chat`, the browser test)."""
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(CHAT_APP),
        "--server.address",
        HOST,
        "--server.port",
        str(port),
        *STREAMLIT_FLAGS,
    ]


def chat(
    port: int,
    *,
    agent_url: str,
    environ: Mapping[str, str],
    local_user: str | None = None,
    extra: Mapping[str, str] | None = None,
    startup_timeout: float = 90.0,
) -> Launch:
    """The Streamlit chat (frontend/app.py) in local mode against `agent_url`."""
    env = {**environ, "CHAT_MODE": "local", "AGENT_URL": agent_url, "PYTHONPATH": str(REPO_ROOT)}
    if local_user is not None:
        env["LOCAL_USER"] = local_user
    env.update(extra or {})
    url = f"http://{HOST}:{port}"
    return Launch("frontend", streamlit_argv(port), env, f"{url}/_stcore/health", url, startup_timeout)

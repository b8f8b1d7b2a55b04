"""All real processes: scripted model -> LiteLLM proxy -> agent HTTP server -> MCP tool server -> SQLite
and the embedded index, with spans captured by the OTLP recorder. Started once per test session."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from llm_gateway.config import Upstream
from llm_gateway.local import prepare_for_upstream
from tests.factories import test_config
from tests.support.otlp_recorder import OtlpRecorder
from tests.support.processes import ManagedProcess, free_port
from tests.support.scripted_model import ScriptedModel

REPO = Path(__file__).resolve().parents[2]
PUBLIC_KEY, SECRET_KEY = "pk-lf-e2e", "sk-lf-e2e"
MASTER_KEY = "sk-e2e-master"
LOCAL_USER = "local-user"
ENVIRONMENT = "dev"


@dataclass
class Stack:
    model: ScriptedModel
    langfuse: OtlpRecorder
    gateway_url: str
    tools_url: str
    agent_url: str
    tickets_db: Path
    logs: Path

    def invoke(self, prompt: str, session_id: str, *, timeout: float = 60.0, **extra: Any) -> httpx.Response:
        return httpx.post(
            f"{self.agent_url}/invocations",
            json={"prompt": prompt, **extra},
            headers={"X-Amzn-Bedrock-AgentCore-Runtime-Session-Id": session_id},
            timeout=timeout,
        )


def agent_env(
    *, gateway_url: str, tools_url: str, port: int, langfuse_url: str | None, state: Path
) -> dict[str, str]:
    env = {
        "AGENT_MODE": "local",
        "LLM_GATEWAY_URL": gateway_url,
        "LLM_GATEWAY_KEY": MASTER_KEY,
        "MODEL_ALIAS": "claude-sonnet",
        "TOOL_GATEWAY_URL": tools_url,
        "LOCAL_USER": LOCAL_USER,
        "AGENT_ENVIRONMENT": ENVIRONMENT,
        "AGENT_PORT": str(port),
        "AGENT_HOST": "127.0.0.1",
        "LOCAL_MEMORY_PATH": str(state / f"memory-{port}.db"),
        "MODEL_INPUT_COST_PER_MILLION": "3",
        "MODEL_OUTPUT_COST_PER_MILLION": "15",
        "AGENT_TRACE_EXPORT_TIMEOUT_SECONDS": "1",
        "PYTHONPATH": str(REPO),
    }
    if langfuse_url:
        env.update(LANGFUSE_HOST=langfuse_url, LANGFUSE_PUBLIC_KEY=PUBLIC_KEY, LANGFUSE_SECRET_KEY=SECRET_KEY)
    return env


def start_agent(env: dict[str, str], log: Path) -> ManagedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("LANGFUSE_", "OTEL_", "AGENT_"))}
    port = env["AGENT_PORT"]
    return ManagedProcess(
        [sys.executable, "-m", "agent.main"],
        health_url=f"http://127.0.0.1:{port}/ping",
        env={**clean, **env},
        inherit_env=False,
        cwd=REPO,
        log_path=log,
        startup_timeout=30,
    )


def warm(url: str) -> None:
    """The first turn waits for the agent's background imports; do it once outside the timed tests."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        response = httpx.post(f"{url}/invocations", json={"prompt": "warm-up"}, timeout=60)
        if response.status_code == 200:
            return
        time.sleep(0.2)
    raise RuntimeError(f"agent at {url} never answered a turn: {response.text}")


@pytest.fixture(scope="session")
def e2e_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("e2e")


@pytest.fixture(scope="session")
def scripted_model() -> Iterator[ScriptedModel]:
    with ScriptedModel() as model:
        yield model


@pytest.fixture(scope="session")
def langfuse() -> Iterator[OtlpRecorder]:
    with OtlpRecorder(public_key=PUBLIC_KEY, secret_key=SECRET_KEY) as recorder:
        yield recorder


@pytest.fixture(scope="session")
def gateway(scripted_model: ScriptedModel, e2e_dir: Path) -> Iterator[str]:
    config = test_config("dev")
    port = free_port()
    upstream = Upstream(api_base=scripted_model.base_url, model=scripted_model.model_name)
    local = prepare_for_upstream(
        config,
        upstream,
        state_dir=e2e_dir / "gateway",
        port=port,
        master_key=MASTER_KEY,
    )
    with ManagedProcess(
        local.argv,
        health_url=f"{local.url}/health/liveliness",
        env=local.env,
        inherit_env=False,
        log_path=e2e_dir / "litellm.log",
        startup_timeout=90,
    ):
        yield local.url


@pytest.fixture(scope="session")
def tool_server(e2e_dir: Path) -> Iterator[tuple[str, Path]]:
    port = free_port()
    db = e2e_dir / "tickets.db"
    env = {k: v for k, v in os.environ.items() if k != "TAVILY_API_KEY"}
    with ManagedProcess(
        [
            sys.executable,
            "-m",
            "tools.server",
            "--port",
            str(port),
            "--db",
            str(db),
            "--index-cache",
            str(e2e_dir / "index"),
        ],
        health_url=f"http://127.0.0.1:{port}/health",
        env=env,
        inherit_env=False,
        cwd=REPO,
        log_path=e2e_dir / "tools.log",
        startup_timeout=90,
    ):
        yield f"http://127.0.0.1:{port}/mcp", db


@pytest.fixture(scope="session")
def stack(
    scripted_model: ScriptedModel,
    langfuse: OtlpRecorder,
    gateway: str,
    tool_server: tuple[str, Path],
    e2e_dir: Path,
) -> Iterator[Stack]:
    tools_url, db = tool_server
    port = free_port()
    env = agent_env(
        gateway_url=gateway, tools_url=tools_url, port=port, langfuse_url=langfuse.url, state=e2e_dir
    )
    with start_agent(env, e2e_dir / "agent.log"):
        url = f"http://127.0.0.1:{port}"
        warm(url)
        scripted_model.reset()
        yield Stack(scripted_model, langfuse, gateway, tools_url, url, db, e2e_dir)


@pytest.fixture(autouse=True)
def _fresh_model(request: pytest.FixtureRequest) -> Iterator[None]:
    """Each scenario starts with an empty script and the default responder."""
    yield
    if "stack" in request.fixturenames:
        model: ScriptedModel = request.getfixturevalue("scripted_model")
        model.reset()
        from tests.support.scripted_model import echo_last_user_message

        model.responder = echo_last_user_message


def sse_events(text: str) -> list[dict[str, Any]]:
    return [json.loads(block[len("data: ") :]) for block in text.split("\n\n") if block.startswith("data: ")]

"""All real processes: scripted model -> LiteLLM proxy -> agent HTTP server -> MCP tool server -> SQLite
and the embedded index, with spans captured by the OTLP recorder. Started once per test session through
local_stack.stack (the same assembly as `make local`)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from local_stack import components
from local_stack.components import Launch
from local_stack.otlp_recorder import OtlpRecorder
from local_stack.processes import ManagedProcess
from local_stack.scripted_model import ScriptedModel, echo_last_user_message
from local_stack.stack import LocalStack, hermetic_environ, plan, scripted_upstream, warm_agent
from tests.factories import test_config

REPO = Path(__file__).resolve().parents[2]
PUBLIC_KEY, SECRET_KEY = "pk-lf-e2e", "sk-lf-e2e"
MASTER_KEY = "sk-e2e-master"
LOCAL_USER = "local-user"
ENVIRONMENT = "dev"
# The corpus embeddings are computed once per checkout (keyed by the corpus contents), as for `make local`.
INDEX_CACHE = REPO / ".local" / "index"


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


def agent_extra(langfuse_url: str | None) -> dict[str, str]:
    """The e2e agent's own settings: prices for the cost metadata, a short trace export bound, Langfuse."""
    env = {
        "MODEL_INPUT_COST_PER_MILLION": "3",
        "MODEL_OUTPUT_COST_PER_MILLION": "15",
        "AGENT_TRACE_EXPORT_TIMEOUT_SECONDS": "1",
    }
    if langfuse_url:
        env.update(LANGFUSE_HOST=langfuse_url, LANGFUSE_PUBLIC_KEY=PUBLIC_KEY, LANGFUSE_SECRET_KEY=SECRET_KEY)
    return env


def agent_launch(
    *,
    gateway_url: str,
    tools_url: str,
    port: int,
    langfuse_url: str | None,
    state: Path,
    extra: dict[str, str] | None = None,
) -> Launch:
    """One more agent process wired to a running gateway and tool server (local_stack.components)."""
    return components.agent_server(
        test_config(ENVIRONMENT),
        port,
        gateway_url=gateway_url,
        gateway_key=MASTER_KEY,
        tools_url=tools_url,
        memory_path=state / f"memory-{port}.db",
        environ=hermetic_environ(os.environ),
        environment=ENVIRONMENT,
        with_guardrail_policy=False,
        extra={**agent_extra(langfuse_url), **(extra or {})},
        startup_timeout=30,
    )


def start_agent(launch: Launch, log: Path) -> ManagedProcess:
    return launch.process(log)


def warm(url: str) -> None:
    """The first turn waits for the agent's background imports; do it once outside the timed tests."""
    warm_agent(url, timeout=60)


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
def local_stack(scripted_model: ScriptedModel, langfuse: OtlpRecorder, e2e_dir: Path) -> Iterator[LocalStack]:
    """Gateway and tool server start together, then the agent (local_stack.stack)."""
    launches = plan(
        test_config(ENVIRONMENT),
        state_dir=e2e_dir,
        environ=hermetic_environ(os.environ),
        upstream=scripted_upstream(scripted_model),
        master_key=MASTER_KEY,
        index_cache=INDEX_CACHE,
        memory_path=e2e_dir / "memory.db",
        environment=ENVIRONMENT,
        with_guardrail_policy=False,
        agent_extra=agent_extra(langfuse.url),
        startup_timeouts={"gateway": 90, "tools": 90, "agent": 30},
    )
    with LocalStack(launches, e2e_dir / "logs") as stack:
        warm(stack.url("agent"))
        scripted_model.reset()
        yield stack


@pytest.fixture(scope="session")
def gateway(local_stack: LocalStack) -> str:
    return local_stack.url("gateway")


@pytest.fixture(scope="session")
def tool_server(local_stack: LocalStack, e2e_dir: Path) -> tuple[str, Path]:
    return local_stack.url("tools"), e2e_dir / "tickets.db"


@pytest.fixture(scope="session")
def stack(
    scripted_model: ScriptedModel,
    langfuse: OtlpRecorder,
    gateway: str,
    tool_server: tuple[str, Path],
    local_stack: LocalStack,
    e2e_dir: Path,
) -> Stack:
    tools_url, db = tool_server
    return Stack(scripted_model, langfuse, gateway, tools_url, local_stack.url("agent"), db, e2e_dir)


@pytest.fixture(autouse=True)
def _fresh_model(request: pytest.FixtureRequest) -> Iterator[None]:
    """Each scenario starts with an empty script and the default responder."""
    yield
    if "stack" in request.fixturenames:
        model: ScriptedModel = request.getfixturevalue("scripted_model")
        model.reset()
        model.responder = echo_last_user_message


def sse_events(text: str) -> list[dict[str, Any]]:
    return [json.loads(block[len("data: ") :]) for block in text.split("\n\n") if block.startswith("data: ")]

"""Fault injection with the real processes: scripted model -> LiteLLM proxy -> agent -> MCP tool server.

Each fault is injected where it happens in production (the model server answers 500/429, hangs or resets
the connection; the tool server process is frozen with SIGSTOP, killed and restarted; the trace backend
accepts connections and never answers) and the test asserts what the user sees (HTTP status, contract
error code from docs/agent-api.md) and how long it took (bounded by the agent's deadlines, which are set
short here). The tool server is local_stack/light_tools.py (the real server app without the
embedding index, so a restart takes seconds)."""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from local_stack.processes import ManagedProcess
from local_stack.scripted_model import (
    Failure,
    Hang,
    Reset,
    ScriptedModel,
    Text,
    ToolCall,
    ToolCalls,
    echo_last_user_message,
)
from local_stack.stack import LocalStack, hermetic_environ, plan, scripted_upstream
from tests.e2e.conftest import MASTER_KEY, agent_extra, sse_events, warm
from tests.factories import test_config
from tests.reliability.conftest import light_tool_server

pytestmark = pytest.mark.slow

# Short deadlines so a hang costs seconds (each must be below the next; the agent checks the order).
TOOL_TIMEOUT = 2.0
MODEL_TIMEOUT = 4.0
TURN_DEADLINE = 6.0
EXPORT_TIMEOUT = 1.0
SLACK = 4.0  # process and proxy overhead on a loaded 2-core machine


@dataclass
class Faults:
    model: ScriptedModel
    gateway_url: str
    agent_url: str
    tools: ManagedProcess
    tools_port: int
    tools_db: Path
    state: Path

    def invoke(self, prompt: str, *, timeout: float = 60.0, **extra: Any) -> tuple[httpx.Response, float]:
        started = time.monotonic()
        response = httpx.post(
            f"{self.agent_url}/invocations", json={"prompt": prompt, **extra}, timeout=timeout
        )
        return response, time.monotonic() - started

    def restart_tools(self) -> None:
        self.tools.stop()
        self.tools = light_tool_server(
            self.tools_db, self.state / "tools-restarted.log", self.tools_port
        ).start()


@pytest.fixture(scope="module")
def blackhole() -> Iterator[str]:
    """A trace backend that accepts TCP connections (kernel backlog) and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(128)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.fixture(scope="module")
def faults(tmp_path_factory: pytest.TempPathFactory, blackhole: str) -> Iterator[Faults]:
    """Gateway + light tool server + agent through local_stack.stack, the agent's deadlines short."""
    state = tmp_path_factory.mktemp("faults")
    with ScriptedModel() as model:
        launches = plan(
            test_config("dev"),
            state_dir=state,
            environ=hermetic_environ(os.environ),
            upstream=scripted_upstream(model),
            master_key=MASTER_KEY,
            light_tools=True,
            memory_path=state / "memory.db",
            with_guardrail_policy=False,
            agent_extra={
                **agent_extra(blackhole),
                "AGENT_TOOL_TIMEOUT_SECONDS": str(TOOL_TIMEOUT),
                "AGENT_MODEL_TIMEOUT_SECONDS": str(MODEL_TIMEOUT),
                "AGENT_TURN_DEADLINE_SECONDS": str(TURN_DEADLINE),
                "AGENT_HEARTBEAT_SECONDS": "1",
                "AGENT_TRACE_EXPORT_TIMEOUT_SECONDS": str(EXPORT_TIMEOUT),
            },
            startup_timeouts={"gateway": 90, "tools": 60, "agent": 30},
        )
        with LocalStack(launches, state / "logs", grace_period=3) as local:
            warm(local.url("agent"))
            model.reset()
            tools = local.launches["tools"]
            stack = Faults(
                model,
                local.url("gateway"),
                local.url("agent"),
                local["tools"],
                tools.port,
                state / "tickets.db",
                state,
            )
            try:
                yield stack
            finally:
                stack.tools.stop()  # a restarted tool server is not the stack's own process


@pytest.fixture(autouse=True)
def _default_model(faults: Faults) -> Iterator[None]:
    yield
    faults.model.reset()  # also releases any Hang still holding a request
    faults.model.responder = echo_last_user_message


def error_of(response: httpx.Response) -> dict[str, Any]:
    assert "Traceback" not in response.text
    return dict(response.json()["error"])


# --- the model ----------------------------------------------------------------------------------------


def test_model_500_is_502_model_unavailable(faults: Faults) -> None:
    faults.model.responder = lambda request: Failure(500, "upstream exploded")
    response, elapsed = faults.invoke("hello?")
    assert response.status_code == 502, response.text
    assert error_of(response)["code"] == "model_unavailable"
    assert elapsed < TURN_DEADLINE + SLACK


def test_model_connection_reset_is_502_model_unavailable(faults: Faults) -> None:
    faults.model.responder = lambda request: Reset()
    response, elapsed = faults.invoke("hello?")
    assert response.status_code == 502, response.text
    assert error_of(response)["code"] == "model_unavailable"
    assert elapsed < TURN_DEADLINE + SLACK


def test_model_429_is_429_rate_limited_with_retry_after(faults: Faults) -> None:
    faults.model.responder = lambda request: Failure(429, "slow down", headers={"Retry-After": "7"})
    response, elapsed = faults.invoke("hello?")
    assert response.status_code == 429, response.text
    error = error_of(response)
    assert error["code"] == "rate_limited" and error["message"]
    retry_after = int(response.headers["Retry-After"])
    assert 1 <= retry_after <= 300
    assert elapsed < TURN_DEADLINE + SLACK


def test_the_proxy_answers_an_upstream_429_with_429_and_no_retry_after(faults: Faults) -> None:
    """What LiteLLM 1.102.4 sends the agent (so the agent's default Retry-After is what the user sees):
    429 with `error.type` throttling_error after trying the fallbacks, and no Retry-After header even
    when the upstream sent one. If a LiteLLM upgrade starts forwarding it, this test says so."""
    faults.model.responder = lambda request: Failure(429, "slow down", headers={"Retry-After": "7"})
    response = httpx.post(
        f"{faults.gateway_url}/v1/chat/completions",
        json={"model": "claude-sonnet", "messages": [{"role": "user", "content": "hi"}]},
        headers={"Authorization": f"Bearer {MASTER_KEY}"},
        timeout=60,
    )
    assert response.status_code == 429
    assert response.json()["error"]["type"] == "throttling_error"
    assert "retry-after" not in response.headers
    aliases = {request["model"] for request in faults.model.requests}
    assert aliases == {faults.model.model_name} and len(faults.model.requests) >= 3  # the fallback chain


def test_model_hang_is_504_model_timeout_within_the_deadline(faults: Faults) -> None:
    faults.model.responder = lambda request: Hang()  # never answers (until reset)
    response, elapsed = faults.invoke("hello?")
    assert response.status_code == 504, response.text
    assert error_of(response)["code"] == "model_timeout"
    assert elapsed < TURN_DEADLINE + SLACK, elapsed


def test_model_hang_while_streaming_sends_heartbeats_then_an_error_event(faults: Faults) -> None:
    faults.model.responder = lambda request: Hang()
    response, elapsed = faults.invoke("hello?", stream=True)
    assert response.status_code == 200
    events = sse_events(response.text)
    assert events[-1]["type"] == "error" and events[-1]["code"] == "model_timeout", events[-1]
    assert any(event["type"] == "heartbeat" for event in events), [e["type"] for e in events]
    assert elapsed < TURN_DEADLINE + SLACK, elapsed


def test_the_agent_answers_normally_after_model_faults(faults: Faults) -> None:
    # A responder, not a queued reply: a proxy retry of an earlier fault may still arrive late.
    faults.model.responder = lambda request: Text("Back to normal.")
    response, elapsed = faults.invoke("are you ok?")
    assert response.status_code == 200 and response.json()["answer"] == "Back to normal."
    assert elapsed < SLACK


# --- the tool server ----------------------------------------------------------------------------------


def ticket_turn(faults: Faults, answer: str) -> tuple[httpx.Response, float]:
    """A turn that calls list_tickets, then answers `answer` (whatever the tool returned)."""

    def respond(request: dict[str, Any]) -> Text | ToolCalls:
        if request["messages"][-1].get("role") == "tool":
            return Text(answer)
        return ToolCalls([ToolCall("list_tickets", {"limit": 3})])

    faults.model.responder = respond
    return faults.invoke("what are my tickets?")


def test_tool_server_hang_is_a_bounded_tool_error(faults: Faults) -> None:
    assert ticket_turn(faults, "Warm.")[0].status_code == 200  # the agent has a live MCP session
    os.kill(faults.tools.pid, signal.SIGSTOP)
    try:
        response, elapsed = ticket_turn(faults, "The ticket system is not answering right now.")
    finally:
        os.kill(faults.tools.pid, signal.SIGCONT)
    assert elapsed < TURN_DEADLINE + SLACK, elapsed
    if response.status_code == 200:  # the hung call was cut at the tool timeout and reported
        body = response.json()
        tools = body["metadata"]["tools"]
        assert tools and tools[0]["status"] == "error" and tools[0]["error"], tools
        assert body["answer"] == "The ticket system is not answering right now."
    else:  # or the whole turn hit its deadline while the tool ran
        assert response.status_code == 504 and error_of(response)["code"] == "turn_timeout", response.text
    response, _ = ticket_turn(faults, "Recovered.")
    assert response.status_code == 200 and response.json()["answer"] == "Recovered."


def test_tool_server_kill_and_restart(faults: Faults) -> None:
    assert ticket_turn(faults, "Before.")[0].status_code == 200
    os.kill(faults.tools.pid, signal.SIGKILL)
    faults.tools.stop()
    response, elapsed = ticket_turn(faults, "I can't reach the ticket system.")
    assert elapsed < TURN_DEADLINE + SLACK, elapsed
    assert response.status_code in (200, 502), response.text
    if response.status_code == 502:
        assert error_of(response)["code"] == "tools_unavailable"
    else:
        tools = response.json()["metadata"]["tools"]
        assert not tools or tools[0]["status"] == "error", tools
    faults.restart_tools()
    response, elapsed = ticket_turn(faults, "After.")
    assert response.status_code == 200, response.text
    assert response.json()["metadata"]["tools"][0]["status"] == "success"
    assert response.json()["answer"] == "After."


# --- the trace backend -------------------------------------------------------------------------------


def test_a_hanging_trace_backend_neither_fails_nor_stalls_turns(faults: Faults) -> None:
    """Every turn of this module exports to a backend that never answers; the export is bounded by
    AGENT_TRACE_EXPORT_TIMEOUT_SECONDS and must not be on the answer's path."""
    timings = []
    for index in range(3):
        answer = Text(f"Answer {index}.")
        faults.model.responder = lambda request, answer=answer: answer  # type: ignore[misc]
        response, elapsed = faults.invoke(f"question {index}")
        assert response.status_code == 200 and response.json()["answer"] == f"Answer {index}."
        assert len(response.json()["metadata"]["trace_id"]) == 32
        timings.append(elapsed)
    assert max(timings) < EXPORT_TIMEOUT + 2.0, timings

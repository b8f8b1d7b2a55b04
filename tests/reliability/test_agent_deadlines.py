"""Issue 13, defect 4: bounded waits and honest errors.

The real `AgentService` with the real gateway model client (`agent.bootstrap.GatewayModelFactory`,
Strands `OpenAIModel` over the OpenAI SDK) against a loopback stand-in of the gateway that hangs,
rate-limits or answers through a fallback; and the real app under uvicorn for client disconnects.
"""

from __future__ import annotations

# ruff: noqa: F811  (the fixtures of tests/agent/conftest.py are imported and used as parameters)
import asyncio
import time
from typing import Any

import httpx
import pytest
from strands import tool

from agent.bootstrap import GatewayModelFactory
from agent.errors import ApiError
from agent.guardrails import LocalPolicy
from agent.identity import Caller
from agent.memory import LocalMemory
from agent.payload import Invocation
from agent.service import AgentService, classify_failure
from agent.telemetry import Telemetry
from agent.tool_client import StaticTools
from local_stack.scripted_strands import Boom, Call, Say
from tests.agent.conftest import make_service, model  # noqa: F401  (fixtures)
from tests.agent.http_support import serve, settings
from tests.agent.model_stub import Answer, GatewayStub, Hang, Limited

CALLER = Caller("alice")
SESSION = "s-" + "d" * 32


def invocation(prompt: str = "hi", stream: bool = True) -> Invocation:
    return Invocation(prompt=prompt, session_id=SESSION, stream=stream)


def gateway_service(stub: GatewayStub, **options: Any) -> AgentService:
    factory = GatewayModelFactory(stub.base, "sk-test", "claude-sonnet", 256, 30.0)
    factory.prewarm()  # as the agent's warm-up does: the OpenAI SDK's lazy imports block for ~0.5 s
    values: dict[str, Any] = {
        "model_factory": factory,
        "model_name": "claude-sonnet",
        "guardrail": LocalPolicy(),
        "memory": LocalMemory(),
        "tools": StaticTools([]),
        "telemetry": Telemetry.disabled(),
        "turn_deadline_seconds": 1.5,
        "heartbeat_seconds": 0.4,
    }
    values.update(options)
    return AgentService(**values)


async def collect(service: AgentService, inv: Invocation) -> list[dict[str, Any]]:
    return [event async for event in service.stream_turn(inv, CALLER)]


@pytest.mark.parametrize("headers_first", [False, True])
def test_a_hung_model_ends_at_the_deadline_with_heartbeats_and_the_upstream_call_closed(headers_first):
    with GatewayStub() as stub:
        stub.script.append(Hang(headers_first=headers_first))
        service = gateway_service(stub)
        started = time.monotonic()
        events = asyncio.run(collect(service, invocation()))
        elapsed = time.monotonic() - started
        closed = stub.wait_closed(timeout=5) - started
    kinds = [event["type"] for event in events]
    assert kinds[-1] == "error" and events[-1]["code"] == "model_timeout"
    assert "1.5 s" in events[-1]["message"]
    assert kinds.count("heartbeat") >= 2 and set(kinds[:-1]) == {"heartbeat"}
    assert 1.4 < elapsed < 3.0, f"the turn took {elapsed:.1f} s for a 1.5 s deadline"
    assert closed < 3.0, "the model's HTTP connection stayed open after the deadline"
    assert len(stub.requests) == 1, "a timed-out turn must not call the model again"


def test_a_hung_model_is_a_504_for_json_answers():
    with GatewayStub() as stub:
        stub.script.append(Hang())
        service = gateway_service(stub)
        with pytest.raises(ApiError) as raised:
            asyncio.run(service.run_turn(invocation(stream=False), CALLER))
    assert (raised.value.status, raised.value.code) == (504, "model_timeout")


@pytest.mark.parametrize(("retry_after", "expected"), [("17", 17), (None, 5), ("garbage", 5), ("9999", 300)])
def test_a_gateway_429_is_rate_limited_with_retry_after_and_no_retry(retry_after, expected):
    with GatewayStub() as stub:
        stub.script.append(Limited(retry_after))
        service = gateway_service(stub, turn_deadline_seconds=10)
        started = time.monotonic()
        with pytest.raises(ApiError) as raised:
            asyncio.run(service.run_turn(invocation(stream=False), CALLER))
        elapsed = time.monotonic() - started
    error = raised.value
    assert (error.status, error.code, error.retry_after) == (429, "rate_limited", expected)
    assert error.headers()["Retry-After"] == str(expected)
    assert len(stub.requests) == 1 and elapsed < 3, "the 429 was retried by the client"


def test_a_fallback_model_is_named_in_the_metadata():
    with GatewayStub() as stub:
        stub.script.append(
            Answer(
                "Answered by the fallback.",
                {"x-litellm-model-group": "claude-haiku", "x-litellm-attempted-fallbacks": "1"},
            )
        )
        service = gateway_service(stub, turn_deadline_seconds=10)
        answer = asyncio.run(service.run_turn(invocation(stream=False), CALLER))
    assert answer["answer"] == "Answered by the fallback."
    assert answer["metadata"]["model"] == "claude-haiku"


def test_without_fallback_the_metadata_names_the_requested_alias():
    with GatewayStub() as stub:
        stub.script.append(Answer("Plain.", {"x-litellm-model-group": "claude-sonnet"}))
        service = gateway_service(stub, turn_deadline_seconds=10)
        answer = asyncio.run(service.run_turn(invocation(stream=False), CALLER))
    assert answer["metadata"]["model"] == "claude-sonnet"


def test_the_fallback_is_recorded_on_the_turn_span():
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    telemetry = Telemetry.with_exporter(exporter, environment="dev", install_global=False, batch=False)
    with GatewayStub() as stub:
        stub.script.append(
            Answer("ok", {"x-litellm-model-group": "claude-haiku", "x-litellm-attempted-fallbacks": "2"})
        )
        service = gateway_service(stub, telemetry=telemetry, turn_deadline_seconds=10)
        asyncio.run(service.run_turn(invocation(stream=False), CALLER))
    root = next(span for span in exporter.get_finished_spans() if span.name == "agent-turn")
    assert root.attributes is not None
    assert root.attributes["gen_ai.response.model"] == "claude-haiku"
    assert root.attributes["agent.model.fallback"] is True


# --- classification by type (the scripted in-process model raises exactly these) ----------------


def _request() -> httpx.Request:
    return httpx.Request("POST", "http://gateway/v1/chat/completions")


def _openai_errors() -> list[tuple[Exception, str]]:
    import openai
    from strands.types.exceptions import ModelThrottledException

    limited = openai.RateLimitError(
        "limited", response=httpx.Response(429, headers={"retry-after": "3"}, request=_request()), body=None
    )
    throttled = ModelThrottledException("throttled")
    throttled.__cause__ = limited
    return [
        (openai.APIConnectionError(request=_request()), "model_unavailable"),
        (openai.APITimeoutError(request=_request()), "model_timeout"),
        (
            openai.InternalServerError("boom", response=httpx.Response(500, request=_request()), body=None),
            "model_unavailable",
        ),
        (limited, "rate_limited"),
        (throttled, "rate_limited"),
        (httpx.ReadTimeout("read"), "model_timeout"),
        (httpx.RemoteProtocolError("cut"), "model_unavailable"),
        (RuntimeError("connection refused by the model gateway"), "internal_error"),  # text is not a type
        (ValueError("timed out"), "internal_error"),
    ]


@pytest.mark.parametrize("index", range(9))
def test_failures_are_classified_by_exception_type(make_service, model, index):
    error, code = _openai_errors()[index]
    model.enqueue(Boom(error))
    events = asyncio.run(collect(make_service(), invocation()))
    assert events[-1]["type"] == "error" and events[-1]["code"] == code
    assert classify_failure(error).code == code
    if code == "rate_limited":
        assert events[-1]["retry_after"] == 3


def test_rate_limited_is_429_with_retry_after_over_http(make_service, model):
    from starlette.testclient import TestClient

    from agent.main import create_app
    from tests.agent.http_support import LOCAL, LOCAL_URL

    error, _ = _openai_errors()[3]
    model.enqueue(Boom(error))
    with TestClient(create_app(LOCAL, service=make_service()), base_url=LOCAL_URL) as client:
        response = client.post("/invocations", json={"prompt": "hi"})
    assert response.status_code == 429 and response.headers["retry-after"] == "3"
    assert response.json()["error"]["code"] == "rate_limited"


# --- tool timeouts and the deadline while a tool runs ------------------------------------------


@tool
async def slow_lookup(query: str) -> str:
    """Look something up slowly.

    Args:
        query: What to look up.
    """
    await asyncio.sleep(30)
    return "never"


def test_the_deadline_while_a_tool_runs_is_a_turn_timeout_naming_the_tool(make_service, model):
    model.enqueue(Call("slow_lookup", {"query": "x"}), Say("never said"))
    service = make_service(tools=StaticTools([slow_lookup]), turn_deadline_seconds=1.0, heartbeat_seconds=0.3)
    started = time.monotonic()
    events = asyncio.run(collect(service, invocation()))
    assert time.monotonic() - started < 2.5
    assert events[-1]["code"] == "turn_timeout" and "slow_lookup" in events[-1]["message"]
    assert events[0]["type"] == "tool_start"


def test_streamed_turns_send_heartbeats_only_while_idle(make_service, model):
    model.enqueue(Say("quick answer"))
    service = make_service(turn_deadline_seconds=5, heartbeat_seconds=0.2)
    events = asyncio.run(collect(service, invocation()))
    assert [e["type"] for e in events if e["type"] != "text"] == ["done"]


# --- the client going away cancels the turn and the model call ---------------------------------


def test_client_disconnect_cancels_the_model_call_and_frees_the_slot():
    with GatewayStub() as stub:
        stub.script.append(Hang(headers_first=True))
        service = gateway_service(stub, turn_deadline_seconds=30, heartbeat_seconds=0.3)
        with serve(settings(), service) as served:
            with (
                httpx.Client(timeout=10) as client,
                client.stream(
                    "POST", f"{served.url}/invocations", json={"prompt": "hi", "stream": True}
                ) as response,
            ):
                assert response.status_code == 200
                lines = response.iter_lines()
                assert '"heartbeat"' in next(line for line in lines if line.startswith("data:"))
                assert httpx.get(f"{served.url}/ping").json()["status"] == "HealthyBusy"
                gone = time.monotonic()
            closed = stub.wait_closed(timeout=10)
            assert closed - gone < 3, "the model call outlived the client by more than 3 s"
            deadline = time.monotonic() + 5
            while httpx.get(f"{served.url}/ping").json()["status"] != "Healthy":
                assert time.monotonic() < deadline, "the turn slot was not released"
                time.sleep(0.05)

"""The entrypoint's error and stream contract at its edges (docs/agent-api.md, "Limits and errors").

The real app (`agent.main.create_app`) in-process through Starlette's TestClient, and under real
uvicorn on loopback where connection handling matters (`tests/agent/http_support.serve`). Where a
service double is used it stands in for `AgentService` only, to drive the relay's own failure modes
(a stream that raises, a stream that never ends); the model is never called.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, cast

import httpx
import pytest
from bedrock_agentcore.runtime.context import BedrockAgentCoreContext
from starlette.responses import PlainTextResponse
from starlette.testclient import TestClient

from agent.errors import ApiError
from agent.main import Runtime, create_app, error_response
from tests.agent.http_support import DEPLOYED, LOCAL, LOCAL_URL, raw_exchange, serve, settings

if TYPE_CHECKING:
    from agent.service import AgentService

LIMIT = 10.0
SESSION_HEADER = "X-Amzn-Bedrock-AgentCore-Runtime-Session-Id"
SESSION = "s-" + "c" * 32


class StreamDouble:
    """Stands in for AgentService.stream_turn: yields `events`, then raises `error` or hangs."""

    def __init__(self, events: list[dict[str, Any]], *, error: Exception | None = None, hang: bool = False):
        self.events = events
        self.error = error
        self.hang = hang
        self.cancelled = threading.Event()
        self.sessions: list[str | None] = []

    async def stream_turn(self, invocation: Any, caller: Any) -> AsyncIterator[dict[str, Any]]:
        self.sessions.append(BedrockAgentCoreContext.get_session_id())
        for event in self.events:
            yield event
        if self.error is not None:
            raise self.error
        if self.hang:
            try:
                await asyncio.sleep(LIMIT * 3)
            except asyncio.CancelledError:
                self.cancelled.set()
                raise

    async def run_turn(self, invocation: Any, caller: Any) -> dict[str, Any]:
        raise AssertionError("not used")


def sse_events(text: str) -> list[dict[str, Any]]:
    return [json.loads(line[len("data: ") :]) for line in text.split("\n\n") if line.startswith("data: ")]


def client_for(service: StreamDouble, **kwargs: Any) -> TestClient:
    return TestClient(create_app(LOCAL, service=cast("AgentService", service)), base_url=LOCAL_URL, **kwargs)


# --- framework errors -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "status", "code", "message"),
    [
        ("GET", "/nope", 404, "not_found", "GET /nope: Not Found"),
        ("POST", "/invocations/", 404, "not_found", "POST /invocations/: Not Found"),
        ("GET", "/invocations", 405, "method_not_allowed", "GET /invocations: Method Not Allowed"),
    ],
)
def test_framework_errors_carry_the_contract_body(method, path, status, code, message):
    with client_for(StreamDouble([])) as client:
        response = client.request(method, path, follow_redirects=False)
    assert response.status_code == status
    assert response.json() == {"error": {"code": code, "message": message, "trace_id": ""}}
    if status == 405:
        assert response.headers["allow"] == "POST"


def test_other_http_exceptions_get_a_generic_code():
    from starlette.exceptions import HTTPException

    app = create_app(LOCAL, service=cast("AgentService", StreamDouble([])))

    async def teapot(request: Any) -> Any:
        raise HTTPException(418, "short and stout", headers={"X-Reason": "tea"})

    app.add_route("/teapot", teapot)
    with TestClient(app, base_url=LOCAL_URL) as client:
        response = client.get("/teapot")
    assert response.status_code == 418
    assert response.json()["error"] == {
        "code": "http_418",
        "message": "GET /teapot: short and stout",
        "trace_id": "",
    }
    assert response.headers["x-reason"] == "tea"


def test_an_unhandled_error_is_a_contract_500_that_hides_the_exception(caplog):
    app = create_app(LOCAL, service=cast("AgentService", StreamDouble([])))

    async def broken(request: Any) -> PlainTextResponse:
        raise KeyError("secret-internal-detail")

    app.add_route("/broken", broken)
    with (
        caplog.at_level("ERROR", logger="agent"),
        TestClient(app, base_url=LOCAL_URL, raise_server_exceptions=False) as client,
    ):
        response = client.get("/broken")
    assert response.status_code == 500
    assert response.json() == {
        "error": {"code": "internal_error", "message": "the agent failed; please try again", "trace_id": ""}
    }
    assert "secret-internal-detail" not in response.text
    # the operator gets the exception itself (with its traceback) in the agent log
    logged = [r for r in caplog.records if r.exc_info and isinstance(r.exc_info[1], KeyError)]
    assert logged and logged[0].levelname == "ERROR" and "/broken" in logged[0].getMessage()


# --- body gate: which refusals close the connection -------------------------------------------------


def test_oversized_body_is_413_and_closes_the_connection():
    with client_for(StreamDouble([])) as client:
        response = client.post(
            "/invocations", content=b"{" + b" " * 300_000 + b"}", headers={"Content-Type": "application/json"}
        )
    assert response.status_code == 413 and response.json()["error"]["code"] == "payload_too_large"
    assert response.headers["connection"] == "close"


def test_bad_json_is_400_and_keeps_the_connection():
    with client_for(StreamDouble([])) as client:
        response = client.post("/invocations", content=b"{nope", headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert "connection" not in response.headers


def test_a_client_that_leaves_before_the_body_gets_no_answer():
    # the ASGI server reports the disconnect; nothing is sent and no turn runs
    service = StreamDouble([{"type": "text", "text": "x"}])
    with serve(settings(LOCAL), service) as served:
        answer = raw_exchange(
            served.port,
            b"POST /invocations HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: application/json\r\n"
            b"Content-Length: 50\r\n\r\n{" % served.port,
            timeout=0.5,
        )
    assert answer == b""  # the body never completed within the read window
    assert service.sessions == []


# --- the stream relay ---------------------------------------------------------------------------------


def test_stream_events_are_relayed_in_order_as_utf8_sse_in_the_request_context():
    events: list[dict[str, Any]] = [
        {"type": "text", "text": "Grüße — 你好"},
        {"type": "done", "metadata": {"n": 1}},
    ]
    service = StreamDouble(events)
    with client_for(service) as client:
        response = client.post(
            "/invocations", json={"prompt": "hi", "stream": True}, headers={SESSION_HEADER: SESSION}
        )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["x-accel-buffering"] == "no"
    assert "Grüße — 你好" in response.content.decode("utf-8")  # not \u-escaped
    assert response.text == "".join(f"data: {json.dumps(e, ensure_ascii=False)}\n\n" for e in events)
    assert service.sessions == [SESSION]  # the turn runs in the invocation's context


def test_a_stream_that_raises_ends_with_a_generic_error_event(caplog):
    service = StreamDouble(
        [{"type": "text", "text": "partial"}], error=RuntimeError("secret-internal-detail")
    )
    with caplog.at_level("ERROR", logger="agent"), client_for(service) as client:
        response = client.post("/invocations", json={"prompt": "hi", "stream": True})
    assert response.status_code == 200
    assert sse_events(response.text) == [
        {"type": "text", "text": "partial"},
        {
            "type": "error",
            "code": "internal_error",
            "message": "the agent failed to answer; please try again",
            "trace_id": "",
        },
    ]
    assert "secret-internal-detail" not in response.text
    logged = [r for r in caplog.records if r.exc_info and isinstance(r.exc_info[1], RuntimeError)]
    assert logged and logged[0].levelname == "ERROR"


def test_a_client_that_disconnects_cancels_the_turn():
    service = StreamDouble([{"type": "text", "text": "first"}], hang=True)
    with serve(settings(LOCAL), service) as served:
        with (
            httpx.Client(base_url=served.url, timeout=LIMIT) as http,
            http.stream("POST", "/invocations", json={"prompt": "hi", "stream": True}) as response,
        ):
            assert response.status_code == 200
            first = next(response.iter_lines())
            assert json.loads(first[len("data: ") :]) == {"type": "text", "text": "first"}
        assert service.cancelled.wait(LIMIT), "the turn kept running after the client left"
        deadline = time.monotonic() + LIMIT
        while served.app.state.runtime.turns_in_flight:
            assert time.monotonic() < deadline, "the turn slot was not released"
            time.sleep(0.02)


# --- /ping and the turn count ---------------------------------------------------------------------


def test_ping_body_before_the_app_exists_follows_the_turn_count():
    runtime = Runtime(DEPLOYED)
    before = int(time.time())
    idle = runtime.ping_body()
    assert idle["status"] == "Healthy"
    assert before <= idle["time_of_last_update"] <= int(time.time()) + 1
    assert isinstance(idle["time_of_last_update"], int)
    assert runtime.try_enter()
    runtime.enter()
    assert runtime.turns_in_flight == 2
    assert runtime.ping_body()["status"] == "HealthyBusy"
    runtime.leave()
    runtime.leave()
    assert runtime.ping_body()["status"] == "Healthy" and not runtime.busy


def test_ping_body_reports_the_sdk_update_time():
    with client_for(StreamDouble([])) as client:
        body = client.get("/ping").json()
        app_time = int(client.app.state.runtime.app._last_status_update_time)  # type: ignore[attr-defined]
    assert set(body) == {"status", "time_of_last_update"}
    assert body["time_of_last_update"] == app_time


def test_turn_admission_stops_at_the_limit():
    runtime = Runtime(settings(LOCAL, max_concurrent_turns=2))
    assert [runtime.try_enter() for _ in range(3)] == [True, True, False]
    runtime.leave()
    assert runtime.try_enter()


def test_an_error_response_carries_the_trace_id_and_retry_after():
    response = error_response(ApiError(429, "rate_limited", "slow down", retry_after=7), "trace-1")
    assert response.status_code == 429 and response.headers["retry-after"] == "7"
    assert json.loads(bytes(response.body)) == {
        "error": {"code": "rate_limited", "message": "slow down", "trace_id": "trace-1"}
    }

"""The model client the service builds for the LLM gateway (`agent.bootstrap.GatewayModelFactory`) and
its response hook (`agent.service.record_model_response`), against the scripted OpenAI-compatible server
on 127.0.0.1, here made to answer with the LiteLLM proxy's response headers.

LiteLLM (1.102.4 proxy, proxy/proxy_server.py) names the model group that served a call in
`x-litellm-model-group` and counts fallbacks in `x-litellm-attempted-fallbacks`. The agent client does
not retry on HTTP status (LiteLLM already retried and fell back) but retries a dropped connection
once, and bounds each call by AGENT_MODEL_TIMEOUT_SECONDS.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from agent.bootstrap import build_service
from agent.identity import Caller
from agent.payload import Invocation
from agent.service import ModelRecord, current_model, record_model_response
from local_stack.loopback import LoopbackHandler
from local_stack.scripted_model import Failure, Hang, Reset, ScriptedModel, Text
from tests.agent.http_support import LOCAL

SESSION = "s-" + "g" * 32
CALLER = Caller("local-user")


class GatewayLikeModel(ScriptedModel):
    """The scripted model, answering with the response headers the LiteLLM proxy adds."""

    def __init__(self) -> None:
        self.response_headers: dict[str, str] = {}
        super().__init__()

    def handler_class(self) -> type[LoopbackHandler]:
        base = super().handler_class()
        model = self

        class Handler(base):  # type: ignore[valid-type,misc]
            def end_headers(self) -> None:
                for name, value in model.response_headers.items():
                    self.send_header(name, value)
                super().end_headers()

        return Handler


@pytest.fixture(scope="module")
def gateway() -> Iterator[GatewayLikeModel]:
    with GatewayLikeModel() as model:
        yield model


@pytest.fixture
def llm(gateway: GatewayLikeModel) -> GatewayLikeModel:
    gateway.reset()
    gateway.response_headers = {}
    return gateway


def service_for(llm: ScriptedModel, **changes: Any) -> Any:
    closed = "http://127.0.0.1:9/mcp"  # nothing listens: the turn runs without tools
    settings = dataclasses.replace(
        LOCAL, llm_gateway_url=llm.url, tool_gateway_url=closed, llm_gateway_key="sk-gw", **changes
    )
    return build_service(settings)


def turn(service: Any, prompt: str = "hi") -> dict[str, Any]:
    return asyncio.run(service.run_turn(Invocation(prompt, SESSION, False), CALLER))


def stream(service: Any, prompt: str = "hi") -> list[dict[str, Any]]:
    async def collect() -> list[dict[str, Any]]:
        return [e async for e in service.stream_turn(Invocation(prompt, SESSION, True), CALLER)]

    return asyncio.run(collect())


def test_the_answering_model_group_is_reported_in_the_metadata(llm):
    llm.response_headers = {"x-litellm-model-group": "claude-haiku", "x-litellm-attempted-fallbacks": "1"}
    llm.enqueue(Text("Answered by the fallback."))
    body = turn(service_for(llm))
    assert body["answer"] == "Answered by the fallback."
    assert body["metadata"]["model"] == "claude-haiku"
    request = llm.requests[0]
    assert request["model"] == "claude-sonnet" and request["stream"] is True
    assert llm.request_headers[0]["authorization"] == "Bearer sk-gw"


def test_without_gateway_headers_the_configured_alias_is_reported(llm):
    llm.enqueue(Text("Plain answer."))
    assert turn(service_for(llm))["metadata"]["model"] == "claude-sonnet"


def test_a_dropped_connection_is_retried_once(llm):
    llm.enqueue(Reset(), Text("Second try."))
    assert turn(service_for(llm))["answer"] == "Second try."
    assert len(llm.requests) == 2


def test_two_dropped_connections_fail_the_turn_after_one_retry(llm):
    llm.enqueue(Reset(), Reset(), Text("never sent"))
    events = stream(service_for(llm))
    assert events[-1]["type"] == "error" and events[-1]["code"] == "model_unavailable"
    assert len(llm.requests) == 2
    assert llm.pending() == 1


@pytest.mark.parametrize("status", [429, 500, 503])
def test_an_http_error_is_not_retried_by_the_agent(llm, status):
    llm.enqueue(Failure(status, headers={"Retry-After": "1"}), Text("never sent"))
    events = stream(service_for(llm))
    assert events[-1]["type"] == "error"
    assert len(llm.requests) == 1


def test_each_model_call_is_bounded_by_the_model_timeout(llm):
    llm.enqueue(Hang(8, then=Text("late")), Hang(8, then=Text("late")))
    service = service_for(
        llm, model_timeout_seconds=0.5, turn_deadline_seconds=20.0, tool_timeout_seconds=5.0
    )
    started = time.monotonic()
    events = stream(service)
    elapsed = time.monotonic() - started
    llm.reset()  # release the hanging handlers
    assert events[-1]["type"] == "error" and events[-1]["code"] == "model_timeout"
    assert elapsed < 7, elapsed  # two 0.5 s attempts and the client's back-off, far below 8 s or the deadline


def test_the_output_token_limit_is_sent_with_every_call(llm):
    llm.enqueue(Text("ok"))
    turn(service_for(llm, max_output_tokens=77))
    assert llm.requests[0]["max_tokens"] == 77


def test_prewarm_never_calls_the_model_and_the_turn_still_answers(llm):
    service = service_for(llm)
    service.prewarm(None)
    assert llm.requests == []
    llm.enqueue(Text("after warm-up"), Text("second turn"))
    assert turn(service)["answer"] == "after warm-up"
    assert turn(service)["answer"] == "second turn"  # a new event loop gets a working client too


# --- the response hook ---------------------------------------------------------------------------


def hooked(response: httpx.Response, record: ModelRecord | None) -> None:
    async def run() -> None:
        current_model.set(record)
        await record_model_response(response)

    asyncio.run(run())


def response(status: int = 200, **headers: str) -> httpx.Response:
    return httpx.Response(status, headers={k.replace("_", "-"): v for k, v in headers.items()})


@pytest.mark.parametrize(
    ("headers", "answered", "fallback"),
    [
        ({}, None, False),
        ({"x_litellm_model_group": "claude-sonnet"}, "claude-sonnet", False),
        ({"x_litellm_model_group": "claude-haiku"}, "claude-haiku", True),
        (
            {"x_litellm_model_group": "claude-sonnet", "x_litellm_attempted_fallbacks": "0"},
            "claude-sonnet",
            False,
        ),
        (
            {"x_litellm_model_group": "claude-sonnet", "x_litellm_attempted_fallbacks": "2"},
            "claude-sonnet",
            True,
        ),
        ({"x_litellm_attempted_fallbacks": "1"}, None, True),
        ({"x_litellm_attempted_fallbacks": ""}, None, False),
        ({"x_litellm_attempted_fallbacks": "many"}, None, False),
        ({"x_litellm_model_group": ""}, None, False),
    ],
)
def test_the_hook_records_the_group_and_whether_a_fallback_served(headers, answered, fallback):
    record = ModelRecord(requested="claude-sonnet")
    hooked(response(**headers), record)
    assert (record.answered, record.fallback) == (answered, fallback)


@pytest.mark.parametrize("status", [400, 429, 500])
def test_error_responses_are_ignored(status):
    record = ModelRecord(requested="claude-sonnet")
    hooked(response(status, x_litellm_model_group="claude-haiku", x_litellm_attempted_fallbacks="1"), record)
    assert (record.answered, record.fallback) == (None, False)


def test_a_fallback_once_seen_stays_recorded_for_the_turn():
    record = ModelRecord(requested="claude-sonnet")
    hooked(response(x_litellm_model_group="claude-haiku"), record)
    hooked(response(399, x_litellm_model_group="claude-sonnet"), record)
    assert (record.answered, record.fallback) == ("claude-sonnet", True)


def test_outside_a_turn_the_hook_does_nothing():
    hooked(response(x_litellm_model_group="claude-haiku"), None)

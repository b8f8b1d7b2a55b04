"""The turn loop in-process: the deadline (which code, which message), heartbeats, and the per-turn
model record the gateway client's response hook fills (LiteLLM 1.102.4 headers)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable
from typing import Any

import httpx
from strands import tool

from agent.identity import Caller
from agent.payload import Invocation
from agent.service import ModelRecord, current_model, record_model_response
from agent.tool_client import StaticTools
from local_stack.scripted_strands import Call, Say, ScriptedStrandsModel

SESSION = "s-" + "t" * 32


class HangingModel(ScriptedStrandsModel):
    """Answers its queued replies, then never again (until cancelled)."""

    async def stream(self, *args: Any, **kwargs: Any) -> AsyncIterable[Any]:
        if not self.replies:
            await asyncio.sleep(30)
        async for event in super().stream(*args, **kwargs):
            yield event


@tool
async def slow_lookup(query: str) -> str:
    """Look something up, slowly.

    Args:
        query: What to look for.
    """
    await asyncio.sleep(30)
    return "never"


def stream(service: Any) -> list[dict[str, Any]]:
    async def collect() -> list[dict[str, Any]]:
        return [e async for e in service.stream_turn(Invocation("hi", SESSION, True), Caller("alice"))]

    return asyncio.run(asyncio.wait_for(collect(), 10))


def test_a_silent_model_gets_heartbeats_then_model_timeout(make_service):
    service = make_service(model_factory=HangingModel, turn_deadline_seconds=0.5, heartbeat_seconds=0.15)
    events = stream(service)
    assert events[-1] == {
        "type": "error",
        "code": "model_timeout",
        "message": "the language model did not answer within the 0.5 s turn deadline",
        "trace_id": "",
    }
    beats = [e for e in events if e["type"] == "heartbeat"]
    assert 2 <= len(beats) <= 4
    assert all(0 < b["elapsed_ms"] < 600 for b in beats)
    assert [e["type"] for e in events[:-1]] == ["heartbeat"] * len(beats)


def test_a_hanging_tool_is_turn_timeout_naming_the_tool(make_service):
    model = HangingModel().enqueue(Call("slow_lookup", {"query": "x"}))
    service = make_service(
        model_factory=lambda: model,
        tools=StaticTools([slow_lookup]),
        turn_deadline_seconds=0.5,
        heartbeat_seconds=5,
    )
    events = stream(service)
    assert events[0] == {"type": "tool_start", "name": "slow_lookup", "arguments": {"query": "x"}}
    assert events[-1] == {
        "type": "error",
        "code": "turn_timeout",
        "message": "the turn passed its 0.5 s deadline while the tool slow_lookup ran",
        "trace_id": "",
    }
    assert not any(e["type"] == "heartbeat" for e in events)


def test_a_quick_turn_sends_no_heartbeat(make_service, model):
    model.enqueue(Say("Quick."))
    events = stream(make_service(turn_deadline_seconds=5, heartbeat_seconds=2))
    assert [e["type"] for e in events] == ["text", "done"]


def hook(response: httpx.Response, record: ModelRecord | None) -> ModelRecord | None:
    async def run() -> None:
        current_model.set(record)
        await record_model_response(response)

    asyncio.run(run())
    return record


def response(status: int = 200, **headers: str) -> httpx.Response:
    return httpx.Response(status, headers={k.replace("_", "-"): v for k, v in headers.items()})


def test_the_model_record_names_the_group_that_answered_and_a_fallback():
    same = hook(response(x_litellm_model_group="claude-sonnet"), ModelRecord("claude-sonnet"))
    assert same == ModelRecord("claude-sonnet", "claude-sonnet", False)
    other = hook(response(x_litellm_model_group="nova-pro"), ModelRecord("claude-sonnet"))
    assert other == ModelRecord("claude-sonnet", "nova-pro", True)
    counted = hook(
        response(x_litellm_model_group="claude-sonnet", x_litellm_attempted_fallbacks="1"),
        ModelRecord("claude-sonnet"),
    )
    assert counted == ModelRecord("claude-sonnet", "claude-sonnet", True)
    assert hook(response(x_litellm_attempted_fallbacks="0"), ModelRecord("a")) == ModelRecord(
        "a", None, False
    )
    assert hook(response(x_litellm_attempted_fallbacks="many"), ModelRecord("a")) == ModelRecord(
        "a", None, False
    )
    assert hook(response(x_litellm_attempted_fallbacks=""), ModelRecord("a")) == ModelRecord("a", None, False)


def test_error_answers_and_calls_outside_a_turn_leave_no_record():
    failed = hook(response(429, x_litellm_model_group="nova-pro"), ModelRecord("claude-sonnet"))
    assert failed == ModelRecord("claude-sonnet", None, False)
    assert hook(response(x_litellm_model_group="nova-pro"), None) is None  # no turn: nothing to note
    kept = ModelRecord("claude-sonnet", "nova-pro", True)
    assert hook(response(x_litellm_model_group="claude-sonnet"), kept) == ModelRecord(
        "claude-sonnet", "claude-sonnet", True
    )  # a fallback earlier in the turn stays noted

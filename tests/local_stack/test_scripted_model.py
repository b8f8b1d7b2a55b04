"""The scripted OpenAI-compatible model's contract (what LiteLLM and the OpenAI clients rely on):
JSON and SSE completions with tool-call deltas, usage, HTTP errors with headers, hangs, resets, routes."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from typing import Any

import httpx
import pytest

from local_stack.scripted_model import Failure, Hang, Reset, ScriptedModel, Text, ToolCall, ToolCalls

MESSAGES = [{"role": "user", "content": "How do I reset my router?"}]


def _events(text: str) -> list[Any]:
    lines = [line[len("data: ") :] for line in text.split("\n\n") if line.startswith("data: ")]
    assert lines[-1] == "[DONE]"
    return [json.loads(line) for line in lines[:-1]]


def test_a_tool_call_then_text_as_json_completions() -> None:
    with ScriptedModel() as model:
        model.enqueue(
            ToolCalls([ToolCall("search_knowledge_base", {"query": "reset"}, id="call_1")]), Text("Hold it.")
        )
        first = httpx.post(
            f"{model.base_url}/chat/completions", json={"model": "m", "messages": MESSAGES}
        ).json()
        second = httpx.post(
            f"{model.base_url}/chat/completions", json={"model": "m", "messages": MESSAGES}
        ).json()
        assert model.requests[0]["messages"] == MESSAGES and model.pending() == 0
    choice = first["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["tool_calls"] == [
        {
            "id": "call_1",
            "type": "function",
            "function": {"name": "search_knowledge_base", "arguments": '{"query": "reset"}'},
        }
    ]
    assert second["choices"][0]["message"]["content"] == "Hold it." and second["model"] == "m"
    assert (
        second["usage"]["total_tokens"]
        == second["usage"]["prompt_tokens"] + second["usage"]["completion_tokens"]
    )


def test_streaming_sends_tool_call_deltas_and_usage_last_when_asked() -> None:
    with ScriptedModel() as model:
        model.enqueue(ToolCalls([ToolCall("list_tickets", {"limit": 3}, id="call_2")]))
        body = {"model": "m", "messages": MESSAGES, "stream": True, "stream_options": {"include_usage": True}}
        response = httpx.post(f"{model.base_url}/chat/completions", json=body)
    assert response.headers["content-type"] == "text/event-stream"
    events = _events(response.text)
    calls = [
        e["choices"][0]["delta"]["tool_calls"][0]
        for e in events
        if e["choices"] and "tool_calls" in e["choices"][0]["delta"]
    ]
    assert calls[0]["id"] == "call_2" and calls[0]["function"]["name"] == "list_tickets"
    assert json.loads("".join(c["function"].get("arguments", "") for c in calls)) == {"limit": 3}
    assert events[-2]["choices"][0]["finish_reason"] == "tool_calls"
    assert events[-1]["choices"] == [] and events[-1]["usage"]["completion_tokens"] >= 1


def test_the_default_responder_echoes_and_models_are_listed() -> None:
    with ScriptedModel(model_name="scripted-x") as model:
        text = httpx.post(f"{model.base_url}/chat/completions", json={"messages": MESSAGES}).json()
        listed = httpx.get(f"{model.base_url}/models").json()
        missing = httpx.get(f"{model.url}/nothing")
        bad = httpx.post(f"{model.base_url}/chat/completions", content=b"{not json")
    assert text["choices"][0]["message"]["content"] == "echo: How do I reset my router?"
    assert listed["data"] == [{"id": "scripted-x", "object": "model"}]
    assert (missing.status_code, bad.status_code) == (404, 400)


def test_a_failure_answers_the_status_and_headers() -> None:
    with ScriptedModel() as model:
        model.enqueue(Failure(429, "slow down", headers={"Retry-After": "7"}))
        response = httpx.post(f"{model.base_url}/chat/completions", json={"messages": MESSAGES})
    assert response.status_code == 429 and response.headers["retry-after"] == "7"
    assert response.json()["error"]["message"] == "slow down"


def test_a_reset_drops_the_connection_and_a_hang_ends_on_reset() -> None:
    with ScriptedModel() as model:
        model.enqueue(Reset())
        with pytest.raises(httpx.TransportError):
            httpx.post(f"{model.base_url}/chat/completions", json={"messages": MESSAGES})
        model.enqueue(Hang())
        threading.Timer(0.5, model.reset).start()
        started = time.monotonic()
        with pytest.raises(httpx.TransportError):  # released without an answer: the connection closes
            httpx.post(f"{model.base_url}/chat/completions", json={"messages": MESSAGES}, timeout=10)
        assert 0.4 < time.monotonic() - started < 5


def test_stop_is_not_held_by_a_hang_and_frees_the_port() -> None:
    model = ScriptedModel().start()
    model.enqueue(Hang())

    def held() -> None:
        with contextlib.suppress(httpx.TransportError):  # the hang ends without an answer
            httpx.post(f"{model.base_url}/chat/completions", json={"messages": MESSAGES}, timeout=10)

    worker = threading.Thread(target=held, daemon=True)
    worker.start()
    time.sleep(0.3)
    started = time.monotonic()
    model.stop()
    assert time.monotonic() - started < 3
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{model.base_url}/models", timeout=2)

"""The real LiteLLM proxy, started from the generated config, in front of scripted OpenAI-compatible models."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from local_stack.scripted_model import Failure, Text, ToolCall, ToolCalls
from tests.llm_gateway.conftest import BACKUP_PRICE, LIMITED_RPM, PRIMARY_PRICE, RunningGateway

pytestmark = pytest.mark.slow

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_order_status",
        "description": "Look up an order",
        "parameters": {
            "type": "object",
            "properties": {"order_id": {"type": "string"}},
            "required": ["order_id"],
        },
    },
}


def chat(gw: RunningGateway, model: str = "primary", content: str = "hello", **extra: Any) -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": content}], **extra}
    return gw.client.post("/v1/chat/completions", json=body)


def sse_events(response: httpx.Response) -> list[dict[str, Any]]:
    events = []
    for line in response.text.splitlines():
        if line.startswith("data: ") and line != "data: [DONE]":
            events.append(json.loads(line.removeprefix("data: ")))
    return events


def test_chat_answers_through_the_alias(gw: RunningGateway) -> None:
    gw.primary.enqueue(Text("Hold the reset button for 10 seconds."))

    response = chat(gw, content="How do I reset the router?")

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["choices"][0]["message"]["content"] == "Hold the reset button for 10 seconds."
    assert body["model"] == "primary"
    upstream = gw.primary.requests[-1]
    assert upstream["model"] == "scripted-primary"
    assert upstream["messages"][-1]["content"] == "How do I reset the router?"


def test_streaming_delivers_every_chunk_in_order(gw: RunningGateway) -> None:
    answer = "The X200 router restarts after you hold reset for ten seconds."
    gw.primary.enqueue(Text(answer, chunk_chars=7))

    response = chat(gw, stream=True)

    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.text.rstrip().endswith("data: [DONE]")
    deltas = [e["choices"][0]["delta"].get("content") or "" for e in sse_events(response) if e.get("choices")]
    assert "".join(deltas) == answer
    assert sum(1 for d in deltas if d) >= len(answer) // 7


def test_tool_calls_pass_through_unchanged(gw: RunningGateway) -> None:
    call = ToolCall("get_order_status", {"order_id": "A-1042"}, id="call_order42")
    gw.primary.enqueue(ToolCalls([call]))

    response = chat(gw, content="Where is order A-1042?", tools=[WEATHER_TOOL], tool_choice="auto")

    assert response.status_code == 200, response.text
    choice = response.json()["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    (tool_call,) = choice["message"]["tool_calls"]
    assert tool_call["id"] == "call_order42"
    assert tool_call["function"]["name"] == "get_order_status"
    assert json.loads(tool_call["function"]["arguments"]) == {"order_id": "A-1042"}
    assert gw.primary.requests[-1]["tools"][0]["function"]["name"] == "get_order_status"


def test_streamed_tool_call_arguments_reassemble(gw: RunningGateway) -> None:
    arguments = {"order_id": "A-1042", "include_history": True, "note": "customer asked twice"}
    gw.primary.enqueue(ToolCalls([ToolCall("get_order_status", arguments, id="call_stream1")]))

    response = chat(gw, tools=[WEATHER_TOOL], stream=True)

    assert response.status_code == 200, response.text
    names, fragments, finish = [], [], None
    for event in sse_events(response):
        for choice in event.get("choices", []):
            for delta_call in choice["delta"].get("tool_calls") or []:
                function = delta_call.get("function") or {}
                if function.get("name"):
                    names.append(function["name"])
                fragments.append(function.get("arguments") or "")
            finish = choice.get("finish_reason") or finish
    assert names == ["get_order_status"]
    assert json.loads("".join(fragments)) == arguments
    assert finish == "tool_calls"


@pytest.mark.parametrize("status", [500, 429])
def test_primary_failure_falls_back_to_the_catalogued_alias(gw: RunningGateway, status: int) -> None:
    gw.primary.enqueue(Failure(status))
    gw.backup.enqueue(Text("answer from the backup model"))

    response = chat(gw)

    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"] == "answer from the backup model"
    assert len(gw.primary.requests) == 1  # tried once (num_retries: 0), then the fallback
    assert len(gw.backup.requests) == 1
    assert response.headers["x-litellm-model-group"] == "backup"
    assert response.headers["x-litellm-attempted-fallbacks"] == "1"


def test_primary_failure_without_fallback_is_reported(gw: RunningGateway) -> None:
    gw.backup.enqueue(Failure(500, "backup is down"))

    response = chat(gw, model="backup")

    assert response.status_code == 500
    assert "error" in response.json()


def test_rpm_limit_answers_429_without_calling_the_model(gw: RunningGateway) -> None:
    statuses = []
    # A minute boundary can reset the counter once, so allow up to two windows' worth before the 429.
    for _ in range(2 * LIMITED_RPM + 1):
        response = chat(gw, model="limited")
        statuses.append(response.status_code)
        if response.status_code == 429:
            break

    assert statuses[-1] == 429, statuses
    assert statuses.count(200) >= LIMITED_RPM
    assert "rpm" in response.json()["error"]["message"].lower()
    assert len(gw.primary.requests) == statuses.count(200)  # the rejected call never reached the model


@pytest.mark.parametrize("authorization", ["Bearer sk-not-the-key", "", "Bearer not-even-sk-prefixed"])
def test_wrong_or_missing_key_is_401(gw: RunningGateway, authorization: str) -> None:
    response = gw.client.post(
        "/v1/chat/completions",
        json={"model": "primary", "messages": [{"role": "user", "content": "hi"}]},
        headers={"Authorization": authorization},
    )

    assert response.status_code == 401, response.text
    assert gw.primary.requests == []


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"{not json", "json"),
        (json.dumps({"model": "primary"}).encode(), "messages"),
        (json.dumps({"model": "primary", "messages": "hello"}).encode(), "invalid request"),
        (
            json.dumps({"model": "no-such-alias", "messages": [{"role": "user", "content": "x"}]}).encode(),
            "model",
        ),
    ],
    ids=["not-json", "no-messages", "messages-not-a-list", "unknown-alias"],
)
def test_malformed_request_is_4xx_and_never_reaches_the_model(
    gw: RunningGateway, content: bytes, fragment: str
) -> None:
    response = gw.client.post(
        "/v1/chat/completions", content=content, headers={"Content-Type": "application/json"}
    )

    assert 400 <= response.status_code < 500, response.text
    assert fragment in response.text.lower()
    assert gw.primary.requests == []


def test_response_carries_its_cost_from_the_catalog_prices(gw: RunningGateway) -> None:
    response = chat(gw, content="price check")

    assert response.status_code == 200, response.text
    usage = response.json()["usage"]
    expected = (
        usage["prompt_tokens"] * PRIMARY_PRICE[0] + usage["completion_tokens"] * PRIMARY_PRICE[1]
    ) / 1e6
    cost = float(response.headers["x-litellm-response-cost"])
    assert cost > 0
    assert cost == pytest.approx(expected, rel=1e-6)


def test_fallback_cost_uses_the_backup_prices(gw: RunningGateway) -> None:
    gw.primary.enqueue(Failure(500))

    response = chat(gw, content="price check after fallback")

    assert response.status_code == 200, response.text
    usage = response.json()["usage"]
    expected = (usage["prompt_tokens"] * BACKUP_PRICE[0] + usage["completion_tokens"] * BACKUP_PRICE[1]) / 1e6
    assert float(response.headers["x-litellm-response-cost"]) == pytest.approx(expected, rel=1e-6)


def test_models_endpoint_lists_exactly_the_catalog_aliases(gw: RunningGateway) -> None:
    response = gw.client.get("/v1/models")

    assert response.status_code == 200, response.text
    assert sorted(model["id"] for model in response.json()["data"]) == ["backup", "limited", "primary"]


def test_env_file_holds_url_and_this_runs_key_privately(running_gateway: RunningGateway) -> None:
    env_file = running_gateway.gateway.env_file
    assert env_file is not None
    assert env_file.stat().st_mode & 0o777 == 0o600
    lines = dict(line.split("=", 1) for line in env_file.read_text().splitlines())
    assert lines == {
        "LLM_GATEWAY_URL": running_gateway.url,
        "LLM_GATEWAY_KEY": running_gateway.gateway.master_key,
        "LLM_GATEWAY_TEAMS_FILE": str(running_gateway.gateway.teams_file),
    }
    assert running_gateway.gateway.master_key not in running_gateway.process.log_text()
    team_keys = json.loads(Path(lines["LLM_GATEWAY_TEAMS_FILE"]).read_text())["team_keys"].values()
    assert not any(key in running_gateway.process.log_text() for key in team_keys)

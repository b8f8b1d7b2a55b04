"""Property-based fuzzing of `POST /invocations` (rules in docs/agent-api.md) against the real agent app
in-process (`agent.main.create_app`, the real AgentService with an in-process scripted Strands model and
local stand-ins, as tests/agent does).

Properties: a body that follows the rules is answered 200 (JSON or an SSE stream ending in `done`);
anything else gets the contract's 4xx error body (`invalid_json` 400, `payload_too_large` 413,
`invalid_payload` 422) and no model call; never a 5xx, never a traceback."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema
from starlette.testclient import TestClient

from agent.guardrails import LocalPolicy
from agent.main import create_app
from agent.memory import LocalMemory
from agent.payload import MAX_BODY_BYTES, MAX_PROMPT_CHARS, SESSION_ID_RE
from agent.service import AgentService
from agent.settings import Settings
from agent.telemetry import Telemetry
from agent.tool_client import StaticTools
from local_stack.scripted_strands import ScriptedStrandsModel

SETTINGS = Settings(
    mode="local",
    llm_gateway_url="http://127.0.0.1:4000",
    model_alias="claude-sonnet",
    tool_gateway_url="http://127.0.0.1:8765/mcp",
    llm_gateway_key="sk-local",
)
URL = "http://127.0.0.1:8080"
SESSION_HEADER = "X-Amzn-Bedrock-AgentCore-Runtime-Session-Id"
ERROR_CODES = {400: {"invalid_json"}, 413: {"payload_too_large"}, 422: {"invalid_payload"}}

# The documented body (docs/agent-api.md, "Request") as a JSON schema.
PAYLOAD_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "prompt": {"type": "string", "minLength": 1, "maxLength": 300},
        "session_id": {"type": "string", "pattern": SESSION_ID_RE.pattern},
        "stream": {"type": "boolean"},
    },
    "required": ["prompt"],
    "additionalProperties": False,
}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)


class Agent(tuple[TestClient, ScriptedStrandsModel]):
    def __repr__(self) -> str:  # hypothesis prints the arguments of a failing example
        return "Agent(in-process app)"


@pytest.fixture(scope="module")
def agent() -> Iterator[tuple[TestClient, ScriptedStrandsModel]]:
    model = ScriptedStrandsModel()
    service = AgentService(
        model_factory=lambda: model,
        model_name="claude-sonnet",
        guardrail=LocalPolicy(),
        memory=LocalMemory(),
        tools=StaticTools([]),
        telemetry=Telemetry.disabled(),
    )
    with TestClient(create_app(SETTINGS, service=service), base_url=URL) as client:
        yield Agent((client, model))


def prompt_is_valid(prompt: str) -> bool:
    try:
        prompt.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate (JSON can carry one as \\udxxx)
        return False
    return 1 <= len(prompt.strip()) <= MAX_PROMPT_CHARS


def assert_contract_error(response: Any) -> None:
    assert response.status_code in ERROR_CODES, (response.status_code, response.text[:500])
    assert "Traceback" not in response.text
    error = response.json()["error"]
    assert error["code"] in ERROR_CODES[response.status_code], error
    assert error["message"] and "trace_id" in error


def post(client: TestClient, content: bytes, headers: dict[str, str] | None = None) -> Any:
    return client.post(
        "/invocations", content=content, headers={"Content-Type": "application/json", **(headers or {})}
    )


@given(payload=from_schema(PAYLOAD_SCHEMA))
def test_documented_payloads_are_answered(
    agent: tuple[TestClient, ScriptedStrandsModel], payload: dict[str, Any]
) -> None:
    client, model = agent
    before = len(model.requests)
    response = post(client, json.dumps(payload).encode())
    if not prompt_is_valid(payload["prompt"]):
        assert_contract_error(response)
        assert response.status_code == 422 and len(model.requests) == before
        return
    assert response.status_code == 200, response.text[:500]
    if payload.get("stream"):
        events = [json.loads(b[6:]) for b in response.text.split("\n\n") if b.startswith("data: ")]
        assert events[-1]["type"] == "done", events[-1]
    else:
        body = response.json()
        assert body["answer"] and body["metadata"]["session_id"]
        if "session_id" in payload:
            assert body["metadata"]["session_id"] == payload["session_id"]


@given(
    payload=st.dictionaries(
        st.sampled_from(["prompt", "session_id", "stream", "user_id", "actor"]) | st.text(max_size=10),
        json_values,
        max_size=4,
    )
)
def test_payloads_that_break_the_rules_are_4xx_without_a_model_call(
    agent: tuple[TestClient, ScriptedStrandsModel], payload: dict[str, Any]
) -> None:
    client, model = agent
    follows_rules = (
        isinstance(payload.get("prompt"), str)
        and prompt_is_valid(payload["prompt"])
        and set(payload) <= {"prompt", "session_id", "stream"}
        and (
            "session_id" not in payload
            or (isinstance(payload["session_id"], str) and SESSION_ID_RE.match(payload["session_id"]))
        )
        and ("stream" not in payload or isinstance(payload["stream"], bool))
    )
    before = len(model.requests)
    response = post(client, json.dumps(payload).encode())
    if follows_rules:
        assert response.status_code == 200, response.text[:500]
        return
    assert_contract_error(response)
    assert len(model.requests) == before


@given(content=st.binary(max_size=200) | json_values.map(lambda v: json.dumps(v).encode()))
def test_arbitrary_bodies_never_fail_the_server(
    agent: tuple[TestClient, ScriptedStrandsModel], content: bytes
) -> None:
    client, _ = agent
    response = post(client, content)
    if response.status_code != 200:
        assert_contract_error(response)


@given(
    depth=st.integers(min_value=20, max_value=100_000),
    bracket=st.sampled_from([(b"[", b"]"), (b'{"a":', b"}")]),
    closed=st.booleans(),
)
def test_deeply_nested_bodies_are_invalid_json(
    agent: tuple[TestClient, ScriptedStrandsModel], depth: int, bracket: tuple[bytes, bytes], closed: bool
) -> None:
    client, _ = agent
    opening, closing = bracket
    content = opening * depth + ((b"1" + closing * depth) if closed else b"")
    response = post(client, content)
    if len(content) > MAX_BODY_BYTES:
        assert response.status_code == 413
    assert_contract_error(response)


@given(session=st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=120))
def test_any_session_header_is_a_session_or_a_422(
    agent: tuple[TestClient, ScriptedStrandsModel], session: str
) -> None:
    """Any printable-ASCII header value (what a client can send): the conversation id or a 422."""
    client, _ = agent
    header = session.strip()  # HTTP strips surrounding whitespace of a field value
    response = post(client, b'{"prompt": "hello"}', {SESSION_HEADER: header})
    if response.status_code != 200:
        assert_contract_error(response)
        return
    expected = header or response.json()["metadata"]["session_id"]  # empty: a new id is made
    assert response.json()["metadata"]["session_id"] == expected

"""Property-based fuzzing of every tool in tools/specs.py: arguments generated from each published JSON
schema (hypothesis-jsonschema) and arbitrary JSON that breaks it, against the tool handlers directly and
against the real tool server process over MCP (one session kept across examples).

Properties: no 5xx, no traceback, a failure is a tool error naming its cause, and a rejected call
writes nothing (the ticket store is byte-for-byte unchanged)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema

from local_stack.light_tools import build
from tests.reliability.conftest import store_state
from tests.reliability.mcp_http import RawMcpSession
from tools import specs
from tools.errors import ToolError
from tools.server import ToolServer

TOOLS = [spec for spec in specs.TOOL_SPECS if spec.target != "web_search"]  # web search needs Tavily
ACTOR = "alice"

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=8,
)


def breaking(spec: specs.ToolSpec) -> st.SearchStrategy[Any]:
    """Arguments that mostly break the schema: the tool's own keys (and `_actor`, unknown keys) with any
    JSON values, missing required keys, or not an object at all."""
    keys = st.sampled_from([*spec.input_schema["properties"], "_actor", "extra"]) | st.text(max_size=8)
    return st.dictionaries(keys, json_values, max_size=5) | json_values


def valid(spec: specs.ToolSpec, known_ticket: str) -> st.SearchStrategy[dict[str, Any]]:
    """Schema-valid arguments; for tools taking a ticket id, often the id of a ticket the actor owns."""
    generated = cast("st.SearchStrategy[dict[str, Any]]", from_schema(spec.input_schema))
    if "ticket_id" not in spec.input_schema["properties"]:
        return generated
    return generated | generated.map(lambda arguments: {**arguments, "ticket_id": known_ticket})


def seed(server: ToolServer) -> str:
    created = server.call(
        "create_ticket", {"email": "alice@example.com", "subject": "seed", "description": "seed"}, ACTOR
    )
    return str(created["ticket_id"])


# --- the handlers directly ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def direct(tmp_path_factory: pytest.TempPathFactory) -> tuple[ToolServer, Path, str]:
    db = tmp_path_factory.mktemp("direct") / "tickets.db"
    server = build(db)
    return server, db, seed(server)


def _direct_case(direct: tuple[ToolServer, Path, str], name: str, arguments: Any) -> None:
    server, db, _ = direct
    before = store_state(db)
    try:
        result = server.call(name, arguments, ACTOR)
    except ToolError as failure:
        assert str(failure), "a tool error must name its cause"
        assert store_state(db) == before, f"{name} rejected {arguments!r} but wrote to the store"
        return
    json.dumps(result)  # a result is JSON the MCP layer can send


@pytest.mark.parametrize("spec", TOOLS, ids=[spec.name for spec in TOOLS])
def test_handlers_with_schema_valid_arguments(
    direct: tuple[ToolServer, Path, str], spec: specs.ToolSpec
) -> None:
    @given(arguments=valid(spec, direct[2]))
    def check(arguments: dict[str, Any]) -> None:
        _direct_case(direct, spec.name, arguments)

    check()


@pytest.mark.parametrize("spec", TOOLS, ids=[spec.name for spec in TOOLS])
def test_handlers_with_arguments_that_break_the_schema(
    direct: tuple[ToolServer, Path, str], spec: specs.ToolSpec
) -> None:
    """The handlers get arguments the SDK already validated, but must not rely on it (a schema drift,
    another transport): anything else is a ToolError, never KeyError/TypeError."""

    @given(arguments=breaking(spec))
    def check(arguments: Any) -> None:
        _direct_case(direct, spec.name, arguments)

    check()


# --- the real tool server process over MCP -----------------------------------------------------------


@pytest.fixture(scope="module")
def session(tool_process: tuple[str, Path, Any]) -> Iterator[tuple[RawMcpSession, Path, str]]:
    url, db, _ = tool_process
    mcp = RawMcpSession(url, ACTOR)
    _, answer = mcp.call_tool(
        "create_ticket", {"email": "alice@example.com", "subject": "seed", "description": "seed"}
    )
    ticket = json.loads(answer["result"]["content"][0]["text"])["ticket_id"]
    yield mcp, db, ticket
    mcp.close()


def _served_case(session: tuple[RawMcpSession, Path, str], name: str, arguments: Any) -> None:
    mcp, db, _ = session
    before = store_state(db)
    response, answer = mcp.call_tool(name, arguments)
    assert response.status_code < 500, response.text
    assert "Traceback" not in response.text
    if response.status_code >= 400:  # refused before the tool ran (e.g. params not an object)
        assert response.json()["error"]["message"]
        assert store_state(db) == before
        return
    assert "result" in answer or "error" in answer, response.text
    result = answer.get("result", {})
    if "error" in answer or result.get("isError"):
        text = json.dumps(answer)
        assert len(text) > 20, "a tool error must name its cause"
        assert store_state(db) == before, f"{name} rejected {arguments!r} but wrote to the store"


@pytest.mark.parametrize("spec", TOOLS, ids=[spec.name for spec in TOOLS])
def test_server_with_schema_valid_arguments(
    session: tuple[RawMcpSession, Path, str], spec: specs.ToolSpec
) -> None:
    @given(arguments=valid(spec, session[2]))
    def check(arguments: dict[str, Any]) -> None:
        _served_case(session, spec.name, arguments)

    check()


@pytest.mark.parametrize("spec", TOOLS, ids=[spec.name for spec in TOOLS])
def test_server_with_arguments_that_break_the_schema(
    session: tuple[RawMcpSession, Path, str], spec: specs.ToolSpec
) -> None:
    @given(arguments=breaking(spec))
    def check(arguments: Any) -> None:
        _served_case(session, spec.name, arguments)

    check()


@given(name=st.text(max_size=30), arguments=json_values)
def test_server_with_unknown_tool_names(
    session: tuple[RawMcpSession, Path, str], name: str, arguments: Any
) -> None:
    _served_case(session, name, arguments)


jsonrpc_shaped = st.fixed_dictionaries(
    {},
    optional={
        "jsonrpc": st.just("2.0") | json_values,
        "id": st.integers() | st.text(max_size=8) | json_values,
        "method": st.sampled_from(["tools/call", "tools/list", "initialize", "ping", "resources/list"])
        | st.text(max_size=12),
        "params": json_values,
    },
)


@given(body=jsonrpc_shaped | json_values)
def test_server_with_arbitrary_jsonrpc_bodies(session: tuple[RawMcpSession, Path, str], body: Any) -> None:
    mcp, db, _ = session
    before = store_state(db)
    response = mcp.post(body)
    assert response.status_code < 500, response.text
    assert "Traceback" not in response.text
    assert store_state(db) == before


@given(content=st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_server_with_arbitrary_bytes(session: tuple[RawMcpSession, Path, str], content: bytes) -> None:
    mcp, _, _ = session
    response = mcp.post_raw(content)
    assert response.status_code < 500, response.text
    assert "Traceback" not in response.text

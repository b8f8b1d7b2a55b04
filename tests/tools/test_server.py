"""The local MCP tool server: the official MCP Python SDK client against the real process, and the
server's rules (identity, validation, web search only with a key) in-process."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

from tests.support.processes import ManagedProcess, free_port
from tools import specs
from tools.server import ToolFailure, ToolServer
from tools.tickets import SqliteTicketRepository, TicketService

REPO = Path(__file__).resolve().parents[2]


class KeywordKnowledge:
    """A minimal knowledge backend for the in-process rule tests (the real index is tested with the
    process below and in test_local_index.py)."""

    def search(self, query: str, max_results: int) -> list[Any]:
        raise AssertionError("not used")


@pytest.fixture
def server(tmp_path: Path) -> ToolServer:
    return ToolServer(TicketService(SqliteTicketRepository(tmp_path / "t.db")), KeywordKnowledge())


def test_web_search_is_absent_without_a_key(server: ToolServer) -> None:
    names = [tool.name for tool in server.list_tools()]
    assert "web_search" not in names
    assert names == [s.name for s in specs.TOOL_SPECS if s.name != "web_search"]


def test_web_search_is_listed_with_a_search_function(tmp_path: Path) -> None:
    calls: list[tuple[str, int]] = []

    def search(query: str, limit: int) -> list[dict[str, Any]]:
        calls.append((query, limit))
        return [{"title": "Nimbus", "url": "https://nimbus.example", "content": "x", "score": 0.9}]

    server = ToolServer(TicketService(SqliteTicketRepository(tmp_path / "t.db")), KeywordKnowledge(), search)
    assert "web_search" in [tool.name for tool in server.list_tools()]
    assert (
        server.call("web_search", {"query": "nimbus", "max_results": 2}, "alice")["results"][0]["url"]
        == "https://nimbus.example"
    )
    assert calls == [("nimbus", 2)]


def test_schemas_are_the_published_specs(server: ToolServer) -> None:
    for tool in server.list_tools():
        assert tool.inputSchema == specs.spec(tool.name).input_schema
        assert "_actor" not in json.dumps(tool.inputSchema)


def test_ticket_tools_need_an_actor(server: ToolServer) -> None:
    with pytest.raises(ToolFailure, match="unauthorized"):
        server.call("list_tickets", {}, None)


def test_actor_argument_from_the_model_is_ignored(server: ToolServer) -> None:
    created = server.call(
        "create_ticket",
        {"email": "a@example.com", "subject": "s", "description": "d", "_actor": "mallory"},
        "alice",
    )
    assert (
        server.call("get_ticket", {"ticket_id": created["ticket_id"]}, "alice")["ticket_id"]
        == created["ticket_id"]
    )
    with pytest.raises(ToolFailure, match="not_found"):
        server.call("get_ticket", {"ticket_id": created["ticket_id"]}, "mallory")


def test_invalid_arguments_name_the_field(server: ToolServer) -> None:
    with pytest.raises(ToolFailure, match="email"):
        server.call("create_ticket", {"email": "not-an-email", "subject": "s", "description": "d"}, "alice")


# --- the real process and the official MCP client ------------------------------------------------


@pytest.fixture(scope="module")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    state = tmp_path_factory.mktemp("tool-server")
    port = free_port()
    with ManagedProcess(
        [
            sys.executable,
            "-m",
            "tools.server",
            "--port",
            str(port),
            "--db",
            str(state / "tickets.db"),
            "--index-cache",
            str(state / "index"),
        ],
        health_url=f"http://127.0.0.1:{port}/health",
        env={"TAVILY_API_KEY": ""},
        cwd=REPO,
        log_path=state / "server.log",
        startup_timeout=90,
    ):
        yield f"http://127.0.0.1:{port}/mcp"


async def _session_run(
    url: str, actor: str | None, calls: list[tuple[str, dict[str, Any]]]
) -> tuple[list[Any], list[Any]]:
    headers = {"X-Actor-Id": actor} if actor else {}
    async with (
        httpx.AsyncClient(headers=headers, timeout=30) as http,
        streamable_http_client(url, http_client=http) as (read, write, _),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        listed = (await session.list_tools()).tools
        results = [await session.call_tool(name, arguments) for name, arguments in calls]
    return listed, results


def run(url: str, actor: str | None, *calls: tuple[str, dict[str, Any]]) -> tuple[list[Any], list[Any]]:
    return asyncio.run(_session_run(url, actor, list(calls)))


def payload(result: Any) -> dict[str, Any]:
    assert not result.isError, result.content
    return dict(json.loads(result.content[0].text))


@pytest.mark.slow
def test_official_client_lists_every_tool_with_its_schema(server_url: str) -> None:
    listed, _ = run(server_url, "alice")
    assert {tool.name: tool.inputSchema for tool in listed} == {
        s.name: s.input_schema for s in specs.TOOL_SPECS if s.name != "web_search"
    }


@pytest.mark.slow
def test_official_client_calls_every_tool(server_url: str) -> None:
    _, (search, created) = run(
        server_url,
        "alice",
        ("search_knowledge_base", {"query": "factory reset the router", "max_results": 3}),
        (
            "create_ticket",
            {
                "email": "alice@example.com",
                "subject": "No internet",
                "description": "Red light",
                "device": "Router X200",
            },
        ),
    )
    found = payload(search)
    assert found["count"] == 3 and found["results"][0]["page"] == 6
    assert found["results"][0]["title"] == "Router X200 User Manual"
    ticket_id = payload(created)["ticket_id"]
    _, (got, listed, updated, commented) = run(
        server_url,
        "alice",
        ("get_ticket", {"ticket_id": ticket_id}),
        ("list_tickets", {"status": "open"}),
        ("update_ticket_status", {"ticket_id": ticket_id, "status": "in_progress"}),
        ("add_ticket_comment", {"ticket_id": ticket_id, "comment": "Rebooted twice, still red."}),
    )
    assert payload(got)["email"] == "alice@example.com"
    assert ticket_id in json.dumps(payload(listed))
    assert payload(updated)["status"] == "in_progress"
    assert payload(commented)["comments"][-1]["comment"] == "Rebooted twice, still red."


@pytest.mark.slow
def test_schema_violations_and_missing_identity_are_tool_errors(server_url: str) -> None:
    _, (bad_schema, bad_email) = run(
        server_url,
        "alice",
        ("create_ticket", {"subject": "s", "description": "d"}),
        ("create_ticket", {"email": "nope", "subject": "s", "description": "d"}),
    )
    assert bad_schema.isError and "'email' is a required property" in bad_schema.content[0].text
    assert bad_email.isError and "email" in bad_email.content[0].text
    _, (anonymous,) = run(server_url, None, ("list_tickets", {}))
    assert anonymous.isError and "unauthorized" in anonymous.content[0].text


@pytest.mark.slow
def test_tickets_are_isolated_per_actor(server_url: str) -> None:
    _, (created,) = run(
        server_url, "carol", ("create_ticket", {"email": "c@example.com", "subject": "s", "description": "d"})
    )
    ticket_id = payload(created)["ticket_id"]
    _, (foreign,) = run(server_url, "dave", ("get_ticket", {"ticket_id": ticket_id}))
    assert foreign.isError and "not_found" in foreign.content[0].text


@pytest.mark.slow
def test_real_process_answers_hostile_requests_with_4xx(server_url: str) -> None:
    """The same edge as test_server_security.py, over a real socket: 100k nested brackets are a JSON-RPC
    parse error (the SDK alone answers 500), a rebinding Host is 421, a foreign Origin 403; the server
    keeps serving the official client afterwards."""
    headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
    deep = httpx.post(server_url, content=b"[" * 100_000 + b"]" * 100_000, headers=headers, timeout=10)
    assert deep.status_code == 400 and deep.json()["error"]["code"] == -32700, deep.text
    port = server_url.split(":")[2].split("/")[0]
    rebound = httpx.post(server_url, json={}, headers={**headers, "Host": f"evil.example:{port}"}, timeout=10)
    assert rebound.status_code == 421
    foreign = httpx.post(
        server_url, json={}, headers={**headers, "Origin": "https://evil.example"}, timeout=10
    )
    assert foreign.status_code == 403
    listed, _ = run(server_url, "alice")
    assert listed

"""The local MCP tool server: the official MCP Python SDK client against the real process, and the
server's rules (identity, validation, web search only with a key) in-process."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

from local_stack import components
from local_stack.processes import free_port
from tools import specs
from tools.errors import ErrorCode, ToolError
from tools.local_index import Chunk, Hit
from tools.server import ToolServer, error_result
from tools.tickets import SqliteTicketRepository, TicketService


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


class RecordingSearch:
    """Stands in for the Tavily client (tested against a loopback Tavily in test_web_search.py)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []

    def search(self, query: str, max_results: int) -> dict[str, Any]:
        self.calls.append((query, max_results))
        return {"query": query, "results": [{"url": "https://nimbus.example"}], "count": 1}


def test_web_search_is_listed_with_a_search_client(tmp_path: Path) -> None:
    search = RecordingSearch()
    server = ToolServer(
        TicketService(SqliteTicketRepository(tmp_path / "t.db")),
        KeywordKnowledge(),
        search,  # type: ignore[arg-type]
    )
    assert [tool.name for tool in server.list_tools()] == [s.name for s in specs.TOOL_SPECS]
    answer = server.call("web_search", {"query": " nimbus ", "max_results": 2}, None)
    assert answer["results"][0]["url"] == "https://nimbus.example"
    assert search.calls == [(" nimbus ", 2)]  # the client trims (test_web_search.py)
    assert server.call("web_search", {"query": "x"}, None)["count"] == 1
    assert search.calls[-1] == ("x", 5)


def test_schemas_are_the_published_specs(server: ToolServer) -> None:
    for tool in server.list_tools():
        assert tool.inputSchema == specs.spec(tool.name).input_schema
        assert "_actor" not in json.dumps(tool.inputSchema)


def test_ticket_tools_need_an_actor(server: ToolServer) -> None:
    with pytest.raises(ToolError) as caught:
        server.call("list_tickets", {}, None)
    assert caught.value.code == ErrorCode.UNAUTHORIZED
    assert caught.value.message == "no verified caller identity: the x-actor-id header is missing or invalid"


def test_an_actor_argument_from_the_model_is_refused(server: ToolServer) -> None:
    """The local server publishes the public schema (no `_actor`), as the MCP SDK enforces over the wire."""
    with pytest.raises(ToolError) as caught:
        server.call(
            "create_ticket",
            {"email": "a@example.com", "subject": "s", "description": "d", "_actor": "mallory"},
            "alice",
        )
    assert caught.value.message.startswith("_actor: unknown argument for create_ticket")
    assert server.call("list_tickets", {}, "alice")["count"] == 0


def test_tickets_belong_to_the_header_actor(server: ToolServer) -> None:
    created = server.call(
        "create_ticket", {"email": "a@example.com", "subject": "s", "description": "d"}, "alice"
    )
    assert server.call("get_ticket", {"ticket_id": created["ticket_id"]}, "alice") == created
    with pytest.raises(ToolError) as caught:
        server.call("get_ticket", {"ticket_id": created["ticket_id"]}, "mallory")
    assert caught.value.code == ErrorCode.NOT_FOUND


def test_invalid_arguments_name_the_field(server: ToolServer) -> None:
    with pytest.raises(ToolError) as caught:
        server.call("create_ticket", {"email": "not-an-email", "subject": "s", "description": "d"}, "alice")
    assert caught.value.message.startswith("email:")


def test_an_unknown_tool_names_the_tools_served(server: ToolServer) -> None:
    with pytest.raises(ToolError) as caught:
        server.call("web_search", {"query": "x"}, "alice")
    assert caught.value.code == ErrorCode.UNKNOWN_TOOL
    assert caught.value.message == f"tool: unknown tool 'web_search'; known tools: {server.table.names}"
    assert "web_search" not in server.table.names


class ListKnowledge:
    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []

    def search(self, query: str, max_results: int) -> list[Hit]:
        self.calls.append((query, max_results))
        chunk = Chunk(0, "Router X200 User Manual", "corpus/router.pdf", 6, "Reset", "Hold RESET.")
        return [Hit(chunk, 0.81234)]


def test_knowledge_search_answers_like_the_lambda(tmp_path: Path) -> None:
    knowledge = ListKnowledge()
    server = ToolServer(TicketService(SqliteTicketRepository(tmp_path / "t.db")), knowledge)
    answer = server.call("search_knowledge_base", {"query": "  reset  "}, None)
    assert answer == {
        "query": "reset",
        "results": [
            {
                "title": "Router X200 User Manual",
                "uri": "corpus/router.pdf",
                "page": 6,
                "section": "Reset",
                "score": 0.8123,
                "text": "Hold RESET.",
            }
        ],
        "count": 1,
    }
    assert knowledge.calls == [("reset", 5)]
    with pytest.raises(ToolError) as caught:
        server.call("search_knowledge_base", {"query": "   "}, None)
    assert caught.value.message == "query: must not be blank"
    assert knowledge.calls == [("reset", 5)]


def test_a_tool_error_is_the_lambdas_json_body_flagged_as_an_mcp_error() -> None:
    result = error_result(ToolError(ErrorCode.NOT_FOUND, "ticket_id: no ticket"))
    body = {"error": {"code": "not_found", "message": "ticket_id: no ticket"}}
    assert result.isError is True
    assert json.loads(result.content[0].text) == body  # type: ignore[union-attr]
    assert result.structuredContent == body


# --- the real process and the official MCP client ------------------------------------------------


@pytest.fixture(scope="module")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    state = tmp_path_factory.mktemp("tool-server")
    launch = components.tool_server(
        free_port(),
        db=state / "tickets.db",
        environ={**os.environ, "TAVILY_API_KEY": ""},  # web search off
        index_cache=state / "index",
        startup_timeout=90,
    )
    with launch.process(state / "server.log"):
        yield launch.url


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
    assert bad_email.isError
    assert json.loads(bad_email.content[0].text)["error"]["code"] == "invalid_argument"
    assert json.loads(bad_email.content[0].text)["error"]["message"].startswith("email:")
    _, (anonymous,) = run(server_url, None, ("list_tickets", {}))
    assert anonymous.isError
    assert json.loads(anonymous.content[0].text)["error"]["code"] == "unauthorized"


@pytest.mark.slow
def test_tickets_are_isolated_per_actor(server_url: str) -> None:
    _, (created,) = run(
        server_url, "carol", ("create_ticket", {"email": "c@example.com", "subject": "s", "description": "d"})
    )
    ticket_id = payload(created)["ticket_id"]
    _, (foreign,) = run(server_url, "dave", ("get_ticket", {"ticket_id": ticket_id}))
    assert foreign.isError and json.loads(foreign.content[0].text)["error"]["code"] == "not_found"


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


# --- the MCP transport in process (Starlette TestClient, the real app and SDK) ----------------------------


def _mcp_call(client: Any, headers: dict[str, str], name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    base = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream", **headers}
    init = client.post(
        "/mcp",
        json={
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-11-25",
                "capabilities": {},
                "clientInfo": {"name": "t", "version": "1"},
            },
        },
        headers=base,
    )
    session = {**base, "mcp-session-id": init.headers["mcp-session-id"]}
    client.post("/mcp", json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=session)
    answer = client.post(
        "/mcp",
        json={
            "jsonrpc": "2.0",
            "id": 2,
            "method": "tools/call",
            "params": {"name": name, "arguments": arguments},
        },
        headers=session,
    )
    data = [line[len("data: ") :] for line in answer.text.splitlines() if line.startswith("data: ")]
    return dict(json.loads(data[-1])["result"])


def test_over_mcp_a_refusal_is_the_json_error_body_with_is_error(server: ToolServer) -> None:
    from starlette.testclient import TestClient

    with TestClient(server.build_app(), base_url="http://127.0.0.1:8765") as client:
        refused = _mcp_call(client, {}, "list_tickets", {})
        answered = _mcp_call(client, {"X-Actor-Id": "alice"}, "list_tickets", {"limit": 3})
        unknown = _mcp_call(client, {"X-Actor-Id": "alice"}, "delete_ticket", {})
    assert refused["isError"] is True
    assert json.loads(refused["content"][0]["text"]) == {
        "error": {
            "code": "unauthorized",
            "message": "no verified caller identity: the x-actor-id header is missing or invalid",
        }
    }
    assert answered.get("isError") is not True
    assert json.loads(answered["content"][0]["text"]) == {"tickets": [], "count": 0}
    assert unknown["isError"] is True and "delete_ticket" in unknown["content"][0]["text"]


def test_over_mcp_an_invalid_actor_header_is_no_actor(server: ToolServer) -> None:
    from starlette.testclient import TestClient

    with TestClient(server.build_app(), base_url="http://127.0.0.1:8765") as client:
        refused = _mcp_call(client, {"X-Actor-Id": "bad actor!"}, "list_tickets", {})
    assert json.loads(refused["content"][0]["text"])["error"]["code"] == "unauthorized"


def test_main_exits_2_naming_a_missing_corpus(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from tools.server import main

    missing = tmp_path / "no-corpus"
    code = main(
        ["--db", str(tmp_path / "t.db"), "--corpus", str(missing), "--index-cache", str(tmp_path / "i")]
    )
    assert code == 2
    assert any("cannot start" in r.getMessage() and str(missing) in r.getMessage() for r in caplog.records)


def test_main_serves_the_configured_stores_on_loopback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CLI wiring in process: the real stores and index are built; uvicorn is the only stand-in."""
    import uvicorn
    from starlette.testclient import TestClient

    from tools.server import main

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.md").write_text("# Guide\n\n## Reset\n\nHold RESET for 10 seconds.\n", encoding="utf-8")
    runs: list[tuple[Any, dict[str, Any]]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: runs.append((app, options)))
    monkeypatch.setenv("TAVILY_API_KEY", " tvly-test ")
    db, cache = tmp_path / "state" / "t.db", tmp_path / "index"
    argv = ["--port", "9999", "--db", str(db), "--corpus", str(corpus), "--index-cache", str(cache)]
    assert main([*argv, "--allow-origin", "http://localhost:6274"]) == 0
    ((app, options),) = runs
    assert options == {
        "host": "127.0.0.1",
        "port": 9999,
        "log_level": "warning",
        "timeout_graceful_shutdown": 2,
    }
    assert db.exists() and len(list(cache.glob("*.npy"))) == 1
    with TestClient(app, base_url="http://127.0.0.1:9999") as client:
        health = client.get("/health", headers={"Origin": "http://localhost:6274"}).json()
        assert client.get("/health", headers={"Origin": "http://localhost:6275"}).status_code == 403
    assert health == {"status": "ok", "tools": [s.name for s in specs.TOOL_SPECS]}

"""Gateway-style tool names (`<target>___<tool>`) and tool results that carry an `error` object.

A real MCP server (FastMCP over streamable HTTP on 127.0.0.1) publishes the tools with the AgentCore
Gateway's target prefixes; the real `McpTools` client and `AgentService` run against it with the
scripted in-process model.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn
from mcp.server.fastmcp import FastMCP
from strands import tool

from agent.identity import Caller
from agent.payload import Invocation
from agent.tool_client import McpTools, StaticTools, bare_tool_name, local_headers
from local_stack.scripted_strands import Call, Say
from tests.agent.conftest import PASSAGES
from tools import specs

SESSION = "s-" + "p" * 32
CALLER = Caller("alice")
calls: list[tuple[str, str | None]] = []


def _gateway_like_server() -> FastMCP:
    server = FastMCP("gateway-like", stateless_http=True, log_level="WARNING")

    @server.tool(name="knowledge___search_knowledge_base")
    def search(query: str, max_results: int = 5) -> dict[str, Any]:
        """Search the knowledge base."""
        calls.append(("knowledge___search_knowledge_base", query))
        return {"query": query, "results": PASSAGES[:max_results], "count": len(PASSAGES[:max_results])}

    @server.tool(name="tickets___get_ticket")
    def get_ticket(ticket_id: str) -> dict[str, Any]:
        """Get a ticket."""
        calls.append(("tickets___get_ticket", ticket_id))
        return {"error": {"code": "not_found", "message": f"ticket {ticket_id} does not exist"}}

    @server.tool(name="web-search___web_search")
    def web_search(query: str) -> dict[str, Any]:
        """Search the web."""
        return {"query": query, "results": [], "count": 0}

    return server


@pytest.fixture(scope="module")
def mcp_url() -> Iterator[str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = uvicorn.Config(
        _gateway_like_server().streamable_http_app(), host="127.0.0.1", port=port, log_level="warning"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert time.monotonic() < deadline, "the MCP test server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/mcp"
    server.should_exit = True
    thread.join(10)


@pytest.fixture
def gateway_tools(mcp_url: str) -> Iterator[McpTools]:
    tools = McpTools(mcp_url, local_headers, startup_timeout=10)
    yield tools
    tools.close()


def run(service: Any, prompt: str) -> dict[str, Any]:
    return asyncio.run(service.run_turn(Invocation(prompt, SESSION, False), CALLER))


def stream(service: Any, prompt: str) -> list[dict[str, Any]]:
    async def collect() -> list[dict[str, Any]]:
        return [e async for e in service.stream_turn(Invocation(prompt, SESSION, True), CALLER)]

    return asyncio.run(collect())


@pytest.mark.parametrize(
    ("name", "bare"),
    [
        ("tickets___create_ticket", "create_ticket"),
        ("knowledge___search_knowledge_base", "search_knowledge_base"),
        ("web-search___web_search", "web_search"),
        ("search_knowledge_base", "search_knowledge_base"),
        ("a___b___c", "b___c"),
        ("dangling___", "dangling___"),
    ],
)
def test_bare_tool_name_strips_the_target_prefix(name: str, bare: str) -> None:
    assert bare_tool_name(name) == bare


def test_prefixed_tools_reach_the_model_under_their_spec_names(gateway_tools: McpTools) -> None:
    names = {t.tool_name for t in gateway_tools.tools_for(CALLER)}
    assert names == {"search_knowledge_base", "get_ticket", "web_search"}
    assert names <= {s.name for s in specs.TOOL_SPECS}


def test_prefixed_knowledge_tool_gives_bare_metadata_and_citations(make_service, model, gateway_tools):
    calls.clear()
    model.enqueue(
        Call("search_knowledge_base", {"query": "reset router"}),
        Say("Hold RESET for 10 s [Router X200 User Manual, p. 6]."),
    )
    meta = run(make_service(tools=gateway_tools), "How do I reset my router?")["metadata"]
    assert calls == [("knowledge___search_knowledge_base", "reset router")]  # the server got its own name
    assert [(t["name"], t["status"]) for t in meta["tools"]] == [("search_knowledge_base", "success")]
    # the answer cites p. 6 of the manual; p. 3 of the same manual is retrieved, not cited (agent/citations.py)
    assert [(c["page"], c["cited"]) for c in meta["citations"]] == [(6, True), (3, False)]
    assert meta["citations"][0]["text"] == PASSAGES[0]["text"]


def test_error_object_in_a_prefixed_result_is_a_failed_call(make_service, model, gateway_tools):
    model.enqueue(Call("get_ticket", {"ticket_id": "TCK-00000000"}), Say("That ticket does not exist."))
    events = stream(make_service(tools=gateway_tools), "status of TCK-00000000?")
    start = next(e for e in events if e["type"] == "tool_start")
    end = next(e for e in events if e["type"] == "tool_end")
    assert start["name"] == "get_ticket" and end["name"] == "get_ticket"
    assert end["status"] == "error"
    assert end["error"] == "not_found: ticket TCK-00000000 does not exist"
    record = events[-1]["metadata"]["tools"][0]
    assert (record["name"], record["status"], record["error"]) == (
        "get_ticket",
        "error",
        "not_found: ticket TCK-00000000 does not exist",
    )


@tool(name="knowledge___search_knowledge_base")
def prefixed_search(query: str) -> str:
    """Search the knowledge base.

    Args:
        query: What to look for.
    """
    return json.dumps({"results": PASSAGES})


def test_names_the_model_sees_prefixed_are_reported_bare(make_service, model):
    """When the model does call a prefixed name (e.g. two targets share a tool name), reports are bare."""
    model.enqueue(
        Call("knowledge___search_knowledge_base", {"query": "reset"}),
        Say("See the Router X200 User Manual."),
    )
    events = stream(make_service(tools=StaticTools([prefixed_search])), "reset?")
    assert [e["name"] for e in events if e["type"] in ("tool_start", "tool_end")] == [
        "search_knowledge_base",
        "search_knowledge_base",
    ]
    meta = events[-1]["metadata"]
    assert meta["tools"][0]["name"] == "search_knowledge_base"
    assert len(meta["citations"]) == 2  # matched as a knowledge tool


@tool
def failing_lookup(ticket_id: str) -> str:
    """Look up a ticket.

    Args:
        ticket_id: The ticket id.
    """
    return json.dumps({"error": "service temporarily unavailable"})


@tool
def listing(query: str) -> str:
    """List things whose payload merely mentions errors below the top level.

    Args:
        query: Anything.
    """
    return json.dumps({"results": [{"title": "x", "error": "nested"}], "count": 1})


def test_string_error_is_the_message_and_nested_error_keys_are_not_failures(make_service, model):
    model.enqueue(
        Call("failing_lookup", {"ticket_id": "TCK-1"}),
        Call("listing", {"query": "q"}),
        Say("Done."),
    )
    tools = run(make_service(tools=StaticTools([failing_lookup, listing])), "go")["metadata"]["tools"]
    assert [(t["name"], t["status"], t["error"]) for t in tools] == [
        ("failing_lookup", "error", "service temporarily unavailable"),
        ("listing", "success", None),
    ]

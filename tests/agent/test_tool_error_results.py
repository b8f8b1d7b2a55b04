"""Tool calls that fail on the tool server's side: an MCP tool that raises answers a result with
`isError: true` (MCP spec, "Tools": tool execution errors are reported in the result, not as protocol
errors), and no exception reaches the agent. The turn's `metadata.tools` must still say which tool
failed and why, from the result's text. A real FastMCP server on 127.0.0.1, the real McpTools client,
the real AgentService with the scripted in-process model."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from mcp.server.fastmcp import FastMCP

from agent.identity import Caller
from agent.payload import Invocation
from agent.tool_client import McpTools, local_headers
from local_stack.scripted_strands import Call, Say
from tests.agent.http_support import serve_asgi

LIMIT = 15.0
SESSION = "s-" + "r" * 32


@pytest.fixture(scope="module")
def mcp_url() -> Iterator[str]:
    server = FastMCP("failing-tools", stateless_http=True, log_level="CRITICAL")

    @server.tool()
    def get_ticket(ticket_id: str) -> str:
        """Get a ticket."""
        raise ValueError(f"ticket {ticket_id} is archived")

    @server.tool()
    def long_failure(size: int) -> str:
        """Fail with a long message."""
        raise RuntimeError("y" * size)

    with serve_asgi(server.streamable_http_app(), what="the MCP test server", timeout=LIMIT) as base:
        yield f"{base}/mcp"


@pytest.fixture
def tools(mcp_url: str) -> Iterator[McpTools]:
    source = McpTools(mcp_url, local_headers, startup_timeout=10)
    yield source
    source.close()


def run(service: Any) -> dict[str, Any]:
    return asyncio.run(service.run_turn(Invocation("look it up", SESSION, False), Caller("alice")))


def test_a_tool_error_result_names_the_tool_and_the_servers_message(make_service, model, tools):
    model.enqueue(Call("get_ticket", {"ticket_id": "TCK-1"}), Say("That ticket is archived."))
    body = run(make_service(tools=tools))
    assert body["answer"] == "That ticket is archived."
    (record,) = body["metadata"]["tools"]
    assert (record["name"], record["status"]) == ("get_ticket", "error")
    assert "ticket TCK-1 is archived" in record["error"]
    assert record["error"] == record["error"].strip()


def test_a_tool_error_text_is_bounded(make_service, model, tools):
    model.enqueue(Call("long_failure", {"size": 3000}), Say("It failed."))
    (record,) = run(make_service(tools=tools))["metadata"]["tools"]
    assert record["status"] == "error"
    assert len(record["error"]) == 500 and record["error"].endswith("y" * 100)

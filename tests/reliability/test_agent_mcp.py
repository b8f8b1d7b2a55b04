"""Issue 11 defect 4 (agent side) and issue 13 defect 4 (tool timeouts): the agent's MCP client against
a real FastMCP server over streamable HTTP on loopback.

The `mcp` 1.30 client opens with 2025-11-25; the AgentCore tool gateway is configured with the versions
AWS documents. A thin ASGI layer in front of the real server makes it answer `initialize` with a given
version (by asking the server for exactly that version), with a version the client does not support,
or with a failure; the real `McpTools` and `AgentService` then run a turn.
"""

from __future__ import annotations

# ruff: noqa: F811  (the fixtures of tests/agent/conftest.py are imported and used as parameters)
import asyncio
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn
from mcp.server.fastmcp import FastMCP
from starlette.testclient import TestClient

from agent.identity import Caller
from agent.main import create_app
from agent.payload import Invocation
from agent.tool_client import McpTools, ToolsUnavailable, local_headers
from local_stack.scripted_strands import Call, Say
from tests.agent.conftest import make_service, model  # noqa: F401  (fixtures)
from tests.agent.http_support import LOCAL, LOCAL_URL, free_port

CALLER = Caller("alice")
SESSION = "s-" + "m" * 32
GATEWAY_VERSIONS = ["2025-03-26", "2025-06-18", "2025-11-25"]


def _server() -> FastMCP:
    server = FastMCP("gateway-like", stateless_http=True, json_response=True, log_level="WARNING")

    @server.tool(name="tickets___get_ticket")
    def get_ticket(ticket_id: str) -> dict[str, Any]:
        """Get a ticket."""
        return {"ticket_id": ticket_id, "status": "open"}

    @server.tool(name="tickets___slow_report")
    async def slow_report(ticket_id: str) -> dict[str, Any]:
        """A report that takes far too long."""
        await asyncio.sleep(20)
        return {"ticket_id": ticket_id}

    return server


class Negotiation:
    """ASGI layer in front of the real MCP server: controls what `initialize` answers."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.mode = "answer"  # answer | unsupported | jsonrpc_error | http_401
        self.version = "2025-06-18"
        self.header_versions: list[str | None] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        request = json.loads(body) if body else {}
        initialize = isinstance(request, dict) and request.get("method") == "initialize"
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        if not initialize and isinstance(request, dict) and "method" in request:
            self.header_versions.append(headers.get("mcp-protocol-version"))
        if initialize and self.mode == "http_401":
            await self._reply(send, 401, {"error": "invalid_token"})
            return
        if initialize and self.mode == "jsonrpc_error":
            error = {
                "code": -32602,
                "message": "Unsupported protocol version",
                "data": {"supported": ["2024-10-07"]},
            }
            await self._reply(send, 200, {"jsonrpc": "2.0", "id": request["id"], "error": error})
            return
        if initialize and self.mode == "answer":
            request["params"]["protocolVersion"] = self.version  # the real server then answers this version
            body = json.dumps(request).encode()
        sent = False

        async def replay() -> Any:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        if initialize and self.mode == "unsupported":
            await self.app(scope, replay, self._rewriting(send))
        else:
            await self.app(scope, replay, send)

    def _rewriting(self, send: Any) -> Any:
        start: dict[str, Any] = {}

        async def rewrite(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
                return
            answer = json.loads(message["body"])
            answer["result"]["protocolVersion"] = "2099-01-01"
            data = json.dumps(answer).encode()
            headers = [(k, v) for k, v in start["headers"] if k.lower() != b"content-length"]
            await send({**start, "headers": [*headers, (b"content-length", str(len(data)).encode())]})
            await send({"type": "http.response.body", "body": data, "more_body": False})

        return rewrite

    @staticmethod
    async def _reply(send: Any, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(data)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": data, "more_body": False})


@pytest.fixture(scope="module")
def gateway() -> Iterator[tuple[str, Negotiation]]:
    layer = Negotiation(_server().streamable_http_app())
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(layer, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert time.monotonic() < deadline, "the MCP test server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/mcp", layer
    server.should_exit = True
    thread.join(10)


@pytest.fixture
def negotiation(gateway):
    url, layer = gateway
    layer.mode, layer.header_versions = "answer", []
    tools = McpTools(url, local_headers, startup_timeout=10, tool_timeout_seconds=0.5)
    yield tools, layer
    tools.close()


@pytest.mark.parametrize("version", GATEWAY_VERSIONS)
def test_the_agent_lists_tools_with_each_gateway_version(negotiation, version):
    tools, layer = negotiation
    layer.version = version
    listed = tools.tools_for(CALLER)
    assert sorted(t.tool_name for t in listed) == ["get_ticket", "slow_report"]
    assert layer.header_versions and set(layer.header_versions) == {version}


@pytest.mark.parametrize("mode", ["unsupported", "jsonrpc_error", "http_401"])
def test_a_session_that_cannot_be_negotiated_is_tools_unavailable(negotiation, mode):
    tools, layer = negotiation
    layer.mode = mode
    with pytest.raises(ToolsUnavailable):
        tools.tools_for(CALLER)


@pytest.mark.parametrize("mode", ["unsupported", "jsonrpc_error", "http_401"])
def test_the_user_sees_tools_unavailable_never_a_silent_answer(negotiation, make_service, model, mode):
    tools, layer = negotiation
    layer.mode = mode
    with TestClient(create_app(LOCAL, service=make_service(tools=tools)), base_url=LOCAL_URL) as client:
        response = client.post("/invocations", json={"prompt": "what is my ticket status?"})
        with client.stream("POST", "/invocations", json={"prompt": "again", "stream": True}) as streamed:
            frames = [json.loads(line[6:]) for line in streamed.iter_lines() if line.startswith("data: ")]
    assert response.status_code == 502 and response.json()["error"]["code"] == "tools_unavailable"
    assert frames[-1]["type"] == "error" and frames[-1]["code"] == "tools_unavailable"
    assert model.calls == 0, "the model answered without the tools"


def test_an_unreachable_tool_server_still_degrades_to_no_tools():
    tools = McpTools(f"http://127.0.0.1:{free_port()}/mcp", local_headers, startup_timeout=3)
    assert tools.tools_for(CALLER) == []


def test_a_tool_call_is_bounded_by_the_tool_timeout_and_named(negotiation, make_service, model):
    tools, _ = negotiation
    model.enqueue(Call("slow_report", {"ticket_id": "TCK-1"}), Say("The report tool timed out, sorry."))
    service = make_service(tools=tools, turn_deadline_seconds=10)
    started = time.monotonic()
    answer = asyncio.run(service.run_turn(Invocation("report?", SESSION, False), CALLER))
    elapsed = time.monotonic() - started
    call = answer["metadata"]["tools"][0]
    assert call["name"] == "slow_report" and call["status"] == "error"
    assert "slow_report timed out after 0.5 s" in call["error"]
    assert elapsed < 5, f"the turn waited {elapsed:.1f} s on a 0.5 s tool timeout"
    assert answer["answer"] == "The report tool timed out, sorry."
    # The session survives a timed-out call: the next call on it works.
    model.enqueue(Call("get_ticket", {"ticket_id": "TCK-2"}), Say("Open."))
    again = asyncio.run(service.run_turn(Invocation("status?", SESSION, False), CALLER))
    assert again["metadata"]["tools"][0]["status"] == "success"


def _start(port: int) -> tuple[uvicorn.Server, threading.Thread]:
    server = uvicorn.Server(
        uvicorn.Config(_server().streamable_http_app(), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert time.monotonic() < deadline, "the MCP test server did not start"
        time.sleep(0.05)
    return server, thread


def test_a_session_that_broke_is_reopened_on_the_next_turn(make_service, model):
    """The tool server goes away between turns: the call fails as a transport failure (typed, not by its
    text), the session is dropped, and the next turn opens a new one."""
    port = free_port()
    server, thread = _start(port)
    tools = McpTools(
        f"http://127.0.0.1:{port}/mcp", local_headers, startup_timeout=10, tool_timeout_seconds=5
    )
    service = make_service(tools=tools, turn_deadline_seconds=20)

    def turn(index: int) -> dict[str, Any]:
        model.enqueue(Call("get_ticket", {"ticket_id": f"TCK-{index}"}), Say(f"Answer {index}."))
        answer = asyncio.run(service.run_turn(Invocation(f"ticket {index}?", SESSION, False), CALLER))
        assert answer["answer"] == f"Answer {index}."
        return dict(answer["metadata"]["tools"][0])

    try:
        assert turn(1)["status"] == "success"
        server.should_exit = True
        thread.join(10)
        failed = turn(2)
        assert failed["status"] == "error" and "connection broke" in failed["error"]
        server, thread = _start(port)
        assert turn(3)["status"] == "success"
    finally:
        tools.close()
        server.should_exit = True
        thread.join(10)

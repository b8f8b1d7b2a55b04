"""`AgentService.prewarm`: the one-off costs paid before the first turn. Local mode knows its caller, so
the MCP session is opened and its tools listed; deployed mode does not, so only the tool gateway's
machine token is fetched. The model is never called."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from mcp.server.fastmcp import FastMCP

from agent.identity import Caller
from agent.payload import Invocation
from agent.tool_client import (
    BearerFromProvider,
    ClientCredentialsToken,
    McpTools,
    gateway_headers,
    local_headers,
)
from local_stack.scripted_strands import Say
from tests.agent.http_support import serve_asgi

LIMIT = 15.0
list_requests: list[str] = []  # X-Actor-Id of each tools/list the server answered


@pytest.fixture(scope="module")
def mcp_url() -> Iterator[str]:
    server = FastMCP("prewarm-tools", stateless_http=True, log_level="WARNING")

    @server.tool()
    def lookup(query: str) -> str:
        """Look something up."""
        return query

    inner = server.streamable_http_app()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            messages = []
            more = True
            while more:
                message = await receive()
                messages.append(message)
                more = message.get("more_body", False)
            if b'"tools/list"' in b"".join(m.get("body", b"") for m in messages):
                headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
                list_requests.append(headers.get("x-actor-id", ""))

            async def replay() -> Any:
                return messages.pop(0) if messages else await receive()

            await inner(scope, replay, send)
            return
        await inner(scope, receive, send)

    with serve_asgi(app, what="the MCP test server", timeout=LIMIT) as base:
        yield f"{base}/mcp"


class WarmableFactory:
    """Stands in for GatewayModelFactory: counts prewarm calls, hands out the scripted model."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.prewarmed = 0

    def prewarm(self) -> None:
        self.prewarmed += 1

    def __call__(self) -> Any:
        return self.model


def token_provider(requests: list[httpx.Request]) -> ClientCredentialsToken:
    def endpoint(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return httpx.Response(200, json={"access_token": "machine", "expires_in": 3600})

    return ClientCredentialsToken(
        "https://auth.example/oauth2/token",
        "c",
        "s",
        "scope",
        http=httpx.Client(transport=httpx.MockTransport(endpoint)),
    )


def test_local_prewarm_lists_the_callers_tools_once_and_the_first_turn_reuses_them(
    make_service, model, mcp_url
):
    list_requests.clear()
    factory = WarmableFactory(model)
    tools = McpTools(mcp_url, local_headers, startup_timeout=10)
    try:
        service = make_service(model_factory=factory, tools=tools)
        service.prewarm(Caller("local-user"))
        assert factory.prewarmed == 1
        assert list_requests == ["local-user"]
        model.enqueue(Say("ready"))
        answer = asyncio.run(service.run_turn(Invocation("hi", "s-" + "w" * 32, False), Caller("local-user")))
        assert answer["answer"] == "ready"
        assert list_requests == ["local-user"]  # the session and tool list from the warm-up were reused
    finally:
        tools.close()


def test_deployed_prewarm_fetches_the_machine_token_and_opens_no_session(make_service, model, mcp_url):
    list_requests.clear()
    requests: list[httpx.Request] = []
    tools = McpTools(mcp_url, gateway_headers, auth=BearerFromProvider(token_provider(requests)))
    try:
        service = make_service(model_factory=WarmableFactory(model), tools=tools)
        service.prewarm(None)
        assert len(requests) == 1
        assert list_requests == []
    finally:
        tools.close()


def test_prewarm_works_with_plain_factories_and_tool_sources(make_service, model):
    service = make_service()  # conftest: a lambda factory (no prewarm) and StaticTools (no prewarm_auth)
    service.prewarm(None)
    service.prewarm(Caller("local-user"))
    model.enqueue(Say("fine"))
    assert (
        asyncio.run(service.run_turn(Invocation("hi", "s-" + "v" * 32, False), Caller("a")))["answer"]
        == "fine"
    )

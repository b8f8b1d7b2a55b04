"""The tool client's failure handling: how a failed tool call is classified (by exception type and MCP
error code, never by text), the gateway's machine token (OAuth client credentials: refresh boundary,
malformed answers), and dropping a caller's MCP session so the next turn opens a new one.

The token endpoint is Cognito's `/oauth2/token` (https://docs.aws.amazon.com/cognito/latest/developerguide/token-endpoint.html):
a form-encoded POST with HTTP Basic client authentication, answering `access_token` and `expires_in`.
It is an httpx MockTransport here; the MCP server is a real FastMCP server on 127.0.0.1.
"""

from __future__ import annotations

import base64
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import anyio
import httpx
import pytest
from mcp.server.fastmcp import FastMCP
from mcp.shared.exceptions import McpError
from mcp.types import ErrorData
from strands.types.exceptions import MCPClientInitializationError

from agent.identity import Caller
from agent.tool_client import (
    BearerFromProvider,
    ClientCredentialsToken,
    McpTools,
    ToolCallError,
    ToolTimeout,
    ToolTransportError,
    classify_call_failure,
    local_headers,
)
from tests.agent.http_support import serve_asgi

LIMIT = 15.0
initializations: list[str] = []  # X-Actor-Id of every MCP `initialize` the server received


# --- call failures ---------------------------------------------------------------------------------


def mcp_error(code: int, message: str = "scripted") -> McpError:
    return McpError(ErrorData(code=code, message=message))


def caused_by(cause: BaseException, outer: BaseException | None = None) -> BaseException:
    outer = outer or RuntimeError("wrapper")
    outer.__cause__ = cause
    return outer


@pytest.mark.parametrize(
    "error",
    [
        mcp_error(408, "Timed out while waiting for response"),
        caused_by(mcp_error(408)),
        ExceptionGroup("task group", [ValueError("x"), mcp_error(408)]),
    ],
)
def test_an_mcp_request_timeout_is_a_tool_timeout(error):
    failure = classify_call_failure("search_knowledge_base", 2.5, error)
    assert type(failure) is ToolTimeout
    assert str(failure) == "tool search_knowledge_base timed out after 2.5 s"


@pytest.mark.parametrize(
    "error",
    [
        mcp_error(-32000, "Connection closed"),
        httpx.ReadError("peer closed"),
        caused_by(httpx.RemoteProtocolError("incomplete chunked read")),
        anyio.ClosedResourceError(),
        anyio.BrokenResourceError(),
        anyio.EndOfStream(),
        ConnectionResetError("reset"),
        MCPClientInitializationError("the client session is not running"),
        ExceptionGroup("task group", [anyio.ClosedResourceError()]),
    ],
)
def test_a_broken_transport_is_a_transport_error(error):
    failure = classify_call_failure("create_ticket", 20, error)
    assert type(failure) is ToolTransportError
    assert str(failure) == f"tool create_ticket failed: the tool server connection broke ({error})"


def test_any_error_after_the_session_ended_is_a_transport_error():
    failure = classify_call_failure(
        "create_ticket", 20, RuntimeError("Connection closed"), session_alive=False
    )
    assert type(failure) is ToolTransportError
    assert str(failure) == "tool create_ticket failed: the tool server connection broke (Connection closed)"


@pytest.mark.parametrize(
    "error",
    [RuntimeError("Connection closed"), ValueError("timed out"), mcp_error(-32602, "Invalid params")],
)
def test_other_errors_with_a_live_session_are_plain_call_errors_whatever_their_text(error):
    failure = classify_call_failure("get_ticket", 20, error)
    assert type(failure) is ToolCallError
    assert str(failure) == f"tool get_ticket failed: {error}"


def test_failure_messages_are_bounded_to_500_characters():
    long = "x" * 2000
    for failure in (
        classify_call_failure("t", 1, RuntimeError(long)),
        classify_call_failure("t", 1, httpx.ReadError(long)),
        classify_call_failure("t", 1, RuntimeError(long), session_alive=False),
    ):
        assert len(str(failure)) == 500 and str(failure).startswith("tool t failed: ")


# --- the machine token ---------------------------------------------------------------------------


class TokenEndpoint:
    def __init__(self, *answers: httpx.Response) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


def provider(endpoint: TokenEndpoint, now: list[float]) -> ClientCredentialsToken:
    return ClientCredentialsToken(
        "https://auth.example/oauth2/token",
        "client-id",
        "client-secret",
        "agentic-foundation/tools.invoke",
        clock=lambda: now[0],
        http=httpx.Client(transport=httpx.MockTransport(endpoint)),
    )


def test_the_token_request_is_a_form_post_with_basic_client_auth():
    endpoint = TokenEndpoint(httpx.Response(200, json={"access_token": "t1", "expires_in": 3600}))
    assert provider(endpoint, [0.0]).get() == "t1"
    (request,) = endpoint.requests
    assert request.method == "POST" and str(request.url) == "https://auth.example/oauth2/token"
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert [k for k in request.headers if k.lower() == "content-type"] == ["content-type"]
    assert (
        request.headers["authorization"] == "Basic " + base64.b64encode(b"client-id:client-secret").decode()
    )
    assert request.content == b"grant_type=client_credentials&scope=agentic-foundation%2Ftools.invoke"


def test_the_token_is_refreshed_exactly_at_the_refresh_margin():
    now = [1000.0]
    endpoint = TokenEndpoint(
        httpx.Response(200, json={"access_token": "first", "expires_in": 600}),
        httpx.Response(200, json={"access_token": "second", "expires_in": 600}),
    )
    tokens = provider(endpoint, now)
    assert tokens.get() == "first"
    now[0] = 1000.0 + 600 - 120 - 0.001  # just before expiry minus the 120 s margin: cached
    assert tokens.get() == "first" and len(endpoint.requests) == 1
    now[0] = 1000.0 + 600 - 120  # at the margin: refreshed
    assert tokens.get() == "second" and len(endpoint.requests) == 2


def test_a_token_without_expires_in_is_assumed_to_last_an_hour():
    now = [0.0]
    endpoint = TokenEndpoint(
        httpx.Response(200, json={"access_token": "first"}),
        httpx.Response(200, json={"access_token": "second"}),
    )
    tokens = provider(endpoint, now)
    assert tokens.get() == "first"
    now[0] = 3600 - 120 - 0.001
    assert tokens.get() == "first"
    now[0] = 3600 - 120
    assert tokens.get() == "second"


@pytest.mark.parametrize(
    "body",
    [{"token_type": "Bearer"}, {"access_token": ""}, {"access_token": 12345}, {"access_token": None}],
)
def test_an_answer_without_a_usable_access_token_is_refused(body):
    tokens = provider(TokenEndpoint(httpx.Response(200, json=body)), [0.0])
    with pytest.raises(RuntimeError) as caught:
        tokens.get()
    assert str(caught.value) == "token endpoint answered without an access_token"


@pytest.mark.parametrize("status", [400, 401, 500])
def test_an_http_error_names_the_status(status):
    tokens = provider(TokenEndpoint(httpx.Response(status, json={"error": "invalid_client"})), [0.0])
    with pytest.raises(RuntimeError) as caught:
        tokens.get()
    assert str(caught.value) == f"token endpoint answered HTTP {status} for the gateway client"


def test_prewarm_auth_fetches_the_token_once_before_the_first_call():
    endpoint = TokenEndpoint(httpx.Response(200, json={"access_token": "machine", "expires_in": 3600}))
    auth = BearerFromProvider(provider(endpoint, [0.0]))
    tools = McpTools("http://127.0.0.1:9/mcp", local_headers, auth=auth)
    tools.prewarm_auth()
    assert len(endpoint.requests) == 1
    seen: list[str] = []

    def gateway(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["Authorization"])
        return httpx.Response(200)

    client = httpx.Client(auth=auth, transport=httpx.MockTransport(gateway))
    client.get("https://gw.example/mcp")
    assert seen == ["Bearer machine"] and len(endpoint.requests) == 1


def test_prewarm_auth_failure_waits_for_the_first_turn(caplog):
    endpoint = TokenEndpoint(httpx.Response(503, json={}))
    tools = McpTools(
        "http://127.0.0.1:9/mcp", local_headers, auth=BearerFromProvider(provider(endpoint, [0.0]))
    )
    with caplog.at_level(logging.WARNING, logger="agent.tool_client"):
        tools.prewarm_auth()  # does not raise
    assert len(endpoint.requests) == 1
    warned = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert warned and any("HTTP 503" in str(arg) for r in warned for arg in r.args or ())


def test_prewarm_auth_without_a_token_provider_does_nothing():
    McpTools("http://127.0.0.1:9/mcp", local_headers).prewarm_auth()
    McpTools("http://127.0.0.1:9/mcp", local_headers, auth=httpx.BasicAuth("a", "b")).prewarm_auth()


# --- sessions -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mcp_url() -> Iterator[str]:
    server = FastMCP("session-tools", stateless_http=True, log_level="WARNING")

    @server.tool()
    def echo(text: str) -> str:
        """Echo the text."""
        return text

    inner = server.streamable_http_app()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            body = b""
            more = True
            messages = []
            while more:
                message = await receive()
                messages.append(message)
                body += message.get("body", b"")
                more = message.get("more_body", False)
            if b'"initialize"' in body:
                headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
                initializations.append(headers.get("x-actor-id", ""))

            async def replay() -> Any:
                return messages.pop(0) if messages else await receive()

            await inner(scope, replay, send)
            return
        await inner(scope, receive, send)

    with serve_asgi(app, what="the MCP test server", timeout=LIMIT) as base:
        yield f"{base}/mcp"


def test_a_discarded_session_is_stopped_and_the_next_turn_opens_a_new_one(mcp_url):
    initializations.clear()
    tools = McpTools(mcp_url, local_headers, startup_timeout=10)
    alice, bob = Caller("alice"), Caller("bob")
    try:
        assert [t.tool_name for t in tools.tools_for(alice)] == ["echo"]
        tools.tools_for(bob)
        tools.tools_for(alice)  # reused: no new session
        assert initializations == ["alice", "bob"]
        before = threading.active_count()
        tools.discard(alice)
        deadline = time.monotonic() + LIMIT
        while threading.active_count() >= before:  # alice's MCP client thread ends
            assert time.monotonic() < deadline, "the discarded MCP client was not stopped"
            time.sleep(0.02)
        tools.discard(Caller("nobody"))  # unknown caller: nothing happens
        tools.tools_for(bob)  # bob's session was kept
        assert initializations == ["alice", "bob"]
        tools.tools_for(alice)
        assert initializations == ["alice", "bob", "alice"]
        open_threads = threading.active_count()
        tools.close()  # stops every session
        deadline = time.monotonic() + LIMIT
        while threading.active_count() > open_threads - 2:
            assert time.monotonic() < deadline, "close() left MCP clients running"
            time.sleep(0.02)
        tools.tools_for(bob)
        assert initializations == ["alice", "bob", "alice", "bob"]
    finally:
        tools.close()


def test_deployed_tool_headers_need_the_callers_token():
    from agent.tool_client import gateway_headers

    assert gateway_headers(Caller("u1", token="tok")) == {"X-Actor-Token": "tok"}
    for caller in (Caller("u1"), Caller("u1", token="")):
        with pytest.raises(ValueError, match=r"^deployed tool calls need the caller's access token$"):
            gateway_headers(caller)

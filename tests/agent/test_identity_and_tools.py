"""Caller identity from the forwarded JWT, and the tool gateway's credentials (token refresh, headers)."""

from __future__ import annotations

import base64
import json
import time

import httpx
import pytest

from agent.errors import ApiError
from agent.identity import Caller, caller_from_authorization
from agent.tool_client import (
    BearerFromProvider,
    ClientCredentialsToken,
    McpTools,
    gateway_headers,
    local_headers,
)


def jwt(claims: object) -> str:
    def part(value: object) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'RS256', 'kid': 'k'})}.{part(claims)}.c2ln"


def test_actor_is_the_sub_claim() -> None:
    token = jwt({"sub": "3f1c-uuid", "token_use": "access", "client_id": "abc"})
    caller = caller_from_authorization(f"Bearer {token}")
    assert caller.actor_id == "3f1c-uuid" and caller.token == token


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "Basic abc",
        "Bearer",
        "Bearer a.b",
        f"Bearer {jwt(['not', 'an', 'object'])}",
        f"Bearer {jwt({'sub': ''})}",
        f"Bearer {jwt({'sub': 'has space'})}",
        "Bearer a.%%%.c",
    ],
)
def test_missing_or_malformed_tokens_are_401(header: str | None) -> None:
    with pytest.raises(ApiError) as caught:
        caller_from_authorization(header)
    assert caught.value.status == 401 and caught.value.code == "unauthorized"


def test_tool_headers_carry_the_identity() -> None:
    assert local_headers(Caller("local-user")) == {"X-Actor-Id": "local-user"}
    assert gateway_headers(Caller("u1", token="tok")) == {"X-Actor-Token": "tok"}
    with pytest.raises(ValueError, match="access token"):
        gateway_headers(Caller("u1"))


def test_client_credentials_token_is_refreshed_before_expiry() -> None:
    now = [1000.0]
    requests: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return httpx.Response(
            200, json={"access_token": f"token-{len(requests)}", "expires_in": 3600, "token_type": "Bearer"}
        )

    provider = ClientCredentialsToken(
        "https://auth.example/oauth2/token",
        "client",
        "secret",
        "agentic-foundation/tools.invoke",
        clock=lambda: now[0],
        http=httpx.Client(transport=httpx.MockTransport(handler)),
    )
    assert provider.get() == "token-1"
    now[0] += 3000  # 10 minutes before expiry: still valid
    assert provider.get() == "token-1"
    now[0] += 500  # within the 2-minute refresh margin
    assert provider.get() == "token-2"
    body = requests[0].content.decode()
    assert "grant_type=client_credentials" in body and "scope=agentic-foundation%2Ftools.invoke" in body
    assert requests[0].headers["Authorization"] == "Basic " + base64.b64encode(b"client:secret").decode()


def test_token_endpoint_failure_is_clear() -> None:
    provider = ClientCredentialsToken(
        "https://auth.example/oauth2/token",
        "client",
        "secret",
        "scope",
        http=httpx.Client(
            transport=httpx.MockTransport(
                lambda request: httpx.Response(400, json={"error": "invalid_client"})
            )
        ),
    )
    with pytest.raises(RuntimeError, match="HTTP 400"):
        provider.get()


def test_bearer_auth_adds_the_current_token() -> None:
    provider = ClientCredentialsToken(
        "https://auth.example/t",
        "c",
        "s",
        "scope",
        http=httpx.Client(
            transport=httpx.MockTransport(
                lambda r: httpx.Response(200, json={"access_token": "machine", "expires_in": 60})
            )
        ),
    )
    seen: list[str] = []

    def gateway(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["Authorization"])
        return httpx.Response(200)

    client = httpx.Client(auth=BearerFromProvider(provider), transport=httpx.MockTransport(gateway))
    client.get("https://gw.example/mcp")
    assert seen == ["Bearer machine"]


def test_unreachable_tool_server_gives_no_tools_quickly() -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    tools = McpTools(f"http://127.0.0.1:{port}/mcp", local_headers, startup_timeout=3)
    started = time.monotonic()
    assert tools.tools_for(Caller("local-user")) == []
    assert time.monotonic() - started < 5
    tools.close()

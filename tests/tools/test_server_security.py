"""The tool server's HTTP edge (tools/server.py): hostile bodies get 4xx JSON-RPC errors, and a web page
cannot drive it (Host allow-list against DNS rebinding, foreign Origin refused, JSON content type only).

In-process through Starlette's TestClient (the real app, the real MCP SDK transport); the same checks
against the real process are in test_server.py."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from tools.server import MAX_BODY_BYTES, MAX_JSON_DEPTH, ToolServer
from tools.tickets import SqliteTicketRepository, TicketService

LOOPBACK = "http://127.0.0.1:8765"
MCP_HEADERS = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
INITIALIZE: dict[str, Any] = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "test", "version": "1"},
    },
}
PARSE_ERROR = -32700


class NoKnowledge:
    def search(self, query: str, max_results: int) -> list[Any]:
        return []


def build(tmp_path: Path, **options: Any) -> Any:
    return ToolServer(TicketService(SqliteTicketRepository(tmp_path / "t.db")), NoKnowledge()).build_app(
        **options
    )


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(build(tmp_path), base_url=LOOPBACK) as test_client:
        yield test_client


def sse_json(text: str) -> dict[str, Any]:
    data = [line[len("data: ") :] for line in text.splitlines() if line.startswith("data: ")]
    return dict(json.loads(data[-1]))


def nested_list(depth: int) -> Any:
    value: Any = []
    for _ in range(depth - 1):
        value = [value]
    return value


def assert_jsonrpc_error(response: Any, status: int, code: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["jsonrpc"] == "2.0" and body["error"]["code"] == code, body
    assert "Traceback" not in response.text
    return str(body["error"]["message"])


def assert_still_serves(client: TestClient) -> None:
    response = client.post("/mcp", json=INITIALIZE, headers=MCP_HEADERS)
    assert response.status_code == 200, response.text
    assert sse_json(response.text)["result"]["serverInfo"]["name"] == "agentic-foundation-local-tools"


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"[" * 100_000, id="100k-open-brackets"),
        pytest.param(b"[" * 100_000 + b"]" * 100_000, id="100k-balanced-brackets"),
        pytest.param(b'{"a":' * 30_000 + b"1" + b"}" * 30_000, id="30k-nested-objects"),
        pytest.param(
            json.dumps({**INITIALIZE, "params": {"x": nested_list(MAX_JSON_DEPTH)}}).encode(),
            id="just-over-the-depth-limit",
        ),
    ],
)
def test_deeply_nested_json_is_a_parse_error_not_a_500(client: TestClient, body: bytes) -> None:
    message = assert_jsonrpc_error(client.post("/mcp", content=body, headers=MCP_HEADERS), 400, PARSE_ERROR)
    assert f"deeper than {MAX_JSON_DEPTH}" in message
    assert_still_serves(client)


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        pytest.param(b"\xff\xfe{}", "not UTF-8", id="not-utf8"),
        pytest.param(b'{"jsonrpc": "2.0", "id": 1,', "not JSON", id="truncated"),
        pytest.param(b"", "not JSON", id="empty"),
        pytest.param(
            b'{"jsonrpc": "2.0", "id": ' + b"9" * 5000 + b"}", "not acceptable JSON", id="huge-integer"
        ),
    ],
)
def test_unreadable_bodies_are_parse_errors(client: TestClient, body: bytes, fragment: str) -> None:
    assert fragment in assert_jsonrpc_error(
        client.post("/mcp", content=body, headers=MCP_HEADERS), 400, PARSE_ERROR
    )


def test_an_oversized_body_is_413(client: TestClient) -> None:
    body = json.dumps({**INITIALIZE, "pad": "x" * MAX_BODY_BYTES}).encode()
    response = client.post("/mcp", content=body, headers=MCP_HEADERS)
    assert response.status_code == 413 and "Traceback" not in response.text
    assert_still_serves(client)


def test_a_depth_within_the_limit_is_served(client: TestClient) -> None:
    # The request object and its params are two levels: the whole body is exactly MAX_JSON_DEPTH deep.
    extra = nested_list(MAX_JSON_DEPTH - 2)
    response = client.post(
        "/mcp", json={**INITIALIZE, "params": {**INITIALIZE["params"], "extra": extra}}, headers=MCP_HEADERS
    )
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    "host", ["evil.example", "evil.example:8765", "127.0.0.1.evil.example:8765", "192.168.1.10:8765"]
)
def test_a_foreign_host_is_refused(tmp_path: Path, host: str) -> None:
    """DNS rebinding: a page on evil.example resolves its name to 127.0.0.1; its Host header gives it away."""
    with TestClient(build(tmp_path), base_url=LOOPBACK) as client:
        headers = {**MCP_HEADERS, "Host": host}
        assert client.post("/mcp", json=INITIALIZE, headers=headers).status_code == 421
        assert client.get("/health", headers={"Host": host}).status_code == 421


@pytest.mark.parametrize("host", ["127.0.0.1:8765", "localhost:9000", "[::1]:8765", "localhost"])
def test_loopback_hosts_are_served(tmp_path: Path, host: str) -> None:
    with TestClient(build(tmp_path), base_url=LOOPBACK) as client:
        assert client.post("/mcp", json=INITIALIZE, headers={**MCP_HEADERS, "Host": host}).status_code == 200
        assert client.get("/health", headers={"Host": host}).json()["status"] == "ok"


@pytest.mark.parametrize("origin", ["https://evil.example", "http://localhost:3000", "null"])
def test_any_origin_is_refused_by_default(client: TestClient, origin: str) -> None:
    """Our clients (the agent's MCP client, curl, the tests) send no Origin; a browser always does."""
    response = client.post("/mcp", json=INITIALIZE, headers={**MCP_HEADERS, "Origin": origin})
    assert response.status_code == 403, response.text


def test_an_allowed_origin_is_served_and_others_still_refused(tmp_path: Path) -> None:
    with TestClient(build(tmp_path, allowed_origins=["http://localhost:6274"]), base_url=LOOPBACK) as client:
        ok = client.post("/mcp", json=INITIALIZE, headers={**MCP_HEADERS, "Origin": "http://localhost:6274"})
        assert ok.status_code == 200, ok.text
        other = client.post(
            "/mcp", json=INITIALIZE, headers={**MCP_HEADERS, "Origin": "http://localhost:6275"}
        )
        assert other.status_code == 403


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded"])
def test_only_json_bodies_are_accepted(client: TestClient, content_type: str | None) -> None:
    """A cross-site form can send text/plain or form encoding without a CORS preflight: never accepted."""
    headers = {"Accept": MCP_HEADERS["Accept"]}
    if content_type:
        headers["Content-Type"] = content_type
    response = client.post("/mcp", content=json.dumps(INITIALIZE).encode(), headers=headers)
    assert 400 <= response.status_code < 500 and response.status_code != 404, response.text

"""A minimal raw MCP streamable-HTTP client (httpx): lets the fuzz tests send any body, see the HTTP
status and the exact text, and keep one session open across hypothesis examples."""

from __future__ import annotations

import json
from typing import Any

import httpx

PROTOCOL_VERSION = "2025-11-25"
HEADERS = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}


def sse_messages(text: str) -> list[dict[str, Any]]:
    """The JSON-RPC messages of an SSE (or plain JSON) answer."""
    stripped = text.strip()
    if stripped.startswith("{"):
        return [dict(json.loads(stripped))]
    # SSE lines end in \n (str.splitlines would also split inside the JSON at U+0085 or U+2028).
    lines = text.replace("\r\n", "\n").split("\n")
    return [json.loads(line[len("data: ") :]) for line in lines if line.startswith("data: {")]


class RawMcpSession:
    """One initialized MCP session on `url` for `actor` (X-Actor-Id), answering with raw responses."""

    def __init__(self, url: str, actor: str | None = "alice", timeout: float = 10.0) -> None:
        self.url = url
        self._next_id = 0
        headers = dict(HEADERS)
        if actor:
            headers["X-Actor-Id"] = actor
        self.http = httpx.Client(headers=headers, timeout=timeout)
        response = self.post(
            {
                "jsonrpc": "2.0",
                "id": self._id(),
                "method": "initialize",
                "params": {
                    "protocolVersion": PROTOCOL_VERSION,
                    "capabilities": {},
                    "clientInfo": {"name": "fuzz", "version": "1"},
                },
            }
        )
        response.raise_for_status()
        self.http.headers["mcp-session-id"] = response.headers["mcp-session-id"]
        self.http.headers["mcp-protocol-version"] = PROTOCOL_VERSION
        self.post({"jsonrpc": "2.0", "method": "notifications/initialized"}).raise_for_status()

    def _id(self) -> int:
        self._next_id += 1
        return self._next_id

    def post(self, body: Any) -> httpx.Response:
        return self.http.post(self.url, content=json.dumps(body).encode())

    def post_raw(self, content: bytes) -> httpx.Response:
        return self.http.post(self.url, content=content)

    def call_tool(self, name: str, arguments: Any) -> tuple[httpx.Response, dict[str, Any]]:
        """POST tools/call; the HTTP response and the JSON-RPC answer to it."""
        request_id = self._id()
        response = self.post(
            {
                "jsonrpc": "2.0",
                "id": request_id,
                "method": "tools/call",
                "params": {"name": name, "arguments": arguments},
            }
        )
        answers = (
            [m for m in sse_messages(response.text) if m.get("id") == request_id] if response.text else []
        )
        return response, (answers[-1] if answers else {})

    def close(self) -> None:
        self.http.close()

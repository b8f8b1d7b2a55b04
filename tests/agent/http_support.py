"""Helpers for the agent's HTTP reliability tests: the real app under real uvicorn on loopback."""

from __future__ import annotations

import dataclasses
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

from agent.main import create_app, server_config
from agent.settings import Settings

LOCAL = Settings(
    mode="local",
    llm_gateway_url="http://127.0.0.1:4000",
    model_alias="claude-sonnet",
    tool_gateway_url="http://127.0.0.1:8765/mcp",
    llm_gateway_key="sk-local",
)
DEPLOYED = Settings(
    mode="agentcore",
    llm_gateway_url="http://gw",
    model_alias="claude-sonnet",
    tool_gateway_url="https://gw/mcp",
)
LOCAL_URL = "http://127.0.0.1:8080"


def settings(base: Settings = LOCAL, **changes: Any) -> Settings:
    return dataclasses.replace(base, **changes)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclasses.dataclass
class Served:
    port: int
    app: Any
    server: uvicorn.Server

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@contextmanager
def serve_asgi(app: Any, *, what: str = "the test server", timeout: float = 15) -> Iterator[str]:
    """Any ASGI app (an MCP server's streamable-HTTP app, say) under uvicorn on a free loopback port;
    yields its base URL and stops it afterwards."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="critical"))
    thread = threading.Thread(target=server.run, name="asgi-under-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        assert time.monotonic() < deadline, f"{what} did not start"
        assert thread.is_alive(), f"{what}'s thread died"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout)


@contextmanager
def serve(config: Settings, service: Any) -> Iterator[Served]:
    """The agent app (with `service`) under uvicorn exactly as `agent.main.main` configures it."""
    port = free_port()
    app = create_app(config, service=service)
    server = uvicorn.Server(server_config(app, config, "127.0.0.1", port))
    thread = threading.Thread(target=server.run, name="agent-under-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert time.monotonic() < deadline, "the agent server did not start"
        assert thread.is_alive(), "the agent server thread died"
        time.sleep(0.02)
    try:
        yield Served(port, app, server)
    finally:
        server.should_exit = True
        thread.join(15)


def raw_exchange(port: int, request: bytes, *, timeout: float = 5.0) -> bytes:
    """Send raw bytes, return everything the server answers until it closes (or `timeout`)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request)
        chunks = []
        try:
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
        except TimeoutError:
            pass
        return b"".join(chunks)

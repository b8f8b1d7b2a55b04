"""The one base class of every loopback HTTP stand-in (scripted model, OTLP recorder, replay agent, ...).

A stand-in binds 127.0.0.1 on a port the OS picks, serves from a daemon thread and always frees its port
on exit (a context manager). Subclasses implement `handler_class()`: a `LoopbackHandler` subclass (quiet
request log, HTTP/1.1, JSON and body helpers) whose `do_GET`/`do_POST`/... reach the stand-in's state.

    class Echo(LoopbackServer):
        def handler_class(self) -> type[LoopbackHandler]:
            class Handler(LoopbackHandler):
                def do_POST(self) -> None:
                    self.send_json(200, {"echo": self.read_json()})
            return Handler

    with Echo() as echo:
        httpx.post(echo.url, json={"a": 1})
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

logger = logging.getLogger(__name__)

__all__ = ["LoopbackHandler", "LoopbackServer"]

LOOPBACK = "127.0.0.1"
STOP_JOIN_SECONDS = 5.0


class LoopbackHandler(BaseHTTPRequestHandler):
    """A request handler with no per-request stderr line and small body helpers."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # small streamed chunks would otherwise stall ~40 ms (delayed ACK)

    def log_message(self, format: str, *args: Any) -> None:  # keep test and benchmark output quiet
        return

    def read_body(self) -> bytes:
        """The request body as sent with Content-Length (empty without one)."""
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def read_json(self) -> Any:
        """The request body decoded as JSON (None when empty); raises json.JSONDecodeError."""
        raw = self.read_body()
        return json.loads(raw) if raw else None

    def send_bytes(
        self,
        status: int,
        data: bytes,
        content_type: str = "application/json",
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def send_json(self, status: int, body: Any, headers: Mapping[str, str] | None = None) -> None:
        self.send_bytes(status, json.dumps(body).encode(), "application/json", headers)


class LoopbackServer:
    """A ThreadingHTTPServer on 127.0.0.1:<free port>, served from a daemon thread (a context manager).

    The port is bound in `__init__`, so `url` is known before `start()`; `stop()` shuts the server down,
    frees the port and is idempotent.
    """

    def __init__(self, poll_interval: float = 0.05) -> None:
        self._poll_interval = poll_interval
        self._server = ThreadingHTTPServer((LOOPBACK, 0), self.handler_class())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None
        self._stopped = False

    def handler_class(self) -> type[BaseHTTPRequestHandler]:
        raise NotImplementedError(f"{type(self).__name__} must implement handler_class()")

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """http://127.0.0.1:<port> (no trailing slash)."""
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def running(self) -> bool:
        return self._thread is not None and not self._stopped

    def start(self) -> Self:
        if self._stopped:
            raise RuntimeError(f"{type(self).__name__} was stopped: create a new one")
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": self._poll_interval},
                name=type(self).__name__,
                daemon=True,
            )
            self._thread.start()
            logger.debug("%s listening on %s", type(self).__name__, self.url)
        return self

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=STOP_JOIN_SECONDS)
        self._server.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

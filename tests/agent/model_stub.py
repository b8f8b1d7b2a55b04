"""An OpenAI-compatible stand-in for the LLM gateway's failure modes, on loopback.

`tests/support/scripted_model.py` scripts answers; this one scripts what the gateway does around them:
hang (and note when the agent closes the connection), answer 429 with or without `Retry-After`, or
answer normally with the headers LiteLLM 1.102.4 sets when a fallback model served the call
(`x-litellm-model-group`, `x-litellm-attempted-fallbacks`).
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Hang:
    """Read the request, then send nothing (headers_first: the SSE headers, then nothing)."""

    headers_first: bool = False


@dataclass(frozen=True)
class Limited:
    retry_after: str | None = None


@dataclass(frozen=True)
class Answer:
    text: str
    headers: dict[str, str] = field(default_factory=dict)


Behaviour = Hang | Limited | Answer


class GatewayStub:
    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self.script: deque[Behaviour] = deque()
        self.requests: list[dict[str, Any]] = []
        self.closed_at: list[float] = []  # when the agent closed a connection we were holding
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> GatewayStub:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._listener.close()

    def wait_closed(self, count: int = 1, timeout: float = 10.0) -> float:
        deadline = time.monotonic() + timeout
        while len(self.closed_at) < count:
            assert time.monotonic() < deadline, "the agent never closed the model connection"
            time.sleep(0.02)
        return self.closed_at[count - 1]

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _read_request(self, conn: socket.socket) -> dict[str, Any] | None:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                return None
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        while len(body) < length:
            body += conn.recv(65536)
        request: dict[str, Any] = json.loads(body or b"{}")
        return request

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            request = self._read_request(conn)
            if request is None:
                return
            self.requests.append(request)
            behaviour = self.script.popleft() if self.script else Answer("ok")
            if isinstance(behaviour, Hang):
                if behaviour.headers_first:
                    conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\r\n")
                conn.settimeout(60)
                try:
                    while conn.recv(65536):
                        pass
                except OSError:
                    pass
                self.closed_at.append(time.monotonic())
            elif isinstance(behaviour, Limited):
                body = json.dumps({"error": {"message": "rate limit", "type": "rate_limit", "code": "429"}})
                extra = f"retry-after: {behaviour.retry_after}\r\n" if behaviour.retry_after else ""
                conn.sendall(
                    (
                        "HTTP/1.1 429 Too Many Requests\r\ncontent-type: application/json\r\n"
                        f"content-length: {len(body)}\r\n{extra}connection: close\r\n\r\n{body}"
                    ).encode()
                )
            else:
                self._answer(conn, request, behaviour)

    def _answer(self, conn: socket.socket, request: dict[str, Any], answer: Answer) -> None:
        model = answer.headers.get("x-litellm-model-group", request.get("model", "stub"))
        headers = "".join(f"{k}: {v}\r\n" for k, v in answer.headers.items())
        conn.sendall(
            (
                f"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n{headers}connection: close\r\n\r\n"
            ).encode()
        )
        base = {"id": "chatcmpl-stub", "object": "chat.completion.chunk", "created": 0, "model": model}
        chunks = [
            {**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": answer.text}}]},
            {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
            {**base, "choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}},
        ]
        for chunk in chunks:
            conn.sendall(f"data: {json.dumps(chunk)}\n\n".encode())
        conn.sendall(b"data: [DONE]\n\n")

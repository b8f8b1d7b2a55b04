"""A scripted OpenAI-compatible model server: the only stand-in for an LLM (tests, benchmarks, `make eval`).

It speaks `POST /v1/chat/completions` (JSON and SSE streaming, including tool-call deltas) and
`GET /v1/models`, records every request, and answers from a script:

    with ScriptedModel() as model:
        model.enqueue(ToolCalls([ToolCall("search_knowledge_base", {"query": "reset router"})]))
        model.enqueue(Text("Hold the reset button for 10 seconds [Router X200 Manual, p. 3]."))
        ...  # point LiteLLM (or any OpenAI client) at model.base_url

Queued replies are consumed first-in first-out. When the queue is empty, `responder(request)` decides
(default: echo the last user message). `Failure(status)` answers an HTTP error, e.g. to drive fallbacks.

Fault modes (tests/reliability): `Failure(429, headers={"Retry-After": "7"})` adds response headers,
`Hang(seconds, then=...)` answers only after `seconds` (or never, until `reset()` releases it), and
`Reset()` drops the connection with a TCP reset instead of answering.
"""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from local_stack.loopback import LoopbackHandler, LoopbackServer


@dataclass(frozen=True)
class Text:
    """A plain assistant answer."""

    content: str
    chunk_chars: int = 12


@dataclass(frozen=True)
class ToolCall:
    name: str
    arguments: dict[str, Any]
    id: str = field(default_factory=lambda: f"call_{uuid.uuid4().hex[:12]}")


@dataclass(frozen=True)
class ToolCalls:
    """An assistant turn that calls tools (optionally with some text first)."""

    calls: list[ToolCall]
    content: str = ""


@dataclass(frozen=True)
class Failure:
    """An HTTP error answer (e.g. 500 or 429) instead of a completion."""

    status: int
    message: str = "scripted failure"
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Hang:
    """Hold the request for `seconds` (None: until `reset()`), then answer with `then` (None: drop it)."""

    seconds: float | None = None
    then: Text | ToolCalls | Failure | None = None


@dataclass(frozen=True)
class Reset:
    """Abort the connection with a TCP RST (SO_LINGER 0) instead of answering."""


Reply = Text | ToolCalls | Failure | Hang | Reset
Responder = Callable[[dict[str, Any]], Reply]


def echo_last_user_message(request: dict[str, Any]) -> Reply:
    """Default responder: answer with the text of the last user message."""
    for message in reversed(request.get("messages", [])):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):
                content = " ".join(part.get("text", "") for part in content if isinstance(part, dict))
            return Text(f"echo: {content}")
    return Text("echo: (no user message)")


class ScriptedModel(LoopbackServer):
    """Runs the server on a free loopback port in a background thread (a context manager)."""

    def __init__(
        self, responder: Responder = echo_last_user_message, model_name: str = "scripted-model"
    ) -> None:
        self.responder = responder
        self.model_name = model_name
        self.requests: list[dict[str, Any]] = []
        self.request_headers: list[dict[str, str]] = []
        self._queue: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._release = threading.Event()  # set by reset(): every Hang in progress ends
        super().__init__()

    @property
    def base_url(self) -> str:
        """OpenAI-style base URL, ending in /v1."""
        return f"{self.url}/v1"

    def enqueue(self, *replies: Reply) -> None:
        with self._lock:
            self._queue.extend(replies)

    def pending(self) -> int:
        with self._lock:
            return len(self._queue)

    def reset(self) -> None:
        with self._lock:
            self._queue.clear()
            self.requests.clear()
            self.request_headers.clear()
            self._release.set()
            self._release = threading.Event()

    def stop(self) -> None:
        with self._lock:
            self._release.set()  # a Hang in progress must not hold shutdown
        super().stop()

    def _next_reply(self, request: dict[str, Any]) -> Reply:
        with self._lock:
            self.requests.append(request)
            if self._queue:
                return self._queue.popleft()
        return self.responder(request)

    def handler_class(self) -> type[LoopbackHandler]:
        model = self

        class Handler(LoopbackHandler):
            def do_GET(self) -> None:
                if self.path.rstrip("/") in ("/v1/models", "/models"):
                    self._json(200, {"object": "list", "data": [{"id": model.model_name, "object": "model"}]})
                else:
                    self._json(404, {"error": {"message": f"no route {self.path}"}})

            def do_POST(self) -> None:
                if self.path.rstrip("/") not in ("/v1/chat/completions", "/chat/completions"):
                    self._json(404, {"error": {"message": f"no route {self.path}"}})
                    return
                try:
                    request = self.read_json() or {}
                except json.JSONDecodeError:
                    self._json(400, {"error": {"message": "body is not JSON"}})
                    return
                with model._lock:
                    model.request_headers.append({k.lower(): v for k, v in self.headers.items()})
                reply: Reply | None = model._next_reply(request)
                if isinstance(reply, Hang):
                    with model._lock:
                        release = model._release
                    released = release.wait(reply.seconds)
                    reply = None if released else reply.then
                if reply is None:
                    self.close_connection = True
                    return
                if isinstance(reply, Reset):
                    self._abort()
                    return
                if isinstance(reply, Failure):
                    self._json(
                        reply.status,
                        {"error": {"message": reply.message, "type": "scripted", "code": reply.status}},
                        reply.headers,
                    )
                    return
                if request.get("stream"):
                    self._stream(reply, request)
                else:
                    self._json(200, _completion(reply, request, model.model_name))

            def _json(
                self, status: int, body: dict[str, Any], headers: Mapping[str, str] | None = None
            ) -> None:
                self.send_json(status, body, headers)

            def _abort(self) -> None:
                """Close with RST: the client sees 'connection reset by peer', not a response."""
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.close_connection = True
                self.connection.close()

            def _stream(self, reply: Text | ToolCalls, request: dict[str, Any]) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Cache-Control", "no-cache")
                self.send_header("Connection", "close")
                self.end_headers()
                for chunk in _chunks(reply, request, model.model_name):
                    self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                    self.wfile.flush()
                self.wfile.write(b"data: [DONE]\n\n")
                self.wfile.flush()
                self.close_connection = True

        return Handler


def _usage(reply: Text | ToolCalls, request: dict[str, Any]) -> dict[str, int]:
    prompt_tokens = max(1, len(json.dumps(request.get("messages", []))) // 4)
    text = reply.content if isinstance(reply, Text) else json.dumps([c.arguments for c in reply.calls])
    completion_tokens = max(1, len(text) // 4)
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def _completion(reply: Text | ToolCalls, request: dict[str, Any], model_name: str) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": reply.content or None}
    finish = "stop"
    if isinstance(reply, ToolCalls):
        finish = "tool_calls"
        message["tool_calls"] = [
            {
                "id": c.id,
                "type": "function",
                "function": {"name": c.name, "arguments": json.dumps(c.arguments)},
            }
            for c in reply.calls
        ]
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:16]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": request.get("model", model_name),
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": _usage(reply, request),
    }


def _chunks(reply: Text | ToolCalls, request: dict[str, Any], model_name: str) -> Iterator[dict[str, Any]]:
    base = {
        "id": f"chatcmpl-{uuid.uuid4().hex[:16]}",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": request.get("model", model_name),
    }

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    yield chunk({"role": "assistant", "content": ""})
    text = reply.content
    size = reply.chunk_chars if isinstance(reply, Text) else 12
    for start in range(0, len(text), size):
        yield chunk({"content": text[start : start + size]})
    finish = "stop"
    if isinstance(reply, ToolCalls):
        finish = "tool_calls"
        for index, call in enumerate(reply.calls):
            arguments = json.dumps(call.arguments)
            yield chunk(
                {
                    "tool_calls": [
                        {
                            "index": index,
                            "id": call.id,
                            "type": "function",
                            "function": {"name": call.name, "arguments": ""},
                        }
                    ]
                }
            )
            for start in range(0, len(arguments), 16):
                yield chunk(
                    {
                        "tool_calls": [
                            {"index": index, "function": {"arguments": arguments[start : start + 16]}}
                        ]
                    }
                )
    final = chunk({}, finish)
    if (request.get("stream_options") or {}).get("include_usage"):
        yield final
        yield {**base, "choices": [], "usage": _usage(reply, request)}
    else:
        yield {**final, "usage": _usage(reply, request)}

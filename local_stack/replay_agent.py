"""A replaying stand-in for the agent's `/invocations`: answers with queued, contract-conformant bytes
(SSE streams or JSON errors) and records every request. Used by the chat and client tests and by
`benchmarks/chat_client.py` (the client layer's own cost, no agent work).

    with ReplayAgent() as agent:
        agent.enqueue(Recorded(b'data: {"type": "done", ...}\\n\\n'))
        AgentClient(AgentTarget.local(agent.url)).stream("hi", session_id)
"""

from __future__ import annotations

import json
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

from local_stack.loopback import LoopbackHandler, LoopbackServer

__all__ = ["Recorded", "ReplayAgent"]

CHUNK_BYTES = 64


@dataclass(frozen=True)
class Recorded:
    """One recorded answer: status, content type and the exact body bytes (sent in chunks)."""

    body: bytes
    status: int = 200
    content_type: str = "text/event-stream"
    chunk_delay: float = 0.0
    headers: tuple[tuple[str, str], ...] = ()

    @classmethod
    def from_file(cls, path: Path, **kwargs: Any) -> Self:
        return cls(path.read_bytes(), **kwargs)

    @classmethod
    def error(cls, status: int, code: str, message: str, trace_id: str = "") -> Self:
        body = json.dumps({"error": {"code": code, "message": message, "trace_id": trace_id}}).encode()
        return cls(body, status=status, content_type="application/json")


class ReplayAgent(LoopbackServer):
    """Answers `POST /invocations` with queued recordings, first in first out; records requests."""

    def __init__(self, require_bearer: str | None = None) -> None:
        self.queue: deque[Recorded] = deque()
        self.requests: list[dict[str, Any]] = []
        self.require_bearer = require_bearer
        super().__init__()

    def enqueue(self, *answers: Recorded) -> None:
        self.queue.extend(answers)

    def handler_class(self) -> type[LoopbackHandler]:
        agent = self

        class Handler(LoopbackHandler):
            def do_POST(self) -> None:
                body = self.read_body()
                agent.requests.append(
                    {
                        "path": self.path,
                        "headers": {k.lower(): v for k, v in self.headers.items()},
                        "body": json.loads(body),
                    }
                )
                if not agent.queue:
                    answer = Recorded.error(500, "internal_error", "nothing queued in the replay agent")
                else:
                    answer = agent.queue.popleft()
                self.send_response(answer.status)
                self.send_header("Content-Type", answer.content_type)
                for name, value in answer.headers:
                    self.send_header(name, value)
                self.send_header("Connection", "close")
                self.end_headers()
                for start in range(0, len(answer.body), CHUNK_BYTES):
                    self.wfile.write(answer.body[start : start + CHUNK_BYTES])
                    self.wfile.flush()
                    if answer.chunk_delay:
                        time.sleep(answer.chunk_delay)
                self.close_connection = True

        return Handler

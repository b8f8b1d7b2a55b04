"""Conversation memory: short-term per session, long-term per actor.

Deployed: AgentCore Memory (events per actor+session; long-term records the memory's strategies
extract into the actor's namespace). Local: a SQLite store with the same interface; its long-term
recall is the actor's recent messages from other sessions.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from dataclasses import dataclass
from typing import Any, Literal, Protocol

logger = logging.getLogger(__name__)

Role = Literal["user", "assistant"]


@dataclass(frozen=True)
class Turn:
    role: Role
    text: str


class Memory(Protocol):
    """What the agent needs from a memory backend."""

    name: str

    def history(self, actor_id: str, session_id: str, turns: int) -> list[Turn]:
        """The last `turns` user/assistant exchanges of this session, oldest first."""
        ...

    def recall(self, actor_id: str, session_id: str, query: str, limit: int = 5) -> list[str]:
        """Long-term facts about the actor relevant to `query` (from earlier sessions)."""
        ...

    def record(self, actor_id: str, session_id: str, user_text: str, assistant_text: str) -> None:
        """Store one exchange."""
        ...


class LocalMemory:
    """SQLite-backed memory for local mode (`:memory:` by default, or a file that survives restarts)."""

    name = "local-memory"

    def __init__(self, path: str = ":memory:") -> None:
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False)
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS turns (id INTEGER PRIMARY KEY AUTOINCREMENT, actor TEXT NOT NULL, "
            "session TEXT NOT NULL, role TEXT NOT NULL, text TEXT NOT NULL, at REAL NOT NULL)"
        )
        self._db.execute("CREATE INDEX IF NOT EXISTS turns_by_session ON turns (actor, session, id)")
        self._db.commit()

    def history(self, actor_id: str, session_id: str, turns: int) -> list[Turn]:
        with self._lock:
            rows = self._db.execute(
                "SELECT role, text FROM turns WHERE actor = ? AND session = ? ORDER BY id DESC LIMIT ?",
                (actor_id, session_id, turns * 2),
            ).fetchall()
        history = [Turn(role=role, text=text) for role, text in reversed(rows)]
        while history and history[0].role != "user":  # a history must start with the user
            history.pop(0)
        return history

    def recall(self, actor_id: str, session_id: str, query: str, limit: int = 5) -> list[str]:
        with self._lock:
            rows = self._db.execute(
                "SELECT text FROM turns WHERE actor = ? AND session != ? AND role = 'user' ORDER BY id DESC LIMIT ?",
                (actor_id, session_id, limit),
            ).fetchall()
        return [f"In an earlier conversation the user said: {text}" for (text,) in rows]

    def record(self, actor_id: str, session_id: str, user_text: str, assistant_text: str) -> None:
        now = time.time()
        with self._lock:
            self._db.executemany(
                "INSERT INTO turns (actor, session, role, text, at) VALUES (?, ?, ?, ?, ?)",
                [
                    (actor_id, session_id, "user", user_text, now),
                    (actor_id, session_id, "assistant", assistant_text, now),
                ],
            )
            self._db.commit()


class AgentCoreMemory:
    """AgentCore Memory through `bedrock_agentcore.memory.MemoryClient`."""

    name = "agentcore-memory"

    def __init__(
        self, memory_id: str, region: str | None, namespace: str = "/actors/{actorId}/", client: Any = None
    ) -> None:
        if client is None:
            from bedrock_agentcore.memory import MemoryClient  # deferred: deployed mode only

            client = MemoryClient(region_name=region)
        self._client = client
        self.memory_id = memory_id
        self.namespace = namespace

    def history(self, actor_id: str, session_id: str, turns: int) -> list[Turn]:
        # Each event holds one exchange (user, assistant); order by timestamp whatever the API's order.
        events = self._client.list_events(
            memory_id=self.memory_id, actor_id=actor_id, session_id=session_id, max_results=100
        )
        events = sorted(events, key=lambda event: str(event.get("eventTimestamp", "")))[-turns:]
        history: list[Turn] = []
        for event in events:
            for item in event.get("payload", []):
                message = item.get("conversational") or {}
                role = str(message.get("role", "")).upper()
                text = (message.get("content") or {}).get("text", "")
                if role in ("USER", "ASSISTANT") and text:
                    history.append(Turn(role="user" if role == "USER" else "assistant", text=text))
        while history and history[0].role != "user":
            history.pop(0)
        return history

    def recall(self, actor_id: str, session_id: str, query: str, limit: int = 5) -> list[str]:
        records = self._client.retrieve_memories(
            memory_id=self.memory_id,
            namespace_path=self.namespace.replace("{actorId}", actor_id),
            query=query,
            top_k=limit,
        )
        facts = []
        for record in records:
            text = (record.get("content") or {}).get("text")
            if text:
                facts.append(str(text))
        return facts

    def record(self, actor_id: str, session_id: str, user_text: str, assistant_text: str) -> None:
        self._client.create_event(
            memory_id=self.memory_id,
            actor_id=actor_id,
            session_id=session_id,
            messages=[(user_text, "USER"), (assistant_text, "ASSISTANT")],
        )

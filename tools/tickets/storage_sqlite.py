"""Ticket storage in one SQLite file (local mode), with the DynamoDB backend's keys, ordering and
conditions: (owner, ticket id) primary key, newest-first listing, a `version` check on replace."""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from pathlib import Path
from typing import Any

from tools.tickets.storage import DuplicateTicketError, StaleTicketError, Ticket

logger = logging.getLogger(__name__)


class SqliteTicketRepository:
    """Tickets in one SQLite file (local mode); same keys, ordering and conditions as DynamoDB.

    Args:
        path: database file (created with its table if missing), or ":memory:".
    """

    def __init__(self, path: str | Path) -> None:
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS tickets ("
                " owner TEXT NOT NULL, ticket_id TEXT NOT NULL, created_at TEXT NOT NULL,"
                " status TEXT NOT NULL, version INTEGER NOT NULL, record TEXT NOT NULL,"
                " PRIMARY KEY (owner, ticket_id))"
            )
            self._db.execute(
                "CREATE INDEX IF NOT EXISTS tickets_by_created ON tickets (owner, created_at DESC)"
            )

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def insert(self, record: Ticket) -> None:
        try:
            with self._lock:
                self._db.execute(
                    "INSERT INTO tickets (owner, ticket_id, created_at, status, version, record)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        record["owner"],
                        record["ticket_id"],
                        record["created_at"],
                        record["status"],
                        record["version"],
                        json.dumps(record),
                    ),
                )
        except sqlite3.IntegrityError as exc:
            raise DuplicateTicketError(record["ticket_id"]) from exc

    def get(self, owner: str, ticket_id: str) -> Ticket | None:
        with self._lock:
            row = self._db.execute(
                "SELECT record FROM tickets WHERE owner = ? AND ticket_id = ?", (owner, ticket_id)
            ).fetchone()
        return _decode(row[0]) if row else None

    def list(self, owner: str, status: str | None, limit: int) -> list[Ticket]:
        sql = "SELECT record FROM tickets WHERE owner = ?"
        params: list[Any] = [owner]
        if status is not None:
            sql += " AND status = ?"
            params.append(status)
        sql += " ORDER BY created_at DESC, ticket_id DESC LIMIT ?"
        params.append(limit)
        with self._lock:
            rows = self._db.execute(sql, params).fetchall()
        return [_decode(row[0]) for row in rows]

    def replace(self, record: Ticket, expected_version: int) -> None:
        with self._lock:
            cursor = self._db.execute(
                "UPDATE tickets SET status = ?, version = ?, record = ?"
                " WHERE owner = ? AND ticket_id = ? AND version = ?",
                (
                    record["status"],
                    record["version"],
                    json.dumps(record),
                    record["owner"],
                    record["ticket_id"],
                    expected_version,
                ),
            )
        if cursor.rowcount != 1:
            raise StaleTicketError(record["ticket_id"])


def _decode(text: str) -> Ticket:
    record: Ticket = json.loads(text)
    return record

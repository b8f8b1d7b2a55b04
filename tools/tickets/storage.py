"""The storage protocol of ticket backends (`storage_dynamodb`, `storage_sqlite`).

A backend stores ticket records (plain dicts: the public ticket fields plus `owner` and `version`) and
does no validation: every rule is in `tools.tickets.service`. Both backends pass the same behaviour
tests (tests/tools/test_tickets.py).
"""

from __future__ import annotations

from typing import Any, Protocol

Ticket = dict[str, Any]


class DuplicateTicketError(Exception):
    """Raised by a backend when inserting an (owner, ticket id) that already exists; the service then
    draws another id."""


class StaleTicketError(Exception):
    """Raised by a backend when the stored version differs from the expected one; the service then
    re-reads and re-applies its change."""


class TicketRepository(Protocol):
    """Storage of ticket records."""

    def insert(self, record: Ticket) -> None:
        """Store a new record; raise DuplicateTicketError when (owner, ticket_id) exists."""

    def get(self, owner: str, ticket_id: str) -> Ticket | None:
        """The record of `owner` with this id, or None (also when another owner has that id)."""

    def list(self, owner: str, status: str | None, limit: int) -> list[Ticket]:
        """Up to `limit` records of `owner`, newest first, optionally only those with `status`."""

    def replace(self, record: Ticket, expected_version: int) -> None:
        """Overwrite a record if its stored version is `expected_version`, else StaleTicketError."""

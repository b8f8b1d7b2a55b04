"""The ticket rules: argument and ownership checks, limits, optimistic concurrency.

`TicketService` holds every rule; a storage backend (`tools.tickets.storage`) only stores. The owner of
every call is the verified caller identity (the gateway's `_actor`, the local server's `X-Actor-Id`),
passed separately from the model's arguments; tickets are keyed by (owner, ticket id), so another
caller's ticket is `not_found`, never forbidden, and its existence is not revealed.

`ticket_tools(service)` is the `{tool name: handler}` table of the five ticket tools for
`tools.dispatch.ToolTable`, which validates the arguments against tools/specs.py before a handler runs.
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tools import specs
from tools.dispatch import Handler
from tools.errors import ErrorCode, ToolError
from tools.tickets.storage import DuplicateTicketError, StaleTicketError, Ticket, TicketRepository

logger = logging.getLogger(__name__)

MAX_OWNER_CHARS = 128
MAX_COMMENTS_PER_TICKET = 50
TICKET_ID_PATTERN = re.compile(specs.TICKET_ID_PATTERN)
EMAIL_PATTERN = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@"
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$"
)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_WHITESPACE_RUN = re.compile(r"\s+")
_TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
_ID_ATTEMPTS = 5
_UPDATE_ATTEMPTS = 5

Clock = Callable[[], datetime]


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _timestamp(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("the clock must return timezone-aware datetimes")
    return moment.astimezone(UTC).strftime(_TIMESTAMP_FORMAT)


@dataclass
class TicketService:
    """The ticket rules. Every method takes the owner (the verified caller identity) first; a missing or
    malformed owner is `unauthorized`."""

    repository: TicketRepository
    clock: Clock = field(default=_utc_now)

    def create(
        self,
        owner: str | None,
        email: str,
        subject: str,
        description: str,
        priority: str = "normal",
        device: str | None = None,
    ) -> Ticket:
        """Create a ticket owned by `owner` with status `open`; returns the ticket."""
        owner = _owner(owner)
        now = _timestamp(self.clock())
        base: Ticket = {
            "owner": owner,
            "email": _email(email),
            "subject": _single_line("subject", subject, specs.MAX_SUBJECT_CHARS),
            "description": _text("description", description, specs.MAX_DESCRIPTION_CHARS),
            "priority": _choice("priority", priority, specs.TICKET_PRIORITIES),
            "device": _optional_single_line("device", device, specs.MAX_DEVICE_CHARS),
            "status": "open",
            "created_at": now,
            "updated_at": now,
            "comments": [],
            "version": 1,
        }
        for _ in range(_ID_ATTEMPTS):
            record = {**base, "ticket_id": f"TCK-{secrets.token_hex(4).upper()}"}
            try:
                self.repository.insert(record)
            except DuplicateTicketError:
                continue
            logger.info("ticket created", extra={"ticket_id": record["ticket_id"]})
            return _public(record)
        raise ToolError(ErrorCode.CONFLICT, "could not allocate a unique ticket id; try again")

    def get(self, owner: str | None, ticket_id: str) -> Ticket:
        """One of `owner`'s tickets with its comments."""
        return _public(self._load(_owner(owner), ticket_id))

    def list(self, owner: str | None, status: str | None = None, limit: int = 10) -> dict[str, Any]:
        """`owner`'s tickets, newest first: `{"tickets": [summary, ...], "count": n}`."""
        owner = _owner(owner)
        if status is not None:
            status = _choice("status", status, specs.TICKET_STATUSES)
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= specs.MAX_LIST_LIMIT:
            raise ToolError(
                ErrorCode.INVALID_ARGUMENT, f"limit: must be an integer from 1 to {specs.MAX_LIST_LIMIT}"
            )
        records = self.repository.list(owner, status, limit)
        tickets = [_summary(record) for record in records[:limit]]
        return {"tickets": tickets, "count": len(tickets)}

    def update_status(self, owner: str | None, ticket_id: str, status: str) -> Ticket:
        """Set the status of one of `owner`'s tickets; setting the current status changes nothing."""
        owner = _owner(owner)
        status = _choice("status", status, specs.TICKET_STATUSES)

        def change(record: Ticket) -> bool:
            if record["status"] == status:
                return False
            record["status"] = status
            return True

        return self._modify(owner, ticket_id, change)

    def add_comment(self, owner: str | None, ticket_id: str, comment: str) -> Ticket:
        """Append a comment to one of `owner`'s tickets; returns the ticket with its comments."""
        owner = _owner(owner)
        text = _text("comment", comment, specs.MAX_COMMENT_CHARS)

        def change(record: Ticket) -> bool:
            if len(record["comments"]) >= MAX_COMMENTS_PER_TICKET:
                raise ToolError(
                    ErrorCode.LIMIT_EXCEEDED,
                    f"comment: ticket {record['ticket_id']} already has {MAX_COMMENTS_PER_TICKET} comments",
                )
            record["comments"] = [
                *record["comments"],
                {"comment": text, "created_at": _timestamp(self.clock())},
            ]
            return True

        return self._modify(owner, ticket_id, change)

    def _load(self, owner: str, ticket_id: str) -> Ticket:
        ticket_id = _ticket_id(ticket_id)
        record = self.repository.get(owner, ticket_id)
        if record is None:
            raise ToolError(
                ErrorCode.NOT_FOUND, f"ticket_id: no ticket {ticket_id} found for the current user"
            )
        return record

    def _modify(self, owner: str, ticket_id: str, change: Callable[[Ticket], bool]) -> Ticket:
        for _ in range(_UPDATE_ATTEMPTS):
            record = self._load(owner, ticket_id)
            expected = int(record["version"])
            if not change(record):
                return _public(record)
            record["version"] = expected + 1
            record["updated_at"] = _timestamp(self.clock())
            try:
                self.repository.replace(record, expected)
            except StaleTicketError:
                continue
            return _public(record)
        raise ToolError(
            ErrorCode.CONFLICT, f"ticket_id: {ticket_id} is being changed concurrently; try again"
        )


# --- validation helpers -------------------------------------------------------------------------


def _owner(owner: object) -> str:
    if not isinstance(owner, str) or not owner.strip():
        raise ToolError(ErrorCode.UNAUTHORIZED, "no caller identity: the request carried no valid actor")
    if len(owner) > MAX_OWNER_CHARS or _CONTROL.search(owner):
        raise ToolError(ErrorCode.UNAUTHORIZED, "the caller identity is malformed")
    return owner


def _require_string(name: str, value: object) -> str:
    if not isinstance(value, str):
        raise ToolError(ErrorCode.INVALID_ARGUMENT, f"{name}: must be a string")
    if _CONTROL.search(value):
        raise ToolError(ErrorCode.INVALID_ARGUMENT, f"{name}: must not contain control characters")
    return value


def _text(name: str, value: object, max_chars: int) -> str:
    text = _require_string(name, value).strip()
    if not text:
        raise ToolError(ErrorCode.INVALID_ARGUMENT, f"{name}: must not be empty")
    if len(text) > max_chars:
        raise ToolError(
            ErrorCode.INVALID_ARGUMENT, f"{name}: is {len(text)} characters; the maximum is {max_chars}"
        )
    return text


def _single_line(name: str, value: object, max_chars: int) -> str:
    return _WHITESPACE_RUN.sub(" ", _text(name, value, max_chars))


def _optional_single_line(name: str, value: object, max_chars: int) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return _single_line(name, value, max_chars)


def _email(value: object) -> str:
    email = _require_string("email", value).strip()
    if not email:
        raise ToolError(
            ErrorCode.INVALID_ARGUMENT, "email: is required (ask the user for their contact email)"
        )
    if len(email) > specs.MAX_EMAIL_CHARS or not EMAIL_PATTERN.fullmatch(email):
        raise ToolError(ErrorCode.INVALID_ARGUMENT, f"email: {email[:60]!r} is not a valid email address")
    local, _, domain = email.rpartition("@")
    return f"{local}@{domain.lower()}"


def _choice(name: str, value: object, allowed: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise ToolError(ErrorCode.INVALID_ARGUMENT, f"{name}: must be one of {list(allowed)} (got {value!r})")
    return value


def _ticket_id(value: object) -> str:
    ticket_id = _require_string("ticket_id", value).strip().upper()
    if not TICKET_ID_PATTERN.fullmatch(ticket_id):
        raise ToolError(
            ErrorCode.INVALID_ARGUMENT, f"ticket_id: {str(value)[:40]!r} is not a ticket id like TCK-1A2B3C4D"
        )
    return ticket_id


_PUBLIC_FIELDS = (
    "ticket_id",
    "status",
    "priority",
    "subject",
    "description",
    "email",
    "device",
    "created_at",
    "updated_at",
)


def _public(record: Mapping[str, Any]) -> Ticket:
    """The ticket as the caller sees it (no storage fields)."""
    ticket: Ticket = {name: record.get(name) for name in _PUBLIC_FIELDS}
    ticket["comments"] = [
        {"comment": str(c["comment"]), "created_at": str(c["created_at"])} for c in record.get("comments", [])
    ]
    return ticket


def _summary(record: Mapping[str, Any]) -> Ticket:
    return {
        "ticket_id": record["ticket_id"],
        "subject": record["subject"],
        "status": record["status"],
        "priority": record["priority"],
        "device": record.get("device"),
        "created_at": record["created_at"],
        "updated_at": record["updated_at"],
        "comment_count": len(record.get("comments", [])),
    }


def ticket_tools(service: TicketService) -> dict[str, Handler]:
    """The ticket tools as `{tool name: handler}`; arguments arrive checked against tools/specs.py."""
    return {
        "create_ticket": lambda args, owner: service.create(owner, **args),
        "get_ticket": lambda args, owner: service.get(owner, args["ticket_id"]),
        "list_tickets": lambda args, owner: service.list(owner, args.get("status"), args["limit"]),
        "update_ticket_status": lambda args, owner: service.update_status(
            owner, args["ticket_id"], args["status"]
        ),
        "add_ticket_comment": lambda args, owner: service.add_comment(
            owner, args["ticket_id"], args["comment"]
        ),
    }

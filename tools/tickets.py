"""Support tickets: validation and ownership rules, shared by the tickets Lambda and the local MCP server.

`TicketService` holds every rule (argument validation, ownership, limits); the repositories only store.
Two repositories behave identically: `DynamoTicketRepository` (deployed, a boto3 `Table`) and
`SqliteTicketRepository` (local). Tickets are keyed by (owner, ticket id), so a lookup with another
owner's id finds nothing: another caller's ticket is reported as `not_found`, never as forbidden, so its
existence is not revealed.

`dispatch()` is the single entry point of both transports: it checks the tool name and the arguments
against `tools.specs` and calls the service. The owner is always a separate parameter taken from the
validated identity (`_actor`), never from the model's arguments.

This module uses only the standard library so the Lambda needs nothing beyond its runtime.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import sqlite3
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

from tools import specs

logger = logging.getLogger(__name__)

MAX_OWNER_CHARS = 128
MAX_EMAIL_CHARS = 254
MAX_DEVICE_CHARS = 100
MAX_COMMENTS_PER_TICKET = 50
MAX_LIST_LIMIT = 50
TICKET_ID_PATTERN = re.compile(r"^TCK-[0-9A-F]{8}$")
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
Ticket = dict[str, Any]


class TicketError(Exception):
    """A failure the caller can act on: `code` is machine-readable, `message` names the field or cause.

    Codes: `invalid_argument`, `not_found`, `unauthorized` (no caller identity), `limit_exceeded`,
    `conflict` (concurrent updates kept winning).
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message

    def to_dict(self) -> dict[str, dict[str, str]]:
        """The JSON error body returned by the tool transports."""
        return {"error": {"code": self.code, "message": self.message}}


class DuplicateTicketError(Exception):
    """Raised by a repository when inserting a (owner, ticket id) that already exists."""


class StaleTicketError(Exception):
    """Raised by a repository when the stored version differs from the expected one."""


class TicketRepository(Protocol):
    """Storage of ticket records (plain dicts with the keys of `TicketService` records plus
    `owner` and `version`). Repositories do no validation."""

    def insert(self, record: Ticket) -> None:
        """Store a new record; raise DuplicateTicketError when (owner, ticket_id) exists."""

    def get(self, owner: str, ticket_id: str) -> Ticket | None:
        """The record of `owner` with this id, or None (also when another owner has that id)."""

    def list(self, owner: str, status: str | None, limit: int) -> list[Ticket]:
        """Up to `limit` records of `owner`, newest first, optionally only those with `status`."""

    def replace(self, record: Ticket, expected_version: int) -> None:
        """Overwrite a record if its stored version is `expected_version`, else StaleTicketError."""


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _timestamp(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("the clock must return timezone-aware datetimes")
    return moment.astimezone(UTC).strftime(_TIMESTAMP_FORMAT)


@dataclass
class TicketService:
    """The ticket rules. Every method takes the owner (the validated caller identity) first."""

    repository: TicketRepository
    clock: Clock = field(default=_utc_now)

    def create(
        self,
        owner: str,
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
            "device": _optional_single_line("device", device, MAX_DEVICE_CHARS),
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
        raise TicketError("conflict", "could not allocate a unique ticket id; try again")

    def get(self, owner: str, ticket_id: str) -> Ticket:
        """One of `owner`'s tickets with its comments."""
        return _public(self._load(_owner(owner), ticket_id))

    def list(self, owner: str, status: str | None = None, limit: int = 10) -> dict[str, Any]:
        """`owner`'s tickets, newest first: `{"tickets": [summary, ...], "count": n}`."""
        owner = _owner(owner)
        if status is not None:
            status = _choice("status", status, specs.TICKET_STATUSES)
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIST_LIMIT:
            raise TicketError("invalid_argument", f"limit: must be an integer from 1 to {MAX_LIST_LIMIT}")
        records = self.repository.list(owner, status, limit)
        tickets = [_summary(record) for record in records[:limit]]
        return {"tickets": tickets, "count": len(tickets)}

    def update_status(self, owner: str, ticket_id: str, status: str) -> Ticket:
        """Set the status of one of `owner`'s tickets; setting the current status changes nothing."""
        owner = _owner(owner)
        status = _choice("status", status, specs.TICKET_STATUSES)

        def change(record: Ticket) -> bool:
            if record["status"] == status:
                return False
            record["status"] = status
            return True

        return self._modify(owner, ticket_id, change)

    def add_comment(self, owner: str, ticket_id: str, comment: str) -> Ticket:
        """Append a comment to one of `owner`'s tickets; returns the ticket with its comments."""
        owner = _owner(owner)
        text = _text("comment", comment, specs.MAX_COMMENT_CHARS)

        def change(record: Ticket) -> bool:
            if len(record["comments"]) >= MAX_COMMENTS_PER_TICKET:
                raise TicketError(
                    "limit_exceeded",
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
            raise TicketError("not_found", f"ticket_id: no ticket {ticket_id} found for the current user")
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
        raise TicketError("conflict", f"ticket_id: {ticket_id} is being changed concurrently; try again")


# --- validation helpers -------------------------------------------------------------------------


def _owner(owner: object) -> str:
    if not isinstance(owner, str) or not owner.strip():
        raise TicketError("unauthorized", "no caller identity: the request carried no valid actor")
    if len(owner) > MAX_OWNER_CHARS or _CONTROL.search(owner):
        raise TicketError("unauthorized", "the caller identity is malformed")
    return owner


def _require_string(name: str, value: object) -> str:
    if not isinstance(value, str):
        raise TicketError("invalid_argument", f"{name}: must be a string")
    if _CONTROL.search(value):
        raise TicketError("invalid_argument", f"{name}: must not contain control characters")
    return value


def _text(name: str, value: object, max_chars: int) -> str:
    text = _require_string(name, value).strip()
    if not text:
        raise TicketError("invalid_argument", f"{name}: must not be empty")
    if len(text) > max_chars:
        raise TicketError(
            "invalid_argument", f"{name}: is {len(text)} characters; the maximum is {max_chars}"
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
        raise TicketError("invalid_argument", "email: is required (ask the user for their contact email)")
    if len(email) > MAX_EMAIL_CHARS or not EMAIL_PATTERN.fullmatch(email):
        raise TicketError("invalid_argument", f"email: {email[:60]!r} is not a valid email address")
    local, _, domain = email.rpartition("@")
    return f"{local}@{domain.lower()}"


def _choice(name: str, value: object, allowed: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise TicketError("invalid_argument", f"{name}: must be one of {list(allowed)} (got {value!r})")
    return value


def _ticket_id(value: object) -> str:
    ticket_id = _require_string("ticket_id", value).strip().upper()
    if not TICKET_ID_PATTERN.fullmatch(ticket_id):
        raise TicketError(
            "invalid_argument", f"ticket_id: {str(value)[:40]!r} is not a ticket id like TCK-1A2B3C4D"
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


# --- argument validation against tools/specs.py ---------------------------------------------------

ACTOR_ARGUMENT = specs.IDENTITY_ARGUMENT
_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "boolean": (bool,),
    "object": (dict,),
}


def validate_arguments(tool: specs.ToolSpec, arguments: object) -> dict[str, Any]:
    """Check `arguments` against the tool's JSON schema (the subset tools/specs.py uses) and apply
    defaults. Raises TicketError(invalid_argument) naming the first offending field."""
    if not isinstance(arguments, dict):
        raise TicketError("invalid_argument", f"arguments of {tool.name} must be a JSON object")
    schema = tool.input_schema
    properties: dict[str, Any] = schema.get("properties", {})
    supplied = {k: v for k, v in arguments.items() if k != ACTOR_ARGUMENT}
    unknown = sorted(set(supplied) - set(properties))
    if unknown:
        raise TicketError(
            "invalid_argument",
            f"{unknown[0]}: unknown argument for {tool.name}; allowed: {sorted(properties)}",
        )
    for name in schema.get("required", []):
        if supplied.get(name) is None:
            raise TicketError("invalid_argument", f"{name}: is required by {tool.name}")
    result: dict[str, Any] = {}
    for name, rule in properties.items():
        if name not in supplied or supplied[name] is None:
            if "default" in rule:
                result[name] = rule["default"]
            continue
        result[name] = _check_value(name, supplied[name], rule)
    return result


def _check_value(name: str, value: Any, rule: Mapping[str, Any]) -> Any:
    expected = rule.get("type")
    if expected is not None:
        types = _JSON_TYPES[expected]
        if isinstance(value, bool) and expected != "boolean":
            raise TicketError("invalid_argument", f"{name}: must be a {expected}, not a boolean")
        if isinstance(value, float) and expected == "integer" and value.is_integer():
            value = int(value)
        if not isinstance(value, types):
            raise TicketError(
                "invalid_argument", f"{name}: must be a {expected} (got {type(value).__name__})"
            )
    if "enum" in rule and value not in rule["enum"]:
        raise TicketError("invalid_argument", f"{name}: must be one of {rule['enum']} (got {value!r})")
    if isinstance(value, str):
        if len(value.strip()) < rule.get("minLength", 0):
            raise TicketError("invalid_argument", f"{name}: must not be empty")
        if "maxLength" in rule and len(value) > rule["maxLength"]:
            raise TicketError(
                "invalid_argument", f"{name}: is {len(value)} characters; the maximum is {rule['maxLength']}"
            )
        candidate = value.strip().upper() if name == "ticket_id" else value
        if "pattern" in rule and not re.search(rule["pattern"], candidate):
            raise TicketError("invalid_argument", f"{name}: {value[:40]!r} does not match {rule['pattern']}")
    if isinstance(value, int) and not isinstance(value, bool):
        if "minimum" in rule and value < rule["minimum"]:
            raise TicketError("invalid_argument", f"{name}: must be at least {rule['minimum']}")
        if "maximum" in rule and value > rule["maximum"]:
            raise TicketError("invalid_argument", f"{name}: must be at most {rule['maximum']}")
    return value


def dispatch(service: TicketService, tool_name: str, arguments: object, owner: str) -> dict[str, Any]:
    """Run one ticket tool for `owner`: validate the name and arguments against tools/specs.py, then call
    the service. `_actor` in `arguments` is ignored: the owner parameter is the only identity.

    Returns the tool result (a JSON-serialisable dict); raises TicketError.
    """
    names = [s.name for s in specs.specs_for("tickets")]
    if tool_name not in names:
        raise TicketError("invalid_argument", f"tool: unknown ticket tool {tool_name!r}; known: {names}")
    args = validate_arguments(specs.spec(tool_name), arguments)
    if tool_name == "create_ticket":
        return service.create(owner, **args)
    if tool_name == "get_ticket":
        return service.get(owner, args["ticket_id"])
    if tool_name == "list_tickets":
        return service.list(owner, status=args.get("status"), limit=args["limit"])
    if tool_name == "update_ticket_status":
        return service.update_status(owner, args["ticket_id"], args["status"])
    return service.add_comment(owner, args["ticket_id"], args["comment"])


# --- repositories -------------------------------------------------------------------------------


class DynamoTicketRepository:
    """Tickets in DynamoDB: partition key `owner`, sort key `ticket_id`, local secondary index
    `by_created` (sort key `created_at`) for newest-first listing with strong consistency.

    Args:
        table: a boto3 `dynamodb.Table` resource.
    """

    PARTITION_KEY = "owner"
    SORT_KEY = "ticket_id"
    INDEX_NAME = "by_created"
    INDEX_SORT_KEY = "created_at"

    def __init__(self, table: Any) -> None:
        self._table = table
        self._conditional_failure = table.meta.client.exceptions.ConditionalCheckFailedException

    def insert(self, record: Ticket) -> None:
        try:
            self._table.put_item(
                Item=_to_item(record),
                ConditionExpression="attribute_not_exists(#o) AND attribute_not_exists(ticket_id)",
                ExpressionAttributeNames={"#o": "owner"},
            )
        except self._conditional_failure as exc:
            raise DuplicateTicketError(record["ticket_id"]) from exc

    def get(self, owner: str, ticket_id: str) -> Ticket | None:
        response = self._table.get_item(Key={"owner": owner, "ticket_id": ticket_id}, ConsistentRead=True)
        item = response.get("Item")
        return _from_item(item) if item else None

    def list(self, owner: str, status: str | None, limit: int) -> list[Ticket]:
        query: dict[str, Any] = {
            "IndexName": self.INDEX_NAME,
            "KeyConditionExpression": "#o = :o",
            "ExpressionAttributeNames": {"#o": "owner"},
            "ExpressionAttributeValues": {":o": owner},
            "ScanIndexForward": False,
            "ConsistentRead": True,
        }
        if status is not None:
            query["FilterExpression"] = "#s = :s"
            query["ExpressionAttributeNames"]["#s"] = "status"
            query["ExpressionAttributeValues"][":s"] = status
        records: list[Ticket] = []
        while len(records) < limit:
            response = self._table.query(**query, Limit=max(limit, 25))
            records.extend(_from_item(item) for item in response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                break
            query["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        return records[:limit]

    def replace(self, record: Ticket, expected_version: int) -> None:
        try:
            self._table.put_item(
                Item=_to_item(record),
                ConditionExpression="version = :v",
                ExpressionAttributeValues={":v": expected_version},
            )
        except self._conditional_failure as exc:
            raise StaleTicketError(record["ticket_id"]) from exc


def _to_item(record: Ticket) -> dict[str, Any]:
    return {key: value for key, value in record.items() if value is not None}


def _from_item(item: Mapping[str, Any]) -> Ticket:
    record = {key: _plain(value) for key, value in item.items()}
    record.setdefault("device", None)
    record.setdefault("comments", [])
    return record


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


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

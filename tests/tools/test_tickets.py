"""Ticket rules, run against both storage backends (DynamoDB under moto, SQLite) with identical
expectations, and the ticket tools through the dispatch table."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from tools import specs
from tools.dispatch import ToolTable
from tools.errors import ToolError
from tools.tickets import (
    MAX_COMMENTS_PER_TICKET,
    DynamoTicketRepository,
    SqliteTicketRepository,
    StaleTicketError,
    TicketService,
    ticket_tools,
)

ALICE = "0b7e5c1a-alice"
BOB = "5f2d9e3c-bob"


class StepClock:
    """A clock that advances one second per reading, so creation order is unambiguous."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


def create_tickets_table(table_name: str = "tickets", client: Any = None, resource: Any = None) -> Any:
    """The table exactly as the AgentCore stack declares it (keys and index from the backend)."""
    repo = DynamoTicketRepository
    client = client or boto3.client("dynamodb", region_name="eu-central-1")
    client.create_table(
        TableName=table_name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": repo.PARTITION_KEY, "AttributeType": "S"},
            {"AttributeName": repo.SORT_KEY, "AttributeType": "S"},
            {"AttributeName": repo.INDEX_SORT_KEY, "AttributeType": "S"},
        ],
        KeySchema=[
            {"AttributeName": repo.PARTITION_KEY, "KeyType": "HASH"},
            {"AttributeName": repo.SORT_KEY, "KeyType": "RANGE"},
        ],
        LocalSecondaryIndexes=[
            {
                "IndexName": repo.INDEX_NAME,
                "KeySchema": [
                    {"AttributeName": repo.PARTITION_KEY, "KeyType": "HASH"},
                    {"AttributeName": repo.INDEX_SORT_KEY, "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    )
    return (resource or boto3.resource("dynamodb", region_name="eu-central-1")).Table(table_name)


@pytest.fixture(scope="module")
def dynamodb() -> Iterator[tuple[Any, Any]]:
    """One moto DynamoDB for the module (clients are the slow part); each test gets a fresh table."""
    with pytest.MonkeyPatch.context() as patch:
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            patch.setenv(name, "testing")
        with mock_aws():
            yield (
                boto3.client("dynamodb", region_name="eu-central-1"),
                boto3.resource("dynamodb", region_name="eu-central-1"),
            )


@pytest.fixture(params=["dynamodb", "sqlite"])
def repository(request, tmp_path: Path) -> Iterator[object]:
    if request.param == "sqlite":
        repo = SqliteTicketRepository(tmp_path / "tickets.db")
        yield repo
        repo.close()
        return
    client, resource = request.getfixturevalue("dynamodb")
    table = create_tickets_table(f"tickets-{len(client.list_tables()['TableNames'])}", client, resource)
    yield DynamoTicketRepository(table)
    table.delete()


@pytest.fixture
def service(repository) -> TicketService:
    return TicketService(repository, clock=StepClock())


def dispatch(service: TicketService, tool: str, arguments: Any, owner: str | None) -> dict[str, Any]:
    """One ticket tool call as both transports make it: through the dispatch table."""
    return ToolTable(ticket_tools(service), identity_source="test").call(tool, arguments, owner)


def new_ticket(service: TicketService, owner: str = ALICE, **overrides: Any) -> dict[str, Any]:
    arguments: dict[str, Any] = {
        "email": "alice@example.com",
        "subject": "Router X200 drops Wi-Fi",
        "description": "The router drops the 5 GHz network every evening; a restart helps for an hour.",
        "priority": "high",
        "device": "Router X200",
    }
    arguments.update(overrides)
    return service.create(owner, **arguments)


def assert_error(code: str, field: str, call, *args, **kwargs) -> ToolError:
    with pytest.raises(ToolError) as caught:
        call(*args, **kwargs)
    assert caught.value.code == code
    assert caught.value.message.startswith(f"{field}:") or field in caught.value.message
    return caught.value


# --- happy paths ---------------------------------------------------------------------------------


def test_create_returns_an_open_ticket_with_a_well_formed_id(service):
    ticket = new_ticket(service)
    assert ticket["ticket_id"].startswith("TCK-") and len(ticket["ticket_id"]) == 12
    assert ticket["status"] == "open"
    assert ticket["priority"] == "high"
    assert ticket["device"] == "Router X200"
    assert ticket["comments"] == []
    assert ticket["created_at"] == ticket["updated_at"] == "2026-11-24T09:00:01.000000Z"
    assert "owner" not in ticket and "version" not in ticket
    json.dumps(ticket)


def test_get_returns_what_create_stored(service):
    created = new_ticket(service)
    assert service.get(ALICE, created["ticket_id"]) == created


def test_get_accepts_a_lowercase_ticket_id(service):
    created = new_ticket(service)
    assert service.get(ALICE, created["ticket_id"].lower())["ticket_id"] == created["ticket_id"]


def test_create_normalises_text_and_defaults(service):
    ticket = service.create(ALICE, " Alice@Example.COM ", "  Printer\n  jams  ", "  Paper jams.  ")
    assert ticket["email"] == "Alice@example.com"
    assert ticket["subject"] == "Printer jams"
    assert ticket["description"] == "Paper jams."
    assert ticket["priority"] == "normal"
    assert ticket["device"] is None


def test_list_is_newest_first_and_respects_limit(service):
    ids = [new_ticket(service, subject=f"Problem {n}")["ticket_id"] for n in range(4)]
    listed = service.list(ALICE, limit=3)
    assert listed["count"] == 3
    assert [t["ticket_id"] for t in listed["tickets"]] == ids[::-1][:3]
    assert listed["tickets"][0]["comment_count"] == 0


def test_list_filters_by_status(service):
    first = new_ticket(service)
    new_ticket(service)
    service.update_status(ALICE, first["ticket_id"], "resolved")
    resolved = service.list(ALICE, status="resolved")
    assert [t["ticket_id"] for t in resolved["tickets"]] == [first["ticket_id"]]
    assert service.list(ALICE, status="open")["count"] == 1


def test_update_status_changes_status_and_updated_at(service):
    created = new_ticket(service)
    updated = service.update_status(ALICE, created["ticket_id"], "in_progress")
    assert updated["status"] == "in_progress"
    assert updated["updated_at"] > created["updated_at"]
    assert service.get(ALICE, created["ticket_id"])["status"] == "in_progress"


def test_update_to_the_same_status_changes_nothing(service):
    created = new_ticket(service)
    assert service.update_status(ALICE, created["ticket_id"], "open") == created


def test_comments_are_appended_in_order(service):
    created = new_ticket(service)
    service.add_comment(ALICE, created["ticket_id"], "Firmware is 2.1.4.")
    ticket = service.add_comment(ALICE, created["ticket_id"], "  It also happens on 2.4 GHz.  ")
    assert [c["comment"] for c in ticket["comments"]] == ["Firmware is 2.1.4.", "It also happens on 2.4 GHz."]
    assert service.get(ALICE, created["ticket_id"])["comments"] == ticket["comments"]
    assert service.list(ALICE)["tickets"][0]["comment_count"] == 2


# --- ownership ------------------------------------------------------------------------------------


def test_another_owner_cannot_read_a_ticket(service):
    created = new_ticket(service)
    error = assert_error("not_found", "ticket_id", service.get, BOB, created["ticket_id"])
    assert "for the current user" in error.message


def test_another_owner_cannot_change_status(service):
    created = new_ticket(service)
    assert_error("not_found", "ticket_id", service.update_status, BOB, created["ticket_id"], "closed")
    assert service.get(ALICE, created["ticket_id"])["status"] == "open"


def test_another_owner_cannot_comment(service):
    created = new_ticket(service)
    assert_error("not_found", "ticket_id", service.add_comment, BOB, created["ticket_id"], "mine now")
    assert service.get(ALICE, created["ticket_id"])["comments"] == []


def test_another_owner_does_not_see_tickets_in_lists(service):
    new_ticket(service)
    assert service.list(BOB) == {"tickets": [], "count": 0}


def test_not_found_is_indistinguishable_from_foreign(service):
    created = new_ticket(service)
    foreign = assert_error("not_found", "ticket_id", service.get, BOB, created["ticket_id"])
    missing = assert_error("not_found", "ticket_id", service.get, BOB, "TCK-00000000")
    assert foreign.message.replace(created["ticket_id"], "X") == missing.message.replace("TCK-00000000", "X")


@pytest.mark.parametrize("owner", ["", "   ", None, "x" * 129, "bad\x00owner"])
def test_missing_or_malformed_owner_is_unauthorized(service, owner):
    with pytest.raises(ToolError) as caught:
        service.create(owner, "a@example.com", "s", "d")
    assert caught.value.code == "unauthorized"


# --- bad input -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "email",
    [
        "",
        "   ",
        "alice",
        "alice@",
        "@example.com",
        "alice@example",
        "alice@@example.com",
        "al ice@example.com",
        "alice@exa_mple.com",
        "a" * 250 + "@example.com",
    ],
)
def test_malformed_email_is_rejected(service, email):
    assert_error("invalid_argument", "email", new_ticket, service, email=email)


def test_non_string_email_is_rejected(service):
    assert_error("invalid_argument", "email", new_ticket, service, email=42)


@pytest.mark.parametrize("description", ["", "   \n\t "])
def test_empty_description_is_rejected(service, description):
    assert_error("invalid_argument", "description", new_ticket, service, description=description)


def test_oversize_description_is_rejected(service):
    error = assert_error(
        "invalid_argument",
        "description",
        new_ticket,
        service,
        description="x" * (specs.MAX_DESCRIPTION_CHARS + 1),
    )
    assert str(specs.MAX_DESCRIPTION_CHARS) in error.message


def test_description_at_the_limit_is_accepted(service):
    assert len(new_ticket(service, description="x" * specs.MAX_DESCRIPTION_CHARS)["description"]) == 4000


def test_oversize_subject_is_rejected(service):
    assert_error(
        "invalid_argument", "subject", new_ticket, service, subject="s" * (specs.MAX_SUBJECT_CHARS + 1)
    )


def test_oversize_device_is_rejected(service):
    assert_error("invalid_argument", "device", new_ticket, service, device="d" * 101)


def test_control_characters_are_rejected(service):
    assert_error("invalid_argument", "description", new_ticket, service, description="bad \x00 byte")


def test_bad_priority_is_rejected(service):
    assert_error("invalid_argument", "priority", new_ticket, service, priority="urgent")


@pytest.mark.parametrize("ticket_id", ["", "TCK-123", "TCK-1234567G", "1234", "TCK-12345678-extra", 7])
def test_malformed_ticket_id_is_rejected(service, ticket_id):
    assert_error("invalid_argument", "ticket_id", service.get, ALICE, ticket_id)


def test_unknown_ticket_id_is_not_found(service):
    assert_error("not_found", "ticket_id", service.get, ALICE, "TCK-DEADBEEF")


@pytest.mark.parametrize("status", ["done", "", "OPEN", None])
def test_bad_status_is_rejected(service, status):
    created = new_ticket(service)
    assert_error("invalid_argument", "status", service.update_status, ALICE, created["ticket_id"], status)
    assert service.get(ALICE, created["ticket_id"])["status"] == "open"


def test_bad_status_filter_is_rejected(service):
    assert_error("invalid_argument", "status", service.list, ALICE, status="pending")


@pytest.mark.parametrize("limit", [0, 51, -1, True, "5"])
def test_bad_limit_is_rejected(service, limit):
    assert_error("invalid_argument", "limit", service.list, ALICE, limit=limit)


def test_empty_and_oversize_comments_are_rejected(service):
    created = new_ticket(service)
    assert_error("invalid_argument", "comment", service.add_comment, ALICE, created["ticket_id"], "  ")
    assert_error("invalid_argument", "comment", service.add_comment, ALICE, created["ticket_id"], "c" * 2001)
    assert service.get(ALICE, created["ticket_id"])["comments"] == []


def test_comment_count_is_bounded(service):
    created = new_ticket(service)
    for n in range(MAX_COMMENTS_PER_TICKET):
        service.add_comment(ALICE, created["ticket_id"], f"note {n}")
    with pytest.raises(ToolError) as caught:
        service.add_comment(ALICE, created["ticket_id"], "one too many")
    assert caught.value.code == "limit_exceeded"
    assert len(service.get(ALICE, created["ticket_id"])["comments"]) == MAX_COMMENTS_PER_TICKET


# --- repository conditions -------------------------------------------------------------------------


def test_stale_version_is_refused(repository, service):
    created = new_ticket(service)
    record = repository.get(ALICE, created["ticket_id"])
    record["status"] = "closed"
    record["version"] = 2
    repository.replace(dict(record), 1)
    with pytest.raises(StaleTicketError):
        repository.replace({**record, "version": 3}, 1)


def test_concurrent_update_is_retried_not_lost(repository):
    """A writer that sneaks in between read and write makes the service re-read and re-apply."""

    class Interfering:
        def __init__(self, inner):
            self.inner = inner
            self.interfered = False

        def __getattr__(self, name):
            return getattr(self.inner, name)

        def replace(self, record, expected_version):
            if not self.interfered:
                self.interfered = True
                sneaky = self.inner.get(record["owner"], record["ticket_id"])
                sneaky["comments"] = [*sneaky["comments"], {"comment": "other writer", "created_at": "x"}]
                sneaky["version"] = expected_version + 1
                self.inner.replace(sneaky, expected_version)
            self.inner.replace(record, expected_version)

    service = TicketService(Interfering(repository), clock=StepClock())
    created = new_ticket(service)
    ticket = service.add_comment(ALICE, created["ticket_id"], "mine")
    assert [c["comment"] for c in ticket["comments"]] == ["other writer", "mine"]


# --- the ticket tools through the dispatch table ------------------------------------------------------


def test_dispatch_runs_every_ticket_tool(service):
    created = dispatch(
        service,
        "create_ticket",
        {"email": "alice@example.com", "subject": "No sound", "description": "Speaker S1 is silent."},
        ALICE,
    )
    assert created["priority"] == "normal"
    tid = created["ticket_id"]
    assert dispatch(service, "get_ticket", {"ticket_id": tid}, ALICE) == created
    listed = dispatch(service, "list_tickets", {}, ALICE)
    assert listed["count"] == 1 and listed["tickets"][0]["ticket_id"] == tid
    updated = dispatch(service, "update_ticket_status", {"ticket_id": tid, "status": "closed"}, ALICE)
    assert updated["status"] == "closed"
    assert service.get(ALICE, tid)["status"] == "closed"
    commented = dispatch(service, "add_ticket_comment", {"ticket_id": tid, "comment": "ok"}, ALICE)
    assert [c["comment"] for c in commented["comments"]] == ["ok"]
    assert set(ticket_tools(service)) == {s.name for s in specs.specs_for("tickets")}


def test_dispatch_passes_every_create_argument(service):
    created = dispatch(
        service,
        "create_ticket",
        {
            "email": "alice@example.com",
            "subject": "No sound",
            "description": "Speaker S1 is silent.",
            "priority": "low",
            "device": "Speaker S1",
        },
        ALICE,
    )
    assert (created["priority"], created["device"], created["email"]) == (
        "low",
        "Speaker S1",
        "alice@example.com",
    )
    assert (created["subject"], created["description"]) == ("No sound", "Speaker S1 is silent.")


def test_dispatch_list_applies_the_status_filter_and_limit(service):
    ids = [new_ticket(service, subject=f"n{n}")["ticket_id"] for n in range(3)]
    service.update_status(ALICE, ids[0], "resolved")
    assert [
        t["ticket_id"] for t in dispatch(service, "list_tickets", {"status": "resolved"}, ALICE)["tickets"]
    ] == [ids[0]]
    assert [t["ticket_id"] for t in dispatch(service, "list_tickets", {"limit": 2}, ALICE)["tickets"]] == ids[
        :0:-1
    ]
    assert dispatch(service, "list_tickets", {"limit": 2.0}, ALICE)["count"] == 2


def test_dispatch_acts_for_the_actor_parameter_only(service):
    created = new_ticket(service)
    with pytest.raises(ToolError) as caught:
        dispatch(service, "get_ticket", {"ticket_id": created["ticket_id"]}, BOB)
    assert caught.value.code == "not_found"


def test_an_identity_argument_in_the_arguments_is_refused_not_used(service):
    """The public schema has no `_actor`: the identity is never an argument (the Lambda takes it out of
    the event before dispatching, functions/common.py), so one from the model is an unknown argument."""
    created = new_ticket(service)
    with pytest.raises(ToolError) as caught:
        dispatch(service, "get_ticket", {"ticket_id": created["ticket_id"], "_actor": ALICE}, BOB)
    assert caught.value.code == "invalid_argument"
    assert caught.value.message.startswith("_actor: unknown argument")


@pytest.mark.parametrize("tool", [s.name for s in specs.specs_for("tickets")])
@pytest.mark.parametrize("actor", [None, "", "   "])
def test_every_ticket_tool_needs_an_actor_before_anything_else(service, tool, actor):
    with pytest.raises(ToolError) as caught:
        dispatch(service, tool, {"not": "valid"}, actor)
    assert (caught.value.code, caught.value.status) == ("unauthorized", 401)
    assert caught.value.message == "no verified caller identity: test"
    assert service.list(ALICE)["count"] == 0


@pytest.mark.parametrize(
    ("tool", "arguments", "field"),
    [
        ("get_ticket", {}, "ticket_id"),
        ("get_ticket", {"ticket_id": "TCK-1234567"}, "ticket_id"),
        ("get_ticket", {"ticket_id": "tck-1234abcd"}, "ticket_id"),
        ("get_ticket", {"ticket_id": "TCK-12345678", "owner": "bob"}, "owner"),
        ("create_ticket", {"subject": "s", "description": "d"}, "email"),
        ("create_ticket", {"email": None, "subject": "s", "description": "d"}, "email"),
        ("create_ticket", {"email": "a@example.com", "subject": "s"}, "description"),
        ("create_ticket", {"email": "a@example.com", "subject": "s", "description": ""}, "description"),
        ("create_ticket", {"email": "a@example.com", "subject": "s", "description": "   "}, "description"),
        ("create_ticket", {"email": "a@example.com", "subject": 5, "description": "d"}, "subject"),
        (
            "create_ticket",
            {"email": "a@example.com", "subject": "s", "description": "d", "priority": "p1"},
            "priority",
        ),
        ("list_tickets", {"limit": "10"}, "limit"),
        ("list_tickets", {"limit": True}, "limit"),
        ("list_tickets", {"limit": 500}, "limit"),
        ("list_tickets", {"limit": 2.5}, "limit"),
        ("list_tickets", {"status": "gone"}, "status"),
        ("update_ticket_status", {"ticket_id": "TCK-12345678"}, "status"),
        ("add_ticket_comment", {"ticket_id": "TCK-12345678", "comment": "c" * 2001}, "comment"),
    ],
)
def test_dispatch_rejects_bad_arguments_naming_the_field(service, tool, arguments, field):
    with pytest.raises(ToolError) as caught:
        dispatch(service, tool, arguments, ALICE)
    assert (caught.value.code, caught.value.status) == ("invalid_argument", 400)
    assert caught.value.message.startswith(f"{field}:")
    assert service.list(ALICE)["count"] == 0


def test_dispatch_rejects_non_object_arguments(service):
    with pytest.raises(ToolError) as caught:
        dispatch(service, "list_tickets", ["status", "open"], ALICE)
    assert caught.value.code == "invalid_argument"
    assert caught.value.message == "arguments: must be a JSON object (got array) (type)"


@pytest.mark.parametrize("tool", ["delete_ticket", "search_knowledge_base", "", None])
def test_an_unknown_ticket_tool_names_itself_and_the_known_tools(service, tool):
    with pytest.raises(ToolError) as caught:
        dispatch(service, tool, {}, ALICE)
    assert (caught.value.code, caught.value.status) == ("unknown_tool", 404)
    assert caught.value.message == (
        f"tool: unknown tool {str(tool)!r}; known tools: "
        "['create_ticket', 'get_ticket', 'list_tickets', 'update_ticket_status', 'add_ticket_comment']"
    )


def test_error_body_is_json(service):
    with pytest.raises(ToolError) as caught:
        service.get(ALICE, "TCK-00000000")
    assert json.loads(json.dumps(caught.value.to_dict())) == {
        "error": {
            "code": "not_found",
            "message": "ticket_id: no ticket TCK-00000000 found for the current user",
        }
    }


def test_a_list_entry_is_the_ticket_summary(service):
    created = new_ticket(service)
    service.add_comment(ALICE, created["ticket_id"], "one")
    (summary,) = service.list(ALICE, limit=1)["tickets"]
    assert summary == {
        "ticket_id": created["ticket_id"],
        "subject": "Router X200 drops Wi-Fi",
        "status": "open",
        "priority": "high",
        "device": "Router X200",
        "created_at": created["created_at"],
        "updated_at": service.get(ALICE, created["ticket_id"])["updated_at"],
        "comment_count": 1,
    }
    assert service.list(ALICE, limit=specs.MAX_LIST_LIMIT)["count"] == 1


def test_dynamodb_list_reads_consistently_and_follows_pages():
    """The exact Query requests (botocore Stubber): strongly consistent, on the LSI, newest first, the
    status as a filter, and the next page requested from LastEvaluatedKey until `limit` records."""
    from botocore.stub import Stubber

    resource = boto3.resource(
        "dynamodb", region_name="eu-central-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    table = resource.Table("tickets")

    def item() -> dict[str, Any]:  # a fresh one per response: boto3 deserialises the response in place
        return {"owner": {"S": ALICE}, "ticket_id": {"S": "TCK-0000000A"}, "version": {"N": "1"}}

    base = {
        "TableName": "tickets",
        "IndexName": "by_created",
        "KeyConditionExpression": "#o = :o",
        "ExpressionAttributeNames": {"#o": "owner", "#s": "status"},
        "ExpressionAttributeValues": {":o": ALICE, ":s": "open"},  # the resource layer serialises them
        "FilterExpression": "#s = :s",
        "ScanIndexForward": False,
        "ConsistentRead": True,
        "Limit": 25,
    }
    page = {"owner": {"S": ALICE}, "ticket_id": {"S": "TCK-0000000A"}, "created_at": {"S": "t"}}
    with Stubber(resource.meta.client) as stub:
        stub.add_response("query", {"Items": [item()], "LastEvaluatedKey": page}, base)
        start = {"owner": ALICE, "ticket_id": "TCK-0000000A", "created_at": "t"}
        stub.add_response("query", {"Items": [item(), item()]}, {**base, "ExclusiveStartKey": start})
        records = DynamoTicketRepository(table).list(ALICE, "open", 2)
        stub.assert_no_pending_responses()
    assert (
        records
        == [{"owner": ALICE, "ticket_id": "TCK-0000000A", "version": 1, "device": None, "comments": []}] * 2
    )

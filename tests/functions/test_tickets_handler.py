"""The tickets Lambda handler, end to end against DynamoDB under moto (table built like the stack's)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from moto import mock_aws

from functions.common import MissingSettingError
from functions.tickets import handler as tickets_handler
from tests.tools.test_tickets import create_tickets_table
from tools import specs

ALICE = "a1b2c3d4-alice"
BOB = "e5f6a7b8-bob"


def context(tool: str) -> SimpleNamespace:
    """The Lambda context as the gateway fills it: the tool name carries the target prefix."""
    return SimpleNamespace(
        client_context=SimpleNamespace(custom={"bedrockAgentCoreToolName": f"tickets___{tool}"})
    )


@pytest.fixture
def table(monkeypatch):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-central-1")
    monkeypatch.setenv("TICKETS_TABLE_NAME", "aaf-tickets")
    monkeypatch.setattr(tickets_handler, "_table", None)
    with mock_aws():
        yield create_tickets_table("aaf-tickets")


def call(tool: str, actor: str | None, **arguments):
    event = dict(arguments)
    if actor is not None:
        event["_actor"] = actor
    result = tickets_handler.handler(event, context(tool))
    json.dumps(result)  # what the gateway returns to the agent must be JSON
    return result


def create(actor: str = ALICE, **overrides):
    arguments = {
        "email": "alice@example.com",
        "subject": "Mesh M3 node shows red light",
        "description": "The satellite node turned red after moving it upstairs.",
        "device": "Mesh M3",
    }
    arguments.update(overrides)
    return call("create_ticket", actor, **arguments)


def test_create_stores_the_ticket_under_the_actor(table):
    ticket = create()
    item = table.get_item(Key={"owner": ALICE, "ticket_id": ticket["ticket_id"]})["Item"]
    assert item["subject"] == "Mesh M3 node shows red light"
    assert item["status"] == "open"


def test_full_ticket_lifecycle(table):
    ticket_id = create()["ticket_id"]
    assert call("get_ticket", ALICE, ticket_id=ticket_id)["device"] == "Mesh M3"
    assert (
        call("update_ticket_status", ALICE, ticket_id=ticket_id, status="in_progress")["status"]
        == "in_progress"
    )
    commented = call("add_ticket_comment", ALICE, ticket_id=ticket_id, comment="Moved it back; still red.")
    assert commented["comments"][0]["comment"] == "Moved it back; still red."
    listed = call("list_tickets", ALICE, status="in_progress")
    assert [t["ticket_id"] for t in listed["tickets"]] == [ticket_id]
    assert listed["tickets"][0]["comment_count"] == 1


def test_list_defaults_to_ten_newest(table):
    for n in range(12):
        create(subject=f"Issue {n}")
    assert call("list_tickets", ALICE)["count"] == 10


@pytest.mark.parametrize(
    ("tool", "arguments"),
    [
        ("get_ticket", {}),
        ("update_ticket_status", {"status": "closed"}),
        ("add_ticket_comment", {"comment": "I can see your ticket"}),
    ],
)
def test_another_actor_gets_not_found_and_changes_nothing(table, tool, arguments):
    ticket_id = create()["ticket_id"]
    result = call(tool, BOB, ticket_id=ticket_id, **arguments)
    assert result["error"]["code"] == "not_found"
    stored = table.get_item(Key={"owner": ALICE, "ticket_id": ticket_id})["Item"]
    assert stored["status"] == "open" and stored["comments"] == []


def test_another_actor_lists_nothing(table):
    create()
    assert call("list_tickets", BOB) == {"tickets": [], "count": 0}


def test_model_supplied_owner_argument_is_rejected(table):
    result = call("list_tickets", ALICE, owner=BOB)
    assert result["error"] == {
        "code": "invalid_argument",
        "message": result["error"]["message"],
    }
    assert result["error"]["message"].startswith("owner:")


@pytest.mark.parametrize("actor", [None, ""])
def test_missing_actor_is_unauthorized(table, actor):
    result = call("list_tickets", actor)
    assert result["error"]["code"] == "unauthorized"


@pytest.mark.parametrize("tool", [s.name for s in specs.specs_for("tickets")])
@pytest.mark.parametrize("actor", [None, "", 42, ["alice"], {"sub": ALICE}])
def test_every_ticket_tool_refuses_a_call_without_a_verified_identity(table, tool, actor):
    event = {"ticket_id": "TCK-0000ABCD", "email": "a@example.com", "subject": "s", "description": "d"}
    if actor is not None:
        event[specs.IDENTITY_ARGUMENT] = actor
    result = tickets_handler.handler(event, context(tool))
    assert result["error"]["code"] == "unauthorized"
    assert specs.IDENTITY_ARGUMENT in result["error"]["message"]
    assert table.scan()["Items"] == []


def test_the_identity_argument_is_declared_in_the_gateway_schema_of_every_ticket_tool(table):
    """The handler reads the owner from the event, which holds the tool's declared input properties."""
    for spec in specs.specs_for("tickets"):
        assert specs.IDENTITY_ARGUMENT in spec.gateway_input_schema["properties"]
        assert specs.IDENTITY_ARGUMENT not in spec.gateway_input_schema["required"]
        assert specs.IDENTITY_ARGUMENT not in spec.input_schema["properties"]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"email": None}, "email"),
        ({"email": "alice.example.com"}, "email"),
        ({"email": "alice@localhost"}, "email"),
        ({"description": ""}, "description"),
        ({"description": "   "}, "description"),
        ({"description": "x" * 4001}, "description"),
        ({"subject": "s" * 201}, "subject"),
        ({"priority": "critical"}, "priority"),
        ({"device": 42}, "device"),
    ],
)
def test_create_rejects_bad_input_and_stores_nothing(table, overrides, field):
    result = create(**overrides)
    assert result["error"]["code"] == "invalid_argument"
    assert result["error"]["message"].startswith(f"{field}:")
    assert table.scan()["Count"] == 0


@pytest.mark.parametrize(
    ("tool", "arguments", "code", "field"),
    [
        ("get_ticket", {"ticket_id": "TCK-FFFFFFFF"}, "not_found", "ticket_id"),
        ("get_ticket", {"ticket_id": "12"}, "invalid_argument", "ticket_id"),
        (
            "update_ticket_status",
            {"ticket_id": "TCK-FFFFFFFF", "status": "reopened"},
            "invalid_argument",
            "status",
        ),
        ("add_ticket_comment", {"ticket_id": "TCK-FFFFFFFF", "comment": ""}, "invalid_argument", "comment"),
        ("list_tickets", {"limit": 0}, "invalid_argument", "limit"),
        ("delete_ticket", {"ticket_id": "TCK-FFFFFFFF"}, "unknown_tool", "tool"),
        ("", {"ticket_id": "TCK-FFFFFFFF"}, "unknown_tool", "tool"),
    ],
)
def test_bad_calls_get_a_clear_error(table, tool, arguments, code, field):
    result = call(tool, ALICE, **arguments)
    assert result["error"]["code"] == code
    assert result["error"]["message"].startswith(f"{field}:")


def test_non_object_event_is_refused(table):
    """A non-object event cannot carry the verified identity: refused before anything else."""
    assert tickets_handler.handler(["x"], context("list_tickets"))["error"]["code"] == "unauthorized"


def test_the_event_is_not_changed(table):
    """The handler takes the identity out of its own copy of the event."""
    event = {"_actor": ALICE, "limit": 3}
    tickets_handler.handler(event, context("list_tickets"))
    assert event == {"_actor": ALICE, "limit": 3}


def test_an_unknown_tool_names_the_ticket_tools(table):
    result = call("delete_ticket", ALICE)
    assert result["error"]["message"] == (
        "tool: unknown tool 'delete_ticket'; known tools: "
        "['create_ticket', 'get_ticket', 'list_tickets', 'update_ticket_status', 'add_ticket_comment']"
    )


def test_a_context_without_a_tool_name_is_an_unknown_tool(table):
    result = tickets_handler.handler({"_actor": ALICE}, SimpleNamespace(client_context=None))
    assert result["error"]["code"] == "unknown_tool"
    assert result["error"]["message"].startswith("tool: unknown tool ''")


def test_missing_table_setting_names_the_variable(monkeypatch):
    monkeypatch.delenv("TICKETS_TABLE_NAME", raising=False)
    monkeypatch.setattr(tickets_handler, "_table", None)  # restored afterwards for the module's handler
    with pytest.raises(MissingSettingError, match="TICKETS_TABLE_NAME"):
        tickets_handler.handler({"_actor": ALICE}, context("list_tickets"))


def test_tool_name_without_prefix_is_accepted(table):
    plain = SimpleNamespace(
        client_context=SimpleNamespace(custom={"bedrockAgentCoreToolName": "list_tickets"})
    )
    assert tickets_handler.handler({"_actor": ALICE}, plain) == {"tickets": [], "count": 0}

"""The tool table (tools/dispatch.py), the schema validation (tools/validation.py) and the one error type
(tools/errors.py), in-process against the published specs."""

from __future__ import annotations

from typing import Any

import pytest
from jsonschema import Draft202012Validator

from tools import specs
from tools.dispatch import ToolTable
from tools.errors import HTTP_STATUS, ErrorCode, ToolError
from tools.validation import nonblank, validate_arguments


class Recorder:
    """A handler that records what it was given."""

    def __init__(self) -> None:
        self.calls: list[tuple[dict[str, Any], str | None]] = []

    def __call__(self, arguments: dict[str, Any], actor: str | None) -> dict[str, Any]:
        self.calls.append((arguments, actor))
        return {"ok": True}


def refusal(call: Any, *args: Any) -> ToolError:
    with pytest.raises(ToolError) as caught:
        call(*args)
    return caught.value


# --- errors -----------------------------------------------------------------------------------------


def test_every_code_has_a_status_and_caller_errors_are_4xx() -> None:
    assert set(HTTP_STATUS) == set(ErrorCode)
    assert {code: HTTP_STATUS[code] for code in ErrorCode} == {
        ErrorCode.INVALID_ARGUMENT: 400,
        ErrorCode.UNKNOWN_TOOL: 404,
        ErrorCode.UNAUTHORIZED: 401,
        ErrorCode.NOT_FOUND: 404,
        ErrorCode.CONFLICT: 409,
        ErrorCode.LIMIT_EXCEEDED: 409,
        ErrorCode.NOT_CONFIGURED: 503,
        ErrorCode.UPSTREAM_ERROR: 502,
    }


def test_a_tool_error_carries_code_status_message_and_body() -> None:
    error = ToolError(ErrorCode.LIMIT_EXCEEDED, "comment: too many")
    assert (error.code, error.status, error.message) == ("limit_exceeded", 409, "comment: too many")
    assert str(error) == "limit_exceeded: comment: too many"
    assert error.to_dict() == {"error": {"code": "limit_exceeded", "message": "comment: too many"}}
    assert type(error.to_dict()["error"]["code"]) is str


# --- the table ----------------------------------------------------------------------------------------


def test_the_table_runs_the_named_handler_with_checked_arguments_and_the_actor() -> None:
    search, tickets = Recorder(), Recorder()
    table = ToolTable({"search_knowledge_base": search, "list_tickets": tickets}, identity_source="test")
    assert table.call("search_knowledge_base", {"query": "reset"}, None) == {"ok": True}
    assert search.calls == [({"query": "reset", "max_results": 5}, None)]
    table.call("list_tickets", {"status": "open"}, "alice")
    assert tickets.calls == [({"status": "open", "limit": 10}, "alice")]
    assert table.names == ["list_tickets", "search_knowledge_base"]  # tools/specs.py order
    assert [spec.name for spec in table.specs] == table.names


@pytest.mark.parametrize("name", ["delete_ticket", "", "create_ticket", 7, None])
def test_an_unknown_tool_is_a_4xx_naming_it_and_the_known_tools(name: object) -> None:
    handler = Recorder()
    table = ToolTable({"get_ticket": handler, "list_tickets": handler}, identity_source="test")
    error = refusal(table.call, name, {}, "alice")
    assert (error.code, error.status) == (ErrorCode.UNKNOWN_TOOL, 404)
    assert error.message == f"tool: unknown tool {str(name)!r}; known tools: ['get_ticket', 'list_tickets']"
    assert handler.calls == []


def test_an_unknown_name_is_shown_shortened() -> None:
    table = ToolTable({}, identity_source="test")
    error = refusal(table.call, "x" * 500, {}, None)
    assert f"tool: unknown tool {'x' * 80!r}; known tools: []" == error.message


def test_a_handler_without_a_spec_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match=r"\['drop_tables'\]"):
        ToolTable({"drop_tables": Recorder(), "get_ticket": Recorder()}, identity_source="test")


@pytest.mark.parametrize("actor", [None, "", "  \t"])
def test_an_identity_tool_without_an_actor_is_unauthorized(actor: str | None) -> None:
    handler = Recorder()
    table = ToolTable({"get_ticket": handler}, identity_source="the gateway sets _actor")
    error = refusal(table.call, "get_ticket", {"ticket_id": "TCK-0000ABCD"}, actor)
    assert (error.code, error.status) == (ErrorCode.UNAUTHORIZED, 401)
    assert error.message == "no verified caller identity: the gateway sets _actor"
    assert handler.calls == []


def test_a_tool_without_identity_runs_without_an_actor() -> None:
    handler = Recorder()
    ToolTable({"web_search": handler}, identity_source="test").call("web_search", {"query": "q"}, None)
    assert handler.calls == [({"query": "q", "max_results": 5}, None)]


def test_arguments_are_validated_before_the_handler_runs() -> None:
    handler = Recorder()
    table = ToolTable({"web_search": handler}, identity_source="test")
    error = refusal(table.call, "web_search", {"query": "q", "max_results": 11}, None)
    assert error.message == "max_results: must be at most 10 (maximum)"
    assert handler.calls == []


# --- validation: every message names the field and the rule --------------------------------------------


@pytest.mark.parametrize(
    ("tool", "arguments", "message"),
    [
        ("get_ticket", {}, "ticket_id: is required by get_ticket (required)"),
        ("get_ticket", {"ticket_id": None}, "ticket_id: is required by get_ticket (required)"),
        (
            "get_ticket",
            {"ticket_id": "TCK-00000000", "b": 1, "a": 2},
            "a: unknown argument for get_ticket; allowed: ['ticket_id'] (additionalProperties)",
        ),
        (
            "get_ticket",
            {"ticket_id": "tck-0000abcd"},
            "ticket_id: 'tck-0000abcd' does not match ^TCK-[0-9A-F]{8}$ (pattern)",
        ),
        (
            "get_ticket",
            {"ticket_id": "T" * 60},
            f"ticket_id: {repr('T' * 60)[:37]}... does not match ^TCK-[0-9A-F]{{8}}$ (pattern)",
        ),
        ("get_ticket", {"ticket_id": 12}, "ticket_id: must be of type string (got number) (type)"),
        ("get_ticket", {"ticket_id": True}, "ticket_id: must be of type string (got boolean) (type)"),
        ("get_ticket", {"ticket_id": ["x"]}, "ticket_id: must be of type string (got array) (type)"),
        ("get_ticket", {"ticket_id": {}}, "ticket_id: must be of type string (got object) (type)"),
        ("list_tickets", {"limit": "5"}, "limit: must be of type integer (got string) (type)"),
        ("list_tickets", {"limit": True}, "limit: must be of type integer (got boolean) (type)"),
        ("list_tickets", {"limit": 1.5}, "limit: must be of type integer (got number) (type)"),
        ("list_tickets", {"limit": 0}, "limit: must be at least 1 (minimum)"),
        ("list_tickets", {"limit": 51}, "limit: must be at most 50 (maximum)"),
        (
            "list_tickets",
            {"status": "gone"},
            "status: must be one of ['open', 'in_progress', 'resolved', 'closed'] (got 'gone') (enum)",
        ),
        (
            "add_ticket_comment",
            {"ticket_id": "TCK-00000000", "comment": ""},
            "comment: must be at least 1 characters (minLength)",
        ),
        (
            "add_ticket_comment",
            {"ticket_id": "TCK-00000000", "comment": "c" * 2001},
            "comment: is 2001 characters; the maximum is 2000 (maxLength)",
        ),
        ("list_tickets", "status=open", "arguments: must be a JSON object (got string) (type)"),
        ("list_tickets", None, "arguments: must be a JSON object (got null) (type)"),
        ("list_tickets", 3, "arguments: must be a JSON object (got number) (type)"),
    ],
)
def test_a_refusal_names_the_field_and_the_rule(tool: str, arguments: object, message: str) -> None:
    error = refusal(validate_arguments, specs.spec(tool), arguments)
    assert (error.code, error.status, error.message) == (ErrorCode.INVALID_ARGUMENT, 400, message)


def test_unknown_arguments_are_reported_before_missing_ones_and_before_bad_values() -> None:
    error = refusal(validate_arguments, specs.spec("update_ticket_status"), {"status": "x", "zz": 1})
    assert error.message.startswith("zz: unknown argument")
    error = refusal(validate_arguments, specs.spec("update_ticket_status"), {"status": "x"})
    assert error.message == "ticket_id: is required by update_ticket_status (required)"


def test_several_bad_values_are_reported_in_field_order() -> None:
    error = refusal(validate_arguments, specs.spec("list_tickets"), {"status": 1, "limit": 0})
    assert error.message.startswith("limit:")


def test_defaults_apply_and_integral_numbers_become_integers() -> None:
    checked = validate_arguments(specs.spec("list_tickets"), {"limit": 7.0, "status": None})
    assert checked == {"limit": 7}
    assert type(checked["limit"]) is int
    assert validate_arguments(specs.spec("list_tickets"), {}) == {"limit": 10}
    created = validate_arguments(
        specs.spec("create_ticket"), {"email": "a@b.co", "subject": "s", "description": "d", "device": None}
    )
    assert created == {"email": "a@b.co", "subject": "s", "description": "d", "priority": "normal"}


def test_the_caller_arguments_are_not_changed() -> None:
    arguments = {"limit": 7.0, "status": None}
    validate_arguments(specs.spec("list_tickets"), arguments)
    assert arguments == {"limit": 7.0, "status": None}


@pytest.mark.parametrize("spec", specs.TOOL_SPECS, ids=lambda s: s.name)
def test_every_published_schema_is_valid_json_schema(spec: specs.ToolSpec) -> None:
    Draft202012Validator.check_schema(spec.input_schema)
    Draft202012Validator.check_schema(spec.gateway_input_schema)


def test_nonblank_trims_and_refuses_whitespace() -> None:
    assert nonblank("query", "  a b \n") == "a b"
    error = refusal(nonblank, "subject", " \t\n")
    assert (error.code, error.message) == (ErrorCode.INVALID_ARGUMENT, "subject: must not be blank")


def test_an_unknown_argument_name_is_shown_shortened() -> None:
    error = refusal(validate_arguments, specs.spec("list_tickets"), {"k" * 300: 1})
    assert (
        error.message
        == f"{'k' * 64}: unknown argument for list_tickets; allowed: ['limit', 'status'] (additionalProperties)"
    )


def test_a_rule_without_its_own_message_is_named_with_the_validator_text() -> None:
    tool = specs.ToolSpec(
        name="roll_dice",
        target="knowledge",
        description="test only",
        input_schema={
            "type": "object",
            "properties": {"sides": {"type": "integer", "multipleOf": 2}},
            "additionalProperties": False,
        },
    )
    error = refusal(validate_arguments, tool, {"sides": 7})
    assert error.message == "sides: 7 is not a multiple of 2 (multipleOf)"
    long = specs.ToolSpec(
        name="pick",
        target="knowledge",
        description="test only",
        input_schema={"type": "object", "properties": {"word": {"const": "x"}}},
    )
    assert refusal(validate_arguments, long, {"word": "w" * 500}).message == "word: 'x' was expected (const)"


def test_a_shown_value_of_exactly_the_limit_is_not_shortened() -> None:
    value = "T" * 38  # its repr is 40 characters, the limit
    error = refusal(validate_arguments, specs.spec("get_ticket"), {"ticket_id": value})
    assert error.message == f"ticket_id: {value!r} does not match ^TCK-[0-9A-F]{{8}}$ (pattern)"

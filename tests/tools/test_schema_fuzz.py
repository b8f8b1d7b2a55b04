"""Property-based checks of the tool table against every published schema (hypothesis-jsonschema), in
process: a schema-valid call is answered or refused with a 4xx ToolError, never another exception; a call
that breaks the schema is a ToolError(invalid_argument) naming a field of the call, and runs no handler.

Tickets run over SQLite, knowledge search over the Lambda's `KnowledgeSearch` with a recording Bedrock
client that checks the exact Retrieve request, web search over the Tavily client against a loopback
stand-in of Tavily (tests/tools/test_web_search.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, cast

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema

from tests.tools.test_web_search import FakeTavily
from tools import specs
from tools.dispatch import ToolTable
from tools.errors import ErrorCode, ToolError
from tools.knowledge import KnowledgeSearch, knowledge_tools, retrieve_request
from tools.tickets import SqliteTicketRepository, TicketService, ticket_tools
from tools.validation import validate_arguments
from tools.web_search import TavilyClient, web_search_tools

ACTOR = "alice"
FUZZ = settings(
    max_examples=60,
    deadline=None,
    database=None,  # never write .hypothesis/ into the working tree
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


class CheckingBedrock:
    """Answers `retrieve` after checking the request has exactly the shape `retrieve_request` builds."""

    def retrieve(self, **request: Any) -> dict[str, Any]:
        text = request["retrievalQuery"]["text"]
        count = request["retrievalConfiguration"]["vectorSearchConfiguration"]["numberOfResults"]
        assert request == retrieve_request("KB1", text, count)
        assert text == text.strip() and text and isinstance(count, int) and 1 <= count <= 10
        return {"retrievalResults": [{"content": {"text": text}, "score": 0.5}]}


class CountingHandlers(dict[str, Any]):
    """The handlers of a table, counting how often any of them ran."""

    def __init__(self, handlers: dict[str, Any]) -> None:
        self.runs = 0

        def counted(handler: Any) -> Any:
            def run(arguments: dict[str, Any], actor: str | None) -> Any:
                self.runs += 1
                return handler(arguments, actor)

            return run

        super().__init__({name: counted(handler) for name, handler in handlers.items()})


@pytest.fixture(scope="module")
def tavily() -> Iterator[FakeTavily]:
    with FakeTavily() as fake:
        yield fake


@pytest.fixture(scope="module")
def served(tavily: FakeTavily) -> Iterator[tuple[ToolTable, CountingHandlers, str]]:
    repository = SqliteTicketRepository(":memory:")
    service = TicketService(repository)
    seed = service.create(ACTOR, "alice@example.com", "seed", "seed")["ticket_id"]
    handlers = CountingHandlers(
        {
            **ticket_tools(service),
            **knowledge_tools(KnowledgeSearch(CheckingBedrock(), "KB1")),
            **web_search_tools(TavilyClient("tvly-test", base_url=tavily.url)),
        }
    )
    yield ToolTable(handlers, identity_source="test"), handlers, str(seed)
    repository.close()


def valid(spec: specs.ToolSpec, known_ticket: str) -> st.SearchStrategy[dict[str, Any]]:
    """Schema-valid arguments; for tools taking a ticket id, often the id of a ticket the actor owns."""
    generated = cast("st.SearchStrategy[dict[str, Any]]", from_schema(spec.input_schema))
    if "ticket_id" not in spec.input_schema["properties"]:
        return generated
    return generated | generated.map(lambda arguments: {**arguments, "ticket_id": known_ticket})


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=6,
)


def breaking(spec: specs.ToolSpec) -> st.SearchStrategy[Any]:
    """Mostly schema-breaking calls: the tool's keys, `_actor` and strangers with any JSON value, or not
    an object at all."""
    keys = st.sampled_from([*spec.input_schema["properties"], specs.IDENTITY_ARGUMENT]) | st.text(max_size=8)
    return st.dictionaries(keys, json_values, max_size=4) | json_values


def names_one_of(message: str, fields: set[str]) -> bool:
    return any(message.startswith(f"{field}: ") for field in fields)


def _breaks_schema(spec: specs.ToolSpec, arguments: Any) -> bool:
    try:
        validate_arguments(spec, arguments)
    except ToolError:
        return True
    return False


@pytest.mark.parametrize("spec", specs.TOOL_SPECS, ids=lambda s: s.name)
def test_schema_valid_calls_are_answered_or_refused_with_a_4xx_tool_error(
    served: tuple[ToolTable, CountingHandlers, str], spec: specs.ToolSpec
) -> None:
    table, _, seed = served

    @FUZZ
    @given(arguments=valid(spec, seed))
    def check(arguments: dict[str, Any]) -> None:
        try:
            result = table.call(spec.name, arguments, ACTOR)
        except ToolError as error:
            assert 400 <= error.status < 500, error
            assert names_one_of(error.message, {*spec.input_schema["properties"], "arguments"}), error
            return
        json.dumps(result)
        assert "error" not in result

    check()


@pytest.mark.parametrize("spec", specs.TOOL_SPECS, ids=lambda s: s.name)
def test_calls_that_break_the_schema_are_refused_naming_a_field_and_run_nothing(
    served: tuple[ToolTable, CountingHandlers, str], spec: specs.ToolSpec
) -> None:
    table, handlers, _ = served

    @FUZZ
    @given(arguments=breaking(spec))
    def check(arguments: Any) -> None:
        if not _breaks_schema(spec, arguments):
            return  # generated a valid call: covered above
        runs = handlers.runs
        with pytest.raises(ToolError) as caught:
            table.call(spec.name, arguments, ACTOR)
        error = caught.value
        assert (error.code, error.status) == (ErrorCode.INVALID_ARGUMENT, 400)
        named = set(arguments) if isinstance(arguments, dict) else set()
        assert names_one_of(error.message, {*spec.input_schema["properties"], *named, "arguments"}), error
        assert handlers.runs == runs

    check()


@FUZZ
@given(name=st.text(max_size=30).filter(lambda name: name not in {s.name for s in specs.TOOL_SPECS}))
def test_any_other_tool_name_is_unknown(served: tuple[ToolTable, CountingHandlers, str], name: str) -> None:
    table, handlers, _ = served
    runs = handlers.runs
    with pytest.raises(ToolError) as caught:
        table.call(name, {}, ACTOR)
    assert (caught.value.code, caught.value.status) == (ErrorCode.UNKNOWN_TOOL, 404)
    assert handlers.runs == runs

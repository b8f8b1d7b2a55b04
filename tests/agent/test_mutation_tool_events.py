"""Issue 12: how a turn reads tool results (agent/tool_events.py, docs/agent-api.md `metadata.tools` and
`metadata.citations`): the Strands `ToolResult` content blocks (`json` / `text`), the Lambda targets'
`{"error": ...}` shapes, and how citations of one (uri, page) merge (best score, all passages)."""

from __future__ import annotations

import json
from typing import Any, cast

import pytest
from strands.hooks import AfterToolCallEvent, BeforeToolCallEvent

from agent.tool_events import TurnState, citation_list, collect_citations, result_error, tool_hooks


def kb(*items: Any) -> dict[str, Any]:
    return {"status": "success", "content": [{"json": {"results": list(items)}}]}


def citations(state: TurnState) -> list[dict[str, Any]]:
    return citation_list(state, "")


# --- result_error: the tool answered normally with {"error": ...} ----------------------------------


@pytest.mark.parametrize(
    ("error", "message"),
    [
        ("denied", "denied"),
        ({"message": "no such ticket", "code": "NotFound"}, "NotFound: no such ticket"),
        ({"message": "no such ticket"}, "no such ticket"),  # no code: the message alone
        ({"message": "no such ticket", "code": 404}, "no such ticket"),  # a non-string code is left out
        ({"message": "no such ticket", "code": ""}, "no such ticket"),
        ({"message": 42}, '{"message": 42}'),  # no string message: the object itself
        ({"reason": "x"}, '{"reason": "x"}'),
        ({"message": ""}, '{"message": ""}'),
        (None, "tool failed"),
        ("", "tool failed"),
        (0, "0"),
    ],
)
def test_error_shapes(error: Any, message: str) -> None:
    assert result_error({"status": "success", "content": [{"json": {"error": error}}]}) == message
    text_block = {"status": "success", "content": [{"text": json.dumps({"error": error})}]}
    assert result_error(text_block) == message


def test_error_text_is_bounded() -> None:
    assert result_error({"content": [{"json": {"error": "e" * 900}}]}) == "e" * 500
    long = {"code": "X", "detail": "d" * 900}
    assert result_error({"content": [{"json": {"error": long}}]}) == json.dumps(long)[:500]


def test_blocks_before_the_error_are_skipped_not_the_end() -> None:
    result = {"content": ["not a block", {"text": "plain words, not JSON"}, {"json": {"error": "late"}}]}
    assert result_error(result) == "late"


def test_a_non_string_text_value_is_read_as_is() -> None:
    # a `text` that is already an object (not JSON text) is the payload itself
    assert result_error({"content": [{"text": {"error": "inline"}}]}) == "inline"
    assert result_error({"content": [{"text": 7}, {"text": "[1, 2]"}]}) is None


def test_no_error_key_is_no_error() -> None:
    assert result_error({"content": [{"json": {"results": []}}, {"text": "fine"}]}) is None
    assert result_error({"content": None}) is None
    assert result_error({}) is None


# --- collect_citations --------------------------------------------------------------------------------


def test_items_are_read_from_uri_or_url_page_text_or_content() -> None:
    state = TurnState()
    collect_citations(
        kb(
            {"url": "https://example.com/a", "title": "A", "score": 0.5, "content": "web passage"},
            {"uri": "s3://kb/b.pdf", "page": "3", "score": "0.9", "text": None, "content": "kb passage"},
        ),
        state,
    )
    assert citations(state) == [
        {
            "title": "A",
            "uri": "https://example.com/a",
            "page": None,
            "score": 0.5,
            "text": "web passage",
            "cited": False,
        },
        # a page that is not an int is no page; a score that is not a number is no score
        {
            "title": "s3://kb/b.pdf",
            "uri": "s3://kb/b.pdf",
            "page": None,
            "score": None,
            "text": "kb passage",
            "cited": False,
        },
    ]


def test_bad_payloads_and_items_are_skipped_not_the_end() -> None:
    state = TurnState()
    result = {
        "content": [
            {"text": "not JSON"},
            {
                "json": {
                    "results": [
                        "not an item",
                        {"uri": 123},
                        {"uri": ""},
                        {"title": "no uri"},
                        {"uri": "s3://kb/a.pdf", "score": 1},
                    ]
                }
            },
            {"json": {"results": None}},
            {"json": {"results": [{"uri": "s3://kb/b.pdf", "score": 0.2}]}},
        ]
    }
    collect_citations(result, state)
    assert [(c["uri"], c["score"]) for c in citations(state)] == [
        ("s3://kb/a.pdf", 1.0),
        ("s3://kb/b.pdf", 0.2),
    ]


@pytest.mark.parametrize(
    ("scores", "kept"),
    [
        ([0.9, 0.5], "first"),  # a lower score does not replace the best
        ([0.5, 0.5], "first"),  # nor does an equal one
        ([0.5, None], "first"),  # nor does no score
        ([None, 0.5], "second"),  # any score beats none
        ([0.3, 0.8], "second"),
    ],
)
def test_one_citation_per_uri_and_page_keeps_the_best_score(scores: list[float | None], kept: str) -> None:
    state = TurnState()
    collect_citations(kb({"uri": "s3://kb/a.pdf", "page": 2, "title": "first", "score": scores[0]}), state)
    collect_citations(kb({"uri": "s3://kb/a.pdf", "page": 2, "title": "second", "score": scores[1]}), state)
    (only,) = citations(state)
    assert only["title"] == kept


def test_passages_of_one_source_are_ordered_by_their_best_score() -> None:
    state = TurnState()
    uri = "s3://kb/a.pdf"
    collect_citations(
        kb({"uri": uri, "text": "alpha", "score": 0.9}, {"uri": uri, "text": "beta", "score": 0.7}), state
    )
    collect_citations(kb({"uri": uri, "text": "alpha", "score": 0.5}), state)  # alpha keeps 0.9
    collect_citations(kb({"uri": uri, "text": "gamma", "score": None}, {"uri": uri, "text": "   "}), state)
    (only,) = citations(state)
    assert only["text"] == "alpha\n\nbeta\n\ngamma"  # an unscored passage last; blank text is no passage


def test_a_non_string_passage_is_ignored() -> None:
    state = TurnState()
    collect_citations(kb({"uri": "s3://kb/a.pdf", "content": 5, "score": 0.1}), state)
    assert citations(state)[0]["text"] is None


# --- the after-tool hook: a failed call's message -------------------------------------------------------


def run_tool(
    result: dict[str, Any], exception: Exception | None = None
) -> tuple[TurnState, list[dict[str, Any]]]:
    events: list[dict[str, Any]] = []
    state = TurnState(sink=events.append)
    before, after = tool_hooks(state)
    use: Any = {"toolUseId": "t1", "name": "search_knowledge_base", "input": {"query": "q"}}
    agent: Any = None  # the hooks never read the agent
    before(BeforeToolCallEvent(agent=agent, selected_tool=None, tool_use=use, invocation_state={}))
    after(
        AfterToolCallEvent(
            agent=agent,
            selected_tool=None,
            tool_use=use,
            invocation_state={},
            result=cast(Any, result),
            exception=exception,
        )
    )
    return state, events


def test_a_failed_result_joins_its_text_blocks() -> None:
    result = {"status": "error", "content": [{"json": {"x": 1}}, "raw", {"text": "boom"}, {"text": "again"}]}
    state, events = run_tool(result)
    assert state.tools[0]["error"] == "boom again" and events[-1]["error"] == "boom again"
    assert state.tools[0]["status"] == "error" and not state.citations


def test_a_failed_result_without_text_is_tool_failed() -> None:
    state, _ = run_tool({"status": "error", "content": None})
    assert state.tools[0]["error"] == "tool failed"


def test_a_successful_search_contributes_its_citations() -> None:
    state, events = run_tool(kb({"uri": "s3://kb/a.pdf", "score": 0.4, "text": "p"}))
    assert state.tools[0]["status"] == "success" and events[-1]["error"] is None
    assert [c["uri"] for c in citations(state)] == ["s3://kb/a.pdf"]

"""Code evaluators on hand-made turns and replies."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from eval.agent import AgentReply, parse_reply
from eval.dataset import Turn
from eval.evaluators import (
    PriceTable,
    answer_contains,
    argument_matches,
    document_name,
    guardrail_correct,
    retrieval_hit_rate,
    retrieval_mrr,
    tool_arguments,
    tool_precision,
    tool_recall,
)
from eval.results import CaseResult, Repetition, TurnResult, aggregate, percentile
from eval.scores import Score

MANUAL = "router-x200-user-manual.pdf"
MESH = "mesh-m3-troubleshooting.md"


def reply(tools: Sequence[Any] = (), citations: Sequence[Any] = (), **metadata: Any) -> AgentReply:
    return parse_reply(
        {
            "answer": metadata.pop("answer", "ok"),
            "metadata": {"tools": list(tools), "citations": list(citations), **metadata},
        }
    )


def must(score: Score | None) -> Score:
    assert score is not None
    return score


def turn(**fields: Any) -> Turn:
    return Turn.model_validate({"input": "q", **fields})


SEARCH = {"name": "search_knowledge_base", "arguments": {"query": "factory reset X200"}}
KB_TURN = turn(
    expected_tools=[{"name": "search_knowledge_base", "arguments": {"query": "reset"}}],
    expected_documents=[MANUAL],
)


def test_tool_precision_and_recall_when_exactly_the_expected_tool_is_called() -> None:
    got = reply([SEARCH])
    assert tool_precision(KB_TURN, got).value == 1.0
    assert tool_recall(KB_TURN, got).value == 1.0


def test_an_extra_tool_lowers_precision_not_recall() -> None:
    got = reply([SEARCH, {"name": "list_tickets", "arguments": {}}])
    precision = tool_precision(KB_TURN, got)
    assert precision.value == 0.5
    assert "unexpected: ['list_tickets']" in precision.reason
    assert tool_recall(KB_TURN, got).value == 1.0


def test_a_missing_tool_lowers_recall() -> None:
    score = tool_recall(KB_TURN, reply([]))
    assert score.value == 0.0
    assert "missing: ['search_knowledge_base']" in score.reason


def test_no_tool_expected_and_none_called_is_perfect() -> None:
    assert tool_precision(turn(), reply([])).value == 1.0
    assert tool_recall(turn(), reply([])).value == 1.0


def test_calling_a_tool_when_none_is_expected_is_a_precision_error() -> None:
    assert tool_precision(turn(), reply([SEARCH])).value == 0.0


def test_arguments_use_the_best_matching_call() -> None:
    expected = turn(
        expected_tools=[
            {
                "name": "create_ticket",
                "arguments": {"email": "jane@example.com", "description": {"any_of": ["red", "office"]}},
            }
        ]
    )
    calls = [
        {"name": "create_ticket", "arguments": {"email": "other@example.com", "description": "blue"}},
        {
            "name": "create_ticket",
            "arguments": {"email": "Jane@Example.com", "description": "Office node is RED"},
        },
    ]
    assert must(tool_arguments(expected, reply(calls))).value == 1.0


def test_wrong_arguments_are_named_in_the_reason() -> None:
    expected = turn(
        expected_tools=[
            {
                "name": "update_ticket_status",
                "arguments": {"ticket_id": {"pattern": "^TCK-[0-9A-F]{8}$"}, "status": "resolved"},
            }
        ]
    )
    score = must(
        tool_arguments(
            expected,
            reply(
                [
                    {
                        "name": "update_ticket_status",
                        "arguments": {"ticket_id": "TCK-1A2B3C4D", "status": "closed"},
                    }
                ]
            ),
        )
    )
    assert score.value == 0.5
    assert "update_ticket_status.status: expected 'resolved', got 'closed'" in score.reason


def test_arguments_of_a_tool_never_called_score_zero() -> None:
    score = must(tool_arguments(KB_TURN, reply([])))
    assert score.value == 0.0
    assert "search_knowledge_base not called" in score.reason


def test_arguments_do_not_apply_without_expected_arguments() -> None:
    assert tool_arguments(turn(expected_tools=[{"name": "list_tickets"}]), reply([])) is None


@pytest.mark.parametrize(
    ("expectation", "actual", "ok"),
    [
        ("reset", "Factory RESET", True),
        ("reset", "restart", False),
        ("reset", 5, False),
        (5, 5.0, True),
        (5, True, False),
        (True, True, True),
        (True, 1, False),
        (None, None, True),
        ({"any_of": ["a", "zz"]}, "xzzx", True),
        ({"pattern": "^TCK-[0-9A-F]{8}$"}, "TCK-0000000G", False),
    ],
)
def test_argument_matching_forms(expectation: Any, actual: Any, ok: bool) -> None:
    assert argument_matches(expectation, actual) is ok


def test_document_names_come_from_uris() -> None:
    assert document_name("s3://docs-bucket/corpus/router-x200-user-manual.pdf") == MANUAL
    assert document_name("file:///work/corpus/mesh%20guide.md") == "mesh guide.md"
    assert document_name("corpus/warranty.md") == "warranty.md"


def test_retrieval_hit_and_mrr_rank_distinct_documents() -> None:
    citations = [
        {"title": "Mesh", "uri": f"s3://b/{MESH}", "page": None},
        {"title": "Mesh", "uri": f"s3://b/{MESH}", "page": None},
        {"title": "Manual", "uri": f"s3://b/{MANUAL}", "page": 6},
    ]
    got = reply([SEARCH], citations)
    assert must(retrieval_hit_rate(KB_TURN, got)).value == 1.0
    assert must(retrieval_mrr(KB_TURN, got)).value == 0.5


def test_retrieval_miss_scores_zero_and_does_not_apply_without_expectations() -> None:
    got = reply([SEARCH], [{"title": "Mesh", "uri": f"s3://b/{MESH}"}])
    assert must(retrieval_hit_rate(KB_TURN, got)).value == 0.0
    assert must(retrieval_mrr(KB_TURN, got)).value == 0.0
    assert retrieval_hit_rate(turn(), got) is None


def test_guardrail_correctness_in_both_directions() -> None:
    blocked = reply(guardrail={"action": "BLOCKED", "stage": "input", "message": "no"})
    assert guardrail_correct(turn(guardrail_blocked=True), blocked).value == 1.0
    assert guardrail_correct(turn(), blocked).value == 0.0
    missed = guardrail_correct(turn(guardrail_blocked=True), reply())
    assert missed.value == 0.0
    assert missed.reason == "expected BLOCKED, got NONE"


def test_answer_contains_is_case_insensitive_and_partial() -> None:
    expected = turn(answer_contains=["10 seconds", "Status ring"])
    assert must(answer_contains(expected, reply(answer="Hold it 10 SECONDS."))).value == 0.5


def test_cost_uses_catalog_prices_then_the_bundled_price_list() -> None:
    table = PriceTable(
        {
            "cheap": ("x", 1.0, 2.0),
            "claude-haiku": ("us.anthropic.claude-haiku-4-5-20251001-v1:0", None, None),
        }
    )
    usage = {"input_tokens": 1_000_000, "output_tokens": 500_000, "total_tokens": 1_500_000}
    assert table.cost(reply(model="cheap", usage=usage)).value == pytest.approx(2.0)
    haiku = table.cost(reply(model="claude-haiku", usage=usage))
    assert haiku.value == pytest.approx(1.1 + 2.75)


def test_an_unknown_model_is_a_cost_error_not_zero() -> None:
    score = PriceTable({}).cost(reply(model="mystery-model", usage={"input_tokens": 5}))
    assert score.value is None
    assert score.error == "no price known for model 'mystery-model'"


def test_percentiles_interpolate() -> None:
    assert percentile([100.0, 200.0, 300.0, 400.0], 50) == 250.0
    assert (
        percentile(
            [
                1.0,
                2.0,
                3.0,
                4.0,
                5.0,
                6.0,
                7.0,
                8.0,
                9.0,
                10.0,
                11.0,
                12.0,
                13.0,
                14.0,
                15.0,
                16.0,
                17.0,
                18.0,
                19.0,
                20.0,
                21.0,
            ],
            95,
        )
        == 20.0
    )
    assert percentile([], 50) is None


def test_aggregates_pass_hat_k_and_ignore_errored_judge_scores() -> None:
    def rep(number: int, passed: bool, scores: list[Score]) -> Repetition:
        return Repetition(
            number=number,
            session_id="s",
            turns=[TurnResult(index=0, input="q", scores=scores)],
            passed=passed,
        )

    flaky = CaseResult(
        case_id="flaky",
        category="knowledge",
        turns=1,
        repetitions=[
            rep(1, True, [Score(name="correctness", value=1.0, kind="judge")]),
            rep(2, False, [Score(name="correctness", value=None, kind="judge", error="malformed")]),
        ],
    )
    steady = CaseResult(
        case_id="steady",
        category="knowledge",
        turns=1,
        repetitions=[
            rep(1, True, [Score(name="correctness", value=0.5, kind="judge")]),
            rep(2, True, [Score(name="latency_ms", value=100.0)]),
        ],
    )
    result = aggregate([flaky, steady])
    assert result["pass_hat_k"] == 0.5
    assert result["pass_rate"] == 0.75
    assert result["correctness"] == 0.75
    assert result["judge_error_rate"] == pytest.approx(1 / 3)
    assert result["latency_p50_ms"] == 100.0


def test_pass_needs_every_check_and_names_what_failed() -> None:
    from eval.dataset import GoldenCase
    from eval.runner import CaseScorer

    case = GoldenCase.model_validate(
        {
            "id": "t1",
            "category": "tickets",
            "turns": [
                {
                    "input": "open a ticket",
                    "expected_tools": [{"name": "create_ticket", "arguments": {"email": "a@b.co"}}],
                },
                {"input": "thanks"},
            ],
        }
    )
    failing = reply(
        [
            {
                "name": "create_ticket",
                "arguments": {"email": "a@b.co"},
                "status": "error",
                "error": "subject: empty",
            }
        ]
    )
    result = CaseResult(
        case_id="t1",
        category="tickets",
        turns=2,
        repetitions=[
            Repetition(
                number=1,
                session_id="s",
                turns=[
                    TurnResult(index=0, input="open a ticket", reply=failing),
                    TurnResult(index=1, input="thanks", reply=reply()),
                ],
            ),
            Repetition(
                number=2,
                session_id="s2",
                turns=[
                    TurnResult(index=0, input="open a ticket", error="agent answered HTTP 502"),
                    TurnResult(index=1, input="thanks", error="skipped"),
                ],
            ),
        ],
    )
    scored = CaseScorer(judge=None, prices=PriceTable({})).score_case(case, result)
    first, second = scored.repetitions
    assert first.failures == ["turn 1: tool create_ticket failed: subject: empty"]
    assert second.failures == ["turn 1: agent answered HTTP 502", "turn 2: skipped"]
    assert not scored.pass_hat_k
    assert first.turns[1].score("tool_precision").value == 1.0  # type: ignore[union-attr]


def test_online_reconstruction_reads_question_answer_tools_passages_and_block() -> None:
    from eval.online import reconstruct_turn, trace_cost

    result = '[{"text": "{\\"query\\": \\"reset\\", \\"results\\": [{\\"title\\": \\"Router X200 User Manual\\", \\"uri\\": \\"corpus/router.pdf\\", \\"page\\": 6, \\"score\\": 0.8, \\"text\\": \\"Hold RESET 10 seconds.\\"}]}"}]'
    observations: list[dict[str, Any]] = [
        {
            "id": "r",
            "parent_observation_id": None,
            "type": "AGENT",
            "name": "agent-turn",
            "trace_id": "t" * 32,
            "input": "How do I reset?",
            "output": "Hold RESET for 10 s.",
            "latency": 1.5,
            "session_id": "s",
        },
        {
            "id": "k",
            "parent_observation_id": "r",
            "type": "RETRIEVER",
            "name": "execute_tool search_knowledge_base",
            "input": '{"query": "reset"}',
            "output": result,
            "start_time": "1",
        },
        {
            "id": "g",
            "parent_observation_id": "r",
            "type": "GENERATION",
            "name": "chat",
            "model": "claude-sonnet",
            "usage_details": {"input": 100, "output": 20},
            "total_cost": 0.0006,
        },
        {
            "id": "u",
            "parent_observation_id": "r",
            "type": "GUARDRAIL",
            "name": "guardrail input",
            "output": "NONE",
            "metadata": {"attributes": {"guardrail.action": "NONE"}},
        },
    ]
    question, got, passages = reconstruct_turn(observations)
    assert question == "How do I reset?"
    assert got.answer == "Hold RESET for 10 s."
    assert got.metadata.latency_ms == 1500.0
    assert [(t.name, t.arguments) for t in got.metadata.tools] == [
        ("search_knowledge_base", {"query": "reset"})
    ]
    assert got.metadata.usage.total_tokens == 120 and got.metadata.model == "claude-sonnet"
    assert got.metadata.guardrail.action == "NONE"
    assert [(p.title, p.page, p.text) for p in passages] == [
        ("Router X200 User Manual", 6, "Hold RESET 10 seconds.")
    ]
    assert trace_cost(observations) == 0.0006
    observations[3]["metadata"] = {"attributes": {"guardrail.action": "BLOCKED"}}
    assert reconstruct_turn(observations)[1].metadata.guardrail.action == "BLOCKED"

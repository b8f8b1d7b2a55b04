"""The trace-contract helper against a real Strands 1.62 agent exporting to the recorder.

The turn runs in a child process (tests/support/contract_turn.py: the reference wiring of
docs/tracing-contract.md) because OpenTelemetry's tracer provider and Strands' tracer are process-wide;
it talks to the scripted OpenAI-compatible model over HTTP and exports spans over OTLP/HTTP.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from config import REPO_ROOT
from local_stack.otlp_recorder import OtlpRecorder, RecordedSpan
from local_stack.scripted_model import ScriptedModel, Text, ToolCall, ToolCalls
from tests.support.contract_turn import SESSION_ID, USER_ID
from tests.support.trace_contract import TraceContractError, assert_turn_trace, retrieval_documents

SESSION = SESSION_ID
USER = USER_ID


def _run_turn(recorder: OtlpRecorder, llm: ScriptedModel, *extra: str) -> str:
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.support.contract_turn",
            "--traces-url",
            recorder.traces_url,
            "--authorization",
            recorder.auth_header["Authorization"],
            "--model-url",
            llm.base_url,
            *extra,
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    trace_id: str = json.loads(completed.stdout.strip().splitlines()[-1])["trace_id"]
    recorder.wait_for_spans(predicate=lambda s: s.trace_id == trace_id and s.is_root)
    return trace_id


@pytest.fixture(scope="module")
def recorder() -> Iterator[OtlpRecorder]:
    with OtlpRecorder(public_key="pk-lf-contract", secret_key="sk-lf-contract") as running:
        yield running


@pytest.fixture(scope="module")
def turn(recorder: OtlpRecorder) -> tuple[OtlpRecorder, str]:
    """One full turn: input guardrail, a knowledge-base tool call, the answer, output guardrail."""
    with ScriptedModel() as llm:
        llm.enqueue(
            ToolCalls([ToolCall("search_knowledge_base", {"query": "reset router"})]), Text("Hold reset.")
        )
        return recorder, _run_turn(recorder, llm)


@pytest.fixture(scope="module")
def blocked_turn(recorder: OtlpRecorder) -> tuple[OtlpRecorder, str]:
    """A turn whose input the guardrail blocks: no model call."""
    with ScriptedModel() as llm:
        trace_id = _run_turn(recorder, llm, "--block-input")
        assert not llm.requests
        return recorder, trace_id


def _check(spans: list[RecordedSpan], trace_id: str, **overrides: Any) -> Any:
    arguments: dict[str, Any] = {
        "trace_id": trace_id,
        "session_id": SESSION,
        "user_id": USER,
        "environment": "dev",
        "tags": ["support-agent"],
        "model": "claude-sonnet",
        "tools": ["search_knowledge_base"],
        "retrieval": True,
        "guardrail_stages": ("input", "output"),
    }
    arguments.update(overrides)
    return assert_turn_trace(spans, **arguments)


def test_a_real_strands_turn_meets_the_contract(turn: tuple[OtlpRecorder, str]) -> None:
    recorder, trace_id = turn
    result = _check(recorder.spans, trace_id)
    assert result.root.name == "agent-turn"
    assert [g.attr("gen_ai.request.model") for g in result.generations] == ["claude-sonnet", "claude-sonnet"]
    assert result.tool_names == ["search_knowledge_base"]
    assert result.total_cost > 0
    assert retrieval_documents(result.retrievals[0])[0]["score"] == 0.83
    assert {g.attr("guardrail.stage") for g in result.guardrails} == {"input", "output"}


def test_tool_arguments_and_results_are_span_attributes(turn: tuple[OtlpRecorder, str]) -> None:
    recorder, trace_id = turn
    tool = _check(recorder.spans, trace_id).tools[0]
    assert tool.json_attr("gen_ai.tool.call.arguments") == {"query": "reset router"}
    assert tool.attr("gen_ai.tool.status") == "success"


def test_a_span_without_session_id_is_reported(turn: tuple[OtlpRecorder, str]) -> None:
    recorder, trace_id = turn
    spans = [_without(s, "session.id") if s.name == "chat" else s for s in recorder.trace(trace_id)]
    with pytest.raises(TraceContractError, match=r"span 'chat': session.id is None, want 'contract-session-"):
        _check(spans, trace_id)


def test_duplicate_export_is_reported(turn: tuple[OtlpRecorder, str]) -> None:
    recorder, trace_id = turn
    spans = recorder.trace(trace_id)
    with pytest.raises(TraceContractError, match="duplicate span ids"):
        _check(spans + spans[:2], trace_id)


def test_missing_cost_is_reported_unless_waived(turn: tuple[OtlpRecorder, str]) -> None:
    recorder, trace_id = turn
    stripped = [_without(s, "gen_ai.usage.cost") for s in recorder.trace(trace_id)]
    with pytest.raises(TraceContractError, match=r"gen_ai.usage.cost must be a non-negative number"):
        _check(stripped, trace_id)
    _check(stripped, trace_id, require_cost=False)


def test_untyped_spans_are_reported(turn: tuple[OtlpRecorder, str]) -> None:
    recorder, trace_id = turn
    stripped = [_without(s, "langfuse.observation.type") for s in recorder.trace(trace_id)]
    with pytest.raises(TraceContractError, match=r"no langfuse\.observation\.type") as error:
        _check(stripped, trace_id)
    assert "no retrieval span" in str(error.value)


def test_blocked_input_must_not_reach_the_model(turn: tuple[OtlpRecorder, str]) -> None:
    recorder, trace_id = turn
    with pytest.raises(TraceContractError, match="a blocked input must not reach the model"):
        _check(recorder.spans, trace_id, blocked_stage="input")


def test_unknown_trace_id_names_what_was_received(turn: tuple[OtlpRecorder, str]) -> None:
    recorder, _ = turn
    with pytest.raises(TraceContractError, match=r"no span of trace 0{32}"):
        _check(recorder.spans, "0" * 32)


def test_missing_tool_is_reported(turn: tuple[OtlpRecorder, str]) -> None:
    recorder, trace_id = turn
    with pytest.raises(TraceContractError, match="no tool span for 'create_ticket'"):
        _check(recorder.spans, trace_id, tools=["search_knowledge_base", "create_ticket"])


def test_a_blocked_input_turn_meets_the_contract(blocked_turn: tuple[OtlpRecorder, str]) -> None:
    recorder, trace_id = blocked_turn
    result = _check(
        recorder.spans,
        trace_id,
        tools=[],
        retrieval=False,
        guardrail_stages=("input",),
        blocked_stage="input",
    )
    assert result.generations == () and [s.name for s in result.spans] == ["guardrail input", "agent-turn"]


def _without(span: RecordedSpan, key: str) -> RecordedSpan:
    return replace(span, attributes={k: v for k, v in span.attributes.items() if k != key})

"""What a run produces: per-turn scores, repetitions, cases, run aggregates (the JSON report's schema)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, computed_field

from eval.agent import AgentReply
from eval.scores import METRICS, Score

KNOWLEDGE_TOOLS = frozenset({"search_knowledge_base"})
GUARDRAIL_TEXT_UNIT_CHARS = 1000  # Bedrock Guardrails bill per text unit of up to 1,000 characters
PROFILE_SCHEMA = "aaf-turn-profile/1"  # read by cost/usage.py (TurnProfile); keep the two in step


class CaseUsage(BaseModel):
    """Measured model usage of one case: totals over its repetitions and the mean per repetition (one
    repetition is one conversation). `cost_usd` sums the turns that could be priced; `unpriced_turns`
    counts answered turns without a price (their cost is missing, not zero)."""

    model_config = ConfigDict(frozen=True)

    answered_turns: int
    input_tokens: int
    output_tokens: int
    cost_usd: float | None
    unpriced_turns: int
    input_tokens_per_repetition: float
    output_tokens_per_repetition: float
    cost_usd_per_repetition: float | None


class TurnResult(BaseModel):
    model_config = ConfigDict(frozen=False)

    index: int
    input: str
    reply: AgentReply | None = None
    error: str | None = None
    attempts: int = 1
    scores: list[Score] = Field(default_factory=list)
    passage_source: str | None = None  # where faithfulness context came from: metadata | langfuse | None

    def score(self, name: str) -> Score | None:
        return next((s for s in self.scores if s.name == name), None)


class Repetition(BaseModel):
    model_config = ConfigDict(frozen=False)

    number: int
    session_id: str
    turns: list[TurnResult] = Field(default_factory=list)
    passed: bool = False
    failures: list[str] = Field(default_factory=list)


class CaseResult(BaseModel):
    model_config = ConfigDict(frozen=False)

    case_id: str
    category: str
    tags: list[str] = Field(default_factory=list)
    turns: int
    repetitions: list[Repetition] = Field(default_factory=list)

    @property
    def pass_hat_k(self) -> bool:
        """pass^k: the case passed in every one of its k repetitions."""
        return bool(self.repetitions) and all(rep.passed for rep in self.repetitions)

    @property
    def pass_rate(self) -> float:
        return (
            sum(rep.passed for rep in self.repetitions) / len(self.repetitions) if self.repetitions else 0.0
        )

    def all_scores(self) -> Iterable[Score]:
        for rep in self.repetitions:
            for turn in rep.turns:
                yield from turn.scores

    def mean(self, metric: str) -> float | None:
        values = [s.value for s in self.all_scores() if s.name == metric and s.value is not None]
        return sum(values) / len(values) if values else None

    def reasons(self, metric: str) -> list[str]:
        return [s.reason or s.error or "" for s in self.all_scores() if s.name == metric]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def usage(self) -> CaseUsage:
        """Tokens and cost the case used (in report.json as `usage`)."""
        answered = [t for rep in self.repetitions for t in rep.turns if t.reply is not None]
        costs = [t.score("cost_usd") for t in answered]
        priced = [c.value for c in costs if c is not None and c.value is not None]
        input_tokens = sum(t.reply.metadata.usage.input_tokens for t in answered if t.reply)
        output_tokens = sum(t.reply.metadata.usage.output_tokens for t in answered if t.reply)
        reps = len(self.repetitions) or 1
        cost = round(sum(priced), 6) if priced else None
        return CaseUsage(
            answered_turns=len(answered),
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cost_usd=cost,
            unpriced_turns=len(answered) - len(priced),
            input_tokens_per_repetition=input_tokens / reps,
            output_tokens_per_repetition=output_tokens / reps,
            cost_usd_per_repetition=None if cost is None else round(cost / reps, 6),
        )


class RunReport(BaseModel):
    """The JSON report (and the input of the HTML report, the gate and baseline comparisons)."""

    schema_version: int = 1
    mode: str = "offline"  # offline | online
    run_name: str
    started_at: str
    finished_at: str = ""
    target: str
    dataset: str | None = None
    k: int = 1
    tags: list[str] = Field(default_factory=list)
    judge_model: str | None = None
    pass_threshold: float = 0.75
    langfuse: dict[str, Any] | None = None
    cases: list[CaseResult] = Field(default_factory=list)
    aggregates: dict[str, float | None] = Field(default_factory=dict)
    notes: list[str] = Field(default_factory=list)


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear-interpolated percentile (q in 0..100); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low, high = math.floor(position), math.ceil(position)
    if low == high:
        return ordered[low]
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def aggregate(cases: Sequence[CaseResult]) -> dict[str, float | None]:
    """Run-level numbers: the mean of every metric, pass rates, error rates, latency percentiles, totals."""
    result: dict[str, float | None] = {}
    scores = [s for case in cases for s in case.all_scores()]
    for name in METRICS:
        values = [s.value for s in scores if s.name == name and s.value is not None]
        result[name] = sum(values) / len(values) if values else None
    repetitions = [rep for case in cases for rep in case.repetitions]
    turns = [turn for rep in repetitions for turn in rep.turns]
    result["pass_rate"] = sum(rep.passed for rep in repetitions) / len(repetitions) if repetitions else None
    result["pass_hat_k"] = sum(case.pass_hat_k for case in cases) / len(cases) if cases else None
    result["error_rate"] = sum(turn.error is not None for turn in turns) / len(turns) if turns else None
    judged = [s for s in scores if s.kind == "judge"]
    result["judge_error_rate"] = sum(s.error is not None for s in judged) / len(judged) if judged else None
    latencies = [s.value for s in scores if s.name == "latency_ms" and s.value is not None]
    result["latency_p50_ms"] = percentile(latencies, 50)
    result["latency_p95_ms"] = percentile(latencies, 95)
    costs = [s.value for s in scores if s.name == "cost_usd" and s.value is not None]
    result["total_cost_usd"] = round(sum(costs), 6) if costs else None
    token_counts = [s.value for s in scores if s.name == "total_tokens" and s.value is not None]
    result["total_tokens_sum"] = sum(token_counts) if token_counts else None
    return result


class ProfileError(ValueError):
    """The run cannot give a turn profile (e.g. no turn was answered); the message says why."""


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def _text_units(text: str) -> int:
    return math.ceil(len(text) / GUARDRAIL_TEXT_UNIT_CHARS) if text else 0


def turn_profile(report: RunReport, commit: str | None = None) -> dict[str, Any]:
    """The measured turn profile of an offline run, as the JSON `cost/usage.py` reads (`make cost`).

    Per answered turn: input/output tokens (the agent's usage), tool calls, knowledge-base queries and
    their length, guardrail text units of the prompt and the answer, and the agent-measured latency as an
    upper bound of its CPU time. Conversations are the repetitions with at least one answered turn.

    Raises:
        ProfileError: no turn was answered (nothing was measured).
    """
    conversations = [
        rep for case in report.cases for rep in case.repetitions if any(t.reply for t in rep.turns)
    ]
    turns = [t for rep in conversations for t in rep.turns if t.reply is not None]
    if not turns:
        raise ProfileError("no turn was answered in this run: there is nothing to measure a profile from")
    replies = [t.reply for t in turns if t.reply is not None]
    kb_calls = [call for r in replies for call in r.metadata.tools if call.name in KNOWLEDGE_TOOLS]
    query_chars = [float(len(str(call.arguments.get("query", "")))) for call in kb_calls]
    latency_s = [
        (r.metadata.latency_ms if r.metadata.latency_ms is not None else r.client_latency_ms) / 1000
        for r in replies
    ]
    units = [
        _text_units(t.input)
        + (
            0
            if t.reply.metadata.guardrail.action == "BLOCKED" and t.reply.metadata.guardrail.stage == "input"
            else _text_units(t.reply.answer)
        )
        for t in turns
        if t.reply is not None
    ]
    scripted = any(note.startswith("Pipeline mode") for note in report.notes)
    finished = report.finished_at or datetime.now(UTC).isoformat()
    measured = "measured: mean over the run's answered turns"
    profile: dict[str, Any] = {
        "schema": PROFILE_SCHEMA,
        "name": Path(report.dataset).stem if report.dataset else report.run_name,
        "measured_from": {
            "run_name": report.run_name,
            "date": finished[:10],
            "commit": commit,
            "dataset": report.dataset,
            "target": report.target,
            "models": sorted({r.metadata.model for r in replies if r.metadata.model}),
            "cases": len(report.cases),
            "conversations": len(conversations),
            "turns": len(turns),
            "notes": list(report.notes),
        },
        "turns_per_conversation": round(len(turns) / len(conversations), 4),
        "input_tokens_per_turn": round(_mean([float(r.metadata.usage.input_tokens) for r in replies]), 2),
        "output_tokens_per_turn": round(_mean([float(r.metadata.usage.output_tokens) for r in replies]), 2),
        "tool_calls_per_turn": round(_mean([float(len(r.metadata.tools)) for r in replies]), 4),
        "kb_queries_per_turn": round(len(kb_calls) / len(turns), 4),
        "kb_query_chars": round(_mean(query_chars), 1),
        "guardrail_text_units_per_turn": round(_mean([float(u) for u in units]), 4),
        "runtime_vcpu_seconds_per_turn": round(_mean(latency_s), 4),
        "basis": {
            "turns_per_conversation": "measured: answered turns / conversations (repetitions)",
            "input_tokens_per_turn": f"{measured} (the agent's reported usage)",
            "output_tokens_per_turn": f"{measured} (the agent's reported usage)",
            "tool_calls_per_turn": measured,
            "kb_queries_per_turn": f"{measured} ({', '.join(sorted(KNOWLEDGE_TOOLS))} calls)",
            "kb_query_chars": "measured: mean length of the knowledge-base queries",
            "guardrail_text_units_per_turn": "measured: ceil(chars/1000) of the prompt and of the answer",
            "runtime_vcpu_seconds_per_turn": (
                "measured upper bound: turn latency with the scripted model (model time ~0), i.e. the agent's "
                "own work plus local tool calls"
                if scripted
                else "measured upper bound: turn latency (includes waiting for the model, which AgentCore "
                "does not bill as CPU)"
            ),
        },
    }
    if not scripted:
        profile["turn_seconds"] = round(_mean(latency_s), 3)
        profile["basis"]["turn_seconds"] = f"{measured} (agent-measured latency)"
    return profile

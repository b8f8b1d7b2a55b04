"""Scores and the metrics they belong to."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict


class Score(BaseModel):
    """One evaluator's verdict on one turn.

    `value` is None when the evaluator failed (`error` says why): a failed judge is an error, never a 0.
    Evaluators that do not apply to a turn (no reference answer, no expected documents) return no score.
    """

    model_config = ConfigDict(frozen=True)

    name: str
    value: float | None
    reason: str = ""
    error: str | None = None
    kind: Literal["code", "judge"] = "code"

    @property
    def ok(self) -> bool:
        return self.error is None and self.value is not None


@dataclass(frozen=True)
class Metric:
    name: str
    description: str
    kind: Literal["code", "judge", "run"]
    unit: str = "score"  # "score" (0..1, higher is better), "ms", "tokens", "usd"
    higher_is_better: bool = True


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("tool_precision", "called tools that were expected / tools called", "code"),
        Metric("tool_recall", "expected tools that were called / tools expected", "code"),
        Metric("tool_arguments", "expected key arguments the agent sent correctly", "code"),
        Metric("retrieval_hit_rate", "an expected document is among the retrieved ones", "code"),
        Metric("retrieval_mrr", "1 / rank of the first expected document", "code"),
        Metric("guardrail_correct", "the guardrail blocked exactly when it should", "code"),
        Metric("answer_contains", "required phrases present in the answer", "code"),
        Metric("faithfulness", "answer supported by the retrieved passages (judge)", "judge"),
        Metric("correctness", "answer agrees with the reference answer (judge)", "judge"),
        Metric("helpfulness", "answer resolves the user's request (judge)", "judge"),
        Metric("latency_ms", "turn latency reported by the agent", "code", "ms", higher_is_better=False),
        Metric("total_tokens", "tokens used by the turn", "code", "tokens", higher_is_better=False),
        Metric("cost_usd", "model cost of the turn", "code", "usd", higher_is_better=False),
    )
}

# Run-level aggregates the CI gate can use besides the per-metric means.
RUN_METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("pass_rate", "share of repetitions that passed every check", "run"),
        Metric("pass_hat_k", "share of cases that passed in all k repetitions (pass^k)", "run"),
        Metric("error_rate", "share of turns whose agent call failed", "run", higher_is_better=False),
        Metric("judge_error_rate", "share of judge verdicts that failed", "run", higher_is_better=False),
        Metric("latency_p50_ms", "median turn latency", "run", "ms", higher_is_better=False),
        Metric("latency_p95_ms", "95th percentile turn latency", "run", "ms", higher_is_better=False),
        Metric("total_cost_usd", "model cost of the whole run", "run", "usd", higher_is_better=False),
        Metric("total_tokens_sum", "tokens used by the whole run", "run", "tokens", higher_is_better=False),
    )
}

SCORE_METRICS = tuple(name for name, m in METRICS.items() if m.unit == "score")

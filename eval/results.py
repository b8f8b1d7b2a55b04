"""What a run produces: per-turn scores, repetitions, cases, run aggregates (the JSON report's schema)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from eval.agent import AgentReply
from eval.scores import METRICS, Score


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

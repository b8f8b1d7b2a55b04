"""The CI gate: `--fail-under metric=value` (and `--fail-over` for lower-is-better metrics)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from eval.scores import METRICS, RUN_METRICS

KNOWN = {**METRICS, **RUN_METRICS}


@dataclass(frozen=True)
class Threshold:
    metric: str
    bound: float
    direction: Literal["under", "over"]

    def describe(self) -> str:
        return f"{self.metric} {'>=' if self.direction == 'under' else '<='} {self.bound:g}"


def parse_threshold(spec: str, direction: Literal["under", "over"]) -> Threshold:
    """`faithfulness=0.8` -> Threshold; ValueError naming the problem (unknown metric, not a number)."""
    name, sep, raw = spec.partition("=")
    name = name.strip()
    if not sep or not name or not raw.strip():
        raise ValueError(f"--fail-{direction} expects metric=value, got {spec!r}")
    if name not in KNOWN:
        raise ValueError(f"--fail-{direction}: unknown metric {name!r}; known: {', '.join(sorted(KNOWN))}")
    try:
        bound = float(raw)
    except ValueError:
        raise ValueError(f"--fail-{direction} {name}: {raw!r} is not a number") from None
    return Threshold(name, bound, direction)


def check(aggregates: Mapping[str, float | None], thresholds: Sequence[Threshold]) -> list[str]:
    """The violated thresholds, as messages; a metric without a value in this run is a violation too."""
    failures = []
    for threshold in thresholds:
        value = aggregates.get(threshold.metric)
        if value is None:
            failures.append(f"{threshold.describe()}: the run produced no value for {threshold.metric}")
        elif (threshold.direction == "under" and value < threshold.bound) or (
            threshold.direction == "over" and value > threshold.bound
        ):
            failures.append(f"{threshold.describe()}: got {value:.4g}")
    return failures

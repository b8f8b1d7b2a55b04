"""Offline and online evaluation settings."""

from __future__ import annotations

from pydantic import Field

from stacks.config.base import Section


class EvaluationConfig(Section):
    """Offline and online evaluation."""

    online_schedule: str | None = Field(default="rate(1 day)", pattern=r"^(rate|cron)\(.+\)$")
    online_sample_size: int = Field(default=50, ge=1, le=1000)
    pass_k: int = Field(default=1, ge=1, le=10)

"""Offline and online evaluation settings."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from config.base import Section
from config.foundation import check_retention


class EvaluationConfig(Section):
    """Offline runs (`python -m eval run`) and the scheduled online evaluation job."""

    online_schedule: str | None = Field(default="rate(1 day)", pattern=r"^(rate|cron)\(.+\)$")
    online_sample_size: int = Field(default=50, ge=1, le=1000)
    online_window_hours: float = Field(default=24.0, gt=0, le=24 * 31)
    pass_k: int = Field(default=1, ge=1, le=10)
    cpu: Literal[256, 512, 1024, 2048] = 512
    memory_mib: int = Field(default=1024, ge=512, le=8192)
    report_retention_days: int = Field(default=90, ge=1, le=3650)
    container_insights: bool = True
    log_retention_days: int = 30

    @field_validator("log_retention_days")
    @classmethod
    def _retention(cls, value: int) -> int:
        return check_retention(value)

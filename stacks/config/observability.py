"""Langfuse and operations settings."""

from __future__ import annotations

from pydantic import Field, field_validator

from stacks.config.base import Section
from stacks.config.foundation import check_retention


class ObservabilityConfig(Section):
    """Langfuse (self-hosted or external) and operations settings."""

    external_host: str | None = Field(default=None, pattern=r"^https://")
    external_keys_secret_name: str | None = Field(default=None, min_length=1)
    langfuse_web_image: str = Field(default="docker.io/langfuse/langfuse:3", min_length=3)
    langfuse_worker_image: str = Field(default="docker.io/langfuse/langfuse-worker:3", min_length=3)
    clickhouse_image: str = Field(default="docker.io/clickhouse/clickhouse-server:25.8", min_length=3)
    log_retention_days: int = 30
    trace_sample_rate: float = Field(default=1.0, ge=0.0, le=1.0)

    @field_validator("log_retention_days")
    @classmethod
    def _retention(cls, value: int) -> int:
        return check_retention(value)

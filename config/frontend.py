"""Streamlit chat settings (deployed with `components.frontend: true`)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from config.base import Section
from config.foundation import check_retention


class FrontendConfig(Section):
    """The Streamlit chat service: Fargate tasks behind an internal ALB, served through CloudFront."""

    cpu: Literal[256, 512, 1024, 2048] = 512
    memory_mib: int = Field(default=1024, ge=512, le=8192)
    desired_tasks: int = Field(default=1, ge=1, le=10)
    log_retention_days: int = 30
    # CloudFront price class: which edge locations serve the chat (cost vs latency).
    price_class: Literal["100", "200", "all"] = "100"
    # Fargate Spot is ~70% cheaper; an interruption only reconnects open chats (they keep no data).
    fargate_spot: bool = False
    container_insights: bool = True

    @field_validator("log_retention_days")
    @classmethod
    def _retention(cls, value: int) -> int:
        return check_retention(value)

"""LiteLLM gateway settings (deployed on ECS; the model catalog is in models.py)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from stacks.config.base import Section
from stacks.config.foundation import check_retention


class TeamBudget(Section):
    """Budget and limits of one team's virtual key."""

    team: str = Field(pattern=r"^[a-z][a-z0-9-]{1,30}$")
    max_budget_usd: float = Field(gt=0)
    budget_duration: Literal["1d", "7d", "30d"] = "30d"
    rpm: int = Field(default=60, ge=1)
    tpm: int = Field(default=200_000, ge=1)


class LlmGatewayConfig(Section):
    """LiteLLM on ECS Fargate with Aurora Serverless v2 and optional Valkey."""

    image: str = Field(default="ghcr.io/berriai/litellm-database:main-v1.102.4-stable", min_length=3)
    external_url: str | None = Field(default=None, pattern=r"^https://")
    cpu: Literal[256, 512, 1024, 2048, 4096] = 1024
    memory_mib: int = Field(default=2048, ge=512, le=30_720)
    min_tasks: int = Field(default=1, ge=1, le=20)
    max_tasks: int = Field(default=2, ge=1, le=50)
    workers: int = Field(default=2, ge=1, le=16)
    max_requests_before_restart: int = Field(default=10_000, ge=100)
    db_min_acu: float = Field(default=0.0, ge=0.0, le=256)
    db_max_acu: float = Field(default=2.0, ge=1.0, le=256)
    cache: bool = False
    public: bool = False
    log_retention_days: int = 30
    team_budgets: tuple[TeamBudget, ...] = (
        TeamBudget(team="support", max_budget_usd=200.0),
        TeamBudget(team="platform", max_budget_usd=100.0),
    )
    agent_key_budget_usd: float = Field(default=100.0, gt=0)
    eval_key_budget_usd: float = Field(default=25.0, gt=0)

    @field_validator("log_retention_days")
    @classmethod
    def _retention(cls, value: int) -> int:
        return check_retention(value)

    @model_validator(mode="after")
    def _task_range(self) -> LlmGatewayConfig:
        if self.min_tasks > self.max_tasks:
            raise ValueError("min_tasks cannot exceed max_tasks")
        if self.db_min_acu > self.db_max_acu:
            raise ValueError("db_min_acu cannot exceed db_max_acu")
        return self

"""LiteLLM gateway settings (deployed on ECS; the model catalog is in models.py)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from config.base import Section
from config.foundation import check_retention
from config.observability import FARGATE_MEMORY


class TeamBudget(Section):
    """Budget and limits of one team's virtual key."""

    team: str = Field(pattern=r"^[a-z][a-z0-9-]{1,30}$")
    max_budget_usd: float = Field(gt=0)
    budget_duration: Literal["1d", "7d", "30d"] = "30d"
    rpm: int = Field(default=60, ge=1)
    tpm: int = Field(default=200_000, ge=1)


class LlmGatewayConfig(Section):
    """LiteLLM on ECS Fargate with PostgreSQL (Aurora Serverless v2 or one RDS instance) and optional Valkey."""

    # Pin by tag, or by digest for immutability: "ghcr.io/berriai/litellm-database@sha256:<digest>".
    image: str = Field(default="ghcr.io/berriai/litellm-database:main-v1.102.4-stable", min_length=3)
    # External mode (components.llm_gateway: external): the gateway's base URL (no /v1) and the names of
    # the Secrets Manager secrets holding the agent's and the evaluation's virtual keys ({"api_key": ...}).
    external_url: str | None = Field(default=None, pattern=r"^https://")
    external_agent_key_secret_name: str | None = Field(default=None, min_length=1, max_length=512)
    external_eval_key_secret_name: str | None = Field(default=None, min_length=1, max_length=512)
    # ACM certificate for an HTTPS listener (required when public; plain HTTP inside the VPC otherwise) and
    # the DNS name it covers, which you point at the load balancer (stack output LoadBalancerDnsName).
    hostname: str | None = Field(
        default=None, pattern=r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+$"
    )
    certificate_arn: str | None = Field(
        default=None, pattern=r"^arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate/.+$"
    )
    cpu: Literal[256, 512, 1024, 2048, 4096] = 1024
    memory_mib: int = Field(default=2048, ge=512, le=30_720)
    min_tasks: int = Field(default=1, ge=1, le=20)
    max_tasks: int = Field(default=2, ge=1, le=50)
    # Uvicorn workers per task; each is recycled after max_requests_before_restart requests (with jitter),
    # so at least two keep serving while one restarts.
    workers: int = Field(default=2, ge=2, le=16)
    max_requests_before_restart: int = Field(default=10_000, ge=100)
    # Fargate capacity: Spot (~70% cheaper, a task can be interrupted with two minutes' notice; Spot runs
    # x86_64 tasks only, per the ECS developer guide) or on-demand; and Container Insights (~$0.30/metric).
    fargate_spot: bool = False
    architecture: Literal["arm64", "x86_64"] = "arm64"
    container_insights: bool = True
    # Key/spend store: Aurora Serverless v2 (scales, Multi-AZ reader in prod; with LiteLLM's open
    # connections it never pauses, so it idles at its 0.5-ACU floor) or one single-AZ RDS PostgreSQL
    # instance (gp3 storage that autoscales up to db_max_storage_gb).
    db_engine: Literal["aurora_serverless", "postgres_instance"] = "aurora_serverless"
    db_instance_class: str = Field(default="db.t4g.micro", pattern=r"^db\.[a-z0-9]+\.[a-z0-9]+$")
    db_storage_gb: int = Field(default=20, ge=20, le=1000)
    db_max_storage_gb: int = Field(default=50, ge=21, le=2000)
    db_min_acu: float = Field(default=0.0, ge=0.0, le=256)
    db_max_acu: float = Field(default=2.0, ge=1.0, le=256)
    cache: bool = False
    # The router-state cache's size when `cache` is on (the same keys as observability.cache_*).
    cache_node_type: str = Field(default="cache.t4g.small", pattern=r"^cache\.[a-z0-9]+\.[a-z0-9]+$")
    cache_replicas: int = Field(default=1, ge=0, le=2)
    public: bool = False
    # Entry: an internal ALB (health-checked targets, request-count scaling, 5xx alarms), or none: the
    # tasks register in a private Cloud Map DNS name (http://llm-gateway.<prefix>-llm.internal:4000) that
    # clients in the VPC resolve; saves the ALB (~$16/month), for dev. public/certificate need the ALB.
    load_balancer: bool = True
    log_retention_days: int = 30
    # The LiteLLM admin UI (model catalog, keys, teams, usage, spend logs) behind its own CloudFront
    # distribution with a VPC origin, like Langfuse; its login is generated into Secrets Manager.
    # The model API stays private to the VPC either way (docs/platform-console.md).
    admin_ui: bool = True
    # One budget per team of identity.teams, plus one for `default_team`. The agent calls the gateway
    # with one virtual key per team, chosen per call by the caller's Cognito groups (docs/spend.md).
    team_budgets: tuple[TeamBudget, ...] = (
        TeamBudget(team="support", max_budget_usd=200.0),
        TeamBudget(team="platform", max_budget_usd=100.0),
        TeamBudget(team="unassigned", max_budget_usd=10.0, rpm=20, tpm=50_000),
    )
    # The LiteLLM team of callers in no team group (and of M2M callers): not a Cognito group, and its
    # budget must be the smallest of team_budgets.
    default_team: str = Field(default="unassigned", pattern=r"^[a-z][a-z0-9-]{1,30}$")
    eval_key_budget_usd: float = Field(default=25.0, gt=0)
    eval_key_rpm: int = Field(default=60, ge=1)
    # The team the evaluation key's spend is attributed to (a team from identity.teams).
    eval_key_team: str = Field(default="platform", pattern=r"^[a-z][a-z0-9-]{1,30}$")

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
        low, high, step = FARGATE_MEMORY[self.cpu]
        if not (low <= self.memory_mib <= high and (self.memory_mib - low) % step == 0):
            raise ValueError(
                f"memory_mib: {self.memory_mib} is not a Fargate size for cpu {self.cpu}; "
                f"allowed: {low} to {high} in steps of {step}"
            )
        if self.db_storage_gb >= self.db_max_storage_gb:
            raise ValueError(
                "db_max_storage_gb: the storage-autoscaling cap must exceed db_storage_gb "
                f"({self.db_max_storage_gb} <= {self.db_storage_gb})"
            )
        if self.fargate_spot and self.architecture != "x86_64":
            raise ValueError(
                "architecture: Fargate Spot runs x86_64 tasks only; set llm_gateway.architecture to "
                "x86_64 or llm_gateway.fargate_spot to false"
            )
        if self.public and self.certificate_arn is None:
            raise ValueError(
                "certificate_arn: a public gateway needs an ACM certificate for its HTTPS listener"
            )
        if not self.load_balancer and (self.public or self.certificate_arn is not None):
            raise ValueError(
                "load_balancer: a public or HTTPS gateway is served by its load balancer; set it to true"
            )
        if self.certificate_arn is not None and self.hostname is None:
            raise ValueError("hostname: an HTTPS gateway needs the DNS name its certificate covers")
        teams = [budget.team for budget in self.team_budgets]
        if len(set(teams)) != len(teams):
            raise ValueError("team_budgets: each team may have one budget")
        budgets = {budget.team: budget.max_budget_usd for budget in self.team_budgets}
        if self.default_team not in budgets:
            raise ValueError(
                f"default_team: {self.default_team!r} has no entry in llm_gateway.team_budgets "
                f"(budgeted teams: {sorted(budgets)})"
            )
        smaller = sorted(team for team, usd in budgets.items() if usd < budgets[self.default_team])
        if smaller:
            raise ValueError(
                f"default_team: the budget of {self.default_team!r} (${budgets[self.default_team]:g}) must "
                f"be the smallest of llm_gateway.team_budgets; {smaller} have less"
            )
        return self

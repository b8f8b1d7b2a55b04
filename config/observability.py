"""Langfuse (self-hosted, external or disabled) and operations settings.

Which mode is used is `components.observability`; this section sizes the self-hosted Langfuse and names
the external one. Profiles in config/foundation.yaml set the dev and prod sizes.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from config.base import Section
from config.foundation import EMAIL_PATTERN, check_retention

FargateCpu = Literal[256, 512, 1024, 2048, 4096]

# Valid Fargate memory (MiB) per CPU size.
FARGATE_MEMORY: dict[int, tuple[int, int, int]] = {
    # cpu: (min MiB, max MiB, step MiB)
    256: (512, 2048, 512),
    512: (1024, 4096, 1024),
    1024: (2048, 8192, 1024),
    2048: (4096, 16384, 1024),
    4096: (8192, 30720, 1024),
}


class ServiceSize(Section):
    """CPU units, memory and task count of one Fargate service."""

    cpu: FargateCpu = 512
    memory_mib: int = 1024
    tasks: int = Field(default=1, ge=1, le=10)

    @model_validator(mode="after")
    def _fargate_combination(self) -> ServiceSize:
        low, high, step = FARGATE_MEMORY[self.cpu]
        if not (low <= self.memory_mib <= high and (self.memory_mib - low) % step == 0):
            raise ValueError(
                f"memory_mib: {self.memory_mib} is not a Fargate size for cpu {self.cpu}; "
                f"allowed: {low} to {high} in steps of {step}"
            )
        return self


# Langfuse web and worker: "2 CPU, 4 GiB Memory" minimum each (Langfuse self-hosting, Scaling,
# https://langfuse.com/self-hosting/configuration/scaling; the containers page,
# https://langfuse.com/self-hosting/deployment/infrastructure/containers, says "For production
# environments, we recommend to use at least 2 CPUs and 4 GB of RAM"). Memory is a hard floor here (a
# Node.js heap that does not fit crashes the task); dev may run 1 vCPU (slower, not broken).
LANGFUSE_MIN_MEMORY_MIB = 4096
LANGFUSE_MIN_CPU = 1024
NODE_HEAP_FRACTION = 0.75


def node_heap_mib(memory_mib: int) -> int:
    """The V8 old-space limit for a Node.js container of `memory_mib`: 75 % of it, leaving the rest to
    the non-heap memory (buffers, code, native allocations).

    Node.js CLI docs (--max-old-space-size): "On a machine with 2 GiB of memory, consider setting this to
    1536 (1.5 GiB) to leave some memory for other uses and avoid swapping"
    (https://nodejs.org/api/cli.html#--max-old-space-sizesize-in-mib). Without the flag Node caps the heap
    near 1.7 GiB whatever the container has (Langfuse containers page, "Node.js memory settings").
    """
    if memory_mib < 1024:
        raise ValueError(f"memory_mib: {memory_mib} MiB is too small for a Node.js service")
    return int(memory_mib * NODE_HEAP_FRACTION)


def node_options(memory_mib: int) -> str:
    """NODE_OPTIONS for a Langfuse container of `memory_mib` (see `node_heap_mib`)."""
    return f"--max-old-space-size={node_heap_mib(memory_mib)}"


class ObservabilityConfig(Section):
    """Langfuse v3 on ECS Fargate (self_hosted), Langfuse elsewhere (external), plus alarm thresholds."""

    # external mode: where Langfuse is and the Secrets Manager secret holding {"public_key", "secret_key"}
    external_host: str | None = Field(default=None, pattern=r"^https://[^\s/]+(/[^\s]*)?$")
    external_keys_secret_name: str | None = Field(default=None, min_length=1)

    # self-hosted mode: images (pin a digest or a minor version for production)
    langfuse_web_image: str = Field(default="docker.io/langfuse/langfuse:3", min_length=3)
    langfuse_worker_image: str = Field(default="docker.io/langfuse/langfuse-worker:3", min_length=3)
    clickhouse_image: str = Field(default="docker.io/clickhouse/clickhouse-server:25.8", min_length=3)

    # self-hosted mode: sizes
    web: ServiceSize = ServiceSize(cpu=2048, memory_mib=4096, tasks=1)
    worker: ServiceSize = ServiceSize(cpu=2048, memory_mib=4096, tasks=1)
    clickhouse: ServiceSize = ServiceSize(cpu=1024, memory_mib=4096, tasks=1)
    fargate_spot: bool = False
    container_insights: bool = False
    db_engine: Literal["aurora_serverless", "postgres_instance"] = "aurora_serverless"
    db_instance_class: str = Field(default="db.t4g.micro", pattern=r"^db\.[a-z0-9]+\.[a-z0-9]+$")
    db_storage_gb: int = Field(default=20, ge=20, le=1000)
    db_min_acu: float = Field(default=0.0, ge=0.0, le=256)
    db_max_acu: float = Field(default=2.0, ge=1.0, le=256)
    db_readers: int = Field(default=0, ge=0, le=3)
    cache_node_type: str = Field(default="cache.t4g.micro", pattern=r"^cache\.[a-z0-9]+\.[a-z0-9]+$")
    cache_replicas: int = Field(default=0, ge=0, le=2)

    # self-hosted mode: data lifecycle and access
    events_retention_days: int = Field(default=30, ge=1, le=3650)
    exports_retention_days: int = Field(default=7, ge=1, le=365)
    media_retention_days: int | None = Field(default=None, ge=1, le=3650)
    admin_email: str = "admin@example.com"
    organisation_name: str = Field(default="Agentic AI Foundation", min_length=1, max_length=60)
    project_name: str = Field(default="agentic-foundation", pattern=r"^[a-z0-9][a-z0-9-]{1,59}$")
    price_class: Literal["100", "200", "all"] = "100"

    log_retention_days: int = 30
    trace_sample_rate: float = Field(default=1.0, ge=0.0, le=1.0)

    # operations: alarm thresholds
    agent_error_rate_percent: float = Field(default=5.0, gt=0, le=100)
    agent_latency_p90_seconds: float = Field(default=30.0, gt=0, le=900)
    gateway_5xx_per_5_minutes: int = Field(default=5, ge=1)
    gateway_latency_p90_seconds: float = Field(default=20.0, gt=0, le=900)
    tool_errors_per_5_minutes: int = Field(default=5, ge=1)
    ecs_cpu_percent: float = Field(default=85.0, gt=0, le=100)
    ecs_memory_percent: float = Field(default=85.0, gt=0, le=100)
    db_capacity_percent: float = Field(default=90.0, gt=0, le=100)

    @field_validator("log_retention_days")
    @classmethod
    def _retention(cls, value: int) -> int:
        return check_retention(value)

    @field_validator("admin_email")
    @classmethod
    def _admin_email(cls, value: str) -> str:
        if not EMAIL_PATTERN.match(value):
            raise ValueError(f"{value!r} is not an email address")
        return value

    @model_validator(mode="after")
    def _langfuse_sizes(self) -> ObservabilityConfig:
        for name in ("web", "worker"):
            size: ServiceSize = getattr(self, name)
            if size.memory_mib < LANGFUSE_MIN_MEMORY_MIB or size.cpu < LANGFUSE_MIN_CPU:
                raise ValueError(
                    f"{name}: Langfuse {name} needs at least {LANGFUSE_MIN_MEMORY_MIB} MiB and "
                    f"{LANGFUSE_MIN_CPU} CPU units (documented minimum 2 vCPU / 4 GiB; got {size.cpu} / "
                    f"{size.memory_mib})"
                )
        return self

    @model_validator(mode="after")
    def _ranges(self) -> ObservabilityConfig:
        if self.db_min_acu > self.db_max_acu:
            raise ValueError("db_min_acu: cannot exceed db_max_acu")
        if self.db_min_acu not in (0.0,) and self.db_min_acu < 0.5:
            raise ValueError("db_min_acu: must be 0 (auto-pause) or at least 0.5")
        for key in ("db_min_acu", "db_max_acu"):
            if (getattr(self, key) * 2) % 1:
                raise ValueError(f"{key}: Aurora capacity moves in steps of 0.5 ACU")
        return self


ObservabilityMode = Literal["self_hosted", "external", "disabled"]

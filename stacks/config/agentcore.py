"""AgentCore Runtime, Memory and tool gateway settings."""

from __future__ import annotations

from pydantic import Field, field_validator, model_validator

from stacks.config.base import Section
from stacks.config.foundation import check_retention


class AgentCoreConfig(Section):
    """AgentCore Runtime lifecycle and Memory retention."""

    idle_timeout_seconds: int = Field(default=900, ge=60, le=28_800)
    max_lifetime_seconds: int = Field(default=28_800, ge=60, le=28_800)
    memory_event_expiry_days: int = Field(default=30, ge=7, le=365)
    local_user: str = Field(default="local-user", pattern=r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$")
    log_retention_days: int = 30
    tracing: bool = True
    tool_memory_mb: int = Field(default=512, ge=128, le=3008)
    tool_timeout_seconds: int = Field(default=30, ge=3, le=300)
    tavily_secret_name: str | None = Field(default=None, pattern=r"^[A-Za-z0-9/_+=.@-]{1,512}$")
    """Secrets Manager secret holding `{"api_key": "tvly-..."}` (used when components.web_search is on);
    default `<prefix>/tavily`. Create it before deploying; the template only references it."""

    @field_validator("log_retention_days")
    @classmethod
    def _retention(cls, value: int) -> int:
        return check_retention(value)

    @model_validator(mode="after")
    def _idle_within_lifetime(self) -> AgentCoreConfig:
        if self.idle_timeout_seconds > self.max_lifetime_seconds:
            raise ValueError("idle_timeout_seconds cannot exceed max_lifetime_seconds")
        return self

"""The model catalog: one source of truth for the deployed and the local LLM gateway."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from config.base import Section

Provider = Literal["bedrock", "openai", "anthropic", "openai_compatible"]


class ModelEntry(Section):
    """One alias the gateway serves, mapped to a provider model or inference profile."""

    alias: str = Field(pattern=r"^[a-z][a-z0-9-]{1,40}$")
    provider: Provider
    model_id: str = Field(min_length=3, max_length=200)
    fallbacks: tuple[str, ...] = ()
    rpm: int | None = Field(default=None, ge=1)
    tpm: int | None = Field(default=None, ge=1)
    max_output_tokens: int = Field(default=4096, ge=1, le=200_000)
    input_cost_per_million: float | None = Field(default=None, ge=0)
    output_cost_per_million: float | None = Field(default=None, ge=0)
    api_base_env: str | None = Field(default=None, pattern=r"^[A-Z][A-Z0-9_]*$")
    api_key_env: str | None = Field(default=None, pattern=r"^[A-Z][A-Z0-9_]*$")

    @model_validator(mode="after")
    def _provider_settings(self) -> ModelEntry:
        if self.provider == "openai_compatible" and self.api_base_env is None:
            raise ValueError(
                "api_base_env: an openai_compatible model needs the name of the variable holding its base URL"
            )
        if self.provider == "bedrock":
            for key in ("api_base_env", "api_key_env"):
                if getattr(self, key) is not None:
                    raise ValueError(f"{key}: bedrock models use AWS credentials, not an API base or key")
        return self


class ModelCatalogConfig(Section):
    """Aliases served by the gateway, which alias the agent and the judge use, and retry policy."""

    # No defaults here: the catalog (entries, agent_alias, judge_alias) is in config/foundation.yaml
    # under `defaults.models`; this class is its schema. A profile's or a `-c models.entries=[...]`
    # list replaces the whole list (lists are not merged).
    entries: tuple[ModelEntry, ...]
    agent_alias: str
    judge_alias: str
    num_retries: int = Field(default=2, ge=0, le=10)
    request_timeout_seconds: int = Field(default=120, ge=5, le=900)
    cooldown_seconds: int = Field(default=30, ge=0, le=3600)
    allowed_fails: int = Field(default=3, ge=0, le=100)

    @model_validator(mode="after")
    def _aliases_resolve(self) -> ModelCatalogConfig:
        if not self.entries:
            raise ValueError("entries: the catalog needs at least one model")
        aliases = [entry.alias for entry in self.entries]
        duplicates = sorted({alias for alias in aliases if aliases.count(alias) > 1})
        if duplicates:
            raise ValueError(f"entries: duplicate aliases {duplicates}")
        known = set(aliases)
        for index, entry in enumerate(self.entries):
            for fallback in entry.fallbacks:
                if fallback not in known:
                    raise ValueError(
                        f"entries.{index}.fallbacks: {entry.alias!r} falls back to unknown alias {fallback!r}; "
                        f"known aliases: {sorted(known)}"
                    )
                if fallback == entry.alias:
                    raise ValueError(f"entries.{index}.fallbacks: {entry.alias!r} cannot fall back to itself")
        for key in ("agent_alias", "judge_alias"):
            value = getattr(self, key)
            if value not in known:
                raise ValueError(f"{key}: {value!r} is not in the catalog; known aliases: {sorted(known)}")
        return self

    def entry(self, alias: str) -> ModelEntry:
        """Return the catalog entry for an alias (KeyError names the alias)."""
        for candidate in self.entries:
            if candidate.alias == alias:
                return candidate
        raise KeyError(f"model alias {alias!r} is not in the catalog")

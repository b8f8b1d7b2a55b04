"""Shared building blocks for the typed configuration sections."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    """A frozen configuration section: unknown keys are errors, values are validated at load."""

    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True)

"""Streamlit chat settings."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from stacks.config.base import Section


class FrontendConfig(Section):
    """The Streamlit chat service."""

    cpu: Literal[256, 512, 1024, 2048] = 512
    memory_mib: int = Field(default=1024, ge=512, le=8192)
    desired_tasks: int = Field(default=1, ge=1, le=10)

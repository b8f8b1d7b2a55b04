"""Helpers for stack tests: synthesize one stack of a fresh app into a Template."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import aws_cdk as cdk
from aws_cdk.assertions import Template

from stacks.config import AppConfig

StackT = TypeVar("StackT", bound=cdk.Stack)


def build_stack(factory: Callable[..., StackT], config: AppConfig, **inputs: Any) -> tuple[StackT, Template]:
    """Create `factory(app, config=config, **inputs)` in a new App and return it with its template."""
    app = cdk.App()
    stack = factory(app, config=config, **inputs)
    return stack, Template.from_stack(stack)


def resources_of(template: Template, resource_type: str) -> dict[str, Any]:
    """Logical id -> resource body for every resource of one type."""
    return dict(template.find_resources(resource_type))

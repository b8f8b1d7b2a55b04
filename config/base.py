"""Shared building blocks for the typed configuration sections."""

from __future__ import annotations

import functools
from types import NoneType, UnionType
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, model_validator


class Section(BaseModel):
    """A frozen configuration section: unknown keys are errors, values are validated at load.

    Every list field (annotated `tuple[X, ...]` or `list[X]` of scalars) also accepts one string of
    comma-separated items, so `-c identity.callback_urls=https://a.example.com/,https://b.example.com/`
    works like the YAML or JSON list `["https://a.example.com/", "https://b.example.com/"]`. Items that
    contain a comma, and the empty list (`[]`), need the JSON/YAML form.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True)

    @model_validator(mode="before")
    @classmethod
    def _comma_separated_lists(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        fields = scalar_list_fields(cls)
        return {
            key: split_list(value) if key in fields and isinstance(value, str) else value
            for key, value in data.items()
        }


def split_list(value: str) -> tuple[str, ...]:
    """`"a, b,,c"` -> `("a", "b", "c")`: the comma-separated form of a list field."""
    return tuple(part.strip() for part in value.split(",") if part.strip())


@functools.cache
def scalar_list_fields(model: type[BaseModel]) -> frozenset[str]:
    """Names of `model`'s fields annotated as a tuple or list of scalars (possibly optional)."""
    return frozenset(name for name, field in model.model_fields.items() if is_scalar_list(field.annotation))


def is_scalar_list(annotation: Any) -> bool:
    """True for `tuple[str, ...]`, `list[int]`, `tuple[str, ...] | None`; False for lists of models."""
    if get_origin(annotation) in (Union, UnionType):
        options = [arg for arg in get_args(annotation) if arg is not NoneType]
        return len(options) == 1 and is_scalar_list(options[0])
    if get_origin(annotation) not in (tuple, list):
        return False
    items = [arg for arg in get_args(annotation) if arg is not Ellipsis]
    return all(not (isinstance(item, type) and issubclass(item, BaseModel)) for item in items)

"""Tool arguments checked against the published JSON schemas of tools/specs.py with `jsonschema`.

One rule set for every surface: the arguments a Lambda target receives and those the local MCP server
receives are validated against the same `ToolSpec.input_schema` (Draft 2020-12, the dialect the MCP SDK
uses). A refusal is a `ToolError(invalid_argument)` whose message starts with the field and names the
schema rule it breaks (`"limit: must be at most 50 (maximum)"`).

Two schema-wide conventions, neither tied to a field name:
- an argument whose value is JSON `null` counts as absent (models send `null` for an optional argument),
  so a required one is then reported missing and an optional one gets its default;
- an integral number for an `integer` property (`5.0`, which JSON Schema counts as an integer) is passed
  to the handler as a Python `int`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from tools import specs
from tools.errors import ErrorCode, ToolError

logger = logging.getLogger(__name__)

_MAX_SHOWN_CHARS = 40
_MAX_NAME_CHARS = 64


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= _MAX_SHOWN_CHARS else text[: _MAX_SHOWN_CHARS - 3] + "..."


def _type_rule(error: ValidationError) -> str:
    return f"must be of type {error.validator_value} (got {_json_type(error.instance)})"


def _enum_rule(error: ValidationError) -> str:
    return f"must be one of {error.validator_value} (got {_shown(error.instance)})"


def _min_length_rule(error: ValidationError) -> str:
    return f"must be at least {error.validator_value} characters"


def _max_length_rule(error: ValidationError) -> str:
    return f"is {len(str(error.instance))} characters; the maximum is {error.validator_value}"


def _pattern_rule(error: ValidationError) -> str:
    return f"{_shown(error.instance)} does not match {error.validator_value}"


def _minimum_rule(error: ValidationError) -> str:
    return f"must be at least {error.validator_value}"


def _maximum_rule(error: ValidationError) -> str:
    return f"must be at most {error.validator_value}"


_RULES: Mapping[str, Callable[[ValidationError], str]] = {
    "type": _type_rule,
    "enum": _enum_rule,
    "minLength": _min_length_rule,
    "maxLength": _max_length_rule,
    "pattern": _pattern_rule,
    "minimum": _minimum_rule,
    "maximum": _maximum_rule,
}
"""The message of each schema keyword a property can break (others fall back to jsonschema's text)."""

_RANK = ("additionalProperties", "required")
"""Which of several errors at one depth is reported first; an argument's own errors come after these."""

_JSON_TYPES: tuple[tuple[type | tuple[type, ...], str], ...] = (
    (bool, "boolean"),
    ((int, float), "number"),
    (str, "string"),
    (dict, "object"),
    (list, "array"),
    (type(None), "null"),
)


def _json_type(value: object) -> str:
    return next((name for kind, name in _JSON_TYPES if isinstance(value, kind)), type(value).__name__)


def _first(errors: list[ValidationError]) -> ValidationError:
    """The error to report: the shallowest, then by _RANK, then by field name (deterministic)."""
    return min(
        errors,
        key=lambda error: (
            len(error.absolute_path),
            _RANK.index(str(error.validator)) if error.validator in _RANK else len(_RANK),
            [str(part) for part in error.absolute_path],
        ),
    )


def _message(tool: specs.ToolSpec, supplied: dict[str, Any], error: ValidationError) -> str:
    keyword = str(error.validator)
    if not error.absolute_path:
        if keyword == "required":
            missing = next(name for name in tool.required if name not in supplied)
            return f"{missing}: is required by {tool.name} (required)"
        if keyword == "additionalProperties":
            allowed = sorted(tool.input_schema["properties"])
            unknown = sorted(set(supplied) - set(allowed))[0][:_MAX_NAME_CHARS]
            return f"{unknown}: unknown argument for {tool.name}; allowed: {allowed} (additionalProperties)"
    field = ".".join(str(part) for part in error.absolute_path) or "arguments"
    rule = _RULES.get(keyword)
    text = rule(error) if rule is not None else error.message[:200]
    return f"{field}: {text} ({keyword})"


def validate_arguments(tool: specs.ToolSpec, arguments: object) -> dict[str, Any]:
    """`arguments` checked against `tool.input_schema`, with the schema's defaults applied.

    Raises ToolError(invalid_argument) naming the first offending field and the rule it breaks.
    """
    if not isinstance(arguments, dict):
        raise ToolError(
            ErrorCode.INVALID_ARGUMENT,
            f"arguments: must be a JSON object (got {_json_type(arguments)}) (type)",
        )
    supplied = {key: value for key, value in arguments.items() if value is not None}
    errors = list(Draft202012Validator(tool.input_schema).iter_errors(supplied))
    if errors:
        raise ToolError(ErrorCode.INVALID_ARGUMENT, _message(tool, supplied, _first(errors)))
    properties: dict[str, Any] = tool.input_schema["properties"]
    checked: dict[str, Any] = {}
    for name, rule in properties.items():
        if name in supplied:
            value = supplied[name]
            integral = rule.get("type") == "integer" and isinstance(value, float)
            checked[name] = int(value) if integral else value
        elif "default" in rule:
            checked[name] = rule["default"]
    return checked


def nonblank(field: str, value: str) -> str:
    """`value` without surrounding whitespace, or ToolError(invalid_argument) when nothing is left
    (a schema's `minLength` counts whitespace as characters)."""
    text = value.strip()
    if not text:
        raise ToolError(ErrorCode.INVALID_ARGUMENT, f"{field}: must not be blank")
    return text

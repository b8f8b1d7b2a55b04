"""The tool specs' identity argument: declared only in identity targets' gateway schema, never public."""

from __future__ import annotations

import json

import pytest

from tools import specs


@pytest.mark.parametrize("spec", specs.TOOL_SPECS, ids=lambda s: s.name)
def test_public_schema_never_carries_the_identity_argument(spec: specs.ToolSpec) -> None:
    assert specs.IDENTITY_ARGUMENT not in json.dumps(spec.input_schema)


@pytest.mark.parametrize("spec", specs.TOOL_SPECS, ids=lambda s: s.name)
def test_gateway_schema_declares_it_exactly_for_identity_targets(spec: specs.ToolSpec) -> None:
    gateway = spec.gateway_input_schema
    declared = specs.IDENTITY_ARGUMENT in gateway["properties"]
    assert declared == (spec.target in specs.IDENTITY_TARGETS) == spec.needs_identity
    assert specs.IDENTITY_ARGUMENT not in gateway.get("required", [])
    assert {
        k: v for k, v in gateway["properties"].items() if k != specs.IDENTITY_ARGUMENT
    } == spec.input_schema["properties"]
    assert specs.public_input_schema(gateway) == spec.input_schema


def test_tickets_are_the_identity_target() -> None:
    assert frozenset({"tickets"}) == specs.IDENTITY_TARGETS
    assert specs.IDENTITY_PROPERTY["type"] == "string"


def test_public_input_schema_removes_required_entries_and_leaves_the_input_alone() -> None:
    schema = {"type": "object", "properties": {"a": {}, "_actor": {}}, "required": ["a", "_actor"]}
    before = json.dumps(schema)
    assert specs.public_input_schema(schema) == {"type": "object", "properties": {"a": {}}, "required": ["a"]}
    assert json.dumps(schema) == before
    clean = {"type": "object", "properties": {"a": {}}}
    assert specs.public_input_schema(clean) is clean

"""Builders for test inputs: configs and synthesized stacks."""

from __future__ import annotations

from typing import Any

from config import AppConfig, load_config


def test_config(profile: str = "dev", **sections: dict[str, Any]) -> AppConfig:
    """The checked-in config for `profile`, with section overrides: `test_config(network={"nat_gateways": 0})`."""
    context: dict[str, Any] = {"profile": profile}
    for section, values in sections.items():
        for key, value in _flatten(values).items():
            context[f"{section}.{key}"] = value
    return load_config(context)


test_config.__test__ = False  # type: ignore[attr-defined]  # not a test despite its name


def _flatten(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in values.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{dotted}."))
        else:
            flat[dotted] = value
    return flat

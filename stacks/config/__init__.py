"""One frozen, typed configuration object for the whole foundation.

Load order: the checked-in `config/foundation.yaml` (`defaults`, then `profiles.<profile>`), then CDK
context overrides given as dotted keys (`cdk synth -c network.nat_gateways=2 -c project.profile=prod`).
Every value is validated at load; an error names the key and what is allowed.
"""

from __future__ import annotations

import copy
import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from stacks.config.agentcore import AgentCoreConfig
from stacks.config.base import Section
from stacks.config.evaluation import EvaluationConfig
from stacks.config.foundation import (
    AlarmsConfig,
    ComponentsConfig,
    EnvironmentConfig,
    GuardrailConfig,
    IdentityConfig,
    KnowledgeBaseConfig,
    NetworkConfig,
    ProjectConfig,
)
from stacks.config.frontend import FrontendConfig
from stacks.config.llm_gateway import LlmGatewayConfig
from stacks.config.models import ModelCatalogConfig, ModelEntry
from stacks.config.observability import ObservabilityConfig

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CONFIG_FILE = REPO_ROOT / "config" / "foundation.yaml"


class AppConfig(Section):
    """Everything the app needs, validated. Build one with `load_config` (tests: `test_config`)."""

    project: ProjectConfig = ProjectConfig()
    environment: EnvironmentConfig = EnvironmentConfig()
    components: ComponentsConfig = ComponentsConfig()
    network: NetworkConfig = NetworkConfig()
    identity: IdentityConfig = IdentityConfig()
    knowledge_base: KnowledgeBaseConfig = KnowledgeBaseConfig()
    guardrail: GuardrailConfig = GuardrailConfig()
    models: ModelCatalogConfig = ModelCatalogConfig()
    agentcore: AgentCoreConfig = AgentCoreConfig()
    llm_gateway: LlmGatewayConfig = LlmGatewayConfig()
    observability: ObservabilityConfig = ObservabilityConfig()
    frontend: FrontendConfig = FrontendConfig()
    evaluation: EvaluationConfig = EvaluationConfig()
    alarms: AlarmsConfig = AlarmsConfig()

    @property
    def prefix(self) -> str:
        return self.project.name_prefix

    @property
    def is_prod(self) -> bool:
        return self.project.profile == "prod"

    @property
    def retain_data(self) -> bool:
        return self.project.removal_policy == "retain"


SECTIONS = frozenset(AppConfig.model_fields)


class ConfigError(ValueError):
    """A configuration value is missing or invalid; the message names the key."""


def load_config(
    context: Mapping[str, Any] | None = None,
    config_file: Path | None = None,
) -> AppConfig:
    """Load and validate the configuration.

    Args:
        context: CDK context (or any mapping). `profile` selects a profile; keys whose first dotted
            segment is a section name (`network.nat_gateways`) override values; `config_file` picks
            another YAML file. Other keys (CDK feature flags) are ignored.
        config_file: the YAML file to read when the context does not name one.

    Raises:
        ConfigError: when the file is unreadable or any value is invalid; the message names the key.
    """
    context = dict(context or {})
    path = Path(str(context.get("config_file", config_file or DEFAULT_CONFIG_FILE)))
    document = _read_yaml(path)
    defaults = document.get("defaults") or {}
    profiles = document.get("profiles") or {}
    profile = str(
        context.get("profile") or context.get("project.profile") or _dig(defaults, "project.profile") or "dev"
    )
    if profile not in profiles:
        raise ConfigError(
            f"config key 'project.profile': unknown profile {profile!r}; allowed: {sorted(profiles)}"
        )

    merged = _deep_merge(defaults, profiles[profile] or {})
    merged = _deep_merge(merged, {"project": {"profile": profile}})
    for key, raw in sorted(context.items()):
        if not _is_config_override(key):
            continue
        if key.split(".", 1)[0] not in SECTIONS:
            raise ConfigError(
                f"context key {key!r} does not start with a config section; allowed: {sorted(SECTIONS)}"
            )
        merged = _deep_merge(merged, _nested(key, _parse_scalar(raw)))
    return build_config(merged, source=str(path))


def build_config(values: Mapping[str, Any], source: str = "config") -> AppConfig:
    """Validate a plain mapping into an AppConfig, turning validation errors into named-key messages."""
    unknown = sorted(set(values) - SECTIONS)
    if unknown:
        raise ConfigError(f"config key {unknown[0]!r} is not a known section; allowed: {sorted(SECTIONS)}")
    try:
        return AppConfig.model_validate(values)
    except ValidationError as exc:
        raise ConfigError(_format_errors(exc, source)) from None


def _is_config_override(key: str) -> bool:
    """Dotted context keys are config overrides; CDK's own keys start with '@' or contain ':'."""
    return "." in key and not key.startswith("@") and ":" not in key


def _format_errors(exc: ValidationError, source: str) -> str:
    lines = [f"invalid configuration ({source}):"]
    for error in exc.errors():
        key = ".".join(str(part) for part in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        nested = re.match(r"^([a-z_][a-z0-9_.]*): (.*)$", message, flags=re.DOTALL)
        if nested:  # a section-level rule that names the field it is about
            key, message = f"{key}.{nested.group(1)}", nested.group(2)
        got = error.get("input")
        suffix = "" if isinstance(got, dict) or error["type"] == "missing" else f" (got {got!r})"
        lines.append(f"  - config key '{key}': {message}{suffix}")
    return "\n".join(lines)


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config key 'config_file': {path} does not exist") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"config key 'config_file': {path} is not valid YAML: {exc}") from None
    if not isinstance(loaded, dict):
        raise ConfigError(
            f"config key 'config_file': {path} must hold a mapping with 'defaults' and 'profiles'"
        )
    return loaded


def _parse_scalar(raw: Any) -> Any:
    """Context values arrive as strings: read them as YAML (numbers, booleans, lists), except
    digit strings with a leading zero such as account ids, which stay strings."""
    if not isinstance(raw, str) or re.fullmatch(r"0\d+", raw):
        return raw
    try:
        return yaml.safe_load(raw)
    except yaml.YAMLError:
        return raw


def _nested(dotted: str, value: Any) -> dict[str, Any]:
    result: dict[str, Any] = {}
    node = result
    parts = dotted.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    return result


def _dig(mapping: Mapping[str, Any], dotted: str) -> Any:
    node: Any = mapping
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def _deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


__all__ = [
    "DEFAULT_CONFIG_FILE",
    "REPO_ROOT",
    "AgentCoreConfig",
    "AppConfig",
    "ConfigError",
    "EvaluationConfig",
    "FrontendConfig",
    "LlmGatewayConfig",
    "ModelCatalogConfig",
    "ModelEntry",
    "ObservabilityConfig",
    "build_config",
    "load_config",
]

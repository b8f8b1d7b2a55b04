"""One frozen, typed configuration object for the whole foundation.

Load order: the checked-in `config/foundation.yaml` (`defaults`, then `profiles.<profile>`), then CDK
context overrides given as dotted keys (`cdk synth -c network.nat_gateways=2 -c project.profile=prod`).
A mapping merges key by key; any other value, a list included, replaces the one before it (so a
profile's or a `-c models.entries=[...]` model list replaces the whole catalog). List fields take a JSON
or YAML list or a comma-separated string (see `config.base.Section`). Every value is validated at
load; an error names the key and what is allowed, and an unknown key names the nearest known one.
"""

from __future__ import annotations

import copy
import difflib
import functools
import json
import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError, model_validator

from config.agentcore import (
    AGENTCORE_RUNTIME_AZ_IDS,
    AGENTCORE_VPC_DOC_URL,
    AGENTCORE_VPC_TABLE_READ_ON,
    AgentCoreConfig,
    unsupported_az_ids,
)
from config.base import Section
from config.evaluation import EvaluationConfig
from config.foundation import (
    AlarmsConfig,
    ComponentsConfig,
    EnvironmentConfig,
    GuardrailConfig,
    IdentityConfig,
    KnowledgeBaseConfig,
    NetworkConfig,
    ProjectConfig,
)
from config.frontend import FrontendConfig
from config.llm_gateway import LlmGatewayConfig
from config.models import ModelCatalogConfig, ModelEntry
from config.observability import ObservabilityConfig

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG_FILE = REPO_ROOT / "config" / "foundation.yaml"
CDK_JSON = REPO_ROOT / "cdk.json"
# Undotted context keys that are not config overrides: ours (`profile`, `config_file`) and the CDK
# CLI's own (aws-cdk lib/index.js reads `acknowledged-issue-numbers` and `cli-telemetry` from context).
# Keys starting with '@' (feature flags) or holding ':' (`aws:cdk:*`, lookups such as
# `availability-zones:account=...`) are CDK's too, and so is every key of cdk.json's "context".
NON_CONFIG_CONTEXT_KEYS = frozenset({"profile", "config_file", "acknowledged-issue-numbers", "cli-telemetry"})
# Which keys `components.<name>: external` needs, per component (checked at load, so a missing key is a
# ConfigError before any stack is built).
EXTERNAL_COMPONENT_KEYS: Mapping[str, tuple[str, ...]] = {
    "llm_gateway": (
        "llm_gateway.external_url",
        "llm_gateway.external_agent_key_secret_name",
        "llm_gateway.external_eval_key_secret_name",
    ),
    "observability": ("observability.external_host", "observability.external_keys_secret_name"),
}


class AppConfig(Section):
    """Everything the app needs, validated. Build one with `load_config` (tests: `test_config`)."""

    project: ProjectConfig = ProjectConfig()
    environment: EnvironmentConfig = EnvironmentConfig()
    components: ComponentsConfig = ComponentsConfig()
    network: NetworkConfig = NetworkConfig()
    identity: IdentityConfig = IdentityConfig()
    knowledge_base: KnowledgeBaseConfig = KnowledgeBaseConfig()
    guardrail: GuardrailConfig = GuardrailConfig()
    models: ModelCatalogConfig  # no Python default: the catalog lives in config/foundation.yaml
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
    def runtime_az_names(self) -> tuple[str, ...]:
        """The account's AZ names for `agentcore.runtime_az_ids` (empty: no zone restriction)."""
        return tuple(self.network.az_names[az_id] for az_id in self.agentcore.runtime_az_ids)

    @model_validator(mode="after")
    def _external_components_are_named(self) -> AppConfig:
        for component, keys in EXTERNAL_COMPONENT_KEYS.items():
            if getattr(self.components, component) != "external":
                continue
            missing = [key for key in keys if not _dig(self.model_dump(), key)]
            if missing:
                raise ValueError(
                    f"components.{component}: 'external' needs {', '.join(missing)} "
                    f"(not set; -c {missing[0]}=... or config/foundation.yaml)"
                )
        return self

    @model_validator(mode="after")
    def _runtime_zones(self) -> AppConfig:
        ids = self.agentcore.runtime_az_ids
        if not ids:
            return self
        region, account = self.environment.region, self.environment.account
        if region is not None:
            bad = unsupported_az_ids(region, ids)
            if bad:
                supported = AGENTCORE_RUNTIME_AZ_IDS.get(region)
                listed = f"supported: {list(supported)}" if supported else f"{region} has no listed zones"
                raise ValueError(
                    f"agentcore.runtime_az_ids: {bad} not accepted by AgentCore Runtime in {region} "
                    f"({listed}; {AGENTCORE_VPC_DOC_URL}, read {AGENTCORE_VPC_TABLE_READ_ON})"
                )
        if region is None or account is None:
            raise ValueError(
                "agentcore.runtime_az_ids: needs environment.account and environment.region: subnets are "
                "chosen by AZ name, and names differ per account"
            )
        missing = [az_id for az_id in ids if az_id not in self.network.az_names]
        if missing:
            raise ValueError(
                f"network.az_names: no AZ name for {missing} in account {account}; list them with "
                f"aws ec2 describe-availability-zones --region {region} "
                "--query 'AvailabilityZones[].[ZoneId,ZoneName]'"
            )
        foreign = [name for name in self.runtime_az_names if not name.startswith(region)]
        if foreign:
            raise ValueError(f"network.az_names: {foreign} are not zones of {region}")
        if self.network.vpc_id is None and len(ids) > self.network.max_azs:
            raise ValueError(
                f"agentcore.runtime_az_ids: {len(ids)} zones but network.max_azs is {self.network.max_azs}"
            )
        return self

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
            another YAML file. CDK's own keys (feature flags, `aws:cdk:*`, lookups, cdk.json's
            context) are ignored; any other undotted key is an error.
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
        if _is_cdk_key(key):
            continue
        if "." not in key:
            if key not in _non_config_context_keys():
                raise ConfigError(
                    f"context key {key!r} is not a config key: config keys are dotted "
                    f"(section.key){_did_you_mean(key)}"
                )
            continue
        if key.split(".", 1)[0] not in SECTIONS:
            raise ConfigError(
                f"context key {key!r} does not start with a config section "
                f"(allowed: {sorted(SECTIONS)}){_did_you_mean(key)}"
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


def _is_cdk_key(key: str) -> bool:
    """CDK's own context keys start with '@' (feature flags) or contain ':' (`aws:cdk:*`, lookups)."""
    return key.startswith("@") or ":" in key


@functools.cache
def _non_config_context_keys() -> frozenset[str]:
    """Undotted context keys that are allowed: NON_CONFIG_CONTEXT_KEYS and cdk.json's context keys."""
    try:
        context = json.loads(CDK_JSON.read_text(encoding="utf-8")).get("context") or {}
    except FileNotFoundError:  # an installed copy without cdk.json (the evaluation image)
        context = {}
    return NON_CONFIG_CONTEXT_KEYS | frozenset(context)


@functools.cache
def known_keys() -> tuple[str, ...]:
    """Every dotted config key, sections and nested sections included (`knowledge_base.chunking`)."""
    return tuple(_keys_of(AppConfig, ""))


def _keys_of(model: type[BaseModel], prefix: str) -> list[str]:
    keys: list[str] = []
    for name, field in model.model_fields.items():
        keys.append(f"{prefix}{name}")
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            keys.extend(_keys_of(annotation, f"{prefix}{name}."))
    return keys


def _did_you_mean(key: str) -> str:
    """'; did you mean network.nat_gateways?' for the known key nearest to `key` ('' when none is near).

    A key whose last segment is a known field elsewhere (`nat_gateways`, `llm_gateway.nat_gateways`)
    names that field; otherwise the nearest spelling among the keys of the same section, then among all.
    """
    keys = known_keys()
    if key in SECTIONS:
        first = next(iter(AppConfig.model_fields[key].annotation.model_fields))  # type: ignore[union-attr]
        return f"; set a key of the section, e.g. {key}.{first}"
    parent, _, last = key.rpartition(".")
    same_name = sorted(k for k in keys if k.rpartition(".")[2] == last and k != key)
    siblings = [k.rpartition(".")[2] for k in keys if k.rpartition(".")[0] == parent and k != key]
    near_sibling = difflib.get_close_matches(last, siblings, n=1, cutoff=0.7)
    near = difflib.get_close_matches(key, keys, n=1, cutoff=0.75)
    if same_name:
        guess = same_name[0]
    elif near_sibling:
        guess = f"{parent}.{near_sibling[0]}" if parent else near_sibling[0]
    elif near:
        guess = near[0]
    else:
        return ""
    return f"; did you mean {guess}?"


def _format_errors(exc: ValidationError, source: str) -> str:
    """One line for one error (`invalid configuration (file): config key 'x': ...`), else a list."""
    lines = [f"invalid configuration ({source}):"]
    for error in exc.errors():
        key = ".".join(str(part) for part in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        nested = re.match(r"^([a-z_][a-z0-9_.]*): (.*)$", message, flags=re.DOTALL)
        if nested:  # a section-level rule that names the field it is about
            key, message = f"{key}.{nested.group(1)}" if key else nested.group(1), nested.group(2)
        got = error.get("input")
        suffix = "" if isinstance(got, dict) or error["type"] == "missing" else f" (got {got!r})"
        if error["type"] == "extra_forbidden":
            message, suffix = f"unknown config key{_did_you_mean(key)}", ""
        lines.append(f"  - config key '{key}': {message}{suffix}")
    if len(lines) == 2:
        return f"{lines[0]} {lines[1].removeprefix('  - ')}"
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
    "CDK_JSON",
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
    "known_keys",
    "load_config",
]

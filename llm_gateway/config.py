"""Generate LiteLLM's `config.yaml` from the typed model catalog (`AppConfig.models`).

One generator serves both gateways:

- `deployed_config(config)`: what the ECS service loads (from S3). Every value that differs per
  deployment or is secret is an `os.environ/NAME` reference that LiteLLM resolves at start-up
  (master key, database host and credentials, guardrail id and version, Redis, Langfuse keys): the YAML itself holds
  no secret and no CloudFormation token, so it can be built at synth time and shipped as an asset.
- `local_config(config, upstreams=...)`: the same model list, retry and fallback policy without a
  database, optionally pointing selected aliases at an OpenAI-compatible `api_base` (the scripted
  model in tests, or another provider for `make local`).

The catalog itself is validated by `config.models` (unknown provider, fallback to a missing
alias, negative limits fail at load with the key named); this module turns a valid catalog into
LiteLLM's schema.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from config import AppConfig
from config.models import ModelCatalogConfig, ModelEntry

logger = logging.getLogger(__name__)

# Environment variables the generated config refers to (`os.environ/<NAME>`).
ENV_MASTER_KEY = "LITELLM_MASTER_KEY"
ENV_SALT_KEY = "LITELLM_SALT_KEY"  # read by LiteLLM directly to encrypt stored credentials
# The deployed gateway gets the database as parts (host and name in plain environment, user and password as
# ECS secrets from the cluster's generated secret); LiteLLM builds DATABASE_URL from them at start-up.
ENV_DATABASE_PARTS = ("DATABASE_HOST", "DATABASE_NAME", "DATABASE_USERNAME", "DATABASE_PASSWORD")
ENV_GUARDRAIL_ID = "BEDROCK_GUARDRAIL_ID"
ENV_GUARDRAIL_VERSION = "BEDROCK_GUARDRAIL_VERSION"
ENV_REDIS_HOST = "REDIS_HOST"
ENV_REDIS_PORT = "REDIS_PORT"
ENV_REDIS_PASSWORD = "REDIS_PASSWORD"  # noqa: S105 (a variable name)
ENV_LANGFUSE_HOST = "LANGFUSE_HOST"
ENV_LANGFUSE_PUBLIC_KEY = "LANGFUSE_PUBLIC_KEY"
ENV_LANGFUSE_SECRET_KEY = "LANGFUSE_SECRET_KEY"  # noqa: S105 (a variable name)

# The LiteLLM model prefix per catalog provider.
PROVIDER_PREFIX: Mapping[str, str] = {
    "bedrock": "bedrock",
    "openai": "openai",
    "anthropic": "anthropic",
    "openai_compatible": "openai",  # any OpenAI-compatible server, addressed through api_base
}

# Default key variables for providers that need an API key (overridable per entry: api_key_env).
DEFAULT_API_KEY_ENV: Mapping[str, str] = {"openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY"}

GUARDRAIL_NAME = "bedrock-guardrail"
LOCAL_AUTH_HOOK = "llm_gateway.local_auth.user_api_key_auth"
# The local stand-in of the spend table: records each call's cost per team for the team budgets.
LOCAL_SPEND_CALLBACK = "llm_gateway.local_auth.spend_ledger"


def env_ref(name: str) -> str:
    """LiteLLM's syntax for 'read this value from the environment variable `name` at start-up'."""
    return f"os.environ/{name}"


@dataclass(frozen=True)
class GuardrailRef:
    """A Bedrock guardrail: identifier and published version (literal values or `env_ref(...)`)."""

    identifier: str
    version: str


@dataclass(frozen=True)
class Upstream:
    """Serve an alias from an OpenAI-compatible server instead of its catalogued provider.

    Args:
        api_base: base URL including `/v1`, e.g. `http://127.0.0.1:8001/v1`.
        model: the model name the upstream expects (default: the entry's `model_id`).
        api_key_env: variable holding the upstream's API key (None: a placeholder key is sent).
        rate_limits: keep the catalog entry's rpm/tpm on this deployment. Off by default: the catalog's
            limits are the Bedrock quotas of the catalogued model, which say nothing about another
            server (applied to a local scripted or self-hosted model they throttle it to ~300 calls
            a minute for no reason). `GATEWAY_UPSTREAM_RATE_LIMITS=catalog` turns them on locally.
    """

    api_base: str
    model: str | None = None
    api_key_env: str | None = None
    rate_limits: bool = False


@dataclass(frozen=True)
class GatewayFeatures:
    """What the generated config switches on beyond the model list."""

    database: bool = False
    guardrail: GuardrailRef | None = None
    langfuse: bool = False
    redis: bool = False
    master_key: bool = True
    local_auth: bool = False


def deployed_config(config: AppConfig) -> dict[str, Any]:
    """The ECS gateway's config: database, guardrail, Langfuse (when observability is on), Redis (when cached)."""
    features = GatewayFeatures(
        database=True,
        guardrail=GuardrailRef(env_ref(ENV_GUARDRAIL_ID), env_ref(ENV_GUARDRAIL_VERSION)),
        langfuse=config.components.observability != "disabled",
        redis=config.llm_gateway.cache,
    )
    return build_gateway_config(config.models, features)


def local_config(
    config: AppConfig,
    upstreams: Mapping[str, Upstream] | None = None,
    *,
    langfuse: bool = False,
    guardrail: GuardrailRef | None = None,
) -> dict[str, Any]:
    """The local gateway's config: no database; `upstreams` re-points aliases at OpenAI-compatible servers.

    Raises:
        KeyError: when an upstream names an alias that is not in the catalog.
    """
    features = GatewayFeatures(database=False, guardrail=guardrail, langfuse=langfuse, local_auth=True)
    return build_gateway_config(config.models, features, upstreams)


def build_gateway_config(
    catalog: ModelCatalogConfig,
    features: GatewayFeatures,
    upstreams: Mapping[str, Upstream] | None = None,
) -> dict[str, Any]:
    """Translate a validated catalog into LiteLLM's config schema (a plain dict, ready for YAML)."""
    upstreams = dict(upstreams or {})
    known = {entry.alias for entry in catalog.entries}
    unknown = sorted(set(upstreams) - known)
    if unknown:
        raise KeyError(
            f"upstream for alias {unknown[0]!r}: not in the catalog; known aliases: {sorted(known)}"
        )

    document: dict[str, Any] = {
        "model_list": [_model(entry, catalog, upstreams.get(entry.alias)) for entry in catalog.entries],
        "router_settings": _router_settings(catalog, features),
        "litellm_settings": _litellm_settings(catalog, features),
        "general_settings": _general_settings(features),
    }
    if features.guardrail is not None:
        document["guardrails"] = [_guardrail(features.guardrail)]
    return document


def render_yaml(document: Mapping[str, Any]) -> str:
    """YAML text for a generated config, with a header saying where it comes from."""
    header = (
        "# Generated by llm_gateway.config from the model catalog (config/models.py).\n"
        "# Do not edit: change config/foundation.yaml and regenerate. Values `os.environ/NAME` are read\n"
        "# from the gateway's environment at start-up; this file holds no secret.\n"
    )
    return header + yaml.safe_dump(dict(document), sort_keys=False, default_flow_style=False)


def _model(entry: ModelEntry, catalog: ModelCatalogConfig, upstream: Upstream | None) -> dict[str, Any]:
    params: dict[str, Any] = {}
    if upstream is not None:
        params["model"] = f"openai/{upstream.model or entry.model_id}"
        params["api_base"] = upstream.api_base
        # LiteLLM's OpenAI client insists on some key; a local upstream without auth gets a placeholder.
        params["api_key"] = env_ref(upstream.api_key_env) if upstream.api_key_env else "local-upstream-no-key"
    else:
        params["model"] = f"{PROVIDER_PREFIX[entry.provider]}/{entry.model_id}"
        if entry.api_base_env:
            params["api_base"] = env_ref(entry.api_base_env)
        key_env = entry.api_key_env or DEFAULT_API_KEY_ENV.get(entry.provider)
        if key_env:
            params["api_key"] = env_ref(key_env)
        elif entry.provider == "openai_compatible":
            params["api_key"] = "local-upstream-no-key"
    # The catalog's rpm/tpm describe the catalogued provider's quota; an upstream keeps them only when asked.
    if upstream is None or upstream.rate_limits:
        if entry.rpm is not None:
            params["rpm"] = entry.rpm
        if entry.tpm is not None:
            params["tpm"] = entry.tpm
    params["timeout"] = catalog.request_timeout_seconds
    if entry.input_cost_per_million is not None:
        params["input_cost_per_token"] = entry.input_cost_per_million / 1_000_000
    if entry.output_cost_per_million is not None:
        params["output_cost_per_token"] = entry.output_cost_per_million / 1_000_000
    return {
        "model_name": entry.alias,
        "litellm_params": params,
        "model_info": {
            "id": entry.alias,
            "provider": entry.provider,
            "catalog_model_id": entry.model_id,
            "max_output_tokens": entry.max_output_tokens,
        },
    }


def _router_settings(catalog: ModelCatalogConfig, features: GatewayFeatures) -> dict[str, Any]:
    settings: dict[str, Any] = {
        # usage-based-routing-v2 enforces each deployment's rpm/tpm and answers 429 when exceeded.
        "routing_strategy": "usage-based-routing-v2",
        "num_retries": catalog.num_retries,
        "timeout": catalog.request_timeout_seconds,
        "cooldown_time": catalog.cooldown_seconds,
        "allowed_fails": catalog.allowed_fails,
        "fallbacks": [{entry.alias: list(entry.fallbacks)} for entry in catalog.entries if entry.fallbacks],
    }
    if features.redis:
        # Shared counters so rpm/tpm limits hold across tasks and workers.
        settings["redis_host"] = env_ref(ENV_REDIS_HOST)
        settings["redis_port"] = env_ref(ENV_REDIS_PORT)
        settings["redis_password"] = env_ref(ENV_REDIS_PASSWORD)
        settings["redis_ssl"] = True
    return settings


def _litellm_settings(catalog: ModelCatalogConfig, features: GatewayFeatures) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "num_retries": catalog.num_retries,
        "request_timeout": catalog.request_timeout_seconds,
        "drop_params": True,  # a provider-specific parameter a model does not support is dropped, not fatal
        "turn_off_message_logging": False,
    }
    callbacks = []
    if features.langfuse:
        # Reads LANGFUSE_HOST, LANGFUSE_PUBLIC_KEY and LANGFUSE_SECRET_KEY from the environment.
        callbacks.append("langfuse_otel")
    if features.local_auth:
        callbacks.append(LOCAL_SPEND_CALLBACK)  # team spend and budgets without a database (local_auth.py)
    if callbacks:
        settings["callbacks"] = callbacks
    if features.redis:
        settings["cache"] = False  # Redis carries router state (limits), not response caching
    return settings


def _general_settings(features: GatewayFeatures) -> dict[str, Any]:
    settings: dict[str, Any] = {}
    if features.master_key:
        settings["master_key"] = env_ref(ENV_MASTER_KEY)
    if features.local_auth:
        # Without a database LiteLLM answers a wrong key with 400; this hook answers 401 (see local_auth.py).
        settings["custom_auth"] = LOCAL_AUTH_HOOK
    if features.database:
        # No database_url here: LiteLLM builds DATABASE_URL from ENV_DATABASE_PARTS (see above).
        settings["store_model_in_db"] = False  # the catalog is the only source of models
        settings["disable_spend_logs"] = False
    else:
        settings["disable_spend_logs"] = True
    return settings


def _guardrail(ref: GuardrailRef) -> dict[str, Any]:
    return {
        "guardrail_name": GUARDRAIL_NAME,
        "litellm_params": {
            "guardrail": "bedrock",
            "mode": ["pre_call", "post_call"],
            "guardrailIdentifier": ref.identifier,
            "guardrailVersion": ref.version,
            "default_on": True,
        },
    }

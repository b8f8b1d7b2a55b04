"""The agent's configuration, read once from its environment (table in docs/agent-api.md).

Secrets are never environment values when deployed: the environment holds Secrets Manager ARNs and
`SecretResolver` reads (and caches) the values on first use.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from agent.errors import ConfigurationError

logger = logging.getLogger(__name__)

Mode = Literal["local", "agentcore"]
_ACTOR_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$")
_GROUP_RE = re.compile(r"^[a-z][a-z0-9-]{1,30}$")  # the team names of config identity.teams


@dataclass(frozen=True)
class Settings:
    """Everything the agent reads from its environment, validated."""

    mode: Mode
    llm_gateway_url: str
    model_alias: str
    tool_gateway_url: str
    llm_gateway_key: str | None = None
    llm_gateway_key_secret_arn: str | None = None
    llm_gateway_teams_file: str | None = None
    tool_gateway_client_secret_arn: str | None = None
    tool_gateway_token_url: str | None = None
    tool_gateway_scope: str | None = None
    memory_id: str | None = None
    memory_namespace: str = "/actors/{actorId}/"
    guardrail_id: str | None = None
    guardrail_version: str | None = None
    knowledge_base_id: str | None = None
    langfuse_host: str | None = None
    langfuse_keys_secret_arn: str | None = None
    langfuse_public_key: str | None = None
    langfuse_secret_key: str | None = None
    local_user: str = "local-user"
    local_user_groups: tuple[str, ...] = ()
    local_memory_path: str = ":memory:"
    local_guardrail_policy: str | None = None
    aws_region: str | None = None
    environment_tag: str = "local"
    max_output_tokens: int = 1024
    model_timeout_seconds: float = 30.0
    tool_timeout_seconds: float = 20.0
    turn_deadline_seconds: float = 45.0
    heartbeat_seconds: float = 10.0
    max_concurrent_turns: int = 16
    max_connections: int = 128
    header_timeout_seconds: float = 10.0
    body_timeout_seconds: float = 10.0
    allowed_hosts: tuple[str, ...] = ()
    trace_export_timeout_seconds: float = 2.0
    history_turns: int = 10
    input_cost_per_million: float | None = None
    output_cost_per_million: float | None = None
    service_name: str = "aaf-agent"
    extra: Mapping[str, str] = field(default_factory=dict)

    @property
    def tracing_enabled(self) -> bool:
        return bool(self.langfuse_host)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        """Build settings from an environment mapping; raise ConfigurationError naming what is missing."""
        mode = env.get("AGENT_MODE", "local").strip() or "local"
        if mode not in ("local", "agentcore"):
            raise ConfigurationError(f"AGENT_MODE must be 'local' or 'agentcore', got {mode!r}")

        def required(name: str) -> str:
            value = env.get(name, "").strip()
            if not value:
                raise ConfigurationError(f"{name} is not set (required when AGENT_MODE={mode})")
            return value

        def optional(name: str) -> str | None:
            value = env.get(name, "").strip()
            return value or None

        def number(name: str, default: float) -> float:
            raw = optional(name)
            if raw is None:
                return default
            try:
                value = float(raw)
            except ValueError as error:
                raise ConfigurationError(f"{name} must be a number, got {raw!r}") from error
            if value <= 0:
                raise ConfigurationError(f"{name} must be positive, got {raw!r}")
            return value

        llm_url = required("LLM_GATEWAY_URL").rstrip("/")
        if not llm_url.startswith(("http://", "https://")):
            raise ConfigurationError(f"LLM_GATEWAY_URL must be an http(s) URL, got {llm_url!r}")
        if llm_url.endswith("/v1"):
            raise ConfigurationError("LLM_GATEWAY_URL must not end in /v1 (the agent appends it)")
        tool_url = required("TOOL_GATEWAY_URL")
        if not tool_url.startswith(("http://", "https://")):
            raise ConfigurationError(f"TOOL_GATEWAY_URL must be an http(s) URL, got {tool_url!r}")

        values: dict[str, Any] = {
            "mode": mode,
            "llm_gateway_url": llm_url,
            "model_alias": required("MODEL_ALIAS"),
            "tool_gateway_url": tool_url,
            "knowledge_base_id": optional("KNOWLEDGE_BASE_ID"),
            "langfuse_host": (optional("LANGFUSE_HOST") or "").rstrip("/") or None,
            "aws_region": optional("AWS_REGION") or optional("AWS_DEFAULT_REGION"),
            "environment_tag": optional("AGENT_ENVIRONMENT") or ("local" if mode == "local" else "deployed"),
            "max_output_tokens": int(number("AGENT_MAX_OUTPUT_TOKENS", 1024)),
            "model_timeout_seconds": number("AGENT_MODEL_TIMEOUT_SECONDS", 30.0),
            "tool_timeout_seconds": number("AGENT_TOOL_TIMEOUT_SECONDS", 20.0),
            "turn_deadline_seconds": number("AGENT_TURN_DEADLINE_SECONDS", 45.0),
            "heartbeat_seconds": number("AGENT_HEARTBEAT_SECONDS", 10.0),
            "max_concurrent_turns": int(number("AGENT_MAX_CONCURRENT_TURNS", 16)),
            "max_connections": int(number("AGENT_MAX_CONNECTIONS", 128)),
            "header_timeout_seconds": number("AGENT_HEADER_TIMEOUT_SECONDS", 10.0),
            "body_timeout_seconds": number("AGENT_BODY_TIMEOUT_SECONDS", 10.0),
            "allowed_hosts": tuple(
                host.strip().lower()
                for host in (optional("AGENT_ALLOWED_HOSTS") or "").split(",")
                if host.strip()
            ),
            "trace_export_timeout_seconds": number("AGENT_TRACE_EXPORT_TIMEOUT_SECONDS", 2.0),
            "history_turns": int(number("AGENT_HISTORY_TURNS", 10)),
            "input_cost_per_million": number("MODEL_INPUT_COST_PER_MILLION", 0.0) or None,
            "output_cost_per_million": number("MODEL_OUTPUT_COST_PER_MILLION", 0.0) or None,
            "service_name": optional("AGENT_SERVICE_NAME") or "aaf-agent",
        }
        if values["tool_timeout_seconds"] >= values["turn_deadline_seconds"]:
            raise ConfigurationError(
                "AGENT_TOOL_TIMEOUT_SECONDS must be shorter than AGENT_TURN_DEADLINE_SECONDS "
                f"({values['tool_timeout_seconds']} >= {values['turn_deadline_seconds']})"
            )
        if values["max_connections"] <= values["max_concurrent_turns"]:
            raise ConfigurationError(
                "AGENT_MAX_CONNECTIONS must be larger than AGENT_MAX_CONCURRENT_TURNS "
                "(health checks need connections while every turn slot is taken)"
            )
        if mode == "agentcore":
            values.update(
                llm_gateway_key_secret_arn=required("LLM_GATEWAY_KEY_SECRET_ARN"),
                tool_gateway_client_secret_arn=required("TOOL_GATEWAY_CLIENT_SECRET_ARN"),
                tool_gateway_token_url=required("TOOL_GATEWAY_TOKEN_URL"),
                tool_gateway_scope=required("TOOL_GATEWAY_SCOPE"),
                memory_id=required("MEMORY_ID"),
                memory_namespace=optional("MEMORY_NAMESPACE") or "/actors/{actorId}/",
                guardrail_id=required("GUARDRAIL_ID"),
                guardrail_version=required("GUARDRAIL_VERSION"),
                langfuse_keys_secret_arn=optional("LANGFUSE_KEYS_SECRET_ARN"),
            )
            if values["langfuse_host"] and not values["langfuse_keys_secret_arn"]:
                raise ConfigurationError("LANGFUSE_KEYS_SECRET_ARN is not set but LANGFUSE_HOST is")
        else:
            local_user = optional("LOCAL_USER") or "local-user"
            if not _ACTOR_RE.match(local_user):
                raise ConfigurationError(f"LOCAL_USER {local_user!r} must match {_ACTOR_RE.pattern}")
            groups = tuple(g.strip() for g in (optional("LOCAL_USER_GROUPS") or "").split(",") if g.strip())
            bad = [group for group in groups if not _GROUP_RE.match(group)]
            if bad:
                raise ConfigurationError(
                    f"LOCAL_USER_GROUPS {bad} must be team names matching {_GROUP_RE.pattern}"
                )
            values.update(
                local_user_groups=groups,
                llm_gateway_key=required("LLM_GATEWAY_KEY"),
                llm_gateway_teams_file=optional("LLM_GATEWAY_TEAMS_FILE"),
                local_user=local_user,
                local_memory_path=optional("LOCAL_MEMORY_PATH") or ":memory:",
                local_guardrail_policy=optional("LOCAL_GUARDRAIL_POLICY"),
                langfuse_public_key=optional("LANGFUSE_PUBLIC_KEY"),
                langfuse_secret_key=optional("LANGFUSE_SECRET_KEY"),
            )
            if values["langfuse_host"] and not (
                values["langfuse_public_key"] and values["langfuse_secret_key"]
            ):
                raise ConfigurationError(
                    "LANGFUSE_PUBLIC_KEY and LANGFUSE_SECRET_KEY must be set when LANGFUSE_HOST is set"
                )
        return cls(**values)


@dataclass(frozen=True)
class GatewayKeys:
    """The agent's LLM gateway keys: the default (`api_key`) and, when bootstrapped, one per team.

    The document is the agent key secret written by llm_gateway/bootstrap.py `team_keys_document`:
    `{"api_key", "key_alias", "default_team", "team_keys": {team: key}}`, teams in `identity.teams`
    order then the default team. A secret with only `api_key` (an external gateway) is one key for all.
    """

    api_key: str
    team_keys: Mapping[str, str] = field(default_factory=dict)
    default_team: str | None = None

    @classmethod
    def from_document(cls, document: Mapping[str, Any], source: str) -> GatewayKeys:
        """Raises ConfigurationError naming `source` and the field when the document is malformed."""
        api_key = document.get("api_key")
        if not isinstance(api_key, str) or not api_key:
            raise ConfigurationError(f"{source} lacks the keys ['api_key']")
        team_keys = document.get("team_keys")
        if team_keys is None:
            return cls(api_key)
        default = document.get("default_team")
        if not (
            isinstance(team_keys, dict)
            and team_keys
            and all(isinstance(k, str) and isinstance(v, str) and v for k, v in team_keys.items())
        ):
            raise ConfigurationError(f"{source}: 'team_keys' must map team names to keys")
        if not isinstance(default, str) or default not in team_keys:
            raise ConfigurationError(
                f"{source}: 'default_team' must name one of 'team_keys' {list(team_keys)}"
            )
        return cls(api_key, dict(team_keys), default)

    @classmethod
    def from_file(cls, path: str) -> GatewayKeys:
        """The same document from a local JSON file (local mode: LLM_GATEWAY_TEAMS_FILE)."""
        try:
            with open(path, encoding="utf-8") as handle:  # noqa: PTH123 (a plain path from the env)
                document = json.load(handle)
        except (OSError, json.JSONDecodeError) as error:
            raise ConfigurationError(
                f"LLM_GATEWAY_TEAMS_FILE {path!r} is not a readable JSON file"
            ) from error
        if not isinstance(document, dict):
            raise ConfigurationError(f"LLM_GATEWAY_TEAMS_FILE {path!r} is not a JSON object")
        return cls.from_document(document, f"LLM_GATEWAY_TEAMS_FILE {path!r}")


class SecretResolver:
    """Reads JSON secrets from Secrets Manager once and caches them (deployed mode)."""

    def __init__(self, region: str | None, client: Any = None) -> None:
        self._region = region
        self._client = client
        self._cache: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def document(self, arn: str) -> dict[str, Any]:
        """The secret's JSON object as stored (nested values kept)."""
        with self._lock:
            if arn not in self._cache:
                if self._client is None:
                    import boto3  # deferred: only deployed mode reads secrets

                    self._client = boto3.client("secretsmanager", region_name=self._region)
                raw = self._client.get_secret_value(SecretId=arn)["SecretString"]
                try:
                    value = json.loads(raw)
                except json.JSONDecodeError as error:
                    raise ConfigurationError(f"secret {arn} is not a JSON object") from error
                if not isinstance(value, dict):
                    raise ConfigurationError(f"secret {arn} is not a JSON object")
                self._cache[arn] = value
            return self._cache[arn]

    def json(self, arn: str, *keys: str) -> dict[str, str]:
        """The secret's top-level values as strings; raises ConfigurationError naming missing `keys`."""
        secret = {str(k): str(v) for k, v in self.document(arn).items() if not isinstance(v, dict | list)}
        missing = [key for key in keys if not secret.get(key)]
        if missing:
            raise ConfigurationError(f"secret {arn} lacks the keys {missing}")
        return secret

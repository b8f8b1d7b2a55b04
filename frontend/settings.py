"""The chat's settings, read from the environment; a missing or bad value names the variable."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from clients.agentcore import AgentTarget
from clients.langfuse import LangfuseSettings
from clients.oauth import OAuthClientConfig

DEFAULT_AGENT_URL = "http://127.0.0.1:8080"
DEFAULT_PUBLIC_URL = "http://localhost:8501/"
BROWSER_SCOPES = ("openid", "email", "profile", "agentic-foundation/agent.invoke")
# S3 general purpose bucket names: 3-63 lowercase letters, digits, dots, hyphens, starting and ending
# with a letter or digit (https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html)
BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


class SettingsError(ValueError):
    """A setting is missing or invalid; the message names the environment variable."""


@dataclass(frozen=True)
class ChatSettings:
    mode: Literal["local", "agentcore"]
    target: AgentTarget
    oauth: OAuthClientConfig | None = None
    langfuse: LangfuseSettings | None = None
    public_url: str = DEFAULT_PUBLIC_URL
    local_user: str = "local-user"
    source_base_url: str | None = None
    docs_bucket: str | None = None  # agentcore: s3:// sources in this bucket link to pre-signed URLs
    region: str | None = None  # agentcore: AWS_REGION, else the runtime ARN's region

    @property
    def feedback_enabled(self) -> bool:
        return self.langfuse is not None


def load_settings(env: Mapping[str, str] | None = None) -> ChatSettings:
    """Read the settings (documented in docs/frontend.md).

    Raises:
        SettingsError: naming the variable that is missing or invalid.
    """
    env = os.environ if env is None else env
    mode = env.get("CHAT_MODE", "local").strip().lower()
    public_url = env.get("CHAT_PUBLIC_URL", DEFAULT_PUBLIC_URL).strip() or DEFAULT_PUBLIC_URL
    if not public_url.endswith("/"):
        public_url += "/"
    langfuse = _langfuse(env)
    source_base = env.get("CHAT_SOURCE_BASE_URL", "").strip() or None
    if source_base and not source_base.startswith(("https://", "http://")):
        raise SettingsError(f"CHAT_SOURCE_BASE_URL must be an http(s) URL (got {source_base!r})")
    if mode == "local":
        url = env.get("AGENT_URL", DEFAULT_AGENT_URL).strip() or DEFAULT_AGENT_URL
        try:
            target = AgentTarget.local(url)
        except ValueError as exc:
            raise SettingsError(f"AGENT_URL: {exc}") from None
        return ChatSettings(
            mode="local",
            target=target,
            langfuse=langfuse,
            public_url=public_url,
            local_user=env.get("LOCAL_USER", "local-user"),
            source_base_url=source_base,
        )
    if mode != "agentcore":
        raise SettingsError(f"CHAT_MODE must be 'local' or 'agentcore' (got {mode!r})")
    arn = _required(env, "AGENT_RUNTIME_ARN")
    try:
        target = AgentTarget.agentcore(
            arn,
            env.get("AWS_REGION") or None,
            qualifier=env.get("AGENT_RUNTIME_QUALIFIER", "DEFAULT") or "DEFAULT",
            endpoint_url=env.get("AGENTCORE_ENDPOINT_URL") or None,
        )
    except ValueError as exc:
        raise SettingsError(f"AGENT_RUNTIME_ARN: {exc}") from None
    try:
        oauth = OAuthClientConfig(
            domain_url=_required(env, "COGNITO_DOMAIN_URL"),
            client_id=_required(env, "COGNITO_CLIENT_ID"),
            redirect_uri=public_url,
            scopes=tuple(env.get("COGNITO_SCOPES", " ".join(BROWSER_SCOPES)).split()),
        )
    except ValueError as exc:
        raise SettingsError(f"COGNITO_DOMAIN_URL / COGNITO_CLIENT_ID: {exc}") from None
    docs_bucket = env.get("DOCS_BUCKET_NAME", "").strip() or None
    if docs_bucket and not BUCKET_NAME.match(docs_bucket):
        raise SettingsError(f"DOCS_BUCKET_NAME must be an S3 bucket name (got {docs_bucket!r})")
    return ChatSettings(
        mode="agentcore",
        target=target,
        oauth=oauth,
        langfuse=langfuse,
        public_url=public_url,
        source_base_url=source_base,
        docs_bucket=docs_bucket,
        region=(env.get("AWS_REGION") or "").strip() or arn.split(":")[3],
    )


def _langfuse(env: Mapping[str, str]) -> LangfuseSettings | None:
    host = (env.get("LANGFUSE_HOST") or env.get("LANGFUSE_BASE_URL") or "").strip()
    if not host:
        return None
    try:
        return LangfuseSettings(
            host=host,
            public_key=_required(env, "LANGFUSE_PUBLIC_KEY"),
            secret_key=_required(env, "LANGFUSE_SECRET_KEY"),
            ui_url=env.get("LANGFUSE_UI_URL") or None,
            project_id=env.get("LANGFUSE_PROJECT_ID") or None,
        )
    except ValueError as exc:
        raise SettingsError(f"LANGFUSE_HOST: {exc}") from None


def _required(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise SettingsError(f"{name} is required (see docs/frontend.md)")
    return value

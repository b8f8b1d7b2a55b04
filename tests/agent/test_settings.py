"""Settings from the environment: every missing or bad value is named."""

from __future__ import annotations

import pytest

from agent.errors import ConfigurationError
from agent.settings import SecretResolver, Settings

LOCAL = {
    "LLM_GATEWAY_URL": "http://127.0.0.1:4000",
    "LLM_GATEWAY_KEY": "sk-local",
    "MODEL_ALIAS": "claude-sonnet",
    "TOOL_GATEWAY_URL": "http://127.0.0.1:8765/mcp",
}
DEPLOYED = {
    "AGENT_MODE": "agentcore",
    "LLM_GATEWAY_URL": "http://internal-alb:4000",
    "LLM_GATEWAY_KEY_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:agent-key",
    "MODEL_ALIAS": "claude-sonnet",
    "TOOL_GATEWAY_URL": "https://gw.example/mcp",
    "TOOL_GATEWAY_CLIENT_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:gw",
    "TOOL_GATEWAY_TOKEN_URL": "https://auth.example/oauth2/token",
    "TOOL_GATEWAY_SCOPE": "agentic-foundation/tools.invoke",
    "MEMORY_ID": "aaf_memory-0123456789",
    "GUARDRAIL_ID": "gr-1",
    "GUARDRAIL_VERSION": "1",
}


def test_local_defaults() -> None:
    settings = Settings.from_env(LOCAL)
    assert (settings.mode, settings.local_user, settings.tracing_enabled) == ("local", "local-user", False)


@pytest.mark.parametrize("missing", sorted(LOCAL))
def test_local_missing_variable_is_named(missing: str) -> None:
    env = {k: v for k, v in LOCAL.items() if k != missing}
    with pytest.raises(ConfigurationError, match=missing):
        Settings.from_env(env)


@pytest.mark.parametrize("missing", sorted(set(DEPLOYED) - {"AGENT_MODE"}))
def test_deployed_missing_variable_is_named(missing: str) -> None:
    env = {k: v for k, v in DEPLOYED.items() if k != missing}
    with pytest.raises(ConfigurationError, match=missing):
        Settings.from_env(env)


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"AGENT_MODE": "cloud"}, "AGENT_MODE"),
        ({"LLM_GATEWAY_URL": "http://x/v1"}, "must not end in /v1"),
        ({"LLM_GATEWAY_URL": "ftp://x"}, "LLM_GATEWAY_URL"),
        ({"TOOL_GATEWAY_URL": "localhost:8765"}, "TOOL_GATEWAY_URL"),
        ({"LOCAL_USER": "bad user!"}, "LOCAL_USER"),
        ({"AGENT_TRACE_EXPORT_TIMEOUT_SECONDS": "soon"}, "AGENT_TRACE_EXPORT_TIMEOUT_SECONDS"),
        ({"LANGFUSE_HOST": "http://lf"}, "LANGFUSE_PUBLIC_KEY"),
    ],
)
def test_bad_values_are_named(overrides: dict[str, str], fragment: str) -> None:
    with pytest.raises(ConfigurationError, match=fragment):
        Settings.from_env({**LOCAL, **overrides})


def test_deployed_langfuse_needs_the_keys_secret() -> None:
    with pytest.raises(ConfigurationError, match="LANGFUSE_KEYS_SECRET_ARN"):
        Settings.from_env({**DEPLOYED, "LANGFUSE_HOST": "https://lf.example"})


class FakeSecrets:
    def __init__(self, value: str) -> None:
        self.value = value
        self.calls = 0

    def get_secret_value(self, SecretId: str) -> dict[str, str]:
        self.calls += 1
        return {"SecretString": self.value}


def test_secrets_are_read_once_and_checked() -> None:
    client = FakeSecrets('{"api_key": "sk-agent"}')
    resolver = SecretResolver("us-east-1", client=client)
    assert resolver.json("arn:1", "api_key")["api_key"] == "sk-agent"
    assert resolver.json("arn:1", "api_key")["api_key"] == "sk-agent"
    assert client.calls == 1
    with pytest.raises(ConfigurationError, match="lacks the keys"):
        resolver.json("arn:1", "client_id")
    with pytest.raises(ConfigurationError, match="not a JSON object"):
        SecretResolver("us-east-1", client=FakeSecrets("plain")).json("arn:2")

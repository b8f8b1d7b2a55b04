"""frontend.settings: every missing or bad setting is named."""

from __future__ import annotations

import pytest

from frontend.settings import SettingsError, load_settings

ARN = "arn:aws:bedrock-agentcore:eu-west-1:123456789012:runtime/aaf_agent-AbC123"
AGENTCORE = {
    "CHAT_MODE": "agentcore",
    "AGENT_RUNTIME_ARN": ARN,
    "COGNITO_DOMAIN_URL": "https://aaf.auth.eu-west-1.amazoncognito.com",
    "COGNITO_CLIENT_ID": "client123",
}


def test_local_mode_is_the_default():
    settings = load_settings({})
    assert settings.mode == "local"
    assert settings.target.invocations_url == "http://127.0.0.1:8080/invocations"
    assert not settings.feedback_enabled


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"CHAT_MODE": "cloud"}, "CHAT_MODE"),
        ({"AGENT_URL": "ftp://x"}, "AGENT_URL"),
        ({"LANGFUSE_HOST": "http://lf"}, "LANGFUSE_PUBLIC_KEY"),
        (
            {"LANGFUSE_HOST": "lf.example.com", "LANGFUSE_PUBLIC_KEY": "p", "LANGFUSE_SECRET_KEY": "s"},
            "LANGFUSE_HOST",
        ),
        ({"CHAT_SOURCE_BASE_URL": "corpus/"}, "CHAT_SOURCE_BASE_URL"),
        ({**AGENTCORE, "AGENT_RUNTIME_ARN": ""}, "AGENT_RUNTIME_ARN"),
        ({**AGENTCORE, "AGENT_RUNTIME_ARN": "arn:aws:lambda:x"}, "AGENT_RUNTIME_ARN"),
        ({**AGENTCORE, "COGNITO_CLIENT_ID": ""}, "COGNITO_CLIENT_ID"),
        ({**AGENTCORE, "COGNITO_DOMAIN_URL": "http://aaf.example.com"}, "COGNITO_DOMAIN_URL"),
    ],
)
def test_bad_settings_are_named(env, named):
    with pytest.raises(SettingsError, match=named):
        load_settings(env)


def test_agentcore_mode_uses_the_runtime_url_and_pkce_client():
    settings = load_settings({**AGENTCORE, "CHAT_PUBLIC_URL": "https://d1.cloudfront.net"})
    assert settings.target.kind == "agentcore"
    assert settings.target.invocations_url.startswith(
        "https://bedrock-agentcore.eu-west-1.amazonaws.com/runtimes/"
    )
    assert settings.oauth is not None
    assert settings.oauth.redirect_uri == "https://d1.cloudfront.net/"
    assert "agentic-foundation/agent.invoke" in settings.oauth.scopes


def test_langfuse_base_url_is_accepted_as_the_host():
    settings = load_settings(
        {"LANGFUSE_BASE_URL": "http://lf", "LANGFUSE_PUBLIC_KEY": "p", "LANGFUSE_SECRET_KEY": "s"}
    )
    assert settings.feedback_enabled

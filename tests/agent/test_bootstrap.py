"""Wiring per mode: deployed reads its secrets from Secrets Manager (moto) and uses the AgentCore
services; local uses the local stand-ins. No network call is made while building."""

from __future__ import annotations

import json
from typing import Any

import pytest
from moto import mock_aws

from agent.bootstrap import build_service
from agent.guardrails import BedrockGuardrail, LocalPolicy
from agent.memory import AgentCoreMemory, LocalMemory
from agent.settings import Settings
from agent.tool_client import BearerFromProvider, McpTools


@pytest.fixture
def aws(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        import boto3

        secrets = boto3.client("secretsmanager", region_name="us-east-1")
        arns = {
            name: secrets.create_secret(Name=name, SecretString=json.dumps(value))["ARN"]
            for name, value in {
                "agent-key": {"api_key": "sk-agent-virtual-key"},
                "gateway-client": {"client_id": "cid", "client_secret": "csecret"},
                "langfuse": {"public_key": "pk-lf", "secret_key": "sk-lf"},
            }.items()
        }
        yield arns


def deployed(arns: dict[str, str], **extra: str) -> Settings:
    env = {
        "AGENT_MODE": "agentcore",
        "LLM_GATEWAY_URL": "http://internal-gateway:4000",
        "LLM_GATEWAY_KEY_SECRET_ARN": arns["agent-key"],
        "MODEL_ALIAS": "claude-sonnet",
        "TOOL_GATEWAY_URL": "https://gw.example/mcp",
        "TOOL_GATEWAY_CLIENT_SECRET_ARN": arns["gateway-client"],
        "TOOL_GATEWAY_TOKEN_URL": "https://auth.example/oauth2/token",
        "TOOL_GATEWAY_SCOPE": "agentic-foundation/tools.invoke",
        "MEMORY_ID": "aaf_memory-0123456789",
        "GUARDRAIL_ID": "gr-123",
        "GUARDRAIL_VERSION": "2",
        "AWS_REGION": "us-east-1",
        **extra,
    }
    return Settings.from_env(env)


def test_deployed_wiring_uses_agentcore_services_and_secrets(aws) -> None:
    service = build_service(deployed(aws))
    assert isinstance(service.guardrail, BedrockGuardrail) and service.guardrail.version == "2"
    assert isinstance(service.memory, AgentCoreMemory) and service.memory.memory_id == "aaf_memory-0123456789"
    assert isinstance(service.tools, McpTools) and service.tools.url == "https://gw.example/mcp"
    assert isinstance(service.tools._auth, BearerFromProvider)
    models: Any = service._model_factory
    assert (models.base_url, models._api_key, models.model_id) == (
        "http://internal-gateway:4000/v1",
        "sk-agent-virtual-key",
        "claude-sonnet",
    )
    assert not service.telemetry.enabled
    assert service.stream_flush_chars == 600


def test_deployed_tracing_reads_the_langfuse_keys_secret(aws) -> None:
    service = build_service(
        deployed(aws, LANGFUSE_HOST="https://langfuse.example", LANGFUSE_KEYS_SECRET_ARN=aws["langfuse"])
    )
    assert service.telemetry.enabled
    service.telemetry.shutdown()


def test_local_wiring_uses_the_local_stand_ins() -> None:
    service = build_service(
        Settings.from_env(
            {
                "LLM_GATEWAY_URL": "http://127.0.0.1:4000",
                "LLM_GATEWAY_KEY": "sk-local",
                "MODEL_ALIAS": "claude-sonnet",
                "TOOL_GATEWAY_URL": "http://127.0.0.1:8765/mcp",
            }
        )
    )
    assert isinstance(service.guardrail, LocalPolicy) and isinstance(service.memory, LocalMemory)
    assert isinstance(service.tools, McpTools) and service.tools._auth is None

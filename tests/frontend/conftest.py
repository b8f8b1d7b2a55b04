"""Fixtures for the chat's AppTest tests: replayed agent answers, a Langfuse recorder, a Cognito stand-in."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from local_stack.otlp_recorder import OtlpRecorder
from tests.clients.standins import CognitoStandIn, ReplayAgent

APP = str(Path(__file__).resolve().parents[2] / "frontend" / "app.py")
CHAT_ENV = (
    "CHAT_MODE",
    "AGENT_URL",
    "AGENT_RUNTIME_ARN",
    "AGENTCORE_ENDPOINT_URL",
    "AWS_REGION",
    "COGNITO_DOMAIN_URL",
    "COGNITO_CLIENT_ID",
    "CHAT_PUBLIC_URL",
    "LANGFUSE_HOST",
    "LANGFUSE_BASE_URL",
    "LANGFUSE_PUBLIC_KEY",
    "LANGFUSE_SECRET_KEY",
    "LANGFUSE_PROJECT_ID",
    "LANGFUSE_UI_URL",
    "DOCS_BUCKET_NAME",
    "CHAT_SOURCE_BASE_URL",
)


@pytest.fixture(scope="module")
def replay_server():
    with ReplayAgent() as server:
        yield server


@pytest.fixture
def agent(replay_server):
    replay_server.queue.clear()
    replay_server.requests.clear()
    return replay_server


@pytest.fixture(scope="module")
def langfuse_server():
    with OtlpRecorder(public_key="pk-lf-chat", secret_key="sk-lf-chat") as recorder:
        yield recorder


@pytest.fixture
def langfuse(langfuse_server):
    langfuse_server.clear()
    return langfuse_server


@pytest.fixture(scope="module")
def idp():
    with CognitoStandIn() as server:
        yield server


@pytest.fixture
def chat_env(monkeypatch):
    """A clean chat environment: nothing from the developer's shell leaks in."""
    for name in CHAT_ENV:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.fixture
def local_app(chat_env, agent):
    chat_env.setenv("CHAT_MODE", "local")
    chat_env.setenv("AGENT_URL", agent.url)
    return AppTest.from_file(APP, default_timeout=15)

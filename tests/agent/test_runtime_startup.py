"""What a turn gets while the service is not there: still starting (bounded wait, then 503 `busy`), or
failed to start (500 naming a configuration error, and nothing else). The real app; the deployed
secrets come from Secrets Manager under moto, in-process."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator

import pytest
from moto import mock_aws
from starlette.testclient import TestClient

from agent.guardrails import LocalPolicy, Stage, Verdict
from agent.main import create_app
from agent.settings import Settings
from local_stack.scripted_strands import Say
from tests.agent.http_support import LOCAL, settings
from tests.agent.test_identity_claims import jwt

LIMIT = 15.0


def test_a_turn_waits_for_the_start_up_only_until_the_deadline():
    app = create_app(settings(LOCAL, turn_deadline_seconds=0.4))
    client = TestClient(app, base_url="http://127.0.0.1:8080")  # no lifespan: the warm-up never starts
    started = time.monotonic()
    response = client.post("/invocations", json={"prompt": "hi"})
    elapsed = time.monotonic() - started
    assert response.status_code == 503
    assert response.json()["error"] == {
        "code": "busy",
        "message": "the agent is still starting",
        "trace_id": "",
    }
    assert response.headers["retry-after"] == "5"
    assert 0.35 <= elapsed < 5
    assert client.get("/ping").json()["status"] == "Healthy"  # /ping never waits for the service


@pytest.fixture
def secrets(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        import boto3

        client = boto3.client("secretsmanager", region_name="us-east-1")
        yield {
            name: client.create_secret(Name=name, SecretString=json.dumps(value))["ARN"]
            for name, value in {
                "agent-key": {"not_the_api_key": "x"},
                "gateway-client": {"client_id": "cid", "client_secret": "csecret"},
            }.items()
        }


def test_a_configuration_error_at_start_up_is_named_to_the_caller(secrets):
    config = Settings.from_env(
        {
            "AGENT_MODE": "agentcore",
            "LLM_GATEWAY_URL": "http://internal-gateway:4000",
            "LLM_GATEWAY_KEY_SECRET_ARN": secrets["agent-key"],
            "MODEL_ALIAS": "claude-sonnet",
            "TOOL_GATEWAY_URL": "https://gw.example/mcp",
            "TOOL_GATEWAY_CLIENT_SECRET_ARN": secrets["gateway-client"],
            "TOOL_GATEWAY_TOKEN_URL": "https://auth.example/oauth2/token",
            "TOOL_GATEWAY_SCOPE": "agentic-foundation/tools.invoke",
            "MEMORY_ID": "aaf_memory-0123456789",
            "GUARDRAIL_ID": "gr-123",
            "GUARDRAIL_VERSION": "2",
            "AWS_REGION": "us-east-1",
        }
    )
    app = create_app(config)
    runtime = app.state.runtime
    with TestClient(app) as client:
        deadline = time.monotonic() + LIMIT
        while not runtime._ready.is_set():
            assert time.monotonic() < deadline, "the warm-up did not finish"
            time.sleep(0.05)
        response = client.post(
            "/invocations", json={"prompt": "hi"}, headers={"Authorization": f"Bearer {jwt({'sub': 'u-1'})}"}
        )
    assert response.status_code == 500
    assert response.json()["error"]["message"] == (
        f"the agent is not ready: secret {secrets['agent-key']} lacks the keys ['api_key']"
    )


class RecordingPolicy(LocalPolicy):
    """The local policy, noting the thread each check runs on (a blocking call of the turn)."""

    def __init__(self) -> None:
        super().__init__()
        self.threads: list[str] = []

    def check(self, text: str, stage: Stage) -> Verdict:
        self.threads.append(threading.current_thread().name)
        return super().check(text, stage)


def test_a_turns_blocking_calls_run_on_the_agents_own_pool(make_service, model):
    policy = RecordingPolicy()
    app = create_app(settings(LOCAL, max_concurrent_turns=3), service=make_service(guardrail=policy))
    model.enqueue(Say("one"), Say("two"))
    with TestClient(app, base_url="http://127.0.0.1:8080") as client:
        assert client.post("/invocations", json={"prompt": "hi"}).status_code == 200
        assert client.post("/invocations", json={"prompt": "again"}).status_code == 200
    assert policy.threads and all(name.startswith("agent-io_") for name in policy.threads), policy.threads

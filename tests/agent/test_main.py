"""The HTTP contract of the entrypoint (docs/agent-api.md), in-process through Starlette's TestClient."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from agent.main import create_app
from local_stack.scripted_strands import Call, Say
from tests.agent.http_support import DEPLOYED, LOCAL

REPO_ROOT = Path(__file__).resolve().parents[2]

SESSION_HEADER = "X-Amzn-Bedrock-AgentCore-Runtime-Session-Id"
SESSION = "s-" + "f" * 32
LOCAL_URL = "http://127.0.0.1:8080"  # local mode only answers requests for a loopback Host


def jwt(claims: dict[str, object]) -> str:
    def part(value: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'RS256'})}.{part(claims)}.c2lnbmF0dXJl"


@pytest.fixture
def client(make_service):
    with TestClient(create_app(LOCAL, service=make_service()), base_url=LOCAL_URL) as test_client:
        yield test_client


@pytest.fixture
def deployed(make_service):
    with TestClient(create_app(DEPLOYED, service=make_service())) as test_client:
        yield test_client


def test_ping_is_healthy(client):
    response = client.get("/ping")
    assert response.status_code == 200 and response.json()["status"] == "Healthy"


def test_json_answer_follows_the_contract(client, model):
    model.enqueue(Say("Hello! How can I help you today?"))
    response = client.post("/invocations", json={"prompt": "Hi"}, headers={SESSION_HEADER: SESSION})
    assert response.status_code == 200
    body = response.json()
    assert body["answer"] == "Hello! How can I help you today?"
    assert set(body["metadata"]) == {
        "session_id",
        "trace_id",
        "model",
        "tools",
        "citations",
        "guardrail",
        "usage",
        "latency_ms",
    }
    assert body["metadata"]["session_id"] == SESSION


def test_body_session_id_is_used_without_header_and_one_is_made_otherwise(client, model):
    body_session = "x" * 40
    assert (
        client.post("/invocations", json={"prompt": "a", "session_id": body_session}).json()["metadata"][
            "session_id"
        ]
        == body_session
    )
    generated = client.post("/invocations", json={"prompt": "b"}).json()["metadata"]["session_id"]
    assert len(generated) >= 33


def test_stream_is_server_sent_events(client, model):
    model.enqueue(Call("search_knowledge_base", {"query": "reset"}), Say("Hold RESET for 10 seconds."))
    with client.stream("POST", "/invocations", json={"prompt": "reset?", "stream": True}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        raw = "".join(response.iter_text())
    frames = [json.loads(line[len("data: ") :]) for line in raw.split("\n\n") if line.startswith("data: ")]
    assert [f["type"] for f in frames][:2] == ["tool_start", "tool_end"]
    assert frames[-1]["type"] == "done"
    assert frames[-1]["metadata"]["citations"][0]["page"] == 6


@pytest.mark.parametrize(
    ("body", "status", "code", "fragment"),
    [
        (b"{not json", 400, "invalid_json", "not valid JSON"),
        (b"[1, 2]", 400, "invalid_json", "JSON object"),
        (b'{"session_id": "' + b"a" * 40 + b'"}', 422, "invalid_payload", "prompt: required"),
        (b'{"prompt": "   "}', 422, "invalid_payload", "prompt: must not be empty"),
        (b'{"prompt": 5}', 422, "invalid_payload", "prompt: must be a string"),
        (json.dumps({"prompt": "x" * 8001}).encode(), 422, "invalid_payload", "at most 8000"),
        (b'{"prompt": "hi", "session_id": "short"}', 422, "invalid_payload", "session_id"),
        (b'{"prompt": "hi", "stream": "yes"}', 422, "invalid_payload", "stream"),
        (b'{"prompt": "hi", "user_id": "admin"}', 422, "invalid_payload", "unknown field"),
        (json.dumps({"prompt": "x" * 70_000}).encode(), 413, "payload_too_large", "larger than"),
    ],
)
def test_bad_payloads_get_clear_errors(client, model, body, status, code, fragment):
    response = client.post("/invocations", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == status
    error = response.json()["error"]
    assert error["code"] == code and fragment in error["message"]
    assert model.calls == 0


def test_bad_session_header_is_rejected(client):
    response = client.post("/invocations", json={"prompt": "hi"}, headers={SESSION_HEADER: "bad id!"})
    assert response.status_code == 422
    assert "Session-Id" in response.json()["error"]["message"]


def test_model_failure_is_502(client, model):
    import httpx
    import openai

    from local_stack.scripted_strands import Boom

    request = httpx.Request("POST", "http://gateway/v1/chat/completions")
    model.enqueue(Boom(openai.APIConnectionError(request=request)))
    response = client.post("/invocations", json={"prompt": "hi"})
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "model_unavailable"
    assert "Traceback" not in response.text


def test_deployed_mode_requires_a_bearer_token(deployed, model):
    response = deployed.post("/invocations", json={"prompt": "hi"})
    assert response.status_code == 401 and response.json()["error"]["code"] == "unauthorized"
    response = deployed.post(
        "/invocations", json={"prompt": "hi"}, headers={"Authorization": "Bearer not-a-jwt"}
    )
    assert response.status_code == 401
    response = deployed.post(
        "/invocations", json={"prompt": "hi"}, headers={"Authorization": f"Bearer {jwt({'aud': 'x'})}"}
    )
    assert response.status_code == 401 and "sub" in response.json()["error"]["message"]
    assert model.calls == 0


def test_deployed_actor_is_the_token_subject_not_the_body(deployed, make_service, model):
    model.enqueue(Say("ok"))
    token = jwt({"sub": "user-123", "token_use": "access"})
    response = deployed.post(
        "/invocations",
        json={"prompt": "I have a Router X200"},
        headers={"Authorization": f"Bearer {token}", SESSION_HEADER: SESSION},
    )
    assert response.status_code == 200
    service = deployed.app.state.runtime._service
    assert service.memory.history("user-123", SESSION, 5)[0].text == "I have a Router X200"


def test_ping_is_healthy_busy_while_a_turn_runs(client):
    runtime = client.app.state.runtime
    runtime.enter()
    try:
        assert client.get("/ping").json()["status"] == "HealthyBusy"
    finally:
        runtime.leave()
    assert client.get("/ping").json()["status"] == "Healthy"


def test_entry_point_with_missing_setting_exits_2_naming_it(tmp_path):
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "AGENT_MODE": "agentcore"}
    result = subprocess.run(
        [sys.executable, "-m", "agent.main"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO_ROOT,
    )
    assert result.returncode == 2
    assert "LLM_GATEWAY_URL is not set" in result.stderr and "Traceback" not in result.stderr

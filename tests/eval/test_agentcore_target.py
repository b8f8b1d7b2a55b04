"""The agentcore target: a machine token from the `evaluation` client (secret in Secrets Manager via moto,
token from the Cognito stand-in), InvokeAgentRuntime's URL and headers, answered by the real local agent
behind a runtime stand-in that validates the bearer token like the runtime's JWT authorizer."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import boto3
import httpx
import jwt
import pytest
from moto import mock_aws

from eval.agent import AgentCallError, agentcore_from_environment, new_session_id
from local_stack.loopback import LoopbackHandler, LoopbackServer
from scripts.eval_pipeline import PipelineStack
from tests.clients.standins import CognitoStandIn

pytestmark = pytest.mark.slow

RUNTIME_ARN = "arn:aws:bedrock-agentcore:us-east-1:123456789012:runtime/aaf_agent-AbCdEf1234"
SCOPE = "agentic-foundation/agent.invoke"


class RuntimeStandIn(LoopbackServer):
    """InvokeAgentRuntime on loopback: checks the bearer JWT (signature, issuer, scope), forwards to the agent."""

    def __init__(self, agent_url: str, cognito: CognitoStandIn) -> None:
        self.requests: list[dict[str, Any]] = []
        self._agent_url = agent_url
        self._cognito = cognito
        super().__init__()

    def handler_class(self) -> type[LoopbackHandler]:
        runtime, agent_url, cognito = self, self._agent_url, self._cognito

        class Handler(LoopbackHandler):
            def do_POST(self) -> None:
                body = self.read_body()
                token = (self.headers.get("Authorization") or "").removeprefix("Bearer ")
                try:
                    claims = jwt.decode(
                        token, cognito.public_key(), algorithms=["RS256"], issuer=cognito.issuer
                    )
                except jwt.PyJWTError:
                    claims = {}
                runtime.requests.append({"path": self.path, "claims": claims, "headers": dict(self.headers)})
                if SCOPE not in str(claims.get("scope", "")).split():
                    self.send_bytes(401, b'{"message": "invalid token"}', "application/json")
                    return
                forwarded = httpx.post(
                    f"{agent_url}/invocations",
                    content=body,
                    headers={
                        "Content-Type": "application/json",
                        "X-Amzn-Bedrock-AgentCore-Runtime-Session-Id": self.headers[
                            "X-Amzn-Bedrock-AgentCore-Runtime-Session-Id"
                        ],
                    },
                    timeout=60,
                )
                self.send_bytes(forwarded.status_code, forwarded.content, forwarded.headers["content-type"])

        return Handler


@pytest.fixture
def deployed(pipeline: PipelineStack) -> Iterator[tuple[RuntimeStandIn, dict[str, str]]]:
    with CognitoStandIn(confidential_clients={"eval-client": "eval-secret"}) as cognito, mock_aws():
        secret = boto3.client("secretsmanager", region_name="us-east-1").create_secret(
            Name="aaf-evaluation-client",
            SecretString=json.dumps({"client_id": "eval-client", "client_secret": "eval-secret"}),
        )
        runtime = RuntimeStandIn(pipeline.agent_url, cognito).start()
        env = {
            "AGENT_RUNTIME_ARN": RUNTIME_ARN,
            "EVAL_CLIENT_SECRET_ARN": secret["ARN"],
            "COGNITO_TOKEN_URL": f"{cognito.url}/oauth2/token",
            "AWS_REGION": "us-east-1",
            "AGENTCORE_ENDPOINT_URL": runtime.url,
        }
        try:
            yield runtime, env
        finally:
            runtime.stop()


def test_agentcore_target_invokes_the_runtime_with_a_machine_token(
    deployed: tuple[RuntimeStandIn, dict[str, str]],
) -> None:
    runtime, env = deployed
    target = agentcore_from_environment(env)
    session = new_session_id()
    reply = target.invoke("How do I factory reset my Router X200?", session)
    target.invoke("Is there a free trial for Care+? When am I charged?", session)
    target.close()
    assert target.name == "agentcore"
    assert [t.name for t in reply.metadata.tools] == ["search_knowledge_base"]
    assert reply.metadata.session_id == session
    first, second = runtime.requests
    assert first["path"] == f"/runtimes/{quote(RUNTIME_ARN, safe='')}/invocations?qualifier=DEFAULT"
    assert first["claims"]["client_id"] == "eval-client" and first["claims"]["scope"] == SCOPE
    assert first["headers"]["X-Amzn-Bedrock-AgentCore-Runtime-Session-Id"] == session
    assert first["headers"]["Authorization"] == second["headers"]["Authorization"]  # the token is cached


def test_a_rejected_token_is_not_retried(deployed: tuple[RuntimeStandIn, dict[str, str]]) -> None:
    runtime, env = deployed
    target = agentcore_from_environment({**env, "EVAL_SCOPE": "agentic-foundation/eval.run"})
    with pytest.raises(AgentCallError) as caught:
        target.invoke("hello", new_session_id())
    target.close()
    assert caught.value.retryable is False
    assert caught.value.status == 401
    assert len(runtime.requests) == 1


def test_missing_settings_are_named() -> None:
    with pytest.raises(
        ValueError, match=r"needs the settings \['EVAL_CLIENT_SECRET_ARN', 'COGNITO_TOKEN_URL'\]"
    ):
        agentcore_from_environment({"AGENT_RUNTIME_ARN": RUNTIME_ARN})

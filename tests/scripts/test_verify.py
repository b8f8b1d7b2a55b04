# ruff: noqa: F811 - the real local stack's fixtures are imported from tests/e2e/conftest.py
"""`make verify`: stack outputs and secrets in moto (cloudformation, secretsmanager); ingestion jobs through a
botocore Stubber with exact requests (moto has no ListIngestionJobs); the agent turn, citations, guardrail,
trace, tool list and ticket isolation against the REAL local stack (tests/e2e/conftest.py: scripted model ->
LiteLLM -> agent -> MCP tool server), with loopback stand-ins for Cognito's token endpoint and Langfuse's
trace read API (built from the spans the agent really exported)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from clients.agentcore import AgentTarget
from config import load_config
from corpus.build_pdf import EXPECTED_PAGES
from local_stack.loopback import LoopbackHandler, LoopbackServer
from local_stack.otlp_recorder import Route
from local_stack.scripted_model import Text, ToolCall, ToolCalls
from scripts.aws_checks import ACTIONS
from scripts.aws_checks.common import AwsContext, Status, run_checks
from scripts.aws_checks.verify import (
    CHECKS,
    KB_PAGE,
    Settings,
    Verify,
    check_ingestion,
    check_outputs,
    check_trace,
    main,
)
from tests.e2e.conftest import (  # noqa: F401 - the real local stack's fixtures
    LOCAL_USER,
    PUBLIC_KEY,
    SECRET_KEY,
    Stack,
    _fresh_model,
    e2e_dir,
    gateway,
    langfuse,
    local_stack,
    scripted_model,
    stack,
    tool_server,
)
from tests.e2e.test_agent_e2e import tool_payload
from tests.support.aws_env import offline_aws

REGION = "eu-west-1"
PREFIX = "aaf"


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    offline_aws(monkeypatch, tmp_path, REGION)


# --- loopback stand-in for Cognito's /oauth2/token (client credentials, HTTP Basic) ---------------------


def _jwt(claims: dict[str, Any]) -> str:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none'})}.{part(claims)}.sig"


class TokenEndpoint(LoopbackServer):
    """Answers the client credentials grant for known clients only (RFC 6749 section 4.4)."""

    def __init__(self, clients: dict[str, str]) -> None:
        self.clients = clients
        self.requests: list[dict[str, str]] = []
        super().__init__()

    def handler_class(self) -> type[LoopbackHandler]:
        endpoint = self

        class Handler(LoopbackHandler):
            def do_POST(self) -> None:
                body = self.read_body().decode()
                form = dict(pair.split("=", 1) for pair in body.split("&"))
                user, _, password = (
                    base64.b64decode(self.headers["Authorization"][6:]).decode().partition(":")
                )
                endpoint.requests.append({"client": user, **form})
                if endpoint.clients.get(user) != password or form.get("grant_type") != "client_credentials":
                    self.send_json(400, {"error": "invalid_client"})
                    return
                token = _jwt({"sub": f"sub-{user}", "client_id": user, "token_use": "access"})
                self.send_json(200, {"access_token": token, "expires_in": 3600, "token_type": "Bearer"})

        return Handler


def langfuse_trace_api(recorder: Any) -> None:
    """Langfuse's GET /api/public/traces/{id} answered from the spans the agent exported to the recorder:
    the trace's name is its root span's, observations are the other spans (404 until the root arrives).
    Basic auth with the project keys is required, as Langfuse does."""
    original = recorder._route

    def route(method: str, path: str, query: Any, headers: dict[str, str], body: bytes) -> Route:
        if method != "GET" or not path.startswith("/api/public/traces/"):
            answer: Route = original(method, path, query, headers, body)
            return answer
        if not recorder._authorized(headers):
            return Route(401, {"message": "Invalid credentials"})
        trace_id = path.rsplit("/", 1)[-1]
        spans = recorder.trace(trace_id)
        root = [s for s in spans if s.is_root]
        if not root:
            return Route(404, {"message": "trace not found"})
        observations = [
            {"name": s.name, "type": str(s.attr("langfuse.observation.type", "span")).upper()}
            for s in spans
            if not s.is_root
        ]
        return Route(200, {"id": trace_id, "name": root[0].name, "observations": observations})

    recorder._route = route


def deploy_outputs(outputs: dict[str, dict[str, str]]) -> None:
    cfn = boto3.client("cloudformation", region_name=REGION)
    for component, values in outputs.items():
        template = {
            "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
            "Outputs": {key: {"Value": value} for key, value in values.items()},
        }
        cfn.create_stack(StackName=f"{PREFIX}-{component}", TemplateBody=json.dumps(template))


def machine_secrets() -> dict[str, str]:
    secrets = boto3.client("secretsmanager", region_name=REGION)
    clients = {"ci": "ci-secret", "evaluation": "eval-secret", "gateway": "gw-secret"}
    for name, secret in clients.items():
        secrets.create_secret(
            Name=f"{PREFIX}/cognito/m2m-{name}",
            SecretString=json.dumps({"client_id": f"{name}-id", "client_secret": secret}),
        )
    return {f"{name}-id": secret for name, secret in clients.items()}


def stub_ingestion(aws: AwsContext, *statuses: str) -> Stubber:
    stubber = Stubber(aws.client("bedrock-agent"))
    request = {
        "knowledgeBaseId": "KB12345678",
        "dataSourceId": "DS12345678",
        "sortBy": {"attribute": "STARTED_AT", "order": "DESCENDING"},
        "maxResults": 1,
    }
    for status in statuses:
        job = {
            "knowledgeBaseId": "KB12345678",
            "dataSourceId": "DS12345678",
            "ingestionJobId": "JOB1234567",
            "status": status,
            "startedAt": "2026-12-01T10:00:00Z",
            "updatedAt": "2026-12-01T10:01:00Z",
            "statistics": {"numberOfNewDocumentsIndexed": 6},
        }
        stubber.add_response("list_ingestion_jobs", {"ingestionJobSummaries": [job]}, request)
    stubber.activate()
    return stubber


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def local_state(stack: Stack, endpoint: TokenEndpoint, aws: AwsContext, **settings: Any) -> Verify:
    config = load_config({})
    state = Verify(config=config, aws=aws, settings=Settings(trace_timeout=20, **settings))
    state.agent_target = lambda _s: AgentTarget.local(stack.agent_url)
    # The local tool server identifies the caller by X-Actor-Id (the loopback stand-in for the gateway
    # interceptor's verified token): the actor is the `sub` of that actor's machine token.
    from clients.oauth import decode_claims

    state.tool_headers = lambda s, actor: (
        {"X-Actor-Id": decode_claims(s.tokens[actor])["sub"]} if actor else {}
    )
    state.langfuse = (stack.langfuse.url, PUBLIC_KEY, SECRET_KEY)
    return state


@pytest.fixture
def deployed(aws_env: None, stack: Stack) -> Iterator[tuple[Verify, TokenEndpoint, Stack]]:
    with mock_aws():
        endpoint = TokenEndpoint(machine_secrets()).start()
        deploy_outputs(
            {
                "identity": {"UserPoolId": f"{REGION}_abc", "ManagedLoginUrl": endpoint.url},
                "knowledge-base": {"KnowledgeBaseId": "KB12345678", "DataSourceId": "DS12345678"},
                "agentcore": {
                    "RuntimeArn": f"arn:aws:bedrock-agentcore:{REGION}:123456789012:runtime/aaf_agent-abc",
                    "ToolGatewayUrl": stack.tools_url,
                },
                "llm-gateway": {
                    "GatewayUrl": "http://internal-aaf-gw.elb.amazonaws.com",
                    "AgentKeySecretArn": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:aaf/llm-gateway/agent-key-abc",
                },
                "observability": {
                    "LangfuseUrl": stack.langfuse.url,
                    "LangfuseKeysSecretArn": "unused-in-this-test",
                },
                "frontend": {"ChatUrl": f"{stack.agent_url}/ping"},
            }
        )
        langfuse_trace_api(stack.langfuse)
        state = local_state(stack, endpoint, AwsContext(REGION))
        yield state, endpoint, stack
        endpoint.stop()


def script_kb_answer(stack: Stack) -> None:
    """The scripted model searches the knowledge base, then cites the top result the real index returned."""

    def cite_top(request: dict[str, Any]) -> Text:
        top = tool_payload(request)["results"][0]
        return Text(f"Hold RESET for 10 seconds [{top['title']}, p. {top['page']}].")

    stack.model.enqueue(ToolCalls([ToolCall("search_knowledge_base", {"query": "how to reset the router"})]))
    stack.model.responder = cite_top


def test_default_page_is_the_corpus_page() -> None:
    assert EXPECTED_PAGES["Factory reset procedure"] == KB_PAGE


def test_verify_against_the_local_stack(
    deployed: tuple[Verify, TokenEndpoint, Stack], capsys: pytest.CaptureFixture[str]
) -> None:
    state, endpoint, stack = deployed
    script_kb_answer(stack)
    stubber = stub_ingestion(state.aws, "COMPLETE")
    code = main(state=state)
    out = capsys.readouterr().out
    rows = {line.split()[0]: line for line in out.splitlines() if line[:1].isalpha()}
    for name in (
        "stack-outputs",
        "m2m-tokens",
        "agent-answer",
        "guardrail-blocked",
        "langfuse-trace",
        "tool-gateway",
        "ticket-isolation",
        "kb-ingestion",
        "chat-url",
    ):
        assert " PASS " in rows[name], out
    assert "NEEDS VPC" in rows["llm-gateway"] and "needs VPC access" in rows["llm-gateway"]
    assert (
        "/key/info" in out and "aaf/llm-gateway/agent-key-abc" in out
    )  # the exact command to run in the VPC
    assert code == 0, out
    stubber.assert_no_pending_responses()
    assert {r["client"] for r in endpoint.requests} == {"ci-id", "evaluation-id", "gateway-id"}
    assert {r["scope"] for r in endpoint.requests} == {
        "agentic-foundation%2Fagent.invoke",
        "agentic-foundation%2Ftools.invoke",
    }
    assert set(state.aws.actions) <= set(ACTIONS["verify"]), state.aws.actions
    assert state.reply is not None and any(c.page == 6 and c.cited for c in state.reply.metadata.citations)


def test_wrong_page_fails_naming_the_pages(deployed: tuple[Verify, TokenEndpoint, Stack]) -> None:
    state, _, stack = deployed
    state.settings = Settings(kb_page=7, trace_timeout=5)
    script_kb_answer(stack)
    results = {r.name: r for r in run_checks(CHECKS[:3], state, state.aws)}
    assert results["agent-answer"].status is Status.FAIL
    detail = results["agent-answer"].detail
    assert "router-x200-user-manual.pdf cited on page(s) [" in detail and "expected page 7" in detail


def test_answer_without_the_kb_tool_fails(deployed: tuple[Verify, TokenEndpoint, Stack]) -> None:
    state, _, stack = deployed
    stack.model.enqueue(Text("Just unplug it."))
    results = {r.name: r for r in run_checks(CHECKS[:3], state, state.aws)}
    assert results["agent-answer"].status is Status.FAIL
    assert "did not search the knowledge base" in results["agent-answer"].detail
    assert "console.aws.amazon.com/bedrock-agentcore" in results["agent-answer"].link


def test_trace_that_never_appears_times_out(deployed: tuple[Verify, TokenEndpoint, Stack]) -> None:
    state, _, stack = deployed
    script_kb_answer(stack)
    run_checks(CHECKS[:3], state, state.aws)
    assert state.reply is not None
    clock = FakeClock()
    state.clock, state.sleep = clock, clock.sleep
    state.settings = Settings(trace_timeout=12, poll_interval=3)
    state.reply = type(state.reply)(state.reply.answer, type(state.reply.metadata)(trace_id="0" * 32))
    result = check_trace(state)
    assert result.status is Status.FAIL and "did not appear in Langfuse within 12 s" in result.detail
    assert 12 <= clock.now <= 15  # bounded: polled every 3 s up to the timeout


def test_missing_stack_and_missing_output(aws_env: None) -> None:
    with mock_aws():
        deploy_outputs(
            {
                "identity": {"UserPoolId": "x", "ManagedLoginUrl": "https://example.com"},
                "agentcore": {"RuntimeArn": "arn"},
            }
        )
        state = Verify(config=load_config({}), aws=AwsContext(REGION))
        result = check_outputs(state)
    assert result.status is Status.FAIL
    assert "aaf-knowledge-base is not deployed" in result.detail
    assert "aaf-agentcore lacks output(s) ToolGatewayUrl" in result.detail
    assert "make deploy" in result.fix


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        (("COMPLETE",), "COMPLETE (6 documents indexed)"),
        (("FAILED",), "latest ingestion job JOB1234567 is FAILED"),
        (("IN_PROGRESS", "IN_PROGRESS", "COMPLETE"), "COMPLETE"),
        (("IN_PROGRESS",) * 5, "still IN_PROGRESS after 10 s"),
    ],
)
def test_ingestion_job(aws_env: None, statuses: tuple[str, ...], expected: str) -> None:
    state = Verify(
        config=load_config({}),
        aws=AwsContext(REGION),
        settings=Settings(ingestion_timeout=10, poll_interval=3),
    )
    state.outputs["knowledge-base"] = {"KnowledgeBaseId": "KB12345678", "DataSourceId": "DS12345678"}
    clock = FakeClock()
    state.clock, state.sleep = clock, clock.sleep
    stubber = stub_ingestion(state.aws, *statuses)
    result = check_ingestion(state)
    stubber.assert_no_pending_responses()
    assert expected in result.detail
    assert (result.status is Status.PASS) == expected.startswith("COMPLETE")


def test_access_denied_on_a_secret_names_the_action(aws_env: None) -> None:
    state = Verify(config=load_config({}), aws=AwsContext(REGION))
    state.outputs["identity"] = {"UserPoolId": "x", "ManagedLoginUrl": "https://example.com"}
    stubber = Stubber(state.aws.client("secretsmanager"))
    stubber.add_client_error(
        "get_secret_value",
        "AccessDeniedException",
        http_status_code=400,
        expected_params={"SecretId": "aaf/cognito/m2m-ci"},
    )
    stubber.activate()
    result = {r.name: r for r in run_checks(CHECKS[1:2], state, state.aws)}["m2m-tokens"]
    assert result.status is Status.FAIL and result.detail == "access denied to secretsmanager:GetSecretValue"


def test_dependent_checks_are_skipped_not_crashed(aws_env: None) -> None:
    with mock_aws():
        state = Verify(config=load_config({}), aws=AwsContext(REGION))
        results = run_checks(CHECKS, state, state.aws)
    assert results[0].status is Status.FAIL
    assert all(r.status is Status.SKIP for r in results[1:]), [(r.name, r.status) for r in results]

"""Each runtime component of the foundation, run for real with its environment taken from the template.

A `Component` names where it lives in the assembly (stack, resource, the role that resource runs as)
and a `drive` function that runs the component's real code with realistic inputs while the recorder
answers its AWS calls (moto for DynamoDB and S3; validated stand-ins for the APIs moto lacks). The
environment variables, custom-resource properties and table schemas come from the synthesized template
through the resolver, so the calls name exactly the resources the policies are written for.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from tests.permissions.checker import Checker
from tests.permissions.recorder import Recorder, environment
from tests.permissions.resolver import REGION, Resolver, ResourceRef

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Located:
    resource: ResourceRef
    role: ResourceRef
    environment: dict[str, str]


@dataclass(frozen=True)
class Component:
    name: str
    stack: str
    prefix: str  # logical-id prefix of the resource that runs the code
    type: str
    role_property: str  # property of that resource naming its role
    code: str  # what runs (for the table)
    drive: Callable[[Located, Checker, Recorder, Path], None]

    def locate(self, checker: Checker) -> Located:
        resource = checker.find(self.stack, self.prefix, self.type)
        role = checker.role_by_arn(resource.stack, resource.properties[self.role_property])
        return Located(resource, role, environment_of(checker.resolver, resource))


def environment_of(resolver: Resolver, resource: ResourceRef) -> dict[str, str]:
    props = resource.properties
    if resource.type == "AWS::Lambda::Function":
        raw = (props.get("Environment") or {}).get("Variables") or {}
    elif resource.type == "AWS::BedrockAgentCore::Runtime":
        raw = props.get("EnvironmentVariables") or {}
    elif resource.type == "AWS::ECS::TaskDefinition":
        containers = props.get("ContainerDefinitions") or []
        raw = {e["Name"]: e["Value"] for c in containers for e in c.get("Environment") or []}
    else:
        raise TypeError(f"no environment rule for {resource.type}")
    return {str(k): str(v) for k, v in resolver.resolve(resource.stack, raw).items()}


class SecretsStandIn:
    """Secrets Manager values by ARN: GetSecretValue / DescribeSecret / PutSecretValue, with
    ResourceNotFoundException for an unknown id (Secrets Manager API reference, GetSecretValue Errors)."""

    def __init__(self, recorder: Recorder, values: Mapping[str, str]) -> None:
        self.values = dict(values)
        recorder.answer("secretsmanager", "GetSecretValue", self._get)
        recorder.answer("secretsmanager", "DescribeSecret", self._describe)
        recorder.answer("secretsmanager", "PutSecretValue", self._put)

    def _lookup(self, secret_id: str) -> str:
        if secret_id not in self.values:
            from botocore.exceptions import ClientError

            raise ClientError(
                {"Error": {"Code": "ResourceNotFoundException", "Message": secret_id}}, "GetSecretValue"
            )
        return secret_id

    def _get(self, params: Mapping[str, Any]) -> Mapping[str, Any]:
        arn = self._lookup(str(params["SecretId"]))
        return {
            "ARN": arn,
            "Name": arn.rsplit(":", 1)[-1],
            "SecretString": self.values[arn],
            "VersionId": "v1",
        }

    def _describe(self, params: Mapping[str, Any]) -> Mapping[str, Any]:
        arn = self._lookup(str(params["SecretId"]))
        return {"ARN": arn, "Name": arn.rsplit(":", 1)[-1]}

    def _put(self, params: Mapping[str, Any]) -> Mapping[str, Any]:
        arn = self._lookup(str(params["SecretId"]))
        self.values[arn] = str(params["SecretString"])
        return {"ARN": arn, "Name": arn.rsplit(":", 1)[-1], "VersionId": "v2"}


def _moto() -> Any:
    from moto import mock_aws

    return mock_aws()


# --- the agent (AgentCore Runtime) ----------------------------------------------------------------


def drive_agent(located: Located, checker: Checker, recorder: Recorder, _tmp: Path) -> None:
    """Deployed wiring (`agent.bootstrap.build_service`) from the Runtime's environment, then one turn:
    input guardrail, history, long-term recall, model answer, output guardrail, memory event."""
    from agent.bootstrap import build_service
    from agent.identity import Caller
    from agent.payload import Invocation
    from agent.settings import Settings
    from agent.telemetry import Telemetry
    from agent.tool_client import StaticTools
    from local_stack.scripted_strands import Say, ScriptedStrandsModel

    env = {**located.environment, "AWS_REGION": REGION}
    SecretsStandIn(
        recorder,
        {
            env["LLM_GATEWAY_KEY_SECRET_ARN"]: json.dumps({"api_key": "sk-agent"}),
            env["TOOL_GATEWAY_CLIENT_SECRET_ARN"]: json.dumps({"client_id": "cid", "client_secret": "cs"}),
            **(
                {env["LANGFUSE_KEYS_SECRET_ARN"]: json.dumps({"public_key": "pk-lf", "secret_key": "sk-lf"})}
                if env.get("LANGFUSE_KEYS_SECRET_ARN")
                else {}
            ),
        },
    )
    recorder.answer("bedrock-runtime", "ApplyGuardrail", {"action": "NONE", "outputs": [], "assessments": []})
    recorder.answer("bedrock-agentcore", "ListEvents", {"events": []})
    recorder.answer("bedrock-agentcore", "RetrieveMemoryRecords", {"memoryRecordSummaries": []})
    recorder.answer(
        "bedrock-agentcore",
        "CreateEvent",
        lambda p: {
            "event": {
                "memoryId": p["memoryId"],
                "actorId": p["actorId"],
                "sessionId": p["sessionId"],
                "eventId": "e-1",
                "eventTimestamp": p["eventTimestamp"],
            }
        },
    )
    service = build_service(Settings.from_env(env))
    # The model and the MCP tool gateway are not AWS APIs: a scripted model and no tools stand in.
    service.telemetry.shutdown()
    service.telemetry = Telemetry.disabled()
    model = ScriptedStrandsModel()
    model.enqueue(Say("Hold RESET for 10 seconds."))
    service._model_factory = lambda: model
    service.tools = StaticTools([])
    result = asyncio.run(
        service.run_turn(Invocation("How do I reset my router?", "s-" + "a" * 32, False), Caller("alice-sub"))
    )
    assert result["answer"] == "Hold RESET for 10 seconds.", result


# --- tool Lambdas ---------------------------------------------------------------------------------


def _tool_context(target: str, tool: str) -> SimpleNamespace:
    return SimpleNamespace(
        client_context=SimpleNamespace(custom={"bedrockAgentCoreToolName": f"{target}___{tool}"})
    )


def _create_table_from_template(checker: Checker, name: str) -> None:
    import boto3

    table = next(
        r for r in checker.assembly.resources("AWS::DynamoDB::Table") if checker.resolver.ref(r) == name
    )
    props = table.properties
    options: dict[str, Any] = {
        "TableName": name,
        "KeySchema": props["KeySchema"],
        "AttributeDefinitions": props["AttributeDefinitions"],
        "BillingMode": "PAY_PER_REQUEST",
    }
    if props.get("LocalSecondaryIndexes"):
        options["LocalSecondaryIndexes"] = props["LocalSecondaryIndexes"]
    boto3.client("dynamodb", region_name=REGION).create_table(**options)


def drive_tickets(located: Located, checker: Checker, recorder: Recorder, _tmp: Path) -> None:
    """Every ticket tool once, for one verified actor, against the template's table (moto)."""
    from functions.tickets import handler as tickets

    with _moto(), environment(located.environment):
        with recorder.setup():
            _create_table_from_template(checker, located.environment["TICKETS_TABLE_NAME"])
        tickets._table = None
        try:
            actor = {"_actor": "alice-sub"}
            created = tickets.handler(
                {
                    **actor,
                    "email": "alice@example.com",
                    "subject": "Router keeps rebooting",
                    "description": "Since yesterday the X200 reboots every hour.",
                },
                _tool_context("tickets", "create_ticket"),
            )
            assert "ticket_id" in created, created
            ticket = {"ticket_id": created["ticket_id"]}
            for tool, arguments in (
                ("get_ticket", ticket),
                ("list_tickets", {}),
                ("add_ticket_comment", {**ticket, "comment": "It happened again at noon."}),
                ("update_ticket_status", {**ticket, "status": "resolved"}),
            ):
                answer = tickets.handler({**actor, **arguments}, _tool_context("tickets", tool))
                assert "error" not in answer, (tool, answer)
        finally:
            tickets._table = None


def drive_knowledge(located: Located, checker: Checker, recorder: Recorder, _tmp: Path) -> None:
    from functions.knowledge import handler as knowledge

    recorder.answer(
        "bedrock-agent-runtime",
        "Retrieve",
        {
            "retrievalResults": [
                {
                    "content": {"text": "Hold RESET for 10 seconds.", "type": "TEXT"},
                    "location": {"type": "S3", "s3Location": {"uri": "s3://docs/sample-corpus/router.pdf"}},
                    "metadata": {"x-amz-bedrock-kb-source-uri": "s3://docs/sample-corpus/router.pdf"},
                    "score": 0.8,
                }
            ]
        },
    )
    with environment(located.environment):
        knowledge._table = None
        try:
            answer = knowledge.handler(
                {"query": "reset router"}, _tool_context("knowledge", "search_knowledge_base")
            )
        finally:
            knowledge._table = None
    assert answer.get("count") == 1, answer


def drive_interceptor(located: Located, checker: Checker, recorder: Recorder, _tmp: Path) -> None:
    """A tools/call without an actor token and an initialize: the interceptor makes no AWS call (its
    only outbound request is the user pool's JWKS over HTTPS, which needs no IAM permission)."""
    from functions.interceptor import handler as interceptor

    with environment(located.environment):
        interceptor._verifier = None
        try:
            refused = interceptor.handler(
                {
                    "interceptorInputVersion": "1.0",
                    "mcp": {
                        "gatewayRequest": {
                            "headers": {},
                            "body": {
                                "jsonrpc": "2.0",
                                "id": 1,
                                "method": "tools/call",
                                "params": {"name": "tickets___list_tickets"},
                            },
                        }
                    },
                },
                None,
            )
            passed = interceptor.handler(
                {
                    "interceptorInputVersion": "1.0",
                    "mcp": {
                        "gatewayRequest": {
                            "headers": {},
                            "body": {"jsonrpc": "2.0", "id": 2, "method": "initialize"},
                        }
                    },
                },
                None,
            )
        finally:
            interceptor._verifier = None
    assert "transformedGatewayResponse" in refused["mcp"] and "transformedGatewayRequest" in passed["mcp"]


# --- ingestion ------------------------------------------------------------------------------------


class _Context:
    def get_remaining_time_in_millis(self) -> int:
        return 300_000


def _ingestion_module(located: Located) -> Any:
    # The Lambda package is functions/ingestion/handler.py deployed as `handler` (template Handler).
    return importlib.import_module("functions.ingestion.handler")


def drive_ingest_on_change(located: Located, checker: Checker, recorder: Recorder, _tmp: Path) -> None:
    """A document change while an older job runs: StartIngestionJob (Conflict), ListIngestionJobs, then
    a started job (the second StartIngestionJob)."""
    handler = _ingestion_module(located)
    answers = iter(["conflict", "started"])

    def start(params: Mapping[str, Any]) -> Mapping[str, Any]:
        if next(answers) == "conflict":
            from botocore.exceptions import ClientError

            raise ClientError(
                {"Error": {"Code": "ConflictException", "Message": "a job is running"}}, "StartIngestionJob"
            )
        return {
            "ingestionJob": {
                "ingestionJobId": "JOB2",
                "knowledgeBaseId": params["knowledgeBaseId"],
                "dataSourceId": params["dataSourceId"],
                "status": "STARTING",
                "startedAt": "2026-01-01T00:00:00Z",
                "updatedAt": "2026-01-01T00:00:00Z",
            }
        }

    from datetime import UTC, datetime

    recorder.answer("bedrock-agent", "StartIngestionJob", start)
    recorder.answer(
        "bedrock-agent",
        "ListIngestionJobs",
        {
            "ingestionJobSummaries": [
                {
                    "ingestionJobId": "JOB1",
                    "knowledgeBaseId": "x",
                    "dataSourceId": "y",
                    "status": "IN_PROGRESS",
                    "startedAt": datetime(2020, 1, 1, tzinfo=UTC),
                    "updatedAt": datetime(2020, 1, 1, tzinfo=UTC),
                }
            ]
        },
    )
    original_sleep = handler.time.sleep
    handler.time.sleep = lambda _s: None
    try:
        with environment(located.environment):
            result = handler.handle_document_change(
                {
                    "id": "evt-1",
                    "source": "aws.s3",
                    "detail-type": "Object Created",
                    "time": "2026-01-01T00:00:00Z",
                    "detail": {
                        "bucket": {"name": located.environment["DOCS_BUCKET"]},
                        "object": {"key": "manuals/x.pdf"},
                    },
                },
                _Context(),
            )
    finally:
        handler.time.sleep = original_sleep
    assert result["status"] == "started", result


def drive_ingest_on_deploy(located: Located, checker: Checker, recorder: Recorder, _tmp: Path) -> None:
    """The deploy custom resource with the properties the template gives it."""
    handler = _ingestion_module(located)
    custom = next(iter(checker.assembly.resources("Custom::KnowledgeBaseIngestion")))
    properties = checker.resolver.resolve(custom.stack, custom.properties)
    recorder.answer(
        "bedrock-agent",
        "StartIngestionJob",
        lambda p: {
            "ingestionJob": {
                "ingestionJobId": "JOB1",
                "knowledgeBaseId": p["knowledgeBaseId"],
                "dataSourceId": p["dataSourceId"],
                "status": "STARTING",
                "startedAt": "2026-01-01T00:00:00Z",
                "updatedAt": "2026-01-01T00:00:00Z",
            }
        },
    )
    with environment(located.environment):
        answer = handler.handle_deploy(
            {"RequestType": "Create", "RequestId": "r-1", "ResourceProperties": properties}, _Context()
        )
    assert answer["Data"]["Status"] == "started", answer


# --- LLM gateway bootstrap --------------------------------------------------------------------------


def drive_gateway_bootstrap(located: Located, checker: Checker, recorder: Recorder, _tmp: Path) -> None:
    """Create with the template's Plan: master key read, then each key secret (the team keys' and the evaluation's) read and written."""
    from functions.gateway_bootstrap import handler
    from tests.llm_gateway.admin_recorder import AdminRecorder

    custom = next(iter(checker.assembly.resources("Custom::LlmGatewayBootstrap")))
    properties = checker.resolver.resolve(custom.stack, custom.properties)
    plan = json.loads(properties["Plan"])
    master = "master-key-0123456789abcdef"
    values = {located.environment["MASTER_KEY_SECRET_ARN"]: master}
    values.update({key["secret_id"]: json.dumps({"api_key": ""}) for key in plan["keys"]})
    if plan.get("team_keys"):  # the agent's team keys, stored together in the agent key secret
        values[plan["team_keys"]["secret_id"]] = json.dumps({"api_key": ""})
    SecretsStandIn(recorder, values)
    with AdminRecorder(master) as admin:
        env = {**located.environment, "GATEWAY_URL": admin.url, "READY_TIMEOUT_SECONDS": "5"}
        with environment(env):
            answer = handler.on_event({"RequestType": "Create", "ResourceProperties": properties}, None)
    assert answer["Data"]["keys_created"], answer


# --- frontend ------------------------------------------------------------------------------------------


def drive_chat(located: Located, checker: Checker, recorder: Recorder, _tmp: Path) -> None:
    """The deployed chat's settings from its task environment: it calls the runtime over HTTPS with the
    user's Cognito token (JWT-authorized, no IAM) and makes no AWS SDK call."""
    from frontend.settings import load_settings

    env = {**located.environment, "LANGFUSE_PUBLIC_KEY": "pk", "LANGFUSE_SECRET_KEY": "sk"}
    settings = load_settings(env)
    assert settings.mode == "agentcore"


# --- evaluation -------------------------------------------------------------------------------------


def drive_evaluation(located: Located, checker: Checker, recorder: Recorder, tmp: Path) -> None:
    """The scheduled job's AWS calls: the report upload to EVAL_REPORT_BUCKET (moto) and, for a
    `--target agentcore` run, the evaluation client's secret (EVAL_CLIENT_SECRET_ARN)."""
    import boto3

    from clients.oauth import ClientCredentialsTokenSource
    from eval.report import upload_reports
    from eval.results import RunReport

    env = located.environment
    SecretsStandIn(
        recorder, {env["EVAL_CLIENT_SECRET_ARN"]: json.dumps({"client_id": "cid", "client_secret": "cs"})}
    )
    ClientCredentialsTokenSource.from_secret(
        env["EVAL_CLIENT_SECRET_ARN"], env["COGNITO_TOKEN_URL"], [env["EVAL_SCOPE"]], region=REGION
    )
    report_file = tmp / "report.json"
    report_file.write_text("{}", encoding="utf-8")
    with _moto(), environment(env):
        with recorder.setup():
            boto3.client("s3", region_name=REGION).create_bucket(Bucket=env["EVAL_REPORT_BUCKET"])
        report = RunReport(
            mode="online", run_name="online-test", started_at="2026-01-01T00:00:00Z", target="langfuse traces"
        )
        keys = upload_reports(env["EVAL_REPORT_BUCKET"], report, [report_file])
    assert keys == ["online/online-test/report.json"], keys


COMPONENTS: tuple[Component, ...] = (
    Component(
        "agent",
        "aaf-agentcore",
        "Runtime",
        "AWS::BedrockAgentCore::Runtime",
        "RoleArn",
        "agent/ (AgentCore Runtime)",
        drive_agent,
    ),
    Component(
        "tickets",
        "aaf-agentcore",
        "ToolGatewayTicketsFunction",
        "AWS::Lambda::Function",
        "Role",
        "functions/tickets",
        drive_tickets,
    ),
    Component(
        "knowledge",
        "aaf-agentcore",
        "ToolGatewayKnowledgeFunction",
        "AWS::Lambda::Function",
        "Role",
        "functions/knowledge",
        drive_knowledge,
    ),
    Component(
        "interceptor",
        "aaf-agentcore",
        "ToolGatewayInterceptorFunction",
        "AWS::Lambda::Function",
        "Role",
        "functions/interceptor",
        drive_interceptor,
    ),
    Component(
        "ingest-on-change",
        "aaf-knowledge-base",
        "IngestOnDocumentChange",
        "AWS::Lambda::Function",
        "Role",
        "functions/ingestion handle_document_change",
        drive_ingest_on_change,
    ),
    Component(
        "ingest-on-deploy",
        "aaf-knowledge-base",
        "IngestOnDeploy",
        "AWS::Lambda::Function",
        "Role",
        "functions/ingestion handle_deploy",
        drive_ingest_on_deploy,
    ),
    Component(
        "gateway-bootstrap",
        "aaf-llm-gateway",
        "BootstrapFunction",
        "AWS::Lambda::Function",
        "Role",
        "functions/gateway_bootstrap + llm_gateway/bootstrap.py",
        drive_gateway_bootstrap,
    ),
    Component(
        "chat",
        "aaf-frontend",
        "Task",
        "AWS::ECS::TaskDefinition",
        "TaskRoleArn",
        "frontend/ + clients/ (ECS task)",
        drive_chat,
    ),
    Component(
        "evaluation",
        "aaf-evaluation",
        "Task",
        "AWS::ECS::TaskDefinition",
        "TaskRoleArn",
        "eval/ online job (ECS task)",
        drive_evaluation,
    ),
)


def by_name(name: str) -> Component:
    return next(c for c in COMPONENTS if c.name == name)

"""Operations stack: the foundation dashboard, the alarms that mean users are hurting, the alarm topic."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_bedrockagentcore as agentcore
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_lambda as lambda_
from aws_cdk.assertions import Match, Template

from config import AppConfig
from scripts.synth_summary import lint_template
from stacks.compliance import enable_compliance_checks, read_validation_report
from stacks.network import NetworkStack
from stacks.observability import ObservabilityStack
from stacks.operations import OperationsStack
from tests.factories import test_config
from tests.support.cdk import resources_of, standin_knowledge_base

EXPECTED_ALARMS = {
    "aaf-agent-error-rate",
    "aaf-agent-latency",
    "aaf-tool-gateway-errors",
    "aaf-ticket-api-errors",
    "aaf-llm-gateway5xx",
    "aaf-llm-gateway-latency",
    "aaf-langfuse-no-healthy-target",
    "aaf-langfuse-database-at-capacity",
    "aaf-knowledge-base-ingestion-failures",
}


@dataclass(frozen=True)
class Synth:
    stack: OperationsStack
    template: Template
    outdir: Path


def _watched(app: cdk.App, config: AppConfig) -> dict[str, Any]:
    """Real constructs to watch: self-hosted Langfuse (services, database, ALB) and AgentCore resources."""
    network = NetworkStack(app, config=config)
    langfuse = ObservabilityStack(app, config=config, vpc=network.vpc)
    stack = cdk.Stack(app, "Watched")
    repository = ecr.Repository(stack, "Repository", removal_policy=cdk.RemovalPolicy.DESTROY)
    runtime = agentcore.Runtime(
        stack,
        "Runtime",
        runtime_name="agent",
        agent_runtime_artifact=agentcore.AgentRuntimeArtifact.from_ecr_repository(repository, "latest"),
    )
    gateway = agentcore.Gateway(stack, "Gateway", gateway_name="tools")
    tickets = lambda_.Function(
        stack,
        "Tickets",
        runtime=lambda_.Runtime.PYTHON_3_12,
        handler="index.handler",
        code=lambda_.Code.from_inline("def handler(event, context):\n    return event\n"),
    )
    knowledge_base = standin_knowledge_base(
        stack, "arn:aws:s3vectors:us-east-1:123456789012:bucket/b/index/i"
    )
    return {
        "runtime": runtime,
        "tool_gateway": gateway,
        "llm_gateway_load_balancer": langfuse.load_balancer,
        "target_groups": {"langfuse": langfuse.target_group},
        "ecs_services": {"langfuse-web": langfuse.web, "langfuse-worker": langfuse.worker},
        "databases": {"langfuse": langfuse.database},
        "knowledge_base": knowledge_base,
        "ticket_functions": [tickets],
    }


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    config = test_config("dev", alarms={"email": "ops@example.com"})
    outdir = tmp_path_factory.mktemp("operations")
    app = cdk.App(outdir=str(outdir))
    stack = OperationsStack(app, config=config, **_watched(app, config))
    enable_compliance_checks(app)
    try:
        app.synth()
    except Exception as error:  # the "Watched" helper stack has findings of its own; ours are checked below
        assert "ValidationFailed" in str(error)
    written = json.loads((outdir / "aaf-operations.template.json").read_text(encoding="utf-8"))
    return Synth(stack, Template.from_json(written), outdir)


@pytest.fixture(scope="module")
def template(synth: Synth) -> Template:
    return synth.template


@pytest.fixture(scope="module")
def bare() -> Template:
    """Nothing to watch and no email: a dashboard header, the topic, no alarms."""
    return Template.from_stack(OperationsStack(cdk.App(), config=test_config("dev")))


def _dashboard_body(template: Template) -> str:
    dashboard = next(iter(resources_of(template, "AWS::CloudWatch::Dashboard").values()))
    return json.dumps(dashboard["Properties"]["DashboardBody"])


def _alarms(template: Template) -> dict[str, dict[str, Any]]:
    return {
        a["Properties"]["AlarmName"]: a["Properties"]
        for a in resources_of(template, "AWS::CloudWatch::Alarm").values()
    }


def test_one_dashboard_for_the_foundation(template: Template) -> None:
    template.resource_count_is("AWS::CloudWatch::Dashboard", 1)
    template.has_resource_properties("AWS::CloudWatch::Dashboard", {"DashboardName": "aaf-foundation"})


@pytest.mark.parametrize(
    "title",
    [
        "Agent runtime: invocations",
        "Agent runtime: latency (ms)",
        "Agent runtime: errors",
        "Tool gateway: errors",
        "LLM gateway: requests",
        "LLM gateway: latency (s)",
        "LLM gateway: 5xx",
        "ECS: CPU utilisation % per service",
        "ECS: memory utilisation % per service",
        "Databases: load % (Aurora ACU utilisation of maximum, instance CPU)",
        "Databases: connections",
        "Knowledge base: ingestion failures",
        "Ticket API: errors and throttles",
        "Alarms",
    ],
)
def test_dashboard_has_widget(template: Template, title: str) -> None:
    assert f'\\"title\\":\\"{title}\\"' in _dashboard_body(template)


def test_dashboard_shows_cpu_and_memory_per_service(template: Template) -> None:
    body = _dashboard_body(template)
    for metric in ("CPUUtilization", "MemoryUtilization"):
        assert body.count(f'\\"AWS/ECS\\",\\"{metric}\\"') == 2


def test_alarms_cover_what_hurts_users(template: Template) -> None:
    assert set(_alarms(template)) == EXPECTED_ALARMS


def test_every_alarm_notifies_the_topic_on_alarm_and_recovery(synth: Synth) -> None:
    topic = synth.stack.get_logical_id(synth.stack.alarm_topic.node.default_child)  # type: ignore[arg-type]
    for name, alarm in _alarms(synth.template).items():
        assert alarm["AlarmActions"] == [{"Ref": topic}], name
        assert alarm["OKActions"] == [{"Ref": topic}], name


def test_agent_error_rate_alarm_uses_the_configured_threshold(template: Template) -> None:
    alarm = _alarms(template)["aaf-agent-error-rate"]
    assert alarm["Threshold"] == 5.0
    expression = next(m for m in alarm["Metrics"] if "Expression" in m)
    assert "100 * (errors + throttles) / invocations" in expression["Expression"]


def test_no_healthy_target_alarm_treats_silence_as_down(template: Template) -> None:
    alarm = _alarms(template)["aaf-langfuse-no-healthy-target"]
    assert alarm["ComparisonOperator"] == "LessThanThreshold" and alarm["TreatMissingData"] == "breaching"


def test_latency_alarm_is_in_milliseconds(template: Template) -> None:
    assert _alarms(template)["aaf-agent-latency"]["Threshold"] == 30_000


def test_alarm_topic_is_kms_encrypted_and_ssl_only(template: Template) -> None:
    template.has_resource_properties("AWS::SNS::Topic", {"KmsMasterKeyId": Match.any_value()})
    policy = next(iter(resources_of(template, "AWS::SNS::TopicPolicy").values()))
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    assert any(
        s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        for s in statements
    )


def test_cloudwatch_may_use_the_topic_key(template: Template) -> None:
    key = next(iter(resources_of(template, "AWS::KMS::Key").values()))
    principals = [json.dumps(s.get("Principal")) for s in key["Properties"]["KeyPolicy"]["Statement"]]
    assert any("cloudwatch.amazonaws.com" in p for p in principals)


def test_email_subscription_when_configured(template: Template) -> None:
    template.has_resource_properties(
        "AWS::SNS::Subscription", {"Protocol": "email", "Endpoint": "ops@example.com"}
    )


def test_no_subscription_without_email(bare: Template) -> None:
    bare.resource_count_is("AWS::SNS::Subscription", 0)


def test_nothing_to_watch_means_no_alarms(bare: Template) -> None:
    bare.resource_count_is("AWS::CloudWatch::Alarm", 0)
    bare.resource_count_is("AWS::CloudWatch::Dashboard", 1)


def test_knowledge_base_logs_are_delivered_to_an_encrypted_group(template: Template) -> None:
    template.has_resource_properties("AWS::Logs::DeliverySource", {"LogType": "APPLICATION_LOGS"})
    template.has_resource_properties(
        "AWS::Logs::LogGroup",
        {
            "LogGroupName": "/aws/vendedlogs/bedrock/knowledge-base/APPLICATION_LOGS/aaf",
            "KmsKeyId": Match.any_value(),
        },
    )
    template.resource_count_is("AWS::Logs::Delivery", 1)


def test_ingestion_job_failures_are_counted(template: Template) -> None:
    template.has_resource_properties(
        "AWS::Logs::MetricFilter",
        {
            "FilterPattern": '{ ($.event_type = "StartIngestionJob.StatusChanged") && '
            '($.event.ingestion_job_status = "FAILED") }',
            "MetricTransformations": [
                Match.object_like({"MetricName": "IngestionJobsFailed", "DefaultValue": 0})
            ],
        },
    )


def test_document_failures_are_counted(template: Template) -> None:
    filters = resources_of(template, "AWS::Logs::MetricFilter").values()
    pattern = next(
        f["Properties"]["FilterPattern"]
        for f in filters
        if f["Properties"]["MetricTransformations"][0]["MetricName"] == "IngestionDocumentsFailed"
    )
    for status in ("EMBEDDING_FAILED", "INDEXING_FAILED", "DELETION_FAILED", "METADATA_UPDATE_FAILED"):
        assert f'($.event.status = "{status}")' in pattern
    assert '$.event_type = "StartIngestionJob.ResourceStatusChanged"' in pattern


def test_nag_has_no_unacknowledged_finding(synth: Synth) -> None:
    report = read_validation_report(synth.outdir)
    assert [f for f in report.unacknowledged if "aaf-operations" in f] == []


def test_cfn_lint_has_no_error(synth: Synth) -> None:
    errors, _ = lint_template(synth.outdir / "aaf-operations.template.json")
    assert errors == ()

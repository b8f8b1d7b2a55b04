"""Evaluation stack: the scheduled Fargate job, secrets by reference, least privilege, nag-clean."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk.assertions import Match, Template

from config import AppConfig
from stacks.compliance import acknowledge_all, enable_compliance_checks, read_validation_report
from stacks.contracts import LangfuseConnection, LlmGatewayEndpoint, url_port
from stacks.evaluation import EvaluationStack
from stacks.identity import IdentityStack
from stacks.network import NetworkStack
from tests.factories import test_config
from tests.support.cdk import resources_of

RUNTIME_ARN = "arn:aws:bedrock-agentcore:us-east-1:123456789012:runtime/aaf_agent-AbCdEf1234"

# the dev gateway is reached on its private DNS name and port 4000 (no ALB): not 80/443
LLM_URL = "http://llm-gateway.aaf-llm.internal:4000"


def build(config: AppConfig, outdir: Path | None = None) -> tuple[cdk.App, EvaluationStack]:
    app = cdk.App(outdir=str(outdir)) if outdir else cdk.App()
    network = NetworkStack(app, config=config)
    identity = IdentityStack(app, config=config)
    inputs = cdk.Stack(app, "consumer-inputs")
    gateway_sg = ec2.SecurityGroup(inputs, "GatewaySg", vpc=network.vpc)
    llm = LlmGatewayEndpoint(
        url=LLM_URL,
        agent_key_secret=secretsmanager.Secret(inputs, "AgentKey"),
        eval_key_secret=secretsmanager.Secret(inputs, "EvalKey"),
        security_group=gateway_sg,
    )
    langfuse = LangfuseConnection(
        host="https://langfuse.example.com", keys_secret=secretsmanager.Secret(inputs, "LfKeys")
    )
    acknowledge_all(
        inputs,
        {
            "AwsSolutions-SMG4": "test stand-in for the secrets other stacks own and rotate",
            "NIST.800.53.R5-SecretsManagerRotationEnabled": "test stand-in for secrets other stacks own",
            "NIST.800.53.R5-SecretsManagerUsingKMSKey": "test stand-in for secrets other stacks own",
        },
    )
    stack = EvaluationStack(
        app,
        config=config,
        vpc=network.vpc,
        llm=llm,
        langfuse=langfuse,
        runtime_arn=RUNTIME_ARN,
        machine_client=identity.machine_clients["evaluation"],
        token_endpoint=identity.token_endpoint,
        service_subnets=network.service_subnets,
    )
    return app, stack


@pytest.fixture(scope="module")
def template() -> Template:
    return Template.from_stack(build(test_config("dev"))[1])


def _container(template: Template) -> dict[str, Any]:
    (task,) = resources_of(template, "AWS::ECS::TaskDefinition").values()
    (container,) = task["Properties"]["ContainerDefinitions"]
    return dict(container)


def _policy_statements(template: Template) -> list[dict[str, Any]]:
    statements = []
    for policy in resources_of(template, "AWS::IAM::Policy").values():
        statements.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    return statements


def test_schedule_comes_from_config_and_runs_the_fargate_task(template: Template) -> None:
    template.has_resource_properties(
        "AWS::Scheduler::Schedule",
        {
            "ScheduleExpression": "rate(1 day)",
            "Target": Match.object_like(
                {
                    "EcsParameters": Match.object_like(
                        {
                            "LaunchType": "FARGATE",
                            "NetworkConfiguration": {
                                "AwsvpcConfiguration": Match.object_like({"AssignPublicIp": "DISABLED"})
                            },
                        }
                    ),
                    "DeadLetterConfig": Match.object_like({"Arn": Match.any_value()}),
                    "RetryPolicy": Match.object_like({"MaximumRetryAttempts": 2}),
                }
            ),
        },
    )


def test_custom_schedule_and_no_schedule() -> None:
    custom = Template.from_stack(
        build(test_config("dev", evaluation={"online_schedule": "cron(0 6 * * ? *)"}))[1]
    )
    custom.has_resource_properties("AWS::Scheduler::Schedule", {"ScheduleExpression": "cron(0 6 * * ? *)"})
    off = Template.from_stack(build(test_config("dev", evaluation={"online_schedule": None}))[1])
    off.resource_count_is("AWS::Scheduler::Schedule", 0)


def test_container_runs_online_evaluation_with_configured_sample(template: Template) -> None:
    container = _container(template)
    assert container["Command"][:5] == ["online", "--no-progress", "--sample", "50", "--since-hours"]
    env = {e["Name"]: e["Value"] for e in container["Environment"]}
    assert env["EVAL_JUDGE_MODEL"] == "claude-haiku"
    assert env["LANGFUSE_HOST"] == "https://langfuse.example.com"
    assert env["LLM_GATEWAY_URL"] == LLM_URL


def test_secrets_are_ecs_secret_references_never_plain_environment(template: Template) -> None:
    container = _container(template)
    secrets = {s["Name"]: json.dumps(s["ValueFrom"]) for s in container["Secrets"]}
    assert set(secrets) == {"LANGFUSE_PUBLIC_KEY", "LANGFUSE_SECRET_KEY", "LLM_GATEWAY_KEY"}
    assert ":public_key::" in secrets["LANGFUSE_PUBLIC_KEY"]
    assert ":api_key::" in secrets["LLM_GATEWAY_KEY"]
    env_names = {e["Name"] for e in container["Environment"]}
    assert not env_names & {
        "LANGFUSE_SECRET_KEY",
        "LANGFUSE_PUBLIC_KEY",
        "LLM_GATEWAY_KEY",
        "EVAL_CLIENT_SECRET",
    }
    env = {e["Name"]: json.dumps(e["Value"]) for e in container["Environment"]}
    assert "EvaluationClientSecret" in env["EVAL_CLIENT_SECRET_ARN"] or "Ref" in env["EVAL_CLIENT_SECRET_ARN"]


def test_image_is_arm64_and_logs_are_encrypted_with_retention(template: Template) -> None:
    template.has_resource_properties(
        "AWS::ECS::TaskDefinition",
        {"RuntimePlatform": {"CpuArchitecture": "ARM64", "OperatingSystemFamily": "LINUX"}},
    )
    template.has_resource_properties(
        "AWS::Logs::LogGroup", {"RetentionInDays": 30, "KmsKeyId": Match.any_value()}
    )


def test_reports_bucket_is_private_encrypted_and_expires(template: Template) -> None:
    template.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "BucketEncryption": {
                "ServerSideEncryptionConfiguration": [
                    Match.object_like(
                        {
                            "ServerSideEncryptionByDefault": {
                                "SSEAlgorithm": "aws:kms",
                                "KMSMasterKeyID": Match.any_value(),
                            }
                        }
                    )
                ]
            },
            "PublicAccessBlockConfiguration": {
                "BlockPublicAcls": True,
                "BlockPublicPolicy": True,
                "IgnorePublicAcls": True,
                "RestrictPublicBuckets": True,
            },
            "LifecycleConfiguration": {
                "Rules": [Match.object_like({"ExpirationInDays": 90, "Status": "Enabled"})]
            },
        },
    )


def test_egress_is_limited_to_https_and_the_gateway(template: Template) -> None:
    (group,) = [
        g
        for g in resources_of(template, "AWS::EC2::SecurityGroup").values()
        if "Evaluation job" in g["Properties"]["GroupDescription"]
    ]
    egress = group["Properties"]["SecurityGroupEgress"]
    assert {(rule.get("CidrIp"), rule["FromPort"]) for rule in egress if "CidrIp" in rule} == {
        ("0.0.0.0/0", 443)
    }
    # exactly the gateway URL's own port (stacks/contracts.py url_port), not every HTTP(S) port
    gateway_ports = {rule["FromPort"] for rule in egress if "DestinationSecurityGroupId" in rule}
    assert gateway_ports == {url_port(LLM_URL)}
    assert "SecurityGroupIngress" not in group["Properties"]


def test_no_iam_statement_allows_every_action(template: Template) -> None:
    for statement in _policy_statements(template):
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        assert "*" not in actions
        assert not any(a.endswith(":*") for a in actions), statement


def test_task_role_can_write_reports_and_read_only_the_evaluation_client_secret(template: Template) -> None:
    actions = {
        a
        for s in _policy_statements(template)
        for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])
    }
    assert "s3:PutObject" in actions
    assert "s3:GetObject" not in actions
    assert "secretsmanager:GetSecretValue" in actions
    assert "ecs:RunTask" in actions and "iam:PassRole" in actions


def test_dev_destroys_and_prod_retains_reports() -> None:
    prod = Template.from_stack(build(test_config("prod"))[1])
    prod.has_resource("AWS::S3::Bucket", {"DeletionPolicy": "Retain"})


def test_nag_packs_report_no_open_findings_for_the_stack(tmp_path: Path) -> None:
    app, _ = build(test_config("dev"), tmp_path)
    enable_compliance_checks(app)
    app.synth()
    open_findings = [f for f in read_validation_report(tmp_path).unacknowledged if "aaf-evaluation" in f]
    assert open_findings == []


def test_dev_cluster_has_no_container_insights(template: Template) -> None:
    template.has_resource_properties(
        "AWS::ECS::Cluster", {"ClusterSettings": [{"Name": "containerInsights", "Value": "disabled"}]}
    )


def test_prod_cluster_has_container_insights() -> None:
    prod = Template.from_stack(build(test_config("prod"))[1])
    prod.has_resource_properties(
        "AWS::ECS::Cluster", {"ClusterSettings": [{"Name": "containerInsights", "Value": "enabled"}]}
    )

"""Frontend stack: Fargate chat behind an internal ALB and CloudFront, Cognito URLs wired, no plaintext secret."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_bedrockagentcore as agentcore
from aws_cdk import aws_kms as kms
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk.assertions import Match, Template

from stacks.compliance import acknowledge_all, enable_compliance_checks, read_validation_report
from stacks.config import AppConfig
from stacks.contracts import LangfuseConnection
from stacks.frontend import HEALTH_PATH, FrontendStack
from stacks.identity import IdentityStack
from stacks.network import NetworkStack
from tests.factories import test_config
from tests.support.cdk import resources_of

RUNTIME_ARN = "arn:aws:bedrock-agentcore:eu-west-1:123456789012:runtime/aaf_agent-AbC123"


def _build(
    config: AppConfig, outdir: Path | None = None, langfuse: bool = True
) -> tuple[cdk.App, FrontendStack]:
    app = cdk.App(outdir=str(outdir)) if outdir else cdk.App()
    network = NetworkStack(app, config=config)
    identity = IdentityStack(app, config=config)
    deps = cdk.Stack(app, "Deps")
    runtime = agentcore.Runtime.from_agent_runtime_attributes(
        deps,
        "Runtime",
        agent_runtime_arn=RUNTIME_ARN,
        agent_runtime_id="aaf_agent-AbC123",
        agent_runtime_name="aaf_agent",
        role_arn="arn:aws:iam::123456789012:role/runtime",
    )
    connection = None
    if langfuse:
        # encrypted with its own key like the observability stack's: a grant on it from the frontend
        # stack would write the frontend's role into this stack's key policy (a dependency cycle)
        keys = secretsmanager.Secret(
            deps, "LangfuseKeys", encryption_key=kms.Key(deps, "LangfuseKey", enable_key_rotation=True)
        )
        acknowledge_all(  # stands in for the observability stack's secret, which is not under test here
            keys,
            {
                f: "test stand-in for the observability stack's Langfuse keys secret"
                for f in (
                    "AwsSolutions-SMG4",
                    "NIST.800.53.R5-SecretsManagerRotationEnabled",
                )
            },
        )
        connection = LangfuseConnection(host="http://langfuse.internal.example", keys_secret=keys)
    stack = FrontendStack(
        app,
        config=config,
        vpc=network.vpc,
        user_pool=identity.user_pool,
        browser_client=identity.browser_client,
        domain=identity.domain,
        runtime=runtime,
        langfuse=connection,
        service_subnets=network.service_subnets,
    )
    return app, stack


@pytest.fixture(scope="module")
def template() -> Template:
    return Template.from_stack(_build(test_config("dev"))[1])


@pytest.fixture(scope="module")
def no_langfuse_template() -> Template:
    return Template.from_stack(_build(test_config("dev"), langfuse=False)[1])


def _container(template: Template) -> dict[str, Any]:
    (task,) = resources_of(template, "AWS::ECS::TaskDefinition").values()
    (container,) = task["Properties"]["ContainerDefinitions"]
    return dict(container)


def _environment(template: Template) -> dict[str, str]:
    return {e["Name"]: e["Value"] for e in _container(template)["Environment"]}


def test_alb_is_internal(template: Template) -> None:
    template.has_resource_properties(
        "AWS::ElasticLoadBalancingV2::LoadBalancer", {"Scheme": "internal", "Type": "application"}
    )


def test_cloudfront_serves_https_through_a_vpc_origin(template: Template) -> None:
    template.resource_count_is("AWS::CloudFront::VpcOrigin", 1)
    template.has_resource_properties(
        "AWS::CloudFront::Distribution",
        {
            "DistributionConfig": Match.object_like(
                {
                    "DefaultCacheBehavior": Match.object_like(
                        {
                            "ViewerProtocolPolicy": "redirect-to-https",
                            "AllowedMethods": Match.array_with(["POST"]),
                        }
                    ),
                    "Origins": [Match.object_like({"VpcOriginConfig": Match.any_value()})],
                    "Logging": Match.any_value(),
                }
            )
        },
    )


def test_caching_is_disabled_and_every_viewer_header_forwarded(template: Template) -> None:
    behavior = next(iter(resources_of(template, "AWS::CloudFront::Distribution").values()))["Properties"][
        "DistributionConfig"
    ]["DefaultCacheBehavior"]
    assert behavior["CachePolicyId"] == "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"  # Managed-CachingDisabled
    assert behavior["OriginRequestPolicyId"] == "216adef6-5c7f-47e4-b989-5492eafa07d3"  # Managed-AllViewer


def test_alb_admits_only_http_from_inside_the_vpc(template: Template) -> None:
    groups = resources_of(template, "AWS::EC2::SecurityGroup")
    alb_group = next(g for g in groups.values() if "Chat ALB" in g["Properties"]["GroupDescription"])
    (rule,) = alb_group["Properties"]["SecurityGroupIngress"]
    assert (rule["FromPort"], rule["ToPort"]) == (80, 80)
    assert "CidrIp" in rule and rule["CidrIp"] != "0.0.0.0/0"


def test_target_group_checks_streamlit_health_and_sticks_sessions(template: Template) -> None:
    template.has_resource_properties(
        "AWS::ElasticLoadBalancingV2::TargetGroup",
        {
            "HealthCheckPath": HEALTH_PATH,
            "Port": 8501,
            "TargetGroupAttributes": Match.array_with(
                [
                    {"Key": "stickiness.enabled", "Value": "true"},
                    {"Key": "stickiness.type", "Value": "lb_cookie"},
                ]
            ),
        },
    )


def test_container_has_a_health_check_on_the_streamlit_endpoint(template: Template) -> None:
    assert HEALTH_PATH in " ".join(_container(template)["HealthCheck"]["Command"])


def test_container_runs_in_agentcore_mode_against_the_runtime(template: Template) -> None:
    env = _environment(template)
    assert env["CHAT_MODE"] == "agentcore"
    assert env["AGENT_RUNTIME_ARN"] == RUNTIME_ARN
    assert "agentic-foundation/agent.invoke" in env["COGNITO_SCOPES"]
    assert set(env) >= {"COGNITO_DOMAIN_URL", "COGNITO_CLIENT_ID", "CHAT_PUBLIC_URL", "AWS_REGION"}


def test_langfuse_keys_are_ecs_secrets_never_environment(template: Template) -> None:
    container = _container(template)
    env = _environment(template)
    assert not any("KEY" in name for name in env)
    secrets = {s["Name"]: json.dumps(s["ValueFrom"]) for s in container["Secrets"]}
    assert set(secrets) == {"LANGFUSE_PUBLIC_KEY", "LANGFUSE_SECRET_KEY"}
    assert ":public_key::" in secrets["LANGFUSE_PUBLIC_KEY"]
    assert ":secret_key::" in secrets["LANGFUSE_SECRET_KEY"]


def test_without_langfuse_there_is_no_feedback_setting(no_langfuse_template: Template) -> None:
    assert "LANGFUSE_HOST" not in _environment(no_langfuse_template)
    assert "Secrets" not in _container(no_langfuse_template)


def test_logs_go_to_an_encrypted_log_group_with_retention(template: Template) -> None:
    assert _container(template)["LogConfiguration"]["LogDriver"] == "awslogs"
    template.has_resource_properties(
        "AWS::Logs::LogGroup", {"RetentionInDays": 30, "KmsKeyId": Match.any_value()}
    )


def test_callback_urls_custom_resource_targets_the_browser_client(template: Template) -> None:
    (resource,) = resources_of(template, "Custom::CognitoClientUrls").values()
    props = resource["Properties"]
    assert props["ClientId"] and props["UserPoolId"]
    url = json.dumps(props["CallbackUrls"])
    assert "https://" in url and "DomainName" in url
    assert props["LogoutUrls"] == props["CallbackUrls"]


def test_callback_handler_may_only_touch_the_user_pool_clients(template: Template) -> None:
    policies = resources_of(template, "AWS::IAM::Policy")
    cognito_statements = [
        s
        for p in policies.values()
        for s in p["Properties"]["PolicyDocument"]["Statement"]
        if any(
            str(a).startswith("cognito-idp:")
            for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
        )
    ]
    (statement,) = cognito_statements
    assert sorted(statement["Action"]) == [
        "cognito-idp:DescribeUserPoolClient",
        "cognito-idp:UpdateUserPoolClient",
    ]
    assert "*" not in json.dumps(statement["Resource"])


def test_tasks_accept_traffic_only_from_the_alb(template: Template) -> None:
    ingress = resources_of(template, "AWS::EC2::SecurityGroupIngress")
    to_tasks = [r["Properties"] for r in ingress.values() if r["Properties"].get("FromPort") == 8501]
    assert to_tasks and all("SourceSecurityGroupId" in r for r in to_tasks)


def test_image_build_context_holds_only_the_chat_and_clients(tmp_path: Path) -> None:
    app, _ = _build(test_config("dev"), outdir=tmp_path)
    app.synth()
    (asset,) = [p for p in tmp_path.glob("asset.*") if (p / "frontend" / "Dockerfile").exists()]
    assert sorted(p.name for p in asset.iterdir()) == ["clients", "frontend"]
    assert (asset / "frontend" / "app.py").exists() and (asset / "clients" / "agentcore.py").exists()
    assert not list(asset.rglob("__pycache__"))


def test_no_unacknowledged_nag_findings(tmp_path: Path) -> None:
    app, _ = _build(test_config("prod"), outdir=tmp_path)
    enable_compliance_checks(app)
    app.synth()  # raises ValidationFailed on any unacknowledged error
    assert read_validation_report(tmp_path).unacknowledged == ()


def test_reading_the_langfuse_keys_changes_only_this_stack() -> None:
    app, stack = _build(test_config("dev"))
    deps = app.node.find_child("Deps")
    assert isinstance(deps, cdk.Stack)
    assert stack not in deps.dependencies
    key_policy = json.dumps(Template.from_stack(deps).to_json())
    assert "ExecutionRole" not in key_policy  # the grant did not reach the other stack's key policy
    statements = [
        s
        for p in resources_of(Template.from_stack(stack), "AWS::IAM::Policy").values()
        for s in p["Properties"]["PolicyDocument"]["Statement"]
    ]
    assert any("kms:Decrypt" in json.dumps(s["Action"]) for s in statements)
    assert any("secretsmanager:GetSecretValue" in json.dumps(s["Action"]) for s in statements)


def test_dev_runs_one_small_spot_task_and_prod_on_demand(template: Template) -> None:
    template.has_resource_properties(
        "AWS::ECS::Service",
        {"CapacityProviderStrategy": [{"CapacityProvider": "FARGATE_SPOT", "Weight": 1}], "DesiredCount": 1},
    )
    template.has_resource_properties("AWS::ECS::TaskDefinition", {"Cpu": "256", "Memory": "512"})
    prod = Template.from_stack(_build(test_config("prod"))[1])
    (service,) = resources_of(prod, "AWS::ECS::Service").values()
    assert "CapacityProviderStrategy" not in service["Properties"]
    assert service["Properties"]["LaunchType"] == "FARGATE"


def test_dev_profile_also_passes_nag(tmp_path: Path) -> None:
    app, _ = _build(test_config("dev"), outdir=tmp_path)
    enable_compliance_checks(app)
    app.synth()
    assert read_validation_report(tmp_path).unacknowledged == ()

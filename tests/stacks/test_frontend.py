"""Frontend stack: the Fargate chat registered in the edge stack's target group, no plaintext secret,
and nothing that edits Cognito (the browser client's URLs are CloudFormation's, see test_identity)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_bedrockagentcore as agentcore
from aws_cdk import aws_kms as kms
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk.assertions import Annotations, Match, Template

from config import AppConfig
from stacks.compliance import acknowledge_all, enable_compliance_checks, read_validation_report
from stacks.contracts import LangfuseConnection
from stacks.edge import CHAT_PORT, HEALTH_PATH, EdgeStack
from stacks.frontend import FrontendStack
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
    edge = EdgeStack(app, config=config, vpc=network.vpc, service_subnets=network.service_subnets)
    identity = IdentityStack(app, config=config, chat=edge.chat)
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
        edge=edge.chat,
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


def _environment_value(template: Template, name: str) -> Any:
    return next(e["Value"] for e in _container(template)["Environment"] if e["Name"] == name)


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


def _edge_import(value: Any) -> str:
    """The export name an `Fn::ImportValue` refers to (the edge stack's exports start with `aaf-edge:`)."""
    assert isinstance(value, dict) and set(value) == {"Fn::ImportValue"}, value
    return str(value["Fn::ImportValue"])


def test_service_registers_its_tasks_in_the_edge_target_group(template: Template) -> None:
    (service,) = resources_of(template, "AWS::ECS::Service").values()
    (balancer,) = service["Properties"]["LoadBalancers"]
    assert (balancer["ContainerName"], balancer["ContainerPort"]) == ("chat", CHAT_PORT)
    assert _edge_import(balancer["TargetGroupArn"]).startswith("aaf-edge:ExportsOutputRefChatTargetGroup")
    # the target group, listener and ALB are the edge stack's: none is created here
    for kind in ("TargetGroup", "Listener", "LoadBalancer"):
        template.resource_count_is(f"AWS::ElasticLoadBalancingV2::{kind}", 0)
    template.resource_count_is("AWS::CloudFront::Distribution", 0)


def test_tasks_accept_streamlit_only_from_the_edge_alb(template: Template) -> None:
    groups = resources_of(template, "AWS::EC2::SecurityGroup")
    ((tasks_id, tasks),) = [
        (k, g) for k, g in groups.items() if "Chat tasks" in g["Properties"]["GroupDescription"]
    ]
    assert "SecurityGroupIngress" not in tasks["Properties"]  # no CIDR or open ingress inline
    (ingress,) = [r["Properties"] for r in resources_of(template, "AWS::EC2::SecurityGroupIngress").values()]
    assert ingress["GroupId"] == {"Fn::GetAtt": [tasks_id, "GroupId"]}
    assert (ingress["FromPort"], ingress["ToPort"], ingress["IpProtocol"]) == (CHAT_PORT, CHAT_PORT, "tcp")
    alb_group = _edge_import(ingress["SourceSecurityGroupId"])
    assert alb_group.startswith("aaf-edge:ExportsOutputFnGetAttLoadBalancerSecurityGroup")


def test_the_alb_may_reach_only_the_tasks_and_that_rule_lives_here(template: Template) -> None:
    # written in this stack (which depends on the edge), so the edge stack never refers to this one
    groups = resources_of(template, "AWS::EC2::SecurityGroup")
    (tasks_id,) = [k for k, g in groups.items() if "Chat tasks" in g["Properties"]["GroupDescription"]]
    (egress,) = [r["Properties"] for r in resources_of(template, "AWS::EC2::SecurityGroupEgress").values()]
    assert _edge_import(egress["GroupId"]).startswith(
        "aaf-edge:ExportsOutputFnGetAttLoadBalancerSecurityGroup"
    )
    assert egress["DestinationSecurityGroupId"] == {"Fn::GetAtt": [tasks_id, "GroupId"]}
    assert (egress["FromPort"], egress["ToPort"]) == (CHAT_PORT, CHAT_PORT)


def test_public_url_is_the_edge_distribution(template: Template) -> None:
    output = template.to_json()["Outputs"]["ChatUrl"]["Value"]
    prefix, domain, suffix = output["Fn::Join"][1]
    assert (prefix, suffix) == ("https://", "/")
    assert "Distribution" in _edge_import(domain) and "DomainName" in _edge_import(domain)
    assert _environment_value(template, "CHAT_PUBLIC_URL") == output


def test_the_stack_edits_nothing_in_cognito(template: Template) -> None:
    # the former custom resource (and its function) rewrote the browser client outside CloudFormation
    assert not [t for t in template.to_json()["Resources"].values() if t["Type"].startswith("Custom::")]
    template.resource_count_is("AWS::Lambda::Function", 0)
    assert "cognito-idp:" not in json.dumps(resources_of(template, "AWS::IAM::Policy"))


def test_no_cdk_warning_is_left_unacknowledged() -> None:
    _, stack = _build(test_config("dev"))
    assert Annotations.from_stack(stack).find_warning("*", Match.any_value()) == []


def test_image_build_context_holds_only_the_chat_and_clients(tmp_path: Path) -> None:
    app, _ = _build(test_config("dev"), outdir=tmp_path)
    app.synth()
    (asset,) = [p for p in tmp_path.glob("asset.*") if (p / "frontend" / "Dockerfile").exists()]
    assert sorted(p.name for p in asset.iterdir()) == ["agent", "clients", "frontend"]
    assert (asset / "frontend" / "app.py").exists() and (asset / "clients" / "agentcore.py").exists()
    # only the shared cited-source rule of the agent, which the Dockerfile copies
    assert sorted(p.name for p in (asset / "agent").iterdir()) == ["__init__.py", "citations.py"]
    dockerfile = (asset / "frontend" / "Dockerfile").read_text()
    assert "COPY agent/__init__.py agent/citations.py agent/" in dockerfile
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


def test_tasks_carry_the_service_tags_and_allow_no_exec(template: Template) -> None:
    """Like every Fargate service of the foundation (stacks/constructs/fargate_service.py): the tasks get
    the service's cost-allocation tags, and ECS Exec stays off (no shell into a chat task)."""
    (service,) = resources_of(template, "AWS::ECS::Service").values()
    assert service["Properties"]["PropagateTags"] == "SERVICE"
    assert service["Properties"]["EnableExecuteCommand"] is False
    assert service["Properties"]["DeploymentConfiguration"]["DeploymentCircuitBreaker"] == {
        "Enable": True,
        "Rollback": True,
    }


def test_dev_profile_also_passes_nag(tmp_path: Path) -> None:
    app, _ = _build(test_config("dev"), outdir=tmp_path)
    enable_compliance_checks(app)
    app.synth()
    assert read_validation_report(tmp_path).unacknowledged == ()


# --- cited documents: pre-signed links (the whole dev app, the session's `dev_assembly`) ----------------


def _assembly_template(assembly: Path, stack: str) -> dict[str, Any]:
    return dict(json.loads((assembly / f"{stack}.template.json").read_text()))


def _docs_bucket_and_key(kb: dict[str, Any]) -> tuple[str, str]:
    buckets = [
        (k, r)
        for k, r in kb["Resources"].items()
        if r["Type"] == "AWS::S3::Bucket"
        and r["Properties"]
        .get("BucketEncryption", {})
        .get("ServerSideEncryptionConfiguration", [{}])[0]
        .get("ServerSideEncryptionByDefault", {})
        .get("SSEAlgorithm")
        == "aws:kms"
        and "LoggingConfiguration" in r["Properties"]
    ]
    assert len(buckets) == 1, [k for k, _ in buckets]
    bucket_id, bucket = buckets[0]
    sse = bucket["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
    key_id = sse["ServerSideEncryptionByDefault"]["KMSMasterKeyID"]["Fn::GetAtt"][0]
    return bucket_id, key_id


def test_chat_task_role_can_read_cited_documents_through_a_presigned_url(dev_assembly: Path) -> None:
    """A pre-signed GET is authorised as the signing role: s3:GetObject on the object, and kms:Decrypt
    on an SSE-KMS object's key (S3 user guide, using-presigned-url.html / UsingKMSEncryption.html)."""
    frontend = _assembly_template(dev_assembly, "aaf-frontend")
    bucket_id, key_id = _docs_bucket_and_key(_assembly_template(dev_assembly, "aaf-knowledge-base"))
    (task,) = [r for r in frontend["Resources"].values() if r["Type"] == "AWS::ECS::TaskDefinition"]
    env = {e["Name"]: e["Value"] for e in task["Properties"]["ContainerDefinitions"][0]["Environment"]}
    assert "aaf-knowledge-base" in json.dumps(env["DOCS_BUCKET_NAME"])
    assert bucket_id[:20] in json.dumps(env["DOCS_BUCKET_NAME"])
    task_role = task["Properties"]["TaskRoleArn"]["Fn::GetAtt"][0]
    statements = [
        s
        for r in frontend["Resources"].values()
        if r["Type"] == "AWS::IAM::Policy" and {"Ref": task_role} in r["Properties"]["Roles"]
        for s in r["Properties"]["PolicyDocument"]["Statement"]
    ]
    by_sid = {s.get("Sid"): s for s in statements}
    read = by_sid["ReadCitedDocuments"]
    assert read["Action"] == "s3:GetObject"
    import_of_bucket_arn, objects = read["Resource"]["Fn::Join"][1]
    assert objects == "/*" and bucket_id[:20] in import_of_bucket_arn["Fn::ImportValue"]
    decrypt = by_sid["DecryptCitedDocuments"]
    assert decrypt["Action"] == "kms:Decrypt"
    assert key_id[:16] in json.dumps(decrypt["Resource"])
    assert "s3." in json.dumps(decrypt["Condition"]["StringEquals"]["kms:ViaService"])

"""LLM gateway stack: ECS secrets, scoped Bedrock access, internal ALB, encrypted DB, autoscaling, bootstrap."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
import yaml
from aws_cdk import aws_kms as kms
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk.assertions import Match, Template

from config import AppConfig, ConfigError
from llm_gateway.bootstrap import BootstrapPlan
from scripts.synth_summary import lint_template
from stacks.compliance import apply_cost_tags, enable_compliance_checks, read_validation_report
from stacks.contracts import LangfuseConnection
from stacks.guardrails import GuardrailsStack
from stacks.llm_gateway import (
    CONTAINER_PORT,
    HEALTH_PATH,
    SERVICE_DNS_NAME,
    LlmGatewayStack,
    external_endpoint,
)
from stacks.network import NetworkStack
from tests.factories import test_config
from tests.stacks import test_network as network_tests
from tests.stacks.test_guardrails import assert_may_apply_guardrail
from tests.support.cdk import resources_of


@dataclass(frozen=True)
class Synth:
    stack: LlmGatewayStack
    template: Template
    outdir: Path


def synth(
    config: AppConfig,
    outdir: Path,
    with_langfuse: bool = False,
    gates: bool = True,
    context: dict[str, Any] | None = None,
) -> Synth:
    """The gateway with its real upstream stacks, in an app with every gate app.py enables."""
    app = cdk.App(outdir=str(outdir), context=context)
    network = NetworkStack(app, config=config)
    guardrails = GuardrailsStack(app, config=config)
    langfuse = None
    if (
        with_langfuse
    ):  # a Langfuse keys secret encrypted with another stack's key, as the observability stack has
        keys_stack = cdk.Stack(app, "langfuse-keys")
        key = kms.Key(keys_stack, "Key", enable_key_rotation=True)
        keys = secretsmanager.Secret(keys_stack, "Keys", encryption_key=key)
        langfuse = LangfuseConnection(host="https://langfuse.example.com", keys_secret=keys)
    stack = LlmGatewayStack(
        app,
        config=config,
        vpc=network.vpc,
        guardrail=guardrails.guardrail,
        guardrail_version=guardrails.guardrail_version,
        langfuse=langfuse,
    )
    apply_cost_tags(app, config)
    if gates and not with_langfuse:
        enable_compliance_checks(app)
    app.synth()
    return Synth(stack, Template.from_stack(stack), outdir)


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    return synth(test_config("dev"), tmp_path_factory.mktemp("gateway-dev"))


@pytest.fixture(scope="module")
def dev_without_console(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """Dev without the admin console: `load_balancer: false` then means no ALB (the console needs one)."""
    return synth(
        test_config("dev", llm_gateway={"admin_ui": False}), tmp_path_factory.mktemp("gateway-dev-plain")
    )


@pytest.fixture(scope="module")
def template(dev: Synth) -> Template:
    return dev.template


@pytest.fixture(scope="module")
def prod(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    return synth(test_config("prod"), tmp_path_factory.mktemp("gateway-prod"))


def only(template: Template, resource_type: str) -> dict[str, Any]:
    found = resources_of(template, resource_type)
    assert len(found) == 1, f"expected one {resource_type}, found {sorted(found)}"
    return dict(next(iter(found.values())))


def container(template: Template) -> dict[str, Any]:
    (definition,) = only(template, "AWS::ECS::TaskDefinition")["Properties"]["ContainerDefinitions"]
    return dict(definition)


def task_policy_statements(template: Template) -> list[dict[str, Any]]:
    task_role = next(
        iter(
            template.find_resources(
                "AWS::IAM::Role",
                {
                    "Properties": {
                        "AssumeRolePolicyDocument": {
                            "Statement": [
                                Match.object_like({"Principal": {"Service": "ecs-tasks.amazonaws.com"}})
                            ]
                        }
                    }
                },
            )
        )
    )
    statements: list[dict[str, Any]] = []
    for policy in resources_of(template, "AWS::IAM::Policy").values():
        roles = policy["Properties"].get("Roles", [])
        if {"Ref": task_role} in roles:
            statements.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    return statements


def test_runs_the_pinned_litellm_database_image(template: Template, dev: Synth) -> None:
    assert container(template)["Image"] == dev.stack.config.llm_gateway.image
    assert "litellm-database" in container(template)["Image"]


def test_dev_runs_on_fargate_spot_x86(template: Template) -> None:
    definition = only(template, "AWS::ECS::TaskDefinition")["Properties"]
    service = only(template, "AWS::ECS::Service")["Properties"]

    assert definition["RuntimePlatform"]["CpuArchitecture"] == "X86_64"  # Spot runs x86_64 only
    assert service["CapacityProviderStrategy"] == [{"CapacityProvider": "FARGATE_SPOT", "Weight": 1}]
    assert "LaunchType" not in service


def test_prod_runs_on_demand_on_graviton(prod: Synth) -> None:
    definition = only(prod.template, "AWS::ECS::TaskDefinition")["Properties"]
    service = only(prod.template, "AWS::ECS::Service")["Properties"]

    assert definition["RuntimePlatform"]["CpuArchitecture"] == "ARM64"
    assert service["LaunchType"] == "FARGATE"  # on-demand
    assert "CapacityProviderStrategy" not in service


def test_container_insights_follow_the_profile(template: Template, prod: Synth) -> None:
    def insights(synthesized: Template) -> str:
        settings = only(synthesized, "AWS::ECS::Cluster")["Properties"]["ClusterSettings"]
        return str({s["Name"]: s["Value"] for s in settings}["containerInsights"])

    assert (insights(template), insights(prod.template)) == ("disabled", "enabled")


def test_task_size_is_a_valid_fargate_combination(template: Template, dev: Synth) -> None:
    definition = only(template, "AWS::ECS::TaskDefinition")["Properties"]

    assert (definition["Cpu"], definition["Memory"]) == (
        str(dev.stack.config.llm_gateway.cpu),
        str(dev.stack.config.llm_gateway.memory_mib),
    )


def test_invalid_task_memory_for_the_cpu_is_rejected() -> None:
    with pytest.raises(
        ConfigError, match=r"llm_gateway\.memory_mib': 512 is not a Fargate size for cpu 1024"
    ):
        test_config("dev", llm_gateway={"cpu": 1024, "memory_mib": 512})


def test_spot_on_arm64_is_rejected() -> None:
    with pytest.raises(ConfigError, match=r"Fargate Spot runs x86_64 tasks only"):
        test_config("dev", llm_gateway={"fargate_spot": True, "architecture": "arm64"})


def test_storage_cap_must_exceed_allocated_storage() -> None:
    with pytest.raises(
        ConfigError, match=r"llm_gateway\.db_max_storage_gb': the storage-autoscaling cap must exceed"
    ):
        test_config("dev", llm_gateway={"db_storage_gb": 100, "db_max_storage_gb": 50})


def test_guardrail_version_is_published_in_this_stack(template: Template) -> None:
    version = only(template, "AWS::Bedrock::GuardrailVersion")["Properties"]
    environment = {e["Name"]: e["Value"] for e in container(template)["Environment"]}
    (version_id,) = resources_of(template, "AWS::Bedrock::GuardrailVersion")

    assert "Fn::ImportValue" in version["GuardrailIdentifier"]  # only the (immutable) id crosses stacks
    assert version["Description"].startswith("policy ")
    assert environment["BEDROCK_GUARDRAIL_VERSION"] == {"Fn::GetAtt": [version_id, "Version"]}


def imported_values(value: Any) -> list[str]:
    """Every `Fn::ImportValue` in a template fragment, as JSON text."""
    if isinstance(value, dict):
        found = [json.dumps(value["Fn::ImportValue"])] if "Fn::ImportValue" in value else []
        return found + [text for item in value.values() for text in imported_values(item)]
    if isinstance(value, list):
        return [text for item in value for text in imported_values(item)]
    return []


def test_only_the_guardrail_id_and_arn_cross_from_the_guardrails_stack(template: Template) -> None:
    from_guardrails = [text for text in imported_values(template.to_json()) if "aaf-guardrails" in text]

    assert from_guardrails
    assert all("GuardrailVersion" not in text for text in from_guardrails)


def test_workers_are_recycled_after_a_bounded_number_of_requests(template: Template, dev: Synth) -> None:
    command = container(template)["Command"]
    gateway = dev.stack.config.llm_gateway

    assert command[command.index("--num_workers") + 1] == str(gateway.workers)
    assert command[command.index("--max_requests_before_restart") + 1] == str(
        gateway.max_requests_before_restart
    )
    assert int(command[command.index("--max_requests_before_restart_jitter") + 1]) > 0
    assert gateway.workers >= 2


def test_secrets_reach_the_task_as_ecs_secrets_never_environment(template: Template) -> None:
    definition = container(template)
    secrets = {item["Name"] for item in definition["Secrets"]}
    environment = {item["Name"]: item["Value"] for item in definition["Environment"]}

    assert {"LITELLM_MASTER_KEY", "LITELLM_SALT_KEY", "DATABASE_USERNAME", "DATABASE_PASSWORD"} <= secrets
    assert not secrets & set(environment)
    words = ("MASTER", "SALT", "PASSWORD", "SECRET", "TOKEN", "API_KEY")
    assert not any(word in name for name in environment for word in words)


def test_master_and_salt_keys_are_generated_at_deploy_time(template: Template) -> None:
    generated = [
        s
        for s in resources_of(template, "AWS::SecretsManager::Secret").values()
        if "GenerateSecretString" in s["Properties"]
    ]
    descriptions = " ".join(str(s["Properties"].get("Description")) for s in generated)

    assert "master key" in descriptions and "salt key" in descriptions
    assert all(s["Properties"]["KmsKeyId"] for s in generated)


def test_master_key_is_sk_prefixed_from_a_dynamic_reference(template: Template) -> None:
    (master,) = [
        s
        for s in resources_of(template, "AWS::SecretsManager::Secret").values()
        if str(s["Properties"].get("Description", "")).startswith("LiteLLM master key")
    ]

    value = json.dumps(master["Properties"]["SecretString"])
    assert '"sk-{{resolve:secretsmanager:' in value


def test_config_yaml_is_an_s3_object_without_secrets(dev: Synth, template: Template) -> None:
    environment = {item["Name"]: item["Value"] for item in container(template)["Environment"]}
    asset = dev.stack.config_asset
    text = Path(
        asset.asset_path if Path(asset.asset_path).is_absolute() else dev.outdir / asset.asset_path
    ).read_text()

    assert "LITELLM_CONFIG_BUCKET_NAME" in environment and "LITELLM_CONFIG_BUCKET_OBJECT_KEY" in environment
    document = yaml.safe_load(text)
    assert document["general_settings"]["master_key"] == "os.environ/LITELLM_MASTER_KEY"
    assert (
        document["guardrails"][0]["litellm_params"]["guardrailIdentifier"]
        == "os.environ/BEDROCK_GUARDRAIL_ID"
    )
    assert "${Token" not in text


def test_task_reads_exactly_its_config_object(template: Template) -> None:
    (statement,) = [s for s in task_policy_statements(template) if s.get("Sid") == "ReadGatewayConfig"]

    assert statement["Action"] == "s3:GetObject"
    assert "*" not in json.dumps(statement["Resource"])


def test_bedrock_access_is_scoped_to_the_catalogued_profiles_and_models(
    template: Template, dev: Synth
) -> None:
    statements = {s.get("Sid"): s for s in task_policy_statements(template)}
    profiles = statements["InvokeInferenceProfiles"]
    routed = statements["InvokeModelsThroughProfiles"]
    catalog = [e.model_id for e in dev.stack.config.models.entries]

    assert sorted(profiles["Action"]) == ["bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream"]
    assert len(profiles["Resource"]) == len(catalog)
    for model_id in catalog:
        assert any(model_id in json.dumps(arn) for arn in profiles["Resource"])
        assert any(model_id.split(".", 1)[1] in json.dumps(arn) for arn in routed["Resource"])
    assert "bedrock:InferenceProfileArn" in json.dumps(routed["Condition"])
    for statement in task_policy_statements(template):
        assert "bedrock:*" not in json.dumps(statement["Action"])
        assert statement["Resource"] != "*"


def test_guardrail_can_be_applied_only_on_the_one_guardrail(template: Template) -> None:
    statements = {s.get("Sid"): s for s in task_policy_statements(template)}

    assert statements["ApplyGuardrail"]["Action"] == "bedrock:ApplyGuardrail"
    assert "GuardrailArn" in json.dumps(statements["ApplyGuardrail"]["Resource"])


def test_task_role_may_apply_the_encrypted_guardrail(template: Template) -> None:
    # LiteLLM calls ApplyGuardrail with the task role; the guardrail is encrypted with the guardrails
    # stack's key (Bedrock user guide, guardrails-permissions-kms.html): Decrypt on that key is needed too.
    assert_may_apply_guardrail(
        task_policy_statements(template), guardrail_arn="GuardrailGuardrailArn", key_arn="GuardrailKey"
    )


def test_load_balancer_is_internal_by_default(prod: Synth) -> None:
    template = prod.template
    assert only(template, "AWS::ElasticLoadBalancingV2::LoadBalancer")["Properties"]["Scheme"] == "internal"
    # an internal ALB gets no regional web ACL; the console's web ACL is CloudFront's (scope CLOUDFRONT)
    assert not resources_of(template, "AWS::WAFv2::WebACLAssociation")
    assert [acl["Properties"]["Scope"] for acl in resources_of(template, "AWS::WAFv2::WebACL").values()] == [
        "CLOUDFRONT"
    ]


def test_load_balancer_admits_only_the_vpc(prod: Synth) -> None:
    groups = prod.template.find_resources(
        "AWS::EC2::SecurityGroup", {"Properties": {"GroupDescription": "LLM gateway load balancer"}}
    )
    (group,) = groups.values()
    ingress = group["Properties"]["SecurityGroupIngress"]

    assert [rule["CidrIp"] for rule in ingress] == ["10.40.0.0/16"]


def test_public_gateway_gets_https_and_a_waf(tmp_path: Path) -> None:
    config = test_config(
        "dev",
        llm_gateway={
            "public": True,
            "load_balancer": True,
            "certificate_arn": "arn:aws:acm:us-east-1:123456789012:certificate/abc-123",
            "hostname": "llm.example.com",
            # the console's VPC origin needs an internal HTTP ALB (check_console_config): not this one
            "admin_ui": False,
        },
    )

    synthesized = synth(config, tmp_path)
    public = synthesized.template
    assert synthesized.stack.endpoint.url == "https://llm.example.com"
    assert synthesized.stack.console is None
    assert not resources_of(public, "AWS::CloudFront::Distribution")

    assert (
        only(public, "AWS::ElasticLoadBalancingV2::LoadBalancer")["Properties"]["Scheme"] == "internet-facing"
    )
    assert only(public, "AWS::ElasticLoadBalancingV2::Listener")["Properties"]["Protocol"] == "HTTPS"
    assert resources_of(public, "AWS::WAFv2::WebACLAssociation")


def test_target_health_check_uses_liveliness(prod: Synth) -> None:
    group = only(prod.template, "AWS::ElasticLoadBalancingV2::TargetGroup")["Properties"]

    assert group["HealthCheckPath"] == HEALTH_PATH
    assert group["Port"] == CONTAINER_PORT


def test_dev_database_is_one_encrypted_single_az_postgres_instance(template: Template, dev: Synth) -> None:
    instance = only(template, "AWS::RDS::DBInstance")["Properties"]
    gateway = dev.stack.config.llm_gateway

    assert not resources_of(template, "AWS::RDS::DBCluster")
    assert (instance["Engine"], instance["DBInstanceClass"], instance["MultiAZ"]) == (
        "postgres",
        gateway.db_instance_class,
        False,
    )
    assert instance["StorageEncrypted"] is True and "KmsKeyId" in instance
    assert instance["BackupRetentionPeriod"] >= 1
    assert (instance["AllocatedStorage"], instance["MaxAllocatedStorage"]) == (
        str(gateway.db_storage_gb),
        gateway.db_max_storage_gb,
    )
    assert instance["PubliclyAccessible"] is False


def test_dev_database_requires_tls(template: Template) -> None:
    parameters = only(template, "AWS::RDS::DBParameterGroup")["Properties"]["Parameters"]

    assert parameters["rds.force_ssl"] == "1"


def test_task_reaches_the_instance_endpoint(template: Template) -> None:
    (instance_id,) = resources_of(template, "AWS::RDS::DBInstance")
    environment = {e["Name"]: e["Value"] for e in container(template)["Environment"]}

    assert json.dumps(environment["DATABASE_HOST"]).count(instance_id) == 2  # address:port


def test_prod_database_is_encrypted_aurora_serverless_v2_with_floor_and_reader(prod: Synth) -> None:
    cluster = only(prod.template, "AWS::RDS::DBCluster")["Properties"]

    assert cluster["Engine"] == "aurora-postgresql"
    assert cluster["StorageEncrypted"] is True and "KmsKeyId" in cluster
    assert cluster["ServerlessV2ScalingConfiguration"]["MinCapacity"] == 0.5
    assert cluster["DeletionProtection"] is True
    assert len(resources_of(prod.template, "AWS::RDS::DBInstance")) == 2


def test_aurora_with_zero_floor_auto_pauses(tmp_path: Path) -> None:
    config = test_config("dev", llm_gateway={"db_engine": "aurora_serverless", "db_min_acu": 0})
    cluster = only(synth(config, tmp_path).template, "AWS::RDS::DBCluster")["Properties"]

    assert cluster["ServerlessV2ScalingConfiguration"]["MinCapacity"] == 0
    assert "SecondsUntilAutoPause" in cluster["ServerlessV2ScalingConfiguration"]


@pytest.mark.parametrize(
    ("fixture", "expected"),
    [
        # the console brings the internal ALB to dev (load_balancer: false): its request counts scale too
        ("dev", ["ALBRequestCountPerTarget", "ECSServiceAverageCPUUtilization"]),
        ("dev_without_console", ["ECSServiceAverageCPUUtilization"]),  # no load balancer: no request counts
        ("prod", ["ALBRequestCountPerTarget", "ECSServiceAverageCPUUtilization"]),
    ],
)
def test_autoscaling_on_cpu_and_requests(
    request: pytest.FixtureRequest, fixture: str, expected: list[str]
) -> None:
    synthesized: Synth = request.getfixturevalue(fixture)
    template = synthesized.template
    target = only(template, "AWS::ApplicationAutoScaling::ScalableTarget")["Properties"]
    specifications = {
        spec["PredefinedMetricType"]: spec
        for spec in (
            p["Properties"]["TargetTrackingScalingPolicyConfiguration"]["PredefinedMetricSpecification"]
            for p in resources_of(template, "AWS::ApplicationAutoScaling::ScalingPolicy").values()
        )
    }

    assert (target["MinCapacity"], target["MaxCapacity"]) == (
        synthesized.stack.config.llm_gateway.min_tasks,
        synthesized.stack.config.llm_gateway.max_tasks,
    )
    assert sorted(specifications) == expected
    if "ALBRequestCountPerTarget" in specifications:
        # The label is `app/<lb-name>/<lb-id>/targetgroup/<tg-name>/<tg-id>`: the final part of the load
        # balancer ARN, "/", the target group's full name (Application Auto Scaling API reference,
        # https://docs.aws.amazon.com/autoscaling/application/APIReference/API_PredefinedMetricSpecification.html).
        (group_id,) = resources_of(template, "AWS::ElasticLoadBalancingV2::TargetGroup")
        (listener_id,) = resources_of(template, "AWS::ElasticLoadBalancingV2::Listener")
        label = json.dumps(specifications["ALBRequestCountPerTarget"]["ResourceLabel"])
        assert json.dumps({"Fn::GetAtt": [group_id, "TargetGroupFullName"]}) in label
        assert label.count(json.dumps({"Ref": listener_id})) == 3  # app / name / id of the listener's ALB


def test_logs_are_kms_encrypted_with_retention(template: Template) -> None:
    for group in resources_of(template, "AWS::Logs::LogGroup").values():
        assert "KmsKeyId" in group["Properties"]
        assert group["Properties"]["RetentionInDays"] > 0


def test_cache_only_when_configured(template: Template, prod: Synth) -> None:
    assert not resources_of(template, "AWS::ElastiCache::ReplicationGroup")
    cache = only(prod.template, "AWS::ElastiCache::ReplicationGroup")["Properties"]
    assert cache["TransitEncryptionEnabled"] is True and cache["AtRestEncryptionEnabled"] is True
    assert "REDIS_PASSWORD" in {s["Name"] for s in container(prod.template)["Secrets"]}


def test_cache_size_comes_from_config(tmp_path_factory: pytest.TempPathFactory) -> None:
    """llm_gateway.cache_node_type / cache_replicas size the cache (they were constants once)."""
    config = test_config(
        "dev", llm_gateway={"cache": True, "cache_node_type": "cache.t4g.medium", "cache_replicas": 2}
    )
    cache = only(
        synth(config, tmp_path_factory.mktemp("gateway-cache")).template, "AWS::ElastiCache::ReplicationGroup"
    )
    assert cache["Properties"]["CacheNodeType"] == "cache.t4g.medium"
    assert cache["Properties"]["NumCacheClusters"] == 3  # the primary and two replicas


def test_bootstrap_runs_in_the_vpc_with_the_plan(template: Template, dev: Synth) -> None:
    (resource,) = template.find_resources("Custom::LlmGatewayBootstrap").values()
    function = next(
        f
        for f in resources_of(template, "AWS::Lambda::Function").values()
        if f["Properties"].get("Handler") == "handler.on_event"
    )

    assert "VpcConfig" in function["Properties"]
    assert "MASTER_KEY_SECRET_ARN" in function["Properties"]["Environment"]["Variables"]
    plan_json = cdk.Stack.of(dev.stack).resolve(resource["Properties"]["Plan"])
    assert "Fn::Join" in json.dumps(plan_json)  # secret ARNs are resolved at deploy time
    assert "DependsOn" in resource


def test_bootstrap_plan_has_a_key_per_team_plus_the_default_team_and_the_evaluation_key(
    dev: Synth,
) -> None:
    """docs/spend.md: every identity.teams entry and llm_gateway.default_team is a LiteLLM team with its
    budget; each has a key `<prefix>-team-<team>` with its team's budget and limits, all in the agent's
    key secret; the evaluation key is the only other key, in its own secret, on eval_key_team."""
    from llm_gateway.bootstrap import plan_from_config

    config = dev.stack.config
    gateway = config.llm_gateway
    budgets = {b.team: b for b in gateway.team_budgets}
    plan = plan_from_config(config, agent_secret_id="agent-secret", eval_secret_id="eval-secret")
    teams = [*config.identity.teams, gateway.default_team]

    assert gateway.default_team == "unassigned" and gateway.default_team not in config.identity.teams
    assert [t.team_id for t in plan.teams] == teams
    assert [(t.max_budget, t.rpm_limit, t.tpm_limit) for t in plan.teams] == [
        (budgets[team].max_budget_usd, budgets[team].rpm, budgets[team].tpm) for team in teams
    ]
    assert plan.team_keys is not None
    assert (plan.team_keys.secret_id, plan.team_keys.default_team) == ("agent-secret", "unassigned")
    assert [(k.key_alias, k.team_id, k.secret_id) for k in plan.team_keys.keys] == [
        (f"{config.prefix}-team-{team}", team, "agent-secret") for team in teams
    ]
    for key, team in zip(plan.team_keys.keys, plan.teams, strict=True):  # a key spends its team's budget
        assert (key.max_budget, key.budget_duration, key.rpm_limit, key.tpm_limit) == (
            team.max_budget,
            team.budget_duration,
            team.rpm_limit,
            team.tpm_limit,
        )
    (evaluation,) = plan.keys  # the former single agent key is gone
    assert (evaluation.key_alias, evaluation.team_id, evaluation.secret_id) == (
        f"{config.prefix}-evaluation",
        gateway.eval_key_team,
        "eval-secret",
    )
    assert BootstrapPlan.from_json(plan.to_json()) == plan


def logical_id(template: Template, resource_type: str, **properties: Any) -> str:
    (found,) = template.find_resources(resource_type, {"Properties": properties})
    return str(found)


def test_the_stack_stores_team_keys_in_the_agent_secret_and_the_eval_key_in_its_own(dev: Synth) -> None:
    (resource,) = dev.template.find_resources("Custom::LlmGatewayBootstrap").values()
    # the plan is JSON text joined around the secrets' Refs: read each Ref as its logical id
    parts = cdk.Stack.of(dev.stack).resolve(resource["Properties"]["Plan"])["Fn::Join"][1]
    plan = BootstrapPlan.from_json("".join(p if isinstance(p, str) else p["Ref"] for p in parts))
    agent_secret = logical_id(
        dev.template, "AWS::SecretsManager::Secret", Description=Match.string_like_regexp("of the agent ")
    )
    eval_secret = logical_id(
        dev.template,
        "AWS::SecretsManager::Secret",
        Description=Match.string_like_regexp("of the evaluation "),
    )

    assert plan.team_keys is not None
    assert {plan.team_keys.secret_id, *(k.secret_id for k in plan.team_keys.keys)} == {agent_secret}
    assert [k.team_id for k in plan.team_keys.keys] == [t.team_id for t in plan.teams]
    assert [k.secret_id for k in plan.keys] == [eval_secret]


def test_endpoint_with_the_console_is_the_internal_alb(dev: Synth) -> None:
    """admin_ui brings the internal ALB to dev: clients call it (port 80) and must be allowed to reach ITS
    security group; the tasks admit only the load balancer."""
    endpoint = dev.stack.endpoint
    (alb_id,) = resources_of(dev.template, "AWS::ElasticLoadBalancingV2::LoadBalancer")
    alb_group = logical_id(
        dev.template, "AWS::EC2::SecurityGroup", GroupDescription="LLM gateway load balancer"
    )
    tasks_group = logical_id(
        dev.template, "AWS::EC2::SecurityGroup", GroupDescription=Match.string_like_regexp("^LiteLLM tasks")
    )

    assert cdk.Stack.of(dev.stack).resolve(endpoint.url) == {
        "Fn::Join": ["", ["http://", {"Fn::GetAtt": [alb_id, "DNSName"]}]]
    }
    assert endpoint.agent_key_secret is dev.stack.agent_key_secret
    assert endpoint.eval_key_secret is dev.stack.eval_key_secret
    assert endpoint.security_group is not None
    assert cdk.Stack.of(dev.stack).resolve(endpoint.security_group.security_group_id) == {
        "Fn::GetAtt": [alb_group, "GroupId"]
    }
    assert (
        "SecurityGroupIngress"
        not in resources_of(dev.template, "AWS::EC2::SecurityGroup")[tasks_group]["Properties"]
    )  # no CIDR rule on the tasks: the VPC's clients cannot bypass the load balancer
    into_tasks = [
        (r["Properties"]["SourceSecurityGroupId"], r["Properties"]["FromPort"])
        for r in resources_of(dev.template, "AWS::EC2::SecurityGroupIngress").values()
        if r["Properties"]["GroupId"] == {"Fn::GetAtt": [tasks_group, "GroupId"]}
    ]
    assert into_tasks == [({"Fn::GetAtt": [alb_group, "GroupId"]}, CONTAINER_PORT)]


def test_endpoint_without_the_console_is_the_tasks_themselves(dev_without_console: Synth) -> None:
    stack = dev_without_console.stack
    tasks_group = logical_id(
        dev_without_console.template,
        "AWS::EC2::SecurityGroup",
        GroupDescription=Match.string_like_regexp("^LiteLLM tasks"),
    )

    assert stack.endpoint.url == f"http://{SERVICE_DNS_NAME}.aaf-llm.internal:{CONTAINER_PORT}"
    # no load balancer: clients are admitted to the tasks' own group (the VPC, on the gateway port)
    assert stack.endpoint.security_group is not None
    assert cdk.Stack.of(stack).resolve(stack.endpoint.security_group.security_group_id) == {
        "Fn::GetAtt": [tasks_group, "GroupId"]
    }


EXTERNAL = {
    "external_url": "https://llm.example.com/",
    "external_agent_key_secret_name": "team/llm/agent",
    "external_eval_key_secret_name": "team/llm/eval",
}


def test_external_endpoint_imports_the_key_secrets_by_name() -> None:
    config = test_config("dev", components={"llm_gateway": "external"}, llm_gateway=EXTERNAL)
    scope = cdk.Stack(cdk.App(), "consumer")

    endpoint = external_endpoint(scope, config)

    assert endpoint.url == "https://llm.example.com"
    assert endpoint.security_group is None
    assert endpoint.agent_key_secret.secret_name == "team/llm/agent"
    assert endpoint.eval_key_secret.secret_name == "team/llm/eval"
    assert Template.from_stack(scope).to_json().get("Resources", {}) == {}  # imports create nothing


def test_external_endpoint_without_url_names_the_keys() -> None:
    # refused when the config loads (one line, no traceback), before any stack is built
    with pytest.raises(ConfigError, match=r"llm_gateway\.external_url"):
        test_config("dev", components={"llm_gateway": "external"})


def test_external_endpoint_refuses_self_hosted_mode() -> None:
    with pytest.raises(ConfigError, match="use LlmGatewayStack"):
        external_endpoint(cdk.Stack(cdk.App(), "consumer"), test_config("dev"))


def test_stack_refuses_external_mode(tmp_path: Path) -> None:
    config = test_config("dev", components={"llm_gateway": "external"}, llm_gateway=EXTERNAL)

    with pytest.raises(ConfigError, match="LlmGatewayStack is only for 'self_hosted'"):
        synth(config, tmp_path)


@pytest.mark.parametrize("profile", ["dev", "prod"])
def test_no_unacknowledged_nag_findings_and_no_lint_errors(
    profile: str, request: pytest.FixtureRequest
) -> None:
    synthesized: Synth = request.getfixturevalue(profile)

    report = read_validation_report(synthesized.outdir)
    errors, _ = lint_template(synthesized.outdir / f"{synthesized.stack.stack_name}.template.json")

    assert [f for f in report.unacknowledged if "llm-gateway" in f] == []
    assert errors == ()


def test_langfuse_keys_reach_the_task_as_secrets_and_the_host_as_environment(tmp_path: Path) -> None:
    traced = synth(test_config("dev"), tmp_path, with_langfuse=True).template
    definition = container(traced)

    assert {"LANGFUSE_PUBLIC_KEY", "LANGFUSE_SECRET_KEY"} <= {s["Name"] for s in definition["Secrets"]}
    assert {e["Name"]: e["Value"] for e in definition["Environment"]}[
        "LANGFUSE_HOST"
    ] == "https://langfuse.example.com"


# --- dev entry without a load balancer (llm_gateway.load_balancer: false) ------------------------------


def test_dev_gateway_has_no_load_balancer_but_a_private_dns_name(dev_without_console: Synth) -> None:
    template = dev_without_console.template
    assert not resources_of(template, "AWS::ElasticLoadBalancingV2::LoadBalancer")
    assert not resources_of(template, "AWS::ElasticLoadBalancingV2::TargetGroup")
    (namespace,) = resources_of(template, "AWS::ServiceDiscovery::PrivateDnsNamespace").values()
    assert namespace["Properties"]["Name"] == "aaf-llm.internal"
    (discovery,) = resources_of(template, "AWS::ServiceDiscovery::Service").values()
    assert discovery["Properties"]["Name"] == SERVICE_DNS_NAME
    assert discovery["Properties"]["DnsConfig"]["DnsRecords"] == [{"TTL": 10, "Type": "A"}]
    url = dev_without_console.stack.endpoint.url
    assert url == f"http://{SERVICE_DNS_NAME}.aaf-llm.internal:{CONTAINER_PORT}"
    service = only(template, "AWS::ECS::Service")["Properties"]
    assert "ServiceRegistries" in service and "HealthCheckGracePeriodSeconds" not in service
    assert not [o for o in template.to_json().get("Outputs", {}) if o.startswith("LoadBalancerDnsName")]


def test_dev_tasks_admit_only_the_vpc_on_the_gateway_port(dev_without_console: Synth) -> None:
    (group,) = dev_without_console.template.find_resources(
        "AWS::EC2::SecurityGroup",
        {"Properties": {"GroupDescription": Match.string_like_regexp("from clients")}},
    ).values()
    assert [
        (r["CidrIp"], r["FromPort"], r["ToPort"]) for r in group["Properties"]["SecurityGroupIngress"]
    ] == [("10.40.0.0/16", CONTAINER_PORT, CONTAINER_PORT)]


def test_dev_container_health_decides_what_dns_serves(dev_without_console: Synth, prod: Synth) -> None:
    check = container(dev_without_console.template)["HealthCheck"]
    assert f"http://127.0.0.1:{CONTAINER_PORT}{HEALTH_PATH}" in " ".join(check["Command"])
    assert "HealthCheck" not in container(prod.template)  # behind the ALB its target health decides


def test_bootstrap_reaches_the_tasks_on_the_gateway_port(dev_without_console: Synth) -> None:
    (group,) = dev_without_console.template.find_resources(
        "AWS::EC2::SecurityGroup", {"Properties": {"GroupDescription": Match.string_like_regexp("bootstrap")}}
    ).values()
    ports = {r["FromPort"] for r in group["Properties"]["SecurityGroupEgress"]}
    assert ports == {CONTAINER_PORT, 443}


def test_load_balancer_off_refuses_public_or_https() -> None:
    with pytest.raises(ConfigError, match="load_balancer"):
        test_config(
            "dev",
            llm_gateway={
                "public": True,
                "certificate_arn": "arn:aws:acm:us-east-1:123456789012:certificate/abc-123",
                "hostname": "llm.example.com",
            },
        )


# --- an imported VPC (network.vpc_id): every rule admits the looked-up VPC's own CIDR ---------------------


@pytest.mark.parametrize("admin_ui", [True, False], ids=["console-alb", "cloud-map"])
def test_an_imported_vpcs_own_cidr_is_what_every_rule_admits(tmp_path: Path, admin_ui: bool) -> None:
    """With the console: the ALB's client and VPC-origin ingress and the bootstrap's egress; without: the
    tasks' client ingress and the bootstrap's egress. None may use network.cidr, which is not that VPC's."""
    config = test_config(
        "dev",
        environment={"account": network_tests.ACCOUNT, "region": network_tests.REGION},
        network={"vpc_id": network_tests.IMPORTED_VPC_ID},
        llm_gateway={"admin_ui": admin_ui},
    )
    template = synth(config, tmp_path, gates=False, context=network_tests.imported_vpc_context()).template
    rules = [
        rule
        for group in resources_of(template, "AWS::EC2::SecurityGroup").values()
        for key in ("SecurityGroupIngress", "SecurityGroupEgress")
        for rule in group["Properties"].get(key, [])
    ] + [r["Properties"] for r in resources_of(template, "AWS::EC2::SecurityGroupIngress").values()]
    cidrs = {
        (rule["CidrIp"], rule["FromPort"]) for rule in rules if rule.get("CidrIp") not in (None, "0.0.0.0/0")
    }

    imported = network_tests.IMPORTED_CIDR
    expected = (
        {(imported, 80)} if admin_ui else {(imported, CONTAINER_PORT)}
    )  # ALB (clients + origin) / tasks
    assert cidrs == expected
    assert config.network.cidr not in json.dumps(template.to_json())


# --- drift with the Langfuse copy: TLS parameter group, engine version, access-log versions -------------


def test_prod_aurora_cluster_requires_tls(prod: Synth) -> None:
    (group,) = resources_of(prod.template, "AWS::RDS::DBClusterParameterGroup").values()
    assert group["Properties"]["Parameters"] == {"rds.force_ssl": "1"}
    (group_id,) = resources_of(prod.template, "AWS::RDS::DBClusterParameterGroup")
    (cluster,) = resources_of(prod.template, "AWS::RDS::DBCluster").values()
    assert cluster["Properties"]["DBClusterParameterGroupName"] == {"Ref": group_id}


def test_database_engine_is_the_shared_version(template: Template, prod: Synth) -> None:
    from stacks.constructs.database import AURORA_POSTGRES_VERSION, POSTGRES_VERSION

    instance = only(template, "AWS::RDS::DBInstance")["Properties"]
    assert instance["EngineVersion"] == POSTGRES_VERSION.postgres_full_version
    cluster = only(prod.template, "AWS::RDS::DBCluster")["Properties"]
    assert cluster["EngineVersion"] == AURORA_POSTGRES_VERSION.aurora_postgres_full_version


@pytest.fixture(scope="module")
def prod_in_region(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """Access logs need the region's ELB log-delivery principal: only a synth with a region has them."""
    config = test_config("prod", environment={"account": "123456789012", "region": "us-east-1"})
    return synth(config, tmp_path_factory.mktemp("gateway-prod-region"), gates=False)


def test_access_log_bucket_expires_old_versions(prod_in_region: Synth) -> None:
    buckets = [
        b["Properties"]
        for b in resources_of(prod_in_region.template, "AWS::S3::Bucket").values()
        if b["Properties"].get("VersioningConfiguration", {}).get("Status") == "Enabled"
    ]
    (bucket,) = buckets
    (rule,) = bucket["LifecycleConfiguration"]["Rules"]
    assert rule["ExpirationInDays"] == prod_in_region.stack.config.llm_gateway.log_retention_days
    assert rule["NoncurrentVersionExpiration"]["NoncurrentDays"] == 1
    assert rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"] == 1


def test_bootstrap_package_imports_as_the_lambda_runtime_loads_it(dev: Synth) -> None:
    """The asset is the whole package: `handler.on_event` imports with only the asset on sys.path (as the
    Lambda runtime's /var/task), the shared settings helper included."""
    function = next(
        f
        for f in resources_of(dev.template, "AWS::Lambda::Function").values()
        if f["Properties"].get("Handler") == "handler.on_event"
    )
    package = dev.outdir / f"asset.{function['Properties']['Code']['S3Key'].split('.')[0]}"
    assert {"handler.py", "functions/common.py", "llm_gateway/bootstrap.py"} <= {
        str(p.relative_to(package)) for p in package.rglob("*.py")
    }
    probe = (
        "import sys; sys.path.insert(0, sys.argv[1]); import handler, functions.common as c; "
        "assert handler.MissingSettingError is c.MissingSettingError; "
        "assert c.__file__.startswith(sys.argv[1]), c.__file__"
    )
    result = subprocess.run(
        [sys.executable, "-I", "-c", probe, str(package)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr

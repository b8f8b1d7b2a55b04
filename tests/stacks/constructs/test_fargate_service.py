"""FargateService and LoadBalancer: logs to an encrypted group, private tasks without public IPs, rollback,
tags propagated, secrets never in the environment, autoscaling, an internal ALB with access logs and a
closed listener, and exactly the acknowledgements whose findings occur."""

from __future__ import annotations

import json
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_secretsmanager as secretsmanager

from stacks.constructs import BuildingBlock
from stacks.constructs.fargate_service import (
    ContainerSpec,
    FargateService,
    LoadBalancer,
    SecretInEnvironmentError,
    ServiceOptions,
    TaskSize,
    fargate_cluster,
)
from stacks.constructs.log_bucket import LogBucket
from stacks.constructs.secret import acknowledge_no_rotation
from tests.stacks.constructs import ACCOUNT_REGION, Synthesized, cdk_logical_id, key, small_vpc, synth_blocks

BLOCKS: dict[str, BuildingBlock] = {}
SERVICES = ec2.SubnetSelection(subnet_group_name="services")
HTTP_ONLY = "Internal test load balancer without a certificate: plain HTTP stays inside the VPC."


def _build(stack: cdk.Stack) -> None:
    vpc = small_vpc(stack)
    data_key = key(stack)
    cluster = fargate_cluster(
        stack,
        "Cluster",
        vpc=vpc,
        capacity_providers=True,
        container_insights=False,
        insights_setting="x.insights",
    )
    secret = secretsmanager.Secret(stack, "Password", encryption_key=data_key)
    acknowledge_no_rotation(None, secret, "A stand-in secret of the service tests, never deployed anywhere.")
    tasks = ec2.SecurityGroup(stack, "TasksSecurityGroup", vpc=vpc)
    alb_group = ec2.SecurityGroup(stack, "AlbSecurityGroup", vpc=vpc, allow_all_outbound=False)
    targets = elbv2.ApplicationTargetGroup(
        stack,
        "Targets",
        vpc=vpc,
        port=8080,
        protocol=elbv2.ApplicationProtocol.HTTP,
        target_type=elbv2.TargetType.IP,
    )
    logs = LogBucket(stack, "AccessLogs", expire_days=14, retain=False).bucket
    BLOCKS["alb"] = LoadBalancer(
        stack,
        "LoadBalancer",
        vpc=vpc,
        subnets=SERVICES,
        security_group=alb_group,
        idle_timeout_seconds=90,
        deletion_protection=False,
        access_logs=logs,
        default_target_group=targets,
        plain_http_reason=HTTP_ONLY,
        no_waf_reason="Internal test load balancer reached only from inside the VPC by authenticated callers.",
    )
    web = FargateService(
        stack,
        "WebService",
        task_id="WebTask",
        log_group_id="WebLogs",
        cluster=cluster,
        size=TaskSize(cpu=512, memory_mib=1024, arm64=True),
        container=ContainerSpec(
            name="web",
            image=ecs.ContainerImage.from_registry("public.ecr.aws/example/web:1"),
            environment={"DATABASE_HOST": "db.internal"},
            secrets={"DATABASE_PASSWORD": ecs.Secret.from_secrets_manager(secret)},
            port_mappings=(ecs.PortMapping(container_port=8080),),
        ),
        options=ServiceOptions(
            desired_count=2, capacity_provider="FARGATE_SPOT", health_check_grace_seconds=60
        ),
        subnets=SERVICES,
        security_groups=[tasks],
        key=data_key,
        log_retention_days=14,
        removal_policy=cdk.RemovalPolicy.DESTROY,
    )
    web.service.attach_to_application_target_group(targets)
    web.autoscale(
        min_tasks=2, max_tasks=4, cpu_percent=60, requests_per_task_per_minute=600, target_group=targets
    )
    BLOCKS["web"] = web
    BLOCKS["job"] = FargateService(
        stack,
        "JobService",
        task_id="JobTask",
        log_group_id="JobLogs",
        cluster=cluster,
        size=TaskSize(cpu=256, memory_mib=512),
        container=ContainerSpec(
            name="job", image=ecs.ContainerImage.from_registry("public.ecr.aws/example/job:1")
        ),
        options=ServiceOptions(
            desired_count=1, capacity_provider=None, min_healthy_percent=0, max_healthy_percent=100
        ),
        subnets=SERVICES,
        security_groups=[tasks],
        key=data_key,
        log_retention_days=30,
        removal_policy=cdk.RemovalPolicy.RETAIN,
    )


@pytest.fixture(scope="module")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    # A region-specific synth: access logs need the region's ELB log-delivery principal.
    return synth_blocks(tmp_path_factory.mktemp("fargate"), _build, env=ACCOUNT_REGION)


def resource(synthesized: Synthesized, *path: str) -> dict[str, Any]:
    return dict(synthesized.template.to_json()["Resources"][cdk_logical_id(*path)])


def test_ids_are_those_of_the_plain_constructs(synthesized: Synthesized) -> None:
    assert resource(synthesized, "WebService", "Service")["Type"] == "AWS::ECS::Service"
    assert resource(synthesized, "WebTask", "Resource")["Type"] == "AWS::ECS::TaskDefinition"
    assert resource(synthesized, "WebLogs", "Resource")["Type"] == "AWS::Logs::LogGroup"
    assert (
        resource(synthesized, "LoadBalancer", "Resource")["Type"]
        == "AWS::ElasticLoadBalancingV2::LoadBalancer"
    )
    assert (
        resource(synthesized, "LoadBalancer", "Http", "Resource")["Type"]
        == "AWS::ElasticLoadBalancingV2::Listener"
    )


def test_task_size_architecture_and_encrypted_logs(synthesized: Synthesized) -> None:
    task = resource(synthesized, "WebTask", "Resource")["Properties"]
    assert (task["Cpu"], task["Memory"], task["RuntimePlatform"]["CpuArchitecture"]) == (
        "512",
        "1024",
        "ARM64",
    )
    job = resource(synthesized, "JobTask", "Resource")["Properties"]
    assert job["RuntimePlatform"]["CpuArchitecture"] == "X86_64"
    (key_id,) = synthesized.resources("AWS::KMS::Key")
    logs = task["ContainerDefinitions"][0]["LogConfiguration"]
    assert logs["LogDriver"] == "awslogs" and logs["Options"]["awslogs-stream-prefix"] == "web"
    assert logs["Options"]["awslogs-group"] == {"Ref": cdk_logical_id("WebLogs", "Resource")}
    group = resource(synthesized, "WebLogs", "Resource")
    assert group["Properties"]["KmsKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}
    assert group["Properties"]["RetentionInDays"] == 14 and group["DeletionPolicy"] == "Delete"
    assert resource(synthesized, "JobLogs", "Resource")["DeletionPolicy"] == "Retain"


def test_secrets_are_ecs_secrets(synthesized: Synthesized) -> None:
    (container,) = resource(synthesized, "WebTask", "Resource")["Properties"]["ContainerDefinitions"]
    assert [s["Name"] for s in container["Secrets"]] == ["DATABASE_PASSWORD"]
    assert [e["Name"] for e in container["Environment"]] == ["DATABASE_HOST"]


@pytest.mark.parametrize("name", ["DATABASE_PASSWORD", "API_KEY", "AUTH_TOKEN", "LITELLM_MASTER_KEY", "salt"])
def test_secret_looking_environment_is_refused(name: str) -> None:
    with pytest.raises(SecretInEnvironmentError, match="look like secrets"):
        ContainerSpec(name="c", image=ecs.ContainerImage.from_registry("x"), environment={name: "v"})


def test_services_are_private_roll_back_and_propagate_tags(synthesized: Synthesized) -> None:
    for name in ("WebService", "JobService"):
        service = resource(synthesized, name, "Service")["Properties"]
        assert service["NetworkConfiguration"]["AwsvpcConfiguration"]["AssignPublicIp"] == "DISABLED"
        assert service["DeploymentConfiguration"]["DeploymentCircuitBreaker"] == {
            "Enable": True,
            "Rollback": True,
        }
        assert service["PropagateTags"] == "SERVICE" and service["EnableExecuteCommand"] is False
    web = resource(synthesized, "WebService", "Service")["Properties"]
    assert web["CapacityProviderStrategy"] == [{"CapacityProvider": "FARGATE_SPOT", "Weight": 1}]
    assert (web["DesiredCount"], web["HealthCheckGracePeriodSeconds"]) == (2, 60)
    job = resource(synthesized, "JobService", "Service")["Properties"]
    assert job["LaunchType"] == "FARGATE" and "CapacityProviderStrategy" not in job
    assert job["DeploymentConfiguration"]["MinimumHealthyPercent"] == 0
    assert job["DeploymentConfiguration"]["MaximumPercent"] == 100


def test_autoscaling_tracks_cpu_and_requests(synthesized: Synthesized) -> None:
    (target,) = synthesized.resources("AWS::ApplicationAutoScaling::ScalableTarget").values()
    assert (target["Properties"]["MinCapacity"], target["Properties"]["MaxCapacity"]) == (2, 4)
    policies = {
        p["Properties"]["TargetTrackingScalingPolicyConfiguration"]["PredefinedMetricSpecification"][
            "PredefinedMetricType"
        ]: p["Properties"]["TargetTrackingScalingPolicyConfiguration"]
        for p in synthesized.resources("AWS::ApplicationAutoScaling::ScalingPolicy").values()
    }
    assert policies["ECSServiceAverageCPUUtilization"]["TargetValue"] == 60
    assert policies["ALBRequestCountPerTarget"]["TargetValue"] == 600


def test_load_balancer_is_internal_logs_access_and_drops_invalid_headers(synthesized: Synthesized) -> None:
    properties = resource(synthesized, "LoadBalancer", "Resource")["Properties"]
    assert properties["Scheme"] == "internal"
    attributes = {a["Key"]: a["Value"] for a in properties["LoadBalancerAttributes"]}
    assert attributes["access_logs.s3.enabled"] == "true" and attributes["access_logs.s3.prefix"] == "alb"
    assert attributes["access_logs.s3.bucket"] == {"Ref": cdk_logical_id("AccessLogs", "Resource")}
    assert attributes["routing.http.drop_invalid_header_fields.enabled"] == "true"
    assert attributes["idle_timeout.timeout_seconds"] == "90"
    assert attributes["deletion_protection.enabled"] == "false"


def test_listener_is_closed_and_forwards_to_the_default_group(synthesized: Synthesized) -> None:
    listener = resource(synthesized, "LoadBalancer", "Http", "Resource")["Properties"]
    assert (listener["Port"], listener["Protocol"]) == (80, "HTTP")
    assert listener["DefaultActions"][0]["TargetGroupArn"] == {"Ref": cdk_logical_id("Targets", "Resource")}
    alb_group = resource(synthesized, "AlbSecurityGroup", "Resource")["Properties"]
    assert "0.0.0.0/0" not in json.dumps(alb_group.get("SecurityGroupIngress", []))


def test_acknowledgements_are_exactly_the_findings_that_occur(synthesized: Synthesized) -> None:
    tasks = [block.task for block in BLOCKS.values() if isinstance(block, FargateService)]
    assert synthesized.unused([*BLOCKS.values(), *tasks]) == []
    paths = ("/WebService", "/WebTask", "/JobService", "/JobTask", "/LoadBalancer", "/Cluster")
    assert [f for f in synthesized.open_findings() if any(p in f for p in paths)] == []
    web, job = BLOCKS["web"], BLOCKS["job"]
    assert isinstance(web, FargateService) and isinstance(job, FargateService)
    assert {a.finding for a in web.task.acknowledgements} == {"AwsSolutions-ECS2"}
    assert job.task.acknowledgements == []  # no environment, a public image: nothing to acknowledge
    assert web.acknowledgements == job.acknowledgements == []
    alb = {a.finding for a in BLOCKS["alb"].acknowledgements}
    assert "AwsSolutions-ELB2" not in alb and "NIST.800.53.R5-ALBWAFEnabled" in alb


def test_access_logs_are_required_where_the_region_is_known() -> None:
    stack = cdk.Stack(cdk.App(), "s", env=ACCOUNT_REGION)
    vpc = small_vpc(stack)
    with pytest.raises(ValueError, match="access logs are required"):
        LoadBalancer(
            stack,
            "LoadBalancer",
            vpc=vpc,
            subnets=SERVICES,
            security_group=ec2.SecurityGroup(stack, "G", vpc=vpc),
            idle_timeout_seconds=60,
            deletion_protection=False,
            access_logs=None,
            plain_http_reason=HTTP_ONLY,
        )


def test_https_listener_with_a_certificate_and_no_http_reason_needed() -> None:
    stack = cdk.Stack(cdk.App(), "s")  # environment-agnostic: no access logs possible
    vpc = small_vpc(stack)
    block = LoadBalancer(
        stack,
        "LoadBalancer",
        vpc=vpc,
        subnets=SERVICES,
        security_group=ec2.SecurityGroup(stack, "G", vpc=vpc),
        idle_timeout_seconds=60,
        deletion_protection=True,
        access_logs=None,
        certificate_arn="arn:aws:acm:us-east-1:123456789012:certificate/abc",
    )
    block.listener.add_action("Fixed", action=elbv2.ListenerAction.fixed_response(200))
    listener = next(
        iter(
            cdk.assertions.Template.from_stack(stack)
            .find_resources("AWS::ElasticLoadBalancingV2::Listener")
            .values()
        )
    )
    assert (listener["Properties"]["Port"], listener["Properties"]["Protocol"]) == (443, "HTTPS")
    assert (
        listener["Properties"]["SslPolicy"] == "ELBSecurityPolicy-TLS13-1-2-2021-06"
    )  # SslPolicy.RECOMMENDED_TLS
    assert {a.finding for a in block.acknowledgements} == {
        "AwsSolutions-ELB2",
        "NIST.800.53.R5-ELBLoggingEnabled",
    }
    with pytest.raises(ValueError, match="plain_http_reason"):
        LoadBalancer(
            stack,
            "Other",
            vpc=vpc,
            subnets=SERVICES,
            security_group=ec2.SecurityGroup(stack, "H", vpc=vpc),
            idle_timeout_seconds=60,
            deletion_protection=True,
            access_logs=None,
        )

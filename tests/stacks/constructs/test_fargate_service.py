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
from tests.stacks.constructs import (
    ACCOUNT_REGION,
    Synthesized,
    acknowledgement_table,
    assert_acknowledged_as_pinned,
    cdk_logical_id,
    key,
    small_vpc,
    synth_blocks,
)
from tests.stacks.constructs.acknowledgements import ACKNOWLEDGEMENTS

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
    fargate_cluster(  # insights on, no capacity providers: nothing to acknowledge
        stack,
        "InsightsCluster",
        vpc=vpc,
        capacity_providers=False,
        container_insights=True,
        insights_setting="y.insights",
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
    job = FargateService(
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
    # A target group without a request target: CPU tracking only.
    job.autoscale(min_tasks=1, max_tasks=2, cpu_percent=70, target_group=targets)
    BLOCKS["job"] = job


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
    message = rf"^container 'c': \['{name}'\] look like secrets; pass them as ECS secrets, not environment$"
    with pytest.raises(SecretInEnvironmentError, match=message):
        ContainerSpec(name="c", image=ecs.ContainerImage.from_registry("x"), environment={name: "v"})


def test_a_name_in_both_environment_and_secrets_is_refused() -> None:
    secret = ecs.Secret.from_secrets_manager(
        secretsmanager.Secret.from_secret_name_v2(cdk.Stack(cdk.App(), "s"), "S", "name")
    )
    with pytest.raises(
        SecretInEnvironmentError,
        match=r"^container 'c': \['DATABASE_HOST'\] are both environment and secrets$",
    ):
        ContainerSpec(
            name="c",
            image=ecs.ContainerImage.from_registry("x"),
            environment={"DATABASE_HOST": "db"},
            secrets={"DATABASE_HOST": secret},
        )


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


def _scaling(synthesized: Synthesized, service: str) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """The service's scalable target and its policies by construct id ("Cpu", "Requests")."""
    target_path = (service, "TaskCount", "Target")
    target = resource(synthesized, *target_path, "Resource")["Properties"]
    policies = {
        name: resource(synthesized, *target_path, name, "Resource")["Properties"][
            "TargetTrackingScalingPolicyConfiguration"
        ]
        for name in ("Cpu", "Requests")
        if cdk_logical_id(*target_path, name, "Resource") in synthesized.template.to_json()["Resources"]
    }
    return target, policies


def test_autoscaling_tracks_cpu_and_requests(synthesized: Synthesized) -> None:
    target, policies = _scaling(synthesized, "WebService")
    assert (target["MinCapacity"], target["MaxCapacity"]) == (2, 4)
    assert set(policies) == {"Cpu", "Requests"}
    cpu, requests = policies["Cpu"], policies["Requests"]
    assert cpu["PredefinedMetricSpecification"]["PredefinedMetricType"] == "ECSServiceAverageCPUUtilization"
    assert requests["PredefinedMetricSpecification"]["PredefinedMetricType"] == "ALBRequestCountPerTarget"
    assert (cpu["TargetValue"], requests["TargetValue"]) == (60, 600)
    for policy in (cpu, requests):  # slow to scale in, quick to scale out
        assert (policy["ScaleInCooldown"], policy["ScaleOutCooldown"]) == (300, 60)
    (job_target, job_policies) = _scaling(synthesized, "JobService")
    assert (job_target["MinCapacity"], job_target["MaxCapacity"]) == (1, 2)
    assert set(job_policies) == {"Cpu"}  # a target group alone adds no request tracking
    assert job_policies["Cpu"]["TargetValue"] == 70


def test_clusters_follow_insights_and_capacity_provider_options(synthesized: Synthesized) -> None:
    clusters = synthesized.resources("AWS::ECS::Cluster")
    assert clusters[cdk_logical_id("Cluster", "Resource")]["Properties"]["ClusterSettings"] == [
        {"Name": "containerInsights", "Value": "disabled"}
    ]
    assert clusters[cdk_logical_id("InsightsCluster", "Resource")]["Properties"]["ClusterSettings"] == [
        {"Name": "containerInsights", "Value": "enabled"}
    ]
    (association,) = synthesized.resources("AWS::ECS::ClusterCapacityProviderAssociations").values()
    assert association["Properties"]["Cluster"] == {"Ref": cdk_logical_id("Cluster", "Resource")}
    assert set(association["Properties"]["CapacityProviders"]) == {"FARGATE", "FARGATE_SPOT"}
    reported = synthesized.suppressed_reasons()
    assert ("blocks/InsightsCluster", "AwsSolutions-ECS4") not in reported


def test_load_balancer_is_internal_logs_access_and_drops_invalid_headers(synthesized: Synthesized) -> None:
    properties = resource(synthesized, "LoadBalancer", "Resource")["Properties"]
    assert properties["Scheme"] == "internal"
    assert len(properties["Subnets"]) == 2 and all(
        "Vpcservices" in json.dumps(x) for x in properties["Subnets"]
    )
    assert properties["SecurityGroups"] == [
        {"Fn::GetAtt": [cdk_logical_id("AlbSecurityGroup", "Resource"), "GroupId"]}
    ]
    attributes = {a["Key"]: a["Value"] for a in properties["LoadBalancerAttributes"]}
    assert attributes["access_logs.s3.enabled"] == "true" and attributes["access_logs.s3.prefix"] == "alb"
    assert attributes["access_logs.s3.bucket"] == {"Ref": cdk_logical_id("AccessLogs", "Resource")}
    assert attributes["routing.http.drop_invalid_header_fields.enabled"] == "true"
    assert attributes["idle_timeout.timeout_seconds"] == "90"
    assert attributes["deletion_protection.enabled"] == "false"


def test_listener_is_closed_and_forwards_to_the_default_group(synthesized: Synthesized) -> None:
    listener = resource(synthesized, "LoadBalancer", "Http", "Resource")["Properties"]
    assert (listener["Port"], listener["Protocol"]) == (80, "HTTP")
    alb = BLOCKS["alb"]
    assert isinstance(alb, LoadBalancer) and alb.port == 80
    assert listener["DefaultActions"][0]["TargetGroupArn"] == {"Ref": cdk_logical_id("Targets", "Resource")}
    alb_group = resource(synthesized, "AlbSecurityGroup", "Resource")["Properties"]
    assert "0.0.0.0/0" not in json.dumps(alb_group.get("SecurityGroupIngress", []))


def test_acknowledgements_are_exactly_the_findings_that_occur(synthesized: Synthesized) -> None:
    tasks = [block.task for block in BLOCKS.values() if isinstance(block, FargateService)]
    assert_acknowledged_as_pinned(
        synthesized, [*BLOCKS.values(), *tasks], ACKNOWLEDGEMENTS["fargate_service"]
    )
    # The cluster function acknowledges Container Insights itself (no block records it): the report does.
    assert synthesized.suppressed_reasons()[("blocks/Cluster", "AwsSolutions-ECS4")] == (
        "Container Insights follows x.insights (on in prod, off in dev to save its custom-metric cost); the "
        "dashboard uses the free AWS/ECS service metrics."
    )
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
    with pytest.raises(
        ValueError, match=r"^LoadBalancer: access logs are required when the region is known$"
    ):
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
    template = cdk.assertions.Template.from_stack(stack)
    assert cdk_logical_id("LoadBalancer", "Https", "Resource") in template.find_resources(
        "AWS::ElasticLoadBalancingV2::Listener"
    )
    assert block.port == 443
    # open=False: nothing is admitted to the balancer's group by the listener itself.
    group = template.find_resources("AWS::EC2::SecurityGroup")[cdk_logical_id("G", "Resource")]
    assert "SecurityGroupIngress" not in group["Properties"]
    assert not template.find_resources("AWS::EC2::SecurityGroupIngress")
    attributes = {
        a["Key"]: a["Value"]
        for a in template.find_resources("AWS::ElasticLoadBalancingV2::LoadBalancer")[
            cdk_logical_id("LoadBalancer", "Resource")
        ]["Properties"]["LoadBalancerAttributes"]
    }
    assert attributes["deletion_protection.enabled"] == "true" and "access_logs.s3.enabled" not in attributes
    assert (
        listener["Properties"]["SslPolicy"] == "ELBSecurityPolicy-TLS13-1-2-2021-06"
    )  # SslPolicy.RECOMMENDED_TLS
    assert acknowledgement_table([block]) == ACKNOWLEDGEMENTS["load_balancer_without_region"]
    with pytest.raises(ValueError, match=r"^Other: a plain-HTTP listener needs plain_http_reason$"):
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

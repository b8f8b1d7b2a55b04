"""FargateTask: the ids a plain task definition and log group had, one container logging to the encrypted
group, and exactly the acknowledgements whose findings occur (ECS2 only with an environment, the ECR
wildcard only for a private image)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_secretsmanager as secretsmanager

from stacks.constructs import BuildingBlock
from stacks.constructs.fargate_service import ContainerSpec, TaskSize
from stacks.constructs.fargate_task import FargateTask
from stacks.constructs.secret import acknowledge_no_rotation
from tests.stacks.constructs import (
    Synthesized,
    assert_acknowledged_as_pinned,
    cdk_logical_id,
    key,
    synth_blocks,
)
from tests.stacks.constructs.acknowledgements import ACKNOWLEDGEMENTS

BLOCKS: dict[str, BuildingBlock] = {}


def _build(stack: cdk.Stack, context: Path) -> None:
    data_key = key(stack)
    secret = secretsmanager.Secret(stack, "Password", encryption_key=data_key)
    acknowledge_no_rotation(None, secret, "A stand-in secret of the task tests, never deployed anywhere.")
    BLOCKS["job"] = FargateTask(
        stack,
        "Task",
        log_group_id="JobLogs",
        size=TaskSize(cpu=512, memory_mib=1024, arm64=True),
        container=ContainerSpec(
            name="job",
            # A CDK image asset (private ECR): only hashed and copied at synth, no Docker.
            image=ecs.ContainerImage.from_asset(str(context)),
            command=("run", "--fast"),
            environment={"MODE": "online"},
            secrets={"DB_PASSWORD": ecs.Secret.from_secrets_manager(secret)},
            readonly_root_filesystem=False,
            port_mappings=(ecs.PortMapping(container_port=8080),),
            health_check=ecs.HealthCheck(command=["CMD", "true"], interval=cdk.Duration.seconds(30)),
            user="1000:1000",
            ulimits=(ecs.Ulimit(name=ecs.UlimitName.NOFILE, soft_limit=65536, hard_limit=65536),),
            stop_timeout=cdk.Duration.seconds(30),
            stream_prefix="batch",
        ),
        key=data_key,
        log_retention_days=14,
        removal_policy=cdk.RemovalPolicy.DESTROY,
    )
    BLOCKS["public"] = FargateTask(
        stack,
        "PublicTask",
        log_group_id="PublicLogs",
        size=TaskSize(cpu=256, memory_mib=512),
        container=ContainerSpec(
            name="web", image=ecs.ContainerImage.from_registry("public.ecr.aws/nginx/nginx:1")
        ),
        key=data_key,
        log_retention_days=7,
        removal_policy=cdk.RemovalPolicy.DESTROY,
    )


@pytest.fixture(scope="module")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    context = tmp_path_factory.mktemp("image")
    (context / "Dockerfile").write_text("FROM scratch\n", encoding="utf-8")
    return synth_blocks(tmp_path_factory.mktemp("fargate-task"), lambda stack: _build(stack, context))


def _task(synthesized: Synthesized, construct_id: str) -> dict[str, Any]:
    return dict(synthesized.resources("AWS::ECS::TaskDefinition")[cdk_logical_id(construct_id, "Resource")])


def test_task_definition_roles_and_log_group_keep_the_ids_of_the_plain_constructs(
    synthesized: Synthesized,
) -> None:
    # A former `FargateTaskDefinition(stack, "Task")` and `LogGroup(stack, "JobLogs")`.
    assert cdk_logical_id("Task", "Resource") in synthesized.resources("AWS::ECS::TaskDefinition")
    roles = synthesized.resources("AWS::IAM::Role")
    assert cdk_logical_id("Task", "TaskRole", "Resource") in roles
    assert cdk_logical_id("Task", "ExecutionRole", "Resource") in roles
    assert cdk_logical_id("JobLogs", "Resource") in synthesized.resources("AWS::Logs::LogGroup")


def test_one_container_logs_to_the_encrypted_group_with_retention(synthesized: Synthesized) -> None:
    task = _task(synthesized, "Task")["Properties"]
    assert (task["Cpu"], task["Memory"]) == ("512", "1024")
    assert task["RuntimePlatform"] == {"CpuArchitecture": "ARM64", "OperatingSystemFamily": "LINUX"}
    (container,) = task["ContainerDefinitions"]
    assert container["Name"] == "job"
    assert container["Command"] == ["run", "--fast"]
    assert container["ReadonlyRootFilesystem"] is False
    assert container["Environment"] == [{"Name": "MODE", "Value": "online"}]
    assert [s["Name"] for s in container["Secrets"]] == ["DB_PASSWORD"]
    options = container["LogConfiguration"]
    assert options["LogDriver"] == "awslogs"
    assert options["Options"]["awslogs-stream-prefix"] == "batch"  # the spec's prefix wins over the name
    assert container["PortMappings"] == [{"ContainerPort": 8080, "Protocol": "tcp"}]
    assert (
        container["HealthCheck"]["Command"] == ["CMD", "true"] and container["HealthCheck"]["Interval"] == 30
    )
    assert (container["User"], container["StopTimeout"]) == ("1000:1000", 30)
    assert container["Ulimits"] == [{"HardLimit": 65536, "Name": "nofile", "SoftLimit": 65536}]
    assert options["Options"]["awslogs-group"] == {"Ref": cdk_logical_id("JobLogs", "Resource")}
    group = synthesized.resources("AWS::Logs::LogGroup")[cdk_logical_id("JobLogs", "Resource")]
    assert group["Properties"]["RetentionInDays"] == 14 and group["DeletionPolicy"] == "Delete"
    assert group["Properties"]["KmsKeyId"] == {"Fn::GetAtt": [cdk_logical_id("Key", "Resource"), "Arn"]}


def test_a_task_without_options_writes_none_of_them(synthesized: Synthesized) -> None:
    task = _task(synthesized, "PublicTask")["Properties"]
    assert (task["Cpu"], task["Memory"]) == ("256", "512")
    assert task["RuntimePlatform"] == {"CpuArchitecture": "X86_64", "OperatingSystemFamily": "LINUX"}
    (container,) = task["ContainerDefinitions"]
    absent = ("Command", "Environment", "Secrets", "PortMappings", "HealthCheck", "User", "Ulimits")
    assert [name for name in absent if name in container] == []
    assert "ReadonlyRootFilesystem" not in container and "StopTimeout" not in container
    assert container["LogConfiguration"]["Options"]["awslogs-stream-prefix"] == "web"  # the container name
    group = synthesized.resources("AWS::Logs::LogGroup")[cdk_logical_id("PublicLogs", "Resource")]
    assert group["Properties"]["RetentionInDays"] == 7


def test_acknowledgements_match_the_findings_that_occur(synthesized: Synthesized) -> None:
    assert_acknowledged_as_pinned(synthesized, BLOCKS.values(), ACKNOWLEDGEMENTS["fargate_task"])
    assert synthesized.open_findings() == []
    assert synthesized.unused(BLOCKS.values()) == []
    job = {a.finding for a in BLOCKS["job"].acknowledgements}
    assert job == {"AwsSolutions-ECS2", "AwsSolutions-IAM5[Resource::*]"}
    # A public registry image needs no ECR token and has no environment: nothing to acknowledge.
    assert BLOCKS["public"].acknowledgements == []


def test_the_ecr_acknowledgement_sits_on_the_execution_role_only(synthesized: Synthesized) -> None:
    (ecr,) = [a for a in BLOCKS["job"].acknowledgements if a.finding.startswith("AwsSolutions-IAM5")]
    assert ecr.path == "blocks/Task/Default/ExecutionRole"
    assert "ecr:GetAuthorizationToken" in ecr.reason

"""A Fargate task definition with its one container and the container's encrypted log group.

The part every Fargate workload of the foundation shares, with or without a service: the evaluation
stack's scheduled job runs it directly (EventBridge Scheduler), a `FargateService` runs it as a service.
One container (`ContainerSpec`, which refuses secret-looking environment names), logging through the
`awslogs` driver to a KMS-encrypted group with bounded retention, on the CPU architecture `TaskSize` names.

Acknowledged here, because this block causes them:
- AwsSolutions-ECS2 (environment variables) when the container has any: the environment holds only
  non-secret settings, secrets are ECS secrets read by the execution role at task start
  (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/secrets-envvar-secrets-manager.html).
- AwsSolutions-IAM5[Resource::*] on the execution role when the image is private (a CDK image asset or
  an ECR repository): pulling it needs ecr:GetAuthorizationToken, which has no resource type
  (`stacks.compliance.ECR_PULL_ACKNOWLEDGEMENTS`).

Logical ids: the task definition is the child `Default` of a construct created with the task's old id,
and the log group is created beside it in `scope` as `log_group_id`, so `FargateTask(stack, "Task",
log_group_id="JobLogs", ...)` keeps the ids a plain `FargateTaskDefinition(stack, "Task")` and
`LogGroup(stack, "JobLogs")` had (CDK hides "Default": aws-cdk-lib core/lib/private/uniqueid.ts, HIDDEN_ID).
"""

from __future__ import annotations

import logging

import aws_cdk as cdk
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from constructs import Construct

from stacks.base import retention
from stacks.compliance import ECR_PULL_ACKNOWLEDGEMENTS
from stacks.constructs import BuildingBlock
from stacks.constructs.fargate_service import ContainerSpec, TaskSize

logger = logging.getLogger(__name__)

ENVIRONMENT_REASON = (
    "The environment holds only non-secret settings (hosts, names, flags); every secret is an ECS secret "
    "read from Secrets Manager at start, and the block refuses environment names that look like secrets."
)
# Images ECS pulls from a private ECR repository with the execution role (CDK assets are ECR images too).
PRIVATE_IMAGE_TYPES = (ecs.AssetImage, ecs.EcrImage)


class FargateTask(BuildingBlock):
    """One container's task definition (child `Default`) and its log group (`log_group_id`, in `scope`).

    Args:
        scope: the parent; the log group is created here as `log_group_id`.
        construct_id: the task definition's id (keeps the logical ids of a former `FargateTaskDefinition`).
        log_group_id: the log group's id.
        size: CPU, memory and architecture.
        container: the container (its log driver is this block's; stream prefix: `container.stream_prefix`
            or the container name).
        key: the customer-managed key of the log group.
        log_retention_days: log retention (a value `stacks.base.retention` accepts).
        removal_policy: what happens to the log group when the stack goes.

    Attributes:
        task_definition: the `ecs.FargateTaskDefinition`.
        container: its `ecs.ContainerDefinition`.
        log_group: the container's log group.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        log_group_id: str,
        size: TaskSize,
        container: ContainerSpec,
        key: kms.IKey,
        log_retention_days: int,
        removal_policy: cdk.RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        self.task_definition = ecs.FargateTaskDefinition(
            self,
            "Default",
            cpu=size.cpu,
            memory_limit_mib=size.memory_mib,
            runtime_platform=ecs.RuntimePlatform(
                cpu_architecture=ecs.CpuArchitecture.ARM64 if size.arm64 else ecs.CpuArchitecture.X86_64,
                operating_system_family=ecs.OperatingSystemFamily.LINUX,
            ),
        )
        self.log_group = logs.LogGroup(
            scope,
            log_group_id,
            retention=retention(log_retention_days),
            encryption_key=key,
            removal_policy=removal_policy,
        )
        self.container = self.task_definition.add_container(
            container.name,
            image=container.image,
            command=list(container.command) if container.command is not None else None,
            environment=dict(container.environment) or None,
            secrets=dict(container.secrets) or None,
            port_mappings=list(container.port_mappings) or None,
            health_check=container.health_check,
            user=container.user,
            ulimits=list(container.ulimits) or None,
            readonly_root_filesystem=container.readonly_root_filesystem,
            stop_timeout=container.stop_timeout,
            logging=ecs.LogDrivers.aws_logs(
                stream_prefix=container.stream_prefix or container.name, log_group=self.log_group
            ),
        )
        if container.environment:
            self.acknowledge(self.task_definition, {"AwsSolutions-ECS2": ENVIRONMENT_REASON})
        if isinstance(container.image, PRIVATE_IMAGE_TYPES):
            self.acknowledge(self.execution_role, ECR_PULL_ACKNOWLEDGEMENTS)

    @property
    def execution_role(self) -> iam.IRole:
        """The role ECS starts the task with (pulls the image, writes logs, reads `secrets`)."""
        return self.task_definition.obtain_execution_role()

    @property
    def task_role(self) -> iam.IRole:
        """The role the container's code runs with."""
        return self.task_definition.task_role

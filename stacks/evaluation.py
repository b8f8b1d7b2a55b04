"""Evaluation: the scheduled online evaluation job (EventBridge Scheduler -> ECS Fargate task).

On `evaluation.online_schedule` the job runs `python -m eval online`: it samples recent agent traces from
Langfuse, scores them with the same evaluators as the offline runs (LLM judge through the LLM gateway with
the evaluation consumer's key), writes the scores back onto the traces, and stores the HTML/JSON report in
an encrypted bucket. The same task definition runs offline experiments against the AgentCore runtime with
a command override (`run --target agentcore`, see docs/evaluation.md). Secrets reach the container through
ECS `secrets` (resolved by ECS from Secrets Manager), never as plain environment values.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_scheduler_targets as targets
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from config import AppConfig
from stacks.base import FoundationStack
from stacks.compliance import (
    acknowledge,
    acknowledge_all,
    acknowledge_cdk_helpers,
    acknowledge_key_grant,
    nag_region_account,
)
from stacks.constructs.data_bucket import DataBucket
from stacks.constructs.fargate_service import ContainerSpec, TaskSize, fargate_cluster
from stacks.constructs.fargate_task import FargateTask
from stacks.contracts import LangfuseConnection, LlmGatewayEndpoint
from stacks.identity import RESOURCE_SERVER_ID, MachineClient
from stacks.network import https_out_security_group

REPO_ROOT = Path(__file__).resolve().parents[1]
CONTAINER_NAME = "evaluation"
# The image needs only these paths of the repository (Docker ignore syntax: exclude all, then re-include).
IMAGE_CONTEXT = (
    "*",
    "!eval",
    "!clients",
    "!tools/__init__.py",
    "!tools/specs.py",
    "!config",
    "**/__pycache__",
    "eval/datasets/*.local.jsonl",
)


class EvaluationStack(FoundationStack):
    """The online evaluation job, its schedule, its report bucket and its logs."""

    component = "evaluation"
    description_text = "evaluation (scheduled online scoring of agent traces)"

    def __init__(
        self,
        scope: Construct,
        *,
        config: AppConfig,
        vpc: ec2.IVpc,
        llm: LlmGatewayEndpoint,
        langfuse: LangfuseConnection,
        runtime_arn: str | None = None,
        machine_client: MachineClient | None = None,
        token_endpoint: str | None = None,
        service_subnets: ec2.SubnetSelection | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, config=config, **kwargs)
        self._vpc = vpc
        self._subnets = service_subnets or ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS)
        self._llm = llm
        self._langfuse = langfuse
        self.key = self.create_data_key("Key", "evaluation reports and logs")
        self.reports_bucket = self._create_reports_bucket()
        self.cluster = fargate_cluster(
            self,
            "Cluster",
            vpc=vpc,
            capacity_providers=False,
            container_insights=config.evaluation.container_insights,
            insights_setting="evaluation.container_insights",
        )
        self.security_group = self._create_security_group()
        self.task = self._create_task()
        self.task_definition = self.task.task_definition
        self.log_group = self.task.log_group
        self._allow_offline_runs(runtime_arn, machine_client, token_endpoint)
        self.dead_letter_queue = self._create_dead_letter_queue()
        self.schedule = self._create_schedule()
        acknowledge_cdk_helpers(self)

    # --- storage --------------------------------------------------------------------------------------

    def _create_reports_bucket(self) -> s3.Bucket:
        return DataBucket(
            self,
            "Reports",
            key=self.key,
            retain=self.config.retain_data,
            expire_days=self.config.evaluation.report_retention_days,
            no_access_logs_reason="The bucket holds generated evaluation reports written only by the evaluation "
            "task role; CloudTrail records the writes, so server access logs would add a second log bucket "
            "for nothing.",
            no_replication_reason="Evaluation reports are reproducible from Langfuse scores and expire by "
            "lifecycle; no replica needed.",
            # The template has never stated it; S3 applies BucketOwnerEnforced to new buckets by default
            # (https://docs.aws.amazon.com/AmazonS3/latest/userguide/object-ownership-new-bucket.html).
            object_ownership=None,
        ).bucket

    # --- compute --------------------------------------------------------------------------------------

    def _create_security_group(self) -> ec2.SecurityGroup:
        group = https_out_security_group(
            self,
            "JobSecurityGroup",
            vpc=self._vpc,
            description="Evaluation job: HTTPS to Langfuse and AWS APIs, HTTP(S) to the LLM gateway",
            https_to="HTTPS to Langfuse, AgentCore and AWS APIs",
        )
        if self._llm.security_group is not None:
            # The port of the gateway URL itself (443/80 behind its ALB, 4000 on the dev private DNS name).
            group.add_egress_rule(
                ec2.Peer.security_group_id(self._llm.security_group.security_group_id),
                ec2.Port.tcp(self._llm.port),
                "to the LLM gateway",
            )
        return group

    def _create_task(self) -> FargateTask:
        evaluation = self.config.evaluation
        langfuse_keys = self.import_secret(self._langfuse.keys_secret, "LangfuseKeys")
        gateway_key = self.import_secret(self._llm.eval_key_secret, "GatewayEvalKey")
        container = ContainerSpec(
            name=CONTAINER_NAME,
            image=ecs.ContainerImage.from_asset(
                str(REPO_ROOT),
                file="eval/Dockerfile",
                exclude=list(IMAGE_CONTEXT),
                ignore_mode=cdk.IgnoreMode.DOCKER,
                platform=ecr_assets.Platform.LINUX_ARM64,
            ),
            command=(
                "online",
                "--no-progress",
                "--sample",
                str(evaluation.online_sample_size),
                "--since-hours",
                f"{evaluation.online_window_hours:g}",
                "--report-dir",
                "/tmp/report",  # noqa: S108 - the container's own scratch space, uploaded to S3 afterwards
            ),
            environment={
                "LANGFUSE_HOST": self._langfuse.host,
                "LLM_GATEWAY_URL": self._llm.url,
                "EVAL_JUDGE_MODEL": self.config.models.judge_alias,
                "EVAL_REPORT_BUCKET": self.reports_bucket.bucket_name,
            },
            secrets={
                "LANGFUSE_PUBLIC_KEY": ecs.Secret.from_secrets_manager(langfuse_keys, "public_key"),
                "LANGFUSE_SECRET_KEY": ecs.Secret.from_secrets_manager(langfuse_keys, "secret_key"),
                "LLM_GATEWAY_KEY": ecs.Secret.from_secrets_manager(gateway_key, "api_key"),
            },
            readonly_root_filesystem=False,
        )
        task = FargateTask(
            self,
            "Task",
            log_group_id="JobLogs",
            size=TaskSize(cpu=evaluation.cpu, memory_mib=evaluation.memory_mib, arm64=True),
            container=container,
            key=self.key,
            log_retention_days=evaluation.log_retention_days,
            removal_policy=self.removal_policy,
        )
        for secret in (langfuse_keys, gateway_key):  # ECS reads `secrets` with the execution role
            self.grant_secret_key_decrypt(task.execution_role, secret)
        self.reports_bucket.grant_put(task.task_role)
        self.key.grant_encrypt(task.task_role)
        acknowledge_key_grant(
            task.task_role, granted_by="CDK's grant_encrypt (report uploads)", key="the job's own key"
        )
        bucket = self.get_logical_id(self._bucket_resource())
        acknowledge_all(
            task.task_role,
            {
                "AwsSolutions-IAM5[Action::s3:Abort*]": "CDK's grant_put lets the job abort its own multipart "
                "report uploads, on objects of the reports bucket only.",
                f"AwsSolutions-IAM5[Resource::<{bucket}.Arn>/*]": "The job writes report objects under new keys "
                "each run, so the object ARN pattern of this one bucket is needed.",
            },
        )
        return task

    def _bucket_resource(self) -> s3.CfnBucket:
        resource = self.reports_bucket.node.default_child
        assert isinstance(resource, s3.CfnBucket)
        return resource

    def _allow_offline_runs(
        self, runtime_arn: str | None, machine_client: MachineClient | None, token_endpoint: str | None
    ) -> None:
        """Let a command override run the golden dataset against the runtime with the M2M client."""
        if runtime_arn is None or machine_client is None or token_endpoint is None:
            return
        container = self.task.container
        container.add_environment("AGENT_RUNTIME_ARN", runtime_arn)
        container.add_environment("COGNITO_TOKEN_URL", token_endpoint)
        container.add_environment("EVAL_SCOPE", f"{RESOURCE_SERVER_ID}/agent.invoke")
        # The client secret is read at run time by clients.oauth (an ARN here, never the value).
        client_secret = self.import_secret(machine_client.secret, "EvaluationClientSecret")
        container.add_environment("EVAL_CLIENT_SECRET_ARN", client_secret.secret_arn)
        client_secret.grant_read(self.task.task_role)
        self.grant_secret_key_decrypt(self.task.task_role, client_secret)

    # --- schedule -------------------------------------------------------------------------------------

    def _create_dead_letter_queue(self) -> sqs.Queue:
        queue = sqs.Queue(
            self,
            "ScheduleDeadLetters",
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=self.key,
            enforce_ssl=True,
            retention_period=cdk.Duration.days(14),
            removal_policy=self.removal_policy,
        )
        acknowledge(
            queue,
            "AwsSolutions-SQS3",
            "This queue is itself the dead-letter queue of the evaluation schedule; it has no queue behind it.",
        )
        return queue

    def _create_schedule(self) -> scheduler.Schedule | None:
        expression = self.config.evaluation.online_schedule
        if expression is None:
            return None
        target = targets.EcsRunFargateTask(
            self.cluster,
            task_definition=self.task_definition,
            security_groups=[self.security_group],
            vpc_subnets=self._subnets,
            assign_public_ip=False,
            propagate_tags=True,
            dead_letter_queue=self.dead_letter_queue,
            retry_attempts=2,
            max_event_age=cdk.Duration.hours(1),
        )
        schedule = scheduler.Schedule(
            self,
            "OnlineEvaluation",
            schedule=scheduler.ScheduleExpression.expression(expression),
            target=target,
            description="Score a sample of recent agent traces in Langfuse",
            key=self.key,
        )
        self.key.grant_decrypt(iam.ServicePrincipal("scheduler.amazonaws.com"))
        cluster = self.get_logical_id(self.cluster.node.default_child)  # type: ignore[arg-type]
        acknowledge(
            self,
            f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ecs:{nag_region_account(self)}:task/<{cluster}>/*]",
            "EventBridge Scheduler's ECS target tags the tasks it starts; task ARNs are only known at run "
            "time, so the role names the task ARNs of this one cluster.",
        )
        return schedule

    @property
    def encryption_key(self) -> kms.IKey:
        return self.key

    @property
    def logs(self) -> logs.ILogGroup:
        return self.log_group

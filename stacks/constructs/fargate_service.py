"""ECS on Fargate for a service: the cluster, one task definition with one container logging to a
KMS-encrypted group, the service in private subnets (no public IP, circuit breaker with rollback, tags
propagated to the tasks), an autoscaling hook, and an application load balancer (internal unless asked)
with access logs, dropped invalid headers and listeners that are never open to the world by default.

Environment vs secrets: a container's `environment` is plain text in the task definition; anything secret
must be an ECS secret (read by the execution role at start,
https://docs.aws.amazon.com/AmazonECS/latest/developerguide/secrets-envvar-secrets-manager.html). The
block refuses environment names that look like secrets, so its AwsSolutions-ECS2 acknowledgement is true.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from stacks.compliance import acknowledge
from stacks.constructs import BuildingBlock

# Parts of an environment variable name that mean it carries a secret.
SECRET_NAME_PARTS = ("PASSWORD", "SECRET", "TOKEN", "API_KEY", "MASTER_KEY", "SALT", "PRIVATE_KEY")
CapacityProvider = Literal["FARGATE", "FARGATE_SPOT"]


class SecretInEnvironmentError(ValueError):
    """A container's plain environment names a secret; pass it as an ECS secret instead."""


def http_health_check(
    path: str,
    interval_seconds: int,
    *,
    timeout_seconds: int | None = 10,
    thresholds: tuple[int, int] | None = (2, 3),
) -> elbv2.HealthCheck:
    """An ALB target group's HTTP health check: `path` must answer 200 every `interval_seconds`.

    The defaults suit an app server that can be slow under load: a 10 s timeout, healthy after 2 passes,
    unhealthy after 3 failures (`thresholds` = (healthy, unhealthy)). None leaves ELB's own default in
    place and writes nothing to the template (timeout 5 s, healthy 5, unhealthy 2 for an HTTP target
    group of IP targets,
    https://docs.aws.amazon.com/elasticloadbalancing/latest/application/target-group-health-checks.html).
    """
    healthy, unhealthy = thresholds if thresholds is not None else (None, None)
    return elbv2.HealthCheck(
        path=path,
        healthy_http_codes="200",
        interval=cdk.Duration.seconds(interval_seconds),
        timeout=cdk.Duration.seconds(timeout_seconds) if timeout_seconds is not None else None,
        healthy_threshold_count=healthy,
        unhealthy_threshold_count=unhealthy,
    )


def fargate_cluster(
    scope: Construct,
    construct_id: str,
    *,
    vpc: ec2.IVpc,
    capacity_providers: bool,
    container_insights: bool,
    insights_setting: str,
) -> ecs.Cluster:
    """An ECS cluster with Fargate capacity providers and Container Insights as asked; without insights,
    AwsSolutions-ECS4 is acknowledged naming `insights_setting` (the config key).

    A function, not a wrapper: the cluster names its capacity-provider association after its own id, so
    it cannot be a `Default` child.
    """
    cluster = ecs.Cluster(
        scope,
        construct_id,
        vpc=vpc,
        enable_fargate_capacity_providers=capacity_providers,
        container_insights_v2=ecs.ContainerInsights.ENABLED
        if container_insights
        else ecs.ContainerInsights.DISABLED,
    )
    if not container_insights:
        acknowledge(
            cluster,
            "AwsSolutions-ECS4",
            f"Container Insights follows {insights_setting} (on in prod, off in dev to save its custom-metric "
            "cost); the dashboard uses the free AWS/ECS service metrics.",
        )
    return cluster


@dataclass(frozen=True)
class TaskSize:
    cpu: int
    memory_mib: int
    arm64: bool = False


@dataclass(frozen=True)
class ContainerSpec:
    """The one container of a task (its log driver is the block's)."""

    name: str
    image: ecs.ContainerImage
    environment: Mapping[str, str] = field(default_factory=dict)
    secrets: Mapping[str, ecs.Secret] = field(default_factory=dict)
    port_mappings: tuple[ecs.PortMapping, ...] = ()
    health_check: ecs.HealthCheck | None = None
    command: tuple[str, ...] | None = None
    user: str | None = None
    ulimits: tuple[ecs.Ulimit, ...] = ()
    readonly_root_filesystem: bool | None = None
    stop_timeout: cdk.Duration | None = None
    stream_prefix: str | None = None  # default: the container name

    def __post_init__(self) -> None:
        leaked = sorted(
            name for name in self.environment if any(part in name.upper() for part in SECRET_NAME_PARTS)
        )
        if leaked:
            raise SecretInEnvironmentError(
                f"container {self.name!r}: {leaked} look like secrets; pass them as ECS secrets, not environment"
            )
        both = sorted(set(self.environment) & set(self.secrets))
        if both:
            raise SecretInEnvironmentError(
                f"container {self.name!r}: {both} are both environment and secrets"
            )


@dataclass(frozen=True)
class ServiceOptions:
    desired_count: int
    capacity_provider: CapacityProvider | None  # None: the plain FARGATE launch type (on-demand)
    min_healthy_percent: int = 100
    max_healthy_percent: int = 200
    health_check_grace_seconds: int | None = None  # only for a service behind a load balancer


class FargateService(BuildingBlock):
    """The service (child `Default`); beside it in `scope`: the task (`FargateTask`, stacks/constructs/
    fargate_task.py: task definition `task_id` with its container, log group `log_group_id`, and their
    acknowledgements), as the stacks had them."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        task_id: str,
        log_group_id: str,
        cluster: ecs.ICluster,
        size: TaskSize,
        container: ContainerSpec,
        options: ServiceOptions,
        subnets: ec2.SubnetSelection,
        security_groups: Sequence[ec2.ISecurityGroup],
        key: kms.IKey,
        log_retention_days: int,
        removal_policy: cdk.RemovalPolicy,
        cloud_map: ecs.CloudMapOptions | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        # Imported here: fargate_task imports ContainerSpec and TaskSize from this module.
        from stacks.constructs.fargate_task import FargateTask

        self.task = FargateTask(
            scope,
            task_id,
            log_group_id=log_group_id,
            size=size,
            container=container,
            key=key,
            log_retention_days=log_retention_days,
            removal_policy=removal_policy,
        )
        self.task_definition = self.task.task_definition
        self.log_group = self.task.log_group
        self.container = self.task.container
        self.service = ecs.FargateService(
            self,
            "Default",
            cluster=cluster,
            task_definition=self.task_definition,
            desired_count=options.desired_count,
            capacity_provider_strategies=[
                ecs.CapacityProviderStrategy(capacity_provider=options.capacity_provider, weight=1)
            ]
            if options.capacity_provider
            else None,
            vpc_subnets=subnets,
            security_groups=list(security_groups),
            assign_public_ip=False,
            circuit_breaker=ecs.DeploymentCircuitBreaker(enable=True, rollback=True),
            min_healthy_percent=options.min_healthy_percent,
            max_healthy_percent=options.max_healthy_percent,
            health_check_grace_period=cdk.Duration.seconds(options.health_check_grace_seconds)
            if options.health_check_grace_seconds is not None
            else None,
            cloud_map_options=cloud_map,
            enable_execute_command=False,
            propagate_tags=ecs.PropagatedTagSource.SERVICE,
        )

    def autoscale(
        self,
        *,
        min_tasks: int,
        max_tasks: int,
        cpu_percent: int,
        requests_per_task_per_minute: int | None = None,
        target_group: elbv2.IApplicationTargetGroup | None = None,
    ) -> ecs.ScalableTaskCount:
        """Target tracking on CPU and, behind a load balancer, on requests per task."""
        scaling = self.service.auto_scale_task_count(min_capacity=min_tasks, max_capacity=max_tasks)
        scale_in, scale_out = cdk.Duration.minutes(5), cdk.Duration.minutes(1)
        scaling.scale_on_cpu_utilization(
            "Cpu",
            target_utilization_percent=cpu_percent,
            scale_in_cooldown=scale_in,
            scale_out_cooldown=scale_out,
        )
        if target_group is not None and requests_per_task_per_minute is not None:
            scaling.scale_on_request_count(
                "Requests",
                requests_per_target=requests_per_task_per_minute,
                target_group=target_group,  # type: ignore[arg-type]  # the L2 wants the concrete class
                scale_in_cooldown=scale_in,
                scale_out_cooldown=scale_out,
            )
        return scaling


class LoadBalancer(BuildingBlock):
    """An application load balancer (child `Default`) and its one listener: HTTPS with the recommended
    TLS policy when a certificate is given, HTTP otherwise; access logs whenever the region is known.

    Args:
        access_logs: the bucket for access logs; None only in an environment-agnostic synth, where the
            region's ELB log-delivery principal is unknown
            (https://docs.aws.amazon.com/elasticloadbalancing/latest/application/enable-access-logging.html).
        plain_http_reason: why plain HTTP is acceptable (required without a certificate).
        no_waf_reason: why no WAF web ACL is attached; None when the caller attaches one.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        vpc: ec2.IVpc,
        subnets: ec2.SubnetSelection,
        security_group: ec2.ISecurityGroup,
        idle_timeout_seconds: int,
        deletion_protection: bool,
        access_logs: s3.IBucket | None,
        internet_facing: bool = False,
        certificate_arn: str | None = None,
        default_target_group: elbv2.IApplicationTargetGroup | None = None,
        plain_http_reason: str | None = None,
        no_waf_reason: str | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        region_known = not cdk.Token.is_unresolved(cdk.Stack.of(scope).region)
        if access_logs is None and region_known:
            raise ValueError(f"{construct_id}: access logs are required when the region is known")
        if certificate_arn is None and plain_http_reason is None:
            raise ValueError(f"{construct_id}: a plain-HTTP listener needs plain_http_reason")
        self.load_balancer = elbv2.ApplicationLoadBalancer(
            self,
            "Default",
            vpc=vpc,
            internet_facing=internet_facing,
            vpc_subnets=subnets,
            security_group=security_group,
            drop_invalid_header_fields=True,
            idle_timeout=cdk.Duration.seconds(idle_timeout_seconds),
            deletion_protection=deletion_protection,
        )
        if access_logs is not None:
            self.load_balancer.log_access_logs(access_logs, prefix="alb")
        defaults = [default_target_group] if default_target_group is not None else None
        if certificate_arn:
            self.port = 443
            self.listener = self.load_balancer.add_listener(
                "Https",
                port=443,
                protocol=elbv2.ApplicationProtocol.HTTPS,
                certificates=[elbv2.ListenerCertificate.from_arn(certificate_arn)],
                ssl_policy=elbv2.SslPolicy.RECOMMENDED_TLS,
                open=False,
                default_target_groups=defaults,
            )
        else:
            self.port = 80
            self.listener = self.load_balancer.add_listener(
                "Http",
                port=80,
                protocol=elbv2.ApplicationProtocol.HTTP,
                open=False,
                default_target_groups=defaults,
            )
        self._acknowledge_findings(
            access_logs is None, deletion_protection, certificate_arn, plain_http_reason, no_waf_reason
        )

    def _acknowledge_findings(
        self,
        no_access_logs: bool,
        deletion_protection: bool,
        certificate_arn: str | None,
        plain_http_reason: str | None,
        no_waf_reason: str | None,
    ) -> None:
        findings: dict[str, str] = {}
        if no_access_logs:
            reason = (
                "Access logs need the region's ELB log-delivery principal, unknown in an environment-agnostic "
                "synth; they are enabled whenever environment.region is set."
            )
            findings["AwsSolutions-ELB2"] = reason
            findings["NIST.800.53.R5-ELBLoggingEnabled"] = reason
        if not deletion_protection:
            findings["NIST.800.53.R5-ELBDeletionProtectionEnabled"] = (
                "Deletion protection follows the profile: on where data is retained (prod), off in dev so the "
                "stack destroys cleanly."
            )
        if certificate_arn is None:
            assert plain_http_reason is not None
            findings["NIST.800.53.R5-ALBHttpToHttpsRedirection"] = plain_http_reason
            findings["NIST.800.53.R5-ELBv2ACMCertificateRequired"] = plain_http_reason
        if no_waf_reason is not None:
            findings["NIST.800.53.R5-ALBWAFEnabled"] = no_waf_reason
        self.acknowledge(self.load_balancer, findings)

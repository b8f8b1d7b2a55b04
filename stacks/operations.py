"""Operations: one CloudWatch dashboard for the whole foundation and the alarms that mean users are hurting.

Every input is optional and typed: the stack watches what it is given, so a foundation without a frontend
or with an external gateway still gets a coherent dashboard. Alarms go to one KMS-encrypted, SSL-only SNS
topic, with an email subscription when `alarms.email` is set.

Alarms (users are hurting): agent errors and latency, LLM gateway 5xx and latency, tool gateway errors,
ticket API errors, no healthy target behind a load balancer, a database pinned at its capacity ceiling,
and knowledge-base ingestion failures (documents missing from answers). CPU and memory are on the
dashboard only: they are causes, and the alarms above catch their effect.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_bedrock as bedrock
from aws_cdk import aws_bedrockagentcore as agentcore
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_rds as rds
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from config import AppConfig
from stacks.base import FoundationStack

FIVE_MINUTES = cdk.Duration.minutes(5)
ONE_MINUTE = cdk.Duration.minutes(1)
INGESTION_NAMESPACE = "AgenticFoundation/KnowledgeBase"
# Bedrock knowledge-base application logs (vended logs): job- and document-level status events.
INGESTION_JOB_FAILED = logs.FilterPattern.all(
    logs.FilterPattern.string_value("$.event_type", "=", "StartIngestionJob.StatusChanged"),
    logs.FilterPattern.string_value("$.event.ingestion_job_status", "=", "FAILED"),
)
DOCUMENT_FAILED_STATUSES = (
    "FAILED",
    "EMBEDDING_FAILED",
    "INDEXING_FAILED",
    "DELETION_FAILED",
    "METADATA_UPDATE_FAILED",
)
INGESTION_DOCUMENT_FAILED = logs.FilterPattern.all(
    logs.FilterPattern.string_value("$.event_type", "=", "StartIngestionJob.ResourceStatusChanged"),
    logs.FilterPattern.any(
        *(
            logs.FilterPattern.string_value("$.event.status", "=", status)
            for status in DOCUMENT_FAILED_STATUSES
        )
    ),
)


class OperationsStack(FoundationStack):
    """The foundation's dashboard (`.dashboard`) and alarm topic (`.alarm_topic`)."""

    component = "operations"
    description_text = "operations (dashboard, alarms, alarm topic)"

    def __init__(
        self,
        scope: Construct,
        *,
        config: AppConfig,
        runtime: agentcore.IBedrockAgentRuntime | None = None,
        tool_gateway: agentcore.IGateway | None = None,
        llm_gateway_load_balancer: elbv2.IApplicationLoadBalancer | None = None,
        target_groups: Mapping[str, elbv2.IApplicationTargetGroup] | None = None,
        ecs_services: Mapping[str, ecs.BaseService] | None = None,
        databases: Mapping[str, rds.DatabaseCluster | rds.DatabaseInstance] | None = None,
        knowledge_base: bedrock.CfnKnowledgeBase | None = None,
        ticket_functions: Sequence[lambda_.IFunction] = (),
        **kwargs: Any,
    ) -> None:
        """Args:
        config: the foundation's configuration (alarm email and thresholds in `observability`).
        runtime: the AgentCore Runtime serving the agent.
        tool_gateway: the AgentCore Gateway serving the tools.
        llm_gateway_load_balancer: the LiteLLM gateway's load balancer.
        target_groups: label -> target group whose healthy-host count must stay above zero.
        ecs_services: label -> ECS service for CPU and memory (LiteLLM, Langfuse, frontend...).
        databases: label -> Aurora Serverless v2 cluster or PostgreSQL instance for load and connections.
        knowledge_base: the Bedrock knowledge base whose ingestion failures are counted.
        ticket_functions: the Lambda functions behind the ticket API.
        """
        super().__init__(scope, config=config, **kwargs)
        self.thresholds = config.observability
        self.key = self.create_data_key("OperationsKey", "alarm notifications and knowledge-base logs")
        self.alarm_topic = self._create_alarm_topic()
        self.alarms: list[cloudwatch.Alarm] = []
        self.dashboard = cloudwatch.Dashboard(
            self,
            "Dashboard",
            dashboard_name=self.resource_name("foundation"),
            default_interval=cdk.Duration.hours(6),
        )
        self.dashboard.add_widgets(
            cloudwatch.TextWidget(
                markdown=f"# {config.prefix} agentic foundation ({config.project.profile})\n"
                "Agent, tools, LLM gateway, services, databases and knowledge base. "
                "Alarms notify the alarm topic; traces are in Langfuse.",
                width=24,
                height=2,
            )
        )
        if runtime is not None:
            self._watch_runtime(runtime)
        if tool_gateway is not None:
            self._watch_tool_gateway(tool_gateway)
        if llm_gateway_load_balancer is not None:
            self._watch_llm_gateway(llm_gateway_load_balancer)
        if ticket_functions:
            self._watch_ticket_api(ticket_functions)
        if target_groups:
            self._watch_target_groups(target_groups)
        if ecs_services:
            self._watch_services(ecs_services)
        if databases:
            self._watch_databases(databases)
        self.ingestion_log_group: logs.LogGroup | None = None
        if knowledge_base is not None:
            self._watch_knowledge_base(knowledge_base)
        self._add_alarm_status()
        self._create_outputs()

    # --- alarm topic ---------------------------------------------------------------------------------

    def _create_alarm_topic(self) -> sns.Topic:
        # CloudWatch publishes to the encrypted topic with its service principal.
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                resources=["*"],
                conditions={"StringEquals": {"aws:SourceAccount": self.account}},
            )
        )
        topic = sns.Topic(
            self,
            "AlarmTopic",
            display_name=f"{self.config.prefix} foundation alarms",
            master_key=self.key,
            enforce_ssl=True,
        )
        if self.config.alarms.email:
            topic.add_subscription(subscriptions.EmailSubscription(self.config.alarms.email))
        return topic

    def _alarm(
        self,
        construct_id: str,
        *,
        metric: cloudwatch.IMetric,
        threshold: float,
        description: str,
        evaluation_periods: int = 3,
        datapoints_to_alarm: int = 2,
        comparison: cloudwatch.ComparisonOperator = cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        missing: cloudwatch.TreatMissingData = cloudwatch.TreatMissingData.NOT_BREACHING,
    ) -> cloudwatch.Alarm:
        alarm = cloudwatch.Alarm(
            self,
            construct_id,
            alarm_name=self.resource_name(_kebab(construct_id)),
            alarm_description=description,
            metric=metric,
            threshold=threshold,
            evaluation_periods=evaluation_periods,
            datapoints_to_alarm=datapoints_to_alarm,
            comparison_operator=comparison,
            treat_missing_data=missing,
        )
        action = cloudwatch_actions.SnsAction(self.alarm_topic)
        alarm.add_alarm_action(action)
        alarm.add_ok_action(action)
        self.alarms.append(alarm)
        return alarm

    # --- agent runtime -------------------------------------------------------------------------------

    def _watch_runtime(self, runtime: agentcore.IBedrockAgentRuntime) -> None:
        invocations = runtime.metric_invocations(period=FIVE_MINUTES, statistic="Sum", label="invocations")
        system_errors = runtime.metric_system_errors(
            period=FIVE_MINUTES, statistic="Sum", label="system errors"
        )
        user_errors = runtime.metric_user_errors(period=FIVE_MINUTES, statistic="Sum", label="user errors")
        throttles = runtime.metric_throttles(period=FIVE_MINUTES, statistic="Sum", label="throttles")
        latency_p50 = runtime.metric_latency(period=FIVE_MINUTES, statistic="p50", label="p50")
        latency_p90 = runtime.metric_latency(period=FIVE_MINUTES, statistic="p90", label="p90")
        error_rate = cloudwatch.MathExpression(
            expression="IF(invocations > 0, 100 * (errors + throttles) / invocations, 0)",
            using_metrics={"invocations": invocations, "errors": system_errors, "throttles": throttles},
            label="failed turns %",
            period=FIVE_MINUTES,
        )
        self._alarm(
            "AgentErrorRate",
            metric=error_rate,
            threshold=self.thresholds.agent_error_rate_percent,
            description="More than the allowed share of agent turns fail (system errors or throttles): "
            "users get errors instead of answers.",
        )
        self._alarm(
            "AgentLatency",
            metric=latency_p90,
            threshold=self.thresholds.agent_latency_p90_seconds * 1000,
            description="Agent p90 latency is above the threshold: users wait too long for answers.",
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(title="Agent runtime: invocations", left=[invocations], width=8),
            cloudwatch.GraphWidget(
                title="Agent runtime: latency (ms)", left=[latency_p50, latency_p90], width=8
            ),
            cloudwatch.GraphWidget(
                title="Agent runtime: errors",
                left=[system_errors, user_errors, throttles],
                right=[error_rate],
                width=8,
            ),
        )

    # --- tools -----------------------------------------------------------------------------------------

    def _watch_tool_gateway(self, gateway: agentcore.IGateway) -> None:
        invocations = gateway.metric_invocations(period=FIVE_MINUTES, statistic="Sum", label="invocations")
        system_errors = gateway.metric_system_errors(
            period=FIVE_MINUTES, statistic="Sum", label="system errors"
        )
        user_errors = gateway.metric_user_errors(period=FIVE_MINUTES, statistic="Sum", label="user errors")
        latency = gateway.metric_latency(period=FIVE_MINUTES, statistic="p90", label="p90")
        self._alarm(
            "ToolGatewayErrors",
            metric=system_errors,
            threshold=self.thresholds.tool_errors_per_5_minutes,
            description="The tool gateway returns system errors: the agent cannot search, or read or change "
            "tickets.",
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(title="Tool gateway: invocations", left=[invocations], width=8),
            cloudwatch.GraphWidget(title="Tool gateway: latency (ms)", left=[latency], width=8),
            cloudwatch.GraphWidget(title="Tool gateway: errors", left=[system_errors, user_errors], width=8),
        )

    def _watch_ticket_api(self, functions: Sequence[lambda_.IFunction]) -> None:
        errors = [f.metric_errors(period=FIVE_MINUTES, statistic="Sum") for f in functions]
        throttles = [f.metric_throttles(period=FIVE_MINUTES, statistic="Sum") for f in functions]
        durations = [f.metric_duration(period=FIVE_MINUTES, statistic="p90") for f in functions]
        total = _sum_of({f"e{i}": metric for i, metric in enumerate(errors)}, "ticket API errors")
        self._alarm(
            "TicketApiErrors",
            metric=total,
            threshold=self.thresholds.tool_errors_per_5_minutes,
            description="The ticket API functions fail: users cannot open, read or update tickets.",
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Ticket API: errors and throttles", left=[*errors, *throttles], width=12
            ),
            cloudwatch.GraphWidget(title="Ticket API: duration p90 (ms)", left=durations, width=12),
        )

    # --- LLM gateway -----------------------------------------------------------------------------------

    def _watch_llm_gateway(self, load_balancer: elbv2.IApplicationLoadBalancer) -> None:
        metrics = load_balancer.metrics
        requests = metrics.request_count(period=FIVE_MINUTES, statistic="Sum", label="requests")
        target_5xx = metrics.http_code_target(
            elbv2.HttpCodeTarget.TARGET_5XX_COUNT, period=FIVE_MINUTES, statistic="Sum", label="target 5xx"
        )
        elb_5xx = metrics.http_code_elb(
            elbv2.HttpCodeElb.ELB_5XX_COUNT, period=FIVE_MINUTES, statistic="Sum", label="load balancer 5xx"
        )
        latency = metrics.target_response_time(period=FIVE_MINUTES, statistic="p90", label="p90 (s)")
        all_5xx = _sum_of({"target": target_5xx, "elb": elb_5xx}, "5xx")
        self._alarm(
            "LlmGateway5xx",
            metric=all_5xx,
            threshold=self.thresholds.gateway_5xx_per_5_minutes,
            description="The LLM gateway answers 5xx: model calls fail after retries and fallbacks.",
        )
        self._alarm(
            "LlmGatewayLatency",
            metric=latency,
            threshold=self.thresholds.gateway_latency_p90_seconds,
            description="LLM gateway p90 response time is above the threshold: answers are slow.",
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(title="LLM gateway: requests", left=[requests], width=8),
            cloudwatch.GraphWidget(title="LLM gateway: latency (s)", left=[latency], width=8),
            cloudwatch.GraphWidget(title="LLM gateway: 5xx", left=[target_5xx, elb_5xx], width=8),
        )

    def _watch_target_groups(self, target_groups: Mapping[str, elbv2.IApplicationTargetGroup]) -> None:
        widgets: list[cloudwatch.IWidget] = []
        for label, group in target_groups.items():
            healthy = group.metrics.healthy_host_count(period=ONE_MINUTE, statistic="Minimum", label=label)
            self._alarm(
                f"{_pascal(label)}NoHealthyTarget",
                metric=healthy,
                threshold=1,
                comparison=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
                evaluation_periods=5,
                datapoints_to_alarm=5,
                missing=cloudwatch.TreatMissingData.BREACHING,
                description=f"{label} has no healthy task behind its load balancer for 5 minutes: it is down.",
            )
            widgets.append(cloudwatch.GraphWidget(title=f"{label}: healthy tasks", left=[healthy], width=6))
        self.dashboard.add_widgets(*widgets)

    # --- services and databases ------------------------------------------------------------------------

    def _watch_services(self, services: Mapping[str, ecs.BaseService]) -> None:
        cpu = [s.metric_cpu_utilization(period=FIVE_MINUTES, label=label) for label, s in services.items()]
        memory = [
            s.metric_memory_utilization(period=FIVE_MINUTES, label=label) for label, s in services.items()
        ]
        limit = cloudwatch.HorizontalAnnotation(value=self.thresholds.ecs_cpu_percent, label="threshold")
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="ECS: CPU utilisation % per service", left=cpu, left_annotations=[limit], width=12
            ),
            cloudwatch.GraphWidget(
                title="ECS: memory utilisation % per service",
                left=memory,
                left_annotations=[
                    cloudwatch.HorizontalAnnotation(
                        value=self.thresholds.ecs_memory_percent, label="threshold"
                    )
                ],
                width=12,
            ),
        )

    def _watch_databases(self, databases: Mapping[str, rds.DatabaseCluster | rds.DatabaseInstance]) -> None:
        """Load % (Aurora: ACU utilisation of the maximum; instance: CPU), Aurora capacity, connections."""
        load: list[cloudwatch.IMetric] = []
        capacity: list[cloudwatch.IMetric] = []
        connections: list[cloudwatch.IMetric] = []
        for label, database in databases.items():
            if isinstance(database, rds.DatabaseCluster):
                used = database.metric_acu_utilization(period=FIVE_MINUTES, statistic="Maximum", label=label)
                capacity.append(
                    database.metric_serverless_database_capacity(period=FIVE_MINUTES, label=label)
                )
            else:
                used = database.metric_cpu_utilization(period=FIVE_MINUTES, statistic="Maximum", label=label)
            load.append(used)
            connections.append(database.metric_database_connections(period=FIVE_MINUTES, label=label))
            self._alarm(
                f"{_pascal(label)}DatabaseAtCapacity",
                metric=used,
                threshold=self.thresholds.db_capacity_percent,
                evaluation_periods=3,
                datapoints_to_alarm=3,
                description=f"The {label} database runs at nearly all of its capacity for 15 minutes: "
                "queries queue and requests slow down or time out.",
            )
        widgets: list[cloudwatch.IWidget] = [
            cloudwatch.GraphWidget(
                title="Databases: load % (Aurora ACU utilisation of maximum, instance CPU)",
                left=load,
                width=8,
            ),
            cloudwatch.GraphWidget(title="Databases: connections", left=connections, width=8),
        ]
        if capacity:
            widgets.append(cloudwatch.GraphWidget(title="Databases: capacity (ACU)", left=capacity, width=8))
        self.dashboard.add_widgets(*widgets)

    # --- knowledge base --------------------------------------------------------------------------------

    def _watch_knowledge_base(self, knowledge_base: bedrock.CfnKnowledgeBase) -> None:
        """Deliver the knowledge base's application logs here and count failed jobs and documents."""
        group = logs.LogGroup(
            self,
            "KnowledgeBaseLogs",
            log_group_name=f"/aws/vendedlogs/bedrock/knowledge-base/APPLICATION_LOGS/{self.config.prefix}",
            retention=logs.RetentionDays.ONE_MONTH,
            encryption_key=self.key,
            removal_policy=self.removal_policy,
        )
        self.ingestion_log_group = group
        source = logs.CfnDeliverySource(
            self,
            "KnowledgeBaseLogSource",
            name=self.resource_name("kb-logs"),
            log_type="APPLICATION_LOGS",
            resource_arn=knowledge_base.attr_knowledge_base_arn,
        )
        destination = logs.CfnDeliveryDestination(
            self,
            "KnowledgeBaseLogDestination",
            name=self.resource_name("kb-logs-destination"),
            destination_resource_arn=group.log_group_arn,
        )
        logs.CfnDelivery(
            self,
            "KnowledgeBaseLogDelivery",
            delivery_source_name=source.ref,
            delivery_destination_arn=destination.attr_arn,
        )
        metrics = {}
        for name, pattern, label in (
            ("IngestionJobsFailed", INGESTION_JOB_FAILED, "failed ingestion jobs"),
            ("IngestionDocumentsFailed", INGESTION_DOCUMENT_FAILED, "failed documents"),
        ):
            metric_filter = logs.MetricFilter(
                self,
                f"{name}Filter",
                log_group=group,
                filter_pattern=pattern,
                metric_namespace=INGESTION_NAMESPACE,
                metric_name=name,
                metric_value="1",
                default_value=0,
            )
            metrics[name] = metric_filter.metric(period=FIVE_MINUTES, statistic="Sum", label=label)
        failures = _sum_of(
            {"jobs": metrics["IngestionJobsFailed"], "documents": metrics["IngestionDocumentsFailed"]},
            "ingestion failures",
        )
        self._alarm(
            "KnowledgeBaseIngestionFailures",
            metric=failures,
            threshold=0,
            evaluation_periods=1,
            datapoints_to_alarm=1,
            description="A knowledge-base ingestion job or document failed: answers miss those documents.",
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Knowledge base: ingestion failures", left=list(metrics.values()), width=12
            ),
            cloudwatch.LogQueryWidget(
                title="Knowledge base: latest failures",
                log_group_names=[group.log_group_name],
                query_lines=[
                    "fields @timestamp, event_type, event.ingestion_job_status, event.status, "
                    "event.document_location.s3_location.uri, event.status_reasons.0",
                    'filter level = "ERROR" or event.ingestion_job_status = "FAILED" or event.status like /FAILED/',
                    "sort @timestamp desc",
                    "limit 20",
                ],
                width=12,
            ),
        )

    # --- summary -----------------------------------------------------------------------------------------

    def _add_alarm_status(self) -> None:
        if self.alarms:
            self.dashboard.add_widgets(
                cloudwatch.AlarmStatusWidget(title="Alarms", alarms=list(self.alarms), width=24)
            )

    def _create_outputs(self) -> None:
        cdk.CfnOutput(
            self, "DashboardName", value=self.dashboard.dashboard_name, description="CloudWatch dashboard"
        )
        cdk.CfnOutput(
            self, "AlarmTopicArn", value=self.alarm_topic.topic_arn, description="SNS topic for alarms"
        )


def _sum_of(metrics: Mapping[str, cloudwatch.IMetric], label: str) -> cloudwatch.MathExpression:
    """The five-minute sum of `metrics` ({expression id: metric}), a missing datapoint counting as 0."""
    return cloudwatch.MathExpression(
        expression=" + ".join(f"FILL({name}, 0)" for name in metrics),
        using_metrics=dict(metrics),
        label=label,
        period=FIVE_MINUTES,
    )


def _kebab(name: str) -> str:
    out = []
    for index, char in enumerate(name):
        if char.isupper() and index and not name[index - 1].isupper():
            out.append("-")
        out.append(char.lower())
    return "".join(out)


def _pascal(label: str) -> str:
    return "".join(part.capitalize() for part in label.replace("_", "-").split("-") if part)


@dataclass
class OperationsInputs:
    """Collects what the dashboard watches while app.py wires the stacks (labels are dashboard legends)."""

    services: dict[str, ecs.BaseService] = field(default_factory=dict)
    target_groups: dict[str, elbv2.IApplicationTargetGroup] = field(default_factory=dict)
    databases: dict[str, rds.DatabaseCluster | rds.DatabaseInstance] = field(default_factory=dict)

    def add_service(
        self, label: str, service: ecs.BaseService, target_group: elbv2.IApplicationTargetGroup | None = None
    ) -> None:
        """Watch a service's CPU and memory and, when it serves a load balancer, its healthy targets."""
        self.services[label] = service
        if target_group is not None:
            self.target_groups[label] = target_group

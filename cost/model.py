"""The idle-cost model: what a synthesized foundation costs per month with zero traffic.

It walks CloudFormation templates (the cloud assembly in cdk.out) resource by resource and prices what
bills by the hour or month whether or not anyone uses it: Fargate tasks, Aurora capacity floors, NAT
gateways, load balancers, cache nodes, interface endpoints, secrets, keys, dashboards, alarms, idle logs.
Usage-priced resources (Lambda, AgentCore, Bedrock, CloudFront, DynamoDB on demand, S3 requests) cost
nothing idle and are listed as such. Types the model does not know are reported, never silently zero.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cost.prices import PriceError, PriceTable

logger = logging.getLogger(__name__)

Template = Mapping[str, Any]

# Resource types that cost nothing while idle (configuration, identity, or priced per request).
FREE_WHEN_IDLE = frozenset(
    {
        "AWS::ApplicationAutoScaling::ScalableTarget",
        "AWS::ApplicationAutoScaling::ScalingPolicy",
        "AWS::Bedrock::DataSource",
        "AWS::Bedrock::Guardrail",
        "AWS::Bedrock::GuardrailVersion",
        "AWS::Bedrock::KnowledgeBase",
        "AWS::CDK::Metadata",
        "AWS::CloudFront::CachePolicy",
        "AWS::CloudFront::Function",
        "AWS::CloudFront::OriginAccessControl",
        "AWS::CloudFront::OriginRequestPolicy",
        "AWS::CloudFront::ResponseHeadersPolicy",
        "AWS::CloudFront::VpcOrigin",
        "AWS::Cognito::UserPool",
        "AWS::Cognito::UserPoolClient",
        "AWS::Cognito::UserPoolDomain",
        "AWS::Cognito::UserPoolGroup",
        "AWS::Cognito::UserPoolResourceServer",
        "AWS::Cognito::ManagedLoginBranding",
        "AWS::EC2::FlowLog",
        "AWS::EC2::InternetGateway",
        "AWS::EC2::Route",
        "AWS::EC2::RouteTable",
        "AWS::EC2::SecurityGroup",
        "AWS::EC2::SecurityGroupEgress",
        "AWS::EC2::SecurityGroupIngress",
        "AWS::EC2::Subnet",
        "AWS::EC2::SubnetRouteTableAssociation",
        "AWS::EC2::VPC",
        "AWS::EC2::VPCGatewayAttachment",
        "AWS::ECR::Repository",
        "AWS::ECS::ClusterCapacityProviderAssociations",
        "AWS::ECS::TaskDefinition",
        "AWS::EFS::AccessPoint",
        "AWS::EFS::MountTarget",
        "AWS::ElastiCache::ParameterGroup",
        "AWS::ElastiCache::SubnetGroup",
        "AWS::ElasticLoadBalancingV2::Listener",
        "AWS::ElasticLoadBalancingV2::ListenerRule",
        "AWS::ElasticLoadBalancingV2::TargetGroup",
        "AWS::Events::Rule",
        "AWS::IAM::InstanceProfile",
        "AWS::IAM::ManagedPolicy",
        "AWS::IAM::Policy",
        "AWS::IAM::Role",
        "AWS::KMS::Alias",
        "AWS::Lambda::EventInvokeConfig",
        "AWS::Lambda::Function",
        "AWS::Lambda::LayerVersion",
        "AWS::Lambda::Permission",
        "AWS::Lambda::Version",
        "AWS::Logs::Delivery",
        "AWS::Logs::DeliveryDestination",
        "AWS::Logs::DeliverySource",
        "AWS::Logs::ResourcePolicy",
        "AWS::Logs::SubscriptionFilter",
        "AWS::RDS::DBClusterParameterGroup",
        "AWS::RDS::DBParameterGroup",
        "AWS::RDS::DBSubnetGroup",
        "AWS::S3::Bucket",
        "AWS::S3::BucketPolicy",
        "AWS::S3Vectors::Index",
        "AWS::S3Vectors::VectorBucket",
        "AWS::S3Vectors::VectorBucketPolicy",
        "AWS::Scheduler::Schedule",
        "AWS::SecretsManager::ResourcePolicy",
        "AWS::SecretsManager::RotationSchedule",
        "AWS::SecretsManager::SecretTargetAttachment",
        "AWS::ServiceDiscovery::Service",
        "AWS::SNS::Subscription",
        "AWS::SNS::Topic",
        "AWS::SNS::TopicPolicy",
        "AWS::SQS::Queue",
        "AWS::SQS::QueuePolicy",
        "AWS::SSM::Parameter",
        "AWS::StepFunctions::StateMachine",
        "AWS::WAFv2::LoggingConfiguration",  # WAF logs bill per GB delivered to the log group
        "AWS::WAFv2::WebACLAssociation",
        "AWS::XRay::ResourcePolicy",
    }
)
FREE_PREFIXES = ("AWS::BedrockAgentCore::", "Custom::", "AWS::CloudFormation::")


@dataclass(frozen=True)
class LineItem:
    """One priced resource: its monthly idle cost and how it was computed."""

    stack: str
    logical_id: str
    resource_type: str
    description: str
    monthly: float


@dataclass
class StackEstimate:
    name: str
    items: list[LineItem] = field(default_factory=list)
    free: int = 0
    unpriced: list[tuple[str, str, str]] = field(default_factory=list)  # (logical id, type, why)

    @property
    def monthly(self) -> float:
        return sum(item.monthly for item in self.items)


@dataclass
class Estimate:
    """The idle cost of a set of templates under one price table."""

    prices: PriceTable
    stacks: list[StackEstimate]
    profile: str | None = None

    @property
    def monthly(self) -> float:
        return sum(stack.monthly for stack in self.stacks)

    @property
    def items(self) -> list[LineItem]:
        return [item for stack in self.stacks for item in stack.items]

    @property
    def unpriced(self) -> list[tuple[str, str, str, str]]:
        return [(stack.name, *entry) for stack in self.stacks for entry in stack.unpriced]

    def by_stack(self) -> dict[str, float]:
        return {stack.name: stack.monthly for stack in self.stacks}


class _Unpriced(Exception):
    """This resource has a cost the table cannot price (the message says why)."""


def estimate_templates(templates: Mapping[str, Template], prices: PriceTable) -> Estimate:
    """Price every stack's template. `templates` maps stack name to the parsed template."""
    stacks = [_estimate_stack(name, template, prices) for name, template in templates.items()]
    return Estimate(prices=prices, stacks=stacks, profile=_profile(templates.values()))


def _estimate_stack(name: str, template: Template, prices: PriceTable) -> StackEstimate:
    resources: Mapping[str, Any] = template.get("Resources", {})
    estimate = StackEstimate(name=name)
    context = _StackContext(name, resources, prices)
    for logical_id, resource in resources.items():
        resource_type = str(resource.get("Type", ""))
        pricer = _PRICERS.get(resource_type)
        if pricer is None:
            if resource_type in FREE_WHEN_IDLE or resource_type.startswith(FREE_PREFIXES):
                estimate.free += 1
            else:
                estimate.unpriced.append((logical_id, resource_type, "type not in the idle-cost model"))
            continue
        try:
            for description, monthly in pricer(context, logical_id, resource.get("Properties", {}) or {}):
                estimate.items.append(
                    LineItem(name, logical_id, resource_type, description, round(monthly, 4))
                )
        except (_Unpriced, PriceError) as exc:
            estimate.unpriced.append((logical_id, resource_type, str(exc)))
    return estimate


@dataclass(frozen=True)
class _StackContext:
    name: str
    resources: Mapping[str, Any]
    prices: PriceTable

    def referring(self, resource_type: str, logical_id: str) -> list[tuple[str, Mapping[str, Any]]]:
        """Resources of a type whose properties mention `logical_id` (Ref or GetAtt)."""
        found = []
        for other_id, resource in self.resources.items():
            if resource.get("Type") == resource_type and _mentions(
                resource.get("Properties", {}), logical_id
            ):
                found.append((other_id, resource.get("Properties", {}) or {}))
        return found

    def target(self, reference: Any) -> Mapping[str, Any] | None:
        """The properties of the resource a `{"Ref": id}` points at, if it is in this template."""
        if isinstance(reference, Mapping) and "Ref" in reference:
            resource = self.resources.get(str(reference["Ref"]))
            if resource is not None:
                return resource.get("Properties", {}) or {}
        return None


def _mentions(value: Any, logical_id: str) -> bool:
    if isinstance(value, Mapping):
        if value.get("Ref") == logical_id:
            return True
        get_att = value.get("Fn::GetAtt")
        if isinstance(get_att, list) and get_att and get_att[0] == logical_id:
            return True
        return any(_mentions(v, logical_id) for v in value.values())
    if isinstance(value, list):
        return any(_mentions(v, logical_id) for v in value)
    return False


def _number(value: Any, what: str, default: float | None = None) -> float:
    if value is None and default is not None:
        return default
    if isinstance(value, bool):
        raise _Unpriced(f"{what} is not a number ({value!r})")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise _Unpriced(f"{what} is not a literal number ({json.dumps(value)[:80]})") from None


def _money(value: float) -> str:
    return f"${value:,.2f}"


# --- pricers: each yields (description, monthly USD) ---------------------------------------------------

Priced = Iterable[tuple[str, float]]


def _ecs_service(ctx: _StackContext, logical_id: str, props: Mapping[str, Any]) -> Priced:
    task = ctx.target(props.get("TaskDefinition"))
    if task is None:
        raise _Unpriced("task definition is not in this template")
    cpu_units = _number(task.get("Cpu"), "task Cpu")
    memory_mib = _number(task.get("Memory"), "task Memory")
    vcpu, memory_gb = cpu_units / 1024, memory_mib / 1024
    launch = props.get("LaunchType")
    if launch is not None and launch != "FARGATE":
        raise _Unpriced(f"launch type {launch} (only Fargate is modelled)")
    tasks = _idle_task_count(ctx, logical_id, props)
    architecture = str((task.get("RuntimePlatform") or {}).get("CpuArchitecture", "X86_64")).upper()
    arch = "arm64" if architecture == "ARM64" else "x86_64"
    spot_tasks, on_demand_tasks = _split_capacity(props.get("CapacityProviderStrategy"), tasks)
    fargate = ctx.prices.fargate
    items = []
    for count, key, label in (
        (on_demand_tasks, arch, "Fargate"),
        (spot_tasks, f"spot_{arch}", "Fargate Spot"),
    ):
        if count <= 0:
            continue
        price = getattr(fargate, key)
        if price is None:
            raise _Unpriced(f"no {key} price in the table")
        hourly = vcpu * price.vcpu_hour + memory_gb * price.gb_hour
        ephemeral = _number((task.get("EphemeralStorage") or {}).get("SizeInGiB"), "ephemeral storage", 20)
        hourly += max(0.0, ephemeral - 20) * fargate.ephemeral_gb_hour_over_20
        description = f"{_fmt(count)} x {_fmt(vcpu)} vCPU / {_fmt(memory_gb)} GB {label} ({arch})"
        items.append((description, ctx.prices.hourly(hourly) * count))
    return items


def _idle_task_count(ctx: _StackContext, logical_id: str, props: Mapping[str, Any]) -> float:
    """With zero traffic, autoscaling settles at its minimum; otherwise the desired count runs."""
    for _, target in ctx.referring("AWS::ApplicationAutoScaling::ScalableTarget", logical_id):
        if target.get("ScalableDimension") == "ecs:service:DesiredCount":
            return _number(target.get("MinCapacity"), "autoscaling MinCapacity")
    return _number(props.get("DesiredCount"), "DesiredCount", 1)


def _split_capacity(strategy: Any, tasks: float) -> tuple[float, float]:
    """(Spot tasks, on-demand tasks) for a capacity-provider strategy (base first, then weights)."""
    if not strategy:
        return 0.0, tasks
    if not isinstance(strategy, list):
        raise _Unpriced("capacity provider strategy is not a literal list")
    remaining = tasks
    spot = on_demand = 0.0
    for entry in strategy:
        base = min(remaining, _number(entry.get("Base"), "capacity provider Base", 0))
        remaining -= base
        if entry.get("CapacityProvider") == "FARGATE_SPOT":
            spot += base
        else:
            on_demand += base
    weights = {
        str(e.get("CapacityProvider")): _number(e.get("Weight"), "capacity provider Weight", 0)
        for e in strategy
    }
    total = sum(weights.values())
    if remaining > 0 and total > 0:
        spot += remaining * weights.get("FARGATE_SPOT", 0) / total
        on_demand += remaining * (total - weights.get("FARGATE_SPOT", 0)) / total
    elif remaining > 0:
        on_demand += remaining
    for provider in weights:
        if provider not in ("FARGATE", "FARGATE_SPOT"):
            raise _Unpriced(f"capacity provider {provider} (only FARGATE and FARGATE_SPOT are modelled)")
    return spot, on_demand


def _ecs_cluster(ctx: _StackContext, logical_id: str, props: Mapping[str, Any]) -> Priced:
    settings = props.get("ClusterSettings") or []
    enabled = any(
        s.get("Name") == "containerInsights" and str(s.get("Value")).lower() in ("enabled", "enhanced")
        for s in settings
        if isinstance(s, Mapping)
    )
    if not enabled:
        return []
    assumptions = ctx.prices.assumptions
    services = len(ctx.referring("AWS::ECS::Service", logical_id))
    metrics = (
        assumptions.container_insights_metrics_per_cluster
        + services * assumptions.container_insights_metrics_per_service
    )
    return [
        (
            f"Container Insights: ~{metrics} metrics ({services} services)",
            metrics * ctx.prices.cloudwatch.custom_metric_month,
        )
    ]


def _aurora_cluster(ctx: _StackContext, logical_id: str, props: Mapping[str, Any]) -> Priced:
    aurora, assumptions = ctx.prices.aurora, ctx.prices.assumptions
    io_optimized = props.get("StorageType") == "aurora-iopt1"
    instances = ctx.referring("AWS::RDS::DBInstance", logical_id)
    items: list[tuple[str, float]] = []
    serverless = [p for _, p in instances if p.get("DBInstanceClass") == "db.serverless"]
    provisioned = [p for _, p in instances if p.get("DBInstanceClass") != "db.serverless"]
    if serverless:
        scaling = props.get("ServerlessV2ScalingConfiguration") or {}
        minimum = _number(scaling.get("MinCapacity"), "ServerlessV2 MinCapacity", 0.5)
        idle_acu = minimum if minimum > 0 else assumptions.aurora_idle_acu_when_min_is_zero
        rate = aurora.serverless_v2_io_optimized_acu_hour if io_optimized else aurora.serverless_v2_acu_hour
        note = f" (min {_fmt(minimum)}: held at the floor by connected clients)" if minimum == 0 else ""
        items.append(
            (
                f"{len(serverless)} Serverless v2 instance(s) x {_fmt(idle_acu)} ACU{note}",
                ctx.prices.hourly(rate * idle_acu) * len(serverless),
            )
        )
    for instance in provisioned:
        instance_class = str(instance.get("DBInstanceClass"))
        if instance_class not in aurora.instance_hour:
            raise _Unpriced(f"no Aurora price for instance class {instance_class}")
        items.append(
            (f"Aurora instance {instance_class}", ctx.prices.hourly(aurora.instance_hour[instance_class]))
        )
    storage_rate = aurora.io_optimized_storage_gb_month if io_optimized else aurora.storage_gb_month
    items.append(
        (f"storage ~{_fmt(assumptions.aurora_storage_gb)} GB", assumptions.aurora_storage_gb * storage_rate)
    )
    return items


def _rds_instance(ctx: _StackContext, logical_id: str, props: Mapping[str, Any]) -> Priced:
    if props.get("DBClusterIdentifier") is not None:
        return []  # priced with its Aurora cluster
    instance_class = str(props.get("DBInstanceClass"))
    table = ctx.prices.rds.postgres_single_az_instance_hour
    if instance_class not in table:
        raise _Unpriced(f"no RDS price for instance class {instance_class}")
    copies = 2 if props.get("MultiAZ") is True else 1
    storage = _number(props.get("AllocatedStorage"), "AllocatedStorage", 20)
    return [
        (f"{copies} x RDS {instance_class}", ctx.prices.hourly(table[instance_class]) * copies),
        (f"{_fmt(storage)} GB gp3 storage", storage * ctx.prices.rds.gp3_storage_gb_month * copies),
    ]


def _nat_gateway(ctx: _StackContext, logical_id: str, props: Mapping[str, Any]) -> Priced:
    return [
        (
            "NAT gateway (hourly; its Elastic IP is priced separately)",
            ctx.prices.hourly(ctx.prices.network.nat_gateway_hour),
        )
    ]


def _ec2_instance(ctx: _StackContext, logical_id: str, props: Mapping[str, Any]) -> Priced:
    """An always-on instance (e.g. a NAT instance): instance hours, EBS volumes, its public IPv4 address."""
    ec2 = ctx.prices.ec2
    instance_type = str(props.get("InstanceType"))
    if instance_type not in ec2.instance_hour:
        raise _Unpriced(f"no EC2 price for instance type {instance_type}")
    mappings = props.get("BlockDeviceMappings")
    if not isinstance(mappings, list) or not mappings:
        raise _Unpriced("no literal BlockDeviceMappings: the root volume size comes from the image")
    volume_gb = 0.0
    for mapping in mappings:
        ebs = mapping.get("Ebs") if isinstance(mapping, Mapping) else None
        if not isinstance(ebs, Mapping):
            continue  # instance-store or no-device mappings bill nothing
        if str(ebs.get("VolumeType", "gp2")) != "gp3":
            raise _Unpriced(f"EBS volume type {ebs.get('VolumeType', 'gp2')} (only gp3 is modelled)")
        volume_gb += _number(ebs.get("VolumeSize"), "EBS VolumeSize")
    items = [
        (f"EC2 {instance_type} (on-demand)", ctx.prices.hourly(ec2.instance_hour[instance_type])),
        (f"{_fmt(volume_gb)} GB gp3 EBS", volume_gb * ec2.ebs_gp3_gb_month),
    ]
    if _has_public_ipv4(ctx, props):
        items.append(("public IPv4 address", ctx.prices.hourly(ctx.prices.network.public_ipv4_hour)))
    return items


def _has_public_ipv4(ctx: _StackContext, props: Mapping[str, Any]) -> bool:
    interfaces = props.get("NetworkInterfaces")
    if isinstance(interfaces, list) and interfaces:
        return any(
            isinstance(i, Mapping) and i.get("AssociatePublicIpAddress") in (True, "true") for i in interfaces
        )
    subnet = ctx.target(props.get("SubnetId"))
    return subnet is not None and subnet.get("MapPublicIpOnLaunch") is True


def _elastic_ip(ctx: _StackContext, logical_id: str, props: Mapping[str, Any]) -> Priced:
    return [("public IPv4 address", ctx.prices.hourly(ctx.prices.network.public_ipv4_hour))]


def _load_balancer(ctx: _StackContext, logical_id: str, props: Mapping[str, Any]) -> Priced:
    network = ctx.prices.network
    kind = str(props.get("Type", "application"))
    if kind == "application":
        items = [
            (
                "Application Load Balancer (hourly; no LCUs while idle)",
                ctx.prices.hourly(network.application_load_balancer_hour),
            )
        ]
    elif kind == "network":
        items = [
            (
                "Network Load Balancer (hourly; no LCUs while idle)",
                ctx.prices.hourly(network.network_load_balancer_hour),
            )
        ]
    else:
        raise _Unpriced(f"load balancer type {kind}")
    if props.get("Scheme", "internet-facing") == "internet-facing":
        subnets = props.get("Subnets") or props.get("SubnetMappings") or []
        count = len(subnets) if isinstance(subnets, list) else 2
        items.append(
            (
                f"{count} public IPv4 addresses (one per subnet)",
                ctx.prices.hourly(network.public_ipv4_hour) * count,
            )
        )
    return items


def _vpc_endpoint(ctx: _StackContext, logical_id: str, props: Mapping[str, Any]) -> Priced:
    kind = props.get("VpcEndpointType", "Gateway")
    if kind == "Gateway":
        return [("gateway endpoint (free)", 0.0)]
    if kind != "Interface":
        raise _Unpriced(f"endpoint type {kind}")
    subnets = props.get("SubnetIds") or []
    if not isinstance(subnets, list):
        raise _Unpriced("SubnetIds is not a literal list")
    service = _service_name(props.get("ServiceName"))
    return [
        (
            f"interface endpoint {service} in {len(subnets)} AZs",
            ctx.prices.hourly(ctx.prices.network.interface_endpoint_az_hour) * len(subnets),
        )
    ]


def _service_name(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, str) else value
    for part in (
        "bedrock-runtime",
        "secretsmanager",
        "ecr.dkr",
        "ecr.api",
        "logs",
        "sts",
        "ssm",
        "monitoring",
    ):
        if part in text:
            return part
    return "service"


def _cache_replication_group(ctx: _StackContext, logical_id: str, props: Mapping[str, Any]) -> Priced:
    engine = str(props.get("Engine", "redis")).lower()
    node_type = str(props.get("CacheNodeType"))
    if props.get("NumNodeGroups") is not None:
        nodes = _number(props.get("NumNodeGroups"), "NumNodeGroups") * (
            1 + _number(props.get("ReplicasPerNodeGroup"), "ReplicasPerNodeGroup", 0)
        )
    else:
        nodes = _number(props.get("NumCacheClusters"), "NumCacheClusters", 1)
    return [_cache_nodes(ctx, engine, node_type, nodes)]


def _cache_cluster(ctx: _StackContext, logical_id: str, props: Mapping[str, Any]) -> Priced:
    engine = str(props.get("Engine", "redis")).lower()
    nodes = _number(props.get("NumCacheNodes"), "NumCacheNodes", 1)
    return [_cache_nodes(ctx, engine, str(props.get("CacheNodeType")), nodes)]


def _cache_nodes(ctx: _StackContext, engine: str, node_type: str, nodes: float) -> tuple[str, float]:
    table = ctx.prices.elasticache.node_hour.get(engine)
    if table is None or node_type not in table:
        raise _Unpriced(f"no ElastiCache {engine} price for {node_type}")
    return f"{_fmt(nodes)} x {engine} {node_type}", ctx.prices.hourly(table[node_type]) * nodes


def _serverless_cache(ctx: _StackContext, logical_id: str, props: Mapping[str, Any]) -> Priced:
    engine = str(props.get("Engine", "redis")).lower()
    price = ctx.prices.elasticache.serverless.get(engine)
    if price is None:
        raise _Unpriced(f"no ElastiCache Serverless {engine} price")
    return [
        (
            f"{engine} serverless minimum {price.minimum_gb} GB",
            ctx.prices.hourly(price.gb_hour * price.minimum_gb),
        )
    ]


def _secret(ctx: _StackContext, logical_id: str, props: Mapping[str, Any]) -> Priced:
    return [("secret", ctx.prices.security.secrets_manager_secret_month)]


def _kms_key(ctx: _StackContext, logical_id: str, props: Mapping[str, Any]) -> Priced:
    return [("customer-managed key", ctx.prices.security.kms_key_month)]


def _dashboard(ctx: _StackContext, logical_id: str, props: Mapping[str, Any]) -> Priced:
    return [("dashboard", ctx.prices.cloudwatch.dashboard_month)]


def _alarm(ctx: _StackContext, logical_id: str, props: Mapping[str, Any]) -> Priced:
    cloudwatch = ctx.prices.cloudwatch
    metrics = props.get("Metrics")
    count = (
        sum(1 for m in metrics if isinstance(m, Mapping) and "MetricStat" in m)
        if isinstance(metrics, list)
        else 1
    )
    high_resolution = _number(props.get("Period"), "Period", 60) < 60
    rate = (
        cloudwatch.high_resolution_alarm_metric_month
        if high_resolution
        else cloudwatch.standard_alarm_metric_month
    )
    return [(f"alarm over {count} metric(s)", rate * count)]


def _composite_alarm(ctx: _StackContext, logical_id: str, props: Mapping[str, Any]) -> Priced:
    return [("composite alarm", ctx.prices.cloudwatch.composite_alarm_month)]


def _log_group(ctx: _StackContext, logical_id: str, props: Mapping[str, Any]) -> Priced:
    cloudwatch, gb = ctx.prices.cloudwatch, ctx.prices.assumptions.log_group_idle_gb_month
    retention_days = _number(props.get("RetentionInDays"), "RetentionInDays", 3653)
    stored_gb = gb * min(retention_days, 3653) / 30  # steady state: retention x monthly volume
    return [
        (
            f"~{_fmt(gb)} GB/month idle logs, {int(retention_days)}-day retention",
            gb * cloudwatch.log_ingestion_gb + stored_gb * cloudwatch.log_storage_gb_month,
        )
    ]


def _metric_filter(ctx: _StackContext, logical_id: str, props: Mapping[str, Any]) -> Priced:
    count = len(props.get("MetricTransformations") or [1])
    return [
        (f"{count} custom metric(s) from a log filter", count * ctx.prices.cloudwatch.custom_metric_month)
    ]


def _efs(ctx: _StackContext, logical_id: str, props: Mapping[str, Any]) -> Priced:
    storage, gb = ctx.prices.storage, ctx.prices.assumptions.efs_gb
    items = [(f"~{_fmt(gb)} GB EFS Standard", gb * storage.efs_standard_gb_month)]
    if (props.get("BackupPolicy") or {}).get("Status") == "ENABLED":
        items.append((f"~{_fmt(gb)} GB AWS Backup", gb * storage.efs_backup_gb_month))
    return items


def _hosted_zone(ctx: _StackContext, logical_id: str, props: Mapping[str, Any]) -> Priced:
    return [("private hosted zone", ctx.prices.network.route53_hosted_zone_month)]


def _distribution(ctx: _StackContext, logical_id: str, props: Mapping[str, Any]) -> Priced:
    return [("CloudFront (requests and transfer only)", ctx.prices.network.cloudfront_fixed_month)]


def _opensearch_collection(ctx: _StackContext, logical_id: str, props: Mapping[str, Any]) -> Priced:
    ocus = 1.0 if props.get("StandbyReplicas") == "DISABLED" else 2.0
    return [
        (
            f"OpenSearch Serverless minimum {_fmt(ocus)} OCU",
            ctx.prices.hourly(ctx.prices.search.opensearch_serverless_ocu_hour) * ocus,
        )
    ]


def _dynamodb_table(ctx: _StackContext, logical_id: str, props: Mapping[str, Any]) -> Priced:
    if props.get("BillingMode", "PROVISIONED") == "PAY_PER_REQUEST":
        return [("on-demand table (requests only)", 0.0)]
    throughput = props.get("ProvisionedThroughput") or {}
    reads = _number(throughput.get("ReadCapacityUnits"), "ReadCapacityUnits")
    writes = _number(throughput.get("WriteCapacityUnits"), "WriteCapacityUnits")
    dynamodb = ctx.prices.dynamodb
    return [
        (
            f"{_fmt(reads)} RCU + {_fmt(writes)} WCU",
            ctx.prices.hourly(reads * dynamodb.rcu_hour + writes * dynamodb.wcu_hour),
        )
    ]


def _web_acl(ctx: _StackContext, logical_id: str, props: Mapping[str, Any]) -> Priced:
    rules = props.get("Rules") or []
    count = len(rules) if isinstance(rules, list) else 0
    security = ctx.prices.security
    return [
        (f"WAF web ACL with {count} rule(s)", security.waf_web_acl_month + count * security.waf_rule_month)
    ]


_PRICERS = {
    "AWS::ECS::Service": _ecs_service,
    "AWS::ECS::Cluster": _ecs_cluster,
    "AWS::RDS::DBCluster": _aurora_cluster,
    "AWS::RDS::DBInstance": _rds_instance,
    "AWS::EC2::NatGateway": _nat_gateway,
    "AWS::EC2::EIP": _elastic_ip,
    "AWS::EC2::Instance": _ec2_instance,
    "AWS::ElasticLoadBalancingV2::LoadBalancer": _load_balancer,
    "AWS::EC2::VPCEndpoint": _vpc_endpoint,
    "AWS::ElastiCache::ReplicationGroup": _cache_replication_group,
    "AWS::ElastiCache::CacheCluster": _cache_cluster,
    "AWS::ElastiCache::ServerlessCache": _serverless_cache,
    "AWS::SecretsManager::Secret": _secret,
    "AWS::KMS::Key": _kms_key,
    "AWS::CloudWatch::Dashboard": _dashboard,
    "AWS::CloudWatch::Alarm": _alarm,
    "AWS::CloudWatch::CompositeAlarm": _composite_alarm,
    "AWS::Logs::LogGroup": _log_group,
    "AWS::Logs::MetricFilter": _metric_filter,
    "AWS::EFS::FileSystem": _efs,
    "AWS::ServiceDiscovery::PrivateDnsNamespace": _hosted_zone,
    "AWS::Route53::HostedZone": _hosted_zone,
    "AWS::CloudFront::Distribution": _distribution,
    "AWS::OpenSearchServerless::Collection": _opensearch_collection,
    "AWS::DynamoDB::Table": _dynamodb_table,
    "AWS::WAFv2::WebACL": _web_acl,
}


def _fmt(value: float) -> str:
    return f"{value:g}"


def _profile(templates: Iterable[Template]) -> str | None:
    """The `profile` cost-allocation tag the app puts on every taggable resource, if present."""
    for template in templates:
        for resource in template.get("Resources", {}).values():
            tags = (resource.get("Properties") or {}).get("Tags")
            if isinstance(tags, list):
                for tag in tags:
                    if isinstance(tag, Mapping) and tag.get("Key") == "profile":
                        return str(tag.get("Value"))
    return None


# --- cloud assemblies ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Assembly:
    templates: dict[str, dict[str, Any]]
    region: str | None


def read_assembly(outdir: Path) -> Assembly:
    """The stack templates of a cloud assembly (cdk.out) and the region they target (None if agnostic).

    Raises:
        FileNotFoundError: when `outdir` holds no manifest.json (run `make synth` first).
    """
    manifest_path = outdir / "manifest.json"
    if not manifest_path.is_file():
        raise FileNotFoundError(f"{manifest_path} does not exist: run `make synth` first")
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    templates: dict[str, dict[str, Any]] = {}
    regions = set()
    for name, artifact in sorted(manifest.get("artifacts", {}).items()):
        if artifact.get("type") != "aws:cloudformation:stack":
            continue
        template_file = outdir / artifact["properties"]["templateFile"]
        templates[name] = json.loads(template_file.read_text(encoding="utf-8"))
        region = str(artifact.get("environment", "")).rsplit("/", 1)[-1]
        if region and region != "unknown-region":
            regions.add(region)
    if len(regions) > 1:
        logger.warning("stacks target several regions %s; using %s", sorted(regions), sorted(regions)[0])
    return Assembly(templates=templates, region=sorted(regions)[0] if regions else None)


def money(value: float) -> str:
    """`$1,234.56`."""
    return _money(value)

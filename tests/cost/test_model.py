"""The idle-cost arithmetic, pinned on small hand-written templates and the checked-in us-east-1 table."""

from __future__ import annotations

from typing import Any

import pytest

from cost.model import estimate_templates
from cost.prices import PriceTable, load_prices

HOURS = 730


@pytest.fixture(scope="module")
def prices() -> PriceTable:
    return load_prices("us-east-1")


def _total(prices: PriceTable, resources: dict[str, Any], name: str = "aaf-test") -> float:
    return estimate_templates({name: {"Resources": resources}}, prices).monthly


def _task(cpu: str, memory: str, arch: str = "X86_64") -> dict[str, Any]:
    return {
        "Type": "AWS::ECS::TaskDefinition",
        "Properties": {"Cpu": cpu, "Memory": memory, "RuntimePlatform": {"CpuArchitecture": arch}},
    }


def _service(**properties: Any) -> dict[str, Any]:
    return {"Type": "AWS::ECS::Service", "Properties": {"TaskDefinition": {"Ref": "Task"}, **properties}}


def test_table_is_dated_and_names_its_source(prices: PriceTable) -> None:
    assert prices.region == "us-east-1" and prices.as_of.year >= 2025 and "AWS" in prices.source


def test_fargate_on_demand_tasks(prices: PriceTable) -> None:
    resources = {"Task": _task("1024", "2048"), "Service": _service(DesiredCount=2, LaunchType="FARGATE")}
    assert _total(prices, resources) == pytest.approx(2 * (1 * 0.04048 + 2 * 0.004445) * HOURS, abs=0.01)


def test_fargate_arm64(prices: PriceTable) -> None:
    resources = {"Task": _task("512", "1024", "ARM64"), "Service": _service(DesiredCount=1)}
    assert _total(prices, resources) == pytest.approx((0.5 * 0.03238 + 1 * 0.00356) * HOURS, abs=0.01)


def test_fargate_spot(prices: PriceTable) -> None:
    strategy = [{"CapacityProvider": "FARGATE_SPOT", "Weight": 1}]
    resources = {
        "Task": _task("1024", "4096"),
        "Service": _service(DesiredCount=1, CapacityProviderStrategy=strategy),
    }
    assert _total(prices, resources) == pytest.approx((0.01334053 + 4 * 0.00146489) * HOURS, abs=0.01)


def test_capacity_strategy_base_goes_first_then_weights(prices: PriceTable) -> None:
    strategy = [
        {"CapacityProvider": "FARGATE", "Base": 1, "Weight": 1},
        {"CapacityProvider": "FARGATE_SPOT", "Weight": 3},
    ]
    resources = {
        "Task": _task("1024", "2048"),
        "Service": _service(DesiredCount=5, CapacityProviderStrategy=strategy),
    }
    on_demand = 1 * 0.04048 + 2 * 0.004445
    spot = 1 * 0.01334053 + 2 * 0.00146489
    # 1 base task on demand, the other 4 split 1:3.
    assert _total(prices, resources) == pytest.approx((2 * on_demand + 3 * spot) * HOURS, abs=0.01)


def test_idle_autoscaled_service_runs_its_minimum(prices: PriceTable) -> None:
    resources = {
        "Task": _task("1024", "2048"),
        "Service": _service(DesiredCount=4),
        "Scaling": {
            "Type": "AWS::ApplicationAutoScaling::ScalableTarget",
            "Properties": {
                "MinCapacity": 1,
                "MaxCapacity": 6,
                "ScalableDimension": "ecs:service:DesiredCount",
                "ResourceId": {
                    "Fn::Join": [
                        "",
                        ["service/", {"Ref": "Cluster"}, "/", {"Fn::GetAtt": ["Service", "Name"]}],
                    ]
                },
            },
        },
    }
    assert _total(prices, resources) == pytest.approx((0.04048 + 2 * 0.004445) * HOURS, abs=0.01)


def test_ephemeral_storage_above_20_gb_is_billed(prices: PriceTable) -> None:
    task = _task("256", "512")
    task["Properties"]["EphemeralStorage"] = {"SizeInGiB": 50}
    base = (0.25 * 0.04048 + 0.5 * 0.004445) * HOURS
    assert _total(prices, {"Task": task, "Service": _service()}) == pytest.approx(
        base + 30 * 0.000111 * HOURS, abs=0.01
    )


def test_non_literal_desired_count_is_reported_not_guessed(prices: PriceTable) -> None:
    resources = {"Task": _task("1024", "2048"), "Service": _service(DesiredCount={"Ref": "Count"})}
    estimate = estimate_templates({"aaf-test": {"Resources": resources}}, prices)
    assert estimate.monthly == 0
    assert estimate.unpriced == [
        (
            "aaf-test",
            "Service",
            "AWS::ECS::Service",
            'DesiredCount is not a literal number ({"Ref": "Count"})',
        )
    ]


def _aurora(minimum: float, instances: int, storage_type: str | None = None) -> dict[str, Any]:
    cluster: dict[str, Any] = {"ServerlessV2ScalingConfiguration": {"MinCapacity": minimum, "MaxCapacity": 4}}
    if storage_type:
        cluster["StorageType"] = storage_type
    resources: dict[str, Any] = {"Db": {"Type": "AWS::RDS::DBCluster", "Properties": cluster}}
    for index in range(instances):
        resources[f"Instance{index}"] = {
            "Type": "AWS::RDS::DBInstance",
            "Properties": {"DBClusterIdentifier": {"Ref": "Db"}, "DBInstanceClass": "db.serverless"},
        }
    return resources


def test_aurora_serverless_bills_its_minimum_per_instance(prices: PriceTable) -> None:
    assert _total(prices, _aurora(1, 2)) == pytest.approx(2 * 1 * 0.12 * HOURS + 1 * 0.10, abs=0.01)


def test_aurora_min_zero_idles_at_half_an_acu_with_connected_clients(prices: PriceTable) -> None:
    assert _total(prices, _aurora(0, 1)) == pytest.approx(0.5 * 0.12 * HOURS + 0.10, abs=0.01)


def test_aurora_io_optimized(prices: PriceTable) -> None:
    assert _total(prices, _aurora(0.5, 1, "aurora-iopt1")) == pytest.approx(
        0.5 * 0.156 * HOURS + 0.225, abs=0.01
    )


def test_standalone_rds_instance(prices: PriceTable) -> None:
    resources = {
        "Db": {
            "Type": "AWS::RDS::DBInstance",
            "Properties": {"DBInstanceClass": "db.t4g.micro", "AllocatedStorage": "20", "MultiAZ": False},
        }
    }
    assert _total(prices, resources) == pytest.approx(0.016 * HOURS + 20 * 0.115, abs=0.01)


def test_nat_gateway_and_its_address(prices: PriceTable) -> None:
    resources = {
        "Nat": {
            "Type": "AWS::EC2::NatGateway",
            "Properties": {"AllocationId": {"Fn::GetAtt": ["Eip", "AllocationId"]}},
        },
        "Eip": {"Type": "AWS::EC2::EIP", "Properties": {"Domain": "vpc"}},
    }
    assert _total(prices, resources) == pytest.approx((0.045 + 0.005) * HOURS, abs=0.01)


def _instance(**properties: Any) -> dict[str, Any]:
    root = {"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 8, "VolumeType": "gp3", "Encrypted": True}}
    return {
        "Type": "AWS::EC2::Instance",
        "Properties": {"InstanceType": "t4g.nano", "BlockDeviceMappings": [root], **properties},
    }


def test_nat_instance_with_its_volume_and_public_address(prices: PriceTable) -> None:
    interfaces = [{"DeviceIndex": "0", "AssociatePublicIpAddress": True, "SubnetId": {"Ref": "Subnet"}}]
    resources = {"Nat": _instance(NetworkInterfaces=interfaces)}
    assert _total(prices, resources) == pytest.approx(0.0042 * HOURS + 8 * 0.08 + 0.005 * HOURS, abs=0.01)


def test_instance_gets_a_public_address_from_its_subnet(prices: PriceTable) -> None:
    subnet = {"Type": "AWS::EC2::Subnet", "Properties": {"MapPublicIpOnLaunch": True}}
    private = {"Type": "AWS::EC2::Subnet", "Properties": {"MapPublicIpOnLaunch": False}}
    public_total = _total(prices, {"Subnet": subnet, "Vm": _instance(SubnetId={"Ref": "Subnet"})})
    private_total = _total(prices, {"Subnet": private, "Vm": _instance(SubnetId={"Ref": "Subnet"})})
    assert public_total - private_total == pytest.approx(0.005 * HOURS, abs=0.01)
    assert private_total == pytest.approx(0.0042 * HOURS + 8 * 0.08, abs=0.01)


def test_instance_without_literal_volumes_is_reported_not_guessed(prices: PriceTable) -> None:
    resources = {"Vm": {"Type": "AWS::EC2::Instance", "Properties": {"InstanceType": "t4g.nano"}}}
    estimate = estimate_templates({"aaf-test": {"Resources": resources}}, prices)
    assert [entry[1:3] for entry in estimate.unpriced] == [("Vm", "AWS::EC2::Instance")]
    assert "BlockDeviceMappings" in estimate.unpriced[0][3]


def test_unknown_instance_type_is_reported(prices: PriceTable) -> None:
    estimate = estimate_templates(
        {"aaf-test": {"Resources": {"Vm": _instance(InstanceType="x9.huge")}}}, prices
    )
    assert "no EC2 price for instance type x9.huge" in estimate.unpriced[0][3]


def test_interface_endpoints_bill_per_az(prices: PriceTable) -> None:
    resources = {
        "Endpoint": {
            "Type": "AWS::EC2::VPCEndpoint",
            "Properties": {
                "VpcEndpointType": "Interface",
                "ServiceName": "com.amazonaws.us-east-1.logs",
                "SubnetIds": ["a", "b", "c"],
            },
        },
        "Gateway": {
            "Type": "AWS::EC2::VPCEndpoint",
            "Properties": {"ServiceName": "com.amazonaws.us-east-1.s3"},
        },
    }
    assert _total(prices, resources) == pytest.approx(3 * 0.01 * HOURS, abs=0.01)


def test_internet_facing_alb_adds_public_addresses(prices: PriceTable) -> None:
    public = {
        "Type": "AWS::ElasticLoadBalancingV2::LoadBalancer",
        "Properties": {"Scheme": "internet-facing", "Subnets": ["a", "b"]},
    }
    internal = {
        "Type": "AWS::ElasticLoadBalancingV2::LoadBalancer",
        "Properties": {"Scheme": "internal", "Subnets": ["a", "b"]},
    }
    assert _total(prices, {"Alb": public}) == pytest.approx((0.0225 + 2 * 0.005) * HOURS, abs=0.01)
    assert _total(prices, {"Alb": internal}) == pytest.approx(0.0225 * HOURS, abs=0.01)


def test_cache_nodes_by_engine(prices: PriceTable) -> None:
    valkey = {
        "Type": "AWS::ElastiCache::ReplicationGroup",
        "Properties": {"Engine": "valkey", "CacheNodeType": "cache.t4g.micro", "NumCacheClusters": 2},
    }
    redis = {
        "Type": "AWS::ElastiCache::CacheCluster",
        "Properties": {"Engine": "redis", "CacheNodeType": "cache.t4g.small", "NumCacheNodes": 1},
    }
    assert _total(prices, {"Cache": valkey}) == pytest.approx(2 * 0.0128 * HOURS, abs=0.01)
    assert _total(prices, {"Cache": redis}) == pytest.approx(0.032 * HOURS, abs=0.01)


def test_unknown_cache_node_type_is_reported(prices: PriceTable) -> None:
    cache = {
        "Type": "AWS::ElastiCache::CacheCluster",
        "Properties": {"Engine": "redis", "CacheNodeType": "cache.x9.huge"},
    }
    estimate = estimate_templates({"s": {"Resources": {"Cache": cache}}}, prices)
    assert estimate.unpriced[0][3] == "no ElastiCache redis price for cache.x9.huge"


def test_monthly_items(prices: PriceTable) -> None:
    resources = {
        "Secret": {"Type": "AWS::SecretsManager::Secret", "Properties": {}},
        "Key": {"Type": "AWS::KMS::Key", "Properties": {}},
        "Dashboard": {"Type": "AWS::CloudWatch::Dashboard", "Properties": {}},
        "Zone": {"Type": "AWS::ServiceDiscovery::PrivateDnsNamespace", "Properties": {}},
        "Filter": {"Type": "AWS::Logs::MetricFilter", "Properties": {"MetricTransformations": [{}]}},
    }
    assert _total(prices, resources) == pytest.approx(0.40 + 1.00 + 3.00 + 0.50 + 0.30, abs=0.001)


def test_alarms_bill_per_metric_not_per_expression(prices: PriceTable) -> None:
    math_alarm = {
        "Type": "AWS::CloudWatch::Alarm",
        "Properties": {
            "Metrics": [
                {"Id": "expr", "Expression": "a + b + c"},
                {"Id": "a", "MetricStat": {}},
                {"Id": "b", "MetricStat": {}},
                {"Id": "c", "MetricStat": {}},
            ]
        },
    }
    simple = {"Type": "AWS::CloudWatch::Alarm", "Properties": {"MetricName": "Errors", "Period": 300}}
    fast = {"Type": "AWS::CloudWatch::Alarm", "Properties": {"MetricName": "Errors", "Period": 10}}
    assert _total(prices, {"Math": math_alarm}) == pytest.approx(0.30, abs=0.001)
    assert _total(prices, {"Simple": simple, "Fast": fast}) == pytest.approx(0.10 + 0.30, abs=0.001)


def test_idle_log_group_cost_follows_retention(prices: PriceTable) -> None:
    group = {"Type": "AWS::Logs::LogGroup", "Properties": {"RetentionInDays": 30}}
    # 0.05 GB ingested a month at $0.50/GB, and 0.05 GB kept (30 days) at $0.03/GB-month.
    assert _total(prices, {"Logs": group}) == pytest.approx(0.05 * 0.50 + 0.05 * 0.03, abs=0.0001)


def test_efs_with_backups(prices: PriceTable) -> None:
    files = {"Type": "AWS::EFS::FileSystem", "Properties": {"BackupPolicy": {"Status": "ENABLED"}}}
    assert _total(prices, {"Files": files}) == pytest.approx(0.30 + 0.05, abs=0.001)


def test_opensearch_serverless_floor(prices: PriceTable) -> None:
    collection = {"Type": "AWS::OpenSearchServerless::Collection", "Properties": {"Name": "kb"}}
    assert _total(prices, {"Collection": collection}) == pytest.approx(2 * 0.24 * HOURS, abs=0.01)


def test_usage_priced_resources_cost_nothing_idle(prices: PriceTable) -> None:
    resources = {
        "Fn": {"Type": "AWS::Lambda::Function", "Properties": {}},
        "Runtime": {"Type": "AWS::BedrockAgentCore::Runtime", "Properties": {}},
        "Table": {"Type": "AWS::DynamoDB::Table", "Properties": {"BillingMode": "PAY_PER_REQUEST"}},
        "Cdn": {"Type": "AWS::CloudFront::Distribution", "Properties": {}},
        "Bucket": {"Type": "AWS::S3::Bucket", "Properties": {}},
    }
    estimate = estimate_templates({"s": {"Resources": resources}}, prices)
    assert estimate.monthly == 0 and estimate.unpriced == []


def test_unknown_types_are_listed(prices: PriceTable) -> None:
    estimate = estimate_templates(
        {"s": {"Resources": {"Thing": {"Type": "AWS::Neptune::DBCluster"}}}}, prices
    )
    assert estimate.unpriced == [("s", "Thing", "AWS::Neptune::DBCluster", "type not in the idle-cost model")]


def test_container_insights_counts_cluster_and_service_metrics(prices: PriceTable) -> None:
    resources = {
        "Cluster": {
            "Type": "AWS::ECS::Cluster",
            "Properties": {"ClusterSettings": [{"Name": "containerInsights", "Value": "enabled"}]},
        },
        "Task": _task("256", "512"),
        "Service": _service(Cluster={"Ref": "Cluster"}),
    }
    estimate = estimate_templates({"s": {"Resources": resources}}, prices)
    insights = [i for i in estimate.items if i.logical_id == "Cluster"]
    assert insights[0].monthly == pytest.approx((10 + 12) * 0.30, abs=0.001)


def test_totals_per_stack(prices: PriceTable) -> None:
    estimate = estimate_templates(
        {
            "aaf-a": {"Resources": {"Key": {"Type": "AWS::KMS::Key", "Properties": {}}}},
            "aaf-b": {"Resources": {"Secret": {"Type": "AWS::SecretsManager::Secret", "Properties": {}}}},
        },
        prices,
    )
    assert estimate.by_stack() == {"aaf-a": 1.0, "aaf-b": 0.4}
    assert estimate.monthly == pytest.approx(1.4)


def test_profile_comes_from_the_cost_allocation_tag(prices: PriceTable) -> None:
    tagged = {"Key": {"Type": "AWS::KMS::Key", "Properties": {"Tags": [{"Key": "profile", "Value": "dev"}]}}}
    assert estimate_templates({"s": {"Resources": tagged}}, prices).profile == "dev"


def test_platform_console_resources_are_priced(prices: PriceTable) -> None:
    # what llm_gateway.admin_ui adds (docs/platform-console.md): in dev the internal ALB, everywhere the
    # distribution, its VPC origin and path function (per request), the login secret; in prod a
    # CloudFront web ACL with three rules and its logging configuration (per GB logged)
    acl_rules = [{"Name": name} for name in ("Common", "KnownBadInputs", "RateLimitPerIp")]
    resources = {
        "Alb": {"Type": "AWS::ElasticLoadBalancingV2::LoadBalancer", "Properties": {"Scheme": "internal"}},
        "Console": {"Type": "AWS::CloudFront::Distribution", "Properties": {}},
        "Origin": {"Type": "AWS::CloudFront::VpcOrigin", "Properties": {}},
        "Paths": {"Type": "AWS::CloudFront::Function", "Properties": {}},
        "Login": {"Type": "AWS::SecretsManager::Secret", "Properties": {}},
        "Acl": {"Type": "AWS::WAFv2::WebACL", "Properties": {"Scope": "CLOUDFRONT", "Rules": acl_rules}},
        "AclLogging": {"Type": "AWS::WAFv2::LoggingConfiguration", "Properties": {}},
    }
    estimate = estimate_templates({"s": {"Resources": resources}}, prices)

    assert estimate.unpriced == []
    assert estimate.monthly == pytest.approx(0.0225 * HOURS + 0.40 + 5.00 + 3 * 1.00, abs=0.01)

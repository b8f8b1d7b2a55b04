"""PrivateOriginDistribution: the ids a plain `Distribution(stack, "Distribution")` and its VPC origin had,
HTTPS for viewers, nothing cached, the chosen managed origin request policy, a VPC origin to the internal
ALB (whose security group admits the VPC on port 80), standard logs when a bucket is given, and exactly
the acknowledgements whose findings occur. Also `http_health_check` (stacks/constructs/fargate_service.py)
on the target groups behind them.

The managed policy ids are CloudFront's published ones
(https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/using-managed-cache-policies.html,
https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/using-managed-origin-request-policies.html),
written out here so a wrong policy in CDK or in the block shows.
"""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_elasticloadbalancingv2 as elbv2

from stacks.constructs import BuildingBlock
from stacks.constructs.fargate_service import LoadBalancer, http_health_check
from stacks.constructs.log_bucket import LogBucket
from stacks.constructs.private_origin_distribution import PrivateOriginDistribution
from tests.stacks.constructs import (
    ACCOUNT_REGION,
    Synthesized,
    assert_acknowledged_as_pinned,
    cdk_logical_id,
    small_vpc,
    synth_blocks,
)
from tests.stacks.constructs.acknowledgements import ACKNOWLEDGEMENTS

CACHING_DISABLED = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
ALL_VIEWER = "216adef6-5c7f-47e4-b989-5492eafa07d3"
ALL_VIEWER_EXCEPT_HOST_HEADER = "b689b0a8-53d0-40ab-baf2-68738e2966ac"
PRICE_CLASS_200 = "PriceClass_200"
VPC_CIDR = "10.0.0.0/16"  # ec2.Vpc's default
HTTP_ONLY = "Internal test load balancer behind CloudFront: plain HTTP stays inside the VPC."
NO_LOGS = "Test distribution: the app behind it logs every request itself."

BLOCKS: dict[str, BuildingBlock] = {}


def _entry(
    stack: cdk.Stack, vpc: ec2.IVpc, name: str, health_check: elbv2.HealthCheck, logs: Any
) -> LoadBalancer:
    group = ec2.SecurityGroup(stack, f"{name}AlbSecurityGroup", vpc=vpc, allow_all_outbound=False)
    targets = elbv2.ApplicationTargetGroup(
        stack,
        f"{name}Targets",
        vpc=vpc,
        port=8080,
        protocol=elbv2.ApplicationProtocol.HTTP,
        target_type=elbv2.TargetType.IP,
        health_check=health_check,
    )
    return LoadBalancer(
        stack,
        f"{name}LoadBalancer",
        vpc=vpc,
        subnets=ec2.SubnetSelection(subnet_group_name="services"),
        security_group=group,
        idle_timeout_seconds=120,
        deletion_protection=False,
        access_logs=logs,
        default_target_group=targets,
        plain_http_reason=HTTP_ONLY,
        no_waf_reason="Internal test load balancer reached only through the test distribution.",
    )


def _build(stack: cdk.Stack) -> None:
    vpc = small_vpc(stack)
    logs = LogBucket(stack, "AccessLogs", expire_days=14, retain=False, cloudfront_logging=True).bucket
    chat = _entry(
        stack, vpc, "Chat", http_health_check("/health", 15, timeout_seconds=None, thresholds=None), logs
    )
    tool = _entry(stack, vpc, "Tool", http_health_check("/api/health", 30), logs)
    # Named as the stacks name theirs, so the ids below are the deployed ones.
    BLOCKS["logged"] = PrivateOriginDistribution(
        stack,
        "Distribution",
        load_balancer=chat.load_balancer,
        vpc_cidr=VPC_CIDR,
        forward_host_header=True,
        price_class="200",
        comment="chat",
        access_logs=logs,
        vpc_origin_name="test-chat-edge",
        keepalive_timeout_seconds=60,
        no_geo_restriction_reason="Test distribution for staff anywhere; sign-in decides access.",
        no_waf_reason="Test distribution; a WAF is an optional hardening step.",
    )
    BLOCKS["unlogged"] = PrivateOriginDistribution(
        stack,
        "ToolDistribution",
        load_balancer=tool.load_balancer,
        vpc_cidr=VPC_CIDR,
        forward_host_header=False,
        price_class="100",
        comment="tool",
        origin_rule_description="CloudFront VPC origin (inside the VPC)",
        no_geo_restriction_reason="Test tool behind its own login.",
        no_waf_reason="Test tool: every route needs a login.",
        no_access_logs_reason=NO_LOGS,
    )


@pytest.fixture(scope="module")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    return synth_blocks(tmp_path_factory.mktemp("private-origin"), _build, env=ACCOUNT_REGION)


def _distribution(synthesized: Synthesized, construct_id: str) -> dict[str, Any]:
    resources = synthesized.resources("AWS::CloudFront::Distribution")
    return dict(
        resources[cdk_logical_id(construct_id, "Default", "Resource")]["Properties"]["DistributionConfig"]
    )


def _vpc_origin(synthesized: Synthesized, construct_id: str) -> dict[str, Any]:
    resources = synthesized.resources("AWS::CloudFront::VpcOrigin")
    return dict(
        resources[cdk_logical_id(construct_id, "Default", "Origin1", "VpcOrigin", "Resource")]["Properties"]
    )


def _balancer_id(name: str) -> str:
    return cdk_logical_id(f"{name}LoadBalancer", "Default", "Resource")


def test_distribution_and_vpc_origin_keep_the_ids_of_the_stacks_plain_constructs(
    synthesized: Synthesized,
) -> None:
    # The ids aaf-edge and aaf-observability deployed with `Distribution(stack, "Distribution")`.
    assert "Distribution830FAC52" in synthesized.resources("AWS::CloudFront::Distribution")
    assert "DistributionOrigin1VpcOrigin1389D846" in synthesized.resources("AWS::CloudFront::VpcOrigin")
    synthesized.template.resource_count_is("AWS::CloudFront::Distribution", 2)


def test_viewers_get_https_and_every_request_reaches_the_origin_uncached(synthesized: Synthesized) -> None:
    for construct_id in ("Distribution", "ToolDistribution"):
        config = _distribution(synthesized, construct_id)
        assert "CacheBehaviors" not in config  # one behaviour for every path
        behavior = config["DefaultCacheBehavior"]
        assert behavior["ViewerProtocolPolicy"] == "redirect-to-https"
        assert behavior["CachePolicyId"] == CACHING_DISABLED
        assert set(behavior["AllowedMethods"]) == {"GET", "HEAD", "OPTIONS", "PUT", "PATCH", "POST", "DELETE"}
        assert behavior["Compress"] is True
        assert config["HttpVersion"] == "http2and3"
        assert config["Enabled"] is True


def test_origin_request_policy_follows_forward_host_header(synthesized: Synthesized) -> None:
    assert (
        _distribution(synthesized, "Distribution")["DefaultCacheBehavior"]["OriginRequestPolicyId"]
        == ALL_VIEWER
    )
    tool = _distribution(synthesized, "ToolDistribution")["DefaultCacheBehavior"]
    assert tool["OriginRequestPolicyId"] == ALL_VIEWER_EXCEPT_HOST_HEADER


def test_price_class_and_comment_are_the_callers(synthesized: Synthesized) -> None:
    logged, unlogged = (
        _distribution(synthesized, "Distribution"),
        _distribution(synthesized, "ToolDistribution"),
    )
    assert (logged["PriceClass"], logged["Comment"]) == (PRICE_CLASS_200, "chat")
    assert (unlogged["PriceClass"], unlogged["Comment"]) == ("PriceClass_100", "tool")


def test_the_only_origin_is_a_vpc_origin_to_the_internal_alb_over_http_80(synthesized: Synthesized) -> None:
    for construct_id, name in (("Distribution", "Chat"), ("ToolDistribution", "Tool")):
        balancer = synthesized.resources("AWS::ElasticLoadBalancingV2::LoadBalancer")[_balancer_id(name)]
        assert balancer["Properties"]["Scheme"] == "internal"
        endpoint = _vpc_origin(synthesized, construct_id)["VpcOriginEndpointConfig"]
        assert endpoint["Arn"] == {"Ref": _balancer_id(name)}
        assert (endpoint["OriginProtocolPolicy"], endpoint["HTTPPort"]) == ("http-only", 80)
        (origin,) = _distribution(synthesized, construct_id)["Origins"]
        vpc_origin_id = cdk_logical_id(construct_id, "Default", "Origin1", "VpcOrigin", "Resource")
        assert origin["VpcOriginConfig"]["VpcOriginId"] == {"Fn::GetAtt": [vpc_origin_id, "Id"]}
        assert origin["VpcOriginConfig"]["OriginReadTimeout"] == 60
        assert "S3OriginConfig" not in origin and "CustomOriginConfig" not in origin


def test_vpc_origin_name_and_keepalive_are_options(synthesized: Synthesized) -> None:
    logged = _vpc_origin(synthesized, "Distribution")["VpcOriginEndpointConfig"]
    assert logged["Name"] == "test-chat-edge"
    (origin,) = _distribution(synthesized, "Distribution")["Origins"]
    assert origin["VpcOriginConfig"]["OriginKeepaliveTimeout"] == 60
    (unset,) = _distribution(synthesized, "ToolDistribution")["Origins"]
    assert "OriginKeepaliveTimeout" not in unset["VpcOriginConfig"]  # CloudFront's default


def test_the_alb_admits_the_vpc_origin_from_the_vpc_cidr_on_port_80_only(synthesized: Synthesized) -> None:
    groups = synthesized.resources("AWS::EC2::SecurityGroup")
    for name, description in (
        ("Chat", "CloudFront VPC origin"),
        ("Tool", "CloudFront VPC origin (inside the VPC)"),
    ):
        (ingress,) = groups[cdk_logical_id(f"{name}AlbSecurityGroup", "Resource")]["Properties"][
            "SecurityGroupIngress"
        ]
        assert ingress == {
            "CidrIp": VPC_CIDR,
            "Description": description,
            "FromPort": 80,
            "IpProtocol": "tcp",
            "ToPort": 80,
        }


def test_standard_logs_go_to_the_bucket_under_cloudfront_or_not_at_all(synthesized: Synthesized) -> None:
    bucket_id = cdk_logical_id("AccessLogs", "Default", "Resource")
    assert bucket_id in synthesized.resources("AWS::S3::Bucket")
    logging = _distribution(synthesized, "Distribution")["Logging"]
    assert logging == {"Bucket": {"Fn::GetAtt": [bucket_id, "RegionalDomainName"]}, "Prefix": "cloudfront/"}
    assert "Logging" not in _distribution(synthesized, "ToolDistribution")


def test_without_logs_a_reason_is_required() -> None:
    stack = cdk.Stack(cdk.App(), "other")
    imported = elbv2.ApplicationLoadBalancer.from_application_load_balancer_attributes(
        stack,
        "Imported",
        load_balancer_arn="arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/x/1",
        security_group_id="sg-12345678",
    )
    with pytest.raises(
        ValueError, match=r"^Distribution: a distribution without access logs needs no_access_logs_reason$"
    ):
        PrivateOriginDistribution(
            stack,
            "Distribution",
            load_balancer=imported,
            vpc_cidr=VPC_CIDR,
            forward_host_header=False,
            price_class="100",
            comment="no logs",
            no_geo_restriction_reason="x",
            no_waf_reason="x",
        )


def test_acknowledgements_match_the_findings_that_occur(synthesized: Synthesized) -> None:
    assert_acknowledged_as_pinned(
        synthesized, BLOCKS.values(), ACKNOWLEDGEMENTS["private_origin_distribution"]
    )
    assert synthesized.open_findings() == []
    assert synthesized.unused(BLOCKS.values()) == []
    logged = {a.finding for a in BLOCKS["logged"].acknowledgements}
    assert logged == {"AwsSolutions-CFR1", "AwsSolutions-CFR2", "AwsSolutions-CFR4"}
    unlogged = {a.finding: a.reason for a in BLOCKS["unlogged"].acknowledgements}
    assert set(unlogged) == {
        "AwsSolutions-CFR1",
        "AwsSolutions-CFR2",
        "AwsSolutions-CFR3",
        "AwsSolutions-CFR4",
    }
    assert unlogged["AwsSolutions-CFR3"] == NO_LOGS
    assert {a.path for block in BLOCKS.values() for a in block.acknowledgements} == {
        "blocks/Distribution/Default",
        "blocks/ToolDistribution/Default",
    }


def test_http_health_check_writes_only_what_it_sets(synthesized: Synthesized) -> None:
    groups = synthesized.resources("AWS::ElasticLoadBalancingV2::TargetGroup")
    chat = groups[cdk_logical_id("ChatTargets", "Resource")]["Properties"]
    assert (chat["HealthCheckPath"], chat["Matcher"], chat["HealthCheckIntervalSeconds"]) == (
        "/health",
        {"HttpCode": "200"},
        15,
    )
    # ELB's defaults stay in place: nothing written for timeout and thresholds.
    for unset in ("HealthCheckTimeoutSeconds", "HealthyThresholdCount", "UnhealthyThresholdCount"):
        assert unset not in chat
    tool = groups[cdk_logical_id("ToolTargets", "Resource")]["Properties"]
    assert {key: tool[key] for key in tool if key.startswith(("Health", "Unhealthy", "Matcher"))} == {
        "HealthCheckPath": "/api/health",
        "HealthCheckIntervalSeconds": 30,
        "HealthCheckTimeoutSeconds": 10,
        "HealthyThresholdCount": 2,
        "UnhealthyThresholdCount": 3,
        "Matcher": {"HttpCode": "200"},
    }

"""Edge stack: the chat's public entry (CloudFront, VPC origin, internal ALB, listener, target group, access
logs), deployed before identity; and how the app wires it to identity, the frontend and operations."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Match, Template

from config import AppConfig
from stacks.compliance import enable_compliance_checks, read_validation_report
from stacks.edge import CHAT_PORT, COST_COMPONENT, HEALTH_PATH, EdgeStack
from stacks.network import NetworkStack
from tests.factories import test_config
from tests.support.cdk import resources_of

MANAGED_CACHING_DISABLED = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
MANAGED_ALL_VIEWER = "216adef6-5c7f-47e4-b989-5492eafa07d3"


def _build(config: AppConfig, outdir: Path | None = None) -> tuple[cdk.App, EdgeStack]:
    app = cdk.App(outdir=str(outdir)) if outdir else cdk.App()
    network = NetworkStack(app, config=config)
    return app, EdgeStack(app, config=config, vpc=network.vpc, service_subnets=network.service_subnets)


@pytest.fixture(scope="module")
def template() -> Template:
    return Template.from_stack(_build(test_config("dev"))[1])


@pytest.fixture(scope="module")
def prod_template() -> Template:
    return Template.from_stack(_build(test_config("prod"))[1])


def _one(template: Template, resource_type: str) -> tuple[str, dict[str, Any]]:
    ((logical_id, resource),) = resources_of(template, resource_type).items()
    return logical_id, dict(resource["Properties"])


# --- the stack itself ----------------------------------------------------------------------------------


def test_the_stack_holds_the_entry_and_no_service(template: Template) -> None:
    for resource_type in (
        "AWS::CloudFront::Distribution",
        "AWS::CloudFront::VpcOrigin",
        "AWS::ElasticLoadBalancingV2::LoadBalancer",
        "AWS::ElasticLoadBalancingV2::Listener",
        "AWS::ElasticLoadBalancingV2::TargetGroup",
        "AWS::S3::Bucket",
    ):
        template.resource_count_is(resource_type, 1)
    for absent in ("AWS::ECS::Service", "AWS::Cognito::UserPoolClient", "AWS::KMS::Key"):
        template.resource_count_is(absent, 0)


def test_cloudfront_serves_https_through_a_vpc_origin_to_the_internal_alb(template: Template) -> None:
    balancer_id, balancer = _one(template, "AWS::ElasticLoadBalancingV2::LoadBalancer")
    assert (balancer["Scheme"], balancer["Type"]) == ("internal", "application")
    _, origin = _one(template, "AWS::CloudFront::VpcOrigin")
    endpoint = origin["VpcOriginEndpointConfig"]
    assert endpoint["Arn"] == {"Ref": balancer_id}
    assert (endpoint["OriginProtocolPolicy"], endpoint["HTTPPort"]) == ("http-only", 80)
    _, distribution = _one(template, "AWS::CloudFront::Distribution")
    config = distribution["DistributionConfig"]
    assert config["DefaultCacheBehavior"]["ViewerProtocolPolicy"] == "redirect-to-https"
    (cf_origin,) = config["Origins"]
    assert "VpcOriginConfig" in cf_origin


def test_every_path_including_the_streamlit_websocket_goes_uncached_with_all_viewer_data(
    template: Template,
) -> None:
    _, distribution = _one(template, "AWS::CloudFront::Distribution")
    config = distribution["DistributionConfig"]
    # one behaviour for every path: /_stcore/stream (websocket), /_stcore/health and the OAuth callback
    assert "CacheBehaviors" not in config
    behavior = config["DefaultCacheBehavior"]
    assert behavior["CachePolicyId"] == MANAGED_CACHING_DISABLED
    assert behavior["OriginRequestPolicyId"] == MANAGED_ALL_VIEWER  # headers, cookies, query strings
    assert set(behavior["AllowedMethods"]) >= {"GET", "POST", "OPTIONS"}


def test_listener_forwards_to_the_chat_target_group(template: Template) -> None:
    group_id, group = _one(template, "AWS::ElasticLoadBalancingV2::TargetGroup")
    _, listener = _one(template, "AWS::ElasticLoadBalancingV2::Listener")
    assert (listener["Port"], listener["Protocol"]) == (80, "HTTP")
    assert listener["DefaultActions"] == [{"Type": "forward", "TargetGroupArn": {"Ref": group_id}}]
    assert (group["TargetType"], group["Port"], group["Protocol"]) == ("ip", CHAT_PORT, "HTTP")


def test_target_group_checks_streamlit_health_and_sticks_sessions(template: Template) -> None:
    _, group = _one(template, "AWS::ElasticLoadBalancingV2::TargetGroup")
    assert group["HealthCheckPath"] == HEALTH_PATH
    attributes = {a["Key"]: a["Value"] for a in group["TargetGroupAttributes"]}
    assert attributes["stickiness.enabled"] == "true"
    assert attributes["stickiness.type"] == "lb_cookie"
    assert attributes["stickiness.lb_cookie.duration_seconds"] == str(8 * 3600)


def test_alb_admits_http_from_the_vpc_and_sends_nothing_by_itself(template: Template) -> None:
    _, group = _one(template, "AWS::EC2::SecurityGroup")
    (ingress,) = group["SecurityGroupIngress"]
    assert (ingress["FromPort"], ingress["ToPort"], ingress["CidrIp"]) == (80, 80, "10.40.0.0/16")
    # CDK's "disallow all traffic" placeholder: the frontend stack adds the egress to its tasks' group
    (egress,) = group["SecurityGroupEgress"]
    assert egress["CidrIp"] == "255.255.255.255/32"


def test_access_logs_bucket_receives_cloudfront_logs_and_expires_them(template: Template) -> None:
    bucket_id, bucket = _one(template, "AWS::S3::Bucket")
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"] == [
        {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
    ]
    (rule,) = bucket["LifecycleConfiguration"]["Rules"]
    assert rule["ExpirationInDays"] == 30
    _, distribution = _one(template, "AWS::CloudFront::Distribution")
    logging = distribution["DistributionConfig"]["Logging"]
    assert logging["Bucket"] == {"Fn::GetAtt": [bucket_id, "RegionalDomainName"]}
    assert logging["Prefix"] == "cloudfront/"


def test_dev_destroys_the_log_bucket_and_prod_retains_it(template: Template, prod_template: Template) -> None:
    template.has_resource("AWS::S3::Bucket", {"DeletionPolicy": "Delete"})
    prod_template.has_resource("AWS::S3::Bucket", {"DeletionPolicy": "Retain"})
    prod_template.has_resource_properties(
        "AWS::ElasticLoadBalancingV2::LoadBalancer",
        {
            "LoadBalancerAttributes": Match.array_with(
                [{"Key": "deletion_protection.enabled", "Value": "true"}]
            )
        },
    )


def test_resources_and_stack_are_tagged_as_the_chat_component(template: Template) -> None:
    app, stack = _build(test_config("dev"))
    app.synth()  # tags are aspects: they apply at synthesis
    assert stack.stack_name == "aaf-edge"
    assert stack.tags.tag_values()["component"] == COST_COMPONENT == "frontend"
    for resource_type in (
        "AWS::CloudFront::Distribution",
        "AWS::ElasticLoadBalancingV2::LoadBalancer",
        "AWS::S3::Bucket",
    ):
        _, properties = _one(template, resource_type)
        tags = properties.get("Tags") or properties.get("DistributionConfig", {}).get("Tags") or []
        assert {"Key": "component", "Value": "frontend"} in tags, resource_type


@pytest.mark.parametrize("profile", ["dev", "prod"])
def test_no_unacknowledged_nag_findings(tmp_path: Path, profile: str) -> None:
    app, _ = _build(test_config(profile), outdir=tmp_path)
    enable_compliance_checks(app)
    app.synth()  # raises ValidationFailed on any unacknowledged error
    assert read_validation_report(tmp_path).unacknowledged == ()


# --- the whole app (dev, every gate; the session's `dev_assembly`) -------------------------------------


def _manifest(assembly: Path) -> dict[str, list[str]]:
    """Stack name -> the stacks it depends on."""
    manifest = json.loads((assembly / "manifest.json").read_text())
    return {
        name: [d for d in artifact.get("dependencies", []) if not d.endswith(".assets")]
        for name, artifact in manifest["artifacts"].items()
        if artifact["type"] == "aws:cloudformation:stack"
    }


def _deployment_order(dependencies: dict[str, list[str]]) -> list[str]:
    """A topological order of the stacks; raises if the dependencies have a cycle."""
    order: list[str] = []
    remaining = {name: set(deps) for name, deps in dependencies.items()}
    while remaining:
        ready = sorted(name for name, deps in remaining.items() if not deps - set(order))
        if not ready:
            raise AssertionError(f"dependency cycle among {sorted(remaining)}")
        order.extend(ready)
        for name in ready:
            del remaining[name]
    return order


def _template(assembly: Path, stack: str) -> dict[str, Any]:
    manifest = json.loads((assembly / "manifest.json").read_text())
    return dict(
        json.loads((assembly / manifest["artifacts"][stack]["properties"]["templateFile"]).read_text())
    )


def test_edge_deploys_after_the_network_and_before_identity_without_cycles(dev_assembly: Path) -> None:
    dependencies = _manifest(dev_assembly)
    assert dependencies["aaf-edge"] == ["aaf-network"]  # nothing later: identity can depend on it
    assert "aaf-edge" in dependencies["aaf-identity"]
    assert {"aaf-edge", "aaf-identity", "aaf-agentcore"} <= set(dependencies["aaf-frontend"])
    order = _deployment_order(dependencies)
    assert order.index("aaf-network") < order.index("aaf-edge") < order.index("aaf-identity")
    assert order.index("aaf-identity") < order.index("aaf-agentcore") < order.index("aaf-frontend")


def test_the_chat_alarm_watches_the_edge_target_group(dev_assembly: Path) -> None:
    operations = _template(dev_assembly, "aaf-operations")
    (alarm,) = [
        r["Properties"]
        for k, r in operations["Resources"].items()
        if r["Type"] == "AWS::CloudWatch::Alarm" and k.startswith("ChatNoHealthyTarget")
    ]
    (query,) = alarm["Metrics"]
    metric = query["MetricStat"]["Metric"]
    dimensions = {d["Name"]: json.dumps(d["Value"]) for d in metric["Dimensions"]}
    assert (metric["Namespace"], metric["MetricName"]) == ("AWS/ApplicationELB", "HealthyHostCount")
    assert '"aaf-edge:' in dimensions["TargetGroup"] and "ChatTargetGroup" in dimensions["TargetGroup"]
    assert '"aaf-edge:' in dimensions["LoadBalancer"]


def test_the_chat_url_output_stays_on_the_frontend_stack(dev_assembly: Path) -> None:
    outputs = _template(dev_assembly, "aaf-frontend")["Outputs"]
    prefix, domain, suffix = outputs["ChatUrl"]["Value"]["Fn::Join"][1]
    assert (prefix, suffix) == ("https://", "/")
    assert domain["Fn::ImportValue"].startswith("aaf-edge:ExportsOutputFnGetAttDistribution")
    assert "ChatUrl" not in _template(dev_assembly, "aaf-edge").get("Outputs", {})


def test_cdk_helper_resources_of_the_edge_stack_carry_the_chat_component_too(dev_assembly: Path) -> None:
    """The raw roles/functions of CDK's providers (e.g. the bucket auto-delete helper) are tagged by an
    aspect from the stack's cost component, like every other resource of the stack."""
    template = json.loads((dev_assembly / "aaf-edge.template.json").read_text())
    raw = [
        (logical_id, resource)
        for logical_id, resource in template["Resources"].items()
        if logical_id.startswith("CustomS3AutoDeleteObjects")
        and resource["Type"] != "Custom::S3AutoDeleteObjects"
    ]
    assert raw, "dev empties its buckets with CDK's auto-delete provider"
    for logical_id, resource in raw:
        tags = {t["Key"]: t["Value"] for t in resource["Properties"].get("Tags", [])}
        assert tags.get("component") == "frontend", logical_id

"""Network stack: VPC shape, NAT count by profile, endpoints, flow logs."""

from __future__ import annotations

import pytest
from aws_cdk.assertions import Match, Template

from stacks.network import INTERFACE_ENDPOINTS, NetworkStack
from tests.factories import test_config
from tests.support.cdk import build_stack, resources_of


@pytest.fixture(scope="module")
def template() -> Template:
    return build_stack(NetworkStack, test_config("dev"))[1]


@pytest.fixture(scope="module")
def prod_template() -> Template:
    # With an explicit environment CDK can place one NAT per AZ (env-agnostic synth knows only two AZs).
    config = test_config("prod", environment={"account": "123456789012", "region": "us-east-1"})
    return build_stack(NetworkStack, config)[1]


def test_dev_has_one_nat_gateway(template: Template) -> None:
    template.resource_count_is("AWS::EC2::NatGateway", 1)


def test_prod_has_a_nat_gateway_per_az(prod_template: Template) -> None:
    prod_template.resource_count_is("AWS::EC2::NatGateway", 3)


def test_vpc_uses_configured_cidr(template: Template) -> None:
    template.has_resource_properties("AWS::EC2::VPC", {"CidrBlock": "10.40.0.0/16"})


def test_no_subnet_assigns_public_ips(template: Template) -> None:
    for subnet in resources_of(template, "AWS::EC2::Subnet").values():
        assert subnet["Properties"]["MapPublicIpOnLaunch"] is False


def test_flow_logs_capture_all_traffic(template: Template) -> None:
    template.has_resource_properties(
        "AWS::EC2::FlowLog", {"TrafficType": "ALL", "LogDestinationType": "cloud-watch-logs"}
    )


def test_flow_log_group_is_encrypted_with_retention(template: Template) -> None:
    template.has_resource_properties(
        "AWS::Logs::LogGroup", {"KmsKeyId": Match.any_value(), "RetentionInDays": 14}
    )


def test_gateway_endpoints_for_s3_and_dynamodb(template: Template) -> None:
    services = [
        str(r["Properties"]["ServiceName"])
        for r in resources_of(template, "AWS::EC2::VPCEndpoint").values()
        if r["Properties"].get("VpcEndpointType", "Gateway") == "Gateway"
    ]
    assert any("s3" in s for s in services) and any("dynamodb" in s for s in services)


def test_dev_has_no_interface_endpoints(template: Template) -> None:
    template.resource_count_is("AWS::EC2::VPCEndpoint", 2)


def test_prod_has_interface_endpoints_for_heavy_services(prod_template: Template) -> None:
    interface = [
        r
        for r in resources_of(prod_template, "AWS::EC2::VPCEndpoint").values()
        if r["Properties"].get("VpcEndpointType") == "Interface"
    ]
    assert len(interface) == len(INTERFACE_ENDPOINTS)


def test_endpoint_security_group_admits_only_https_from_vpc(prod_template: Template) -> None:
    prod_template.has_resource_properties(
        "AWS::EC2::SecurityGroup",
        {
            "SecurityGroupIngress": [
                {"CidrIp": "10.40.0.0/16", "FromPort": 443, "ToPort": 443, "IpProtocol": "tcp"}
            ]
        },
    )


def test_default_security_group_is_restricted(template: Template) -> None:
    template.resource_count_is("Custom::VpcRestrictDefaultSG", 1)


def test_log_key_rotates(template: Template) -> None:
    template.has_resource_properties("AWS::KMS::Key", {"EnableKeyRotation": True})


def test_dev_log_group_is_destroyed_with_the_stack(template: Template) -> None:
    template.has_resource("AWS::Logs::LogGroup", {"DeletionPolicy": "Delete"})


def test_prod_log_group_is_retained(prod_template: Template) -> None:
    prod_template.has_resource("AWS::Logs::LogGroup", {"DeletionPolicy": "Retain"})

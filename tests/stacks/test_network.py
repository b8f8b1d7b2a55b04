"""Network stack: VPC shape, NAT count by profile, endpoints, flow logs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_ec2 as ec2
from aws_cdk.assertions import Match, Template

from config import ConfigError
from scripts.synth_summary import lint_template
from stacks.compliance import apply_cost_tags, enable_compliance_checks, read_validation_report
from stacks.network import INTERFACE_ENDPOINTS, NetworkStack, https_out_security_group
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


def test_dev_has_one_nat_instance_and_no_nat_gateway(template: Template) -> None:
    template.resource_count_is("AWS::EC2::NatGateway", 0)
    template.resource_count_is("AWS::EC2::EIP", 0)
    template.resource_count_is("AWS::EC2::Instance", 1)


def test_prod_has_a_nat_gateway_per_az(prod_template: Template) -> None:
    prod_template.resource_count_is("AWS::EC2::NatGateway", 3)
    prod_template.resource_count_is("AWS::EC2::Instance", 0)


def nat_instance(template: Template) -> dict[str, Any]:
    (instance,) = resources_of(template, "AWS::EC2::Instance").values()
    return dict(instance["Properties"])


def test_nat_instance_is_a_small_graviton_forwarder_with_a_public_address(template: Template) -> None:
    instance = nat_instance(template)
    (interface,) = instance["NetworkInterfaces"]

    assert instance["InstanceType"] == test_config("dev").network.nat_instance_type == "t4g.nano"
    assert instance["SourceDestCheck"] is False
    assert interface["AssociatePublicIpAddress"] is True
    assert "arm64" in json.dumps(instance["ImageId"])  # Amazon Linux 2023 for Graviton


def test_nat_instance_is_hardened(template: Template) -> None:
    instance = nat_instance(template)
    (root,) = instance["BlockDeviceMappings"]

    assert root["Ebs"]["Encrypted"] is True and root["Ebs"]["VolumeType"] == "gp3"
    assert instance["MetadataOptions"]["HttpTokens"] == "required"  # IMDSv2 only
    assert instance["Monitoring"] is True
    assert "KeyName" not in instance


def test_nat_instance_admits_only_the_vpc(template: Template) -> None:
    (group_id,) = [
        logical_id
        for logical_id, group in resources_of(template, "AWS::EC2::SecurityGroup").items()
        if group["Properties"]["GroupDescription"] == "Security Group for NAT instances"
    ]
    ingress = resources_of(template, "AWS::EC2::SecurityGroup")[group_id]["Properties"][
        "SecurityGroupIngress"
    ]

    assert [rule["CidrIp"] for rule in ingress] == ["10.40.0.0/16"]


def test_private_subnets_route_to_the_nat_instance(template: Template) -> None:
    (instance_id,) = resources_of(template, "AWS::EC2::Instance")
    default_routes = [
        route["Properties"]
        for route in resources_of(template, "AWS::EC2::Route").values()
        if route["Properties"].get("InstanceId") is not None
    ]

    assert len(default_routes) == 2  # one per services subnet (2 AZs)
    assert all(r["InstanceId"] == {"Ref": instance_id} for r in default_routes)
    assert all(r["DestinationCidrBlock"] == "0.0.0.0/0" for r in default_routes)


def test_no_nat_at_all_when_the_count_is_zero() -> None:
    template = build_stack(NetworkStack, test_config("dev", network={"nat_gateways": 0}))[1]

    template.resource_count_is("AWS::EC2::Instance", 0)
    template.resource_count_is("AWS::EC2::NatGateway", 0)


def test_nat_instance_type_must_be_graviton_burstable() -> None:
    with pytest.raises(ConfigError, match=r"network\.nat_instance_type"):
        test_config("dev", network={"nat_instance_type": "m5.large"})


def test_nat_gateway_type_in_dev_when_asked() -> None:
    template = build_stack(NetworkStack, test_config("dev", network={"nat_type": "gateway"}))[1]

    template.resource_count_is("AWS::EC2::NatGateway", 1)
    template.resource_count_is("AWS::EC2::Instance", 0)


def test_dev_network_passes_nag_and_cfn_lint(tmp_path: Path) -> None:
    app = cdk.App(outdir=str(tmp_path))
    stack = NetworkStack(app, config=test_config("dev"))
    apply_cost_tags(app, test_config("dev"))
    enable_compliance_checks(app)
    app.synth()

    report = read_validation_report(tmp_path)
    errors, _ = lint_template(tmp_path / f"{stack.stack_name}.template.json")

    assert [f for f in report.unacknowledged if "network" in f] == []
    assert errors == ()


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


def test_a_workload_security_group_admits_nothing_and_sends_only_https() -> None:
    stack = cdk.Stack(cdk.App(), "groups")
    vpc = ec2.Vpc(stack, "Vpc", max_azs=1, nat_gateways=0)
    https_out_security_group(stack, "Group", vpc=vpc, description="a workload", https_to="HTTPS to AWS APIs")
    (group,) = Template.from_stack(stack).find_resources("AWS::EC2::SecurityGroup").values()
    properties = group["Properties"]
    assert properties["GroupDescription"] == "a workload"
    assert "SecurityGroupIngress" not in properties
    assert properties["SecurityGroupEgress"] == [
        {
            "CidrIp": "0.0.0.0/0",
            "Description": "HTTPS to AWS APIs",
            "FromPort": 443,
            "IpProtocol": "tcp",
            "ToPort": 443,
        }
    ]


# --- FoundationStack.vpc_cidr: created VPC vs imported VPC (network.vpc_id) ----------------------------

ACCOUNT, REGION = "123456789012", "us-east-1"
IMPORTED_VPC_ID = "vpc-0123456789abcdef0"
IMPORTED_CIDR = "10.77.0.0/16"  # the existing VPC's own range, unlike network.cidr (10.40.0.0/16)


def imported_vpc_context() -> dict[str, Any]:
    """What `cdk synth` caches in cdk.context.json for `Vpc.from_lookup(vpc_id=...)` (the CLI's
    vpc-provider answer, aws-cdk-lib 2.275 `cx-api` VpcContextResponse), for the subnet groups ours use."""

    def group(name: str, kind: str, third_octet: int) -> dict[str, Any]:
        return {
            "name": name,
            "type": kind,
            "subnets": [
                {
                    "subnetId": f"subnet-0{third_octet}{az}0000000000000",
                    "cidr": f"10.77.{third_octet + az}.0/24",
                    "availabilityZone": f"{REGION}{'abc'[az]}",
                    "routeTableId": f"rtb-0{third_octet}{az}0000000000000",
                }
                for az in range(2)
            ],
        }

    key = (
        f"vpc-provider:account={ACCOUNT}:filter.vpc-id={IMPORTED_VPC_ID}:region={REGION}"
        ":returnAsymmetricSubnets=true"
    )
    return {
        key: {
            "vpcId": IMPORTED_VPC_ID,
            "vpcCidrBlock": IMPORTED_CIDR,
            "ownerAccountId": ACCOUNT,
            "availabilityZones": [],
            "subnetGroups": [
                group("public", "Public", 0),
                group("services", "Private", 10),
                group("data", "Isolated", 20),
            ],
        }
    }


def test_vpc_cidr_of_an_imported_vpc_is_the_looked_up_vpcs_own_block() -> None:
    config = test_config(
        "prod",  # prod: the interface endpoints' group admits the VPC CIDR
        environment={"account": ACCOUNT, "region": REGION},
        network={"vpc_id": IMPORTED_VPC_ID},
    )
    stack = NetworkStack(cdk.App(context=imported_vpc_context()), config=config)

    assert stack.vpc.vpc_id == IMPORTED_VPC_ID  # the lookup answered (not CDK's dummy VPC)
    assert stack.vpc_cidr(stack.vpc) == stack.vpc.vpc_cidr_block == IMPORTED_CIDR
    assert config.network.cidr != IMPORTED_CIDR
    Template.from_stack(stack).has_resource_properties(
        "AWS::EC2::SecurityGroup",
        {"SecurityGroupIngress": [Match.object_like({"CidrIp": IMPORTED_CIDR, "FromPort": 443})]},
    )


def test_vpc_cidr_of_a_created_vpc_is_the_configured_literal() -> None:
    config = test_config("dev", network={"cidr": "10.41.0.0/16"})
    stack = NetworkStack(cdk.App(), config=config)

    assert stack.vpc_cidr(stack.vpc) == "10.41.0.0/16"  # a literal: scanners and tests can read it
    assert cdk.Token.is_unresolved(stack.vpc.vpc_cidr_block)  # what vpc_cidr avoids for a created VPC

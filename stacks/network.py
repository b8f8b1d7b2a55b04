"""Network: the VPC every service runs in, its endpoints and flow logs."""

from __future__ import annotations

from typing import Any

from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_kms as kms
from constructs import Construct

from config import AppConfig
from stacks.base import FoundationStack
from stacks.compliance import acknowledge, acknowledge_all

# Interface endpoints that keep the heaviest service traffic off the NAT gateways.
INTERFACE_ENDPOINTS: dict[str, ec2.InterfaceVpcEndpointAwsService] = {
    "EcrApi": ec2.InterfaceVpcEndpointAwsService.ECR,
    "EcrDocker": ec2.InterfaceVpcEndpointAwsService.ECR_DOCKER,
    "Logs": ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS,
    "SecretsManager": ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER,
    "BedrockRuntime": ec2.InterfaceVpcEndpointAwsService.BEDROCK_RUNTIME,
}


NAT_ROOT_VOLUME_GB = 8  # Amazon Linux 2023's image size; NAT keeps no data


def https_out_security_group(
    scope: Construct, construct_id: str, *, vpc: ec2.IVpc, description: str, https_to: str
) -> ec2.SecurityGroup:
    """A workload's security group: nothing in, HTTPS (443) out to anywhere (AWS APIs and public
    endpoints, through NAT or the VPC endpoints), `https_to` naming what is reached. The caller adds the
    few other rules its workload needs (the LLM gateway's port, a load balancer's ingress)."""
    group = ec2.SecurityGroup(scope, construct_id, vpc=vpc, description=description, allow_all_outbound=False)
    group.add_egress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(443), https_to)
    return group


class NetworkStack(FoundationStack):
    """A new VPC (public, private-with-egress and isolated subnets) or an imported one."""

    component = "network"
    description_text = "network (VPC, endpoints, flow logs)"

    def __init__(self, scope: Construct, *, config: AppConfig, **kwargs: Any) -> None:
        super().__init__(scope, config=config, **kwargs)
        self.key = self._create_key()
        self.vpc = self._create_or_import_vpc()
        if config.network.vpc_id is None:
            self._create_flow_logs()
        self._create_gateway_endpoints()
        if config.network.interface_endpoints:
            self._create_interface_endpoints()
        self._acknowledge_findings()

    def _create_key(self) -> kms.Key:
        return self.create_data_key("NetworkKey", "network logs")

    def _create_or_import_vpc(self) -> ec2.IVpc:
        network = self.config.network
        if network.vpc_id is not None:
            return ec2.Vpc.from_lookup(self, "Vpc", vpc_id=network.vpc_id)
        self.nat_provider = self._nat_provider()
        vpc = ec2.Vpc(
            self,
            "Vpc",
            vpc_name=self.resource_name("vpc"),
            ip_addresses=ec2.IpAddresses.cidr(network.cidr),
            **self._zones(),
            nat_gateways=network.nat_gateways,
            nat_gateway_provider=self.nat_provider,
            restrict_default_security_group=True,
            subnet_configuration=[
                ec2.SubnetConfiguration(
                    name="public",
                    subnet_type=ec2.SubnetType.PUBLIC,
                    cidr_mask=24,
                    map_public_ip_on_launch=False,
                ),
                ec2.SubnetConfiguration(
                    name="services",
                    subnet_type=(
                        ec2.SubnetType.PRIVATE_WITH_EGRESS
                        if network.nat_gateways > 0
                        else ec2.SubnetType.PRIVATE_ISOLATED
                    ),
                    cidr_mask=22,
                ),
                ec2.SubnetConfiguration(
                    name="data", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED, cidr_mask=24
                ),
            ],
        )
        if isinstance(self.nat_provider, ec2.NatInstanceProviderV2):
            self._harden_nat_instances(self.nat_provider)
        return vpc

    def _zones(self) -> dict[str, Any]:
        """`max_azs`, or, when the AgentCore runtime is pinned to AZ ids, explicit zones starting with its.

        AgentCore Runtime accepts subnets only in listed AZ IDs (config/agentcore.py); the VPC is
        then built in those zones (their account-specific names from network.az_names) and filled up to
        max_azs with the region's other zones. Changing the zones of a deployed VPC replaces its subnets.
        """
        pinned = list(self.config.runtime_az_names)
        if not pinned:
            return {"max_azs": self.config.network.max_azs}
        others = [zone for zone in self.availability_zones if zone not in pinned]
        return {"availability_zones": (pinned + others)[: self.config.network.max_azs]}

    def _nat_provider(self) -> ec2.NatProvider | None:
        """NAT gateways (managed, one per AZ in prod) or small Graviton NAT instances (dev)."""
        network = self.config.network
        if network.nat_type == "gateway" or network.nat_gateways == 0:
            return None  # the VPC's default: managed NAT gateways
        return ec2.NatProvider.instance_v2(
            instance_type=ec2.InstanceType(network.nat_instance_type),
            # Amazon Linux 2023 for the instance type's architecture (arm64 for t4g), resolved at deploy.
            # No inbound by default: only the VPC is admitted below, never the internet.
            default_allowed_traffic=ec2.NatTrafficDirection.OUTBOUND_ONLY,
            associate_public_ip_address=True,  # the public subnets do not assign public IPs on launch
            credit_specification=ec2.CpuCredits.STANDARD,  # no surplus-credit charges on a busy day
        )

    def _harden_nat_instances(self, provider: ec2.NatInstanceProviderV2) -> None:
        """Admit traffic from the VPC only; encrypted root volume; IMDSv2 only; detailed monitoring."""
        provider.connections.allow_from(
            ec2.Peer.ipv4(self.config.network.cidr), ec2.Port.all_traffic(), "Outbound traffic of the VPC"
        )
        for instance in provider.gateway_instances:
            cfn = instance.instance
            cfn.block_device_mappings = [
                ec2.CfnInstance.BlockDeviceMappingProperty(
                    device_name="/dev/xvda",  # Amazon Linux 2023's root device
                    ebs=ec2.CfnInstance.EbsProperty(
                        volume_size=NAT_ROOT_VOLUME_GB,
                        volume_type="gp3",
                        encrypted=True,  # the account's aws/ebs key: only iptables state lives here
                        delete_on_termination=True,
                    ),
                )
            ]
            cfn.monitoring = True
            cfn.metadata_options = ec2.CfnInstance.MetadataOptionsProperty(
                http_tokens="required", http_endpoint="enabled", http_put_response_hop_limit=1
            )
            self._acknowledge_nat_instance(instance)
        acknowledge(
            provider.security_group,
            "NIST.800.53.R5-EC2RestrictedCommonPorts",
            "A NAT instance forwards every protocol and port for the VPC's private subnets, so its security "
            "group admits all traffic, but only from the VPC CIDR (never from the internet).",
        )

    def _acknowledge_nat_instance(self, instance: ec2.Instance) -> None:
        acknowledge_all(
            instance,
            {
                "NIST.800.53.R5-EC2InstanceNoPublicIp": "A NAT instance needs a public IPv4 address to "
                "translate the private subnets' outbound traffic; its security group admits nothing from "
                "the internet (inbound from the VPC CIDR only) and it has no key pair.",
                "NIST.800.53.R5-EC2InstancesInVPC": "The instance is in the VPC's public subnet: the subnet is "
                "set on its network interface (required to associate a public address), not on SubnetId, "
                "which this rule reads.",
                "AwsSolutions-EC29": "network.nat_type 'instance' is the dev profile's low-cost NAT and must "
                "destroy with the stack; termination protection would block that. A lost instance is "
                "recreated by redeploying (prod uses managed NAT gateways).",
            },
        )

    def _create_flow_logs(self) -> None:
        log_group = self.create_log_group(
            "FlowLogs", retention_days=self.config.network.flow_log_retention_days, key=self.key
        )
        ec2.FlowLog(
            self,
            "FlowLog",
            resource_type=ec2.FlowLogResourceType.from_vpc(self.vpc),
            destination=ec2.FlowLogDestination.to_cloud_watch_logs(log_group),
            traffic_type=ec2.FlowLogTrafficType.ALL,
        )

    def _create_gateway_endpoints(self) -> None:
        # Gateway endpoints are free and carry S3 (images layers, documents) and DynamoDB traffic.
        subnets = [
            ec2.SubnetSelection(subnet_group_name="services"),
            ec2.SubnetSelection(subnet_group_name="data"),
        ]
        self.vpc.add_gateway_endpoint(
            "S3Endpoint", service=ec2.GatewayVpcEndpointAwsService.S3, subnets=subnets
        )
        self.vpc.add_gateway_endpoint(
            "DynamoDbEndpoint", service=ec2.GatewayVpcEndpointAwsService.DYNAMODB, subnets=subnets
        )

    def _create_interface_endpoints(self) -> None:
        security_group = ec2.SecurityGroup(
            self,
            "EndpointSecurityGroup",
            vpc=self.vpc,
            description="HTTPS from inside the VPC to AWS service endpoints",
            allow_all_outbound=False,
        )
        security_group.add_ingress_rule(
            ec2.Peer.ipv4(self.vpc_cidr(self.vpc)), ec2.Port.tcp(443), "HTTPS from inside the VPC"
        )
        for name, service in INTERFACE_ENDPOINTS.items():
            self.vpc.add_interface_endpoint(
                f"{name}Endpoint",
                service=service,
                subnets=ec2.SubnetSelection(subnet_group_name="services"),
                security_groups=[security_group],
                private_dns_enabled=True,
                open=False,  # the security group above already admits HTTPS from the VPC CIDR
            )

    @property
    def service_subnets(self) -> ec2.SubnetSelection:
        """Where services (ECS tasks, Lambdas, AgentCore runtime) run."""
        return ec2.SubnetSelection(subnet_group_name="services")

    @property
    def data_subnets(self) -> ec2.SubnetSelection:
        """Where databases and caches live (no route to the internet)."""
        return ec2.SubnetSelection(subnet_group_name="data")

    def _acknowledge_findings(self) -> None:
        if not isinstance(self.vpc, ec2.Vpc):
            return
        for subnet in self.vpc.public_subnets:
            acknowledge(
                subnet,
                "NIST.800.53.R5-VPCNoUnrestrictedRouteToIGW",
                "Public subnets hold only the NAT gateways or NAT instances, which need the default route to "
                "the internet gateway; no workload runs there and only a NAT instance gets a public IP.",
            )

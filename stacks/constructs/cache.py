"""Valkey for a service: an ElastiCache replication group with TLS required in transit, KMS at rest, an
AUTH token generated at deploy time, in the data subnets.

TLS: `TransitEncryptionEnabled` with `TransitEncryptionMode: required` refuses plaintext clients
(https://docs.aws.amazon.com/AmazonElastiCache/latest/dg/in-transit-encryption.html); AUTH needs transit
encryption and the token is a `{{resolve:secretsmanager:...}}` reference CloudFormation resolves at deploy
time (https://docs.aws.amazon.com/AmazonElastiCache/latest/dg/auth.html: 16-128 printable characters;
ours are alphanumeric).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_elasticache as elasticache
from aws_cdk import aws_kms as kms
from constructs import Construct

from stacks.constructs import BuildingBlock
from stacks.constructs.secret import GeneratedSecret, PasswordRules

ENGINE_VERSION = "8.0"
PARAMETER_FAMILY = "valkey8"
DEFAULT_PORT = 6379


@dataclass(frozen=True)
class CacheOptions:
    """What differs between the foundation's caches; TLS, encryption and AUTH are not options."""

    description: str  # of the replication group
    node_type: str  # e.g. "cache.t4g.micro"
    replicas: int  # 0: one node (no failover); >0: Multi-AZ with automatic failover
    auth_rules: PasswordRules
    auth_description: str
    auth_rotation_reason: str
    backup_reason: str  # why no 15-day snapshot retention (NIST ElastiCacheRedisClusterAutomaticBackup)
    port: int = DEFAULT_PORT
    snapshot_retention_days: int = 0
    subnet_description: str = "Valkey subnets"
    parameters: Mapping[str, str] = field(default_factory=dict)  # e.g. {"maxmemory-policy": "noeviction"}
    parameters_description: str = "Valkey parameters"


class ValkeyCache(BuildingBlock):
    """The replication group (child `Default`); beside it in `scope`: `<id>Subnets`, `<id>AuthToken` and,
    with `parameters`, `<id>Parameters`."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        options: CacheOptions,
        subnet_ids: list[str],
        security_group: ec2.ISecurityGroup,
        key: kms.IKey,
        removal_policy: cdk.RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        if not 0 <= options.replicas <= 5:
            raise ValueError(f"cache replicas {options.replicas} is outside 0..5")
        if (
            not options.auth_rules.alphabet()
            <= set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
            or not 16 <= options.auth_rules.length <= 128
        ):
            raise ValueError("the Valkey AUTH token must be 16-128 alphanumeric characters")
        self.options = options
        self.security_group = security_group
        self.subnet_group = elasticache.CfnSubnetGroup(
            scope,
            f"{construct_id}Subnets",
            description=options.subnet_description,
            subnet_ids=subnet_ids,
        )
        self.auth_token = GeneratedSecret(
            scope,
            f"{construct_id}AuthToken",
            description=options.auth_description,
            key=key,
            removal_policy=removal_policy,
            rules=options.auth_rules,
            rotation_reason=options.auth_rotation_reason,
        ).secret
        self.parameter_group = (
            elasticache.CfnParameterGroup(
                scope,
                f"{construct_id}Parameters",
                cache_parameter_group_family=PARAMETER_FAMILY,
                description=options.parameters_description,
                properties=dict(options.parameters),
            )
            if options.parameters
            else None
        )
        replicated = options.replicas > 0
        self.replication_group = elasticache.CfnReplicationGroup(
            self,
            "Default",
            replication_group_description=options.description,
            engine="valkey",
            engine_version=ENGINE_VERSION,
            cache_node_type=options.node_type,
            num_cache_clusters=1 + options.replicas,
            automatic_failover_enabled=replicated,
            multi_az_enabled=replicated,
            cache_subnet_group_name=self.subnet_group.ref,
            cache_parameter_group_name=self.parameter_group.ref if self.parameter_group else None,
            security_group_ids=[security_group.security_group_id],
            at_rest_encryption_enabled=True,
            kms_key_id=key.key_id,
            transit_encryption_enabled=True,
            transit_encryption_mode="required",
            auth_token=self.auth_token.secret_value.unsafe_unwrap(),  # a {{resolve:...}} reference
            port=options.port,
            auto_minor_version_upgrade=True,
            snapshot_retention_limit=options.snapshot_retention_days,
        )
        self.replication_group.apply_removal_policy(removal_policy)
        self._acknowledge_findings()

    @property
    def host(self) -> str:
        return self.replication_group.attr_primary_end_point_address

    @property
    def port(self) -> int:
        return self.options.port

    def allow_from(self, peer: ec2.IPeer, description: str) -> None:
        """Admit `peer` on the cache port (nothing else reaches it)."""
        self.security_group.add_ingress_rule(peer, ec2.Port.tcp(self.port), description)

    def _acknowledge_findings(self) -> None:
        options = self.options
        findings = {"NIST.800.53.R5-ElastiCacheRedisClusterAutomaticBackup": options.backup_reason}
        if options.replicas == 0:
            findings["AwsSolutions-AEC4"] = (
                "One cache node in this profile (no replica) keeps idle cost low; the durable data lives "
                "elsewhere and a replaced node starts empty. Prod runs a replica in another AZ."
            )
        self.acknowledge(self.replication_group, findings)

"""PostgreSQL for a service: one RDS instance (dev) or an Aurora Serverless v2 cluster (prod), TLS enforced
for both, KMS-encrypted storage and secret, exported logs in KMS-encrypted groups with bounded retention.

TLS: the parameter group sets `rds.force_ssl=1`, so a client without TLS is refused
(https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/PostgreSQL.Concepts.General.SSL.html; for Aurora the
same parameter in the DB cluster parameter group,
https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/AuroraPostgreSQL.Security.html). On a
cluster engine CDK renders the group as a DB cluster parameter group.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_rds as rds
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from stacks.base import retention
from stacks.constructs import BuildingBlock
from stacks.constructs.secret import acknowledge_no_rotation

# One PostgreSQL version per engine for every database of the foundation (LiteLLM, Langfuse), so the copies
# cannot drift. Aurora 16.9 supports 0 ACU auto-pause (needs 16.3+); minor upgrades happen in place.
AURORA_POSTGRES_VERSION = rds.AuroraPostgresEngineVersion.VER_16_9
POSTGRES_VERSION = rds.PostgresEngineVersion.VER_16_11
DEFAULT_PORT = 5432


@dataclass(frozen=True)
class InstanceOptions:
    """One RDS PostgreSQL instance on gp3 storage that autoscales up to `max_storage_gb`."""

    instance_class: str  # e.g. "db.t4g.micro"
    storage_gb: int
    max_storage_gb: int
    multi_az: bool = False


@dataclass(frozen=True)
class ClusterOptions:
    """Aurora PostgreSQL Serverless v2: a writer and `reader_ids` readers scaling with it.

    `auto_pause_minutes` applies at `min_acu` 0 (Aurora 16.3+); None leaves the AWS default.
    """

    min_acu: float
    max_acu: float
    writer_id: str = "Writer"
    reader_ids: tuple[str, ...] = ()
    auto_pause_minutes: int | None = None


@dataclass(frozen=True)
class DatabaseOptions:
    """What differs between the foundation's databases; everything else is the construct's contract."""

    engine: InstanceOptions | ClusterOptions
    identifier: str  # the instance or cluster identifier (also names the exported log groups)
    database_name: str
    username: str
    log_retention_days: int
    backup_days: int
    deletion_protection: bool
    purpose: str  # e.g. "LiteLLM PostgreSQL", in the parameter group's description
    rotation_reason: str  # why the generated password is not rotated by a rotation function
    port: int | None = None  # None: the engine default 5432
    # Characters the generated password must not contain; None keeps CDK's default exclusions
    # (" %+~`#$&*()|[]{}:;<>?!'/@\"\\").
    password_exclude_characters: str | None = None
    copy_tags_to_snapshot: bool = True


def aurora_postgres_engine() -> rds.IClusterEngine:
    return rds.DatabaseClusterEngine.aurora_postgres(version=AURORA_POSTGRES_VERSION)


def postgres_engine() -> rds.IInstanceEngine:
    return rds.DatabaseInstanceEngine.postgres(version=POSTGRES_VERSION)


class PostgresDatabase(BuildingBlock):
    """The database (child `Default`); beside it in `scope`: `<id>Parameters` (TLS), `<id>Logs` and, for
    an instance, `<id>UpgradeLogs` (the exported logs, created before RDS would create unencrypted ones).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        options: DatabaseOptions,
        vpc: ec2.IVpc,
        subnets: ec2.SubnetSelection,
        key: kms.IKey,
        removal_policy: cdk.RemovalPolicy,  # of the database (SNAPSHOT allowed); its log groups are kept alike
        security_groups: Sequence[ec2.ISecurityGroup] | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.options = options
        is_cluster = isinstance(options.engine, ClusterOptions)
        exports = ["postgresql"] if is_cluster else ["postgresql", "upgrade"]
        kind = "cluster" if is_cluster else "instance"
        # A log group cannot be snapshotted: it is kept whenever the database would be.
        log_removal = (
            cdk.RemovalPolicy.DESTROY
            if removal_policy == cdk.RemovalPolicy.DESTROY
            else cdk.RemovalPolicy.RETAIN
        )
        self.log_groups = [
            logs.LogGroup(
                scope,
                f"{construct_id}{'' if export == 'postgresql' else export.capitalize()}Logs",
                log_group_name=f"/aws/rds/{kind}/{options.identifier}/{export}",
                retention=retention(options.log_retention_days),
                encryption_key=key,
                removal_policy=log_removal,
            )
            for export in exports
        ]
        engine: rds.IClusterEngine | rds.IInstanceEngine = (
            aurora_postgres_engine() if is_cluster else postgres_engine()
        )
        self.parameter_group = rds.ParameterGroup(
            scope,
            f"{construct_id}Parameters",
            engine=engine,
            description=f"{options.purpose}: TLS required",
            parameters={"rds.force_ssl": "1"},
        )
        common: dict[str, Any] = {
            "vpc": vpc,
            "vpc_subnets": subnets,
            "security_groups": list(security_groups) if security_groups is not None else None,
            "port": options.port,
            "credentials": rds.Credentials.from_generated_secret(
                options.username,
                encryption_key=key,
                exclude_characters=options.password_exclude_characters,
            ),
            "parameter_group": self.parameter_group,
            "storage_encrypted": True,
            "storage_encryption_key": key,
            "iam_authentication": True,
            "deletion_protection": options.deletion_protection,
            "cloudwatch_logs_exports": exports,
            "copy_tags_to_snapshot": options.copy_tags_to_snapshot,
            "removal_policy": removal_policy,
        }
        self.database: rds.DatabaseInstance | rds.DatabaseCluster
        if isinstance(options.engine, ClusterOptions):
            cluster = options.engine
            self.database = rds.DatabaseCluster(
                self,
                "Default",
                cluster_identifier=options.identifier,
                engine=aurora_postgres_engine(),
                writer=rds.ClusterInstance.serverless_v2(cluster.writer_id),
                readers=[
                    rds.ClusterInstance.serverless_v2(reader, scale_with_writer=True)
                    for reader in cluster.reader_ids
                ],
                serverless_v2_min_capacity=cluster.min_acu,
                serverless_v2_max_capacity=cluster.max_acu,
                serverless_v2_auto_pause_duration=cdk.Duration.minutes(cluster.auto_pause_minutes)
                if cluster.auto_pause_minutes is not None and cluster.min_acu == 0
                else None,
                default_database_name=options.database_name,
                backup=rds.BackupProps(retention=cdk.Duration.days(options.backup_days)),
                **common,
            )
        else:
            instance = options.engine
            self.database = rds.DatabaseInstance(
                self,
                "Default",
                instance_identifier=options.identifier,
                engine=postgres_engine(),
                instance_type=ec2.InstanceType(instance.instance_class.removeprefix("db.")),
                allocated_storage=instance.storage_gb,
                max_allocated_storage=instance.max_storage_gb,  # storage autoscaling cap
                storage_type=rds.StorageType.GP3,
                database_name=options.database_name,
                multi_az=instance.multi_az,
                backup_retention=cdk.Duration.days(options.backup_days),
                auto_minor_version_upgrade=True,
                publicly_accessible=False,
                **common,
            )
        for log_group in self.log_groups:
            self.database.node.add_dependency(log_group)
        self._keep_descriptions(construct_id)
        assert self.database.secret is not None  # generated credentials always create one
        self.secret: secretsmanager.ISecret = self.database.secret
        self._acknowledge_findings()

    @property
    def connections(self) -> ec2.Connections:
        return self.database.connections

    @property
    def endpoint(self) -> rds.Endpoint:
        """The writer endpoint: the cluster's, or the instance's."""
        if isinstance(self.database, rds.DatabaseCluster):
            return self.database.cluster_endpoint
        return self.database.instance_endpoint

    @property
    def host(self) -> str:
        return self.endpoint.hostname

    @property
    def port(self) -> int:
        return self.options.port or DEFAULT_PORT

    def allow_from(self, peer: ec2.IConnectable, description: str) -> None:
        """Admit `peer` on the database port (nothing else reaches it)."""
        self.connections.allow_from(peer, ec2.Port.tcp(self.port), description)

    def _keep_descriptions(self, construct_id: str) -> None:
        """CDK describes the security and subnet groups it creates after the database's own id, which is
        now `Default`; a changed GroupDescription REPLACES a security group
        (https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-ec2-securitygroup.html),
        so both keep the text they had when the database was `<construct_id>`."""
        is_cluster = isinstance(self.database, rds.DatabaseCluster)
        for child in self.database.node.children:
            resource = child.node.default_child
            if (
                isinstance(resource, ec2.CfnSecurityGroup) and not is_cluster
            ):  # a cluster's is "RDS security group"
                resource.group_description = f"Security group for {construct_id} database"
            elif isinstance(resource, rds.CfnDBSubnetGroup):
                resource.db_subnet_group_description = (
                    f"Subnets for {construct_id} database"
                    if is_cluster
                    else f"Subnet group for {construct_id} database"
                )

    def _acknowledge_findings(self) -> None:
        options = self.options
        secret = self.database.node.find_child("Secret")
        acknowledge_no_rotation(self, secret, options.rotation_reason)
        findings = {
            "NIST.800.53.R5-RDSEnhancedMonitoringEnabled": "CloudWatch's RDS metrics (capacity, connections) "
            "and the exported PostgreSQL log cover monitoring; OS-level enhanced monitoring adds cost "
            "without a consumer.",
            "NIST.800.53.R5-RDSInBackupPlan": f"RDS automated backups (point-in-time restore, "
            f"{options.backup_days} days) protect this database; no separate AWS Backup plan is needed.",
        }
        if isinstance(options.engine, InstanceOptions) and not options.engine.multi_az:
            single_az = (
                "One single-AZ PostgreSQL instance in this profile keeps idle cost low; automated backups "
                "restore it. Prod uses Aurora Serverless v2 with a reader in another AZ."
            )
            findings["AwsSolutions-RDS3"] = single_az
            findings["NIST.800.53.R5-RDSMultiAZSupport"] = single_az
        if not options.deletion_protection:
            reason = (
                "Deletion protection follows the profile: on where data is retained (prod), off in dev so "
                "the stack destroys cleanly."
            )
            findings["AwsSolutions-RDS10"] = reason
            findings["NIST.800.53.R5-RDSInstanceDeletionProtectionEnabled"] = reason
        if self.port == DEFAULT_PORT and isinstance(options.engine, InstanceOptions):  # a cluster raises none
            findings["AwsSolutions-RDS11"] = (
                "The default PostgreSQL port inside private, isolated subnets; only the service's security "
                "groups may connect, with TLS."
            )
        self.acknowledge(self.database, findings)

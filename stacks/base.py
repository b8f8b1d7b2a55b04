"""The base every foundation stack derives from: naming, environment, tags and removal policy."""

from __future__ import annotations

from typing import Any, ClassVar

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from config import AppConfig


def access_log_lifecycle(expire_days: int) -> s3.LifecycleRule:
    """Access-log buckets are versioned: expire current logs, old versions after a day, and stale uploads."""
    return s3.LifecycleRule(
        id="expire-access-logs",
        expiration=cdk.Duration.days(expire_days),
        noncurrent_version_expiration=cdk.Duration.days(1),
        abort_incomplete_multipart_upload_after=cdk.Duration.days(1),
    )


class FoundationStack(cdk.Stack):
    """A stack named `<prefix>-<component>`, tagged with its component, honouring the removal policy."""

    component: ClassVar[str]
    description_text: ClassVar[str]
    # The `component` cost-allocation tag; a stack that serves another component's users names it here.
    cost_component: ClassVar[str | None] = None

    def __init__(self, scope: Construct, *, config: AppConfig, **kwargs: Any) -> None:
        env = cdk.Environment(account=config.environment.account, region=config.environment.region)
        super().__init__(
            scope,
            f"{config.prefix}-{self.component}",
            env=env,
            description=f"Agentic AI Foundation - {self.description_text}",
            **kwargs,
        )
        self.config = config
        cdk.Tags.of(self).add("component", self.tag_component)

    @property
    def tag_component(self) -> str:
        """The value of this stack's `component` tag (cost allocation)."""
        return self.cost_component or self.component

    @property
    def removal_policy(self) -> cdk.RemovalPolicy:
        """RETAIN for data stores in profiles that keep data, DESTROY otherwise."""
        return cdk.RemovalPolicy.RETAIN if self.config.retain_data else cdk.RemovalPolicy.DESTROY

    def vpc_cidr(self, vpc: ec2.IVpc) -> str:
        """The VPC's IPv4 CIDR for security-group rules and origins: the configured `network.cidr` as a
        literal when this app creates the VPC (scanners and tests can read it), otherwise the imported
        VPC's own `vpc_cidr_block` (from the context lookup of `network.vpc_id`)."""
        network = self.config.network
        return network.cidr if network.vpc_id is None else vpc.vpc_cidr_block

    def resource_name(self, suffix: str) -> str:
        """A physical name unique per prefix, e.g. `aaf-tickets`."""
        return f"{self.config.prefix}-{suffix}"

    def create_log_group(self, construct_id: str, *, retention_days: int, key: kms.IKey) -> logs.LogGroup:
        """A KMS-encrypted log group with bounded retention that follows the removal policy."""
        return logs.LogGroup(
            self,
            construct_id,
            retention=retention(retention_days),
            encryption_key=key,
            removal_policy=self.removal_policy,
        )

    def import_secret(self, source: secretsmanager.ISecret, construct_id: str) -> secretsmanager.ISecret:
        """Another stack's secret re-imported here, so granting our roles read access changes only our
        roles' policies (a grant on the other stack's secret and key would edit their policies and make
        that stack depend on this one; its key policy delegates to IAM)."""
        key = (
            kms.Key.from_key_arn(self, f"{construct_id}Key", source.encryption_key.key_arn)
            if source.encryption_key is not None
            else None
        )
        if source.secret_full_arn is not None:
            return secretsmanager.Secret.from_secret_attributes(
                self, construct_id, secret_complete_arn=source.secret_full_arn, encryption_key=key
            )
        return secretsmanager.Secret.from_secret_attributes(
            self, construct_id, secret_partial_arn=source.secret_arn, encryption_key=key
        )

    def grant_secret_key_decrypt(self, role: iam.IRole, secret: secretsmanager.ISecret) -> None:
        """kms:Decrypt on `secret`'s customer-managed key, only through Secrets Manager.

        Reading a secret encrypted with a customer-managed key needs kms:Decrypt on that key besides
        secretsmanager:GetSecretValue (https://docs.aws.amazon.com/secretsmanager/latest/userguide/security-encryption.html,
        "Permissions for the KMS key"); for ECS `secrets` that caller is the task EXECUTION role
        (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/secrets-envvar-secrets-manager.html).
        CDK's grant on a re-imported secret (`import_secret`) cannot edit the other stack's key policy and
        adds no KMS permission by itself (tests/permissions found the missing statements), so every
        reader of another stack's secret calls this.
        """
        if secret.encryption_key is None:
            return
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["kms:Decrypt"],
                resources=[secret.encryption_key.key_arn],
                conditions={
                    "StringEquals": {"kms:ViaService": f"secretsmanager.{self.region}.amazonaws.com"}
                },
            )
        )

    def create_data_key(self, construct_id: str, purpose: str) -> kms.Key:
        """A customer-managed key with rotation, usable by CloudWatch Logs in this region."""
        key = kms.Key(
            self,
            construct_id,
            description=f"{self.config.prefix} {purpose}",
            enable_key_rotation=True,
            removal_policy=self.removal_policy,
            pending_window=cdk.Duration.days(7),
        )
        key.grant_encrypt_decrypt(cdk.aws_iam.ServicePrincipal(f"logs.{self.region}.amazonaws.com"))
        return key


_RETENTION = {
    1: logs.RetentionDays.ONE_DAY,
    3: logs.RetentionDays.THREE_DAYS,
    5: logs.RetentionDays.FIVE_DAYS,
    7: logs.RetentionDays.ONE_WEEK,
    14: logs.RetentionDays.TWO_WEEKS,
    30: logs.RetentionDays.ONE_MONTH,
    60: logs.RetentionDays.TWO_MONTHS,
    90: logs.RetentionDays.THREE_MONTHS,
    120: logs.RetentionDays.FOUR_MONTHS,
    150: logs.RetentionDays.FIVE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS,
    365: logs.RetentionDays.ONE_YEAR,
    400: logs.RetentionDays.THIRTEEN_MONTHS,
    545: logs.RetentionDays.EIGHTEEN_MONTHS,
    731: logs.RetentionDays.TWO_YEARS,
    1096: logs.RetentionDays.THREE_YEARS,
    1827: logs.RetentionDays.FIVE_YEARS,
    3653: logs.RetentionDays.TEN_YEARS,
}


def retention(days: int) -> logs.RetentionDays:
    """The RetentionDays member for a validated day count (see `check_retention` in the config)."""
    return _RETENTION[days]

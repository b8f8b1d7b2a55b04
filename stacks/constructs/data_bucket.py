"""A KMS-encrypted data bucket: the one shape of every bucket that holds the foundation's own data
(evaluation reports; Langfuse events, media and exports).

- SSE-KMS with the caller's customer-managed key and an S3 Bucket Key, which cuts the KMS requests S3
  makes (and their cost) by using a bucket-level key derived from the KMS key
  (https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucket-key.html). A KMS-encrypted bucket is what
  NIST.800.53.R5-S3DefaultEncryptionKMS asks for; the key is given, because each stack already has one
  data key for all its stores (stacks/base.py `create_data_key`).
- Public access blocked, and an SSL-only bucket policy (Deny when `aws:SecureTransport` is false,
  https://docs.aws.amazon.com/AmazonS3/latest/userguide/security-best-practices.html, "Implement
  encryption of data in transit").
- Versioned, with one lifecycle rule: current objects expire after `expire_days` (or are kept), old
  versions after `NONCURRENT_VERSION_DAYS`, incomplete multipart uploads after a day.
- Object ownership BucketOwnerEnforced (ACLs off) stated explicitly; it is also S3's default for new
  buckets (https://docs.aws.amazon.com/AmazonS3/latest/userguide/object-ownership-new-bucket.html).
- Server access logs to a `LogBucket` under a prefix, delivered by the logging service principal through
  the log bucket's policy (https://docs.aws.amazon.com/AmazonS3/latest/userguide/enable-server-access-logging.html,
  "Grant permissions to the logging service principal using a bucket policy"). CDK writes that policy only
  when the feature flag `@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy` is on where the log bucket
  lives; otherwise it grants delivery with the LogDeliveryWrite ACL instead (aws-cdk-lib 2.275.0
  aws-s3/lib/bucket.ts, `allowLogDelivery`): for a BucketOwnerEnforced log bucket that is a synth error
  about object ownership that never names the flag, for an ObjectWriter one (CloudFront logs) it silently
  turns ACLs on. So the block refuses a log bucket without the flag, naming it. Or no access logs, with
  the reason the caller gives.
- Removal policy from the profile: RETAIN where data is kept, otherwise DESTROY with auto-deleted objects.
- The cdk-nag findings such a bucket carries (no replication; no access logs where the caller has a
  reason) are acknowledged here with the caller's reasons and recorded (`acknowledgements`).

The inner bucket has the construct id "Default", so `DataBucket(stack, "Reports", ...)` keeps the logical
ids a plain `s3.Bucket(stack, "Reports", ...)` had for the bucket, its policy and its auto-delete
resource (CDK hides "Default" path components from logical ids: aws-cdk-lib core/lib/private/uniqueid.ts,
HIDDEN_ID).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from stacks.constructs import BuildingBlock

logger = logging.getLogger(__name__)

# Old object versions are kept this long after they are overwritten or deleted (undo window).
NONCURRENT_VERSION_DAYS = 7
ACCESS_LOGS_POLICY_FLAG = "@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy"
NO_ACCESS_LOGS_FINDINGS = ("AwsSolutions-S1", "NIST.800.53.R5-S3BucketLoggingEnabled")
NO_REPLICATION_FINDING = "NIST.800.53.R5-S3BucketReplicationEnabled"


@dataclass(frozen=True)
class AccessLogs:
    """Where a data bucket's server access logs go: a bucket of this app (a `LogBucket`'s `bucket`) and
    the key prefix of this bucket's logs there (e.g. `s3/events/`)."""

    bucket: s3.Bucket
    prefix: str


class DataBucket(BuildingBlock):
    """A private, SSE-KMS (bucket key), SSL-only, versioned data bucket with bounded retention.

    Args:
        scope: the parent construct (usually the stack).
        construct_id: the id the bucket had before it was wrapped (keeps its logical ids).
        key: the customer-managed KMS key that encrypts the objects.
        retain: keep the bucket and its data on stack deletion (RETAIN); otherwise DESTROY with
            auto-deleted objects (the profile's `retain_data`).
        expire_days: days current objects are kept, or None to keep them (old versions still expire).
        lifecycle_id: the lifecycle rule's id, or None for none.
        access_logs: where server access logs go, or None with `no_access_logs_reason`.
        no_access_logs_reason: why this bucket has no server access logs (only without `access_logs`).
        no_replication_reason: why the bucket needs no cross-region replica.
        object_ownership: BucketOwnerEnforced (the default), or None to leave OwnershipControls out of the
            template (S3 then applies its own default, also BucketOwnerEnforced, for a new bucket).

    Raises:
        ValueError: access logs and a no-logs reason both or neither given; expire_days below 1; a log
            bucket whose scope does not have the bucket-policy log delivery flag on.

    Attributes:
        bucket: the `s3.Bucket` (grants, names, `node.default_child` for logical ids).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        key: kms.IKey,
        retain: bool,
        expire_days: int | None,
        no_replication_reason: str,
        lifecycle_id: str | None = None,
        access_logs: AccessLogs | None = None,
        no_access_logs_reason: str | None = None,
        object_ownership: s3.ObjectOwnership | None = s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
    ) -> None:
        super().__init__(scope, construct_id)
        if (access_logs is None) == (no_access_logs_reason is None):
            raise ValueError(
                f"data bucket {construct_id}: give either access_logs or no_access_logs_reason (exactly one)"
            )
        if expire_days is not None and expire_days < 1:
            raise ValueError(
                f"data bucket {construct_id}: expire_days must be at least 1 (got {expire_days})"
            )
        if access_logs is not None and not cdk.FeatureFlags.of(access_logs.bucket).is_enabled(
            ACCESS_LOGS_POLICY_FLAG
        ):
            raise ValueError(
                f"data bucket {construct_id}: the access-log bucket {access_logs.bucket.node.path} needs the "
                f"context flag {ACCESS_LOGS_POLICY_FLAG}=true (log delivery through its bucket policy; "
                "without it CDK grants the delivery with an ACL instead)"
            )
        self.bucket = s3.Bucket(
            self,
            "Default",
            encryption=s3.BucketEncryption.KMS,
            encryption_key=key,
            bucket_key_enabled=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            versioned=True,
            object_ownership=object_ownership,
            server_access_logs_bucket=access_logs.bucket if access_logs else None,
            server_access_logs_prefix=access_logs.prefix if access_logs else None,
            removal_policy=cdk.RemovalPolicy.RETAIN if retain else cdk.RemovalPolicy.DESTROY,
            auto_delete_objects=not retain,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id=lifecycle_id,
                    expiration=cdk.Duration.days(expire_days) if expire_days is not None else None,
                    noncurrent_version_expiration=cdk.Duration.days(NONCURRENT_VERSION_DAYS),
                    abort_incomplete_multipart_upload_after=cdk.Duration.days(1),
                )
            ],
        )
        findings = {NO_REPLICATION_FINDING: no_replication_reason}
        if no_access_logs_reason is not None:
            findings.update(dict.fromkeys(NO_ACCESS_LOGS_FINDINGS, no_access_logs_reason))
        self.acknowledge(self.bucket, findings)

    @property
    def bucket_name(self) -> str:
        return self.bucket.bucket_name

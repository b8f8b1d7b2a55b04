"""An access-log destination bucket: S3 server access logs, ALB access logs, CloudFront standard logs.

One shape for every log bucket of the foundation:

- SSE-S3 encryption: ALB access logs and CloudFront standard (legacy) logs can only be delivered to
  SSE-S3 buckets (https://docs.aws.amazon.com/elasticloadbalancing/latest/application/enable-access-logging.html,
  https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/standard-logging-legacy-s3.html),
  and S3 server access logging documents SSE-S3 for its destination
  (https://docs.aws.amazon.com/AmazonS3/latest/userguide/enable-server-access-logging.html).
- Public access blocked, SSL-only bucket policy, versioned, `access_log_lifecycle` (current logs
  expire after `expire_days`, old versions after a day, stale multipart uploads after a day).
- Object ownership: BucketOwnerEnforced (ACLs off), except for CloudFront standard logging, which
  writes with the `awslogsdelivery` account's ACL and needs ObjectWriter (page above, "Choosing an S3
  bucket for your standard logs": "ACLs enabled").
- The cdk-nag findings every log destination carries are acknowledged here, once.

The inner bucket has the construct id "Default", so `LogBucket(stack, "AccessLogs", ...)` keeps the
logical id a plain `s3.Bucket(stack, "AccessLogs", ...)` had (CDK hides "Default" path components from
logical ids: aws-cdk-lib core/lib/private/uniqueid.ts, HIDDEN_ID).
"""

from __future__ import annotations

import logging

from aws_cdk import RemovalPolicy
from aws_cdk import aws_s3 as s3
from constructs import Construct

from stacks.base import access_log_lifecycle
from stacks.compliance import ACCESS_LOG_BUCKET_ACKNOWLEDGEMENTS
from stacks.constructs import BuildingBlock

logger = logging.getLogger(__name__)


class LogBucket(BuildingBlock):
    """A private, SSE-S3, SSL-only, versioned access-log bucket with bounded retention.

    Args:
        scope: the parent construct (usually the stack).
        construct_id: the id the bucket had before it was wrapped (keeps its logical id).
        expire_days: days current log objects are kept.
        retain: keep the bucket and its logs on stack deletion (RETAIN); otherwise DESTROY with
            auto-deleted objects.
        cloudfront_logging: the bucket receives CloudFront standard logs (ObjectWriter ownership).
        minimum_tls_version: also deny requests below this TLS version (bucket policy), or None.

    Attributes:
        bucket: the `s3.Bucket` to pass to `log_access_logs`, `server_access_logs_bucket`, `log_bucket`.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        expire_days: int,
        retain: bool,
        cloudfront_logging: bool = False,
        minimum_tls_version: float | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        if expire_days < 1:
            raise ValueError(f"log bucket {construct_id}: expire_days must be at least 1 (got {expire_days})")
        self.bucket = s3.Bucket(
            self,
            "Default",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=(
                s3.ObjectOwnership.OBJECT_WRITER
                if cloudfront_logging
                else s3.ObjectOwnership.BUCKET_OWNER_ENFORCED
            ),
            enforce_ssl=True,
            minimum_tls_version=minimum_tls_version,
            versioned=True,
            removal_policy=RemovalPolicy.RETAIN if retain else RemovalPolicy.DESTROY,
            auto_delete_objects=not retain,
            lifecycle_rules=[access_log_lifecycle(expire_days)],
        )
        self.acknowledge(self, ACCESS_LOG_BUCKET_ACKNOWLEDGEMENTS)

    @property
    def bucket_name(self) -> str:
        return self.bucket.bucket_name

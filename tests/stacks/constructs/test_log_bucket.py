"""LogBucket: one access-log bucket shape, the logical id of the bucket it replaced, its own acknowledgements."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_s3 as s3
from aws_cdk.assertions import Template

from stacks.compliance import ACCESS_LOG_BUCKET_ACKNOWLEDGEMENTS
from stacks.constructs.log_bucket import LogBucket


def bucket_of(template: Template) -> tuple[str, dict[str, Any]]:
    ((logical_id, resource),) = template.find_resources("AWS::S3::Bucket").items()
    return logical_id, dict(resource)


@pytest.fixture(scope="module")
def built() -> tuple[Template, LogBucket]:
    stack = cdk.Stack(cdk.App(), "S")
    bucket = LogBucket(stack, "AccessLogs", expire_days=30, retain=False, cloudfront_logging=True)
    return Template.from_stack(stack), bucket


def test_the_bucket_keeps_the_logical_id_of_a_plain_bucket_of_the_same_id(
    built: tuple[Template, LogBucket],
) -> None:
    plain = cdk.Stack(cdk.App(), "S")
    s3.Bucket(plain, "AccessLogs")
    assert bucket_of(built[0])[0] == bucket_of(Template.from_stack(plain))[0]


def test_sse_s3_private_versioned_with_the_access_log_lifecycle(built: tuple[Template, LogBucket]) -> None:
    _, resource = bucket_of(built[0])
    props = resource["Properties"]
    assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0][
        "ServerSideEncryptionByDefault"
    ] == {"SSEAlgorithm": "AES256"}
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    assert props["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "ObjectWriter"}]}
    assert props["LifecycleConfiguration"]["Rules"] == [
        {
            "Id": "expire-access-logs",
            "ExpirationInDays": 30,
            "NoncurrentVersionExpiration": {"NoncurrentDays": 1},
            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
            "Status": "Enabled",
        }
    ]
    assert resource["DeletionPolicy"] == "Delete"


def test_ssl_only_policy(built: tuple[Template, LogBucket]) -> None:
    (policy,) = built[0].find_resources("AWS::S3::BucketPolicy").values()
    denies = [s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"]
    assert any(s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in denies)


def test_acls_stay_off_without_cloudfront_and_retain_keeps_the_logs() -> None:
    stack = cdk.Stack(cdk.App(), "S")
    LogBucket(stack, "AccessLogs", expire_days=14, retain=True)
    template = Template.from_stack(stack)
    _, resource = bucket_of(template)
    assert resource["Properties"]["OwnershipControls"] == {
        "Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]
    }
    assert resource["DeletionPolicy"] == "Retain"
    assert template.find_resources("Custom::S3AutoDeleteObjects") == {}


def test_the_construct_carries_the_log_bucket_acknowledgements(built: tuple[Template, LogBucket]) -> None:
    recorded = {a.finding: a.reason for a in built[1].acknowledgements}
    assert recorded == ACCESS_LOG_BUCKET_ACKNOWLEDGEMENTS


def test_a_retention_below_one_day_is_refused() -> None:
    with pytest.raises(
        ValueError, match=r"^log bucket AccessLogs: expire_days must be at least 1 \(got 0\)$"
    ):
        LogBucket(cdk.Stack(cdk.App(), "S"), "AccessLogs", expire_days=0, retain=False)
    LogBucket(cdk.Stack(cdk.App(), "S"), "AccessLogs", expire_days=1, retain=False)  # one day is the minimum

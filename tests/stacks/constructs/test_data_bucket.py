"""DataBucket: the KMS-encrypted data bucket's documented shape (SSE-KMS with the given key and a bucket
key, TLS-only policy, public access blocked, versioned with bounded retention, server access logs to the
log bucket through its policy), the logical ids a plain bucket of the same id had, its refusals, and
exactly the acknowledgements whose findings occur."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
import pytest

from stacks.compliance import acknowledge_cdk_helpers
from stacks.constructs import BuildingBlock
from stacks.constructs.data_bucket import ACCESS_LOGS_POLICY_FLAG, AccessLogs, DataBucket
from stacks.constructs.log_bucket import LogBucket
from tests.stacks.constructs import Synthesized, cdk_logical_id, key, synth_blocks

BLOCKS: dict[str, BuildingBlock] = {}
NO_REPLICATION = "Stand-in data of the building-block tests; no replica is ever needed for them."
NO_LOGS = "Stand-in reports bucket of the building-block tests; writes are recorded by CloudTrail."

KEY_ID = cdk_logical_id("Key", "Resource")
LOGS_ID = cdk_logical_id("AccessLogs", "Resource")
EVENTS_ID = cdk_logical_id("Events", "Resource")
REPORTS_ID = cdk_logical_id("Reports", "Resource")


def _build(stack: cdk.Stack) -> None:
    # As the observability and knowledge-base stacks do: S3 log delivery through the log bucket's policy.
    stack.node.set_context(ACCESS_LOGS_POLICY_FLAG, True)
    data_key = key(stack)
    logs = LogBucket(stack, "AccessLogs", expire_days=14, retain=False)
    BLOCKS["events"] = DataBucket(
        stack,
        "Events",
        key=data_key,
        retain=False,
        expire_days=30,
        lifecycle_id="events-lifecycle",
        access_logs=AccessLogs(logs.bucket, prefix="s3/events/"),
        no_replication_reason=NO_REPLICATION,
    )
    BLOCKS["reports"] = DataBucket(
        stack,
        "Reports",
        key=data_key,
        retain=True,
        expire_days=None,
        no_access_logs_reason=NO_LOGS,
        no_replication_reason=NO_REPLICATION,
        object_ownership=None,
    )
    acknowledge_cdk_helpers(stack)


@pytest.fixture(scope="module")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    return synth_blocks(tmp_path_factory.mktemp("data-bucket"), _build)


def _bucket(synthesized: Synthesized, logical_id: str) -> dict[str, Any]:
    return dict(synthesized.resources("AWS::S3::Bucket")[logical_id])


def _policy_statements(synthesized: Synthesized, bucket_id: str) -> list[dict[str, Any]]:
    (policy,) = [
        p
        for p in synthesized.resources("AWS::S3::BucketPolicy").values()
        if p["Properties"]["Bucket"] == {"Ref": bucket_id}
    ]
    return list(policy["Properties"]["PolicyDocument"]["Statement"])


def test_bucket_policy_and_auto_delete_keep_the_logical_ids_of_a_plain_bucket(
    synthesized: Synthesized,
) -> None:
    # A former `s3.Bucket(stack, "Events", auto_delete_objects=True, enforce_ssl=True)`.
    assert {EVENTS_ID, REPORTS_ID} <= set(synthesized.resources("AWS::S3::Bucket"))
    assert cdk_logical_id("Events", "Policy", "Resource") in synthesized.resources("AWS::S3::BucketPolicy")
    assert cdk_logical_id("Reports", "Policy", "Resource") in synthesized.resources("AWS::S3::BucketPolicy")
    assert cdk_logical_id("Events", "AutoDeleteObjectsCustomResource", "Default") in synthesized.resources(
        "Custom::S3AutoDeleteObjects"
    )


@pytest.mark.parametrize("bucket_id", [EVENTS_ID, REPORTS_ID])
def test_sse_kms_with_the_given_key_and_a_bucket_key(synthesized: Synthesized, bucket_id: str) -> None:
    encryption = _bucket(synthesized, bucket_id)["Properties"]["BucketEncryption"]
    assert encryption == {
        "ServerSideEncryptionConfiguration": [
            {
                "BucketKeyEnabled": True,
                "ServerSideEncryptionByDefault": {
                    "SSEAlgorithm": "aws:kms",
                    "KMSMasterKeyID": {"Fn::GetAtt": [KEY_ID, "Arn"]},
                },
            }
        ]
    }


@pytest.mark.parametrize("bucket_id", [EVENTS_ID, REPORTS_ID])
def test_public_access_blocked_and_versioned(synthesized: Synthesized, bucket_id: str) -> None:
    props = _bucket(synthesized, bucket_id)["Properties"]
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}


@pytest.mark.parametrize("bucket_id", [EVENTS_ID, REPORTS_ID])
def test_the_policy_denies_every_request_without_tls(synthesized: Synthesized, bucket_id: str) -> None:
    denies = [s for s in _policy_statements(synthesized, bucket_id) if s["Effect"] == "Deny"]
    assert denies == [
        {
            "Action": "s3:*",
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            "Effect": "Deny",
            "Principal": {"AWS": "*"},
            "Resource": [
                {"Fn::GetAtt": [bucket_id, "Arn"]},
                {"Fn::Join": ["", [{"Fn::GetAtt": [bucket_id, "Arn"]}, "/*"]]},
            ],
        }
    ]


def test_access_logs_go_to_the_log_bucket_through_its_policy(synthesized: Synthesized) -> None:
    props = _bucket(synthesized, EVENTS_ID)["Properties"]
    assert props["LoggingConfiguration"] == {
        "DestinationBucketName": {"Ref": LOGS_ID},
        "LogFilePrefix": "s3/events/",
    }
    # The logging service principal may put objects under this bucket's prefix only, for this bucket and
    # account only (S3 user guide, enable-server-access-logging.html, bucket-policy permissions).
    delivery = [
        s
        for s in _policy_statements(synthesized, LOGS_ID)
        if s.get("Principal") == {"Service": "logging.s3.amazonaws.com"}
    ]
    assert delivery == [
        {
            "Action": "s3:PutObject",
            "Condition": {
                "ArnLike": {"aws:SourceArn": {"Fn::GetAtt": [EVENTS_ID, "Arn"]}},
                "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}},
            },
            "Effect": "Allow",
            "Principal": {"Service": "logging.s3.amazonaws.com"},
            "Resource": {"Fn::Join": ["", [{"Fn::GetAtt": [LOGS_ID, "Arn"]}, "/s3/events/*"]]},
        }
    ]
    # ...and the log bucket keeps its ACLs off (no LogDeliveryWrite ACL).
    logs = _bucket(synthesized, LOGS_ID)["Properties"]
    assert "AccessControl" not in logs
    assert logs["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}


def test_without_access_logs_no_logging_configuration(synthesized: Synthesized) -> None:
    assert "LoggingConfiguration" not in _bucket(synthesized, REPORTS_ID)["Properties"]


def test_lifecycle_expires_current_objects_old_versions_and_stale_uploads(synthesized: Synthesized) -> None:
    events = _bucket(synthesized, EVENTS_ID)["Properties"]["LifecycleConfiguration"]["Rules"]
    assert events == [
        {
            "Id": "events-lifecycle",
            "ExpirationInDays": 30,
            "NoncurrentVersionExpiration": {"NoncurrentDays": 7},
            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
            "Status": "Enabled",
        }
    ]
    reports = _bucket(synthesized, REPORTS_ID)["Properties"]["LifecycleConfiguration"]["Rules"]
    assert reports == [
        {
            "NoncurrentVersionExpiration": {"NoncurrentDays": 7},
            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
            "Status": "Enabled",
        }
    ]


def test_ownership_and_removal_follow_the_arguments(synthesized: Synthesized) -> None:
    events, reports = _bucket(synthesized, EVENTS_ID), _bucket(synthesized, REPORTS_ID)
    assert events["Properties"]["OwnershipControls"] == {
        "Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]
    }
    assert "OwnershipControls" not in reports["Properties"]
    assert (events["DeletionPolicy"], events["UpdateReplacePolicy"]) == ("Delete", "Delete")
    assert (reports["DeletionPolicy"], reports["UpdateReplacePolicy"]) == ("Retain", "Retain")
    emptied = {
        r["Properties"]["BucketName"]["Ref"]
        for r in synthesized.resources("Custom::S3AutoDeleteObjects").values()
    }
    assert emptied == {EVENTS_ID, LOGS_ID}  # a retained bucket is never emptied


def test_acknowledgements_match_the_findings_that_occur(synthesized: Synthesized) -> None:
    assert synthesized.open_findings() == []
    assert synthesized.unused(BLOCKS.values()) == []
    events = {a.finding: a.reason for a in BLOCKS["events"].acknowledgements}
    assert events == {"NIST.800.53.R5-S3BucketReplicationEnabled": NO_REPLICATION}
    reports = {a.finding: a.reason for a in BLOCKS["reports"].acknowledgements}
    assert reports == {
        "NIST.800.53.R5-S3BucketReplicationEnabled": NO_REPLICATION,
        "AwsSolutions-S1": NO_LOGS,
        "NIST.800.53.R5-S3BucketLoggingEnabled": NO_LOGS,
    }
    assert {a.path for a in BLOCKS["reports"].acknowledgements} == {"blocks/Reports/Default"}
    assert {a.path for a in BLOCKS["events"].acknowledgements} == {"blocks/Events/Default"}


def _data_bucket(stack: cdk.Stack, **overrides: Any) -> DataBucket:
    arguments: dict[str, Any] = {
        "key": key(stack),
        "retain": False,
        "expire_days": 7,
        "no_replication_reason": NO_REPLICATION,
        "no_access_logs_reason": NO_LOGS,
    }
    arguments.update(overrides)
    return DataBucket(stack, "Data", **arguments)


def _flagged_stack() -> cdk.Stack:
    stack = cdk.Stack(cdk.App())
    stack.node.set_context(ACCESS_LOGS_POLICY_FLAG, True)
    return stack


def test_access_logs_and_a_no_logs_reason_together_are_refused() -> None:
    stack = _flagged_stack()
    logs = LogBucket(stack, "AccessLogs", expire_days=14, retain=False)
    with pytest.raises(
        ValueError,
        match=r"^data bucket Data: give either access_logs or no_access_logs_reason \(exactly one\)$",
    ):
        _data_bucket(stack, access_logs=AccessLogs(logs.bucket, prefix="s3/data/"))


def test_neither_access_logs_nor_a_reason_is_refused() -> None:
    with pytest.raises(
        ValueError,
        match=r"^data bucket Data: give either access_logs or no_access_logs_reason \(exactly one\)$",
    ):
        _data_bucket(cdk.Stack(cdk.App()), no_access_logs_reason=None)


def test_a_retention_below_one_day_is_refused() -> None:
    with pytest.raises(ValueError, match=r"^data bucket Data: expire_days must be at least 1 \(got 0\)$"):
        _data_bucket(cdk.Stack(cdk.App()), expire_days=0)
    _data_bucket(cdk.Stack(cdk.App()), expire_days=1)  # one day is the minimum


# Without the flag CDK grants delivery with the LogDeliveryWrite ACL: a synth error about object ownership
# for a BucketOwnerEnforced log bucket, silently ACLs on for an ObjectWriter (CloudFront) one.
@pytest.mark.parametrize("cloudfront_logging", [False, True])
def test_a_log_bucket_without_policy_delivery_is_refused_naming_the_flag(cloudfront_logging: bool) -> None:
    stack = cdk.Stack(cdk.App())  # the flag is off by default in aws-cdk-lib 2
    logs = LogBucket(stack, "AccessLogs", expire_days=14, retain=False, cloudfront_logging=cloudfront_logging)
    with pytest.raises(ValueError, match=ACCESS_LOGS_POLICY_FLAG):
        _data_bucket(
            stack, no_access_logs_reason=None, access_logs=AccessLogs(logs.bucket, prefix="s3/data/")
        )

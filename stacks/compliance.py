"""App-wide compliance gates: cdk-nag 3.x packs, per-finding acknowledgements, cost-allocation tags."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import aws_cdk as cdk
import jsii
from cdk_nag import AwsSolutionsChecks, NIST80053R5Checks
from constructs import IConstruct

from config import AppConfig

logger = logging.getLogger(__name__)

MIN_REASON_LENGTH = 25
_PACKS = ("AwsSolutions", "NIST.800.53.R5")


# Findings that follow from how CDK itself builds things, acknowledged once for the whole app.
APP_WIDE_ACKNOWLEDGEMENTS = {
    "NIST.800.53.R5-IAMNoInlinePolicy": "CDK grants write one least-privilege inline policy per role, scoped to "
    "the resources that role uses; a customer-managed policy could be attached to other principals.",
}

# CDK's own deploy-time helpers (custom-resource providers, bucket auto-delete, log retention).
CDK_HELPER_ACKNOWLEDGEMENTS = {
    "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]": (
        "CDK's custom-resource provider needs only to write its own logs; the AWS managed basic execution "
        "role grants exactly that."
    ),
    "NIST.800.53.R5-LambdaInsideVPC": "CDK's custom-resource provider runs only during deployments and calls "
    "AWS APIs only; it has no data-plane access that a VPC would protect.",
    "NIST.800.53.R5-LambdaDLQ": "CDK's custom-resource provider is invoked synchronously by CloudFormation, "
    "which reports failures itself; a dead-letter queue would never receive anything.",
    "NIST.800.53.R5-LambdaConcurrency": "CDK's custom-resource provider runs a handful of times per deployment; "
    "a reserved-concurrency limit would only risk failing deployments.",
}


def enable_compliance_checks(app: cdk.App) -> None:
    """Run the AWS Solutions and NIST 800-53 R5 packs over every construct of the app at synth."""
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    cdk.Validations.of(app).add_plugins(NIST80053R5Checks(app))
    acknowledge_all(app, APP_WIDE_ACKNOWLEDGEMENTS)


def acknowledge_cdk_helpers(stack: cdk.Stack) -> None:
    """Acknowledge the findings on CDK's singleton helper functions in `stack`, and nothing else.

    Call this at the end of a stack's constructor; it finds CDK's singleton providers by their fixed ids.
    """
    for child in stack.node.children:
        child_id = child.node.id
        if child_id.startswith(
            ("AWS679f53fac002430cb0da5b7982bd2287", "Custom::", "LogRetention", "BucketNotifications")
        ):
            acknowledge_all(child, CDK_HELPER_ACKNOWLEDGEMENTS)


# The findings every access-log destination bucket carries, and why each is acceptable.
ACCESS_LOG_BUCKET_ACKNOWLEDGEMENTS = {
    "AwsSolutions-S1": "This bucket is the access-log target itself; logging it to itself would loop.",
    "NIST.800.53.R5-S3BucketLoggingEnabled": "This bucket is the access-log target itself.",
    "NIST.800.53.R5-S3DefaultEncryptionKMS": "ALB and CloudFront standard log delivery support SSE-S3 only "
    "(https://docs.aws.amazon.com/elasticloadbalancing/latest/application/enable-access-logging.html, "
    "https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/standard-logging-legacy-s3.html), "
    "and S3 server access logging documents SSE-S3 for its destination "
    "(https://docs.aws.amazon.com/AmazonS3/latest/userguide/enable-server-access-logging.html); "
    "the bucket is encrypted with SSE-S3, SSL-only and private.",
    "NIST.800.53.R5-S3BucketReplicationEnabled": "Access logs are kept for a bounded period; "
    "cross-region replication is not required for them.",
}


# A task execution role that pulls a private image (a CDK image asset or an ECR repository): CDK grants
# ecr:GetAuthorizationToken on "*" (aws-cdk-lib aws-ecr/lib/auth-token.ts) because the action has no
# resource type (https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonelasticcontainerregistry.html).
ECR_PULL_ACKNOWLEDGEMENTS = {
    "AwsSolutions-IAM5[Resource::*]": "ecr:GetAuthorizationToken, which ECS needs to pull the task's private "
    "image, has no resource-level permissions; every other grant of the execution role names its "
    "repository, log group or secret.",
}

# CDK's key grants (Key.grant_encrypt, grant_encrypt_decrypt and the L2s that call them) write these two
# action wildcards (aws-cdk-lib aws-kms/lib/private/perms.ts, ENCRYPT_ACTIONS).
KEY_GRANT_WILDCARDS = ("kms:ReEncrypt*", "kms:GenerateDataKey*")


def acknowledge_key_grant(
    role: IConstruct, *, granted_by: str, key: str, actions: tuple[str, ...] = KEY_GRANT_WILDCARDS
) -> None:
    """Acknowledge the KMS action wildcards of a CDK key grant on `role` (AwsSolutions-IAM5[Action::...]).

    Args:
        role: the role (or its policy) the grant was written to.
        granted_by: what wrote the grant, e.g. "the Memory L2" or "CDK's grant_encrypt".
        key: which key the grant names, e.g. "this stack's own data key".
        actions: the wildcards that occur on this role (a subset of KEY_GRANT_WILDCARDS).
    """
    unknown = sorted(set(actions) - set(KEY_GRANT_WILDCARDS))
    if unknown:
        raise ValueError(f"{unknown} are not wildcards a CDK key grant writes ({list(KEY_GRANT_WILDCARDS)})")
    reason = (
        f"{granted_by} grants CDK's encrypt actions (these wildcards) on {key} only; no other key is named."
    )
    acknowledge_all(role, {f"AwsSolutions-IAM5[Action::{action}]": reason for action in actions})


def nag_region_account(stack: cdk.Stack) -> str:
    """`<region>:<account>` as cdk-nag renders them in finding ids: a literal region/account (environment
    set) as itself, a pseudo parameter as `<AWS::Region>` / `<AWS::AccountId>`. Acknowledged ARNs use this
    so that an environment-specific synth still matches its acknowledgements."""
    return ":".join(nag_region_and_account(stack))


def nag_region_and_account(stack: cdk.Stack) -> tuple[str, str]:
    """(region, account) as cdk-nag renders them in finding ids (see `nag_region_account`)."""
    region = stack.region if not cdk.Token.is_unresolved(stack.region) else "<AWS::Region>"
    account = stack.account if not cdk.Token.is_unresolved(stack.account) else "<AWS::AccountId>"
    return region, account


def acknowledge(scope: IConstruct, finding: str, reason: str) -> None:
    """Acknowledge one cdk-nag finding on `scope` and its children.

    Args:
        scope: the construct the finding is about (keep it as narrow as possible).
        finding: the rule id with its finding, e.g. `AwsSolutions-IAM5[Resource::*]` or
            `NIST.800.53.R5-S3BucketReplicationEnabled`.
        reason: why this is acceptable here; at least 25 characters so it says something real.
    """
    pack = next((p for p in _PACKS if finding.startswith(f"{p}-")), None)
    if pack is None:
        raise ValueError(f"finding {finding!r} must start with one of {[f'{p}-' for p in _PACKS]}")
    if len(reason.strip()) < MIN_REASON_LENGTH:
        raise ValueError(f"acknowledgement of {finding} needs a real reason (got {reason!r})")
    cdk.Validations.of(scope).acknowledge(cdk.Acknowledgment(id=f"{pack}::{finding}", reason=reason))


def acknowledge_all(scope: IConstruct, findings: dict[str, str]) -> None:
    """Acknowledge several findings on one scope: `{finding: reason}`."""
    for finding, reason in findings.items():
        acknowledge(scope, finding, reason)


def apply_cost_tags(app: cdk.App, config: AppConfig) -> None:
    """Tag every taggable resource with project and profile (stacks add `component`)."""
    tags = {
        "project": config.prefix,
        "profile": config.project.profile,
        "managed-by": "agentic-ai-foundation",
    }
    for key, value in tags.items():
        cdk.Tags.of(app).add(key, value)
    cdk.Aspects.of(app).add(_TagRawResources(tags))


# Types CDK's custom-resource providers create as raw CfnResources, which `Tags.of` cannot reach.
_RAW_TAGGABLE_TYPES = frozenset({"AWS::IAM::Role", "AWS::Lambda::Function"})


@jsii.implements(cdk.IAspect)
class _TagRawResources:
    """Tags the raw roles and functions of CDK's custom-resource providers like everything else."""

    def __init__(self, tags: dict[str, str]) -> None:
        self._tags = tags

    def visit(self, node: IConstruct) -> None:
        if (
            isinstance(node, cdk.CfnResource)
            and node.cfn_resource_type in _RAW_TAGGABLE_TYPES
            and not cdk.TagManager.is_taggable(node)
        ):
            stack = cdk.Stack.of(node)
            component = getattr(stack, "tag_component", None) or getattr(stack, "component", "shared")
            tags = {**self._tags, "component": component}
            node.add_property_override("Tags", [{"Key": k, "Value": v} for k, v in sorted(tags.items())])


@dataclass(frozen=True)
class ValidationSummary:
    """What the nag packs reported for one synthesized assembly."""

    unacknowledged: tuple[str, ...]
    acknowledged: int
    rules_acknowledged: int


def read_validation_report(outdir: Path) -> ValidationSummary:
    """Summarise `validation-report.json` in a cloud assembly directory.

    Raises:
        FileNotFoundError: when the assembly has no report (the packs did not run).
    """
    report = json.loads((outdir / "validation-report.json").read_text(encoding="utf-8"))
    open_findings: list[str] = []
    acknowledged = 0
    rules: set[str] = set()
    for plugin in report.get("pluginReports", []):
        for violation in plugin.get("violations", []):
            if violation.get("severity") == "error":
                for construct in violation.get("violatingConstructs", []):
                    open_findings.append(f"{violation['ruleName']} at {construct['constructPath']}")
        for suppressed in plugin.get("suppressedViolations", []):
            acknowledged += len(suppressed.get("violatingConstructs", []))
            rules.add(suppressed.get("acknowledgedId", suppressed["ruleName"]))
    return ValidationSummary(tuple(open_findings), acknowledged, len(rules))

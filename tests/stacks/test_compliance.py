"""Compliance helpers: acknowledgements need a pack-qualified finding and a real reason; report parsing."""

from __future__ import annotations

import json
from pathlib import Path

import aws_cdk as cdk
import pytest
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms

from stacks.compliance import (
    acknowledge,
    acknowledge_key_grant,
    enable_compliance_checks,
    read_validation_report,
)


def test_acknowledgement_needs_a_known_pack() -> None:
    with pytest.raises(ValueError, match="must start with one of"):
        acknowledge(cdk.App(), "IAM5[Resource::*]", "a long enough reason for the acknowledgement")


def test_acknowledgement_needs_a_real_reason() -> None:
    with pytest.raises(ValueError, match="needs a real reason"):
        acknowledge(cdk.App(), "AwsSolutions-IAM5", "ok")


def test_report_counts_open_and_acknowledged_findings(tmp_path: Path) -> None:
    report = {
        "pluginReports": [
            {
                "violations": [
                    {
                        "ruleName": "AwsSolutions-S1",
                        "severity": "error",
                        "violatingConstructs": [{"constructPath": "S/B"}],
                    },
                    {
                        "ruleName": "AwsSolutions-W",
                        "severity": "warning",
                        "violatingConstructs": [{"constructPath": "S/W"}],
                    },
                ],
                "suppressedViolations": [
                    {
                        "ruleName": "AwsSolutions-IAM5",
                        "acknowledgedId": "AwsSolutions::AwsSolutions-IAM5[Resource::*]",
                        "violatingConstructs": [{"constructPath": "S/R1"}, {"constructPath": "S/R2"}],
                    }
                ],
            }
        ]
    }
    (tmp_path / "validation-report.json").write_text(json.dumps(report))
    summary = read_validation_report(tmp_path)
    assert (summary.unacknowledged, summary.acknowledged, summary.rules_acknowledged) == (
        ("AwsSolutions-S1 at S/B",),
        2,
        1,
    )


def test_a_key_grant_acknowledgement_names_each_wildcard_and_the_key(tmp_path: Path) -> None:
    """A CDK key grant's wildcards are acknowledged on the role they occur on, naming the key; the
    acknowledgement suppresses exactly those findings (nothing stays open, nothing else is hidden)."""
    app = cdk.App(outdir=str(tmp_path))
    stack = cdk.Stack(app, "grants")
    key = kms.Key(stack, "Key", enable_key_rotation=True)
    role = iam.Role(stack, "Role", assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com"))
    key.grant_encrypt(role)
    acknowledge_key_grant(role, granted_by="CDK's grant_encrypt", key="the test key")
    enable_compliance_checks(app)
    app.synth()  # raises ValidationFailed if a wildcard finding stayed open
    report = json.loads((tmp_path / "validation-report.json").read_text(encoding="utf-8"))
    suppressed = {
        item["acknowledgedId"]: item["reason"]
        for plugin in report["pluginReports"]
        for item in plugin["suppressedViolations"]
        if "IAM5" in item["acknowledgedId"]
    }
    assert set(suppressed) == {
        "AwsSolutions::AwsSolutions-IAM5[Action::kms:ReEncrypt*]",
        "AwsSolutions::AwsSolutions-IAM5[Action::kms:GenerateDataKey*]",
    }
    assert all("the test key" in reason for reason in suppressed.values())
    assert read_validation_report(tmp_path).unacknowledged == ()


def test_a_key_grant_acknowledgement_refuses_other_actions() -> None:
    with pytest.raises(ValueError, match="not wildcards a CDK key grant writes"):
        acknowledge_key_grant(cdk.App(), granted_by="x", key="y", actions=("kms:*",))

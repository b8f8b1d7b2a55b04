"""Compliance helpers: acknowledgements need a pack-qualified finding and a real reason; report parsing."""

from __future__ import annotations

import json
from pathlib import Path

import aws_cdk as cdk
import pytest

from stacks.compliance import acknowledge, read_validation_report


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

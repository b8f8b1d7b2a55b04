"""The synth summary gate: exit 1 on an unacknowledged finding or a cfn-lint error, 0 otherwise."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from scripts.synth_summary import main

GOOD = {"Resources": {"Topic": {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": "t"}}}}
BAD = {"Resources": {"Topic": {"Type": "AWS::SNS::Topic", "Properties": {"NoSuchProperty": 1}}}}


def _assembly(tmp_path: Path, template: dict[str, Any], open_findings: int = 0) -> Path:
    (tmp_path / "s.template.json").write_text(json.dumps(template))
    manifest = {
        "artifacts": {
            "s": {"type": "aws:cloudformation:stack", "properties": {"templateFile": "s.template.json"}}
        }
    }
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    violations = [
        {
            "ruleName": "AwsSolutions-SNS2",
            "severity": "error",
            "violatingConstructs": [{"constructPath": "s/Topic"}],
        }
    ] * open_findings
    (tmp_path / "validation-report.json").write_text(
        json.dumps({"pluginReports": [{"violations": violations}]})
    )
    return tmp_path


def test_clean_assembly_passes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(_assembly(tmp_path, GOOD))]) == 0
    assert "gates: passed" in capsys.readouterr().out


def test_unacknowledged_finding_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(_assembly(tmp_path, GOOD, open_findings=1))]) == 1
    assert "UNACKNOWLEDGED AwsSolutions-SNS2 at s/Topic" in capsys.readouterr().out


def test_cfn_lint_error_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(_assembly(tmp_path, BAD))]) == 1
    assert "CFN-LINT E3002" in capsys.readouterr().out

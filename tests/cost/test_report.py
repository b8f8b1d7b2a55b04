"""The CLI (`python -m cost`), the table, JSON and the `make synth` summary, on a hand-made assembly."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from config import REPO_ROOT
from cost.__main__ import main
from cost.model import read_assembly
from cost.report import idle_cost_summary


def _assembly(tmp_path: Path, profile: str = "dev", region: str = "unknown-region") -> Path:
    templates: dict[str, dict[str, Any]] = {
        "aaf-network": {
            "Resources": {
                "Nat": {"Type": "AWS::EC2::NatGateway", "Properties": {}},
                "Key": {
                    "Type": "AWS::KMS::Key",
                    "Properties": {"Tags": [{"Key": "profile", "Value": profile}]},
                },
            }
        },
        "aaf-tools": {
            "Resources": {
                "Secret": {"Type": "AWS::SecretsManager::Secret", "Properties": {}},
                "Odd": {"Type": "AWS::Neptune::DBCluster", "Properties": {}},
            }
        },
    }
    artifacts: dict[str, Any] = {"Tree": {"type": "cdk:tree"}}
    for name, template in templates.items():
        (tmp_path / f"{name}.template.json").write_text(json.dumps(template), encoding="utf-8")
        artifacts[name] = {
            "type": "aws:cloudformation:stack",
            "environment": f"aws://unknown-account/{region}",
            "properties": {"templateFile": f"{name}.template.json"},
        }
    (tmp_path / "manifest.json").write_text(json.dumps({"artifacts": artifacts}), encoding="utf-8")
    return tmp_path


def test_reads_stack_templates_and_region(tmp_path: Path) -> None:
    assembly = read_assembly(_assembly(tmp_path, region="us-west-2"))
    assert sorted(assembly.templates) == ["aaf-network", "aaf-tools"] and assembly.region == "us-west-2"


def test_table_lists_components_total_target_and_unpriced(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([str(_assembly(tmp_path))]) == 0
    out = capsys.readouterr().out
    assert "us-east-1 prices as of 2025-06-01, profile dev" in out
    assert "network                   33.85" in out  # NAT 32.85 + key 1.00
    assert "tools                      0.40" in out
    assert "total                     34.25" in out
    assert "target for dev: $150.00/month -> within ($34.25)" in out
    assert "NOT PRICED aaf-tools/Odd (AWS::Neptune::DBCluster)" in out


def test_json_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(_assembly(tmp_path)), "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["total_usd_month"] == 34.25
    assert document["components"] == {"network": 33.85, "tools": 0.4}
    assert document["unpriced"][0]["type"] == "AWS::Neptune::DBCluster"


def test_missing_assembly_is_exit_code_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(tmp_path / "nothing")]) == 2
    assert "run `make synth` first" in capsys.readouterr().err


def test_unknown_region_is_exit_code_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(_assembly(tmp_path)), "--region", "mars-1"]) == 2
    assert "no price table for region 'mars-1'" in capsys.readouterr().err


def test_summary_for_make_synth(tmp_path: Path) -> None:
    summary = idle_cost_summary(_assembly(tmp_path))
    assert summary.splitlines()[0] == (
        "idle cost (us-east-1 prices as of 2025-06-01): $34.25/month - network $33.85, tools $0.40"
    )
    assert "1 resource(s) not priced" in summary


def test_summary_never_raises(tmp_path: Path) -> None:
    assert idle_cost_summary(tmp_path / "missing").startswith("idle cost: not estimated (")


def test_module_runs_as_a_cli(tmp_path: Path) -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "cost", str(_assembly(tmp_path)), "--details"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert "Nat (AWS::EC2::NatGateway): NAT gateway" in completed.stdout

"""App-wide gates on the fully synthesized app (dev and prod): cdk-nag, cfn-lint, tags, secrets."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cfnlint.schema import PROVIDER_SCHEMA_MANAGER

from scripts.synth_summary import lint_template, stack_templates
from stacks.compliance import read_validation_report

COST_TAGS = ("project", "component", "profile")
SECRET_LOOKING = re.compile(r"(sk-[A-Za-z0-9]{16,}|AKIA[0-9A-Z]{16}|-----BEGIN [A-Z ]*PRIVATE KEY-----)")


def _templates(assembly: Path) -> dict[str, dict[str, Any]]:
    return {name: json.loads(path.read_text()) for name, path in stack_templates(assembly).items()}


def _tag_keys(properties: dict[str, Any], tag_property: str) -> set[str]:
    tags = properties.get(tag_property.rsplit("/", 1)[-1])
    if isinstance(tags, dict):
        return set(tags)
    return {tag["Key"] for tag in tags or []}


@pytest.fixture(scope="module", params=["dev", "prod"])
def assembly(request: pytest.FixtureRequest) -> Path:
    return Path(request.getfixturevalue(f"{request.param}_assembly"))


def test_nag_has_no_unacknowledged_error(assembly: Path) -> None:
    assert read_validation_report(assembly).unacknowledged == ()


def test_nag_packs_actually_ran(assembly: Path) -> None:
    assert read_validation_report(assembly).acknowledged > 0


def test_cfn_lint_finds_no_error(assembly: Path) -> None:
    errors = [error for path in stack_templates(assembly).values() for error in lint_template(path)[0]]
    assert errors == []


def test_every_taggable_resource_has_cost_allocation_tags(assembly: Path) -> None:
    untagged, checked = [], 0
    for stack, template in _templates(assembly).items():
        for logical_id, resource in template["Resources"].items():
            if resource["Type"].startswith("Custom::") or "::" not in resource["Type"]:
                continue
            schema = PROVIDER_SCHEMA_MANAGER.get_resource_schema("us-east-1", resource["Type"]).schema
            tagging = schema.get("tagging", {})
            if not tagging.get("taggable") or "tagProperty" not in tagging:
                continue
            checked += 1
            missing = set(COST_TAGS) - _tag_keys(resource.get("Properties", {}), tagging["tagProperty"])
            if missing:
                untagged.append(f"{stack}/{logical_id} ({resource['Type']}) lacks {sorted(missing)}")
    assert checked > 10 and untagged == []


def test_no_output_exposes_a_secret(assembly: Path) -> None:
    for template in _templates(assembly).values():
        for name, output in template.get("Outputs", {}).items():
            text = json.dumps(output)
            assert "secretsmanager" not in text.lower() or "Arn" in name, name
            assert not SECRET_LOOKING.search(text), name


def test_no_template_contains_secret_material(assembly: Path) -> None:
    for name, template in _templates(assembly).items():
        assert not SECRET_LOOKING.search(json.dumps(template)), name


def test_app_with_bad_context_value_exits_naming_the_key(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "CDK_CONTEXT_JSON": json.dumps({"network.nat_gateways": "9"}),
        "CDK_OUTDIR": str(tmp_path),
    }
    result = subprocess.run([sys.executable, "app.py"], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert "config key 'network.nat_gateways'" in result.stderr and "Traceback" not in result.stderr

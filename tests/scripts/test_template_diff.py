"""scripts.template_diff: added, removed, changed and asset-hash-only resources, metadata ignored."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from scripts.template_diff import diff

HASH_A = "a" * 64
HASH_B = "b" * 64


def _write(directory: Path, stack: str, resources: Mapping[str, object]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{stack}.template.json").write_text(json.dumps({"Resources": resources}), encoding="utf-8")
    return directory


def test_each_kind_of_difference_is_named(tmp_path: Path) -> None:
    before = _write(
        tmp_path / "before",
        "s",
        {
            "Kept": {
                "Type": "AWS::S3::Bucket",
                "Properties": {"A": 1},
                "Metadata": {"aws:cdk:path": "s/Old"},
            },
            "Gone": {"Type": "AWS::SQS::Queue"},
            "Code": {"Type": "AWS::Lambda::Function", "Properties": {"Code": {"S3Key": f"{HASH_A}.zip"}}},
            "Edited": {"Type": "AWS::KMS::Key", "Properties": {"EnableKeyRotation": False, "Same": 1}},
            "CDKMetadata": {"Type": "AWS::CDK::Metadata", "Properties": {"Analytics": "x"}},
        },
    )
    after = _write(
        tmp_path / "after",
        "s",
        {
            "Kept": {
                "Type": "AWS::S3::Bucket",
                "Properties": {"A": 1},
                "Metadata": {"aws:cdk:path": "s/New"},
            },
            "New": {"Type": "AWS::SNS::Topic"},
            "Code": {"Type": "AWS::Lambda::Function", "Properties": {"Code": {"S3Key": f"{HASH_B}.zip"}}},
            "Edited": {"Type": "AWS::KMS::Key", "Properties": {"EnableKeyRotation": True, "Same": 1}},
        },
    )
    assert diff(before, after) == [
        "s: +1 -1 ~1 changed, 1 asset hashes only",
        "  + New AWS::SNS::Topic",
        "  - Gone AWS::SQS::Queue",
        "  ~ Edited AWS::KMS::Key: Properties.EnableKeyRotation",
        "  # Code AWS::Lambda::Function: asset hash",
    ]


def test_identical_stacks_read_unchanged(tmp_path: Path) -> None:
    resources = {"Kept": {"Type": "AWS::S3::Bucket"}}
    assert diff(_write(tmp_path / "a", "s", resources), _write(tmp_path / "b", "s", resources)) == [
        "s: unchanged (1 resources)"
    ]

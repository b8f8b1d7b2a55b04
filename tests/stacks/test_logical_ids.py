"""Stateful resources keep their logical ids, so an existing deployment updates them in place.

CloudFormation replaces a resource whose logical id changes: it creates a new one under the new id and
deletes the old (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/using-cfn-updating-stacks.html,
"update behaviors": a changed logical id is a new resource). For a database, bucket, table, user pool,
file system, key or secret that means an empty replacement and lost data (or, with RETAIN, an orphan).
`stateful_ids.json` lists the logical id of every such resource in the dev and prod assemblies. A refactor
that moves one into a construct must keep its id (a wrapper with the old id whose inner L2 is called
`Default` does: CDK drops `Default` path components from logical ids). Adding a stateful resource is
fine (run `python -m tests.stacks.test_logical_ids --write` and review the diff); removing or renaming
one fails here.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import pytest

SNAPSHOT = Path(__file__).with_name("stateful_ids.json")

# Resource types that hold data or identity: replacing one loses it (or breaks every reference to it).
STATEFUL_TYPES = frozenset(
    {
        "AWS::RDS::DBInstance",
        "AWS::RDS::DBCluster",
        "AWS::S3::Bucket",
        "AWS::S3Vectors::VectorBucket",
        "AWS::S3Vectors::Index",
        "AWS::DynamoDB::Table",
        "AWS::Cognito::UserPool",
        "AWS::EFS::FileSystem",
        "AWS::KMS::Key",
        "AWS::SecretsManager::Secret",
        "AWS::ElastiCache::ReplicationGroup",
        "AWS::BedrockAgentCore::Memory",
        "AWS::Bedrock::KnowledgeBase",
        "AWS::Bedrock::DataSource",
        "AWS::Bedrock::Guardrail",
        "AWS::SQS::Queue",
        "AWS::Logs::LogGroup",
        # Not data, but identity others hold: a replaced distribution gets a new domain, which is the
        # chat's URL in Cognito's callback list and Langfuse's public URL.
        "AWS::CloudFront::Distribution",
    }
)


def stateful_ids(assembly: Path) -> dict[str, dict[str, str]]:
    """Stack name -> {logical id: resource type} for every stateful resource in a synthesized assembly."""
    found: dict[str, dict[str, str]] = {}
    for template in sorted(assembly.glob("*.template.json")):
        resources: dict[str, Any] = json.loads(template.read_text(encoding="utf-8")).get("Resources", {})
        stack = template.name.removesuffix(".template.json")
        found[stack] = {
            logical_id: body["Type"]
            for logical_id, body in sorted(resources.items())
            if body.get("Type") in STATEFUL_TYPES
        }
    return found


def _expected(profile: str) -> dict[str, dict[str, str]]:
    snapshot: dict[str, dict[str, dict[str, str]]] = json.loads(SNAPSHOT.read_text(encoding="utf-8"))
    return snapshot[profile]


def _missing(expected: dict[str, dict[str, str]], actual: dict[str, dict[str, str]]) -> list[str]:
    """Every pinned (stack, logical id, type) that the assembly no longer has, or has with another type."""
    return [
        f"{stack}/{logical_id} ({kind})"
        for stack, resources in expected.items()
        for logical_id, kind in resources.items()
        if actual.get(stack, {}).get(logical_id) != kind
    ]


@pytest.mark.parametrize("profile", ["dev", "prod"])
def test_stateful_resources_keep_their_logical_ids(profile: str, request: pytest.FixtureRequest) -> None:
    assembly: Path = request.getfixturevalue(f"{profile}_assembly")
    missing = _missing(_expected(profile), stateful_ids(assembly))
    assert not missing, (
        f"{profile}: these stateful resources would be REPLACED on update (logical id gone or changed): "
        + ", ".join(missing)
    )


def test_the_snapshot_covers_every_stack_and_each_kind_of_data() -> None:
    """The pin is not vacuous: it names the databases, buckets, keys, secrets, table and pool."""
    for profile in ("dev", "prod"):
        kinds = {kind for resources in _expected(profile).values() for kind in resources.values()}
        assert {
            "AWS::S3::Bucket",
            "AWS::KMS::Key",
            "AWS::SecretsManager::Secret",
            "AWS::DynamoDB::Table",
            "AWS::Cognito::UserPool",
            "AWS::EFS::FileSystem",
            "AWS::BedrockAgentCore::Memory",
        } <= kinds
        assert {"AWS::RDS::DBInstance", "AWS::RDS::DBCluster"} & kinds


def test_a_renamed_resource_is_reported() -> None:
    expected = {"aaf-x": {"DatabaseB1C2D3": "AWS::RDS::DBInstance", "Key1": "AWS::KMS::Key"}}
    actual = {"aaf-x": {"DatabaseNewABCD": "AWS::RDS::DBInstance", "Key1": "AWS::KMS::Key"}}
    assert _missing(expected, actual) == ["aaf-x/DatabaseB1C2D3 (AWS::RDS::DBInstance)"]
    assert _missing(expected, expected) == []
    assert _missing(expected, {"aaf-x": {"DatabaseB1C2D3": "AWS::RDS::DBCluster", "Key1": "AWS::KMS::Key"}})


def main(argv: list[str] | None = None) -> int:
    """Rewrite the snapshot from a fresh synthesis of both profiles (review the diff before committing)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write", action="store_true", help="write stateful_ids.json")
    parser.add_argument("--outdir", type=Path, default=Path("build/logical-ids"))
    args = parser.parse_args(argv)
    from tests.conftest import synth_app
    from tests.factories import test_config

    snapshot = {}
    for profile in ("dev", "prod"):
        outdir = args.outdir / profile
        outdir.mkdir(parents=True, exist_ok=True)
        synth_app(test_config(profile), outdir)
        snapshot[profile] = stateful_ids(outdir)
    text = json.dumps(snapshot, indent=2, sort_keys=True) + "\n"
    if args.write:
        SNAPSHOT.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Summarize how two synthesized assemblies differ, resource by resource (for refactor reviews).

`python -m scripts.template_diff BEFORE_DIR AFTER_DIR` prints, per stack, the resources added, removed and
changed (by logical id), and for a changed one the top-level properties that differ. Asset locations
(S3 keys and image tags, which are content hashes) are reported apart from real changes, so a refactor
that only repackages code reads as "asset hashes only". Exit 0 always: this is a report, not a gate.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

# A 64-hex content hash as CDK writes it into asset keys and image tags.
ASSET_HASH = re.compile(r"[0-9a-f]{64}")


# Construct-path metadata (`aws:cdk:path`, nag acknowledgements) moves with every refactor and does not
# reach the deployed resource; CDK's own version-reporting resource is not ours either.
IGNORED_SECTIONS = frozenset({"Metadata"})
IGNORED_TYPES = frozenset({"AWS::CDK::Metadata"})


def _templates(assembly: Path) -> dict[str, dict[str, Any]]:
    stacks: dict[str, dict[str, Any]] = {}
    for path in sorted(assembly.glob("*.template.json")):
        resources = json.loads(path.read_text(encoding="utf-8")).get("Resources", {})
        stacks[path.name.removesuffix(".template.json")] = {
            logical_id: {key: value for key, value in body.items() if key not in IGNORED_SECTIONS}
            for logical_id, body in resources.items()
            if body.get("Type") not in IGNORED_TYPES
        }
    return stacks


def _without_hashes(value: Any) -> Any:
    return json.loads(ASSET_HASH.sub("<asset>", json.dumps(value, sort_keys=True)))


def _changed_properties(before: Mapping[str, Any], after: Mapping[str, Any]) -> tuple[list[str], bool]:
    """Top-level keys (Properties.* and the resource's other attributes) that differ; and whether every
    difference is an asset hash."""
    keys: list[str] = []
    sections = sorted(set(before) | set(after))
    for section in sections:
        old, new = before.get(section), after.get(section)
        if section == "Properties" and isinstance(old, dict) and isinstance(new, dict):
            keys += [
                f"Properties.{name}" for name in sorted(set(old) | set(new)) if old.get(name) != new.get(name)
            ]
        elif old != new:
            keys.append(section)
    hashes_only = _without_hashes(dict(before)) == _without_hashes(dict(after))
    return keys, hashes_only


def diff(before_dir: Path, after_dir: Path) -> list[str]:
    before, after = _templates(before_dir), _templates(after_dir)
    lines: list[str] = []
    for stack in sorted(set(before) | set(after)):
        old, new = before.get(stack, {}), after.get(stack, {})
        added = sorted(set(new) - set(old))
        removed = sorted(set(old) - set(new))
        changed: list[tuple[str, list[str]]] = []
        hashes: list[tuple[str, list[str]]] = []
        for logical_id in sorted(set(old) & set(new)):
            if old[logical_id] == new[logical_id]:
                continue
            keys, hashes_only = _changed_properties(old[logical_id], new[logical_id])
            (hashes if hashes_only else changed).append((logical_id, keys))
        if not (added or removed or changed or hashes):
            lines.append(f"{stack}: unchanged ({len(new)} resources)")
            continue
        lines.append(
            f"{stack}: +{len(added)} -{len(removed)} ~{len(changed)} changed, {len(hashes)} asset hashes only"
        )
        lines += [f"  + {rid} {new[rid]['Type']}" for rid in added]
        lines += [f"  - {rid} {old[rid]['Type']}" for rid in removed]
        lines += [f"  ~ {rid} {old[rid]['Type']}: {', '.join(keys)}" for rid, keys in changed]
        lines += [f"  # {rid} {old[rid]['Type']}: asset hash" for rid, _ in hashes]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    args = parser.parse_args(argv)
    for directory in (args.before, args.after):
        if not any(directory.glob("*.template.json")):
            parser.error(f"{directory}: no *.template.json (synthesize into it first)")
    sys.stdout.write("\n".join(diff(args.before, args.after)) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

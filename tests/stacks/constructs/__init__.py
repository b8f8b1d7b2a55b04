"""Tests of the shared building blocks (stacks/constructs/): each synthesizes one small stack.

`synth_blocks` builds a tiny app with the nag packs on, runs `build(stack)` and returns the template
and the validation report, so a test can check that every acknowledgement a block made matched a
finding that occurred where it was made (`unused_acknowledgements`) and that no finding stayed open.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_kms as kms
from aws_cdk.assertions import Template

from stacks.compliance import acknowledge_all, enable_compliance_checks
from stacks.constructs import Acknowledgement, BuildingBlock

ACCOUNT_REGION = cdk.Environment(account="123456789012", region="us-east-1")


@dataclass(frozen=True)
class Synthesized:
    template: Template
    report: dict[str, Any]
    outdir: Path

    def resources(self, resource_type: str) -> dict[str, Any]:
        return dict(self.template.find_resources(resource_type))

    def only(self, resource_type: str) -> dict[str, Any]:
        found = self.resources(resource_type)
        assert len(found) == 1, f"expected one {resource_type}, found {sorted(found)}"
        return dict(next(iter(found.values()))["Properties"])

    def suppressed(self) -> set[tuple[str, str]]:
        """(acknowledged-at path, finding) of every finding an acknowledgement suppressed."""
        return {
            (item.get("acknowledgedAt", ""), item["acknowledgedId"].split("::", 1)[1])
            for plugin in self.report["pluginReports"]
            for item in plugin["suppressedViolations"]
        }

    def open_findings(self) -> list[str]:
        return [
            f"{violation['ruleName']} at {construct['constructPath']}"
            for plugin in self.report["pluginReports"]
            for violation in plugin["violations"]
            if violation.get("severity") == "error"
            for construct in violation["violatingConstructs"]
        ]

    def suppressed_reasons(self) -> dict[tuple[str, str], str]:
        """(acknowledged-at path, finding) -> the reason the compliance report shows for it."""
        return {
            (item.get("acknowledgedAt", ""), item["acknowledgedId"].split("::", 1)[1]): item["reason"]
            for plugin in self.report["pluginReports"]
            for item in plugin["suppressedViolations"]
        }

    def unused(self, blocks: Iterable[BuildingBlock]) -> list[Acknowledgement]:
        """The acknowledgements of `blocks` that suppressed nothing."""
        used = self.suppressed()
        return [a for block in blocks for a in block.acknowledgements if (a.path, a.finding) not in used]


def base_stack(app: cdk.App, name: str = "blocks", env: cdk.Environment | None = None) -> cdk.Stack:
    return cdk.Stack(app, name, env=env)


def small_vpc(stack: cdk.Stack) -> ec2.Vpc:
    """Two AZs, isolated `services` and `data` subnets as the network stack names them (not under test:
    its own findings are acknowledged here)."""
    vpc = ec2.Vpc(
        stack,
        "Vpc",
        max_azs=2,
        nat_gateways=0,
        subnet_configuration=[
            ec2.SubnetConfiguration(name="services", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED),
            ec2.SubnetConfiguration(name="data", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED),
        ],
    )
    reason = "A stand-in VPC for the building-block tests; the real one (stacks/network.py) has flow logs."
    acknowledge_all(vpc, {"AwsSolutions-VPC7": reason, "NIST.800.53.R5-VPCFlowLogsEnabled": reason})
    return vpc


def cdk_logical_id(*path: str) -> str:
    """The logical id CDK gives the construct path `path` below a stack (core/lib/private/uniqueid.ts:
    `Default` components are dropped, `Resource` only from the readable part, md5 of the path)."""
    components = [c for c in path if c != "Default"]
    if len(components) == 1:
        return re.sub(r"[^A-Za-z0-9]", "", components[0])
    digest = hashlib.md5("/".join(components).encode(), usedforsecurity=False).hexdigest()[:8].upper()
    deduplicated: list[str] = []
    for component in components:  # removeDupes: skip a component the previous one ends with
        if not deduplicated or not deduplicated[-1].endswith(component):
            deduplicated.append(component)
    readable = [c for c in deduplicated if c != "Resource"]
    return "".join(re.sub(r"[^A-Za-z0-9]", "", c) for c in readable) + digest


def key(stack: cdk.Stack) -> kms.Key:
    return kms.Key(stack, "Key", enable_key_rotation=True, removal_policy=cdk.RemovalPolicy.DESTROY)


def synth_blocks(
    outdir: Path, build: Callable[[cdk.Stack], None], *, env: cdk.Environment | None = None
) -> Synthesized:
    """A tiny app: one stack, `build(stack)` adds the blocks under test; nag packs on."""
    app = cdk.App(outdir=str(outdir))
    stack = base_stack(app, env=env)
    build(stack)
    enable_compliance_checks(app)
    app.synth()
    report = json.loads((outdir / "validation-report.json").read_text(encoding="utf-8"))
    return Synthesized(Template.from_stack(stack), report, outdir)


def only_block_findings(synthesized: Synthesized, prefix: str) -> list[str]:
    """Open findings on constructs whose path starts with `blocks/<prefix>`."""
    return [f for f in synthesized.open_findings() if f" at blocks/{prefix}" in f]


def acknowledgement_table(blocks: Iterable[BuildingBlock]) -> dict[str, dict[str, str]]:
    """What `blocks` acknowledged: {construct path: {finding: reason}} (compare with `acknowledgements.py`)."""
    table: dict[str, dict[str, str]] = {}
    for block in blocks:
        for item in block.acknowledgements:
            assert item.finding not in table.get(item.path, {}), (
                f"{item.finding} acknowledged twice at {item.path}"
            )
            table.setdefault(item.path, {})[item.finding] = item.reason
    return table


def assert_acknowledged_as_pinned(
    synthesized: Synthesized, blocks: Iterable[BuildingBlock], expected: dict[str, dict[str, str]]
) -> None:
    """`blocks` acknowledged exactly `expected` (finding ids and reasons), each acknowledgement suppressed
    a finding that occurred where it was made, the compliance report shows our reason for it, and no
    finding on the blocks' constructs stayed open."""
    blocks = list(blocks)
    assert acknowledgement_table(blocks) == expected
    assert synthesized.unused(blocks) == []
    reported = synthesized.suppressed_reasons()
    for path, findings in expected.items():
        for finding, reason in findings.items():
            assert reported[(path, finding)] == reason, (path, finding)
    # A block's companions are named after it (`<id>Logs`, `<id>Role`): a path prefix covers them too.
    roots = {block.node.path for block in blocks} | set(expected)
    assert [f for f in synthesized.open_findings() if any(f" at {root}" in f for root in roots)] == []

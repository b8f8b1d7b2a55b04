"""Summarise a synthesized cloud assembly and enforce the gates: nag findings and cfn-lint errors.

Usage: python -m scripts.synth_summary cdk.out
Exit code 1 when any nag finding is unacknowledged or any template has a cfn-lint error.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import dataclass
from pathlib import Path

from cfnlint.api import ManualArgs, lint

from cost.report import idle_cost_summary
from stacks.compliance import read_validation_report

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class StackSummary:
    name: str
    template: Path
    resources: int
    lint_errors: tuple[str, ...]
    lint_warnings: int


def stack_templates(outdir: Path) -> dict[str, Path]:
    """Stack name -> template path, from the assembly manifest."""
    manifest = json.loads((outdir / "manifest.json").read_text(encoding="utf-8"))
    templates = {}
    for name, artifact in manifest["artifacts"].items():
        if artifact["type"] == "aws:cloudformation:stack":
            templates[name] = outdir / artifact["properties"]["templateFile"]
    return dict(sorted(templates.items()))


DEFAULT_LINT_REGIONS = ("us-east-1", "us-west-2")


def lint_template(path: Path, regions: tuple[str, ...] = DEFAULT_LINT_REGIONS) -> tuple[tuple[str, ...], int]:
    """cfn-lint one template against the given regions: (error lines, warning count)."""
    matches = lint(path.read_text(encoding="utf-8"), config=ManualArgs(regions=list(regions)))
    errors = tuple(
        f"{m.rule.id} {m.message} ({path.name}:{m.linenumber})" for m in matches if m.rule.id.startswith("E")
    )
    warnings = sum(1 for m in matches if m.rule.id.startswith("W"))
    return errors, warnings


def summarise(outdir: Path, regions: tuple[str, ...] = DEFAULT_LINT_REGIONS) -> list[StackSummary]:
    summaries = []
    for name, template in stack_templates(outdir).items():
        resources = len(json.loads(template.read_text(encoding="utf-8")).get("Resources", {}))
        errors, warnings = lint_template(template, regions)
        summaries.append(StackSummary(name, template, resources, errors, warnings))
    return summaries


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("outdir", type=Path, help="the cloud assembly directory (cdk.out)")
    parser.add_argument(
        "--regions", default=",".join(DEFAULT_LINT_REGIONS), help="regions cfn-lint checks against"
    )
    args = parser.parse_args(argv)

    stacks = summarise(args.outdir, tuple(args.regions.split(",")))
    nag = read_validation_report(args.outdir)
    print(f"{'stack':<28} {'resources':>9} {'lint errors':>11} {'lint warnings':>13}")
    for stack in stacks:
        print(f"{stack.name:<28} {stack.resources:>9} {len(stack.lint_errors):>11} {stack.lint_warnings:>13}")
    print(f"{'total (' + str(len(stacks)) + ' templates)':<28} {sum(s.resources for s in stacks):>9}")
    print(
        f"cdk-nag (AwsSolutions + NIST 800-53 R5): {len(nag.unacknowledged)} unacknowledged, "
        f"{nag.acknowledged} acknowledged findings under {nag.rules_acknowledged} acknowledgements"
    )
    failed = False
    for finding in nag.unacknowledged:
        print(f"  UNACKNOWLEDGED {finding}")
        failed = True
    for stack in stacks:
        for error in stack.lint_errors:
            print(f"  CFN-LINT {error}")
            failed = True
    print("gates: FAILED" if failed else "gates: passed")
    print(idle_cost_summary(args.outdir))  # informational (`make cost` for details); never fails the gates
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

"""Generate the permission tables of docs/permissions.md from the recorder data.

    python -m tests.permissions.table --check            # synthesize dev, fail (exit 1) when the doc is stale
    python -m tests.permissions.table --write            # rewrite the generated part of docs/permissions.md
    python -m tests.permissions.table --assembly cdk.out --check   # use an already synthesized assembly

The generated part sits between the BEGIN/END markers; the text around it is written by hand.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from tests.permissions.actions import KMS_RULES
from tests.permissions.checker import Checker, Finding, Report
from tests.permissions.resolver import Assembly
from tests.permissions.run import Run, run_all

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
DOC = REPO_ROOT / "docs" / "permissions.md"
BEGIN = "<!-- BEGIN GENERATED: python -m tests.permissions.table --write -->"
END = "<!-- END GENERATED -->"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _granted(checker: Checker, finding: Finding) -> str:
    if not finding.allowed:
        return f"**MISSING** ({_cell(finding.decision.reason)})"
    return "<br>".join(f"`{g}`" for g in finding.decision.granted_by) or _cell(finding.decision.reason)


def _rows(checker: Checker, report: Report) -> list[str]:
    rows = []
    for finding in report.findings:
        r = finding.requirement
        via = "" if r.why == "call" else f" ({r.why})"
        rows.append(
            f"| `{r.action}`{via} | `{checker.label(r.resource)}` | {_granted(checker, finding)} | [doc]({r.source}) |"
        )
    return rows


def render(checker: Checker, runs: Sequence[Run], platform: Sequence[Report]) -> str:
    out = ["## Runtime components (recorded calls)", ""]
    for run in runs:
        report = run.report
        ops = sorted({f"{c.service}.{c.operation}" for c in run.calls})
        out.append(
            f"### {run.component.name}: `{run.component.code}`, role `{report.role.stack}/{report.role.logical_id}`"
        )
        out.append("")
        out.append(f"Recorded {len(run.calls)} calls ({', '.join(ops) or 'no AWS SDK call'}).")
        out.append("")
        if report.findings:
            out += [
                "| action | resource | granted by | source |",
                "| --- | --- | --- | --- |",
                *_rows(checker, report),
            ]
            out.append("")
        for note in report.notes:
            out.append(f"- Note: {_cell(note)}")
        if report.notes:
            out.append("")
    out += ["## Calls services make with our roles (from the template)", ""]
    for report in platform:
        out.append(f"### {report.component}, role `{report.role.stack}/{report.role.logical_id}`")
        out += [
            "",
            "| action | resource | granted by | source |",
            "| --- | --- | --- | --- |",
            *_rows(checker, report),
            "",
        ]
    out += [
        "## Implied KMS permissions",
        "",
        "| rule | resource type (key property) | call -> KMS actions | kms:ViaService | source |",
        "| --- | --- | --- | --- | --- |",
    ]
    for rule in KMS_RULES:
        calls = (
            "<br>".join(f"{s}.{o} -> {', '.join(a)}" for (s, o), a in rule.operations.items())
            or "(none documented)"
        )
        source = f"[doc]({rule.source})" if rule.source.startswith("https://") else _cell(rule.source)
        out.append(
            f"| {rule.rule_id} | `{rule.resource_type}` (`{rule.key_property}`) | {calls} | `{rule.via_service}.<region>.amazonaws.com` | {source} |"
        )
    out += ["", *_operator_commands()]
    return "\n".join(out).rstrip() + "\n"


def _operator_commands() -> list[str]:
    try:
        module = importlib.import_module("scripts.aws_checks")
    except ImportError:
        return []
    actions = getattr(module, "ACTIONS", None)
    if not isinstance(actions, dict):
        return []
    out = [
        "## Operator commands (scripts/aws_checks `ACTIONS`)",
        "",
        "| command | IAM actions its code calls |",
        "| --- | --- |",
    ]
    out += [
        f"| `make {command}` | {', '.join(f'`{a}`' for a in names)} |" for command, names in actions.items()
    ]
    return [*out, ""]


def generated_block(checker: Checker) -> str:
    runs, platform = run_all(checker)
    return render(checker, runs, platform)


def splice(document: str, block: str) -> str:
    if BEGIN not in document or END not in document:
        raise ValueError(f"{DOC} lacks the generated-block markers")
    head, rest = document.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n{block}{END}{tail}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--assembly", type=Path, help="a synthesized cdk.out (default: synthesize the dev profile)"
    )
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--check", action="store_true")
    mode.add_argument("--write", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    directory = args.assembly
    if directory is None:
        from tests.conftest import synth_app
        from tests.factories import test_config

        directory = Path(tempfile.mkdtemp(prefix="cdk-permissions-"))
        synth_app(test_config("dev"), directory)
    checker = Checker(Assembly.load(directory))
    document = DOC.read_text(encoding="utf-8")
    expected = splice(document, generated_block(checker))
    if args.write:
        DOC.write_text(expected, encoding="utf-8")
        return 0
    if expected != document:
        sys.stderr.write(f"{DOC} is stale: run `python -m tests.permissions.table --write`\n")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

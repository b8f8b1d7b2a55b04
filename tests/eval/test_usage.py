"""Measured tokens and cost per case: the report's `usage`, the console table, usage.md, and the turn
profile `--write-profile` writes for the usage-cost model (cost/usage.py)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from cost.usage import load_profile
from eval.agent import AgentReply, ReplyMetadata, Usage
from eval.report import load_report, summary_lines, usage_markdown, write_reports
from eval.results import CaseResult, Repetition, RunReport, TurnResult, aggregate
from eval.scores import Score
from scripts.eval_pipeline import PipelineStack
from tests.eval.test_pipeline import cli


def _turn(index: int, tokens_in: int, tokens_out: int, cost: float | None) -> TurnResult:
    reply = AgentReply(
        answer="ok",
        metadata=ReplyMetadata(
            model="claude-sonnet", usage=Usage(input_tokens=tokens_in, output_tokens=tokens_out)
        ),
    )
    score = Score(name="cost_usd", value=cost, error=None if cost is not None else "no price known")
    return TurnResult(index=index, input="q", reply=reply, scores=[score])


def _report() -> RunReport:
    priced = CaseResult(
        case_id="priced",
        category="knowledge",
        turns=2,
        repetitions=[
            Repetition(
                number=1, session_id="a", turns=[_turn(0, 1000, 50, 0.004), _turn(1, 2000, 70, 0.007)]
            ),
            Repetition(number=2, session_id="b", turns=[_turn(0, 1200, 60, 0.005), _turn(1, 1800, 20, None)]),
        ],
    )
    unpriced = CaseResult(
        case_id="unpriced",
        category="knowledge",
        turns=1,
        repetitions=[Repetition(number=1, session_id="c", turns=[_turn(0, 300, 10, None)])],
    )
    failed = CaseResult(
        case_id="failed",
        category="knowledge",
        turns=1,
        repetitions=[
            Repetition(number=1, session_id="d", turns=[TurnResult(index=0, input="q", error="boom")])
        ],
    )
    cases = [priced, unpriced, failed]
    return RunReport(run_name="r", started_at="t", target="local", cases=cases, aggregates=aggregate(cases))


def test_case_usage_sums_tokens_and_priced_turns_only() -> None:
    priced, unpriced, failed = (case.usage for case in _report().cases)
    assert (priced.answered_turns, priced.input_tokens, priced.output_tokens) == (4, 6000, 200)
    assert priced.cost_usd == pytest.approx(0.016) and priced.unpriced_turns == 1
    assert priced.input_tokens_per_repetition == 3000
    assert priced.cost_usd_per_repetition == pytest.approx(0.008)
    assert unpriced.cost_usd is None and unpriced.unpriced_turns == 1  # missing, not $0
    assert (failed.answered_turns, failed.input_tokens, failed.cost_usd) == (0, 0, None)


def test_console_markdown_and_json_report_the_usage(tmp_path: Path) -> None:
    report = _report()
    console = "\n".join(summary_lines(report))
    assert "priced                               4    3,000     100  $0.0080 (+1 unpriced)" in console
    assert "unpriced                             1      300      10  n/a" in console
    markdown = usage_markdown(report)
    assert "| priced | 4 | 3,000 | 100 | $0.0080 (+1 unpriced) | $0.0160 |" in markdown
    json_path, _html = write_reports(report, tmp_path)
    assert (tmp_path / "usage.md").read_text(encoding="utf-8") == markdown
    document = json.loads(json_path.read_text(encoding="utf-8"))
    assert document["cases"][0]["usage"]["input_tokens"] == 6000
    assert load_report(json_path).cases[0].usage.cost_usd == pytest.approx(0.016)  # reads back


@pytest.mark.slow
def test_cli_reports_tokens_and_cost_per_case_and_writes_the_turn_profile(
    pipeline: PipelineStack, tmp_path: Path
) -> None:
    profile_path = tmp_path / "profile" / "golden.json"
    run = cli(pipeline, tmp_path, "--no-judge", "--write-profile", str(profile_path))
    assert run.returncode == 0, run.stderr
    report = load_report(tmp_path / "report" / "report.json")
    by_id = {case.case_id: case.usage for case in report.cases}
    # the scripted model reports usage on every model call; the blocked card number makes no model call
    assert by_id["router-factory-reset"].input_tokens > 0 and by_id["router-factory-reset"].output_tokens > 0
    assert by_id["router-factory-reset"].cost_usd and by_id["router-factory-reset"].cost_usd > 0
    assert (by_id["guardrail-card-number"].input_tokens, by_id["guardrail-card-number"].output_tokens) == (
        0,
        0,
    )
    assert "usage (tokens, cost per run)" in run.stdout and "router-factory-reset" in run.stdout
    assert "| ticket-resolve | 2 |" in (tmp_path / "report" / "usage.md").read_text(encoding="utf-8")
    profile = load_profile(profile_path)
    assert profile.measured_from is not None and profile.measured_from.turns == 4  # 1 + 1 + 2 turns
    expected_in = sum(u.input_tokens for u in by_id.values()) / 4
    assert profile.input_tokens_per_turn == pytest.approx(expected_in, abs=0.01)
    assert profile.basis_of("runtime_vcpu_seconds_per_turn").startswith("measured upper bound")


def test_the_html_report_shows_tokens_and_cost_per_case() -> None:
    from eval.report import render_html

    html = render_html(_report())
    rows = {case_id: row for case_id, row in re.findall(r"<code>([a-z]+)</code>(.*?)</tr>", html, re.S)}
    # priced: 6,000 in / 200 out over two repetitions; cost 0.016 over two = 0.008 per repetition
    assert re.search(r">3000 / 100</td>\s*<td class=\"num\">\$0\.0080</td>", rows["priced"])
    assert re.search(r">300 / 10</td>\s*<td class=\"num\">not priced</td>", rows["unpriced"])

"""Reports: JSON round trip, HTML content, baseline comparison, S3 upload (botocore Stubber), gate checks."""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber

from eval.gate import check, parse_threshold
from eval.report import comparison, load_report, render_html, upload_reports, write_reports
from eval.results import CaseResult, Repetition, RunReport, TurnResult, aggregate
from eval.scores import Score


def report(name: str, correctness: float, *, passed: bool = True, judge_error: bool = False) -> RunReport:
    scores = [
        Score(name="tool_recall", value=1.0, reason="1/1 expected tools called"),
        Score(name="latency_ms", value=250.0, reason="agent-measured"),
        Score(name="correctness", value=correctness, kind="judge", reason="4/5: <b>close</b>"),
    ]
    if judge_error:
        scores.append(
            Score(name="faithfulness", value=None, kind="judge", error="no valid verdict after 3 attempts")
        )
    case = CaseResult(
        case_id="router-factory-reset",
        category="knowledge",
        turns=1,
        repetitions=[
            Repetition(
                number=1,
                session_id="s" * 40,
                turns=[TurnResult(index=0, input="How?", scores=scores)],
                passed=passed,
            )
        ],
    )
    run = RunReport(run_name=name, started_at="2026-11-24T00:00:00+00:00", target="local", cases=[case])
    run.aggregates = aggregate(run.cases)
    return run


def test_json_report_round_trips_and_html_escapes_reasons(tmp_path: Path) -> None:
    json_path, html_path = write_reports(report("run-a", 0.75, judge_error=True), tmp_path)
    loaded = load_report(json_path)
    assert loaded.cases[0].repetitions[0].turns[0].scores[2].reason == "4/5: <b>close</b>"
    html = html_path.read_text(encoding="utf-8")
    assert "4/5: &lt;b&gt;close&lt;/b&gt;" in html
    assert "error: no valid verdict after 3 attempts" in html
    assert html.count("data:image/png;base64,") == 2  # distributions and latency


def test_baseline_comparison_marks_improvements_and_regressions() -> None:
    rows = {row["name"]: row for row in comparison(report("new", 1.0), report("old", 0.5))}
    assert rows["correctness"]["delta"] == pytest.approx(0.5)
    assert rows["correctness"]["better"] is True
    worse = {row["name"]: row for row in comparison(report("new", 0.25), report("old", 0.5))}
    assert worse["correctness"]["better"] is False
    html = render_html(report("new", 1.0), report("old", 0.5))
    assert "Comparison with baseline <code>old</code>" in html
    assert html.count("data:image/png;base64,") == 3


def test_a_file_that_is_not_a_report_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "x.json"
    bad.write_text('{"hello": 1}', encoding="utf-8")
    with pytest.raises(ValueError, match=r"is not an evaluation report\.json"):
        load_report(bad)


def test_reports_upload_to_s3_under_mode_and_run_name(tmp_path: Path) -> None:
    run = report("online-20261124", 1.0)
    run.mode = "online"
    paths = write_reports(run, tmp_path)
    client = boto3.client("s3", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y")
    with Stubber(client) as stub:
        for path, content_type in zip(paths, ("application/json", "text/html; charset=utf-8"), strict=True):
            stub.add_response(
                "put_object",
                {"ETag": '"1"'},
                {
                    "Bucket": "reports",
                    "Key": f"online/online-20261124/{path.name}",
                    "Body": path.read_bytes(),
                    "ContentType": content_type,
                },
            )
        keys = upload_reports("reports", run, paths, client=client)
        stub.assert_no_pending_responses()
    assert keys == ["online/online-20261124/report.json", "online/online-20261124/report.html"]


def test_gate_thresholds() -> None:
    aggregates = aggregate(report("r", 0.75).cases)
    under = [parse_threshold("correctness=0.8", "under"), parse_threshold("tool_recall=1", "under")]
    assert check(aggregates, under) == ["correctness >= 0.8: got 0.75"]
    assert check(aggregates, [parse_threshold("latency_p95_ms=200", "over")]) == [
        "latency_p95_ms <= 200: got 250"
    ]
    assert check(aggregates, [parse_threshold("faithfulness=0.5", "under")]) == [
        "faithfulness >= 0.5: the run produced no value for faithfulness"
    ]
    with pytest.raises(ValueError, match="expects metric=value"):
        parse_threshold("correctness", "under")

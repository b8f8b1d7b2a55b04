"""Reports: JSON round trip, HTML content, baseline comparison, S3 upload (botocore Stubber), gate checks."""

from __future__ import annotations

import re
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


# --- the case table: failing cases first, filterable in the single self-contained file -------------

ROW = re.compile(r'<tr class="case" data-status="(pass|fail)">\s*<td><code>([^<]+)</code>')


def cases_report(outcomes: dict[str, bool]) -> RunReport:
    """One case per (id, passed), in this order, each with one repetition."""
    cases = [
        CaseResult(
            case_id=case_id,
            category="tickets" if case_id.endswith("ticket") else "knowledge",
            turns=1,
            repetitions=[
                Repetition(
                    number=1,
                    session_id="s" * 40,
                    turns=[
                        TurnResult(
                            index=0,
                            input="q",
                            scores=[Score(name="tool_recall", value=1.0 if passed else 0.0, reason="r")],
                        )
                    ],
                    passed=passed,
                )
            ],
        )
        for case_id, passed in outcomes.items()
    ]
    run = RunReport(run_name="r", started_at="2026-11-24T00:00:00+00:00", target="local", cases=cases)
    run.aggregates = aggregate(run.cases)
    return run


OUTCOMES = {"a-reset": True, "b-ticket": False, "c-wifi": True, "d-pdf": False, "e-memory": True}


def test_failing_cases_are_listed_first_in_dataset_order() -> None:
    rows = ROW.findall(render_html(cases_report(OUTCOMES)))
    assert rows == [
        ("fail", "b-ticket"),
        ("fail", "d-pdf"),
        ("pass", "a-reset"),
        ("pass", "c-wifi"),
        ("pass", "e-memory"),
    ]


def test_a_flaky_case_counts_as_failing() -> None:
    run = cases_report({"a": True, "b": True})
    run.cases[1].repetitions.append(
        run.cases[1].repetitions[0].model_copy(update={"number": 2, "passed": False})
    )
    assert [case_id for _, case_id in ROW.findall(render_html(run))] == ["b", "a"]


def test_the_case_filter_is_inline_with_counts_and_no_external_resource() -> None:
    html = render_html(cases_report(OUTCOMES))
    assert '<form class="filter" id="case-filter"' in html
    for value, label in (("all", "all (5)"), ("fail", "failing (2)"), ("pass", "passing (3)")):
        assert f'<input type="radio" name="status" value="{value}"' in html and label in html
    assert '<input type="search" name="q"' in html
    assert "2 of 5 case(s) failing; failing cases are listed first." in html
    assert html.count("<script>") == 1 and 'getElementById("case-filter")' in html
    # one self-contained file: no stylesheet, script or image fetched from anywhere
    assert not re.search(r'<(link|script)[^>]+(href|src)=|src="(https?:)?//', html)


@pytest.mark.slow
def test_the_case_filter_works_in_a_browser(tmp_path: Path, chromium: str) -> None:
    from playwright.sync_api import sync_playwright

    _, html_path = write_reports(cases_report(OUTCOMES), tmp_path)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.goto(html_path.resolve().as_uri())

            def visible() -> list[str]:
                rows = page.locator("#cases tr.case:visible td:first-child code")
                return [text.strip() for text in rows.all_inner_texts()]

            assert visible() == ["b-ticket", "d-pdf", "a-reset", "c-wifi", "e-memory"]
            page.get_by_label("failing (2)").check()
            assert visible() == ["b-ticket", "d-pdf"]
            assert page.locator("#case-count").inner_text() == "2 shown"
            page.get_by_label("all (5)").check()
            page.get_by_label("filter cases").fill("ticket")
            assert visible() == ["b-ticket"]
            page.get_by_label("passing (3)").check()
            assert visible() == []
        finally:
            browser.close()

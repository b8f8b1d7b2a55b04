"""The runner and the CLI against the real local agent (scripted golden model), and the CI gate's exit codes."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from eval.agent import ClientTarget
from eval.dataset import GoldenCase
from eval.evaluators import price_table_from_config
from eval.judge import Judge
from eval.report import load_report
from eval.runner import CaseScorer, RunSettings, run_local
from local_stack.processes import free_port
from scripts.eval_pipeline import PipelineStack
from tests.eval.conftest import PUBLIC_KEY, SECRET_KEY, LangfuseStandIn

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
CLI_CASES = "router-factory-reset,guardrail-card-number,ticket-resolve"


def cli(
    pipeline: PipelineStack,
    tmp_path: Path,
    *args: str,
    agent_url: str | None = None,
    langfuse: LangfuseStandIn | None = None,
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LANGFUSE_")}
    env.update(
        LLM_GATEWAY_URL=pipeline.gateway_url, LLM_GATEWAY_KEY=pipeline.gateway_key, PYTHONPATH=str(REPO)
    )
    if langfuse is not None:
        env.update(
            LANGFUSE_HOST=langfuse.recorder.url,
            LANGFUSE_PUBLIC_KEY=PUBLIC_KEY,
            LANGFUSE_SECRET_KEY=SECRET_KEY,
        )
    argv = [
        sys.executable,
        "-m",
        "eval",
        "run",
        "--target",
        "local",
        "--agent-url",
        agent_url or pipeline.agent_url,
        "--cases",
        CLI_CASES,
        "--no-progress",
        "--report-dir",
        str(tmp_path / "report"),
        *args,
    ]
    return subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False)


def test_runner_repeats_cases_k_times_in_fresh_sessions_and_passes_multi_turn_flows(
    pipeline: PipelineStack, golden_cases: list[GoldenCase]
) -> None:
    cases = [
        c for c in golden_cases if c.id in ("ticket-flow", "memory-device-reset", "guardrail-investment")
    ]
    target = ClientTarget.local(pipeline.agent_url)
    judge = Judge(pipeline.gateway_url, pipeline.gateway_key, "claude-haiku")
    scorer = CaseScorer(judge=judge, prices=price_table_from_config())
    done: list[str] = []
    try:
        results = run_local(
            cases,
            target,
            scorer,
            RunSettings(concurrency=2, k=2),
            on_case_done=lambda r: done.append(r.case_id),
        )
    finally:
        target.close()
        judge.close()
    assert sorted(done) == sorted(c.id for c in cases)
    for result in results:
        assert len(result.repetitions) == 2
        assert result.repetitions[0].session_id != result.repetitions[1].session_id
        assert result.pass_hat_k, result.repetitions[0].failures
    by_id = {r.case_id: r for r in results}
    flow = by_id["ticket-flow"]
    create, status = flow.repetitions[0].turns[1], flow.repetitions[0].turns[2]
    assert create.score("tool_arguments").value == 1.0  # type: ignore[union-attr]
    ticket_id = status.reply.metadata.tools[0].arguments["ticket_id"]  # type: ignore[union-attr]
    with sqlite3.connect(pipeline.work_dir / "tickets.db") as db:
        (record,) = db.execute("SELECT record FROM tickets WHERE ticket_id = ?", (ticket_id,)).fetchone()
    assert json.loads(record)["email"] == "jane.doe@example.com"
    blocked = by_id["guardrail-investment"].repetitions[0].turns[0]
    assert blocked.score("guardrail_correct").value == 1.0  # type: ignore[union-attr]
    assert not [s for s in blocked.scores if s.kind == "judge"]
    reset = by_id["memory-device-reset"].repetitions[0].turns[1]
    assert reset.passage_source == "metadata"  # the passages the agent's knowledge search returned
    assert reset.score("faithfulness").ok  # type: ignore[union-attr]


def test_cli_writes_the_reports_and_passes_a_met_gate(pipeline: PipelineStack, tmp_path: Path) -> None:
    run = cli(
        pipeline,
        tmp_path,
        "--fail-under",
        "tool_recall=1.0",
        "--fail-under",
        "guardrail_correct=1",
        "--tags",
        "ci,pr-7",
        "--run-name",
        "pr-7",
    )
    assert run.returncode == 0, run.stderr
    assert "gate passed: tool_recall >= 1, guardrail_correct >= 1" in run.stdout
    report = load_report(tmp_path / "report" / "report.json")
    assert (report.run_name, report.tags, [c.case_id for c in report.cases]) == (
        "pr-7",
        ["ci", "pr-7"],
        CLI_CASES.split(","),
    )
    assert report.aggregates["guardrail_correct"] == 1.0
    html = (tmp_path / "report" / "report.html").read_text(encoding="utf-8")
    assert "ticket-resolve" in html and "data:image/png;base64," in html


def test_cli_fails_a_missed_gate_with_exit_1_and_compares_with_the_baseline(
    pipeline: PipelineStack, tmp_path: Path
) -> None:
    first = cli(pipeline, tmp_path / "a", "--run-name", "baseline")
    assert first.returncode == 0, first.stderr
    run = cli(
        pipeline,
        tmp_path,
        "--fail-over",
        "latency_p50_ms=0.001",
        "--baseline",
        str(tmp_path / "a" / "report" / "report.json"),
    )
    assert run.returncode == 1
    assert "GATE FAILED: latency_p50_ms <= 0.001: got" in run.stderr
    assert "Comparison with baseline <code>baseline</code>" in (
        tmp_path / "report" / "report.html"
    ).read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--fail-under", "quality=0.9"), "unknown metric 'quality'"),
        (("--fail-under", "faithfulness=high"), "'high' is not a number"),
        (("--cases", "no-such-case"), "unknown case ids ['no-such-case']"),
        (
            ("--baseline", "/nonexistent/report.json"),
            "baseline report /nonexistent/report.json does not exist",
        ),
    ],
)
def test_cli_usage_errors_exit_2(
    pipeline: PipelineStack, tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    run = cli(pipeline, tmp_path, *args)
    assert run.returncode == 2
    assert message in run.stderr


def test_cli_bad_dataset_exits_2_naming_the_line(pipeline: PipelineStack, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        '{"id": "x1", "category": "knowledge", "turns": [{"input": "hi"}]}\n{"id": "x2"}\n', encoding="utf-8"
    )
    run = cli(pipeline, tmp_path, "--dataset", str(bad))
    assert run.returncode == 2
    assert "bad.jsonl:2: category: Field required" in run.stderr


def test_cli_exits_3_when_the_agent_never_answers(pipeline: PipelineStack, tmp_path: Path) -> None:
    run = cli(pipeline, tmp_path, "--no-judge", "--retries", "1", agent_url=f"http://127.0.0.1:{free_port()}")
    assert run.returncode == 3
    report = load_report(tmp_path / "report" / "report.json")
    assert report.aggregates["error_rate"] == 1.0
    assert "unreachable" in (report.cases[0].repetitions[0].turns[0].error or "")


def test_cli_with_langfuse_runs_an_experiment(
    pipeline: PipelineStack, langfuse: LangfuseStandIn, tmp_path: Path
) -> None:
    run = cli(
        pipeline, tmp_path, "--run-name", "lf-run", "--langfuse-dataset", "golden-cli", langfuse=langfuse
    )
    assert run.returncode == 0, run.stderr
    report = load_report(tmp_path / "report" / "report.json")
    assert report.langfuse is not None and report.langfuse["dataset"] == "golden-cli"
    assert report.langfuse["experiment_id"]
    assert report.langfuse["scores_on_agent_traces"] > 0
    assert {i["datasetName"] for i in langfuse.recorder.dataset_items} >= {"golden-cli"}


def test_online_cli_scores_recent_traces_and_writes_the_report(
    pipeline: PipelineStack, langfuse: LangfuseStandIn, tmp_path: Path
) -> None:
    target = ClientTarget.local(pipeline.agent_url)
    from eval.agent import new_session_id

    target.invoke("How do I factory reset a Mesh M3 node?", new_session_id())
    target.close()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LANGFUSE_")}
    env.update(
        LLM_GATEWAY_URL=pipeline.gateway_url,
        LLM_GATEWAY_KEY=pipeline.gateway_key,
        PYTHONPATH=str(REPO),
        LANGFUSE_HOST=langfuse.recorder.url,
        LANGFUSE_PUBLIC_KEY=PUBLIC_KEY,
        LANGFUSE_SECRET_KEY=SECRET_KEY,
    )
    argv = [
        sys.executable,
        "-m",
        "eval",
        "online",
        "--since-hours",
        "1",
        "--sample",
        "3",
        "--seed",
        "1",
        "--no-progress",
        "--report-dir",
        str(tmp_path),
        "--run-name",
        "online-ci",
        "--fail-under",
        "helpfulness=0.5",
    ]
    run = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 0, run.stderr
    report = load_report(tmp_path / "report.json")
    assert report.mode == "online" and len(report.cases) == 3
    assert all(c.repetitions[0].turns[0].reply is not None for c in report.cases)
    assert report.aggregates["helpfulness"] is not None


def test_online_cli_without_langfuse_is_a_usage_error(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LANGFUSE_")}
    env["PYTHONPATH"] = str(REPO)
    run = subprocess.run(
        [sys.executable, "-m", "eval", "online", "--no-judge", "--report-dir", str(tmp_path)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 2
    assert "set LANGFUSE_HOST" in run.stderr

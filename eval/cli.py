"""`python -m eval`: run the golden dataset (offline), score recent traces (online), validate, sync.

Exit codes: 0 success; 1 the CI gate failed (`--fail-under`/`--fail-over`); 2 bad usage, configuration
or dataset; 3 the run could not produce results (the agent never answered).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from eval.dataset import DatasetError, GoldenCase, load_dataset
from eval.gate import Threshold, check, parse_threshold
from eval.judge import Judge
from eval.results import CaseResult, RunReport, aggregate

logger = logging.getLogger("eval")

EXIT_OK, EXIT_GATE, EXIT_USAGE, EXIT_NO_RESULTS = 0, 1, 2, 3
DEFAULT_DATASET = Path("eval/datasets/golden.jsonl")
DEFAULT_CORPUS = Path("corpus")
PIPELINE_NOTE = "Pipeline mode: {note}. These numbers measure the evaluation pipeline, not model quality."


class UsageError(Exception):
    """Bad arguments or configuration; the message says which setting."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m eval", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the golden dataset against an agent and score it")
    run.add_argument("--target", choices=("local", "agentcore"), default="local")
    run.add_argument(
        "--agent-url", default=os.environ.get("AGENT_URL", "http://127.0.0.1:8080"), help="local target URL"
    )
    run.add_argument("--dataset", type=Path, default=DEFAULT_DATASET)
    run.add_argument(
        "--corpus-dir", type=Path, default=DEFAULT_CORPUS, help="expected documents must exist here"
    )
    run.add_argument("--concurrency", type=int, default=4)
    run.add_argument(
        "--retries", type=int, default=2, help="retries of a failed agent call (transient errors)"
    )
    run.add_argument(
        "--k", type=int, default=None, help="repetitions per case for pass^k (default: evaluation.pass_k)"
    )
    run.add_argument("--cases", default="", help="comma-separated case ids to run (default: all)")
    run.add_argument(
        "--langfuse-dataset", default=None, help="Langfuse dataset name (default: the file's stem)"
    )
    run.add_argument("--no-langfuse", action="store_true", help="do not use Langfuse even when configured")
    run.add_argument(
        "--write-profile",
        type=Path,
        default=None,
        metavar="FILE",
        help="also write the measured turn profile the usage-cost model reads (e.g. cost/profiles/golden.json)",
    )
    _common(run)

    online = sub.add_parser("online", help="score a sample of recent production traces from Langfuse")
    online.add_argument("--since-hours", type=float, default=24.0)
    online.add_argument(
        "--sample", type=int, default=None, help="traces to score (default: evaluation.online_sample_size)"
    )
    online.add_argument(
        "--environment",
        default=os.environ.get("EVAL_ENVIRONMENT") or None,
        help="only traces of this Langfuse environment (default: EVAL_ENVIRONMENT, else all)",
    )
    online.add_argument("--seed", type=int, default=None)
    _common(online)

    validate = sub.add_parser("validate", help="validate a dataset file")
    validate.add_argument("--dataset", type=Path, default=DEFAULT_DATASET)
    validate.add_argument("--corpus-dir", type=Path, default=DEFAULT_CORPUS)

    sync = sub.add_parser("sync", help="create or update the Langfuse dataset from a dataset file")
    sync.add_argument("--dataset", type=Path, default=DEFAULT_DATASET)
    sync.add_argument("--name", default=None)
    return parser


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run-name", default=None)
    parser.add_argument("--tags", default="", help="comma-separated tags")
    parser.add_argument("--report-dir", type=Path, default=None, help="default: eval-reports/<run-name>")
    parser.add_argument("--baseline", type=Path, default=None, help="an earlier report.json to compare with")
    parser.add_argument("--fail-under", action="append", default=[], metavar="METRIC=VALUE")
    parser.add_argument("--fail-over", action="append", default=[], metavar="METRIC=VALUE")
    parser.add_argument("--no-judge", action="store_true", help="code evaluators only")
    parser.add_argument("--judge-retries", type=int, default=2, help="retries of a malformed judge verdict")
    parser.add_argument("--pass-threshold", type=float, default=0.75, help="judge score (0..1) a pass needs")
    parser.add_argument("--no-progress", action="store_true")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        if args.command == "validate":
            return _validate(args)
        if args.command == "sync":
            return _sync(args)
        thresholds = [parse_threshold(s, "under") for s in args.fail_under] + [
            parse_threshold(s, "over") for s in args.fail_over
        ]
        if args.command == "run":
            return _run(args, thresholds)
        return _online(args, thresholds)
    except DatasetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (UsageError, ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE


# --- commands -------------------------------------------------------------------------------------------


def _validate(args: argparse.Namespace) -> int:
    cases = load_dataset(args.dataset, _corpus(args.corpus_dir))
    turns = sum(len(c.turns) for c in cases)
    multi = sum(c.multi_turn for c in cases)
    print(f"{args.dataset}: {len(cases)} valid cases, {turns} turns, {multi} multi-turn")
    return EXIT_OK


def _sync(args: argparse.Namespace) -> int:
    from eval.langfuse_io import make_client, settings_from_env, sync_dataset

    cases = load_dataset(args.dataset)
    settings = settings_from_env()
    if settings is None:
        raise UsageError(
            "sync needs Langfuse: set LANGFUSE_HOST, LANGFUSE_PUBLIC_KEY and LANGFUSE_SECRET_KEY"
        )
    client = make_client(settings)
    name = args.name or args.dataset.stem
    count = sync_dataset(client, name, cases, description=f"synced from {args.dataset}")
    client.flush()
    print(f"synced {count} items into Langfuse dataset {name!r}")
    return EXIT_OK


def _run(args: argparse.Namespace, thresholds: list[Threshold]) -> int:
    from eval.evaluators import price_table_from_config
    from eval.runner import CaseScorer, RunSettings, run_local

    cases = _select(load_dataset(args.dataset, _corpus(args.corpus_dir)), args.cases)
    baseline = _baseline(args.baseline)
    settings = RunSettings(
        concurrency=args.concurrency,
        retries=args.retries,
        k=args.k or _config_value("pass_k", 1),
        pass_threshold=args.pass_threshold,
    )
    run_name = args.run_name or f"{args.dataset.stem}-{datetime.now(UTC):%Y%m%d-%H%M%S}"
    tags = [t.strip() for t in args.tags.split(",") if t.strip()]
    langfuse = None if args.no_langfuse else _langfuse()
    judge = None if args.no_judge else judge_from_env(args.judge_retries)
    target = _target(args)
    report = RunReport(
        run_name=run_name,
        started_at=_now(),
        target=target.name if args.target == "agentcore" else f"local {args.agent_url}",
        dataset=str(args.dataset),
        k=settings.k,
        tags=tags,
        judge_model=judge.model if judge else None,
        pass_threshold=settings.pass_threshold,
    )
    _pipeline_note(report)
    scorer = CaseScorer(judge=judge, prices=price_table_from_config(), pass_threshold=settings.pass_threshold)
    progress = _progress(len(cases), args.no_progress)
    try:
        if langfuse is not None:
            results = _run_with_langfuse(
                args, langfuse, cases, target, scorer, settings, run_name, tags, report, progress
            )
        else:
            report.notes.append(
                "Langfuse is not configured (LANGFUSE_HOST unset): scores are in this report only."
            )
            results = run_local(cases, target, scorer, settings, on_case_done=lambda _r: progress.update(1))
    finally:
        progress.close()
        target.close()
        if judge:
            judge.close()
    return _finish(report, results, args, thresholds, baseline)


def _run_with_langfuse(
    args: argparse.Namespace,
    client: Any,
    cases: list[GoldenCase],
    target: Any,
    scorer: Any,
    settings: Any,
    run_name: str,
    tags: list[str],
    report: RunReport,
    progress: Any,
) -> list[CaseResult]:
    from eval.langfuse_io import run_experiment, sync_dataset

    dataset_name = args.langfuse_dataset or args.dataset.stem
    sync_dataset(client, dataset_name, cases, description=f"synced from {args.dataset}")
    outcome = run_experiment(
        client,
        dataset_name=dataset_name,
        cases=cases,
        target=target,
        scorer=scorer,
        settings=settings,
        run_name=run_name,
        description=f"golden dataset against {report.target}",
        metadata={"target": args.target, "tags": ",".join(tags), "k": str(settings.k)},
        on_case_done=lambda _r: progress.update(1),
    )
    report.langfuse = {
        "dataset": dataset_name,
        "experiment_id": outcome.experiment_id,
        "experiment_url": outcome.experiment_url,
        "scores_on_agent_traces": outcome.scores_sent,
        "traces_not_found": outcome.missing_traces,
    }
    if outcome.missing_traces:
        report.notes.append(
            f"{len(outcome.missing_traces)} agent trace(s) were not readable in Langfuse in time."
        )
    return outcome.results


def _online(args: argparse.Namespace, thresholds: list[Threshold]) -> int:
    from eval.online import run_online

    client = _langfuse()
    if client is None:
        raise UsageError("online evaluation reads traces from Langfuse: set LANGFUSE_HOST and its keys")
    judge = None if args.no_judge else judge_from_env(args.judge_retries)
    baseline = _baseline(args.baseline)
    run_name = args.run_name or f"online-{datetime.now(UTC):%Y%m%d-%H%M%S}"
    sample = args.sample or _config_value("online_sample_size", 50)
    report = RunReport(
        mode="online",
        run_name=run_name,
        started_at=_now(),
        target="langfuse traces",
        tags=[t for t in args.tags.split(",") if t],
        judge_model=judge.model if judge else None,
        pass_threshold=args.pass_threshold,
    )
    progress = _progress(sample, args.no_progress)
    try:
        results, notes = run_online(
            client,
            judge,
            since_hours=args.since_hours,
            sample_size=sample,
            run_name=run_name,
            pass_threshold=args.pass_threshold,
            seed=args.seed,
            environment=args.environment,
            on_trace_done=lambda _r: progress.update(1),
        )
    finally:
        progress.close()
        if judge:
            judge.close()
    report.notes.extend(notes)
    if not results:
        report.notes.append(f"no agent traces in the last {args.since_hours:g} hours")
    return _finish(report, results, args, thresholds, baseline, allow_empty=True)


def _finish(
    report: RunReport,
    results: list[CaseResult],
    args: argparse.Namespace,
    thresholds: list[Threshold],
    baseline: RunReport | None,
    allow_empty: bool = False,
) -> int:
    from eval.report import summary_lines, upload_reports, write_reports

    report.cases = results
    report.aggregates = aggregate(results)
    report.finished_at = _now()
    directory = args.report_dir or Path("eval-reports") / report.run_name
    json_path, html_path = write_reports(report, directory, baseline)
    for line in summary_lines(report):
        print(line)
    # a file:// URL opens from any terminal or browser (`open` is macOS-only, `xdg-open` Linux-only)
    print(f"report: {html_path.resolve().as_uri()} (and {json_path}, {directory / 'usage.md'})")
    profile_path: Path | None = getattr(args, "write_profile", None)
    if profile_path is not None:
        _write_profile(report, profile_path)
    bucket = os.environ.get("EVAL_REPORT_BUCKET")
    if bucket:
        keys = upload_reports(bucket, report, [json_path, html_path])
        print(f"uploaded: {', '.join(f's3://{bucket}/{key}' for key in keys)}")
    answered = [t for c in results for r in c.repetitions for t in r.turns if t.reply is not None]
    if results and not answered and not allow_empty:
        print("error: the agent never answered; see the report for the errors", file=sys.stderr)
        return EXIT_NO_RESULTS
    failures = check(report.aggregates, thresholds)
    for failure in failures:
        print(f"GATE FAILED: {failure}", file=sys.stderr)
    if thresholds and not failures:
        print(f"gate passed: {', '.join(t.describe() for t in thresholds)}")
    return EXIT_GATE if failures else EXIT_OK


# --- helpers --------------------------------------------------------------------------------------------


def _write_profile(report: RunReport, path: Path) -> None:
    """Write the run's measured turn profile (`cost/usage.py` reads it); a run without answers has none."""
    from eval.results import ProfileError, turn_profile

    try:
        profile = turn_profile(report, commit=_commit())
    except ProfileError as exc:
        print(f"turn profile not written: {exc}", file=sys.stderr)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(profile, indent=2) + "\n", encoding="utf-8")
    print(f"turn profile: {path}")


def _commit() -> str | None:
    """The commit the run measured: EVAL_COMMIT, else `git rev-parse HEAD` (None outside a checkout)."""
    if os.environ.get("EVAL_COMMIT"):
        return os.environ["EVAL_COMMIT"]
    git = shutil.which("git")
    if git is None:
        return None
    try:
        completed = subprocess.run(  # noqa: S603 - fixed arguments, git from PATH
            [git, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    value = completed.stdout.strip()
    return value if completed.returncode == 0 and value else None


def judge_from_env(retries: int, env: dict[str, str] | None = None) -> Judge:
    """The judge through the LLM gateway: `LLM_GATEWAY_URL` plus `LLM_GATEWAY_KEY` (local) or
    `EVAL_GATEWAY_KEY_SECRET_ARN` (deployed, JSON `{"api_key"}`); model `EVAL_JUDGE_MODEL` or the config's
    `models.judge_alias`."""
    env = dict(os.environ) if env is None else env
    url = env.get("LLM_GATEWAY_URL")
    if not url:
        raise UsageError("the judge calls the LLM gateway: set LLM_GATEWAY_URL (or pass --no-judge)")
    key = env.get("LLM_GATEWAY_KEY")
    if not key and env.get("EVAL_GATEWAY_KEY_SECRET_ARN"):
        from eval.langfuse_io import read_json_secret

        key = str(read_json_secret(env["EVAL_GATEWAY_KEY_SECRET_ARN"]).get("api_key") or "")
    if not key:
        raise UsageError("the judge needs a gateway key: set LLM_GATEWAY_KEY or EVAL_GATEWAY_KEY_SECRET_ARN")
    model = env.get("EVAL_JUDGE_MODEL") or _judge_alias()
    return Judge(url, key, model, retries=retries)


def _judge_alias() -> str:
    from config import load_config

    return load_config().models.judge_alias


def _config_value(name: str, default: int) -> int:
    try:
        from config import load_config

        return int(getattr(load_config().evaluation, name))
    except Exception:  # the job image may run without the repo's config file
        logger.warning("cannot read evaluation.%s from the config; using %s", name, default)
        return default


def _target(args: argparse.Namespace) -> Any:
    from eval.agent import ClientTarget, agentcore_from_environment

    if args.target == "agentcore":
        return agentcore_from_environment(dict(os.environ))
    return ClientTarget.local(args.agent_url)


def _langfuse() -> Any:
    from eval.langfuse_io import LangfuseConfigError, make_client, settings_from_env

    try:
        settings = settings_from_env()
    except LangfuseConfigError as exc:
        raise UsageError(str(exc)) from None
    return make_client(settings) if settings else None


def _baseline(path: Path | None) -> RunReport | None:
    if path is None:
        return None
    from eval.report import load_report

    return load_report(path)


def _corpus(path: Path) -> Path | None:
    return path if path.is_dir() else None


def _select(cases: list[GoldenCase], wanted: str) -> list[GoldenCase]:
    ids = [c.strip() for c in wanted.split(",") if c.strip()]
    if not ids:
        return cases
    unknown = sorted(set(ids) - {c.id for c in cases})
    if unknown:
        raise UsageError(f"--cases: unknown case ids {unknown}")
    return [c for c in cases if c.id in ids]


def _pipeline_note(report: RunReport) -> None:
    note = os.environ.get("EVAL_MODEL_NOTE")
    if note:
        report.notes.append(PIPELINE_NOTE.format(note=note))


def _progress(total: int, disabled: bool) -> Any:
    from tqdm import tqdm  # type: ignore[import-untyped]

    return tqdm(
        total=total, unit="case", desc="evaluating", disable=disabled, file=sys.stderr, dynamic_ncols=True
    )


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")

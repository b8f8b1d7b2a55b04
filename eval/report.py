"""The report: `report.json` (machine-readable, the baseline of later runs) and `report.html` (plots,
per-case table with reasons, comparison with a baseline run)."""

from __future__ import annotations

import base64
import io
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless: no display on CI or in the scheduled job

import matplotlib.pyplot as plt
from jinja2 import Environment, FileSystemLoader, select_autoescape

from eval.results import CaseResult, RunReport
from eval.scores import METRICS, RUN_METRICS, SCORE_METRICS

logger = logging.getLogger(__name__)

TEMPLATES = Path(__file__).resolve().parent / "templates"
HEADLINE = (
    "pass_hat_k",
    "pass_rate",
    "tool_recall",
    "tool_precision",
    "retrieval_hit_rate",
    "guardrail_correct",
    "faithfulness",
    "correctness",
    "helpfulness",
    "latency_p95_ms",
)


def load_report(path: Path) -> RunReport:
    """Read a report.json (e.g. a baseline); a clear error when the file is not one."""
    try:
        return RunReport.model_validate_json(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(
            f"baseline report {path} does not exist (keep one with `make eval-baseline`, "
            "which copies eval-reports/pipeline/ to eval-reports/baseline/)"
        ) from None
    except ValueError as exc:
        raise ValueError(f"{path} is not an evaluation report.json: {str(exc).splitlines()[0]}") from None


def write_reports(report: RunReport, directory: Path, baseline: RunReport | None = None) -> tuple[Path, Path]:
    """Write report.json and report.html into `directory`; returns their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    json_path = directory / "report.json"
    json_path.write_text(report.model_dump_json(indent=2), encoding="utf-8")
    html_path = directory / "report.html"
    html_path.write_text(render_html(report, baseline), encoding="utf-8")
    (directory / USAGE_MARKDOWN).write_text(usage_markdown(report), encoding="utf-8")
    return json_path, html_path


USAGE_MARKDOWN = "usage.md"


def _cost(value: float | None) -> str:
    return "n/a" if value is None else f"${value:.4f}"


def usage_rows(report: RunReport) -> list[tuple[str, int, str, str, str, str]]:
    """Per case: id, answered turns, and per repetition (one conversation) the mean input tokens, output
    tokens and cost (`n/a` when no turn could be priced; `+N unpriced` when some could not)."""
    rows = []
    for case in report.cases:
        usage = case.usage
        cost = _cost(usage.cost_usd_per_repetition)
        if usage.unpriced_turns and usage.cost_usd is not None:
            cost += f" (+{usage.unpriced_turns} unpriced)"
        rows.append(
            (
                case.case_id,
                usage.answered_turns,
                f"{usage.input_tokens_per_repetition:,.0f}",
                f"{usage.output_tokens_per_repetition:,.0f}",
                cost,
                _cost(usage.cost_usd),
            )
        )
    return rows


def usage_markdown(report: RunReport) -> str:
    """usage.md: measured tokens and model cost per case (the inputs of the usage-cost model, `make cost`)."""
    lines = [
        f"# Measured usage: {report.run_name}",
        "",
        f"Target {report.target}, k={report.k}. Tokens as the agent reported them; cost from the model "
        "catalog's prices (`input_cost_per_million`/`output_cost_per_million`), else LiteLLM's price list.",
        *(f"> {note}" for note in report.notes),
        "",
        "| case | answered turns (all runs) | input tokens / run | output tokens / run | cost / run | cost, all runs |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    lines.extend(f"| {' | '.join(str(cell) for cell in row)} |" for row in usage_rows(report))
    total = report.aggregates.get("total_cost_usd")
    tokens = report.aggregates.get("total_tokens_sum")
    lines += ["", f"Run total: {format_value(tokens, 'tokens')} tokens, {format_value(total, 'usd')}.", ""]
    return "\n".join(lines)


def comparison(report: RunReport, baseline: RunReport | None) -> list[dict[str, Any]]:
    """Per aggregate: current, baseline, delta and whether the change is an improvement."""
    if baseline is None:
        return []
    rows = []
    for name, value in report.aggregates.items():
        before = baseline.aggregates.get(name)
        metric = METRICS.get(name) or RUN_METRICS.get(name)
        if metric is None:
            continue
        delta = None if value is None or before is None else value - before
        better = None if delta is None or abs(delta) < 1e-12 else (delta > 0) == metric.higher_is_better
        rows.append(
            {
                "name": name,
                "value": value,
                "baseline": before,
                "delta": delta,
                "better": better,
                "unit": metric.unit,
            }
        )
    return rows


def case_comparison(report: RunReport, baseline: RunReport | None) -> dict[str, bool | None]:
    """Per case id: the baseline's pass^k (None when the case is new)."""
    if baseline is None:
        return {}
    return {case.case_id: case.pass_hat_k for case in baseline.cases}


def ordered_cases(report: RunReport) -> list[CaseResult]:
    """Failing cases first (any repetition failed), then passing ones; dataset order within each."""
    return sorted(report.cases, key=lambda case: case.pass_hat_k)


def render_html(report: RunReport, baseline: RunReport | None = None) -> str:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html", "j2"]))
    env.filters["fmt"] = format_value
    env.filters["delta"] = format_delta
    template = env.get_template("report.html.j2")
    return template.render(
        report=report,
        baseline=baseline,
        headline=[
            (name, report.aggregates.get(name), (METRICS.get(name) or RUN_METRICS[name])) for name in HEADLINE
        ],
        metrics={**METRICS, **RUN_METRICS},
        comparison=comparison(report, baseline),
        baseline_cases=case_comparison(report, baseline),
        cases=ordered_cases(report),
        distribution_png=_distribution_plot(report),
        latency_png=_latency_plot(report),
        comparison_png=_comparison_plot(report, baseline),
        score_metrics=SCORE_METRICS,
    )


def format_value(value: Any, unit: str = "score") -> str:
    if value is None:
        return "n/a"
    if unit == "ms":
        return f"{value:,.0f} ms"
    if unit == "usd":
        return f"${value:.4f}"
    if unit == "tokens":
        return f"{value:,.0f}"
    return f"{value:.2f}"


def format_delta(value: float | None, unit: str = "score") -> str:
    if value is None:
        return "n/a"
    if unit == "ms":
        return f"{value:+,.0f} ms"
    if unit == "usd":
        return f"{'+' if value >= 0 else '-'}${abs(value):.4f}"
    if unit == "tokens":
        return f"{value:+,.0f}"
    return f"{value:+.3f}"


def _png(figure: Any) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(figure)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _values(report: RunReport, metric: str) -> list[float]:
    return [
        s.value
        for case in report.cases
        for s in case.all_scores()
        if s.name == metric and s.value is not None
    ]


def _distribution_plot(report: RunReport) -> str | None:
    metrics = [m for m in SCORE_METRICS if _values(report, m)]
    if not metrics:
        return None
    columns = 4
    rows = (len(metrics) + columns - 1) // columns
    figure, axes = plt.subplots(rows, columns, figsize=(12, 2.4 * rows), squeeze=False)
    for index, axis in enumerate(axes.flat):
        if index >= len(metrics):
            axis.axis("off")
            continue
        name = metrics[index]
        values = _values(report, name)
        axis.hist(values, bins=[i / 10 for i in range(11)], color="#3b6ea5", edgecolor="white")
        mean = sum(values) / len(values)
        axis.axvline(mean, color="#d9822b", linewidth=2)
        axis.set_title(f"{name} (mean {mean:.2f}, n={len(values)})", fontsize=9)
        axis.set_xlim(0, 1)
        axis.tick_params(labelsize=7)
    figure.suptitle("Per-metric score distributions (all turns and repetitions)", fontsize=11)
    figure.tight_layout()
    return _png(figure)


def _latency_plot(report: RunReport) -> str | None:
    values = _values(report, "latency_ms")
    if not values:
        return None
    figure, axis = plt.subplots(figsize=(6, 2.6))
    axis.hist(values, bins=20, color="#5a9e6f", edgecolor="white")
    for name, style in (("latency_p50_ms", "--"), ("latency_p95_ms", ":")):
        value = report.aggregates.get(name)
        if value is not None:
            axis.axvline(value, color="#333", linestyle=style, label=f"{name.split('_')[1]} {value:,.0f} ms")
    axis.set_xlabel("turn latency (ms)")
    axis.legend(fontsize=8)
    axis.set_title("Latency", fontsize=10)
    return _png(figure)


def _comparison_plot(report: RunReport, baseline: RunReport | None) -> str | None:
    if baseline is None:
        return None
    names = [
        n
        for n in ("pass_hat_k", "pass_rate", *SCORE_METRICS)
        if report.aggregates.get(n) is not None or baseline.aggregates.get(n) is not None
    ]
    if not names:
        return None
    current = [report.aggregates.get(n) or 0.0 for n in names]
    before = [baseline.aggregates.get(n) or 0.0 for n in names]
    figure, axis = plt.subplots(figsize=(12, 3.2))
    positions = range(len(names))
    axis.bar(
        [p - 0.2 for p in positions],
        before,
        width=0.4,
        label=f"baseline ({baseline.run_name})",
        color="#b8c4d6",
    )
    axis.bar(
        [p + 0.2 for p in positions],
        current,
        width=0.4,
        label=f"this run ({report.run_name})",
        color="#3b6ea5",
    )
    axis.set_xticks(list(positions))
    axis.set_xticklabels(names, rotation=30, ha="right", fontsize=8)
    axis.set_ylim(0, 1.05)
    axis.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.32), ncol=2, frameon=False)
    axis.set_title("This run vs. baseline", fontsize=10)
    return _png(figure)


def summary_lines(report: RunReport) -> list[str]:
    """A short plain-text summary for the terminal."""
    lines = [f"run {report.run_name}: {len(report.cases)} case(s), k={report.k}, target {report.target}"]
    for name in (*HEADLINE, "error_rate", "judge_error_rate", "total_cost_usd"):
        metric = METRICS.get(name) or RUN_METRICS.get(name)
        if metric is not None and name in report.aggregates:
            lines.append(f"  {name:<20} {format_value(report.aggregates[name], metric.unit)}")
    rows = usage_rows(report)
    if rows:
        lines.append(f"  {'usage (tokens, cost per run)':<32} {'turns':>5} {'in':>8} {'out':>7}  cost")
        lines.extend(
            f"  {case_id[:32]:<32} {turns:>5} {tokens_in:>8} {tokens_out:>7}  {cost}"
            for case_id, turns, tokens_in, tokens_out, cost, _total in rows
        )
    return lines


def dump_json(data: Any) -> str:
    return json.dumps(data, indent=2, default=str)


CONTENT_TYPES = {".json": "application/json", ".html": "text/html; charset=utf-8"}


def upload_reports(bucket: str, report: RunReport, paths: Sequence[Path], client: Any = None) -> list[str]:
    """Copy the report files to `s3://bucket/<mode>/<run-name>/` (the scheduled job keeps its reports
    there); returns the object keys. The bucket's default KMS encryption applies."""
    if client is None:
        import boto3

        # boto3 reads only AWS_DEFAULT_REGION (botocore 1.44.5 configprovider.py); honour AWS_REGION too
        region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or None
        client = boto3.client("s3", region_name=region)
    keys = []
    for path in paths:
        key = f"{report.mode}/{report.run_name}/{path.name}"
        client.put_object(
            Bucket=bucket,
            Key=key,
            Body=path.read_bytes(),
            ContentType=CONTENT_TYPES.get(path.suffix, "application/octet-stream"),
        )
        keys.append(key)
    return keys

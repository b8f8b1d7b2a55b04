"""`make soak`: many sessions of many turns through the real local stack, looking for errors and leaks.

    python -m benchmarks.soak --sessions 50 --turns 10 [--concurrency 4] [--json out.json]

Starts, through local_stack.stack (the assembly `make local` and the tests use): the scripted model
(local_stack/scripted_model.py, loopback), the LiteLLM proxy from the model catalog (every alias
re-pointed at the scripted model, no Bedrock quotas), the MCP tool server (tools.server with the embedded
corpus index; `--light-tools` uses the keyword backend of local_stack/light_tools.py) and the agent
(agent.main, local mode). Then `--concurrency` clients
run `--sessions` conversations of `--turns` turns each; every third turn calls a ticket tool and every
third the knowledge search, so the MCP path is exercised as much as the model path.

Prints errors, p50/p95/p99 turn latency, turns per second, the agent's CPU milliseconds per turn and its
resident memory (RSS) after warm-up and at the end (from /proc/<agent pid>, Linux; psutil elsewhere when
installed). Exits 1 on any failed turn or when RSS grew by more than `--max-rss-growth-mib` (default 64
MiB for the default 500 turns: a leak of ~130 KiB per turn or more fails). Everything listens on 127.0.0.1
and every wait is bounded (`--turn-timeout`, start-up timeouts).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from config import REPO_ROOT, load_config
from local_stack.components import Launch
from local_stack.scripted_model import Reply, ScriptedModel, Text, ToolCall, ToolCalls
from local_stack.stack import LocalStack, hermetic_environ, plan, scripted_upstream

logger = logging.getLogger(__name__)

# Shared with `make local` (LOCAL_STATE_DIR moves both): the corpus is embedded once.
SHARED_INDEX_CACHE = Path(os.environ.get("LOCAL_STATE_DIR") or REPO_ROOT / ".local") / "index"
MASTER_KEY = "sk-soak-local"
SESSION_HEADER = "X-Amzn-Bedrock-AgentCore-Runtime-Session-Id"


@dataclass
class Report:
    sessions: int
    turns_per_session: int
    concurrency: int
    turns: int = 0
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    duration_s: float = 0.0
    turns_per_s: float = 0.0
    latency_ms: dict[str, float] = field(default_factory=dict)
    agent_cpu_ms_per_turn: float = 0.0
    agent_rss_mib_start: float = 0.0
    agent_rss_mib_end: float = 0.0
    agent_rss_growth_mib: float = 0.0
    max_rss_growth_mib: float = 0.0
    load_average: tuple[float, float, float] = (0.0, 0.0, 0.0)

    @property
    def passed(self) -> bool:
        return self.errors == 0 and self.agent_rss_growth_mib <= self.max_rss_growth_mib


def responder(request: dict[str, Any]) -> Reply:
    """The scripted model: tool call first for 'ticket'/'manual' prompts, then an answer naming the turn."""
    messages: list[dict[str, Any]] = request.get("messages", [])
    last: dict[str, Any] = messages[-1] if messages else {}
    user: dict[str, Any] = next((m for m in reversed(messages) if m.get("role") == "user"), {})
    content = user.get("content")
    text = content if isinstance(content, str) else json.dumps(content)
    marker = text.split("turn ", 1)[-1].split(":", 1)[0] if "turn " in text else "?"
    if last.get("role") != "tool":
        if "ticket" in text:
            return ToolCalls([ToolCall("list_tickets", {"limit": 3})])
        if "manual" in text:
            return ToolCalls(
                [ToolCall("search_knowledge_base", {"query": "factory reset", "max_results": 2})]
            )
    return Text(f"Answer to turn {marker}: hold the reset button for 10 seconds.")


# --- the agent process: CPU and memory --------------------------------------------------------------


def _clock_ticks() -> int:
    return int(os.sysconf("SC_CLK_TCK"))


def cpu_ms(pid: int) -> float:
    """User + system CPU time of the process (all threads), in milliseconds."""
    stat = Path(f"/proc/{pid}/stat")
    if stat.exists():
        fields = stat.read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) * 1000 / _clock_ticks()
    import psutil  # type: ignore[import-untyped]  # not a dependency: only needed off Linux

    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system) * 1000


def rss_mib(pid: int) -> float:
    status = Path(f"/proc/{pid}/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    import psutil

    return float(psutil.Process(pid).memory_info().rss) / (1024 * 1024)


# --- the stack ----------------------------------------------------------------------------------------


def stack_launches(
    model: ScriptedModel, state: Path, *, light_tools: bool, catalog_rate_limits: bool
) -> list[Launch]:
    """Gateway + tool server + agent (local_stack.stack), every alias served by the scripted model."""
    return plan(
        load_config({"profile": "dev"}),
        state_dir=state,
        environ=hermetic_environ(os.environ),
        # No Bedrock quotas on the scripted model (--catalog-rate-limits shows what they would do).
        upstream=scripted_upstream(model, rate_limits=catalog_rate_limits),
        master_key=MASTER_KEY,
        environment="soak",
        light_tools=light_tools,
        index_cache=SHARED_INDEX_CACHE,
        with_guardrail_policy=False,
        startup_timeouts={"gateway": 120, "tools": 300, "agent": 60},  # the first run embeds the corpus
    )


def prompt(session: int, turn: int) -> str:
    topic = ("my open ticket", "the router manual", "the weather")[turn % 3]
    return f"Session {session} turn {session}.{turn}: a question about {topic}?"


def run_session(
    url: str, session: int, turns: int, timeout: float, record: Callable[[float, str | None], None]
) -> None:
    session_id = f"soak-session-{session:04d}-" + "0" * 24
    with httpx.Client(timeout=timeout) as client:
        for turn in range(turns):
            started = time.monotonic()
            problem: str | None = None
            try:
                response = client.post(
                    f"{url}/invocations",
                    json={"prompt": prompt(session, turn)},
                    headers={SESSION_HEADER: session_id},
                )
                if response.status_code != 200:
                    problem = f"HTTP {response.status_code}: {response.text[:200]}"
                elif f"turn {session}.{turn}" not in response.json()["answer"]:
                    problem = f"wrong answer: {response.json()['answer'][:120]!r}"
                else:
                    failed = [t for t in response.json()["metadata"]["tools"] if t["status"] != "success"]
                    if failed:
                        problem = f"tool error: {failed[0]}"
            except (httpx.HTTPError, ValueError, KeyError) as error:
                problem = f"{type(error).__name__}: {error}"
            record((time.monotonic() - started) * 1000, problem)


def soak(args: argparse.Namespace) -> Report:
    report = Report(args.sessions, args.turns, args.concurrency, max_rss_growth_mib=args.max_rss_growth_mib)
    with tempfile.TemporaryDirectory(prefix="soak-") as tmp, ScriptedModel(responder) as model:
        state = Path(tmp)
        launches = stack_launches(
            model, state, light_tools=args.light_tools, catalog_rate_limits=args.catalog_rate_limits
        )
        logger.info("starting the LiteLLM proxy, the tool server and the agent (logs in %s)", state / "logs")
        with LocalStack(launches, state / "logs") as stack:
            agent = stack["agent"]
            url = stack.url("agent")
            for index in range(args.concurrency * 2):  # warm-up: imports, MCP session, first allocations
                run_session(url, 10_000 + index, 3, args.turn_timeout, lambda ms, problem: None)
            cpu_start, rss_start = cpu_ms(agent.pid), rss_mib(agent.pid)
            latencies: list[float] = []
            lock = threading.Lock()

            def record(ms: float, problem: str | None) -> None:
                with lock:
                    latencies.append(ms)
                    if problem:
                        report.errors += 1
                        if len(report.error_samples) < 5:
                            report.error_samples.append(problem)

            logger.info(
                "soak: %d sessions x %d turns, %d concurrent", args.sessions, args.turns, args.concurrency
            )
            started = time.monotonic()
            with ThreadPoolExecutor(max_workers=args.concurrency) as pool:
                futures = [
                    pool.submit(run_session, url, session, args.turns, args.turn_timeout, record)
                    for session in range(args.sessions)
                ]
                for future in futures:
                    future.result()
            report.duration_s = time.monotonic() - started
            report.agent_cpu_ms_per_turn = (cpu_ms(agent.pid) - cpu_start) / max(1, len(latencies))
            report.agent_rss_mib_start, report.agent_rss_mib_end = rss_start, rss_mib(agent.pid)
    report.turns = len(latencies)
    report.turns_per_s = report.turns / report.duration_s if report.duration_s else 0.0
    ordered = sorted(latencies)
    if ordered:
        cuts = statistics.quantiles(ordered, n=100, method="inclusive") if len(ordered) > 1 else ordered * 99
        report.latency_ms = {
            "p50": round(cuts[49], 1),
            "p95": round(cuts[94], 1),
            "p99": round(cuts[98], 1),
            "max": round(ordered[-1], 1),
        }
    report.agent_rss_growth_mib = round(report.agent_rss_mib_end - report.agent_rss_mib_start, 1)
    report.load_average = os.getloadavg()
    return report


def render(report: Report) -> str:
    lines = [
        f"soak: {report.sessions} sessions x {report.turns_per_session} turns, {report.concurrency} concurrent",
        f"  turns:            {report.turns} in {report.duration_s:.1f} s ({report.turns_per_s:.1f} turns/s)",
        f"  errors:           {report.errors}",
        *(f"    {sample}" for sample in report.error_samples),
        "  turn latency ms:  " + ", ".join(f"{k} {v:.0f}" for k, v in report.latency_ms.items()),
        f"  agent CPU:        {report.agent_cpu_ms_per_turn:.1f} ms per turn",
        f"  agent RSS:        {report.agent_rss_mib_start:.1f} -> {report.agent_rss_mib_end:.1f} MiB "
        f"(growth {report.agent_rss_growth_mib:+.1f} MiB, bound {report.max_rss_growth_mib:.0f} MiB)",
        "  load average:     " + " ".join(f"{value:.2f}" for value in report.load_average),
        f"  result:           {'PASS' if report.passed else 'FAIL'}",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sessions", type=int, default=int(os.environ.get("SESSIONS") or 50))
    parser.add_argument("--turns", type=int, default=int(os.environ.get("TURNS") or 10))
    parser.add_argument("--concurrency", type=int, default=int(os.environ.get("CONCURRENCY") or 4))
    parser.add_argument(
        "--turn-timeout", type=float, default=60.0, help="seconds per turn before it counts as failed"
    )
    parser.add_argument("--max-rss-growth-mib", type=float, default=64.0)
    parser.add_argument(
        "--light-tools", action="store_true", help="keyword knowledge backend (no embedding index)"
    )
    parser.add_argument(
        "--catalog-rate-limits",
        action="store_true",
        help="keep the catalog's Bedrock rpm/tpm on the scripted model (as GATEWAY_UPSTREAM_RATE_LIMITS=catalog)",
    )
    parser.add_argument("--json", type=Path, help="also write the figures as JSON")
    args = parser.parse_args(argv)
    if min(args.sessions, args.turns, args.concurrency) < 1:
        parser.error("--sessions, --turns and --concurrency must be at least 1")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # not one line per request
    report = soak(args)
    print(render(report))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({**asdict(report), "passed": report.passed}, indent=2) + "\n")
    return 0 if report.passed else 1


if __name__ == "__main__":
    raise SystemExit(main())

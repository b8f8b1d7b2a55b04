"""Per-turn framework overhead of the agent, and the cost of tracing, with a zero-latency model.

A turn = input guardrail, memory read, a Strands agent loop with two model calls and one tool call,
output guardrail, memory write and the metadata; the model is the in-process scripted Strands model
(zero latency) so every millisecond measured is ours or Strands'. Two tool paths:
  - in-process: a Python tool (pure framework overhead),
  - MCP: `list_tickets` on the real local tool server over streamable HTTP (adds the MCP round trip).
Tracing: the same in-process turn with a real SDK tracer provider + BatchSpanProcessor (export on the
processor's thread to an in-memory exporter), versus tracing off.

    .venv/bin/python -m benchmarks.agent_turn_overhead [--turns 200]
Targets: p50 <= 30 ms per turn; tracing overhead < 1 ms per turn.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from strands import tool

from agent.guardrails import LocalPolicy
from agent.identity import Caller
from agent.memory import LocalMemory
from agent.payload import Invocation
from agent.service import AgentService
from agent.telemetry import Telemetry
from agent.tool_client import McpTools, StaticTools, local_headers
from local_stack import components
from local_stack.processes import free_port
from local_stack.scripted_strands import Call, Say, ScriptedStrandsModel
from local_stack.stack import hermetic_environ

REPO = Path(__file__).resolve().parents[1]


@tool
def search_knowledge_base(query: str, max_results: int = 5) -> str:
    """Search the knowledge base.

    Args:
        query: What to look for.
        max_results: How many passages.
    """
    return json.dumps(
        {
            "query": query,
            "count": 1,
            "results": [
                {
                    "title": "Router X200 User Manual",
                    "uri": "corpus/router-x200-user-manual.pdf",
                    "page": 6,
                    "score": 0.66,
                    "text": "Hold RESET for 10 seconds.",
                }
            ],
        }
    )


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


async def measure(
    service: AgentService, model: ScriptedStrandsModel, tool_name: str, arguments: dict[str, Any], turns: int
) -> list[float]:
    caller = Caller("bench-user")
    timings = []
    for index in range(turns):
        model.enqueue(
            Call(tool_name, arguments),
            Say("Hold the RESET button for 10 seconds [Router X200 User Manual, p. 6]."),
        )
        invocation = Invocation(
            f"How do I reset my router? ({index})", f"bench-session-{index % 20:04d}-{'x' * 24}", False
        )
        started = time.perf_counter()
        result = await service.run_turn(invocation, caller)
        timings.append((time.perf_counter() - started) * 1000)
        assert result["metadata"]["tools"][0]["status"] == "success", result["metadata"]["tools"]
    return timings[min(10, turns // 10) :]  # drop the warm-up turns


def build(model: ScriptedStrandsModel, tools: Any, telemetry: Telemetry) -> AgentService:
    return AgentService(
        model_factory=lambda: model,
        model_name="claude-sonnet",
        guardrail=LocalPolicy(),
        memory=LocalMemory(),
        tools=tools,
        telemetry=telemetry,
    )


def report(label: str, timings: list[float]) -> tuple[float, float]:
    p50, p95 = statistics.median(timings), percentile(timings, 0.95)
    print(f"  {label:<44} p50 {p50:7.2f} ms   p95 {p95:7.2f} ms   (n={len(timings)})")
    return p50, p95


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=200)
    args = parser.parse_args()
    print("agent per-turn overhead, zero-latency model, one tool call per turn:")

    model = ScriptedStrandsModel()
    untraced = asyncio.run(
        measure(
            build(model, StaticTools([search_knowledge_base]), Telemetry.disabled()),
            model,
            "search_knowledge_base",
            {"query": "reset router"},
            args.turns,
        )
    )
    p50, _ = report("in-process tool, tracing off", untraced)

    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    telemetry = Telemetry.with_exporter(exporter, environment="bench")
    traced = asyncio.run(
        measure(
            build(model, StaticTools([search_knowledge_base]), telemetry),
            model,
            "search_knowledge_base",
            {"query": "reset router"},
            args.turns,
        )
    )
    traced_p50, _ = report("in-process tool, tracing on (batch export)", traced)
    telemetry.shutdown()
    spans = len(exporter.get_finished_spans())
    tracing_overhead = traced_p50 - p50
    print(
        f"  tracing overhead per turn (p50 difference): {tracing_overhead:.2f} ms ({spans} spans exported, {spans / args.turns:.1f} per turn)"
    )

    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        tools = components.tool_server(
            port,
            db=Path(tmp) / "t.db",
            environ=hermetic_environ(os.environ),
            index_cache=REPO / ".local" / "index",
            startup_timeout=120,
        )
        with tools.process(Path(tmp) / "tools.log"):
            mcp = McpTools(f"http://127.0.0.1:{port}/mcp", local_headers)
            try:
                model = ScriptedStrandsModel()
                over_mcp = asyncio.run(
                    measure(
                        build(model, mcp, Telemetry.disabled()),
                        model,
                        "list_tickets",
                        {"limit": 5},
                        max(50, args.turns // 2),
                    )
                )
                report("MCP tool on the local tool server (list_tickets)", over_mcp)
            finally:
                mcp.close()
    ok = p50 <= 30.0 and tracing_overhead < 1.0
    print(
        f"targets: p50 <= 30 ms -> {'met' if p50 <= 30 else 'MISSED'}; tracing < 1 ms -> {'met' if tracing_overhead < 1 else 'MISSED'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())

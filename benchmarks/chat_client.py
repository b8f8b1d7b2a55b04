"""What the chat's client layer adds to a turn: SSE parsing and the HTTP round trip, no agent work.

A loopback server replays a contract stream (tool events, N text deltas, `done`) as fast as the socket
allows; the client (`clients.agentcore.AgentClient.stream`) parses it. Reported: parse throughput of
`iter_sse_data` + `parse_event` over an in-memory stream, time to first event and total time per turn
over HTTP, and the PKCE helpers' cost.

    .venv/bin/python -m benchmarks.chat_client [--turns 200] [--deltas 400]
Targets: parsing >= 50k events/s; client overhead per streamed turn < 5 ms p50 (400 deltas).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any

from clients.agentcore import AgentClient, AgentTarget, Done, iter_sse_data, new_session_id, parse_event
from clients.oauth import code_challenge, generate_code_verifier
from local_stack.replay_agent import Recorded, ReplayAgent

METADATA = {
    "session_id": "s",
    "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
    "model": "claude-sonnet",
    "tools": [
        {"name": "search_knowledge_base", "arguments": {"query": "q"}, "duration_ms": 1, "status": "success"}
    ],
    "citations": [{"title": "Router X200 Manual", "uri": "s3://b/k.pdf", "page": 3, "score": 0.8}],
    "guardrail": {"action": "NONE", "stage": None, "message": None},
    "usage": {"input_tokens": 800, "output_tokens": 400, "total_tokens": 1200},
    "latency_ms": 1000.0,
}


def stream_bytes(deltas: int) -> bytes:
    events: list[dict[str, Any]] = [
        {"type": "tool_start", "name": "search_knowledge_base", "arguments": {"query": "q"}}
    ]
    events.append(
        {"type": "tool_end", "name": "search_knowledge_base", "status": "success", "duration_ms": 1}
    )
    events += [{"type": "text", "delta": "word "} for _ in range(deltas)]
    events.append({"type": "done", "answer": "word " * deltas, "metadata": METADATA})
    return "".join(f"data: {json.dumps(e)}\n\n" for e in events).encode()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--turns", type=int, default=200)
    parser.add_argument("--deltas", type=int, default=400)
    args = parser.parse_args()
    body = stream_bytes(args.deltas)

    lines = body.decode().splitlines()
    started = time.perf_counter()
    rounds = 50
    for _ in range(rounds):
        count = sum(1 for payload in iter_sse_data(lines) for _ in [parse_event(payload)])
    parse_rate = rounds * count / (time.perf_counter() - started)

    first: list[float] = []
    total: list[float] = []
    with ReplayAgent() as agent:
        client = AgentClient(AgentTarget.local(agent.url))
        for _ in range(args.turns):
            agent.enqueue(Recorded(body))
            start = time.perf_counter()
            first_at = None
            for event in client.stream("benchmark", new_session_id()):
                if first_at is None:
                    first_at = time.perf_counter() - start
                if isinstance(event, Done):
                    break
            total.append((time.perf_counter() - start) * 1000)
            first.append((first_at or 0) * 1000)

    started = time.perf_counter()
    for _ in range(2000):
        code_challenge(generate_code_verifier())
    pkce_us = (time.perf_counter() - started) / 2000 * 1e6

    print(f"SSE parse: {parse_rate:,.0f} events/s ({count} events per turn)")
    print(
        f"streamed turn over loopback HTTP ({args.deltas} deltas, {len(body)} bytes, {args.turns} turns): "
        f"first event p50 {statistics.median(first):.2f} ms, total p50 {statistics.median(total):.2f} ms, "
        f"p95 {percentile(total, 0.95):.2f} ms"
    )
    print(f"PKCE verifier + S256 challenge: {pkce_us:.1f} us")


if __name__ == "__main__":
    main()

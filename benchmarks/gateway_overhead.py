"""Latency the LiteLLM gateway adds: interleaved direct calls vs calls through the local proxy.

    python -m benchmarks.gateway_overhead [--rounds 7] [--requests 25] [--workers 1]

Starts the scripted OpenAI-compatible model on loopback and the real LiteLLM proxy in front of it
(launched exactly as `make gateway` does, with every alias pointed at the scripted model), warms both
up, then runs `rounds x requests` pairs: each pair is one direct request and one through the proxy,
in alternating order, so drift on this shared machine hits both sides alike. Prints p50/p95/p99 of
the direct latency, the proxied latency, the added latency per pair (proxied - direct), and the
proxy's own `x-litellm-overhead-duration-ms` header. Target: p50 added <= 5 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import httpx

from config import load_config
from llm_gateway.config import Upstream
from llm_gateway.local import prepare
from local_stack import components
from local_stack.processes import free_port
from local_stack.scripted_model import ScriptedModel, Text

BODY = {
    "model": "",
    "messages": [{"role": "user", "content": "How do I reset the X200 router?"}],
    "max_tokens": 64,
}
ANSWER = Text("Hold the reset button for ten seconds until the light blinks.")


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    rank = (len(ordered) - 1) * pct / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def timed_post(client: httpx.Client, path: str, body: dict[str, object]) -> tuple[float, httpx.Response]:
    start = time.perf_counter()
    response = client.post(path, json=body)
    elapsed = (time.perf_counter() - start) * 1000
    if response.status_code != 200:
        raise RuntimeError(f"{client.base_url}{path} answered {response.status_code}: {response.text[:300]}")
    return elapsed, response


def row(name: str, values: list[float]) -> str:
    return (
        f"{name:<34} p50 {percentile(values, 50):7.2f}  p95 {percentile(values, 95):7.2f}  "
        f"p99 {percentile(values, 99):7.2f}  mean {statistics.fmean(values):7.2f}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--requests", type=int, default=25, help="pairs per round")
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--workers", type=int, default=1, help="proxy workers (--num_workers)")
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    args = parser.parse_args(argv)

    config = load_config({"profile": "dev"})
    # The catalog's rpm/tpm limits are far below this benchmark's rate: without lifting them, requests
    # would measure 429 -> fallback chains instead of the gateway's own overhead.
    unlimited = tuple(entry.model_copy(update={"rpm": None, "tpm": None}) for entry in config.models.entries)
    config = config.model_copy(update={"models": config.models.model_copy(update={"entries": unlimited})})
    alias = config.models.agent_alias
    state_dir = Path(tempfile.mkdtemp(prefix="gateway-bench-"))
    with ScriptedModel(responder=lambda request: ANSWER, model_name="scripted-bench") as model:
        gateway = prepare(
            config,
            state_dir=state_dir,
            port=free_port(),
            upstreams={
                entry.alias: Upstream(model.base_url, model="scripted-bench")
                for entry in config.models.entries
            },
            num_workers=args.workers,
            write_env_file=False,
        )
        log = state_dir / "litellm.log"
        print(f"starting the LiteLLM proxy ({args.workers} worker(s)); log {log}", flush=True)
        with (
            components.gateway(gateway).process(log),
            httpx.Client(base_url=model.base_url.removesuffix("/v1"), timeout=30) as direct,
            httpx.Client(
                base_url=gateway.url, headers={"Authorization": f"Bearer {gateway.master_key}"}, timeout=30
            ) as proxied,
        ):
            direct_body = {**BODY, "model": "scripted-bench"}
            proxy_body = {**BODY, "model": alias}
            for _ in range(args.warmup):
                timed_post(direct, "/v1/chat/completions", direct_body)
                timed_post(proxied, "/v1/chat/completions", proxy_body)

            direct_ms: list[float] = []
            proxy_ms: list[float] = []
            header_ms: list[float] = []
            for round_index in range(args.rounds):
                for i in range(args.requests):
                    proxy_first = (round_index + i) % 2 == 0
                    if proxy_first:
                        p, response = timed_post(proxied, "/v1/chat/completions", proxy_body)
                        d, _ = timed_post(direct, "/v1/chat/completions", direct_body)
                    else:
                        d, _ = timed_post(direct, "/v1/chat/completions", direct_body)
                        p, response = timed_post(proxied, "/v1/chat/completions", proxy_body)
                    direct_ms.append(d)
                    proxy_ms.append(p)
                    if response.headers.get("x-litellm-attempted-fallbacks") not in (None, "0"):
                        raise RuntimeError("a request fell back to another alias: the figures would be wrong")
                    header = response.headers.get("x-litellm-overhead-duration-ms")
                    if header not in (None, "None"):
                        header_ms.append(float(header))
                print(
                    f"round {round_index + 1}/{args.rounds}: added p50 "
                    f"{percentile([p - d for p, d in zip(proxy_ms[-args.requests :], direct_ms[-args.requests :], strict=True)], 50):.2f} ms",
                    flush=True,
                )

    added = [p - d for p, d in zip(proxy_ms, direct_ms, strict=True)]
    load = os.getloadavg()[0]
    print(
        f"\n{args.rounds} rounds x {args.requests} interleaved pairs, {args.workers} proxy worker(s), loopback (ms); "
        f"{os.cpu_count()} CPUs, 1-min load average {load:.1f} (other work on the machine inflates the figures)"
    )
    print(row("direct to scripted model", direct_ms))
    print(row("through LiteLLM proxy", proxy_ms))
    print(row("added by the gateway (per pair)", added))
    if header_ms:
        print(row("x-litellm-overhead-duration-ms", header_ms))
    target_met = percentile(added, 50) <= 5.0
    print(f"target p50 added <= 5 ms: {'met' if target_met else 'NOT met'} ({percentile(added, 50):.2f} ms)")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps(
                {"direct_ms": direct_ms, "proxy_ms": proxy_ms, "header_ms": header_ms, "added_ms": added}
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

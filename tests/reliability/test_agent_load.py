"""Issue 13, defect 5: `/ping` stays fast under concurrent streams; turns beyond the limit are `busy`.

The real app under real uvicorn on loopback (agent.main's server configuration); the model is the
in-process scripted Strands model, slowed down so each streamed turn lasts seconds.
"""

from __future__ import annotations

# ruff: noqa: F811  (the fixtures of tests/agent/conftest.py are imported and used as parameters)
import asyncio
import json
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from local_stack.scripted_strands import Say, ScriptedStrandsModel
from tests.agent.conftest import make_service, model  # noqa: F401  (fixtures)
from tests.agent.http_support import serve, settings

STREAMS = 50  # more than Starlette's 40-thread pool, which the SDK's stream bridge holds per stream
STREAM_SECONDS = 3.0
PING_P99_LIMIT_MS = 100.0


@dataclass
class SlowModel(ScriptedStrandsModel):
    delay: float = 0.15

    async def stream(self, *args: Any, **kwargs: Any) -> Any:
        async for event in super().stream(*args, **kwargs):
            await asyncio.sleep(self.delay)
            yield event


def slow_model() -> SlowModel:
    events_per_turn = 4 + 14  # message/content start/stop + metadata, and 14 text deltas
    model = SlowModel(delay=STREAM_SECONDS / events_per_turn)
    model.responder = lambda _messages: Say("Streaming slowly, one small piece at a time!", chunk_chars=3)
    return model


async def _stream_turn(client: httpx.AsyncClient, url: str) -> tuple[int, list[str]]:
    async with client.stream("POST", f"{url}/invocations", json={"prompt": "hi", "stream": True}) as response:
        lines = [line async for line in response.aiter_lines() if line.startswith("data:")]
        return response.status_code, lines


def _p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98] if len(values) >= 2 else values[0]


_STREAMER = """
import asyncio, sys, httpx
url, count = sys.argv[1], int(sys.argv[2])
async def one(client):
    async with client.stream("POST", url + "/invocations", json={"prompt": "hi", "stream": True}) as response:
        lines = [line async for line in response.aiter_lines() if line.startswith("data:")]
        return response.status_code == 200 and '"type": "done"' in lines[-1]
async def main():
    limits = httpx.Limits(max_connections=count + 10, max_keepalive_connections=count + 10)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:
        results = await asyncio.gather(*(one(client) for _ in range(count)))
    print(sum(results))
asyncio.run(main())
"""


_PINGER = """
import json, os, sys, time, httpx
url, stop = sys.argv[1], sys.argv[2]
latencies = []
with httpx.Client(timeout=10) as client:
    idle = []
    for _ in range(60):  # a warm connection (as AgentCore's health checker keeps) and the idle baseline
        started = time.perf_counter()
        client.get(url + "/ping")
        idle.append((time.perf_counter() - started) * 1000)
        time.sleep(0.01)
    print(json.dumps(sorted(idle)[int(len(idle) * 0.99) - 1]), flush=True)
    while not os.path.exists(stop):
        started = time.perf_counter()
        assert client.get(url + "/ping").status_code == 200
        latencies.append((time.perf_counter() - started) * 1000)
        time.sleep(0.02)
print(json.dumps(latencies))
"""


def _measure(served: Any, model: SlowModel, stop: Any) -> tuple[list[float], float, float]:
    """One load run: /ping latencies while STREAMS streams run, the idle p99 before, the run's length."""
    calls = model.calls
    pinger = subprocess.Popen(
        [sys.executable, "-c", _PINGER, served.url, str(stop)], stdout=subprocess.PIPE, text=True
    )
    assert pinger.stdout is not None
    idle_p99 = float(pinger.stdout.readline())
    started = time.monotonic()
    streamer = subprocess.run(
        [sys.executable, "-c", _STREAMER, served.url, str(STREAMS)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    elapsed = time.monotonic() - started
    stop.touch()
    latencies: list[float] = json.loads(pinger.communicate(timeout=30)[0].strip().splitlines()[-1])
    stop.unlink()
    finished = int(streamer.stdout.strip() or 0)
    assert finished == STREAMS and model.calls - calls == STREAMS, (
        f"{finished}/{STREAMS} streams ended with done"
    )
    return latencies, idle_p99, elapsed


def test_ping_p99_stays_under_100_ms_with_50_concurrent_slow_streams(make_service, tmp_path):
    """Streaming clients and the health checker are other processes (as in AgentCore): the numbers are
    the server's, not this process's GIL. The better of two runs counts, so one burst of another job
    on a shared host does not fail it; the bug it guards (a pool thread held per stream) blocked /ping
    for the whole stream in every run (p99 1.1 s, max 3.7 s)."""
    model = slow_model()
    config = settings(max_concurrent_turns=STREAMS + 4, max_connections=STREAMS + 40)
    runs = []
    with serve(config, make_service(model_factory=lambda: model)) as served:
        for _ in range(2):
            latencies, idle_p99, elapsed = _measure(served, model, tmp_path / "stop")
            p99, worst = _p99(latencies), max(latencies)
            print(
                f"\n/ping under {STREAMS} concurrent {STREAM_SECONDS:g} s streams: n={len(latencies)} "
                f"p50={statistics.median(latencies):.1f} ms p99={p99:.1f} ms max={worst:.1f} ms "
                f"(idle p99 {idle_p99:.1f} ms); all streams {elapsed:.1f} s"
            )
            runs.append((p99, worst))
            if p99 < PING_P99_LIMIT_MS and worst < 1000:
                break
    best_p99, best_worst = min(runs)
    assert best_p99 < PING_P99_LIMIT_MS, f"/ping p99 {best_p99:.1f} ms (max {best_worst:.1f} ms) under load"
    assert best_worst < 1000, f"/ping was blocked for {best_worst:.0f} ms"


def test_turns_beyond_the_limit_are_busy_and_ping_is_healthy_busy(make_service):
    model = slow_model()
    with serve(settings(max_concurrent_turns=2), make_service(model_factory=lambda: model)) as served:

        async def scenario() -> tuple[list[tuple[int, list[str]]], httpx.Response, str, str]:
            async with httpx.AsyncClient(timeout=30) as client:
                running = [asyncio.create_task(_stream_turn(client, served.url)) for _ in range(2)]
                while model.calls < 2:
                    await asyncio.sleep(0.02)
                refused = await client.post(f"{served.url}/invocations", json={"prompt": "one more"})
                during = (await client.get(f"{served.url}/ping")).json()["status"]
                results = await asyncio.gather(*running)
                after = (await client.get(f"{served.url}/ping")).json()["status"]
                return results, refused, during, after

        results, refused, during, after = asyncio.run(scenario())
    assert [status for status, _ in results] == [200, 200]
    assert refused.status_code == 503 and refused.headers["retry-after"] == "5"
    assert refused.json()["error"]["code"] == "busy"
    assert (during, after) == ("HealthyBusy", "Healthy")
    assert model.calls == 2, "the refused turn reached the model"


@pytest.mark.parametrize("stream", [False, True])
def test_ping_is_healthy_busy_for_the_whole_turn(make_service, stream):
    model = slow_model()
    with serve(settings(), make_service(model_factory=lambda: model)) as served:

        async def scenario() -> list[str]:
            async with httpx.AsyncClient(timeout=30) as client:
                body = {"prompt": "hi", "stream": stream}
                turn = asyncio.create_task(client.post(f"{served.url}/invocations", json=body))
                seen = []
                while not turn.done():
                    seen.append((await client.get(f"{served.url}/ping")).json()["status"])
                    await asyncio.sleep(0.1)
                assert (await turn).status_code == 200
                seen.append((await client.get(f"{served.url}/ping")).json()["status"])
                return seen

        seen = asyncio.run(scenario())
    assert seen[-1] == "Healthy"
    busy = [status for status in seen[1:-2]]
    assert busy and set(busy) == {"HealthyBusy"}, seen

"""The runtime's busy accounting, as AgentCore Runtime sees it through `GET /ping`.

AgentCore reads `/ping` to judge whether a session's microVM is idle: `HealthyBusy` while work runs,
`Healthy` when none does (https://docs.aws.amazon.com/bedrock-agentcore/latest/devguide/runtime-long-run.html).
bedrock-agentcore 1.25.0 `runtime/app.py`: `get_current_ping_status` answers a forced status, else the
`@app.ping` handler's, else `HealthyBusy` while `_active_tasks` is non-empty; `time_of_last_update`
is `_last_status_update_time`, moved only when the status changes. The agent's `@app.ping` handler
answers from the turns its `HttpGuard` admitted (`Runtime.try_enter` / `leave`), so these tests drive
real requests through the real app under uvicorn, with only the model scripted: a turn that is
running (JSON or stream), one that failed, one whose client went away.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import deque
from collections.abc import AsyncIterable, Iterator
from typing import Any

import httpx
import openai
import pytest

from local_stack.scripted_strands import Boom, Say, ScriptedStrandsModel
from tests.agent.http_support import Served, serve, settings

LIMIT = 10.0  # every wait below is bounded by this


class HeldModel(ScriptedStrandsModel):
    """The scripted model, made to wait (off the loop, cancellably) before its next queued replies."""

    def __init__(self) -> None:
        super().__init__()
        self.holds: deque[tuple[threading.Event, threading.Event]] = deque()

    async def stream(self, *args: Any, **kwargs: Any) -> AsyncIterable[Any]:
        if self.holds:
            entered, release = self.holds.popleft()
            entered.set()
            await asyncio.to_thread(release.wait, LIMIT)
        async for event in super().stream(*args, **kwargs):
            yield event


@pytest.fixture
def model() -> HeldModel:
    return HeldModel()


def ping(served: Served) -> dict[str, Any]:
    response = httpx.get(f"{served.url}/ping", timeout=LIMIT)
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def wait_for_status(served: Served, status: str) -> dict[str, Any]:
    deadline = time.monotonic() + LIMIT
    while True:
        body = ping(served)
        if body["status"] == status:
            return body
        assert time.monotonic() < deadline, f"/ping stayed {body['status']!r}, expected {status!r}"
        time.sleep(0.05)


@pytest.fixture
def served(make_service) -> Iterator[Served]:
    with serve(settings(max_concurrent_turns=2), make_service()) as running:
        yield running


def post_in_background(served: Served, body: dict[str, Any]) -> tuple[threading.Thread, dict[str, Any]]:
    outcome: dict[str, Any] = {}

    def run() -> None:
        response = httpx.post(f"{served.url}/invocations", json=body, timeout=LIMIT)
        outcome["status"], outcome["body"] = response.status_code, response.text

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def hold(model: HeldModel, then: Say | Boom) -> tuple[threading.Event, threading.Event]:
    """The model's next call waits for `release` (after setting `entered`), then replies `then`."""
    entered, release = threading.Event(), threading.Event()
    model.holds.append((entered, release))
    model.enqueue(then)
    return entered, release


def test_ping_is_busy_while_a_json_turn_runs_and_healthy_after(served, model):
    idle = ping(served)
    assert idle["status"] == "Healthy"
    entered, release = hold(model, Say("Done thinking."))
    thread, outcome = post_in_background(served, {"prompt": "hello"})
    try:
        assert entered.wait(LIMIT), "the turn never reached the model"
        busy = ping(served)
        assert busy["status"] == "HealthyBusy"
        # the SDK's bookkeeping moved with the status change (bedrock-agentcore 1.25.0 runtime/app.py)
        assert busy["time_of_last_update"] >= idle["time_of_last_update"]
        assert abs(busy["time_of_last_update"] - time.time()) <= 2
    finally:
        release.set()
        thread.join(LIMIT)
    assert outcome["status"] == 200 and json.loads(outcome["body"])["answer"] == "Done thinking."
    assert ping(served)["status"] == "Healthy"
    assert served.app.state.runtime.turns_in_flight == 0


def test_ping_is_busy_while_a_stream_runs_and_healthy_after(served, model):
    entered, release = hold(model, Say("Streamed answer."))
    frames: list[str] = []

    def run() -> None:
        body = {"prompt": "hello", "stream": True}
        with httpx.stream("POST", f"{served.url}/invocations", json=body, timeout=LIMIT) as response:
            frames.extend(line for line in response.iter_lines() if line.startswith("data: "))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        assert entered.wait(LIMIT)
        assert ping(served)["status"] == "HealthyBusy"
    finally:
        release.set()
        thread.join(LIMIT)
    assert json.loads(frames[-1][len("data: ") :])["type"] == "done"
    assert ping(served)["status"] == "Healthy"


def test_a_failed_turn_leaves_the_runtime_healthy(served, model):
    request = httpx.Request("POST", "http://gateway/v1/chat/completions")
    entered, release = hold(model, Boom(openai.APIConnectionError(request=request)))
    thread, outcome = post_in_background(served, {"prompt": "hello"})
    try:
        assert entered.wait(LIMIT)
        assert ping(served)["status"] == "HealthyBusy"
    finally:
        release.set()
        thread.join(LIMIT)
    assert outcome["status"] == 502 and json.loads(outcome["body"])["error"]["code"] == "model_unavailable"
    assert ping(served)["status"] == "Healthy"
    assert served.app.state.runtime.turns_in_flight == 0


def test_a_turn_whose_client_went_away_leaves_the_runtime_healthy(served, model):
    entered, release = hold(model, Say("Nobody reads this."))
    client = httpx.Client(timeout=LIMIT)
    try:
        with client.stream(
            "POST", f"{served.url}/invocations", json={"prompt": "hello", "stream": True}
        ) as response:
            assert response.status_code == 200
            assert entered.wait(LIMIT)
            assert ping(served)["status"] == "HealthyBusy"
        client.close()  # the client goes away mid-turn: the turn is cancelled
        wait_for_status(served, "Healthy")
        assert served.app.state.runtime.turns_in_flight == 0
    finally:
        release.set()
        client.close()


def test_turns_over_the_limit_are_refused_busy_and_admitted_again_after(make_service, model):
    with serve(settings(max_concurrent_turns=1), make_service()) as served:
        entered, release = hold(model, Say("first"))
        thread, outcome = post_in_background(served, {"prompt": "one"})
        try:
            assert entered.wait(LIMIT)
            refused = httpx.post(f"{served.url}/invocations", json={"prompt": "two"}, timeout=LIMIT)
            assert refused.status_code == 503
            assert refused.headers["Retry-After"] == "5"
            assert refused.json()["error"]["code"] == "busy"
            assert "1 turns" in refused.json()["error"]["message"]
        finally:
            release.set()
            thread.join(LIMIT)
        assert outcome["status"] == 200
        model.enqueue(Say("third"))
        again = httpx.post(f"{served.url}/invocations", json={"prompt": "three"}, timeout=LIMIT)
        assert again.status_code == 200 and again.json()["answer"] == "third"
        assert model.calls == 2  # the refused turn never reached the model

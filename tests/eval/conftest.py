"""Session fixtures for the evaluation tests: a Langfuse stand-in (the recorder, plus the observations read
API answered from the spans it received) and the whole local stack with the golden scripted model."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from eval.dataset import GoldenCase, load_dataset
from local_stack.otlp_recorder import PROJECT_ID, OtlpRecorder, RecordedRequest, RecordedSpan, Route
from scripts.eval_pipeline import PipelineStack, scripted_stack

REPO = Path(__file__).resolve().parents[2]
GOLDEN = REPO / "eval" / "datasets" / "golden.jsonl"
PUBLIC_KEY, SECRET_KEY = "pk-lf-eval", "sk-lf-eval"
OBSERVATIONS_PATH = "/api/public/v2/observations"


def observation(span: RecordedSpan) -> dict[str, Any]:
    """A recorded span as Langfuse's observations API returns it (the fields our code reads)."""
    kind = str(span.attr("langfuse.observation.type") or "span").upper()
    output = span.attr("langfuse.observation.output")
    if output is None:
        output = span.attr("gen_ai.tool.call.result")
    usage = {
        "input": span.attr("gen_ai.usage.input_tokens") or span.attr("gen_ai.usage.prompt_tokens") or 0,
        "output": span.attr("gen_ai.usage.output_tokens") or span.attr("gen_ai.usage.completion_tokens") or 0,
    }
    return {
        "id": span.span_id,
        "traceId": span.trace_id,
        "parentObservationId": span.parent_span_id,
        "isRootObservation": span.parent_span_id is None,
        "type": kind,
        "name": span.name,
        "projectId": PROJECT_ID,
        "startTime": _iso(span.start_time_unix_nano),
        "endTime": _iso(span.end_time_unix_nano),
        "environment": span.attr("langfuse.environment"),
        "traceName": span.attr("langfuse.trace.name"),
        "sessionId": span.attr("session.id"),
        "input": span.attr("langfuse.observation.input") or span.attr("gen_ai.tool.call.arguments"),
        "output": output,
        "level": "ERROR" if span.status == "ERROR" else "DEFAULT",
        "usageDetails": usage,
        "totalCost": span.attr("gen_ai.usage.cost"),
        "latency": span.duration_ms / 1000,
        "model": span.attr("gen_ai.request.model"),
        "metadata": {
            "attributes": {k: v for k, v in span.attributes.items() if not k.startswith("langfuse.")}
        },
    }


def _iso(unix_nano: int) -> str:
    return datetime.fromtimestamp(unix_nano / 1e9, tz=UTC).isoformat().replace("+00:00", "Z")


class LangfuseStandIn:
    """The recorder plus `GET /api/public/v2/observations` answered from recorded spans."""

    def __init__(self, recorder: OtlpRecorder) -> None:
        self.recorder = recorder
        self.hide_first_polls = 0  # answer "no observations yet" this many times per trace
        self._polls: dict[str, int] = {}
        recorder.respond("GET", OBSERVATIONS_PATH, self._observations)

    def _observations(self, request: RecordedRequest) -> Route:
        query = {k: v[0] for k, v in request.query.items()}
        spans = self.recorder.spans
        if "traceId" in query:
            trace_id = query["traceId"]
            self._polls[trace_id] = self._polls.get(trace_id, 0) + 1
            if self._polls[trace_id] <= self.hide_first_polls:
                spans = []
            spans = [s for s in spans if s.trace_id == trace_id]
        if query.get("isRootObservation") == "true":
            spans = [s for s in spans if s.parent_span_id is None]
        data = [observation(s) for s in spans]
        return Route(200, {"data": data, "meta": {"cursor": None}})

    def polls(self, trace_id: str) -> int:
        return self._polls.get(trace_id, 0)


@pytest.fixture(scope="session")
def golden_cases() -> list[GoldenCase]:
    return load_dataset(GOLDEN)


@pytest.fixture(scope="session")
def langfuse() -> Iterator[LangfuseStandIn]:
    with OtlpRecorder(public_key=PUBLIC_KEY, secret_key=SECRET_KEY) as recorder:
        yield LangfuseStandIn(recorder)


@pytest.fixture(scope="session")
def pipeline(
    golden_cases: list[GoldenCase], langfuse: LangfuseStandIn, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PipelineStack]:
    """The real local chain (LiteLLM, agent, MCP tool server) with the golden scripted model; the agent
    exports its traces to the Langfuse stand-in."""
    env = {
        "LANGFUSE_HOST": langfuse.recorder.url,
        "LANGFUSE_PUBLIC_KEY": PUBLIC_KEY,
        "LANGFUSE_SECRET_KEY": SECRET_KEY,
    }
    with scripted_stack(
        golden_cases, tmp_path_factory.mktemp("eval-stack"), REPO / ".local" / "index", env
    ) as stack:
        yield stack

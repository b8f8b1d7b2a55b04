"""The OTLP/Langfuse recorder, driven by the real OpenTelemetry SDK exporter and the real langfuse SDK."""

from __future__ import annotations

import gzip
import json
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.trace import Status, StatusCode

from local_stack.otlp_recorder import (
    LANGFUSE_TRACES_PATH,
    OTLP_TRACES_PATH,
    OtlpRecorder,
    RecorderError,
    iter_tree,
)

PUBLIC_KEY = "pk-lf-recorder"
SECRET_KEY = "sk-lf-recorder"


@pytest.fixture
def recorder() -> Iterator[OtlpRecorder]:
    with OtlpRecorder(public_key=PUBLIC_KEY, secret_key=SECRET_KEY) as running:
        yield running


def _provider(endpoint: str, headers: dict[str, str], compression: Compression) -> TracerProvider:
    provider = TracerProvider(resource=Resource.create({"service.name": "recorder-test"}))
    exporter = OTLPSpanExporter(endpoint=endpoint, headers=headers, compression=compression, timeout=5)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider


def test_otel_sdk_gzip_spans_are_decoded_with_tree_attributes_and_status(recorder: OtlpRecorder) -> None:
    provider = _provider(recorder.traces_url, recorder.auth_header, Compression.Gzip)
    tracer = provider.get_tracer("recorder.test")
    with (
        tracer.start_as_current_span("invoke_agent", attributes={"session.id": "s-1", "user.id": "u-1"}),
        tracer.start_as_current_span("execute_tool search") as tool,
    ):
        tool.set_attribute("gen_ai.usage.input_tokens", 12)
        tool.set_attribute("score", 0.5)
        tool.set_attribute("langfuse.trace.tags", ["support", "dev"])
        tool.set_attribute("ok", True)
        tool.add_event("exception", {"exception.message": "boom"})
        tool.set_status(Status(StatusCode.ERROR, "tool failed"))
    provider.shutdown()

    root, child = (
        recorder.wait_for_spans(name="invoke_agent")[0],
        recorder.wait_for_spans(name="execute_tool search")[0],
    )
    assert root.is_root and child.parent_span_id == root.span_id and child.trace_id == root.trace_id
    assert len(root.trace_id) == 32 and len(root.span_id) == 16
    assert root.attributes == {"session.id": "s-1", "user.id": "u-1"}
    assert child.attributes["gen_ai.usage.input_tokens"] == 12
    assert child.attributes["score"] == 0.5
    assert child.attributes["langfuse.trace.tags"] == ["support", "dev"]
    assert child.attributes["ok"] is True
    assert child.status == "ERROR" and child.status_message == "tool failed"
    assert child.events[0].name == "exception" and child.events[0].attributes["exception.message"] == "boom"
    assert root.resource["service.name"] == "recorder-test" and root.scope == "recorder.test"
    assert [span.name for _, span in iter_tree(recorder.spans, root)] == [
        "invoke_agent",
        "execute_tool search",
    ]
    request = recorder.requests_to(LANGFUSE_TRACES_PATH)[0]
    assert request.header("content-encoding") == "gzip" and request.basic_auth == (PUBLIC_KEY, SECRET_KEY)


def test_plain_otlp_path_without_compression_is_accepted(recorder: OtlpRecorder) -> None:
    provider = _provider(f"{recorder.url}{OTLP_TRACES_PATH}", recorder.auth_header, Compression.NoCompression)
    with provider.get_tracer("t").start_as_current_span("plain"):
        pass
    provider.shutdown()
    assert recorder.wait_for_spans(name="plain")[0].kind == "INTERNAL"


def test_json_encoded_otlp_is_accepted(recorder: OtlpRecorder) -> None:
    body = {
        "resourceSpans": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "json"}}]},
                "scopeSpans": [
                    {
                        "scope": {"name": "json-scope"},
                        "spans": [
                            {
                                "traceId": "AAAAAAAAAAAAAAAAAAAAAQ==",
                                "spanId": "AAAAAAAAAAI=",
                                "name": "json-span",
                                "attributes": [{"key": "n", "value": {"intValue": "7"}}],
                            }
                        ],
                    }
                ],
            }
        ]
    }
    response = httpx.post(recorder.traces_url, json=body, headers=recorder.auth_header)
    assert response.status_code == 200
    span = recorder.wait_for_spans(name="json-span")[0]
    assert span.trace_id == "00000000000000000000000000000001" and span.attributes == {"n": 7}


def test_wrong_keys_are_rejected_and_nothing_is_recorded(recorder: OtlpRecorder) -> None:
    provider = _provider(recorder.traces_url, {"Authorization": "Basic d3Jvbmc6a2V5"}, Compression.Gzip)
    with provider.get_tracer("t").start_as_current_span("denied"):
        pass
    provider.shutdown()
    recorder.wait_for_requests(LANGFUSE_TRACES_PATH)
    assert recorder.requests_to(LANGFUSE_TRACES_PATH)[0].status == 401
    assert recorder.spans == []


def test_chunked_request_bodies_are_read(recorder: OtlpRecorder) -> None:
    scores = [{"name": "user-feedback", "value": 1, "traceId": "a" * 32}]
    payload = json.dumps(scores).encode()

    def chunks():
        yield payload[:10]
        yield payload[10:]

    response = httpx.post(
        f"{recorder.url}/api/public/scores",
        content=chunks(),
        headers={**recorder.auth_header, "Content-Type": "application/json"},
    )
    assert response.status_code == 202
    assert recorder.requests_to("/api/public/scores")[0].header("transfer-encoding") == "chunked"
    assert recorder.wait_for_scores(1)[0]["traceId"] == "a" * 32


def test_health_needs_no_auth(recorder: OtlpRecorder) -> None:
    assert httpx.get(f"{recorder.url}/api/public/health").json()["status"] == "OK"


def test_backend_down_switch_fails_exports_until_recovered(recorder: OtlpRecorder) -> None:
    exporter = OTLPSpanExporter(endpoint=recorder.traces_url, headers=recorder.auth_header, timeout=2)
    provider = TracerProvider()
    tracer = provider.get_tracer("t")
    with tracer.start_as_current_span("lost") as span:
        pass
    recorder.fail_with(503, paths=[LANGFUSE_TRACES_PATH])
    started = time.monotonic()
    assert exporter.export([span]) == SpanExportResult.FAILURE  # type: ignore[list-item]
    assert time.monotonic() - started < 15  # the exporter's retry budget is bounded by its timeout
    assert recorder.spans == []
    assert {r.status for r in recorder.requests_to(LANGFUSE_TRACES_PATH)} == {503}
    recorder.recover()
    assert exporter.export([span]) == SpanExportResult.SUCCESS  # type: ignore[list-item]
    assert recorder.spans_named("lost")
    exporter.shutdown()


def test_undecodable_body_is_a_400_and_reported(recorder: OtlpRecorder) -> None:
    response = httpx.post(
        recorder.traces_url,
        content=gzip.compress(b"\xff\xff not protobuf"),
        headers={
            **recorder.auth_header,
            "Content-Type": "application/x-protobuf",
            "Content-Encoding": "gzip",
        },
    )
    assert response.status_code == 400
    assert recorder.decode_errors and recorder.spans == []


def test_wait_for_spans_times_out_with_what_it_saw(recorder: OtlpRecorder) -> None:
    started = time.monotonic()
    with pytest.raises(RecorderError, match=r"waited 0.3s for 1 span\(s\) \(name='never'\)"):
        recorder.wait_for_spans(name="never", timeout=0.3)
    assert time.monotonic() - started < 2


def test_custom_route_and_unknown_route(recorder: OtlpRecorder) -> None:
    recorder.respond("GET", "/api/public/v2/prompts/support", {"name": "support", "prompt": "hi"})
    ok = httpx.get(f"{recorder.url}/api/public/v2/prompts/support", headers=recorder.auth_header)
    missing = httpx.get(f"{recorder.url}/api/public/nothing", headers=recorder.auth_header)
    assert ok.json()["prompt"] == "hi" and missing.status_code == 404


def test_scores_batch_must_be_well_formed(recorder: OtlpRecorder) -> None:
    bad = httpx.post(f"{recorder.url}/api/public/scores", json=[{"value": 1}], headers=recorder.auth_header)
    assert bad.status_code == 400 and recorder.scores == []


def test_keys_must_come_in_pairs() -> None:
    with pytest.raises(ValueError, match="both public_key and secret_key"):
        OtlpRecorder(public_key="pk-only")


def test_fail_with_rejects_success_codes(recorder: OtlpRecorder) -> None:
    with pytest.raises(ValueError, match="HTTP error"):
        recorder.fail_with(200)


# --- the real langfuse 5 SDK -----------------------------------------------------------------------


@pytest.fixture
def langfuse_client(recorder: OtlpRecorder) -> Iterator[object]:
    from langfuse import Langfuse

    # The SDK caches one resource manager per public key: a fresh key pair per test gives a fresh client.
    # A private tracer provider keeps it off the global one.
    recorder.public_key = f"pk-lf-{uuid.uuid4().hex[:8]}"
    recorder.secret_key = f"sk-lf-{uuid.uuid4().hex[:8]}"
    client = Langfuse(
        public_key=recorder.public_key,
        secret_key=recorder.secret_key,
        base_url=recorder.url,
        tracer_provider=TracerProvider(),
        environment="test",
        flush_at=1,
        flush_interval=0.1,
    )
    yield client
    client.shutdown()


def test_langfuse_sdk_traces_reach_the_langfuse_path_with_trace_attributes(
    recorder: OtlpRecorder, langfuse_client: object
) -> None:
    from langfuse import Langfuse, propagate_attributes

    assert isinstance(langfuse_client, Langfuse)
    with langfuse_client.start_as_current_observation(name="agent-turn", as_type="span") as root:
        with (
            propagate_attributes(session_id="sess-1", user_id="user-1", tags=["support"]),
            langfuse_client.start_as_current_observation(
                name="chat claude-sonnet",
                as_type="generation",
                model="claude-sonnet",
                usage_details={"input": 10, "output": 5},
                cost_details={"total": 0.001},
            ),
        ):
            pass
        root.update(output="done")
    langfuse_client.flush()

    generation = recorder.wait_for_spans(name="chat claude-sonnet")[0]
    assert generation.attributes["langfuse.observation.type"] == "generation"
    assert generation.attributes["langfuse.observation.model.name"] == "claude-sonnet"
    assert json.loads(generation.attributes["langfuse.observation.usage_details"]) == {
        "input": 10,
        "output": 5,
    }
    assert generation.attributes["session.id"] == "sess-1" and generation.attributes["user.id"] == "user-1"
    assert generation.attributes["langfuse.environment"] == "test"
    request = recorder.requests_to(LANGFUSE_TRACES_PATH)[0]
    assert request.basic_auth == (recorder.public_key, recorder.secret_key)
    assert request.header("x-langfuse-ingestion-version") == "4"
    assert request.header("content-encoding") == "gzip"


def test_langfuse_sdk_scores_and_auth_check(recorder: OtlpRecorder, langfuse_client: object) -> None:
    from langfuse import Langfuse

    assert isinstance(langfuse_client, Langfuse)
    assert langfuse_client.auth_check() is True
    trace_id = uuid.uuid4().hex
    langfuse_client.create_score(name="user-feedback", value=1, trace_id=trace_id, comment="great")
    langfuse_client.flush()
    score = recorder.wait_for_scores(name="user-feedback")[0]
    assert score["traceId"] == trace_id and score["value"] == 1.0 and score["comment"] == "great"
    assert recorder.requests_to("/api/public/scores")[0].status == 202


def test_langfuse_sdk_datasets_round_trip(recorder: OtlpRecorder, langfuse_client: object) -> None:
    from langfuse import Langfuse

    assert isinstance(langfuse_client, Langfuse)
    langfuse_client.create_dataset(name="support-golden", description="golden questions")
    for n in range(3):
        langfuse_client.create_dataset_item(
            dataset_name="support-golden", input={"question": f"q{n}"}, expected_output={"answer": f"a{n}"}
        )
    dataset = langfuse_client.get_dataset("support-golden", fetch_items_page_size=2)
    assert [item.input["question"] for item in dataset.items] == ["q0", "q1", "q2"]
    assert len(recorder.requests_to("/api/public/dataset-items", "GET")) == 2  # paginated


def test_langfuse_sdk_survives_backend_down(recorder: OtlpRecorder, langfuse_client: object) -> None:
    from langfuse import Langfuse

    assert isinstance(langfuse_client, Langfuse)
    recorder.fail_with(503)
    with langfuse_client.start_as_current_observation(name="while-down", as_type="span"):
        pass
    langfuse_client.flush()
    recorder.wait_for_requests(LANGFUSE_TRACES_PATH)
    assert recorder.spans == []
    assert all(r.status == 503 for r in recorder.requests)

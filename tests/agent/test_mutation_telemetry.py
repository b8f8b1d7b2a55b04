"""Issue 12: the tracing contract (docs/tracing-contract.md) at the edges the mutation run showed untested.

- Strands' spans get `langfuse.observation.type` from their names (the processor `with_exporter`
  installs): `invoke_agent <agent>` agent, `execute_event_loop_cycle` chain, `chat [model]` generation,
  `execute_tool <tool>` tool or retriever. Strands takes its tracer from the GLOBAL provider, so the
  tests install it globally (the OTel API's set-once guard is reset for the test and restored after).
- The Langfuse exporter, on the wire (a loopback OTLP/HTTP server): POST to
  `<host>/api/public/otel/v1/traces` with Basic auth of `public:secret`, `x-langfuse-ingestion-version:
  4` (the shared platform notes) and gzip (https://langfuse.com/integrations/native/opentelemetry).
- The resource names the service and environment; attributes are clipped at 8000 characters.
- The batch processor is bounded: queue 2048, batch 256, 500 ms delay, the export timeout in ms. These
  are read from the processor (opentelemetry-sdk 1.45.1 `sdk/_shared_internal/__init__.py` 95-102,
  `BatchProcessor.__init__`) and the exporter (opentelemetry-exporter-otlp-proto-http 1.45.1
  `trace_exporter/__init__.py` 139-158, `_client`; `exporter/otlp/common/http.py` 126 `_timeout`).
- `shutdown` flushes, and a failing shutdown is a logged warning with the traceback, never an exception.
"""

from __future__ import annotations

import base64
import gzip
import http.server
import logging
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.util._once import Once

from agent.telemetry import MAX_ATTRIBUTE_CHARS, SEMCONV_OPT_IN, Telemetry


@pytest.fixture
def fresh_global(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let this test set the global tracer provider once; the previous one is restored afterwards."""
    monkeypatch.setattr(trace, "_TRACER_PROVIDER_SET_ONCE", Once())
    monkeypatch.setattr(trace, "_TRACER_PROVIDER", None)


def processors(telemetry: Telemetry) -> tuple[Any, ...]:
    return tuple(telemetry._provider._active_span_processor._span_processors)  # type: ignore[union-attr]


# --- observation types -------------------------------------------------------------------------------

NAMES = {
    "invoke_agent support agent": "agent",  # the agent name may hold spaces: the first one splits
    "execute_event_loop_cycle": "chain",
    "chat": "generation",
    "chat gpt-oss-120b": "generation",
    "execute_tool search_knowledge_base": "retriever",
    "execute_tool get_ticket": "tool",
    "execute_tool": "tool",
    "execute_tool search_knowledge_base_v2": "tool",
}


def test_strands_spans_are_typed_from_their_names(
    fresh_global: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OTEL_SEMCONV_STABILITY_OPT_IN", raising=False)
    exporter = InMemorySpanExporter()
    telemetry = Telemetry.with_exporter(exporter, batch=False)  # installs globally by default
    tracer = trace.get_tracer("strands.telemetry.tracer")  # how Strands gets its tracer
    for name in [*NAMES, "guardrail input", "INVOKE_AGENT x", "something else"]:
        with tracer.start_as_current_span(name):
            pass
    types = {
        span.name: (span.attributes or {}).get("langfuse.observation.type")
        for span in exporter.get_finished_spans()
    }
    assert types == {**NAMES, "guardrail input": None, "INVOKE_AGENT x": None, "something else": None}
    assert trace.get_tracer_provider() is telemetry._provider
    # Strands reads this when it creates its tracer: messages and tool I/O as span attributes
    import os

    assert os.environ["OTEL_SEMCONV_STABILITY_OPT_IN"] == SEMCONV_OPT_IN


def test_the_resource_names_the_service_and_environment() -> None:
    exporter = InMemorySpanExporter()
    with Telemetry.with_exporter(exporter, install_global=False, batch=False).turn({}, "hi"):
        pass
    named = InMemorySpanExporter()
    telemetry = Telemetry.with_exporter(
        named, install_global=False, batch=False, environment="prod", service_name="svc"
    )
    with telemetry.turn({}, "hi"):
        pass
    (default,), (span,) = exporter.get_finished_spans(), named.get_finished_spans()
    assert default.resource.attributes["service.name"] == "aaf-agent"
    assert default.resource.attributes["deployment.environment"] == "local"
    assert span.resource.attributes["service.name"] == "svc"
    assert span.resource.attributes["deployment.environment"] == "prod"


# --- clipping --------------------------------------------------------------------------------------


def test_attributes_are_clipped_at_the_limit() -> None:
    exporter = InMemorySpanExporter()
    telemetry = Telemetry.with_exporter(exporter, install_global=False, batch=False)
    exact, over = "a" * MAX_ATTRIBUTE_CHARS, "b" * (MAX_ATTRIBUTE_CHARS + 1)
    with telemetry.turn({}, over) as span:
        span.set(
            {
                "exact": exact,
                "over": over,
                "object": {"k": [1, 2]},
                "odd": {"when": object},  # not JSON: written with str()
                "big": {"k": "c" * MAX_ATTRIBUTE_CHARS},
            }
        )
    (root,) = exporter.get_finished_spans()
    attributes = root.attributes or {}
    assert attributes["exact"] == exact
    assert attributes["over"] == "b" * MAX_ATTRIBUTE_CHARS + "…"
    assert attributes["langfuse.observation.input"] == "b" * MAX_ATTRIBUTE_CHARS + "…"
    assert attributes["object"] == '{"k": [1, 2]}'
    assert attributes["odd"] == '{"when": "<class \'object\'>"}'
    assert attributes["big"] == ('{"k": "' + "c" * MAX_ATTRIBUTE_CHARS)[:MAX_ATTRIBUTE_CHARS] + "…"


# --- the batch processor and the Langfuse exporter ---------------------------------------------------


def test_the_batch_processor_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    # the SDK's defaults come from these variables; ours are explicit and win over them
    for name, value in {
        "OTEL_BSP_MAX_QUEUE_SIZE": "7",
        "OTEL_BSP_SCHEDULE_DELAY": "9",
        "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "3",
        "OTEL_BSP_EXPORT_TIMEOUT": "11",
    }.items():
        monkeypatch.setenv(name, value)
    telemetry = Telemetry.with_exporter(InMemorySpanExporter(), install_global=False)
    _, batch = processors(telemetry)
    assert isinstance(batch, BatchSpanProcessor)
    inner = batch._batch_processor
    assert (inner._max_queue_size, inner._schedule_delay_millis, inner._max_export_batch_size) == (
        2048,
        500,
        256,
    )
    assert inner._export_timeout_millis == 2000
    assert isinstance(batch.span_exporter, InMemorySpanExporter)
    quick = Telemetry.with_exporter(InMemorySpanExporter(), install_global=False, export_timeout_seconds=0.25)
    assert processors(quick)[1]._batch_processor._export_timeout_millis == 250
    assert isinstance(
        processors(Telemetry.with_exporter(InMemorySpanExporter(), install_global=False, batch=False))[1],
        SimpleSpanProcessor,
    )


class Recorder(http.server.BaseHTTPRequestHandler):
    requests: list[tuple[str, dict[str, str], bytes]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.requests.append((self.path, {k.lower(): v for k, v in self.headers.items()}, body))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        return None


@pytest.fixture
def langfuse() -> Iterator[tuple[str, list[tuple[str, dict[str, str], bytes]]]]:
    requests: list[tuple[str, dict[str, str], bytes]] = []
    handler = type("Handler", (Recorder,), {"requests": requests})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", requests
    server.shutdown()
    server.server_close()


def test_langfuse_export_on_the_wire(langfuse: tuple[str, list[Any]], fresh_global: None) -> None:
    host, requests = langfuse
    telemetry = Telemetry.langfuse(host + "/", "pk-lf-1", "sk-lf-2")  # defaults: local, 2 s, global
    assert trace.get_tracer_provider() is telemetry._provider
    with telemetry.turn({"session.id": "s1"}, "hello"):
        pass
    telemetry.shutdown()  # flushes the batch
    (path, headers, body), *_ = requests
    assert path == "/api/public/otel/v1/traces"
    assert headers["authorization"] == "Basic " + base64.b64encode(b"pk-lf-1:sk-lf-2").decode()
    assert headers["x-langfuse-ingestion-version"] == "4"
    assert headers["content-encoding"] == "gzip"
    request = ExportTraceServiceRequest.FromString(gzip.decompress(body))
    (resource_spans,) = request.resource_spans
    resource = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
    assert resource["service.name"] == "aaf-agent" and resource["deployment.environment"] == "local"
    (span,) = resource_spans.scope_spans[0].spans
    assert span.name == "agent-turn"
    exporter = processors(telemetry)[1].span_exporter
    # the HTTP client collapses `//` in the request path, so the configured endpoint is checked as well
    assert exporter._endpoint == host + "/api/public/otel/v1/traces"
    assert exporter._client._timeout == 2.0
    assert processors(telemetry)[1]._batch_processor._export_timeout_millis == 2000


def test_langfuse_options_reach_the_exporter(langfuse: tuple[str, list[Any]]) -> None:
    host, requests = langfuse
    telemetry = Telemetry.langfuse(
        host, "pk", "sk", environment="dev", export_timeout_seconds=1.5, install_global=False
    )
    assert trace.get_tracer_provider() is not telemetry._provider
    with telemetry.turn({}, "hello"):
        pass
    telemetry.shutdown()
    (path, _, body), *_ = requests
    assert path == "/api/public/otel/v1/traces"
    request = ExportTraceServiceRequest.FromString(gzip.decompress(body))
    resource = {a.key: a.value.string_value for a in request.resource_spans[0].resource.attributes}
    assert resource["deployment.environment"] == "dev"
    assert processors(telemetry)[1].span_exporter._client._timeout == 1.5
    assert processors(telemetry)[1]._batch_processor._export_timeout_millis == 1500


def local_tracing(host: str, **changes: Any) -> Telemetry:
    """The telemetry `build_service` wires for local mode with Langfuse keys in the environment."""
    from agent.bootstrap import build_service
    from tests.agent.http_support import LOCAL, free_port, settings

    config = settings(
        LOCAL,
        tool_gateway_url=f"http://127.0.0.1:{free_port()}/mcp",
        langfuse_host=host,
        langfuse_public_key="pk-local",
        langfuse_secret_key="sk-local",
        **changes,
    )
    return build_service(config).telemetry


def test_bootstrap_wires_the_langfuse_settings(langfuse: tuple[str, list[Any]], fresh_global: None) -> None:
    host, requests = langfuse
    telemetry = local_tracing(host, environment_tag="dev", trace_export_timeout_seconds=1.25)
    assert trace.get_tracer_provider() is telemetry._provider  # Strands' spans join the turn's trace
    with telemetry.turn({}, "hello"):
        pass
    telemetry.shutdown()
    (path, headers, body), *_ = requests
    assert path == "/api/public/otel/v1/traces"
    assert headers["authorization"] == "Basic " + base64.b64encode(b"pk-local:sk-local").decode()
    request = ExportTraceServiceRequest.FromString(gzip.decompress(body))
    resource = {a.key: a.value.string_value for a in request.resource_spans[0].resource.attributes}
    assert resource["deployment.environment"] == "dev"
    assert processors(telemetry)[1].span_exporter._client._timeout == 1.25
    assert processors(telemetry)[1]._batch_processor._export_timeout_millis == 1250


def test_the_service_name_setting_reaches_the_trace(
    langfuse: tuple[str, list[Any]], fresh_global: None
) -> None:
    host, requests = langfuse
    telemetry = local_tracing(host, service_name="aaf-agent-blue")
    with telemetry.turn({}, "hello"):
        pass
    telemetry.shutdown()
    request = ExportTraceServiceRequest.FromString(gzip.decompress(requests[0][2]))
    resource = {a.key: a.value.string_value for a in request.resource_spans[0].resource.attributes}
    assert resource["service.name"] == "aaf-agent-blue"


# --- shutdown ----------------------------------------------------------------------------------------


class FailingExporter(InMemorySpanExporter):
    """Fails its first shutdown (ours), not the provider's atexit one."""

    failed = False

    def shutdown(self) -> None:
        if not self.failed:
            self.failed = True
            raise RuntimeError("backend gone")


def test_shutdown_flushes_and_a_failure_is_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    exporter = InMemorySpanExporter()
    telemetry = Telemetry.with_exporter(exporter, install_global=False)  # batched
    with telemetry.turn({}, "hi"):
        pass
    telemetry.shutdown()
    assert [s.name for s in exporter.get_finished_spans()] == ["agent-turn"]

    failing = Telemetry.with_exporter(FailingExporter(), install_global=False, batch=False)
    with caplog.at_level(logging.WARNING, logger="agent.telemetry"):
        failing.shutdown()
    (record,) = [r for r in caplog.records if r.name == "agent.telemetry"]
    assert record.levelno == logging.WARNING and record.getMessage() == "trace provider shutdown failed"
    assert record.exc_info is not None and isinstance(record.exc_info[1], RuntimeError)


def test_shutdown_when_disabled_does_nothing() -> None:
    Telemetry.disabled().shutdown()

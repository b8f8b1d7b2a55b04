"""OpenTelemetry traces to Langfuse (docs/tracing-contract.md), never on the turn's critical path.

Spans are exported by a `BatchSpanProcessor` on its own thread with a bounded queue and a bounded
export timeout: a slow or dead trace backend drops spans, it never fails or slows a turn. With tracing
off (no `LANGFUSE_HOST`) nothing is installed and the trace id is empty.

The provider is installed globally, so Strands' own spans (`invoke_agent`, `chat`, `execute_tool`)
join the turn's trace as children of the `agent.turn` root span this module opens.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

logger = logging.getLogger(__name__)

SERVICE_NAME = "aaf-agent"
TRACE_NAME = "agent-turn"
AGENT_NAME = "support-agent"
RETRIEVER_TOOLS = frozenset({"search_knowledge_base"})
SEMCONV_OPT_IN = "gen_ai_latest_experimental,gen_ai_span_attributes_only"
LANGFUSE_OTEL_PATH = "/api/public/otel/v1/traces"
MAX_ATTRIBUTE_CHARS = 8000
TEAM_TAG_PREFIX = "team:"


def _clip(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= MAX_ATTRIBUTE_CHARS else text[:MAX_ATTRIBUTE_CHARS] + "…"


class TurnSpan:
    """The root span of one turn (a no-op when tracing is off)."""

    def __init__(self, span: Any | None) -> None:
        self._span = span

    @property
    def trace_id(self) -> str:
        if self._span is None:
            return ""
        context = self._span.get_span_context()
        return f"{context.trace_id:032x}" if context.is_valid else ""

    def set(self, attributes: Mapping[str, Any]) -> None:
        if self._span is None:
            return
        for key, value in attributes.items():
            if value is None:
                continue
            if isinstance(value, (str, bool, int, float)):
                self._span.set_attribute(key, value if not isinstance(value, str) else _clip(value))
            elif isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
                self._span.set_attribute(key, list(value))
            else:
                self._span.set_attribute(key, _clip(value))

    def error(self, message: str) -> None:
        if self._span is None:
            return
        from opentelemetry.trace import Status, StatusCode

        self._span.set_status(Status(StatusCode.ERROR, message))


def _observation_types_processor() -> Any:
    """A span processor typing Strands' spans for Langfuse from their names (tracing contract)."""
    from opentelemetry.sdk.trace import SpanProcessor

    class LangfuseObservationTypes(SpanProcessor):
        def on_start(self, span: Any, parent_context: Any = None) -> None:
            operation, _, target = span.name.partition(" ")
            kind = {"invoke_agent": "agent", "execute_event_loop_cycle": "chain", "chat": "generation"}.get(
                operation
            )
            if operation == "execute_tool":
                kind = "retriever" if target in RETRIEVER_TOOLS else "tool"
            if kind:
                span.set_attribute("langfuse.observation.type", kind)

    return LangfuseObservationTypes()


class Telemetry:
    """Owns the tracer provider (or nothing, when tracing is off)."""

    def __init__(self, provider: Any | None = None) -> None:
        self._provider = provider
        self._tracer = provider.get_tracer("agent") if provider is not None else None

    @property
    def enabled(self) -> bool:
        return self._tracer is not None

    @classmethod
    def disabled(cls) -> Telemetry:
        return cls(None)

    @classmethod
    def langfuse(
        cls,
        host: str,
        public_key: str,
        secret_key: str,
        *,
        environment: str = "local",
        export_timeout_seconds: float = 2.0,
        install_global: bool = True,
        service_name: str | None = None,
    ) -> Telemetry:
        """Export to Langfuse's OTLP endpoint with Basic auth; bounded queue and timeouts."""
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        auth = base64.b64encode(f"{public_key}:{secret_key}".encode()).decode()
        from opentelemetry.exporter.otlp.proto.http import Compression

        exporter = OTLPSpanExporter(
            endpoint=f"{host.rstrip('/')}{LANGFUSE_OTEL_PATH}",
            compression=Compression.Gzip,
            headers={"Authorization": f"Basic {auth}", "x-langfuse-ingestion-version": "4"},
            timeout=export_timeout_seconds,
        )
        return cls.with_exporter(
            exporter,
            environment=environment,
            export_timeout_seconds=export_timeout_seconds,
            install_global=install_global,
            service_name=service_name,
        )

    @classmethod
    def with_exporter(
        cls,
        exporter: Any,
        *,
        environment: str = "local",
        export_timeout_seconds: float = 2.0,
        install_global: bool = True,
        batch: bool = True,
        service_name: str | None = None,
    ) -> Telemetry:
        from opentelemetry import trace
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

        # Strands reads this once, when it creates its tracer: tool arguments/results and messages
        # must be span attributes for Langfuse (docs/tracing-contract.md).
        os.environ["OTEL_SEMCONV_STABILITY_OPT_IN"] = SEMCONV_OPT_IN
        provider = TracerProvider(
            resource=Resource.create(
                {"service.name": service_name or SERVICE_NAME, "deployment.environment": environment}
            )
        )
        provider.add_span_processor(_observation_types_processor())
        if batch:
            processor: Any = BatchSpanProcessor(
                exporter,
                max_queue_size=2048,
                schedule_delay_millis=500,
                max_export_batch_size=256,
                export_timeout_millis=int(export_timeout_seconds * 1000),
            )
        else:
            processor = SimpleSpanProcessor(exporter)
        provider.add_span_processor(processor)
        if install_global:
            trace.set_tracer_provider(provider)
        return cls(provider)

    @staticmethod
    def trace_attributes(
        session_id: str, user_id: str, environment: str, tags: Sequence[str], *, team: str | None = None
    ) -> dict[str, Any]:
        """The attributes every span of a turn carries (root, guardrails and Strands' spans).

        `user_id` is the actor id the LLM gateway also receives as the OpenAI `user`, and `team` the
        gateway team the turn's model calls are billed to: tag `team:<team>` and trace metadata
        `team`, so Langfuse and the LiteLLM spend views name the same person and team (docs/spend.md).
        """
        attributes: dict[str, Any] = {
            "session.id": session_id,
            "user.id": user_id,
            "langfuse.environment": environment,
            "langfuse.trace.name": TRACE_NAME,
            "langfuse.trace.tags": [*tags, f"{TEAM_TAG_PREFIX}{team}"] if team else list(tags),
        }
        if team:
            attributes["langfuse.trace.metadata.team"] = team
        return attributes

    @contextlib.contextmanager
    def turn(self, attributes: Mapping[str, Any], prompt: str) -> Iterator[TurnSpan]:
        """Open the root span of a turn and make it current (Strands' spans become its children)."""
        if self._tracer is None:
            yield TurnSpan(None)
            return
        with self._tracer.start_as_current_span(
            TRACE_NAME,
            attributes={
                **attributes,
                "langfuse.observation.type": "agent",
                "langfuse.observation.input": _clip(prompt),
            },
        ) as span:
            yield TurnSpan(span)

    @contextlib.contextmanager
    def guardrail_span(
        self, attributes: Mapping[str, Any], stage: str, guardrail_id: str, guardrail_version: str, text: str
    ) -> Iterator[TurnSpan]:
        """A child span around one guardrail check (observation type `guardrail`)."""
        if self._tracer is None:
            yield TurnSpan(None)
            return
        with self._tracer.start_as_current_span(
            f"guardrail {stage}",
            attributes={
                **attributes,
                "langfuse.observation.type": "guardrail",
                "guardrail.stage": stage,
                "guardrail.id": guardrail_id,
                "guardrail.version": guardrail_version,
                "langfuse.observation.input": _clip(text),
            },
            record_exception=True,
            set_status_on_exception=True,
        ) as span:
            yield TurnSpan(span)

    def shutdown(self) -> None:
        if self._provider is not None:
            try:
                self._provider.shutdown()
            except Exception:  # a dead backend must not break process exit
                logger.warning("trace provider shutdown failed", exc_info=True)

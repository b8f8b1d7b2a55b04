"""Tracing in-process: the trace id returned is the root span's; spans carry the trace attributes;
guardrail spans are typed; tracing off yields an empty trace id."""

from __future__ import annotations

import asyncio
from typing import Any

from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from agent.identity import Caller
from agent.payload import Invocation
from agent.telemetry import Telemetry
from local_stack.scripted_strands import Say

SESSION = "s-" + "d" * 32


def run(service, prompt: str) -> dict[str, Any]:
    return asyncio.run(service.run_turn(Invocation(prompt, SESSION, False), Caller("alice")))


def traced(make_service):
    exporter = InMemorySpanExporter()
    telemetry = Telemetry.with_exporter(exporter, environment="dev", install_global=False, batch=False)
    return make_service(telemetry=telemetry, environment="dev"), exporter


def test_trace_id_is_the_root_span_and_attributes_are_set(make_service, model) -> None:
    service, exporter = traced(make_service)
    model.enqueue(Say("Hello!"))
    trace_id = run(service, "Hi")["metadata"]["trace_id"]
    spans = exporter.get_finished_spans()
    root = next(s for s in spans if s.parent is None)
    assert f"{root.context.trace_id:032x}" == trace_id and root.name == "agent-turn"
    assert root.attributes["langfuse.observation.type"] == "agent"
    assert root.attributes["langfuse.observation.output"] == "Hello!"
    assert tuple(root.attributes["langfuse.trace.tags"]) == ("support-agent", "dev")
    for span in spans:
        assert span.attributes["session.id"] == SESSION and span.attributes["user.id"] == "alice"
        assert span.attributes["langfuse.environment"] == "dev"
    guardrails = [s for s in spans if s.attributes.get("langfuse.observation.type") == "guardrail"]
    assert [s.name for s in guardrails] == ["guardrail input", "guardrail output"]
    assert all(
        s.attributes["guardrail.action"] == "NONE" and s.attributes["guardrail.id"] == "local"
        for s in guardrails
    )


def test_blocked_input_is_traced_as_blocked(make_service, model) -> None:
    service, exporter = traced(make_service)
    run(service, "Should I buy bitcoin now?")
    spans = exporter.get_finished_spans()
    guard = next(s for s in spans if s.name == "guardrail input")
    assert guard.attributes["guardrail.action"] == "BLOCKED"
    assert {s.name for s in spans} == {"agent-turn", "guardrail input"}


def test_tracing_off_returns_an_empty_trace_id(make_service, model) -> None:
    model.enqueue(Say("Hello!"))
    assert run(make_service(), "Hi")["metadata"]["trace_id"] == ""


def test_unreachable_backend_does_not_slow_the_turn(make_service, model) -> None:
    import socket
    import time

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    telemetry = Telemetry.langfuse(
        f"http://127.0.0.1:{port}", "pk", "sk", install_global=False, export_timeout_seconds=1
    )
    service = make_service(telemetry=telemetry)
    model.enqueue(Say("one"), Say("two"))
    started = time.monotonic()
    assert run(service, "first")["answer"] == "one"
    assert run(service, "second")["answer"] == "two"
    assert time.monotonic() - started < 0.5
    telemetry.shutdown()

"""One agent turn wired exactly as docs/tracing-contract.md describes, run in its own process.

OpenTelemetry's global tracer provider and Strands' tracer are process-wide singletons, so the contract
test runs the turn here, in a child process, exporting over OTLP/HTTP to the parent's recorder:

    python -m tests.support.contract_turn --traces-url URL --authorization "Basic ..." --model-url URL

It prints one JSON line: {"trace_id": "<32 hex>", "answer": "..."}.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import AsyncGenerator
from typing import Any

SESSION_ID = "contract-session-0123456789abcdef0123456789"
USER_ID = "user-sub-123"
RETRIEVER_TOOLS = frozenset({"search_knowledge_base"})
OBSERVATION_TYPES = {"invoke_agent": "agent", "execute_event_loop_cycle": "chain", "chat": "generation"}


def run(traces_url: str, authorization: str, model_url: str, *, block_input: bool) -> dict[str, str]:
    # Both must be set before Strands creates its tracer: tool arguments/results and messages become span
    # attributes (not span events), which is what Langfuse reads.
    os.environ["OTEL_SEMCONV_STABILITY_OPT_IN"] = "gen_ai_latest_experimental,gen_ai_span_attributes_only"
    from opentelemetry import trace
    from opentelemetry.context import Context
    from opentelemetry.exporter.otlp.proto.http import Compression
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import Span, SpanProcessor, TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    class LangfuseObservationTypes(SpanProcessor):
        """Type every Strands span for Langfuse when it starts (Strands names spans before attributes)."""

        def on_start(self, span: Span, parent_context: Context | None = None) -> None:
            operation, _, target = span.name.partition(" ")
            kind = OBSERVATION_TYPES.get(operation)
            if operation == "execute_tool":
                kind = "retriever" if target in RETRIEVER_TOOLS else "tool"
            if kind is not None:
                span.set_attribute("langfuse.observation.type", kind)

    provider = TracerProvider(resource=Resource.create({"service.name": "aaf-agent"}))
    provider.add_span_processor(LangfuseObservationTypes())
    exporter = OTLPSpanExporter(
        endpoint=traces_url, headers={"Authorization": authorization}, compression=Compression.Gzip, timeout=5
    )
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)

    from strands import Agent, tool
    from strands.models.openai import OpenAIModel

    class PricedModel(OpenAIModel):
        """Sets gen_ai.usage.cost (USD) on the chat span, which is current while the model streams."""

        async def stream(self, *args: Any, **kwargs: Any) -> AsyncGenerator[Any, None]:
            async for event in super().stream(*args, **kwargs):
                usage = event.get("metadata", {}).get("usage") if isinstance(event, dict) else None
                if usage:
                    cost = usage["inputTokens"] * 3e-6 + usage["outputTokens"] * 15e-6
                    trace.get_current_span().set_attribute("gen_ai.usage.cost", cost)
                yield event

    @tool
    def search_knowledge_base(query: str) -> str:
        """Search the knowledge base.

        Args:
            query: what to look for.
        """
        hit = {
            "text": "Hold reset 10 s",
            "title": "Router X200",
            "uri": "s3://d/x200.pdf",
            "page": 3,
            "score": 0.83,
        }
        return json.dumps({"query": query, "results": [hit], "count": 1})

    attributes: dict[str, Any] = {
        "session.id": SESSION_ID,
        "user.id": USER_ID,
        "langfuse.environment": "dev",
        "langfuse.trace.name": "agent-turn",
        "langfuse.trace.tags": ["support-agent", "dev"],
    }
    agent = Agent(
        model=PricedModel(client_args={"base_url": model_url, "api_key": "unused"}, model_id="claude-sonnet"),
        tools=[search_knowledge_base],
        name="support-agent",
        callback_handler=None,
        trace_attributes=attributes,
    )
    tracer = trace.get_tracer("agent")
    prompt = "How do I reset my router?"
    answer = "Sorry, I can't help with that request."
    with tracer.start_as_current_span("agent-turn", attributes=attributes) as root:
        root.set_attributes({"langfuse.observation.type": "agent", "langfuse.observation.input": prompt})
        with tracer.start_as_current_span("guardrail input", attributes=attributes) as guard:
            action = "BLOCKED" if block_input else "NONE"
            guard.set_attributes(
                {
                    "langfuse.observation.type": "guardrail",
                    "guardrail.stage": "input",
                    "guardrail.action": action,
                }
            )
        if not block_input:
            answer = str(agent(prompt)).strip()
            with tracer.start_as_current_span("guardrail output", attributes=attributes) as guard:
                guard.set_attributes(
                    {
                        "langfuse.observation.type": "guardrail",
                        "guardrail.stage": "output",
                        "guardrail.action": "NONE",
                    }
                )
        root.set_attribute("langfuse.observation.output", answer)
        trace_id = format(root.get_span_context().trace_id, "032x")
    provider.shutdown()  # flushes the batch
    return {"trace_id": trace_id, "answer": answer}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--traces-url", required=True)
    parser.add_argument("--authorization", required=True)
    parser.add_argument("--model-url", required=True)
    parser.add_argument("--block-input", action="store_true")
    args = parser.parse_args(argv)
    result = run(args.traces_url, args.authorization, args.model_url, block_input=args.block_input)
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

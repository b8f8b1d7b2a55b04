"""One conversation turn: guardrails, memory, the Strands agent loop over MCP tools, metadata, trace.

`AgentService.stream_turn` yields the contract's stream events (`text`, `tool_start`, `tool_end`, then
`done` or `error`); `run_turn` collects them into the JSON answer. Heavy imports (Strands, OpenAI) live
here and are loaded by `agent.main` off the request path.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from strands import Agent
from strands.hooks import AfterToolCallEvent, BeforeToolCallEvent
from strands.models.model import Model
from strands.types.exceptions import ModelThrottledException

from agent.errors import ApiError
from agent.guardrails import Guardrail, Verdict
from agent.identity import Caller
from agent.memory import Memory, Turn
from agent.payload import Invocation
from agent.telemetry import AGENT_NAME, Telemetry, TurnSpan
from agent.tool_client import ToolSource, bare_tool_name

logger = logging.getLogger(__name__)

KNOWLEDGE_TOOLS = frozenset({"search_knowledge_base"})
WEB_TOOLS = frozenset({"web_search"})
MAX_CITATION_TEXT = 2000
SENTENCE_END = re.compile(r"[.!?:\n](?:\s|$)")

SYSTEM_PROMPT = """You are the customer-service assistant of Nimbus Networks (routers, mesh Wi-Fi, thermostats).
- Answer product questions from the knowledge base: call search_knowledge_base and cite every passage you use as [Document title, p. N] (omit the page when there is none). If the knowledge base has no answer, say so and offer to open a support ticket.
- To open a ticket, first collect the user's contact email and a description of the problem; never invent them. Then call create_ticket and give the user the ticket id.
- Use only the tools you are given. If the user asks you to search the web and you have no web_search tool, say that web search is not available.
- Be concise and friendly. Never give financial or investment advice."""

NO_TOOLS_NOTE = "\n- Your tools are temporarily unavailable: say that you cannot look things up or manage tickets right now."


class _IdleModel(Model):
    """A model that is never called: constructing an Agent with it warms Strands' imports."""

    def update_config(self, **model_config: Any) -> None:
        return None

    def get_config(self) -> Any:
        return {}

    def structured_output(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the warm-up model only warms imports and is never asked for output")

    def stream(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the warm-up model only warms imports and is never asked for output")


class ModelUnavailable(Exception):
    """The LLM gateway failed after its own retries and fallbacks."""


def is_model_failure(error: BaseException) -> bool:
    """True when an exception (or its cause chain) comes from the model endpoint."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ModelThrottledException):
            return True
        module = type(current).__module__
        if module.startswith(("openai", "httpx", "httpcore")):
            return True
        current = current.__cause__ or current.__context__
    return False


@dataclass
class _TurnState:
    tools: list[dict[str, Any]] = field(default_factory=list)
    citations: dict[tuple[str, int | None], dict[str, Any]] = field(default_factory=dict)
    passages: dict[tuple[str, int | None], dict[str, float]] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    starts: dict[str, float] = field(default_factory=dict)
    tool_transport_failed: bool = False


def _result_payloads(result: dict[str, Any]) -> list[Any]:
    payloads: list[Any] = []
    for block in result.get("content", []) or []:
        if not isinstance(block, dict):
            continue
        if "json" in block:
            payloads.append(block["json"])
        elif "text" in block:
            try:
                payloads.append(json.loads(block["text"]))
            except (TypeError, json.JSONDecodeError):
                payloads.append(block["text"])
    return payloads


def _result_text(result: dict[str, Any]) -> str:
    parts = []
    for block in result.get("content", []) or []:
        if isinstance(block, dict) and "text" in block:
            parts.append(str(block["text"]))
    return " ".join(parts)[:500]


def _error_message(value: Any) -> str:
    """The message of a tool's `error` value: a string, or an object with `message` (and `code`)."""
    if isinstance(value, dict):
        message = value.get("message")
        code = value.get("code")
        if isinstance(message, str) and message:
            return f"{code}: {message}" if isinstance(code, str) and code else message
        return json.dumps(value)[:500]
    text = str(value) if value is not None else ""
    return text[:500] or "tool failed"


def _result_error(result: dict[str, Any]) -> str | None:
    """The error a successful-looking tool result carries: a top-level JSON object with an `error` key."""
    for payload in _result_payloads(result):
        if isinstance(payload, dict) and "error" in payload:
            return _error_message(payload["error"])
    return None


def _collect_citations(result: dict[str, Any], state: _TurnState) -> None:
    for payload in _result_payloads(result):
        if not isinstance(payload, dict):
            continue
        for item in payload.get("results", []) or []:
            if not isinstance(item, dict):
                continue
            uri = item.get("uri") or item.get("url")
            if not isinstance(uri, str) or not uri:
                continue
            page = item.get("page") if isinstance(item.get("page"), int) else None
            score = item.get("score")
            text = item.get("text") if isinstance(item.get("text"), str) else item.get("content")
            citation: dict[str, Any] = {
                "title": str(item.get("title") or uri),
                "uri": uri,
                "page": page,
                "score": float(score) if isinstance(score, (int, float)) else None,
            }
            key = (uri, page)
            previous = state.citations.get(key)
            if previous is None or (citation["score"] or 0.0) > (previous["score"] or 0.0):
                state.citations[key] = citation
            if isinstance(text, str) and text.strip():
                texts = state.passages.setdefault(key, {})
                texts[text] = max(texts.get(text, 0.0), citation["score"] or 0.0)


def citation_list(state: _TurnState, answer: str) -> list[dict[str, Any]]:
    """The turn's citations by score, each with its passage text and whether the answer names it.

    Several passages of one (uri, page) (chunks of one page, or of a document without pages) share one
    entry: its `text` holds them best first, separated by blank lines, cut at MAX_CITATION_TEXT.
    """
    citations = []
    for key, citation in sorted(state.citations.items(), key=lambda item: -(item[1]["score"] or 0.0)):
        texts = sorted(state.passages.get(key, {}).items(), key=lambda item: -item[1])
        text = "\n\n".join(passage for passage, _ in texts)[:MAX_CITATION_TEXT]
        citations.append({**citation, "text": text or None, "cited": False})
    return mark_cited(citations, answer)


def source_file_name(uri: str) -> str:
    """The file name a source URI points at (`s3://b/docs/router.pdf?x=1` -> `router.pdf`; "" for none)."""
    path = uri.split("?", 1)[0].split("#", 1)[0].rstrip("/")
    if "://" in path and "/" not in path.split("://", 1)[1]:
        return ""  # a bare host (web result): no file name
    return path.rsplit("/", 1)[-1]


def mark_cited(citations: list[dict[str, Any]], answer: str) -> list[dict[str, Any]]:
    """Set `cited` on each citation whose title or file name the answer names (case-insensitive)."""
    text = answer.casefold()
    for citation in citations:
        names = [citation["title"], source_file_name(citation["uri"])]
        citation["cited"] = any(len(name) >= 3 and name.casefold() in text for name in names if name)
    return citations


class AgentService:
    """Runs turns. Dependencies are injected so tests and local mode use real stand-ins."""

    def __init__(
        self,
        *,
        model_factory: Callable[[], Any],
        model_name: str,
        guardrail: Guardrail,
        memory: Memory,
        tools: ToolSource,
        telemetry: Telemetry,
        environment: str = "local",
        history_turns: int = 10,
        stream_flush_chars: int = 80,
    ) -> None:
        self._model_factory = model_factory
        self.model_name = model_name
        self.guardrail = guardrail
        self.memory = memory
        self.tools = tools
        self.telemetry = telemetry
        self.environment = environment
        self.history_turns = history_turns
        self.stream_flush_chars = stream_flush_chars

    # --- public API ---------------------------------------------------------------------------

    def prewarm(self, caller: Caller | None) -> None:
        """Pay one-off costs before the first turn: lazy imports of the model client, Strands' agent
        machinery, and (when the caller is known, i.e. local mode) the MCP session and tool list."""
        prewarm = getattr(self._model_factory, "prewarm", None)
        if callable(prewarm):
            prewarm()
        Agent(model=_IdleModel(), tools=[], callback_handler=None, name=AGENT_NAME)
        if caller is not None:
            self.tools.tools_for(caller)
        else:
            prewarm_auth = getattr(self.tools, "prewarm_auth", None)
            if callable(prewarm_auth):
                prewarm_auth()

    async def run_turn(self, invocation: Invocation, caller: Caller) -> dict[str, Any]:
        """The JSON answer of a turn; raises ApiError (502 model_unavailable, 500 internal_error)."""
        answer: dict[str, Any] | None = None
        failure: dict[str, Any] | None = None
        # Consume the stream to its end in this task, so its spans close in the context they opened in.
        async for event in self.stream_turn(invocation, caller):
            if event["type"] == "done":
                answer = {"answer": event["answer"], "metadata": event["metadata"]}
            elif event["type"] == "error":
                failure = event
        if failure is not None:
            status = 502 if failure["code"] == "model_unavailable" else 500
            error = ApiError(status, failure["code"], failure["message"])
            error.trace_id = failure.get("trace_id", "")  # type: ignore[attr-defined]
            raise error
        if answer is None:
            raise ApiError(500, "internal_error", "the turn ended without an answer")
        return answer

    async def stream_turn(self, invocation: Invocation, caller: Caller) -> AsyncIterator[dict[str, Any]]:
        """Contract stream events for one turn; always ends with `done` or `error`."""
        started = time.perf_counter()
        attributes = Telemetry.trace_attributes(
            invocation.session_id, caller.actor_id, self.environment, [AGENT_NAME, self.environment]
        )
        with self.telemetry.turn(attributes, invocation.prompt) as span:
            try:
                async for event in self._turn(invocation, caller, span, started, attributes):
                    yield event
            except Exception as error:
                model_failure = isinstance(error, ModelUnavailable) or is_model_failure(error)
                if model_failure:
                    logger.warning("model unavailable: %s", error)
                    code, message = (
                        "model_unavailable",
                        "the language model is unavailable; please try again shortly",
                    )
                else:
                    logger.exception("turn failed")
                    code, message = "internal_error", "the agent failed to answer; please try again"
                span.error(code)
                yield {"type": "error", "code": code, "message": message, "trace_id": span.trace_id}

    # --- the turn -----------------------------------------------------------------------------

    async def _check(self, text: str, stage: str, attributes: dict[str, Any]) -> Verdict:
        guardrail = self.guardrail
        with self.telemetry.guardrail_span(
            attributes, stage, guardrail.guardrail_id, guardrail.version, text
        ) as guard_span:
            verdict = await asyncio.to_thread(self.guardrail.check, text, stage)  # type: ignore[arg-type]
            guard_span.set(
                {
                    "guardrail.action": verdict.action,
                    "guardrail.reasons": list(verdict.reasons),
                    "langfuse.observation.output": verdict.text
                    if verdict.action != "NONE"
                    else verdict.action,
                }
            )
        return verdict

    def _metadata(
        self,
        invocation: Invocation,
        span: TurnSpan,
        state: _TurnState,
        verdict: Verdict,
        usage: dict[str, int],
        started: float,
        answer: str,
    ) -> dict[str, Any]:
        return {
            "session_id": invocation.session_id,
            "trace_id": span.trace_id,
            "model": self.model_name,
            "tools": state.tools,
            "citations": citation_list(state, answer),
            "guardrail": verdict.as_metadata(),
            "usage": usage,
            "latency_ms": round((time.perf_counter() - started) * 1000, 1),
        }

    def _hooks(self, state: _TurnState) -> list[Any]:
        def before(event: BeforeToolCallEvent) -> None:
            use = event.tool_use
            state.starts[use["toolUseId"]] = time.perf_counter()
            state.events.append(
                {
                    "type": "tool_start",
                    "name": bare_tool_name(use["name"]),
                    "arguments": use.get("input") or {},
                }
            )

        def after(event: AfterToolCallEvent) -> None:
            use = event.tool_use
            began = state.starts.pop(use["toolUseId"], None)
            duration = (
                (time.perf_counter() - began) * 1000 if began is not None else (event.duration or 0.0) * 1000
            )
            name = bare_tool_name(use["name"])
            result: dict[str, Any] = dict(event.result or {})
            completed = result.get("status") == "success" and event.exception is None
            if completed:
                error = _result_error(result)  # the tool ran and answered `{"error": ...}`
            else:
                error = str(event.exception) if event.exception else _result_text(result) or "tool failed"
                if any(marker in error.lower() for marker in ("connect", "closed", "timed out", "session")):
                    state.tool_transport_failed = True
            ok = error is None
            record = {
                "name": name,
                "arguments": use.get("input") or {},
                "duration_ms": round(duration, 1),
                "status": "success" if ok else "error",
                "error": error,
            }
            state.tools.append(record)
            if ok and (name in KNOWLEDGE_TOOLS or name in WEB_TOOLS):
                _collect_citations(result, state)
            state.events.append(
                {
                    "type": "tool_end",
                    "name": name,
                    "status": record["status"],
                    "duration_ms": record["duration_ms"],
                    "error": error,
                }
            )

        return [before, after]

    def _flush_point(self, pending: str) -> int:
        """How much of the pending text to check and stream now (0: keep buffering).

        Text is released at the last sentence end once at least `stream_flush_chars` are pending (or
        unconditionally past four times that), so the output guardrail sees whole sentences.
        """
        if len(pending) < self.stream_flush_chars:
            return 0
        ends = [match.end() for match in SENTENCE_END.finditer(pending)]
        if ends:
            return ends[-1]
        return len(pending) if len(pending) >= 4 * self.stream_flush_chars else 0

    def _messages(self, history: list[Turn]) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []
        for turn in history:
            if messages and messages[-1]["role"] == turn.role:
                messages[-1]["content"].append({"text": turn.text})
            else:
                messages.append({"role": turn.role, "content": [{"text": turn.text}]})
        if messages and messages[-1]["role"] == "user":
            messages.pop()
        return messages

    async def _turn(
        self,
        invocation: Invocation,
        caller: Caller,
        span: TurnSpan,
        started: float,
        attributes: dict[str, Any],
    ) -> AsyncIterator[dict[str, Any]]:
        state = _TurnState()
        zero_usage = {"input_tokens": 0, "output_tokens": 0, "total_tokens": 0}

        verdict_in = await self._check(invocation.prompt, "input", attributes)
        if verdict_in.blocked:
            span.set({"langfuse.observation.output": verdict_in.text, "guardrail.action": "BLOCKED"})
            yield {"type": "text", "delta": verdict_in.text}
            yield {
                "type": "done",
                "answer": verdict_in.text,
                "metadata": self._metadata(
                    invocation, span, state, verdict_in, zero_usage, started, verdict_in.text
                ),
            }
            return
        prompt = verdict_in.text

        history, facts, tools = await asyncio.gather(
            asyncio.to_thread(
                self.memory.history, caller.actor_id, invocation.session_id, self.history_turns
            ),
            asyncio.to_thread(self.memory.recall, caller.actor_id, invocation.session_id, prompt),
            asyncio.to_thread(self.tools.tools_for, caller),
        )
        system_prompt = SYSTEM_PROMPT
        if not tools:
            system_prompt += NO_TOOLS_NOTE
        if facts:
            system_prompt += (
                "\n\nWhat you remember about this user from earlier conversations:\n"
                + "\n".join(f"- {fact}" for fact in facts)
            )
        agent = Agent(
            model=self._model_factory(),
            tools=list(tools),
            system_prompt=system_prompt,
            messages=self._messages(history),  # type: ignore[arg-type]
            callback_handler=None,
            hooks=self._hooks(state),
            retry_strategy=None,
            trace_attributes=attributes,
            name=AGENT_NAME,
        )

        answer_parts: list[str] = []
        pending = ""
        usage = dict(zero_usage)
        blocked_output: Verdict | None = None
        anonymized_output = False
        stream = agent.stream_async(prompt)
        try:
            async for event in stream:
                while state.events:
                    yield state.events.pop(0)
                if "data" in event and isinstance(event["data"], str):
                    pending += event["data"]
                    cut = self._flush_point(pending)
                    if cut:
                        chunk = await self._check(pending[:cut], "output", attributes)
                        pending = pending[cut:]
                        if chunk.blocked:
                            blocked_output = chunk
                            break
                        anonymized_output |= chunk.action == "ANONYMIZED"
                        answer_parts.append(chunk.text)
                        yield {"type": "text", "delta": chunk.text}
                elif "result" in event:
                    accumulated = event["result"].metrics.accumulated_usage
                    usage = {
                        "input_tokens": int(accumulated.get("inputTokens", 0)),
                        "output_tokens": int(accumulated.get("outputTokens", 0)),
                        "total_tokens": int(accumulated.get("totalTokens", 0)),
                    }
        finally:
            await stream.aclose()  # type: ignore[attr-defined]  # close Strands' spans in this task's context
            if state.tool_transport_failed:
                await asyncio.to_thread(self.tools.discard, caller)
        while state.events:
            yield state.events.pop(0)

        if blocked_output is None and pending:
            chunk = await self._check(pending, "output", attributes)
            if chunk.blocked:
                blocked_output = chunk
            else:
                anonymized_output |= chunk.action == "ANONYMIZED"
                answer_parts.append(chunk.text)
                yield {"type": "text", "delta": chunk.text}
        answer = "".join(answer_parts).strip()
        if blocked_output is None and answer and len(answer_parts) > 1:
            # The chunks were checked one by one; check the whole answer too (context across chunks).
            final = await self._check(answer, "output", attributes)
            if final.blocked:
                blocked_output = final
            elif final.action == "ANONYMIZED":
                answer, anonymized_output = final.text, True
        if blocked_output is not None:
            verdict = blocked_output
            answer = blocked_output.text
        elif anonymized_output:
            verdict = Verdict("ANONYMIZED", answer, "output")
        elif verdict_in.action == "ANONYMIZED":
            verdict = verdict_in
        else:
            verdict = Verdict("NONE", answer, "output")
        if not answer:
            raise RuntimeError("the model returned an empty answer")

        await asyncio.to_thread(self.memory.record, caller.actor_id, invocation.session_id, prompt, answer)
        metadata = self._metadata(invocation, span, state, verdict, usage, started, answer)
        span.set(
            {
                "langfuse.observation.output": answer,
                "guardrail.action": verdict.action,
                "agent.tools": [t["name"] for t in state.tools],
                "agent.citations": json.dumps(metadata["citations"]),
            }
        )
        yield {"type": "done", "answer": answer, "metadata": metadata}

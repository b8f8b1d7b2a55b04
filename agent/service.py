"""One conversation turn: guardrails, memory, the Strands agent loop over MCP tools, metadata, trace.

`AgentService.stream_turn` yields the contract's stream events (`text`, `tool_start`, `tool_end`,
`heartbeat`, then `done` or `error`); `run_turn` collects them into the JSON answer. The turn runs as
one task bounded by the turn deadline; while it produces nothing a `heartbeat` is sent every
`heartbeat_seconds`. Failures are classified by exception type (`FAILURES`). Heavy imports (Strands,
OpenAI) live here and are loaded by `agent.main` off the request path.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import logging
import re
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import openai
from strands import Agent
from strands.hooks import AfterToolCallEvent, BeforeToolCallEvent
from strands.models.model import Model
from strands.types.exceptions import ContextWindowOverflowException, ModelThrottledException

from agent.citations import mark_cited
from agent.errors import ApiError
from agent.guardrails import Guardrail, Verdict
from agent.identity import Caller
from agent.memory import Memory, Turn
from agent.payload import Invocation
from agent.telemetry import AGENT_NAME, Telemetry, TurnSpan
from agent.tool_client import (
    ToolSource,
    ToolsUnavailable,
    ToolTransportError,
    bare_tool_name,
    exception_chain,
)

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


class TurnTimeout(Exception):
    """The turn passed its deadline; `code` says what it was waiting for."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Failure:
    """How a failed turn is answered: HTTP status (JSON answers), contract code and a safe message."""

    status: int
    code: str
    message: str
    retry_after: int | None = None

    def event(self, trace_id: str) -> dict[str, Any]:
        event: dict[str, Any] = {
            "type": "error",
            "code": self.code,
            "message": self.message,
            "trace_id": trace_id,
        }
        if self.retry_after is not None:
            event["retry_after"] = self.retry_after
        return event

    def api_error(self, trace_id: str = "") -> ApiError:
        error = ApiError(self.status, self.code, self.message, retry_after=self.retry_after)
        error.trace_id = trace_id
        return error


RATE_LIMIT_DEFAULT_RETRY_SECONDS = 5
MAX_RETRY_AFTER_SECONDS = 300
_MODEL_UNAVAILABLE = Failure(
    502, "model_unavailable", "the language model is unavailable; please try again shortly"
)
_MODEL_TIMEOUT = Failure(504, "model_timeout", "the language model did not answer in time; please try again")
_INTERNAL = Failure(500, "internal_error", "the agent failed to answer; please try again")
STATUS_BY_CODE = {
    "model_unavailable": 502,
    "tools_unavailable": 502,
    "model_timeout": 504,
    "turn_timeout": 504,
    "rate_limited": 429,
    "internal_error": 500,
}


def _retry_after(chain: list[BaseException]) -> int:
    """Seconds from the gateway's `Retry-After` (delta-seconds form) on the 429, else a default."""
    for error in chain:
        response = getattr(error, "response", None)
        if isinstance(response, httpx.Response):
            raw = response.headers.get("retry-after", "")
            try:
                return max(1, min(MAX_RETRY_AFTER_SECONDS, int(float(raw))))
            except ValueError:
                continue
    return RATE_LIMIT_DEFAULT_RETRY_SECONDS


def _rate_limited(chain: list[BaseException]) -> Failure:
    seconds = _retry_after(chain)
    return Failure(429, "rate_limited", f"the model's rate limit was reached; retry in {seconds} s", seconds)


def _timed_out(chain: list[BaseException]) -> Failure:
    for error in chain:
        if isinstance(error, TurnTimeout):
            return Failure(STATUS_BY_CODE[error.code], error.code, str(error))
    return _MODEL_TIMEOUT


def _tools_unavailable(chain: list[BaseException]) -> Failure:
    return Failure(
        502, "tools_unavailable", "the agent's tools are unavailable (the tool server refused the session)"
    )


# Checked in order against every exception of the chain (causes, contexts, group members): the first
# row with a match classifies the failure. Types only, never message text.
FAILURES: tuple[tuple[tuple[type[BaseException], ...], Callable[[list[BaseException]], Failure]], ...] = (
    ((TurnTimeout,), _timed_out),
    ((ToolsUnavailable,), _tools_unavailable),
    ((openai.RateLimitError,), _rate_limited),
    ((ModelThrottledException,), _rate_limited),
    ((openai.APITimeoutError, httpx.TimeoutException, TimeoutError), lambda _: _MODEL_TIMEOUT),
    ((ContextWindowOverflowException,), lambda _: _MODEL_UNAVAILABLE),
    ((ModelUnavailable, openai.APIError, httpx.HTTPError), lambda _: _MODEL_UNAVAILABLE),
)


def classify_failure(error: BaseException) -> Failure:
    """The contract answer for a turn that raised `error` (see FAILURES)."""
    chain = list(exception_chain(error))
    for types, answer in FAILURES:
        if any(isinstance(e, types) for e in chain):
            return answer(chain)
    return _INTERNAL


def is_model_failure(error: BaseException) -> bool:
    """True when the failure is the model endpoint's (unavailable, throttled or timed out)."""
    return classify_failure(error).code in ("model_unavailable", "rate_limited", "model_timeout")


@dataclass
class ModelRecord:
    """What the LLM gateway said about the model calls of one turn (LiteLLM response headers)."""

    requested: str
    answered: str | None = None
    fallback: bool = False


current_model: contextvars.ContextVar[ModelRecord | None] = contextvars.ContextVar(
    "agent_model_record", default=None
)
MODEL_GROUP_HEADER = "x-litellm-model-group"
ATTEMPTED_FALLBACKS_HEADER = "x-litellm-attempted-fallbacks"


async def record_model_response(response: httpx.Response) -> None:
    """httpx response hook of the gateway client: note which model group answered and whether LiteLLM
    fell back (litellm 1.102.4 proxy: `x-litellm-model-group` is the group that served the call and
    `x-litellm-attempted-fallbacks` > 0 when a fallback served it; proxy/proxy_server.py
    `_get_streaming_fallback_metadata`)."""
    record = current_model.get()
    if record is None or response.status_code >= 400:
        return
    group = response.headers.get(MODEL_GROUP_HEADER)
    if group:
        record.answered = group
    try:
        attempted = int(response.headers.get(ATTEMPTED_FALLBACKS_HEADER, "0") or "0")
    except ValueError:
        attempted = 0
    record.fallback = record.fallback or attempted > 0 or bool(group and group != record.requested)


@dataclass
class _TurnState:
    tools: list[dict[str, Any]] = field(default_factory=list)
    citations: dict[tuple[str, int | None], dict[str, Any]] = field(default_factory=dict)
    passages: dict[tuple[str, int | None], dict[str, float]] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    starts: dict[str, float] = field(default_factory=dict)
    running: dict[str, str] = field(default_factory=dict)
    tool_transport_failed: bool = False
    trace_id: str = ""
    sink: Callable[[dict[str, Any]], None] | None = None  # tool events go straight out (not after the tool)

    def emit(self, event: dict[str, Any]) -> None:
        if self.sink is not None:
            self.sink(event)
        else:
            self.events.append(event)


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
        turn_deadline_seconds: float = 45.0,
        heartbeat_seconds: float = 10.0,
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
        self.turn_deadline_seconds = turn_deadline_seconds
        self.heartbeat_seconds = heartbeat_seconds

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
        """The JSON answer of a turn; raises ApiError with the failure's status (see FAILURES)."""
        answer: dict[str, Any] | None = None
        failure: dict[str, Any] | None = None
        async for event in self.stream_turn(invocation, caller):
            if event["type"] == "done":
                answer = {"answer": event["answer"], "metadata": event["metadata"]}
            elif event["type"] == "error":
                failure = event
        if failure is not None:
            error = ApiError(
                STATUS_BY_CODE.get(failure["code"], 500),
                failure["code"],
                failure["message"],
                retry_after=failure.get("retry_after"),
            )
            error.trace_id = failure.get("trace_id", "")
            raise error
        if answer is None:
            raise ApiError(500, "internal_error", "the turn ended without an answer")
        return answer

    async def stream_turn(self, invocation: Invocation, caller: Caller) -> AsyncIterator[dict[str, Any]]:
        """Contract stream events for one turn; always ends with `done` or `error`.

        The turn runs as one task (its spans open and close in that task's context) that feeds a queue;
        this generator relays the events, sends a `heartbeat` after `heartbeat_seconds` without one,
        and at the deadline cancels the task (closing the model's HTTP stream) and ends with
        `model_timeout` (or `turn_timeout` while a tool ran). Closing this generator early (client
        gone) cancels the task too.
        """
        started = time.perf_counter()
        state = _TurnState()
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        task = asyncio.create_task(self._produce(invocation, caller, state, started, queue))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.turn_deadline_seconds
        getter: asyncio.Future[dict[str, Any] | None] | None = None
        try:
            while True:
                if getter is None:
                    getter = asyncio.ensure_future(queue.get())
                remaining = deadline - loop.time()
                if remaining > 0:
                    await asyncio.wait({getter}, timeout=min(self.heartbeat_seconds, remaining))
                if getter.done():
                    event, getter = getter.result(), None
                    if event is None:
                        return
                    yield event
                    continue
                if loop.time() < deadline:
                    yield {
                        "type": "heartbeat",
                        "elapsed_ms": round((time.perf_counter() - started) * 1000, 1),
                    }
                    continue
                timeout = self._timeout(state)
                task.cancel(timeout.code)
                await _settle(task)
                yield Failure(STATUS_BY_CODE[timeout.code], timeout.code, str(timeout)).event(state.trace_id)
                return
        finally:
            if getter is not None:
                getter.cancel()
            if not task.done():
                task.cancel("closed")
                await _settle(task)

    def _timeout(self, state: _TurnState) -> TurnTimeout:
        limit = f"{self.turn_deadline_seconds:g} s"
        if state.running:
            tools = ", ".join(sorted(set(state.running.values())))
            return TurnTimeout(
                "turn_timeout", f"the turn passed its {limit} deadline while the tool {tools} ran"
            )
        return TurnTimeout(
            "model_timeout", f"the language model did not answer within the {limit} turn deadline"
        )

    async def _produce(
        self,
        invocation: Invocation,
        caller: Caller,
        state: _TurnState,
        started: float,
        queue: asyncio.Queue[dict[str, Any] | None],
    ) -> None:
        record = ModelRecord(requested=self.model_name)
        state.sink = queue.put_nowait
        current_model.set(record)  # this task's own context: the gateway client's response hook reads it
        attributes = Telemetry.trace_attributes(
            invocation.session_id, caller.actor_id, self.environment, [AGENT_NAME, self.environment]
        )
        try:
            with self.telemetry.turn(attributes, invocation.prompt) as span:
                state.trace_id = span.trace_id
                try:
                    async for event in self._turn(
                        invocation, caller, span, started, attributes, state, record
                    ):
                        await queue.put(event)
                except asyncio.CancelledError as cancelled:
                    reason = cancelled.args[0] if cancelled.args else "cancelled"
                    span.error(str(reason))
                    logger.warning("turn cancelled (%s) after %.1f s", reason, time.perf_counter() - started)
                    raise
                except Exception as error:
                    failure = classify_failure(error)
                    if failure.code == "internal_error":
                        logger.exception("turn failed")
                    else:
                        logger.warning("turn failed (%s): %s: %s", failure.code, type(error).__name__, error)
                    span.error(failure.code)
                    await queue.put(failure.event(span.trace_id))
        finally:
            queue.put_nowait(None)

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
            state.running[use["toolUseId"]] = bare_tool_name(use["name"])
            state.emit(
                {
                    "type": "tool_start",
                    "name": bare_tool_name(use["name"]),
                    "arguments": use.get("input") or {},
                }
            )

        def after(event: AfterToolCallEvent) -> None:
            use = event.tool_use
            began = state.starts.pop(use["toolUseId"], None)
            state.running.pop(use["toolUseId"], None)
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
                if isinstance(event.exception, ToolTransportError):
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
            state.emit(
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
        state: _TurnState,
        record: ModelRecord,
    ) -> AsyncIterator[dict[str, Any]]:
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
        metadata["model"] = record.answered or self.model_name
        span.set(
            {
                "gen_ai.response.model": metadata["model"],
                "agent.model.fallback": record.fallback,
                "langfuse.observation.output": answer,
                "guardrail.action": verdict.action,
                "agent.tools": [t["name"] for t in state.tools],
                "agent.citations": json.dumps(metadata["citations"]),
            }
        )
        yield {"type": "done", "answer": answer, "metadata": metadata}


async def _settle(task: asyncio.Task[Any]) -> None:
    """Wait for a cancelled task to finish its clean-up (it never raises here)."""
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task

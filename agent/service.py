"""One conversation turn: input guardrail, memory, the Strands agent loop over MCP tools, output
guardrail, memory write, metadata, trace.

`AgentService.stream_turn` yields the contract's stream events (`text`, `tool_start`, `tool_end`,
`heartbeat`, then `done` or `error`); `run_turn` collects them into the JSON answer. The turn runs as
one task bounded by the turn deadline; while it produces nothing a `heartbeat` is sent every
`heartbeat_seconds`. The units a turn is made of live in their own modules:

- `agent.prompting`: the system prompt (rules, tool availability, recalled facts) and the replayed
  conversation;
- `agent.output_guard`: the output guardrail over the streamed answer (chunks, then the whole answer);
- `agent.tool_events`: tool events, `metadata.tools` and citations from Strands' tool hooks;
- `agent.failures`: exception type -> contract error (`FAILURES`), never message text.

Heavy imports (Strands, OpenAI) live here and are loaded by `agent.main` off the request path.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
from strands import Agent
from strands.models.model import Model

from agent.errors import ApiError, EmptyAnswer, TurnTimeout
from agent.failures import classify_failure, error_from_event
from agent.guardrails import Guardrail, Verdict
from agent.identity import Caller, Teams
from agent.memory import Memory
from agent.output_guard import OutputGuard
from agent.payload import Invocation
from agent.prompting import conversation, system_prompt
from agent.telemetry import AGENT_NAME, Telemetry, TurnSpan
from agent.tool_client import ToolSource
from agent.tool_events import TurnState, citation_list, tool_hooks

__all__ = ["AgentService", "ModelRecord", "classify_failure", "record_model_response"]

logger = logging.getLogger(__name__)


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
        teams: Teams | None = None,
    ) -> None:
        self._model_factory = model_factory
        self.teams = teams or Teams()
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
            raise error_from_event(failure)
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
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        state = TurnState(sink=queue.put_nowait)
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
                yield classify_failure(timeout).event(state.trace_id)
                return
        finally:
            if getter is not None:
                getter.cancel()
            if not task.done():
                task.cancel("closed")
                await _settle(task)

    def _timeout(self, state: TurnState) -> TurnTimeout:
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
        state: TurnState,
        started: float,
        queue: asyncio.Queue[dict[str, Any] | None],
    ) -> None:
        """Run the turn in this task, feeding its events to `queue`; a failure becomes the final `error`
        event (see `agent.failures`), and `None` always ends the queue."""
        record = ModelRecord(requested=self.model_name)
        current_model.set(record)  # this task's own context: the gateway client's response hook reads it
        team = self.teams.team_of(caller)
        attributes = Telemetry.trace_attributes(
            invocation.session_id,
            caller.actor_id,
            self.environment,
            [AGENT_NAME, self.environment],
            team=team,
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
                    await queue.put(_failure_event(error, span))
        finally:
            queue.put_nowait(None)

    # --- the turn -----------------------------------------------------------------------------

    async def _turn(
        self,
        invocation: Invocation,
        caller: Caller,
        span: TurnSpan,
        started: float,
        attributes: dict[str, Any],
        state: TurnState,
        record: ModelRecord,
    ) -> AsyncIterator[dict[str, Any]]:
        """Input guardrail -> agent with context -> guarded answer stream -> memory -> `done`."""
        verdict_in = await self._check(invocation.prompt, "input", attributes)
        if verdict_in.blocked:
            span.set({"langfuse.observation.output": verdict_in.text, "guardrail.action": "BLOCKED"})
            yield {"type": "text", "delta": verdict_in.text}
            metadata = self._metadata(invocation, span, state, verdict_in, started, self.model_name)
            yield {"type": "done", "answer": verdict_in.text, "metadata": metadata}
            return
        prompt = verdict_in.text
        agent = await self._agent(invocation, caller, prompt, attributes, state)
        guard = OutputGuard(lambda text: self._check(text, "output", attributes), self.stream_flush_chars)
        async for delta in self._guarded_text(agent, prompt, guard, state, caller):
            yield {"type": "text", "delta": delta}
        rest = await guard.finish()
        if rest:
            yield {"type": "text", "delta": rest}
        await guard.check_whole()
        answer, verdict = guard.outcome(verdict_in)
        if not answer:
            raise EmptyAnswer("the model returned an empty answer")
        await asyncio.to_thread(self.memory.record, caller.actor_id, invocation.session_id, prompt, answer)
        metadata = self._metadata(
            invocation, span, state, verdict, started, record.answered or self.model_name, answer
        )
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

    async def _agent(
        self,
        invocation: Invocation,
        caller: Caller,
        prompt: str,
        attributes: dict[str, Any],
        state: TurnState,
    ) -> Agent:
        """A Strands agent for this turn: history, recalled facts and tools read concurrently."""
        history, facts, tools = await asyncio.gather(
            asyncio.to_thread(
                self.memory.history, caller.actor_id, invocation.session_id, self.history_turns
            ),
            asyncio.to_thread(self.memory.recall, caller.actor_id, invocation.session_id, prompt),
            asyncio.to_thread(self.tools.tools_for, caller),
        )
        return Agent(
            model=self._model(caller),
            tools=list(tools),
            system_prompt=system_prompt(tools_available=bool(tools), facts=facts),
            messages=conversation(history),  # type: ignore[arg-type]
            callback_handler=None,
            hooks=tool_hooks(state),
            retry_strategy=None,
            trace_attributes=attributes,
            name=AGENT_NAME,
        )

    def _model(self, caller: Caller) -> Any:
        """The turn's model: billed to the caller's team, with the caller's actor id as the OpenAI
        `user` (gateway factories: `for_caller`); a plain factory is called without arguments."""
        for_caller = getattr(self._model_factory, "for_caller", None)
        if callable(for_caller):
            return for_caller(self.teams.team_of(caller), caller.actor_id)
        return self._model_factory()

    async def _guarded_text(
        self, agent: Agent, prompt: str, guard: OutputGuard, state: TurnState, caller: Caller
    ) -> AsyncIterator[str]:
        """The model's text as the output guard releases it; a blocked chunk stops the model. Strands'
        stream is closed in this task (its spans end in this context) and a session whose transport
        failed is dropped."""
        stream = agent.stream_async(prompt)
        try:
            async for event in stream:
                if isinstance(event.get("data"), str):
                    released = await guard.feed(event["data"])
                    if guard.blocked is not None:
                        break
                    if released:
                        yield released
                elif "result" in event:
                    state.usage = _usage(event["result"])
        finally:
            await stream.aclose()  # type: ignore[attr-defined]
            if state.tool_transport_failed:
                await asyncio.to_thread(self.tools.discard, caller)

    async def _check(self, text: str, stage: str, attributes: dict[str, Any]) -> Verdict:
        """One guardrail check, in its own `guardrail <stage>` span, off the event loop."""
        guardrail = self.guardrail
        with self.telemetry.guardrail_span(
            attributes, stage, guardrail.guardrail_id, guardrail.version, text
        ) as guard_span:
            verdict = await asyncio.to_thread(guardrail.check, text, stage)  # type: ignore[arg-type]
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
        state: TurnState,
        verdict: Verdict,
        started: float,
        model: str,
        answer: str = "",
    ) -> dict[str, Any]:
        return {
            "session_id": invocation.session_id,
            "trace_id": span.trace_id,
            "model": model,
            "tools": state.tools,
            "citations": citation_list(state, answer),
            "guardrail": verdict.as_metadata(),
            "usage": state.usage,
            "latency_ms": round((time.perf_counter() - started) * 1000, 1),
        }


def _usage(result: Any) -> dict[str, int]:
    """Strands' token usage accumulated over all model calls of the turn (`AgentResult.metrics`)."""
    accumulated = result.metrics.accumulated_usage
    return {
        "input_tokens": int(accumulated.get("inputTokens", 0)),
        "output_tokens": int(accumulated.get("outputTokens", 0)),
        "total_tokens": int(accumulated.get("totalTokens", 0)),
    }


def _failure_event(error: Exception, span: TurnSpan) -> dict[str, Any]:
    """The final `error` event of a failed turn; an unclassified failure is logged with its trace."""
    failure = classify_failure(error)
    if failure.code == "internal_error":
        logger.error("turn failed", exc_info=error)
    else:
        logger.warning("turn failed (%s): %s: %s", failure.code, type(error).__name__, error)
    span.error(failure.code)
    return failure.event(span.trace_id)


async def _settle(task: asyncio.Task[Any]) -> None:
    """Wait for a cancelled task to finish its clean-up (it never raises here)."""
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task

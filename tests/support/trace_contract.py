"""Assert that the spans of one agent turn meet the tracing contract (docs/tracing-contract.md).

    spans = recorder.wait_for_spans(name="invoke_agent support-agent")
    turn = assert_turn_trace(
        recorder.spans,
        trace_id=answer["metadata"]["trace_id"],
        session_id=session_id,
        user_id="local-user",
        environment="dev",
        model="claude-sonnet",
        tools=["search_knowledge_base"],
        retrieval=True,
        guardrail_stages=("input", "output"),
    )
    assert turn.generations[0].attr("gen_ai.usage.cost") > 0

Every failed rule is collected and reported at once, so one run shows everything that is missing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from local_stack.otlp_recorder import RecordedSpan

TRACE_NAME = "agent-turn"
OBSERVATION_TYPE = "langfuse.observation.type"
TRACE_ATTRIBUTES = ("session.id", "user.id", "langfuse.environment")
GUARDRAIL_ACTIONS = ("NONE", "BLOCKED", "ANONYMIZED")
ENVIRONMENT_PATTERN = re.compile(r"^(?!langfuse)[a-z0-9_-]{1,40}$")


@dataclass(frozen=True)
class TurnTrace:
    """The spans of one turn, grouped by role."""

    trace_id: str
    root: RecordedSpan
    spans: tuple[RecordedSpan, ...]
    generations: tuple[RecordedSpan, ...]
    tools: tuple[RecordedSpan, ...]
    retrievals: tuple[RecordedSpan, ...]
    guardrails: tuple[RecordedSpan, ...]

    @property
    def tool_names(self) -> list[str]:
        return [str(span.attr("gen_ai.tool.name")) for span in self.tools]

    @property
    def total_cost(self) -> float:
        return sum(float(span.attr("gen_ai.usage.cost", 0.0)) for span in self.generations)


class TraceContractError(AssertionError):
    """The trace breaks one or more contract rules; the message lists all of them."""


def retrieval_documents(span: RecordedSpan) -> list[dict[str, Any]]:
    """The documents a retrieval span returned, from `gen_ai.tool.call.result`.

    Accepts the Strands shape (a JSON list of content blocks whose `text` or `json` holds the knowledge
    tool's answer `{"query", "results": [...], "count"}`) and a bare answer object or result list.
    """
    value = span.json_attr("gen_ai.tool.call.result")
    for candidate in _payloads(value):
        if isinstance(candidate, dict) and isinstance(candidate.get("results"), list):
            return [d for d in candidate["results"] if isinstance(d, dict)]
        if (
            isinstance(candidate, list)
            and candidate
            and all(isinstance(d, dict) and "score" in d for d in candidate)
        ):
            return list(candidate)
    return []


def _payloads(value: Any) -> Iterable[Any]:
    yield value
    if isinstance(value, list):
        for block in value:
            if not isinstance(block, dict):
                continue
            if "json" in block:
                yield block["json"]
            if isinstance(block.get("text"), str):
                try:
                    yield json.loads(block["text"])
                except json.JSONDecodeError:
                    continue


def assert_turn_trace(
    spans: Sequence[RecordedSpan],
    *,
    session_id: str,
    user_id: str,
    trace_id: str | None = None,
    environment: str | None = None,
    tags: Iterable[str] = (),
    model: str | None = None,
    tools: Iterable[str] = (),
    retrieval: bool = False,
    guardrail_stages: Iterable[str] = (),
    blocked_stage: str | None = None,
    require_cost: bool = True,
    trace_name: str = TRACE_NAME,
) -> TurnTrace:
    """Check one turn's trace against the contract and return its spans grouped by role.

    Args:
        spans: spans received (e.g. `recorder.spans`); spans of other traces are ignored.
        session_id: expected `session.id` on every span.
        user_id: expected `user.id` on every span (the token's `sub`, or the local user).
        trace_id: the turn's trace id (32 hex); when None the recorded spans must hold exactly one trace.
        environment: expected `langfuse.environment` on every span (the config profile).
        tags: tags that `langfuse.trace.tags` on the root must include.
        model: the catalog alias every generation must name in `gen_ai.request.model`.
        tools: tool names that must each have an `execute_tool <name>` span, in this order.
        retrieval: whether at least one retriever span with scored documents is required.
        guardrail_stages: stages (`input`, `output`) that must each have a guardrail span.
        blocked_stage: the stage whose guardrail blocked the turn (`input`: no generation may exist).
        require_cost: whether every generation must carry `gen_ai.usage.cost`.
        trace_name: expected `langfuse.trace.name` on the root span.

    Raises:
        TraceContractError: listing every rule the trace breaks.
    """
    problems: list[str] = []
    trace_spans = _select_trace(spans, trace_id, problems)
    if not trace_spans:
        raise TraceContractError("\n".join(problems))
    trace_id = trace_spans[0].trace_id

    ids = [s.span_id for s in trace_spans]
    if len(ids) != len(set(ids)):
        problems.append("duplicate span ids in the trace: a second exporter (ADOT?) sent the same spans")
    roots = [s for s in trace_spans if s.is_root]
    if len(roots) != 1:
        problems.append(f"expected exactly one root span, got {[s.name for s in roots]}")
    root = roots[0] if roots else trace_spans[0]
    known = set(ids)
    orphans = [s.name for s in trace_spans if s.parent_span_id is not None and s.parent_span_id not in known]
    if orphans:
        problems.append(f"spans whose parent is not in the trace (lost or split trace): {orphans}")

    if root.attr("langfuse.trace.name") != trace_name:
        problems.append(
            f"root span: langfuse.trace.name is {root.attr('langfuse.trace.name')!r}, want {trace_name!r}"
        )
    root_tags = root.attr("langfuse.trace.tags")
    if not isinstance(root_tags, list) or not all(isinstance(t, str) for t in root_tags):
        problems.append(f"root span: langfuse.trace.tags must be a list of strings, got {root_tags!r}")
    else:
        missing_tags = sorted(set(tags) - set(root_tags))
        if missing_tags:
            problems.append(f"root span: langfuse.trace.tags {root_tags} lacks {missing_tags}")

    expected = {"session.id": session_id, "user.id": user_id}
    if environment is not None:
        expected["langfuse.environment"] = environment
    for span in trace_spans:
        for key, want in expected.items():
            if span.attr(key) != want:
                problems.append(f"span {span.name!r}: {key} is {span.attr(key)!r}, want {want!r}")
        env = span.attr("langfuse.environment")
        if env is None or not ENVIRONMENT_PATTERN.match(str(env)):
            problems.append(
                f"span {span.name!r}: langfuse.environment {env!r} is not a valid environment name"
            )
        if span.attr(OBSERVATION_TYPE) is None:
            problems.append(f"span {span.name!r}: no {OBSERVATION_TYPE}")

    if root.attr(OBSERVATION_TYPE) not in (None, "agent", "span"):
        problems.append(
            f"root span: {OBSERVATION_TYPE} must be 'agent' (got {root.attr(OBSERVATION_TYPE)!r})"
        )

    generations = tuple(s for s in trace_spans if s.attr("gen_ai.operation.name") == "chat")
    _check_generations(generations, model, require_cost, problems)
    tool_spans = tuple(s for s in trace_spans if s.attr("gen_ai.operation.name") == "execute_tool")
    _check_tools(tool_spans, list(tools), problems)
    retrievals = tuple(s for s in trace_spans if s.attr(OBSERVATION_TYPE) == "retriever")
    if retrieval:
        _check_retrievals(retrievals, problems)
    guardrails = tuple(s for s in trace_spans if s.attr(OBSERVATION_TYPE) == "guardrail")
    _check_guardrails(guardrails, list(guardrail_stages), blocked_stage, generations, problems)

    if problems:
        raise TraceContractError(
            f"trace {trace_id} breaks the tracing contract:\n  - " + "\n  - ".join(problems)
        )
    return TurnTrace(
        trace_id=trace_id,
        root=root,
        spans=tuple(trace_spans),
        generations=generations,
        tools=tool_spans,
        retrievals=retrievals,
        guardrails=guardrails,
    )


def _select_trace(
    spans: Sequence[RecordedSpan], trace_id: str | None, problems: list[str]
) -> list[RecordedSpan]:
    if trace_id is not None:
        if not re.fullmatch(r"[0-9a-f]{32}", trace_id):
            problems.append(f"trace id {trace_id!r} is not 32 lowercase hex characters")
            return []
        selected = [s for s in spans if s.trace_id == trace_id]
        if not selected:
            problems.append(
                f"no span of trace {trace_id}; traces received: {sorted({s.trace_id for s in spans})}"
            )
        return selected
    trace_ids = sorted({s.trace_id for s in spans})
    if len(trace_ids) != 1:
        problems.append(f"expected the spans of one trace, got {len(trace_ids)} traces; pass trace_id")
        return []
    return list(spans)


def _check_generations(
    generations: Sequence[RecordedSpan], model: str | None, require_cost: bool, problems: list[str]
) -> None:
    for span in generations:
        where = f"generation {span.name!r} ({span.span_id})"
        if span.attr(OBSERVATION_TYPE) != "generation":
            problems.append(f"{where}: {OBSERVATION_TYPE} must be 'generation'")
        if model is not None and span.attr("gen_ai.request.model") != model:
            problems.append(
                f"{where}: gen_ai.request.model is {span.attr('gen_ai.request.model')!r}, want {model!r}"
            )
        if not span.attr("gen_ai.request.model"):
            problems.append(f"{where}: no gen_ai.request.model")
        for key in ("gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens", "gen_ai.usage.total_tokens"):
            value = span.attr(key)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                problems.append(f"{where}: {key} must be a non-negative integer, got {value!r}")
        if require_cost:
            cost = span.attr("gen_ai.usage.cost")
            if not isinstance(cost, (int, float)) or isinstance(cost, bool) or cost < 0:
                problems.append(
                    f"{where}: gen_ai.usage.cost must be a non-negative number (USD), got {cost!r}"
                )
        if span.status == "ERROR" and not span.status_message:
            problems.append(f"{where}: failed without a status message")


def _check_tools(tool_spans: Sequence[RecordedSpan], tools: list[str], problems: list[str]) -> None:
    names = [
        str(s.attr("gen_ai.tool.name")) for s in sorted(tool_spans, key=lambda s: s.start_time_unix_nano)
    ]
    position = 0
    for wanted in tools:
        try:
            position = names.index(wanted, position) + 1
        except ValueError:
            problems.append(f"no tool span for {wanted!r} (in order {tools}); tool spans: {names}")
    for span in tool_spans:
        where = f"tool span {span.name!r}"
        if span.name != f"execute_tool {span.attr('gen_ai.tool.name')}":
            problems.append(f"{where}: name must be 'execute_tool <gen_ai.tool.name>'")
        if span.attr(OBSERVATION_TYPE) not in ("tool", "retriever"):
            problems.append(f"{where}: {OBSERVATION_TYPE} must be 'tool' or 'retriever'")
        if not span.attr("gen_ai.tool.call.id"):
            problems.append(f"{where}: no gen_ai.tool.call.id")
        arguments = span.json_attr("gen_ai.tool.call.arguments")
        if not isinstance(arguments, dict):
            problems.append(f"{where}: gen_ai.tool.call.arguments must be a JSON object, got {arguments!r}")
        elif "_actor" in arguments:
            problems.append(f"{where}: arguments carry '_actor' (identity must never come from the model)")
        status = span.attr("gen_ai.tool.status")
        if status not in ("success", "error"):
            problems.append(f"{where}: gen_ai.tool.status must be 'success' or 'error', got {status!r}")
        if status == "success" and span.attr("gen_ai.tool.call.result") is None:
            problems.append(f"{where}: a successful call needs gen_ai.tool.call.result")
        if status == "error" and (span.status != "ERROR" or not span.status_message):
            problems.append(f"{where}: a failed call needs span status ERROR with the tool's message")


def _check_retrievals(retrievals: Sequence[RecordedSpan], problems: list[str]) -> None:
    if not retrievals:
        problems.append(f"no retrieval span ({OBSERVATION_TYPE}='retriever')")
    for span in retrievals:
        documents = retrieval_documents(span)
        if span.attr("gen_ai.tool.status") == "error":
            continue
        if not documents:
            problems.append(f"retrieval span {span.name!r}: gen_ai.tool.call.result holds no documents")
        for doc in documents:
            if not isinstance(doc.get("score"), (int, float)) or not (doc.get("uri") or doc.get("title")):
                problems.append(f"retrieval span {span.name!r}: document needs score and uri/title: {doc}")
                break


def _check_guardrails(
    guardrails: Sequence[RecordedSpan],
    stages: list[str],
    blocked_stage: str | None,
    generations: Sequence[RecordedSpan],
    problems: list[str],
) -> None:
    by_stage = {str(s.attr("guardrail.stage")): s for s in guardrails}
    for stage in stages:
        if stage not in by_stage:
            problems.append(f"no guardrail span for stage {stage!r}; stages seen: {sorted(by_stage)}")
    for span in guardrails:
        where = f"guardrail span {span.name!r}"
        stage = span.attr("guardrail.stage")
        if stage not in ("input", "output"):
            problems.append(f"{where}: guardrail.stage must be 'input' or 'output', got {stage!r}")
        elif span.name != f"guardrail {stage}":
            problems.append(f"{where}: name must be 'guardrail {stage}'")
        action = span.attr("guardrail.action")
        if action not in GUARDRAIL_ACTIONS:
            problems.append(f"{where}: guardrail.action must be one of {GUARDRAIL_ACTIONS}, got {action!r}")
        if span.status == "ERROR" and action in GUARDRAIL_ACTIONS:
            problems.append(f"{where}: a policy decision is not an error; status must not be ERROR")
    if blocked_stage is not None:
        blocked = by_stage.get(blocked_stage)
        if blocked is None or blocked.attr("guardrail.action") != "BLOCKED":
            problems.append(f"guardrail stage {blocked_stage!r} should report guardrail.action 'BLOCKED'")
        if blocked_stage == "input" and generations:
            problems.append(
                "input was blocked but the trace has generations: a blocked input must not reach the model"
            )

"""Online evaluation: score a sample of recent production traces from Langfuse with the same evaluators.

Production traces have no golden expectations, so the reference-free evaluators run: faithfulness against
the passages the knowledge tool returned in that trace, helpfulness, latency, tokens and cost. Scores go
back onto the production traces (deterministic ids: a re-run updates instead of duplicating).
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from eval.agent import AgentReply, parse_reply
from eval.judge import Judge, Passage
from eval.langfuse_io import (
    _field,
    _maybe_json,
    attach_turn_scores,
    knowledge_passages,
    passages_from_output,
    recent_root_observations,
    wait_for_trace,
)
from eval.results import CaseResult, Repetition, TurnResult
from eval.scores import Score

if TYPE_CHECKING:
    from langfuse import Langfuse

logger = logging.getLogger(__name__)

AGENT_TRACE_NAME = "agent-turn"
EXCLUDED_ENVIRONMENTS = frozenset({"sdk-experiment", "evaluation"})


def sample_traces(
    client: Langfuse,
    *,
    since: datetime,
    size: int,
    seed: int | None = None,
    environment: str | None = None,
    trace_name: str = AGENT_TRACE_NAME,
) -> list[str]:
    """Trace ids of a uniform random sample of the agent turns that started after `since`."""
    candidates: list[str] = []
    for root in recent_root_observations(client, since=since, environment=environment):
        env = _field(root, "environment")
        name = _field(root, "trace_name")
        if env in EXCLUDED_ENVIRONMENTS or (name is not None and name != trace_name):
            continue
        trace_id = str(_field(root, "trace_id") or "")
        if trace_id and trace_id not in candidates:
            candidates.append(trace_id)
    rng = random.Random(seed)  # noqa: S311 - sampling, not cryptography
    return candidates if len(candidates) <= size else rng.sample(candidates, size)


def _text(value: Any, keys: Sequence[str]) -> str:
    value = _maybe_json(value)
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        for key in keys:
            if isinstance(value.get(key), str):
                return str(value[key])
    if isinstance(value, list):  # chat messages: the last user / assistant content
        for message in reversed(value):
            if isinstance(message, dict) and isinstance(message.get("content"), str):
                return str(message["content"])
    return "" if value is None else json.dumps(value)[:4000]


def _type(observation: Any) -> str:
    return str(_field(observation, "type") or "").upper()


def reconstruct_turn(observations: Sequence[Any]) -> tuple[str, AgentReply, list[Passage]]:
    """Question, reply (as the agent would have returned it) and retrieved passages, read from a trace."""
    roots = [
        o for o in observations if _field(o, "is_root_observation") or not _field(o, "parent_observation_id")
    ]
    if not roots:
        raise ValueError("the trace has no root observation")
    root = roots[0]
    question = _text(_field(root, "input"), ("prompt", "input", "question"))
    answer = _text(_field(root, "output"), ("answer", "output", "text"))
    tools = []
    for observation in observations:
        name = str(_field(observation, "name") or "")
        if _type(observation) == "TOOL" or name.startswith("execute_tool"):
            arguments = _maybe_json(_field(observation, "input"))
            tools.append(
                {
                    "name": name.removeprefix("execute_tool").strip() or name,
                    "arguments": arguments if isinstance(arguments, dict) else {},
                    "status": "error" if _field(observation, "level") == "ERROR" else "success",
                    "error": _field(observation, "status_message")
                    if _field(observation, "level") == "ERROR"
                    else None,
                }
            )
    blocked = any(
        _type(o) == "GUARDRAIL"
        and "BLOCKED" in json.dumps([_field(o, "output"), _field(o, "metadata")], default=str)
        for o in observations
    )
    generations = [o for o in observations if _type(o) == "GENERATION"]
    input_tokens = output_tokens = 0
    for generation in generations:
        usage = _field(generation, "usage_details") or {}
        input_tokens += int(usage.get("input", 0) or 0)
        output_tokens += int(usage.get("output", 0) or 0)
    latency_s = _field(root, "latency")
    passages = knowledge_passages(observations)
    for observation in observations:
        if _type(observation) == "RETRIEVER" and not passages:
            passages.extend(passages_from_output(_field(observation, "output")))
    reply = parse_reply(
        {
            "answer": answer,
            "metadata": {
                "trace_id": str(_field(root, "trace_id") or ""),
                "session_id": str(_field(root, "session_id") or ""),
                "model": str(_field(generations[0], "model") or "") if generations else "",
                "tools": tools,
                "guardrail": {"action": "BLOCKED" if blocked else "NONE"},
                "usage": {
                    "input_tokens": input_tokens,
                    "output_tokens": output_tokens,
                    "total_tokens": input_tokens + output_tokens,
                },
                "latency_ms": float(latency_s) * 1000 if isinstance(latency_s, int | float) else None,
            },
        }
    )
    return question, reply, passages


def trace_cost(observations: Sequence[Any]) -> float | None:
    costs = [_field(o, "total_cost") for o in observations if _type(o) == "GENERATION"]
    known = [float(c) for c in costs if isinstance(c, int | float)]
    return round(sum(known), 6) if known else None


def score_trace(
    trace_id: str, observations: Sequence[Any], judge: Judge | None, pass_threshold: float
) -> CaseResult:
    """Score one production trace with the reference-free evaluators."""
    question, reply, passages = reconstruct_turn(observations)
    turn = TurnResult(index=0, input=question, reply=reply)
    scores: list[Score] = []
    latency_ms = reply.metadata.latency_ms
    if latency_ms is not None:
        scores.append(Score(name="latency_ms", value=round(latency_ms, 1), reason="trace latency"))
    usage = reply.metadata.usage
    scores.append(
        Score(
            name="total_tokens",
            value=float(usage.total_tokens),
            reason=f"in {usage.input_tokens}, out {usage.output_tokens}",
        )
    )
    cost = trace_cost(observations)
    if cost is not None:
        scores.append(Score(name="cost_usd", value=cost, reason="Langfuse-computed generation cost"))
    if judge is not None and reply.metadata.guardrail.action != "BLOCKED" and reply.answer:
        if passages:
            turn.passage_source = "langfuse"
            scores.append(
                judge.score("faithfulness", question=question, answer=reply.answer, passages=passages)
            )
        scores.append(judge.score("helpfulness", question=question, answer=reply.answer))
    turn.scores = scores
    failures = [
        f"turn 1: {s.name} {s.value:.2f} < {pass_threshold}"
        for s in scores
        if s.kind == "judge" and s.value is not None and s.value < pass_threshold
    ]
    rep = Repetition(
        number=1, session_id=reply.metadata.session_id, turns=[turn], passed=not failures, failures=failures
    )
    return CaseResult(case_id=trace_id, category="online", turns=1, repetitions=[rep])


def run_online(
    client: Langfuse,
    judge: Judge | None,
    *,
    since_hours: float,
    sample_size: int,
    run_name: str,
    pass_threshold: float = 0.75,
    seed: int | None = None,
    environment: str | None = None,
    trace_timeout: float = 10.0,
    on_trace_done: Callable[[CaseResult], None] | None = None,
) -> tuple[list[CaseResult], list[str]]:
    """Sample, score and annotate recent traces. Returns (results, notes about skipped traces)."""
    since = datetime.now(UTC) - timedelta(hours=since_hours)
    trace_ids = sample_traces(client, since=since, size=sample_size, seed=seed, environment=environment)
    results: list[CaseResult] = []
    notes: list[str] = []
    for trace_id in trace_ids:
        observations = wait_for_trace(client, trace_id, timeout=trace_timeout)
        if observations is None:
            notes.append(f"trace {trace_id}: not readable within {trace_timeout}s; skipped")
            continue
        try:
            result = score_trace(trace_id, observations, judge, pass_threshold)
        except ValueError as exc:
            notes.append(f"trace {trace_id}: {exc}; skipped")
            continue
        attach_turn_scores(
            client,
            trace_id,
            result.repetitions[0].turns[0].scores,
            run_name=run_name,
            metadata={"source": "online-evaluation"},
        )
        results.append(result)
        if on_trace_done:
            on_trace_done(result)
    client.flush()
    return results, notes

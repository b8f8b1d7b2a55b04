"""Langfuse: dataset sync, experiment runs through the SDK's experiment API, scores on the agent's traces,
and trace reads (polled, bounded) for the retrieved passages and for online evaluation.

Everything here goes through the `langfuse` 5.x SDK: `create_dataset`/`create_dataset_item`,
`get_dataset(...).run_experiment(...)`, `create_score`, and `api.observations.get_many` (the real-time
read path of Langfuse v3).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from eval.agent import AgentTarget
from eval.dataset import GoldenCase
from eval.judge import Passage
from eval.results import CaseResult
from eval.runner import CaseScorer, RunSettings, execute_case
from eval.scores import METRICS, Score

if TYPE_CHECKING:
    from langfuse import Langfuse

logger = logging.getLogger(__name__)

ITEM_NAMESPACE = uuid.UUID("5b0d3a52-6c1e-4f8e-9a49-3f1c1e0b7a11")
SCORE_NAMESPACE = uuid.UUID("9f6f4b8e-2a5c-4d7b-8b0e-6a2d9c4e1f35")
TRACE_FIELDS = "core,basic,io,metadata,usage,model,metrics"
KNOWLEDGE_TOOL = "search_knowledge_base"


class LangfuseConfigError(ValueError):
    """Langfuse is half-configured; the message names the missing setting."""


@dataclass(frozen=True)
class LangfuseSettings:
    host: str
    public_key: str
    secret_key: str


def settings_from_env(env: dict[str, str] | None = None) -> LangfuseSettings | None:
    """Langfuse settings from the environment, or None when `LANGFUSE_HOST` is unset (Langfuse off).

    Keys come from `LANGFUSE_PUBLIC_KEY`/`LANGFUSE_SECRET_KEY` (local) or from the Secrets Manager secret
    `LANGFUSE_KEYS_SECRET_ARN` (deployed; JSON `{"public_key", "secret_key"}`).
    """
    env = dict(os.environ) if env is None else env
    host = env.get("LANGFUSE_HOST") or env.get("LANGFUSE_BASE_URL")
    if not host:
        return None
    public, secret = env.get("LANGFUSE_PUBLIC_KEY"), env.get("LANGFUSE_SECRET_KEY")
    if not (public and secret) and env.get("LANGFUSE_KEYS_SECRET_ARN"):
        keys = read_json_secret(env["LANGFUSE_KEYS_SECRET_ARN"])
        public, secret = keys.get("public_key"), keys.get("secret_key")
    if not public or not secret:
        raise LangfuseConfigError(
            "LANGFUSE_HOST is set but the keys are not: set LANGFUSE_PUBLIC_KEY and LANGFUSE_SECRET_KEY "
            "(or LANGFUSE_KEYS_SECRET_ARN), or unset LANGFUSE_HOST to run without Langfuse"
        )
    return LangfuseSettings(host=host.rstrip("/"), public_key=public, secret_key=secret)


def read_json_secret(arn: str) -> dict[str, Any]:
    """A JSON secret from Secrets Manager (the deployed job gets ARNs, never values)."""
    import boto3  # deployed path only

    # The secret's own region (arn:aws:secretsmanager:<region>:...): boto3 1.44 ignores AWS_REGION.
    parts = arn.split(":")
    region = parts[3] if len(parts) > 6 and parts[2] == "secretsmanager" and parts[3] else None
    client = boto3.client("secretsmanager", region_name=region)
    value = client.get_secret_value(SecretId=arn)["SecretString"]
    loaded = json.loads(value)
    if not isinstance(loaded, dict):
        raise ValueError(f"secret {arn} must hold a JSON object")
    return loaded


def make_client(settings: LangfuseSettings, environment: str = "evaluation") -> Langfuse:
    from langfuse import Langfuse

    return Langfuse(
        public_key=settings.public_key,
        secret_key=settings.secret_key,
        base_url=settings.host,
        environment=environment,
    )


# --- dataset sync --------------------------------------------------------------------------------------


def item_id(dataset: str, case_id: str) -> str:
    """A stable dataset-item id, so re-syncing upserts instead of duplicating."""
    return str(uuid.uuid5(ITEM_NAMESPACE, f"{dataset}/{case_id}"))


def sync_dataset(client: Langfuse, name: str, cases: Sequence[GoldenCase], description: str = "") -> int:
    """Create (or update) the Langfuse dataset `name` with one item per golden case; returns the count."""
    client.create_dataset(
        name=name, description=description or "Golden dataset", metadata={"cases": len(cases)}
    )
    for case in cases:
        client.create_dataset_item(
            dataset_name=name,
            id=item_id(name, case.id),
            input={"turns": [turn.input for turn in case.turns]},
            expected_output={
                "turns": [
                    {
                        "reference_answer": turn.reference_answer,
                        "expected_tools": [t.model_dump() for t in turn.expected_tools],
                        "expected_documents": list(turn.expected_documents),
                        "guardrail_blocked": turn.guardrail_blocked,
                    }
                    for turn in case.turns
                ]
            },
            metadata={"case_id": case.id, "category": case.category, "tags": list(case.tags)},
        )
    return len(cases)


# --- traces ---------------------------------------------------------------------------------------------


def wait_for_trace(
    client: Langfuse,
    trace_id: str,
    *,
    timeout: float = 30.0,
    first_delay: float = 0.2,
    max_delay: float = 3.0,
) -> list[Any] | None:
    """Poll the observations of a trace until its root observation is there (the root span ends last, so
    the trace is complete), with exponential backoff, for at most `timeout` seconds. Returns the
    observations, or None when the trace was not complete in time."""
    deadline = time.monotonic() + timeout
    delay = first_delay
    while True:
        try:
            page = client.api.observations.get_many(trace_id=trace_id, fields=TRACE_FIELDS, limit=200)
            if any(_is_root(o) for o in page.data):
                return list(page.data)
        except Exception as exc:  # a transient API error counts as "not yet"
            logger.debug("trace %s not readable yet: %s", trace_id, exc)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        time.sleep(min(delay, remaining))
        delay = min(max_delay, delay * 2)


def _field(observation: Any, name: str) -> Any:
    if isinstance(observation, dict):
        return observation.get(name)
    return getattr(observation, name, None)


def _is_root(observation: Any) -> bool:
    return bool(_field(observation, "is_root_observation")) or not _field(
        observation, "parent_observation_id"
    )


def _maybe_json(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def passages_from_output(output: Any) -> list[Passage]:
    """Passages in a knowledge tool's result: any objects with a `text` (or `content`) field, found
    anywhere in the (possibly JSON-encoded, possibly MCP-wrapped) output; plain text otherwise."""
    found: list[Passage] = []

    def walk(node: Any) -> None:
        node = _maybe_json(node)
        if isinstance(node, dict):
            text = node.get("text") if isinstance(node.get("text"), str) else node.get("content")
            if (
                isinstance(text, str)
                and text.strip()
                and ("title" in node or "uri" in node or "page" in node or "score" in node)
            ):
                page = node.get("page")
                found.append(
                    Passage(
                        text=text,
                        title=str(node.get("title") or ""),
                        page=page if isinstance(page, int) else None,
                    )
                )
                return
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(output)
    if not found and isinstance(output, str) and output.strip():
        found.append(Passage(text=output.strip()))
    return found


def knowledge_passages(observations: Sequence[Any]) -> list[Passage]:
    """The passages every knowledge-tool observation of a trace returned, in order."""
    passages: list[Passage] = []
    ordered = sorted(observations, key=lambda o: str(_field(o, "start_time") or ""))
    for observation in ordered:
        name = str(_field(observation, "name") or "")
        if KNOWLEDGE_TOOL in name and _field(observation, "output") is not None:
            passages.extend(passages_from_output(_field(observation, "output")))
    return passages


# --- scores ---------------------------------------------------------------------------------------------


def score_id(trace_id: str, name: str, run_name: str, suffix: str = "") -> str:
    """Deterministic score ids: re-scoring the same trace in the same run updates instead of duplicating."""
    return str(uuid.uuid5(SCORE_NAMESPACE, f"{trace_id}/{run_name}/{name}/{suffix}"))


def attach_turn_scores(
    client: Langfuse,
    trace_id: str,
    scores: Sequence[Score],
    *,
    run_name: str,
    metadata: dict[str, Any],
) -> int:
    """Write every successful score of a turn onto the agent's trace; errors are not scores. Returns count."""
    sent = 0
    for score in scores:
        if score.value is None or score.name not in METRICS:
            continue
        client.create_score(
            score_id=score_id(trace_id, score.name, run_name),
            trace_id=trace_id,
            name=score.name,
            value=float(score.value),
            data_type="NUMERIC",
            comment=(score.reason or None),
            metadata={**metadata, "evaluator": score.kind, "run_name": run_name},
        )
        sent += 1
    return sent


def attach_case_scores(
    client: Langfuse, result: CaseResult, *, run_name: str, trace_timeout: float = 30.0
) -> tuple[int, list[str]]:
    """Attach each turn's scores to the trace the agent reported, after polling until the trace exists.

    Returns (scores sent, trace ids that never became readable within the timeout). Scores for a
    missing trace are still sent: Langfuse links them when the trace arrives."""
    sent, missing = 0, []
    for rep in result.repetitions:
        for turn in rep.turns:
            if turn.reply is None or not turn.reply.metadata.trace_id:
                continue
            trace_id = turn.reply.metadata.trace_id
            if wait_for_trace(client, trace_id, timeout=trace_timeout) is None:
                missing.append(trace_id)
            sent += attach_turn_scores(
                client,
                trace_id,
                turn.scores,
                run_name=run_name,
                metadata={"case_id": result.case_id, "repetition": rep.number, "turn": turn.index + 1},
            )
    return sent, missing


# --- experiments ----------------------------------------------------------------------------------------


@dataclass
class ExperimentOutcome:
    results: list[CaseResult]
    experiment_id: str | None
    experiment_url: str | None
    scores_sent: int
    missing_traces: list[str]


def case_evaluations(result: CaseResult) -> list[Any]:
    """A case's results as Langfuse `Evaluation`s: the mean of each metric, pass^k and pass rate."""
    from langfuse import Evaluation

    evaluations = [
        Evaluation(
            name=name, value=value, comment="; ".join(r for r in result.reasons(name) if r)[:1000] or None
        )
        for name in METRICS
        if (value := result.mean(name)) is not None
    ]
    evaluations.append(Evaluation(name="pass_hat_k", value=1.0 if result.pass_hat_k else 0.0))
    evaluations.append(Evaluation(name="pass_rate", value=result.pass_rate))
    return evaluations


def run_experiment(
    client: Langfuse,
    *,
    dataset_name: str,
    cases: Sequence[GoldenCase],
    target: AgentTarget,
    scorer: CaseScorer,
    settings: RunSettings,
    run_name: str,
    description: str,
    metadata: dict[str, str],
    on_case_done: Callable[[CaseResult], None] | None = None,
    trace_timeout: float = 30.0,
) -> ExperimentOutcome:
    """Run the cases as a Langfuse experiment on the synced dataset: the task executes a case against the
    target, the evaluator scores it (code + judge), and each turn's scores go onto the agent's trace."""
    by_item = {item_id(dataset_name, case.id): case for case in cases}
    dataset = client.get_dataset(dataset_name)
    items = [item for item in dataset.items if item.id in by_item]
    if len(items) != len(by_item):
        raise RuntimeError(
            f"dataset {dataset_name!r} in Langfuse lacks {len(by_item) - len(items)} synced item(s)"
        )
    results: dict[str, CaseResult] = {}
    totals = {"sent": 0}
    missing: list[str] = []

    async def task(*, item: Any, **_: Any) -> dict[str, Any]:
        case = by_item[item.id]
        result = await asyncio.to_thread(execute_case, case, target, settings)
        results[case.id] = result
        return {"case_id": case.id, "answers": _answers(result)}

    async def evaluator(*, output: dict[str, Any], **_: Any) -> list[Any]:
        case = next(c for c in cases if c.id == output["case_id"])
        result = await asyncio.to_thread(scorer.score_case, case, results[case.id])
        sent, lost = await asyncio.to_thread(
            attach_case_scores, client, result, run_name=run_name, trace_timeout=trace_timeout
        )
        totals["sent"] += sent
        missing.extend(lost)
        if on_case_done:
            on_case_done(result)
        return case_evaluations(result)

    outcome = dataset.run_experiment(
        name=run_name,
        run_name=run_name,
        description=description,
        task=task,
        evaluators=[evaluator],
        max_concurrency=settings.concurrency,
        metadata=metadata,
    )
    ordered = [results[case.id] for case in cases if case.id in results]
    if len(ordered) != len(cases):
        done = {r.case_id for r in ordered}
        lost_cases = [c.id for c in cases if c.id not in done]
        raise RuntimeError(f"the experiment lost case(s) {lost_cases}; see the log for the task errors")
    client.flush()
    return ExperimentOutcome(
        results=ordered,
        experiment_id=getattr(outcome, "experiment_id", None),
        experiment_url=getattr(outcome, "experiment_url", None),
        scores_sent=totals["sent"],
        missing_traces=missing,
    )


def _answers(result: CaseResult) -> list[list[str | None]]:
    return [[t.reply.answer if t.reply else None for t in rep.turns] for rep in result.repetitions]


# --- online ---------------------------------------------------------------------------------------------


def recent_root_observations(
    client: Langfuse,
    *,
    since: datetime,
    environment: str | None = None,
    trace_name: str | None = None,
    max_pages: int = 20,
    page_size: int = 200,
) -> Iterator[Any]:
    """Root observations (one per trace) that started after `since`, newest pages first (bounded)."""
    cursor: str | None = None
    for _ in range(max_pages):
        page = client.api.observations.get_many(
            is_root_observation=True,
            from_start_time=since,
            environment=environment,
            name=trace_name,
            fields=TRACE_FIELDS,
            limit=page_size,
            cursor=cursor,
        )
        yield from page.data
        cursor = getattr(page.meta, "cursor", None)
        if not cursor or not page.data:
            return

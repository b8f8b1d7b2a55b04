"""Langfuse: dataset sync, the experiment API, scores on the agent's traces, trace polling and online
scoring, asserted on the exact requests the Langfuse stand-in received from the real SDK."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from eval.agent import ClientTarget, new_session_id
from eval.dataset import GoldenCase
from eval.evaluators import price_table_from_config
from eval.judge import Judge
from eval.langfuse_io import (
    LangfuseConfigError,
    LangfuseSettings,
    item_id,
    make_client,
    run_experiment,
    score_id,
    settings_from_env,
    sync_dataset,
    wait_for_trace,
)
from eval.online import run_online
from eval.runner import CaseScorer, RunSettings
from eval.scores import METRICS
from scripts.eval_pipeline import PipelineStack
from tests.eval.conftest import OBSERVATIONS_PATH, PUBLIC_KEY, SECRET_KEY, LangfuseStandIn

pytestmark = pytest.mark.slow

EXPERIMENT_CASES = ("router-factory-reset", "guardrail-investment", "memory-device-reset")


@pytest.fixture(scope="module")
def client(langfuse: LangfuseStandIn) -> Iterator[Any]:
    lf = make_client(LangfuseSettings(langfuse.recorder.url, PUBLIC_KEY, SECRET_KEY))
    yield lf
    lf.shutdown()


@pytest.fixture(scope="module")
def judge(pipeline: PipelineStack) -> Iterator[Judge]:
    judge = Judge(pipeline.gateway_url, pipeline.gateway_key, "claude-haiku")
    yield judge
    judge.close()


@pytest.fixture(scope="module")
def experiment(
    client: Any,
    langfuse: LangfuseStandIn,
    pipeline: PipelineStack,
    judge: Judge,
    golden_cases: list[GoldenCase],
) -> dict[str, Any]:
    cases = [c for c in golden_cases if c.id in EXPERIMENT_CASES]
    sync_dataset(client, "golden-experiment", cases)
    langfuse.hide_first_polls = 2  # the first two reads of every trace find nothing yet
    target = ClientTarget.local(pipeline.agent_url)
    scorer = CaseScorer(judge=judge, prices=price_table_from_config())
    outcome = run_experiment(
        client,
        dataset_name="golden-experiment",
        cases=cases,
        target=target,
        scorer=scorer,
        settings=RunSettings(concurrency=2, k=1),
        run_name="ci-run-1",
        description="test",
        metadata={"target": "local"},
        trace_timeout=20,
    )
    langfuse.hide_first_polls = 0
    target.close()
    trace_ids = {
        t.reply.metadata.trace_id
        for r in outcome.results
        for rep in r.repetitions
        for t in rep.turns
        if t.reply
    }
    return {"outcome": outcome, "cases": cases, "trace_ids": trace_ids}


def test_dataset_sync_creates_the_dataset_and_upserts_items_by_stable_id(
    client: Any, langfuse: LangfuseStandIn, golden_cases: list[GoldenCase]
) -> None:
    cases = golden_cases[:2]
    for _ in range(2):
        sync_dataset(client, "golden-sync", cases, description="synced in a test")
    creates = [
        r
        for r in langfuse.recorder.requests_to("/api/public/v2/datasets", "POST")
        if r.json()["name"] == "golden-sync"
    ]
    assert creates[0].json() == {
        "name": "golden-sync",
        "description": "synced in a test",
        "metadata": {"cases": 2},
        "inputSchema": None,
        "expectedOutputSchema": None,
    }
    assert creates[0].basic_auth == (PUBLIC_KEY, SECRET_KEY)
    items = [
        r.json()
        for r in langfuse.recorder.requests_to("/api/public/dataset-items", "POST")
        if r.json()["datasetName"] == "golden-sync"
    ]
    first = cases[0]
    assert items[0] == {
        "datasetName": "golden-sync",
        "id": item_id("golden-sync", first.id),
        "input": {"turns": [first.turns[0].input]},
        "expectedOutput": {
            "turns": [
                {
                    "reference_answer": first.turns[0].reference_answer,
                    "expected_tools": [t.model_dump() for t in first.turns[0].expected_tools],
                    "expected_documents": list(first.turns[0].expected_documents),
                    "guardrail_blocked": False,
                }
            ]
        },
        "metadata": {"case_id": first.id, "category": first.category, "tags": list(first.tags)},
        "sourceTraceId": None,
        "sourceObservationId": None,
        "status": None,
    }
    stored = [i for i in langfuse.recorder.dataset_items if i["datasetName"] == "golden-sync"]
    assert len(items) == 4 and len(stored) == 2  # the second sync updated the same two items


def test_experiment_runs_every_case_through_the_sdk(
    experiment: dict[str, Any], langfuse: LangfuseStandIn
) -> None:
    outcome = experiment["outcome"]
    assert [r.case_id for r in outcome.results] == [c.id for c in experiment["cases"]]
    assert outcome.experiment_id
    runs = langfuse.recorder.wait_for_spans(name="experiment-item-run", count=3)
    assert len({span.trace_id for span in runs}) == 3
    assert all(span.attr("langfuse.environment") == "sdk-experiment" for span in runs)


def test_experiment_scores_are_case_means_and_pass_hat_k(
    experiment: dict[str, Any], langfuse: LangfuseStandIn
) -> None:
    runs = {s.trace_id for s in langfuse.recorder.spans_named("experiment-item-run")}
    scores = [s for s in langfuse.recorder.scores if s.get("traceId") in runs]
    names = {s["name"] for s in scores}
    assert {"pass_hat_k", "pass_rate", "tool_recall", "guardrail_correct", "correctness"} <= names
    assert all(isinstance(s["value"], float) for s in scores)


def test_turn_scores_land_on_the_agent_traces_with_stable_ids(
    experiment: dict[str, Any], langfuse: LangfuseStandIn
) -> None:
    trace_ids = experiment["trace_ids"]
    assert len(trace_ids) == 4  # 1 + 1 + 2 turns
    scores = [s for s in langfuse.recorder.wait_for_scores(10) if s.get("traceId") in trace_ids]
    reset_trace = next(
        t.reply.metadata.trace_id
        for r in experiment["outcome"].results
        if r.case_id == "router-factory-reset"
        for t in r.repetitions[0].turns
    )
    on_reset = {s["name"]: s for s in scores if s["traceId"] == reset_trace}
    assert {
        "tool_precision",
        "tool_recall",
        "retrieval_hit_rate",
        "faithfulness",
        "correctness",
        "latency_ms",
    } <= set(on_reset)
    faithfulness = on_reset["faithfulness"]
    assert faithfulness["id"] == score_id(reset_trace, "faithfulness", "ci-run-1")
    assert faithfulness["dataType"] == "NUMERIC"
    assert faithfulness["metadata"]["run_name"] == "ci-run-1"
    assert faithfulness["metadata"]["case_id"] == "router-factory-reset"
    assert set(on_reset) <= set(METRICS)


def test_faithfulness_context_is_the_replys_passages_and_scores_wait_for_the_trace(
    experiment: dict[str, Any], langfuse: LangfuseStandIn
) -> None:
    result = next(r for r in experiment["outcome"].results if r.case_id == "router-factory-reset")
    turn = result.repetitions[0].turns[0]
    assert turn.passage_source == "metadata"  # citations[].text of the agent's reply
    assert turn.reply is not None and all(c.text for c in turn.reply.metadata.citations)
    faithfulness = turn.score("faithfulness")
    assert faithfulness is not None and faithfulness.ok
    trace_id = turn.reply.metadata.trace_id
    assert langfuse.polls(trace_id) >= 3  # scores are attached once the trace exists: two empty answers first
    reads = [
        r
        for r in langfuse.recorder.requests_to(OBSERVATIONS_PATH, "GET")
        if r.query.get("traceId") == [trace_id]
    ]
    assert reads[0].basic_auth == (PUBLIC_KEY, SECRET_KEY)
    assert reads[0].query["fields"] == ["core,basic,io,metadata,usage,model,metrics"]


def test_a_trace_that_never_arrives_ends_the_poll_in_time(client: Any) -> None:
    import time

    started = time.monotonic()
    assert wait_for_trace(client, "0" * 32, timeout=1.0) is None
    assert time.monotonic() - started < 3.0


def test_online_scoring_samples_agent_traces_only_and_scores_them(
    experiment: dict[str, Any], client: Any, judge: Judge, langfuse: LangfuseStandIn, pipeline: PipelineStack
) -> None:
    target = ClientTarget.local(pipeline.agent_url)
    prompt = "Does the T1 thermostat work with electric baseboard heaters?"
    production = target.invoke(prompt, new_session_id()).metadata.trace_id
    target.close()
    assert wait_for_trace(client, production, timeout=20) is not None
    results, notes = run_online(client, judge, since_hours=1, sample_size=100, run_name="online-1", seed=7)
    assert notes == []
    scored = {r.case_id for r in results}
    assert production in scored
    assert scored <= {s.trace_id for s in langfuse.recorder.spans_named("agent-turn")}  # no experiment traces
    mine = next(r for r in results if r.case_id == production)
    turn = mine.repetitions[0].turns[0]
    assert turn.input == prompt
    assert turn.passage_source == "langfuse"
    assert {s.name for s in turn.scores} >= {"faithfulness", "helpfulness", "latency_ms", "total_tokens"}
    online = [s for s in langfuse.recorder.wait_for_scores(1) if s.get("traceId") == production]
    assert {s["name"] for s in online} >= {"faithfulness", "helpfulness"}
    assert all(s["metadata"]["source"] == "online-evaluation" for s in online)


def test_blocked_production_turns_are_not_judged(
    client: Any, judge: Judge, langfuse: LangfuseStandIn, pipeline: PipelineStack
) -> None:
    target = ClientTarget.local(pipeline.agent_url)
    blocked = target.invoke("Which stocks should I buy with my savings this year?", new_session_id())
    target.close()
    assert blocked.metadata.guardrail.action == "BLOCKED"
    observations = wait_for_trace(client, blocked.metadata.trace_id, timeout=20)
    assert observations
    from eval.online import score_trace

    result = score_trace(blocked.metadata.trace_id, observations, judge, 0.75)
    turn = result.repetitions[0].turns[0]
    assert turn.reply is not None and turn.reply.metadata.guardrail.action == "BLOCKED"
    assert not [s for s in turn.scores if s.kind == "judge"]


def test_half_configured_langfuse_names_the_missing_settings() -> None:
    assert settings_from_env({}) is None
    with pytest.raises(LangfuseConfigError, match="LANGFUSE_PUBLIC_KEY and LANGFUSE_SECRET_KEY"):
        settings_from_env({"LANGFUSE_HOST": "https://lf.example.com", "LANGFUSE_PUBLIC_KEY": "pk"})


def test_read_json_secret_uses_the_secrets_region_without_aws_default_region(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """boto3 1.44 reads the region only from AWS_DEFAULT_REGION or the profile; the ARN names it."""
    import boto3
    from moto import mock_aws

    from eval.langfuse_io import read_json_secret

    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    with mock_aws():
        arn = boto3.client("secretsmanager", region_name="eu-west-1").create_secret(
            Name="aaf/langfuse", SecretString='{"public_key": "pk", "secret_key": "sk"}'
        )["ARN"]
        assert read_json_secret(arn) == {"public_key": "pk", "secret_key": "sk"}

"""The usage-cost model (cost/usage.py): arithmetic against hand-computed figures from the committed price
table, the Langfuse break-even, bad profiles, unverified prices flagged, and the eval -> cost round trip."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cost.__main__ import main
from cost.prices import PRICES_DIR, PriceError
from cost.usage import (
    DEFAULT_PROFILE,
    Deployment,
    TurnProfile,
    UsageError,
    UsagePriceTable,
    break_even,
    estimate_usage,
    hosted_cost,
    load_profile,
    load_usage_prices,
    read_deployment,
    render_usage,
)
from eval.agent import AgentReply, ReplyMetadata, ToolCallRecord, Usage
from eval.results import CaseResult, ProfileError, Repetition, RunReport, TurnResult, turn_profile
from eval.scores import Score

SONNET = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
ALL_POLICIES = ("content", "contextual_grounding", "sensitive_information", "topics", "words")
DEPLOYMENT = Deployment(
    model_alias="claude-sonnet",
    idle_timeout_seconds=900,
    memory=True,
    gateway=True,
    knowledge_base=True,
    guardrail_policies=ALL_POLICIES,
    self_hosted_langfuse=True,
)
PROFILE: dict[str, Any] = {
    "name": "hand",
    "turns_per_conversation": 2,
    "input_tokens_per_turn": 1000,
    "output_tokens_per_turn": 100,
    "tool_calls_per_turn": 1,
    "kb_queries_per_turn": 0.5,
    "kb_query_chars": 40,
    "guardrail_text_units_per_turn": 2,
    "runtime_vcpu_seconds_per_turn": 0.5,
    "turn_seconds": 10,
    "think_seconds": 20,
    "runtime_memory_gb": 0.5,
    "log_kb_per_turn": 10,
}


@pytest.fixture(scope="module")
def prices() -> UsagePriceTable:
    return load_usage_prices("us-east-1")


def _write(tmp_path: Path, document: Any, name: str = "profile.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def test_cost_per_1000_conversations_matches_the_hand_computation(prices: UsagePriceTable) -> None:
    estimate = estimate_usage(TurnProfile.model_validate(PROFILE), prices, DEPLOYMENT, SONNET, 100.0)
    lines = {line.component: line.usd_per_1000 for line in estimate.lines}
    # model: 2 turns x (1000 x $3.30 + 100 x $16.50) / 1M = $0.0099 per conversation
    assert lines["model"] == pytest.approx(9.90)
    # guardrail: per turn agent 2 + gateway (1100 tokens x 4 chars / 1000 + 2 model calls) = 8.4 units,
    # x 2 turns x ($0.15 + 0.15 + 0.10 + 0.10 + 0) / 1000 units
    assert lines["guardrail"] == pytest.approx(8.40)
    # runtime: CPU 2 x 0.5 s at $0.0895/h; memory 0.5 GB x (2 x 10 + 1 x 20 + 900 idle) s at $0.00945/h
    assert lines["agentcore-runtime"] == pytest.approx(
        1000 * (1.0 / 3600 * 0.0895 + 0.5 * 940 / 3600 * 0.00945)
    )
    # gateway: 2 tool calls + 1 tools/list = 3 MCP calls at $0.005/1000; 2 + 3 x 2 interceptors = 8 Lambda
    # invocations x ($0.20/1M + 0.2 s x 0.5 GB x $0.0000133334)
    assert lines["tool-gateway"] == pytest.approx(
        1000 * (3 * 0.005 / 1000 + 8 * (0.2e-6 + 0.1 * 0.0000133334))
    )
    # memory: 2 events x $0.25/1000 + 2 retrievals x $0.50/1000 + 3 records x $0.75/1000
    assert lines["agentcore-memory"] == pytest.approx(3.75)
    # knowledge base: 1 query x $2.50/1M + 10 embedding tokens x $0.02/1M
    assert lines["knowledge-base"] == pytest.approx(0.0027)
    # logs: 20 KB = 2e-5 GB x $0.50
    assert lines["observability"] == pytest.approx(0.01)
    assert estimate.usd_per_1000 == pytest.approx(sum(lines.values()))
    assert estimate.not_priced == []


def test_langfuse_units_and_break_even(prices: UsagePriceTable) -> None:
    estimate = estimate_usage(TurnProfile.model_validate(PROFILE), prices, DEPLOYMENT, SONNET, 100.0)
    # per turn: 1 trace + (4 + 2 x 2 model calls + 1 tool) observations + LiteLLM's 2 x 2 = 14 units
    assert estimate.langfuse_units_per_conversation == pytest.approx(28)
    plans = {result.plan: result for result in estimate.break_even}
    # Core $29 + $8 per 100k above 100k: $100 at 100,000 + 71/8 x 100,000 = 987,500 units
    assert plans["core"].conversations_per_month == pytest.approx(987_500 / 28)
    assert plans["pro"].conversations_per_month == 0.0  # $199 base > $100: self-hosting always cheaper
    assert plans["hobby"].conversations_per_month is None and "1,786 conversations" in plans["hobby"].note


def test_hosted_cost_is_graduated(prices: UsagePriceTable) -> None:
    cloud = prices.langfuse_cloud
    core = cloud.plans["core"]
    assert hosted_cost(50_000, core, cloud.overage_per_100k_units) == 29.0
    # 29 + 900k x $8/100k + 1M x $7/100k
    assert hosted_cost(2_000_000, core, cloud.overage_per_100k_units) == pytest.approx(171.0)
    # the inverse lands in the second tier: $171 -> 2,000,000 units -> 1,000 conversations at 2,000 units
    assert break_even(171.0, 2000, cloud)[1].conversations_per_month == pytest.approx(1000)


def test_a_model_without_a_price_is_listed_not_silently_zero(prices: UsagePriceTable) -> None:
    estimate = estimate_usage(TurnProfile.model_validate(PROFILE), prices, DEPLOYMENT, "us.unknown-v1:0")
    assert "model" not in {line.component for line in estimate.lines}
    assert estimate.not_priced and "us.unknown-v1:0" in estimate.not_priced[0]
    assert "NOT PRICED model claude-sonnet (us.unknown-v1:0)" in render_usage(estimate, 0.0, 1000, None)


def test_unverified_prices_are_flagged_in_the_output(prices: UsagePriceTable, tmp_path: Path) -> None:
    out = render_usage(
        estimate_usage(TurnProfile.model_validate(PROFILE), prices, DEPLOYMENT, SONNET, 100.0),
        50.0,
        1000,
        None,
    )
    model_line = next(line for line in out.splitlines() if line.startswith("model "))
    assert " *" in model_line
    assert "* UNVERIFIED prices" in out and "model input (unverified)" in out
    assert "runtime vCPU-hour (secondary)" in out  # agreeing transcriptions are still not the vendor page
    # the same table with every price confirmed: no flag
    raw = json.loads((PRICES_DIR / "usage" / "us-east-1.json").read_text(encoding="utf-8"))
    text = json.dumps(raw).replace('"status": "unverified"', '"status": "confirmed"')
    confirmed = UsagePriceTable.model_validate(
        json.loads(text.replace('"status": "secondary"', '"status": "confirmed"'))
    )
    clean = render_usage(
        estimate_usage(TurnProfile.model_validate(PROFILE), confirmed, DEPLOYMENT, SONNET, 100.0),
        50.0,
        1000,
        None,
    )
    assert "UNVERIFIED" not in clean and " *" not in clean


def test_every_committed_price_names_a_source_and_a_status() -> None:
    raw = json.loads((PRICES_DIR / "usage" / "us-east-1.json").read_text(encoding="utf-8"))

    def prices(node: Any) -> list[dict[str, Any]]:
        if isinstance(node, dict):
            found = [node] if "usd" in node else []
            return found + [p for value in node.values() for p in prices(value)]
        return [p for value in node for p in prices(value)] if isinstance(node, list) else []

    entries = [p for p in prices(raw) if "source" in p]
    assert len(entries) >= 20
    assert all(p["source"].startswith("https://") and p["status"] and p["evidence"] for p in entries)


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({**PROFILE, "input_tokens_per_turn": -1}, "field 'input_tokens_per_turn'"),
        ({**PROFILE, "turns_per_conversation": 0}, "field 'turns_per_conversation'"),
        ({**PROFILE, "tokens": 5}, "field 'tokens': Extra inputs are not permitted"),
        (
            {k: v for k, v in PROFILE.items() if k != "output_tokens_per_turn"},
            "field 'output_tokens_per_turn'",
        ),
        ({**PROFILE, "schema": "aaf-turn-profile/2"}, "field 'schema'"),
        ([1, 2], "a turn profile is a JSON object"),
    ],
)
def test_a_bad_profile_is_a_clear_error(tmp_path: Path, document: Any, message: str) -> None:
    with pytest.raises(UsageError, match=r"profile\.json: ") as raised:
        load_profile(_write(tmp_path, document))
    assert message in str(raised.value)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("turns", "expected FIELD=NUMBER"),
        ("nope=1", "unknown field 'nope'"),
        ("name=1", "unknown field 'name'"),
        ("turns_per_conversation=many", "'many' is not a number"),
        ("turns_per_conversation=nan", "must be finite"),
        ("turns_per_conversation=-3", "field 'turns_per_conversation'"),
    ],
)
def test_a_bad_override_is_a_clear_error(tmp_path: Path, override: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        load_profile(_write(tmp_path, PROFILE), [override])


def test_an_override_replaces_the_value_and_says_so(tmp_path: Path) -> None:
    profile = load_profile(_write(tmp_path, PROFILE), ["turns_per_conversation=6"])
    assert profile.turns_per_conversation == 6 and profile.basis_of("turns_per_conversation") == (
        "set on the command line"
    )


def test_missing_profile_and_price_table_name_the_fix(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="--write-profile"):
        load_profile(tmp_path / "none.json")
    with pytest.raises(
        PriceError, match=r"no usage price table for region 'mars-1'; available: \['us-east-1'\]"
    ):
        load_usage_prices("mars-1")


def test_committed_golden_profile_is_measured() -> None:
    profile = load_profile(DEFAULT_PROFILE)
    assert profile.measured_from is not None and profile.measured_from.turns > 0
    assert profile.basis_of("input_tokens_per_turn").startswith("measured")
    assert profile.input_tokens_per_turn > 0


def test_deployment_facts_come_from_the_templates() -> None:
    templates = {
        "aaf-agentcore": {
            "Resources": {
                "Runtime": {
                    "Type": "AWS::BedrockAgentCore::Runtime",
                    "Properties": {
                        "EnvironmentVariables": {"MODEL_ALIAS": "claude-haiku"},
                        "LifecycleConfiguration": {"IdleRuntimeSessionTimeout": 300, "MaxLifetime": 28800},
                    },
                },
                "Memory": {"Type": "AWS::BedrockAgentCore::Memory", "Properties": {}},
            }
        },
        "aaf-guardrails": {
            "Resources": {
                "G": {
                    "Type": "AWS::Bedrock::Guardrail",
                    "Properties": {"ContentPolicyConfig": {}, "WordPolicyConfig": {}, "Name": "g"},
                }
            }
        },
        "aaf-observability": {"Resources": {"Web": {"Type": "AWS::ECS::Service", "Properties": {}}}},
    }
    deployment = read_deployment(templates)
    assert (deployment.model_alias, deployment.idle_timeout_seconds) == ("claude-haiku", 300.0)
    assert deployment.memory and not deployment.gateway and not deployment.knowledge_base
    assert deployment.guardrail_policies == ("content", "words") and deployment.self_hosted_langfuse


# --- the eval writes the profile the cost model reads -------------------------------------------------------


def _reply(input_tokens: int, output_tokens: int, tools: int, latency_ms: float, answer: str) -> AgentReply:
    calls = tuple(
        ToolCallRecord(name="search_knowledge_base", arguments={"query": "reset router"})
        for _ in range(tools)
    )
    return AgentReply(
        answer=answer,
        metadata=ReplyMetadata(
            model="claude-sonnet",
            tools=calls,
            usage=Usage(input_tokens=input_tokens, output_tokens=output_tokens),
            latency_ms=latency_ms,
        ),
    )


def _report(notes: list[str]) -> RunReport:
    turns = [
        TurnResult(
            index=0,
            input="x" * 1500,
            reply=_reply(1000, 100, 1, 400.0, "y" * 10),
            scores=[Score(name="cost_usd", value=0.005)],
        ),
        TurnResult(
            index=1,
            input="hi",
            reply=_reply(3000, 300, 0, 200.0, "z" * 2001),
            scores=[Score(name="cost_usd", value=None, error="no price")],
        ),
    ]
    failed = Repetition(number=2, session_id="s2", turns=[TurnResult(index=0, input="hi", error="boom")])
    case = CaseResult(
        case_id="c1",
        category="knowledge",
        turns=2,
        repetitions=[Repetition(number=1, session_id="s1", turns=turns), failed],
    )
    return RunReport(
        run_name="r1",
        started_at="2026-12-01T10:00:00+00:00",
        finished_at="2026-12-01T10:05:00+00:00",
        target="local",
        dataset="eval/datasets/golden.jsonl",
        cases=[case],
        notes=notes,
    )


def test_eval_profile_round_trips_into_the_cost_model(tmp_path: Path) -> None:
    document = turn_profile(_report(["Pipeline mode: scripted. ..."]), commit="abc123")
    profile = load_profile(_write(tmp_path, document))
    assert profile.name == "golden" and profile.measured_from is not None
    assert (
        profile.measured_from.commit,
        profile.measured_from.turns,
        profile.measured_from.conversations,
    ) == (
        "abc123",
        2,
        1,  # the failed repetition answered nothing: not a conversation
    )
    assert profile.turns_per_conversation == 2
    assert (profile.input_tokens_per_turn, profile.output_tokens_per_turn) == (2000, 200)
    assert (profile.tool_calls_per_turn, profile.kb_queries_per_turn, profile.kb_query_chars) == (
        0.5,
        0.5,
        12,
    )
    # text units: turn 1 ceil(1500/1000) + ceil(10/1000) = 3; turn 2 1 + ceil(2001/1000) = 4
    assert profile.guardrail_text_units_per_turn == 3.5
    assert profile.runtime_vcpu_seconds_per_turn == pytest.approx(0.3)
    assert profile.turn_seconds == 8.0  # scripted model: the wall time stays an assumption
    assert "turn_seconds" not in profile.basis


def test_a_real_model_run_measures_the_turn_time_too(tmp_path: Path) -> None:
    profile = load_profile(_write(tmp_path, turn_profile(_report([]))))
    assert profile.turn_seconds == pytest.approx(0.3) and profile.basis_of("turn_seconds").startswith(
        "measured"
    )


def test_a_run_without_answers_has_no_profile() -> None:
    report = _report([])
    report.cases[0].repetitions = report.cases[0].repetitions[1:]
    with pytest.raises(ProfileError, match="no turn was answered"):
        turn_profile(report)


# --- the CLI ------------------------------------------------------------------------------------------------


def _assembly(tmp_path: Path) -> Path:
    template = {
        "Resources": {
            "Runtime": {
                "Type": "AWS::BedrockAgentCore::Runtime",
                "Properties": {
                    "EnvironmentVariables": {"MODEL_ALIAS": "claude-sonnet"},
                    "LifecycleConfiguration": {"IdleRuntimeSessionTimeout": 900},
                    "Tags": {"profile": "dev"},
                },
            },
            "Key": {"Type": "AWS::KMS::Key", "Properties": {"Tags": [{"Key": "profile", "Value": "dev"}]}},
        }
    }
    (tmp_path / "aaf-agentcore.template.json").write_text(json.dumps(template), encoding="utf-8")
    manifest = {
        "artifacts": {
            "aaf-agentcore": {
                "type": "aws:cloudformation:stack",
                "environment": "aws://unknown-account/unknown-region",
                "properties": {"templateFile": "aaf-agentcore.template.json"},
            }
        }
    }
    (tmp_path / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    return tmp_path


def test_cli_prints_usage_next_to_idle_cost(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    profile = _write(tmp_path, PROFILE, "p.json")
    assert main([str(_assembly(tmp_path)), "--usage-profile", str(profile), "--conversations", "2000"]) == 0
    out = capsys.readouterr().out
    assert "Idle monthly cost (zero traffic)" in out and "total                      1.00" in out
    assert "Usage cost per 1,000 conversations, us-east-1 usage prices as of 2026-12-01" in out
    # the sonnet model line: 9.90 per 1k conversations; no gateway/memory/KB/guardrail in this assembly
    assert "model                       9.90 *" in out and "tool-gateway" not in out
    assert "at 2,000 conversations/month: idle 1.00 + usage" in out
    assert "not self-hosted here, so no break-even" in out


def test_cli_json_and_no_usage(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    profile = _write(tmp_path, PROFILE, "p.json")
    assert main([str(_assembly(tmp_path)), "--usage-profile", str(profile), "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["usage"]["components"]["model"] == pytest.approx(9.9)
    assert "model input (unverified)" in document["usage"]["unverified_prices"]
    assert main([str(_assembly(tmp_path)), "--no-usage"]) == 0
    assert "Usage cost" not in capsys.readouterr().out


def test_cli_bad_usage_input_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    profile = _write(tmp_path, PROFILE, "p.json")
    assert main([str(_assembly(tmp_path)), "--usage-profile", str(profile), "--set", "bogus=1"]) == 2
    assert "unknown field 'bogus'" in capsys.readouterr().err
    assert main([str(_assembly(tmp_path)), "--usage-profile", str(tmp_path / "x.json")]) == 2
    assert "x.json does not exist" in capsys.readouterr().err
    assert main([str(_assembly(tmp_path)), "--conversations", "-1"]) == 2


def test_cli_region_without_usage_prices_still_prints_idle_cost(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([str(_assembly(tmp_path)), "--region", "us-west-2"]) == 0
    out = capsys.readouterr().out
    assert "us-west-2 prices" in out and "usage cost: NOT ESTIMATED (no usage price table for region" in out

"""Usage-cost model: what 1,000 conversations cost, next to the idle cost of `cost.model`.

Inputs:
- a turn profile (`cost/profiles/golden.json`, written by `python -m eval run --write-profile`): tokens, tool
  calls, knowledge-base queries and text sizes MEASURED by an evaluation run, plus documented assumptions
  for what a run cannot see (runtime memory, session wall time, log volume, memory records);
- a dated usage price table (`cost/prices/usage/<region>.json`) where every price carries its source URL
  and a status: `confirmed`, `secondary` (agrees with named third-party transcriptions; the AWS page renders
  its numbers with JavaScript) or `unverified`. Anything not `confirmed` is flagged in the output;
- facts read from the synthesized templates: the agent's model alias (`MODEL_ALIAS` on the runtime), the
  runtime's idle timeout, the memory strategies, the guardrail's policies, whether Langfuse is self-hosted.

Billing rules the arithmetic relies on (docs/cost.md has the sources):
- AgentCore Runtime bills CPU only while consumed and memory (peak so far, 128 MB minimum) per second from
  microVM start through idle periods until the session ends (https://aws.amazon.com/bedrock/agentcore/pricing/);
  the session ends `IdleRuntimeSessionTimeout` seconds after the last turn.
- The agent applies the guardrail to the prompt and to the answer (ApplyGuardrail, docs/tracing-contract.md);
  the LiteLLM gateway applies it again on every model call, pre_call and post_call (llm_gateway/config.py
  `mode: [pre_call, post_call]`), to the WHOLE message list: litellm 1.102.4
  proxy/guardrails/guardrail_hooks/bedrock_guardrails.py scans every message unless
  `experimental_use_latest_role_message_only` is set. A text unit is up to 1,000 characters, per policy.
- Langfuse Cloud bills units = traces + observations + scores
  (https://langfuse.com/docs/administration/billable-units).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cost.prices import PRICES_DIR, PriceError

logger = logging.getLogger(__name__)

PROFILES_DIR = Path(__file__).resolve().parent / "profiles"
DEFAULT_PROFILE = PROFILES_DIR / "golden.json"
PROFILE_SCHEMA = "aaf-turn-profile/1"
CONVERSATIONS = 1000  # the unit of the usage table
CHARS_PER_TOKEN = 4.0  # converts the gateway's token counts to guardrail characters (assumption)
TEXT_UNIT_CHARS = 1000  # one guardrail text unit
SECONDS_PER_HOUR = 3600.0


class UsageError(ValueError):
    """A turn profile or usage price table is missing or invalid; the message names the file and field."""


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# --- the turn profile -------------------------------------------------------------------------------------


class MeasuredFrom(_Strict):
    """The evaluation run a profile was measured in."""

    run_name: str
    date: date
    commit: str | None = None
    dataset: str | None = None
    target: str = ""
    models: tuple[str, ...] = ()
    cases: int = Field(ge=0)
    conversations: int = Field(ge=0)
    turns: int = Field(ge=0)
    notes: tuple[str, ...] = ()


# field -> why its default is what it is (shown with the output; a measured value replaces it)
ASSUMPTIONS: dict[str, str] = {
    "turn_seconds": "wall time a turn keeps the session busy with a real model (assumption)",
    "think_seconds": "user's time between turns; the session (and its memory) stays alive (assumption)",
    "runtime_memory_gb": "agent process peak memory (assumption; AgentCore bills at least 0.125 GB)",
    "memory_events_per_turn": "agent/service.py records one event (user + assistant) per answered turn",
    "memory_retrievals_per_turn": "agent/service.py recalls long-term memory once per turn",
    "memory_records_per_conversation": "records the 3 memory strategies extract per conversation (assumption)",
    "list_tools_per_conversation": "MCP tools/list calls per session (assumption)",
    "interceptor_invocations_per_gateway_call": "REQUEST + RESPONSE interceptor Lambdas (stacks/agentcore.py)",
    "lambda_seconds_per_invocation": "billed duration of a tool or interceptor Lambda (assumption)",
    "lambda_memory_gb": "tool/interceptor Lambda memory (agentcore.tool_memory_mb default 512)",
    "log_kb_per_turn": "CloudWatch log volume per turn: runtime, gateway, Lambdas (assumption)",
    "scores_per_turn": "Langfuse scores per turn (online evaluation samples a few traces a day; assumption)",
    "gateway_traces_per_model_call": "LiteLLM's own Langfuse trace per request (docs/tracing-contract.md)",
}


class TurnProfile(_Strict):
    """A conversation: how many turns and what one turn uses. Measured fields come from an eval run."""

    schema_: str = Field(alias="schema", default=PROFILE_SCHEMA, pattern=r"^aaf-turn-profile/1$")
    name: str = Field(default="custom", min_length=1, max_length=80)
    measured_from: MeasuredFrom | None = None
    basis: dict[str, str] = Field(default_factory=dict)
    # measured by `python -m eval run --write-profile`
    turns_per_conversation: float = Field(gt=0, le=1000)
    input_tokens_per_turn: float = Field(ge=0, le=2_000_000)
    output_tokens_per_turn: float = Field(ge=0, le=200_000)
    tool_calls_per_turn: float = Field(ge=0, le=100)
    kb_queries_per_turn: float = Field(ge=0, le=100)
    kb_query_chars: float = Field(default=60.0, ge=0, le=100_000)
    guardrail_text_units_per_turn: float = Field(ge=0, le=10_000)
    runtime_vcpu_seconds_per_turn: float = Field(ge=0, le=3600)
    # assumptions (see ASSUMPTIONS); override with --set FIELD=VALUE
    model_calls_per_turn: float | None = Field(default=None, ge=0, le=100)
    turn_seconds: float = Field(default=8.0, ge=0, le=3600)
    think_seconds: float = Field(default=30.0, ge=0, le=28_800)
    runtime_memory_gb: float = Field(default=0.5, gt=0, le=8)
    memory_events_per_turn: float = Field(default=1.0, ge=0, le=100)
    memory_retrievals_per_turn: float = Field(default=1.0, ge=0, le=100)
    memory_records_per_conversation: float = Field(default=3.0, ge=0, le=1000)
    list_tools_per_conversation: float = Field(default=1.0, ge=0, le=1000)
    interceptor_invocations_per_gateway_call: float = Field(default=2.0, ge=0, le=10)
    lambda_seconds_per_invocation: float = Field(default=0.2, ge=0, le=900)
    lambda_memory_gb: float = Field(default=0.5, gt=0, le=10)
    log_kb_per_turn: float = Field(default=8.0, ge=0, le=100_000)
    scores_per_turn: float = Field(default=0.0, ge=0, le=100)
    gateway_traces_per_model_call: float = Field(default=1.0, ge=0, le=10)

    @property
    def model_calls(self) -> float:
        """Model calls per turn: measured, else one per tool call plus the answer (sequential tools)."""
        if self.model_calls_per_turn is not None:
            return self.model_calls_per_turn
        return 1.0 + self.tool_calls_per_turn

    @property
    def langfuse_units_per_turn(self) -> float:
        """docs/tracing-contract.md: 1 trace; observations agent-turn, 2 guardrail spans, invoke_agent, one
        cycle + one generation per model call, one span per tool call; LiteLLM's own trace (1 trace +
        1 generation) per model call; scores."""
        observations = 4 + 2 * self.model_calls + self.tool_calls_per_turn
        gateway = 2 * self.model_calls * self.gateway_traces_per_model_call
        return 1 + observations + gateway + self.scores_per_turn

    def basis_of(self, name: str) -> str:
        return self.basis.get(name) or ASSUMPTIONS.get(name, "")


def _first_error(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "(document)"
    return f"field {where!r}: {first['msg']}"


def load_profile(path: Path = DEFAULT_PROFILE, overrides: Sequence[str] = ()) -> TurnProfile:
    """Read a turn profile and apply `FIELD=VALUE` overrides (numbers).

    Raises:
        UsageError: the file is missing or not a profile, an override names an unknown or non-numeric
            field, or a value is out of range (the message names the field).
    """
    try:
        raw: Any = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(
            f"turn profile {path} does not exist: write one with `python -m eval run --write-profile {path}` "
            f"or pass --usage-profile (default {DEFAULT_PROFILE.relative_to(PROFILES_DIR.parent.parent)})"
        ) from None
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(raw, dict):
        raise UsageError(f"{path}: a turn profile is a JSON object, got {type(raw).__name__}")
    values = dict(raw)
    basis = dict(values.get("basis") or {})
    for override in overrides:
        name, value = _parse_override(override)
        values[name] = value
        basis[name] = "set on the command line"
    values["basis"] = basis
    try:
        return TurnProfile.model_validate(values)
    except ValidationError as exc:
        raise UsageError(f"{path}: {_first_error(exc)}") from None


_NUMERIC_FIELDS = frozenset(
    name for name, info in TurnProfile.model_fields.items() if info.annotation in (float, float | None, int)
)


def _parse_override(text: str) -> tuple[str, float]:
    name, sep, value = text.partition("=")
    name = name.strip()
    if not sep or not name:
        raise UsageError(f"--set {text!r}: expected FIELD=NUMBER, e.g. turns_per_conversation=4")
    if name not in _NUMERIC_FIELDS:
        raise UsageError(f"--set {text!r}: unknown field {name!r}; known: {sorted(_NUMERIC_FIELDS)}")
    try:
        number = float(value)
    except ValueError:
        raise UsageError(f"--set {text!r}: {value.strip()!r} is not a number") from None
    if not math.isfinite(number):
        raise UsageError(f"--set {text!r}: the value must be finite")
    return name, number


# --- the usage price table --------------------------------------------------------------------------------

Status = Literal["confirmed", "secondary", "unverified"]


class Price(_Strict):
    usd: float = Field(ge=0)
    source: str = Field(pattern=r"^https://")
    status: Status
    evidence: str = Field(min_length=3)

    @property
    def flagged(self) -> bool:
        return self.status != "confirmed"


class ModelPrice(_Strict):
    input_per_million: Price
    output_per_million: Price


class GuardrailPrices(_Strict):
    content: Price
    topics: Price
    sensitive_information: Price
    contextual_grounding: Price
    words: Price


class AgentCorePrices(_Strict):
    runtime_vcpu_hour: Price
    runtime_gb_hour: Price
    gateway_per_1000_invocations: Price
    memory_per_1000_events: Price
    memory_per_1000_retrievals: Price
    memory_per_1000_records_month: Price


class LambdaPrices(_Strict):
    per_million_requests: Price
    arm64_gb_second: Price


class LangfusePlan(_Strict):
    usd_month: float = Field(ge=0)
    included_units: int = Field(ge=0)
    hard_cap: bool = False


class OverageTier(_Strict):
    up_to_units: int | None = Field(default=None, gt=0)
    usd: float = Field(ge=0)


class LangfuseCloudPrices(_Strict):
    source: str = Field(pattern=r"^https://")
    units_definition: str = Field(pattern=r"^https://")
    status: Status
    evidence: str
    plans: dict[str, LangfusePlan]
    overage_per_100k_units: tuple[OverageTier, ...] = Field(min_length=1)


class UsagePriceTable(_Strict):
    region: str
    currency: Literal["USD"]
    as_of: date
    source: str = Field(min_length=10)
    bedrock_models: dict[str, ModelPrice]
    embedding_per_million_tokens: Price
    guardrail_per_1000_text_units: GuardrailPrices
    agentcore: AgentCorePrices
    agentcore_runtime_minimum_gb: float = Field(gt=0)
    agentcore_runtime_billing: str = ""
    lambda_: LambdaPrices = Field(alias="lambda")
    s3_vectors_per_million_queries: Price
    cloudwatch_logs_ingestion_gb: Price
    langfuse_cloud: LangfuseCloudPrices


USAGE_DIR = "usage"  # cost/prices/usage/<region>.json, beside the idle tables cost/prices/<region>.json


def usage_table_path(region: str, prices_dir: Path = PRICES_DIR) -> Path:
    return prices_dir / USAGE_DIR / f"{region}.json"


def load_usage_prices(region: str, prices_dir: Path = PRICES_DIR) -> UsagePriceTable:
    """The usage price table of `region`.

    Raises:
        PriceError: no table for the region (the message lists those that exist), or an invalid table
            (the message names the field).
    """
    path = usage_table_path(region, prices_dir)
    if not path.is_file():
        available = sorted(p.stem for p in (prices_dir / USAGE_DIR).glob("*.json"))
        raise PriceError(f"no usage price table for region {region!r}; available: {available}. Add {path}.")
    try:
        raw: Any = json.loads(path.read_text(encoding="utf-8"))
        table = UsagePriceTable.model_validate(raw)
    except json.JSONDecodeError as exc:
        raise PriceError(f"{path}: not valid JSON ({exc})") from None
    except ValidationError as exc:
        raise PriceError(f"{path}: {_first_error(exc)}") from None
    if table.region != region:
        raise PriceError(f"{path}: declares region {table.region!r}, expected {region!r}")
    return table


# --- facts from the synthesized templates -----------------------------------------------------------------

GUARDRAIL_POLICIES: dict[str, str] = {
    "ContentPolicyConfig": "content",
    "TopicPolicyConfig": "topics",
    "SensitiveInformationPolicyConfig": "sensitive_information",
    "ContextualGroundingPolicyConfig": "contextual_grounding",
    "WordPolicyConfig": "words",
}


@dataclass(frozen=True)
class Deployment:
    """What the usage model needs to know about the synthesized foundation."""

    model_alias: str | None = None
    idle_timeout_seconds: float | None = None
    memory: bool = False
    gateway: bool = False
    knowledge_base: bool = False
    guardrail_policies: tuple[str, ...] = ()
    self_hosted_langfuse: bool = False
    notes: tuple[str, ...] = ()


def _resources(template: Mapping[str, Any], resource_type: str) -> list[Mapping[str, Any]]:
    return [
        resource.get("Properties") or {}
        for resource in (template.get("Resources") or {}).values()
        if isinstance(resource, Mapping) and resource.get("Type") == resource_type
    ]


def read_deployment(templates: Mapping[str, Mapping[str, Any]]) -> Deployment:
    """The agent model, idle timeout, memory, gateway, knowledge base, guardrail policies and Langfuse
    hosting, from the templates (absent pieces stay empty and are then not priced)."""
    alias: str | None = None
    idle: float | None = None
    memory = gateway = knowledge_base = self_hosted = False
    policies: set[str] = set()
    for name, template in templates.items():
        for runtime in _resources(template, "AWS::BedrockAgentCore::Runtime"):
            variables = runtime.get("EnvironmentVariables") or {}
            value = variables.get("MODEL_ALIAS")
            alias = value if isinstance(value, str) else alias
            lifecycle = runtime.get("LifecycleConfiguration") or {}
            timeout = lifecycle.get("IdleRuntimeSessionTimeout")
            idle = float(timeout) if isinstance(timeout, int | float) else idle
        memory = memory or bool(_resources(template, "AWS::BedrockAgentCore::Memory"))
        gateway = gateway or bool(_resources(template, "AWS::BedrockAgentCore::Gateway"))
        knowledge_base = knowledge_base or bool(_resources(template, "AWS::Bedrock::KnowledgeBase"))
        for guardrail in _resources(template, "AWS::Bedrock::Guardrail"):
            policies.update(GUARDRAIL_POLICIES[key] for key in guardrail if key in GUARDRAIL_POLICIES)
        if name.endswith("-observability") and _resources(template, "AWS::ECS::Service"):
            self_hosted = True
    return Deployment(
        model_alias=alias,
        idle_timeout_seconds=idle,
        memory=memory,
        gateway=gateway,
        knowledge_base=knowledge_base,
        guardrail_policies=tuple(sorted(policies)),
        self_hosted_langfuse=self_hosted,
    )


# --- the estimate -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UsageLine:
    component: str
    usd_per_1000: float
    detail: str
    flagged: tuple[str, ...] = ()  # names of the non-confirmed prices behind this line


@dataclass(frozen=True)
class PlanBreakEven:
    plan: str
    usd_month_base: float
    conversations_per_month: float | None  # None: the plan never costs as much (or is capped below)
    note: str = ""


@dataclass
class UsageEstimate:
    prices: UsagePriceTable
    profile: TurnProfile
    deployment: Deployment
    model_id: str | None
    lines: list[UsageLine] = field(default_factory=list)
    not_priced: list[str] = field(default_factory=list)
    langfuse_units_per_conversation: float = 0.0
    self_hosted_langfuse_usd_month: float | None = None
    break_even: list[PlanBreakEven] = field(default_factory=list)

    @property
    def usd_per_1000(self) -> float:
        return sum(line.usd_per_1000 for line in self.lines)

    @property
    def flagged_prices(self) -> list[str]:
        return sorted({name for line in self.lines for name in line.flagged})


class _Pricer:
    """Collects the prices a line uses so the line can say which of them are not confirmed."""

    def __init__(self) -> None:
        self.used: list[tuple[str, Price]] = []

    def __call__(self, name: str, price: Price) -> float:
        self.used.append((name, price))
        return price.usd

    def flagged(self) -> tuple[str, ...]:
        names = [f"{name} ({price.status})" for name, price in self.used if price.flagged]
        self.used = []
        return tuple(names)


def estimate_usage(
    profile: TurnProfile,
    prices: UsagePriceTable,
    deployment: Deployment,
    model_id: str | None,
    self_hosted_langfuse_usd_month: float | None = None,
) -> UsageEstimate:
    """Cost of 1,000 conversations per component, and the self-hosted vs Langfuse Cloud break-even."""
    estimate = UsageEstimate(prices, profile, deployment, model_id)
    turns = profile.turns_per_conversation
    n = CONVERSATIONS
    price = _Pricer()

    def add(component: str, usd_per_conversation: float, detail: str) -> None:
        estimate.lines.append(UsageLine(component, usd_per_conversation * n, detail, price.flagged()))

    # model tokens
    model = prices.bedrock_models.get(model_id or "")
    if model is None:
        estimate.not_priced.append(
            f"model {deployment.model_alias or '?'} ({model_id or 'unknown model id'}): no price in "
            f"cost/prices/usage/{prices.region}.json bedrock_models"
        )
    else:
        usd = turns * (
            profile.input_tokens_per_turn * price("model input", model.input_per_million)
            + profile.output_tokens_per_turn * price("model output", model.output_per_million)
        )
        add(
            "model",
            usd / 1e6,
            f"{model_id}: {profile.input_tokens_per_turn:,.0f} in + {profile.output_tokens_per_turn:,.0f} out "
            "tokens/turn",
        )

    # guardrail: the agent's prompt + answer check, and LiteLLM's pre/post-call check of every model call
    if deployment.guardrail_policies:
        per_unit = sum(
            price(f"guardrail {policy}", getattr(prices.guardrail_per_1000_text_units, policy))
            for policy in deployment.guardrail_policies
        )
        gateway_units = (
            (profile.input_tokens_per_turn + profile.output_tokens_per_turn)
            * CHARS_PER_TOKEN
            / TEXT_UNIT_CHARS
            + profile.model_calls  # each call's input and output round up to whole units: ~1 extra per call
        )
        units = profile.guardrail_text_units_per_turn + gateway_units
        add(
            "guardrail",
            turns * units * per_unit / 1000,
            f"{units:,.1f} text units/turn x {len(deployment.guardrail_policies)} policies "
            f"(agent {profile.guardrail_text_units_per_turn:,.1f}, gateway {gateway_units:,.1f})",
        )

    # AgentCore Runtime: CPU while active; memory over the whole session including the idle tail
    idle = deployment.idle_timeout_seconds if deployment.idle_timeout_seconds is not None else 900.0
    memory_gb = max(profile.runtime_memory_gb, prices.agentcore_runtime_minimum_gb)
    session_seconds = turns * profile.turn_seconds + max(turns - 1, 0) * profile.think_seconds + idle
    cpu = turns * profile.runtime_vcpu_seconds_per_turn / SECONDS_PER_HOUR
    memory_gb_hours = memory_gb * session_seconds / SECONDS_PER_HOUR
    add(
        "agentcore-runtime",
        cpu * price("runtime vCPU-hour", prices.agentcore.runtime_vcpu_hour)
        + memory_gb_hours * price("runtime GB-hour", prices.agentcore.runtime_gb_hour),
        f"{turns * profile.runtime_vcpu_seconds_per_turn:,.2f} vCPU-s + {memory_gb:g} GB x "
        f"{session_seconds:,.0f} s session (incl. {idle:,.0f} s idle timeout)",
    )

    # tool gateway: MCP calls + the interceptor and target Lambdas
    if deployment.gateway:
        tool_calls = turns * profile.tool_calls_per_turn
        gateway_calls = tool_calls + profile.list_tools_per_conversation
        invocations = tool_calls + gateway_calls * profile.interceptor_invocations_per_gateway_call
        lambda_usd = invocations * (
            price("lambda requests", prices.lambda_.per_million_requests) / 1e6
            + profile.lambda_seconds_per_invocation
            * profile.lambda_memory_gb
            * price("lambda GB-s", prices.lambda_.arm64_gb_second)
        )
        add(
            "tool-gateway",
            gateway_calls * price("gateway invocations", prices.agentcore.gateway_per_1000_invocations) / 1000
            + lambda_usd,
            f"{gateway_calls:,.1f} MCP calls, {invocations:,.1f} Lambda invocations per conversation",
        )

    # AgentCore Memory: short-term events, long-term retrievals and one month of the records extracted
    if deployment.memory:
        events = turns * profile.memory_events_per_turn
        retrievals = turns * profile.memory_retrievals_per_turn
        add(
            "agentcore-memory",
            events * price("memory events", prices.agentcore.memory_per_1000_events) / 1000
            + retrievals * price("memory retrievals", prices.agentcore.memory_per_1000_retrievals) / 1000
            + profile.memory_records_per_conversation
            * price("memory records", prices.agentcore.memory_per_1000_records_month)
            / 1000,
            f"{events:,.1f} events, {retrievals:,.1f} retrievals, "
            f"{profile.memory_records_per_conversation:g} records x 1 month",
        )

    # knowledge base: one S3 Vectors query and one query embedding per search
    if deployment.knowledge_base:
        queries = turns * profile.kb_queries_per_turn
        embedding_tokens = queries * profile.kb_query_chars / CHARS_PER_TOKEN
        add(
            "knowledge-base",
            queries * price("S3 Vectors queries", prices.s3_vectors_per_million_queries) / 1e6
            + embedding_tokens * price("query embedding", prices.embedding_per_million_tokens) / 1e6,
            f"{queries:,.2f} queries per conversation",
        )

    # observability: CloudWatch Logs ingestion (self-hosted Langfuse is in the idle cost)
    log_gb = turns * profile.log_kb_per_turn / 1e6
    add(
        "observability",
        log_gb * price("CloudWatch Logs ingestion", prices.cloudwatch_logs_ingestion_gb),
        f"{turns * profile.log_kb_per_turn:,.0f} KB of logs per conversation; "
        + (
            "self-hosted Langfuse: in the idle cost"
            if deployment.self_hosted_langfuse
            else "Langfuse not self-hosted"
        ),
    )

    estimate.langfuse_units_per_conversation = turns * profile.langfuse_units_per_turn
    estimate.self_hosted_langfuse_usd_month = self_hosted_langfuse_usd_month
    if self_hosted_langfuse_usd_month is not None:
        estimate.break_even = break_even(
            self_hosted_langfuse_usd_month, estimate.langfuse_units_per_conversation, prices.langfuse_cloud
        )
    return estimate


def hosted_cost(units: float, plan: LangfusePlan, tiers: Sequence[OverageTier]) -> float:
    """Langfuse Cloud monthly price for `units` on `plan`: the base plus graduated overage per 100k units
    (each tier's `up_to_units` is a bound on the month's total units)."""
    cost = plan.usd_month
    lower = float(plan.included_units)
    for tier in tiers:
        upper = math.inf if tier.up_to_units is None else float(tier.up_to_units)
        if units > lower and upper > lower:
            cost += (min(units, upper) - lower) / 100_000 * tier.usd
        lower = max(lower, upper)
    return cost


def _units_at_price(target: float, plan: LangfusePlan, tiers: Sequence[OverageTier]) -> float | None:
    """The monthly units at which `plan` costs `target` > its base (inverse of `hosted_cost`); None when
    no volume reaches it."""
    cost = plan.usd_month
    lower = float(plan.included_units)
    for tier in tiers:
        upper = math.inf if tier.up_to_units is None else float(tier.up_to_units)
        if upper <= lower:
            continue
        if tier.usd > 0:
            tier_cost = (upper - lower) / 100_000 * tier.usd
            if cost + tier_cost >= target:
                return lower + (target - cost) / tier.usd * 100_000
            cost += tier_cost
        lower = upper
    return None


def break_even(
    self_hosted_usd_month: float, units_per_conversation: float, cloud: LangfuseCloudPrices
) -> list[PlanBreakEven]:
    """Per Langfuse Cloud plan: the conversations/month above which self-hosting costs less."""
    results: list[PlanBreakEven] = []
    for name, plan in cloud.plans.items():
        if plan.hard_cap:
            capacity = plan.included_units / units_per_conversation if units_per_conversation else math.inf
            results.append(
                PlanBreakEven(name, plan.usd_month, None, f"free up to {capacity:,.0f} conversations/month")
            )
            continue
        if self_hosted_usd_month <= plan.usd_month:
            results.append(PlanBreakEven(name, plan.usd_month, 0.0, "self-hosting costs less at any volume"))
            continue
        units = _units_at_price(self_hosted_usd_month, plan, cloud.overage_per_100k_units)
        conversations = (
            None if units is None or not units_per_conversation else units / units_per_conversation
        )
        results.append(PlanBreakEven(name, plan.usd_month, conversations))
    return results


# --- rendering --------------------------------------------------------------------------------------------


def render_usage(
    estimate: UsageEstimate, idle_usd_month: float, conversations_per_month: int, profile_path: Path | None
) -> str:
    p = estimate.profile
    prices = estimate.prices
    measured = p.measured_from
    origin = (
        f"measured in eval run {measured.run_name} on {measured.date.isoformat()}"
        + (f" at {measured.commit[:12]}" if measured.commit else "")
        + f" ({measured.turns} turns, {measured.conversations} conversations)"
        if measured
        else "not measured (a hand-written profile)"
    )
    lines = [
        "",
        f"Usage cost per {CONVERSATIONS:,} conversations, {prices.region} usage prices as of {prices.as_of.isoformat()}",
        f"  turn profile {p.name} ({profile_path or 'given'}): {origin}",
        f"  {p.turns_per_conversation:.2f} turns/conversation; per turn {p.input_tokens_per_turn:,.0f} input + "
        f"{p.output_tokens_per_turn:,.0f} output tokens, {p.tool_calls_per_turn:.2f} tool calls, "
        f"{p.kb_queries_per_turn:.2f} KB queries, {p.model_calls:.2f} model calls",
        f"{'component':<20} {'USD/1k conv':>11}  basis",
    ]
    for line in sorted(estimate.lines, key=lambda item: -item.usd_per_1000):
        mark = " *" if line.flagged else "  "
        lines.append(f"{line.component:<20} {line.usd_per_1000:>11.2f}{mark}{line.detail}")
    lines.append(f"{'total':<20} {estimate.usd_per_1000:>11.2f}")
    for reason in estimate.not_priced:
        lines.append(f"  NOT PRICED {reason}")
    monthly_usage = estimate.usd_per_1000 * conversations_per_month / CONVERSATIONS
    lines.append(
        f"  at {conversations_per_month:,} conversations/month: idle {idle_usd_month:,.2f} + usage "
        f"{monthly_usage:,.2f} = {idle_usd_month + monthly_usage:,.2f} USD/month"
    )
    flagged = estimate.flagged_prices
    if flagged:
        lines.append(
            f"  * UNVERIFIED prices behind these lines (not read on the vendor's page; see "
            f"cost/prices/usage/{prices.region}.json 'evidence'): {', '.join(flagged)}"
        )
    assumed = [name for name in ASSUMPTIONS if name not in p.basis]
    if assumed:
        lines.append(f"  assumptions (override with --set FIELD=VALUE; docs/cost.md): {', '.join(assumed)}")
    lines.extend(_break_even_lines(estimate))
    return "\n".join(lines)


def _break_even_lines(estimate: UsageEstimate) -> list[str]:
    cloud = estimate.prices.langfuse_cloud
    units = estimate.langfuse_units_per_conversation
    if estimate.self_hosted_langfuse_usd_month is None:
        return [
            f"  Langfuse: {units:,.0f} units/conversation; not self-hosted here, so no break-even "
            f"(Langfuse Cloud prices: {cloud.source})"
        ]
    lines = [
        f"Break-even, self-hosted Langfuse (idle {estimate.self_hosted_langfuse_usd_month:,.2f} USD/month) vs "
        f"Langfuse Cloud at {units:,.0f} units/conversation (prices {cloud.status}, {cloud.source}):"
    ]
    for result in estimate.break_even:
        if result.conversations_per_month is None:
            verdict = result.note or "never reaches the self-hosted cost"
        elif result.note:
            verdict = result.note
        else:
            verdict = (
                f"self-hosting is cheaper above {result.conversations_per_month:,.0f} conversations/month"
            )
        lines.append(f"  {result.plan:<6} (${result.usd_month_base:,.0f}/month base): {verdict}")
    return lines


def usage_json(estimate: UsageEstimate, conversations_per_month: int) -> dict[str, Any]:
    p = estimate.profile
    return {
        "prices_as_of": estimate.prices.as_of.isoformat(),
        "profile": p.name,
        "measured_from": p.measured_from.model_dump(mode="json") if p.measured_from else None,
        "model_id": estimate.model_id,
        "usd_per_1000_conversations": round(estimate.usd_per_1000, 2),
        "components": {line.component: round(line.usd_per_1000, 4) for line in estimate.lines},
        "unverified_prices": estimate.flagged_prices,
        "not_priced": estimate.not_priced,
        "conversations_per_month": conversations_per_month,
        "usage_usd_month": round(estimate.usd_per_1000 * conversations_per_month / CONVERSATIONS, 2),
        "langfuse_units_per_conversation": round(estimate.langfuse_units_per_conversation, 2),
        "self_hosted_langfuse_usd_month": estimate.self_hosted_langfuse_usd_month,
        "break_even": [
            {
                "plan": result.plan,
                "usd_month_base": result.usd_month_base,
                "conversations_per_month": None
                if result.conversations_per_month is None
                else round(result.conversations_per_month),
                "note": result.note,
            }
            for result in estimate.break_even
        ],
    }

"""Code evaluators: deterministic checks of one turn against its golden expectations.

Each function takes the expectation (`Turn`) and the agent's reply and returns a `Score`, or None when the
evaluator does not apply to the turn (e.g. retrieval metrics for a turn that expects no documents).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Mapping
from functools import lru_cache
from importlib.util import find_spec
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote, urlsplit

from eval.agent import AgentReply, Citation, ToolCallRecord
from eval.dataset import Turn
from eval.scores import Score

logger = logging.getLogger(__name__)


# --- tools -------------------------------------------------------------------------------------------


def tool_precision(turn: Turn, reply: AgentReply) -> Score:
    """Share of the distinct tools called that were expected (1.0 when no tool was called)."""
    expected = {t.name for t in turn.expected_tools}
    called = {t.name for t in reply.metadata.tools}
    if not called:
        return Score(name="tool_precision", value=1.0, reason="no tool called")
    hits = called & expected
    extra = sorted(called - expected)
    reason = f"{len(hits)}/{len(called)} called tools expected" + (f"; unexpected: {extra}" if extra else "")
    return Score(name="tool_precision", value=len(hits) / len(called), reason=reason)


def tool_recall(turn: Turn, reply: AgentReply) -> Score:
    """Share of the expected tools that were called (1.0 when no tool was expected)."""
    expected = {t.name for t in turn.expected_tools}
    called = {t.name for t in reply.metadata.tools}
    if not expected:
        return Score(name="tool_recall", value=1.0, reason="no tool expected")
    hits = expected & called
    missing = sorted(expected - called)
    reason = f"{len(hits)}/{len(expected)} expected tools called" + (
        f"; missing: {missing}" if missing else ""
    )
    return Score(name="tool_recall", value=len(hits) / len(expected), reason=reason)


def tool_arguments(turn: Turn, reply: AgentReply) -> Score | None:
    """Share of the expected key arguments the agent sent correctly (best matching call per tool)."""
    checks = [(tool.name, tool.arguments) for tool in turn.expected_tools if tool.arguments]
    if not checks:
        return None
    matched = total = 0
    misses: list[str] = []
    for name, arguments in checks:
        calls = [call for call in reply.metadata.tools if call.name == name]
        total += len(arguments)
        if not calls:
            misses.append(f"{name} not called")
            continue
        best_ok: list[str] = []
        best_call = calls[0]
        for call in calls:
            ok = [
                key
                for key, expected in arguments.items()
                if argument_matches(expected, call.arguments.get(key, _MISSING))
            ]
            if len(ok) > len(best_ok):
                best_ok, best_call = ok, call
        matched += len(best_ok)
        misses.extend(
            f"{name}.{key}: expected {arguments[key]!r}, got {best_call.arguments.get(key, _MISSING)!r}"
            for key in arguments
            if key not in best_ok
        )
    reason = f"{matched}/{total} key arguments correct" + (f"; {'; '.join(misses)}" if misses else "")
    return Score(name="tool_arguments", value=matched / total, reason=reason[:500])


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


_MISSING: Any = _Missing()


def argument_matches(expectation: Any, actual: Any) -> bool:
    """Whether an actual argument value satisfies an expectation (see eval.dataset for the forms)."""
    if actual is _MISSING:
        return False
    if isinstance(expectation, dict):
        if "any_of" in expectation:
            return any(argument_matches(option, actual) for option in expectation["any_of"])
        if "pattern" in expectation:
            return isinstance(actual, str) and re.search(expectation["pattern"], actual) is not None
        return False
    if isinstance(expectation, str):
        return isinstance(actual, str) and expectation.casefold() in actual.casefold()
    if isinstance(expectation, bool) or expectation is None:
        return actual is expectation or (actual == expectation and type(actual) is type(expectation))
    if isinstance(expectation, int | float):
        return (
            not isinstance(actual, bool)
            and isinstance(actual, int | float)
            and float(actual) == float(expectation)
        )
    return bool(expectation == actual)


# --- retrieval ---------------------------------------------------------------------------------------


def document_name(uri: str) -> str:
    """The file name a citation URI points at (`s3://b/docs/router.pdf?x=1` -> `router.pdf`)."""
    path = urlsplit(uri).path if "://" in uri else uri
    return PurePosixPath(unquote(path)).name


def retrieved_documents(citations: Iterable[Citation]) -> list[str]:
    """Distinct document names in retrieval order."""
    seen: list[str] = []
    for citation in citations:
        name = document_name(citation.uri) if citation.uri else citation.title
        if name and name not in seen:
            seen.append(name)
    return seen


def retrieval_hit_rate(turn: Turn, reply: AgentReply) -> Score | None:
    """1 when any expected document is among the retrieved documents."""
    if not turn.expected_documents:
        return None
    documents = retrieved_documents(reply.metadata.citations)
    hit = [d for d in turn.expected_documents if d in documents]
    reason = f"retrieved {documents or 'nothing'}; expected any of {list(turn.expected_documents)}"
    return Score(name="retrieval_hit_rate", value=1.0 if hit else 0.0, reason=reason)


def retrieval_mrr(turn: Turn, reply: AgentReply) -> Score | None:
    """Reciprocal rank of the first expected document among the retrieved documents (0 when absent)."""
    if not turn.expected_documents:
        return None
    documents = retrieved_documents(reply.metadata.citations)
    for rank, document in enumerate(documents, start=1):
        if document in turn.expected_documents:
            return Score(
                name="retrieval_mrr", value=1.0 / rank, reason=f"first expected document at rank {rank}"
            )
    return Score(name="retrieval_mrr", value=0.0, reason="no expected document retrieved")


# --- guardrail and answer ----------------------------------------------------------------------------


def guardrail_correct(turn: Turn, reply: AgentReply) -> Score:
    """1 when the guardrail blocked exactly the turns it should block."""
    action = reply.metadata.guardrail.action
    blocked = action == "BLOCKED"
    if blocked == turn.guardrail_blocked:
        reason = (
            f"guardrail {action}"
            + (f" at {reply.metadata.guardrail.stage}" if blocked else "")
            + " as expected"
        )
        return Score(name="guardrail_correct", value=1.0, reason=reason)
    want = "BLOCKED" if turn.guardrail_blocked else "not blocked"
    return Score(name="guardrail_correct", value=0.0, reason=f"expected {want}, got {action}")


def answer_contains(turn: Turn, reply: AgentReply) -> Score | None:
    """Share of the required phrases present in the answer (case-insensitive)."""
    if not turn.answer_contains:
        return None
    answer = reply.answer.casefold()
    missing = [p for p in turn.answer_contains if p.casefold() not in answer]
    value = 1 - len(missing) / len(turn.answer_contains)
    return Score(
        name="answer_contains",
        value=value,
        reason=f"missing: {missing}" if missing else "all phrases present",
    )


# --- latency, tokens, cost ---------------------------------------------------------------------------


def latency(reply: AgentReply) -> Score:
    """The agent's own latency (falls back to the client-measured one)."""
    value = reply.metadata.latency_ms if reply.metadata.latency_ms is not None else reply.client_latency_ms
    source = "agent" if reply.metadata.latency_ms is not None else "client"
    return Score(name="latency_ms", value=round(value, 1), reason=f"{source}-measured")


def tokens(reply: AgentReply) -> Score:
    usage = reply.metadata.usage
    total = usage.total_tokens or usage.input_tokens + usage.output_tokens
    return Score(
        name="total_tokens", value=float(total), reason=f"in {usage.input_tokens}, out {usage.output_tokens}"
    )


class PriceTable:
    """USD per token for a model alias: the catalog's own prices first, then LiteLLM's bundled price list."""

    def __init__(self, catalog: Mapping[str, tuple[str, float | None, float | None]]) -> None:
        # alias -> (model_id, input $/1M, output $/1M)
        self._catalog = dict(catalog)

    def per_token(self, model: str) -> tuple[float, float] | None:
        model_id, input_million, output_million = self._catalog.get(model, (model, None, None))
        if input_million is not None and output_million is not None:
            return input_million / 1e6, output_million / 1e6
        prices = _litellm_prices()
        for key in (model_id, f"bedrock/{model_id}", model_id.split("/", 1)[-1]):
            entry = prices.get(key)
            if entry and entry.get("input_cost_per_token") is not None:
                return float(entry["input_cost_per_token"]), float(entry.get("output_cost_per_token") or 0.0)
        return None

    def cost(self, reply: AgentReply) -> Score:
        model = reply.metadata.model
        if not model:
            return Score(name="cost_usd", value=None, error="the reply names no model; cannot price it")
        prices = self.per_token(model)
        if prices is None:
            return Score(name="cost_usd", value=None, error=f"no price known for model {model!r}")
        usage = reply.metadata.usage
        value = usage.input_tokens * prices[0] + usage.output_tokens * prices[1]
        return Score(
            name="cost_usd",
            value=round(value, 6),
            reason=f"{model}: {usage.input_tokens} in, {usage.output_tokens} out",
        )


@lru_cache(maxsize=1)
def _litellm_prices() -> dict[str, Any]:
    """LiteLLM's bundled price list, read as a file (importing litellm costs seconds); {} when absent."""
    spec = find_spec("litellm")
    if spec is None or spec.origin is None:
        return {}
    path = Path(spec.origin).parent / "model_prices_and_context_window_backup.json"
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        logger.warning("cannot read LiteLLM's price list at %s", path)
        return {}
    return loaded if isinstance(loaded, dict) else {}


def price_table_from_config() -> PriceTable:
    """Prices for the aliases of the model catalog in config/foundation.yaml."""
    from config import load_config  # local import: the config pulls YAML parsing only when used

    catalog = load_config().models
    return PriceTable(
        {e.alias: (e.model_id, e.input_cost_per_million, e.output_cost_per_million) for e in catalog.entries}
    )


def code_scores(turn: Turn, reply: AgentReply, prices: PriceTable) -> list[Score]:
    """Every code evaluator that applies to this turn."""
    candidates = [
        tool_precision(turn, reply),
        tool_recall(turn, reply),
        tool_arguments(turn, reply),
        retrieval_hit_rate(turn, reply),
        retrieval_mrr(turn, reply),
        guardrail_correct(turn, reply),
        answer_contains(turn, reply),
        latency(reply),
        tokens(reply),
        prices.cost(reply),
    ]
    return [score for score in candidates if score is not None]


def failed_tools(tools: Iterable[ToolCallRecord]) -> list[str]:
    return [f"{t.name}: {t.error}" for t in tools if t.status == "error"]

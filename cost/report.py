"""Text and JSON renderings of an idle-cost estimate, and the one-paragraph summary `make synth` prints."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cost.model import Estimate, estimate_templates, money, read_assembly
from cost.prices import PRICES_DIR, PriceError, load_prices
from cost.usage import (
    DEFAULT_PROFILE,
    UsageEstimate,
    estimate_usage,
    load_profile,
    load_usage_prices,
    read_deployment,
)

logger = logging.getLogger(__name__)

DEFAULT_REGION = "us-east-1"
# The target for the dev profile with every component self-hosted.
TARGETS = {"dev": 150.0}


def estimate_assembly(outdir: Path, region: str | None = None, prices_dir: Path = PRICES_DIR) -> Estimate:
    """Estimate a cloud assembly with the price table of `region` (default: the assembly's region, else
    us-east-1 for an environment-agnostic synth)."""
    assembly = read_assembly(outdir)
    prices = load_prices(region or assembly.region or DEFAULT_REGION, prices_dir)
    return estimate_templates(assembly.templates, prices)


def usage_for_assembly(
    outdir: Path,
    estimate: Estimate,
    profile_path: Path = DEFAULT_PROFILE,
    overrides: Sequence[str] = (),
    prices_dir: Path = PRICES_DIR,
) -> UsageEstimate:
    """The usage cost of the assembly `estimate` was made from: its region's usage prices, the agent's
    model from the runtime's `MODEL_ALIAS` resolved in the model catalog of the assembly's profile, and the
    self-hosted Langfuse idle cost (the observability stack) for the break-even.

    Raises:
        UsageError: bad profile or override. PriceError: no or invalid usage price table.
    """
    profile = load_profile(profile_path, overrides)
    prices = load_usage_prices(estimate.prices.region, prices_dir)
    deployment = read_deployment(read_assembly(outdir).templates)
    model_id = _model_id(deployment.model_alias, estimate.profile)
    observability = [
        stack.monthly for stack in estimate.stacks if component(stack.name) == OBSERVABILITY_COMPONENT
    ]
    self_hosted = observability[0] if observability and deployment.self_hosted_langfuse else None
    return estimate_usage(profile, prices, deployment, model_id, self_hosted)


OBSERVABILITY_COMPONENT = "observability"


def _model_id(alias: str | None, profile: str | None) -> str | None:
    """The catalog's model id for the runtime's alias (the catalog of the synthesized profile)."""
    from config import load_config  # deferred: YAML parsing only when the usage model runs

    catalog = load_config({"profile": profile} if profile else None).models
    name = alias or catalog.agent_alias
    try:
        return catalog.entry(name).model_id
    except KeyError:
        logger.warning("model alias %r is not in the %s catalog", name, profile or "default")
        return None


def component(stack_name: str) -> str:
    """`aaf-llm-gateway` -> `llm-gateway` (the stack's component)."""
    return stack_name.split("-", 1)[1] if "-" in stack_name else stack_name


def render_table(estimate: Estimate, *, details: bool = False) -> str:
    prices = estimate.prices
    lines = [
        f"Idle monthly cost (zero traffic), {prices.region} prices as of {prices.as_of.isoformat()}"
        + (f", profile {estimate.profile}" if estimate.profile else ""),
        f"{'component':<20} {'USD/month':>10}  largest items",
    ]
    for stack in sorted(estimate.stacks, key=lambda s: -s.monthly):
        top = sorted(stack.items, key=lambda i: -i.monthly)[:3]
        summary = "; ".join(f"{i.description} {money(i.monthly)}" for i in top if i.monthly >= 0.01)
        lines.append(f"{component(stack.name):<20} {stack.monthly:>10.2f}  {summary}")
        if details:
            for item in sorted(stack.items, key=lambda i: -i.monthly):
                lines.append(
                    f"{'':<4}{item.monthly:>26.2f}  {item.logical_id} ({item.resource_type}): {item.description}"
                )
    lines.append(f"{'total':<20} {estimate.monthly:>10.2f}")
    lines.extend(_target_lines(estimate))
    for stack_name, logical_id, resource_type, why in estimate.unpriced:
        lines.append(f"  NOT PRICED {stack_name}/{logical_id} ({resource_type}): {why}")
    lines.append(f"  Assumptions and sources: cost/prices/{prices.region}.json; see docs/observability.md.")
    return "\n".join(lines)


def _target_lines(estimate: Estimate) -> list[str]:
    target = TARGETS.get(estimate.profile or "")
    if target is None:
        return []
    verdict = "within" if estimate.monthly <= target else "OVER"
    return [
        f"  target for {estimate.profile}: {money(target)}/month -> {verdict} ({money(estimate.monthly)})"
    ]


def as_json(estimate: Estimate) -> dict[str, Any]:
    return {
        "region": estimate.prices.region,
        "prices_as_of": estimate.prices.as_of.isoformat(),
        "profile": estimate.profile,
        "total_usd_month": round(estimate.monthly, 2),
        "components": {component(name): round(value, 2) for name, value in estimate.by_stack().items()},
        "items": [
            {
                "stack": item.stack,
                "logical_id": item.logical_id,
                "type": item.resource_type,
                "description": item.description,
                "usd_month": round(item.monthly, 2),
            }
            for item in estimate.items
        ],
        "unpriced": [
            {"stack": stack, "logical_id": logical_id, "type": resource_type, "why": why}
            for stack, logical_id, resource_type, why in estimate.unpriced
        ],
    }


def idle_cost_summary(outdir: Path) -> str:
    """A few lines for the end of `make synth`; never raises (the synth gates must not depend on it)."""
    try:
        estimate = estimate_assembly(outdir)
    except (OSError, ValueError, KeyError, PriceError) as exc:
        return f"idle cost: not estimated ({exc})"
    parts = ", ".join(
        f"{component(name)} {money(value)}"
        for name, value in sorted(estimate.by_stack().items(), key=lambda kv: -kv[1])
    )
    lines = [
        f"idle cost ({estimate.prices.region} prices as of {estimate.prices.as_of.isoformat()}): "
        f"{money(estimate.monthly)}/month - {parts}",
        *_target_lines(estimate),
    ]
    if estimate.unpriced:
        lines.append(f"  {len(estimate.unpriced)} resource(s) not priced: `make cost` lists them")
    return "\n".join(lines)

"""Idle-cost model of the synthesized foundation: `python -m cost cdk.out` (or `make cost`)."""

from cost.model import Estimate, LineItem, StackEstimate, estimate_templates, read_assembly
from cost.prices import PriceError, PriceTable, available_regions, load_prices
from cost.report import as_json, estimate_assembly, idle_cost_summary, render_table

__all__ = [
    "Estimate",
    "LineItem",
    "PriceError",
    "PriceTable",
    "StackEstimate",
    "as_json",
    "available_regions",
    "estimate_assembly",
    "estimate_templates",
    "idle_cost_summary",
    "load_prices",
    "read_assembly",
    "render_table",
]

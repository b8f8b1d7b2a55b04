"""`llm_gateway.default_team` and `team_budgets`: the team of callers in no team group (docs/spend.md)."""

from __future__ import annotations

import pytest

from config import ConfigError, load_config
from tests.factories import test_config


def test_the_default_team_is_budgeted_and_the_smallest() -> None:
    gateway = load_config().llm_gateway

    budgets = {budget.team: budget.max_budget_usd for budget in gateway.team_budgets}
    assert gateway.default_team == "unassigned"
    assert budgets[gateway.default_team] == min(budgets.values())


def test_a_default_team_without_budget_is_named() -> None:
    with pytest.raises(
        ConfigError, match=r"llm_gateway\.default_team.*'guests' has no entry in llm_gateway\.team_budgets"
    ):
        test_config("dev", llm_gateway={"default_team": "guests"})


def test_a_default_team_with_more_than_the_smallest_budget_is_named() -> None:
    budgets = [
        {"team": "support", "max_budget_usd": 200.0},
        {"team": "platform", "max_budget_usd": 5.0},
        {"team": "unassigned", "max_budget_usd": 10.0},
    ]
    with pytest.raises(ConfigError, match=r"llm_gateway\.default_team.*smallest.*\['platform'\] have less"):
        test_config("dev", llm_gateway={"team_budgets": budgets})


def test_an_equal_budget_is_allowed_for_the_default_team() -> None:
    budgets = [
        {"team": "support", "max_budget_usd": 10.0},
        {"team": "platform", "max_budget_usd": 10.0},
        {"team": "unassigned", "max_budget_usd": 10.0},
    ]
    assert test_config("dev", llm_gateway={"team_budgets": budgets}).llm_gateway.default_team == "unassigned"


def test_the_removed_agent_key_settings_are_rejected_not_ignored() -> None:
    """The agent's single key became one key per team: an old setting fails loudly, naming itself."""
    with pytest.raises(ConfigError, match=r"llm_gateway\.agent_key_budget_usd"):
        test_config("dev", llm_gateway={"agent_key_budget_usd": 100.0})

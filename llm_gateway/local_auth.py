"""Authentication, team keys and team budgets for the local gateway, which runs without a database.

LiteLLM checks any key other than the master key against its database; without one it answers
`400 No connected db.` for a wrong key. This hook (LiteLLM `general_settings.custom_auth`) stands in
for the deployed gateway's key table:

- the master key generated per run (`LITELLM_MASTER_KEY`) is the proxy admin, as deployed;
- with `LOCAL_GATEWAY_TEAMS_FILE` set, each team's virtual key from that file is accepted as a key of
  its team (`team_id`, `key_alias` `local-team-<team>`), the way the deployed gateway's bootstrapped
  team keys are. The file has the agent's key-secret format (llm_gateway.bootstrap.team_keys_document)
  plus the budgets: `{"default_team": ..., "team_keys": {team: key}, "budgets": {team: usd}}`;
- a team whose recorded spend is over its budget is refused by raising LiteLLM's own
  `BudgetExceededError`, which the REAL proxy turns into its real answer (litellm 1.102.4
  `proxy/auth/auth_exception_handler.py` `_as_proxy_exception`: HTTP 429,
  `{"error": {"type": "budget_exceeded", "code": "429", ...}}`), the same check as the deployed
  team budget (`proxy/auth/auth_checks.py` `_team_max_budget_check`: `spend > max_budget`);
- anything else is answered `401`, as the deployed gateway answers an unknown virtual key.

Spend is what the proxy itself reports for each successful call: `spend_ledger` (a LiteLLM callback
in `litellm_settings.callbacks` of the local config) adds the call's `response_cost` to its team and,
with `LOCAL_GATEWAY_SPEND_LOG` set, appends one JSON line per call (team, key alias, end user = the
OpenAI `user` field, model, cost): the local stand-in of the deployed `LiteLLM_SpendLogs` table.
Spend lives in the proxy process (one worker), so it starts at zero with every run.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import Request
from litellm.constants import LITELLM_PROXY_ADMIN_NAME, LITELLM_PROXY_MASTER_KEY_ALIAS
from litellm.exceptions import BudgetExceededError
from litellm.integrations.custom_logger import CustomLogger
from litellm.proxy._types import LitellmUserRoles, ProxyErrorTypes, ProxyException, UserAPIKeyAuth

logger = logging.getLogger(__name__)

MASTER_KEY_ENV = "LITELLM_MASTER_KEY"
TEAMS_FILE_ENV = "LOCAL_GATEWAY_TEAMS_FILE"
SPEND_LOG_ENV = "LOCAL_GATEWAY_SPEND_LOG"
KEY_ALIAS_PREFIX = "local-team-"


@dataclass(frozen=True)
class TeamKey:
    """One team's key as the local gateway knows it."""

    team: str
    key: str
    max_budget: float | None


def load_team_keys(path: Path) -> dict[str, TeamKey]:
    """Team keys and budgets from the teams file, by key value.

    Raises:
        ValueError: naming the file and the field when the file is not the documented shape.
    """
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"{TEAMS_FILE_ENV}={path}: not a readable JSON file ({error})") from error
    keys = document.get("team_keys") if isinstance(document, dict) else None
    budgets = document.get("budgets", {}) if isinstance(document, dict) else None
    if not isinstance(keys, dict) or not isinstance(budgets, dict):
        raise ValueError(f"{TEAMS_FILE_ENV}={path}: needs the objects 'team_keys' and 'budgets'")
    teams: dict[str, TeamKey] = {}
    for team, key in keys.items():
        budget = budgets.get(team)
        if not (isinstance(key, str) and key.startswith("sk-")):
            raise ValueError(f"{TEAMS_FILE_ENV}={path}: team_keys.{team} is not a virtual key (sk-...)")
        if budget is not None and not (isinstance(budget, int | float) and budget > 0):
            raise ValueError(f"{TEAMS_FILE_ENV}={path}: budgets.{team} must be a positive number")
        teams[key] = TeamKey(team, key, None if budget is None else float(budget))
    return teams


class SpendLedger(CustomLogger):
    """Each team's spend as the proxy reports it, and the optional JSON-lines log of the calls."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._spend: dict[str, float] = {}

    def spend(self, team: str) -> float:
        with self._lock:
            return self._spend.get(team, 0.0)

    def record(self, payload: Mapping[str, Any]) -> None:
        """Add one call's cost (LiteLLM's `StandardLoggingPayload`) to its team and log the call."""
        metadata = payload.get("metadata") or {}
        team = metadata.get("user_api_key_team_id")
        cost = float(payload.get("response_cost") or 0.0)
        if team:
            with self._lock:
                self._spend[team] = self._spend.get(team, 0.0) + cost
        log_path = os.environ.get(SPEND_LOG_ENV)
        if log_path:
            line = {
                "team": team,
                "key_alias": metadata.get("user_api_key_alias"),
                "end_user": payload.get("end_user") or None,
                "model": payload.get("model_group") or payload.get("model"),
                "cost": cost,
            }
            with self._lock, Path(log_path).open("a", encoding="utf-8") as log:
                log.write(json.dumps(line) + "\n")

    async def async_log_success_event(
        self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any
    ) -> None:
        payload = kwargs.get("standard_logging_object")
        if isinstance(payload, dict):
            self.record(payload)
        else:  # LiteLLM always builds it for a proxy call; without it the spend would be silently lost
            logger.error("a successful call carried no standard_logging_object: its spend is not recorded")


spend_ledger = SpendLedger()
_teams_lock = threading.Lock()
_teams: dict[str, dict[str, TeamKey]] = {}


def _team_keys() -> dict[str, TeamKey]:
    path = os.environ.get(TEAMS_FILE_ENV, "")
    if not path:
        return {}
    with _teams_lock:
        if path not in _teams:
            _teams[path] = load_team_keys(Path(path))
        return _teams[path]


def _check_budget(team: TeamKey) -> None:
    spend = spend_ledger.spend(team.team)
    if team.max_budget is not None and spend > team.max_budget:
        raise BudgetExceededError(
            current_cost=spend,
            max_budget=team.max_budget,
            # LiteLLM's own team-budget message (auth_checks.py _team_max_budget_check)
            message=f"Budget has been exceeded! Team={team.team} Current cost: {spend}, Max budget: {team.max_budget}",
            entity_type="team",
            entity_id=team.team,
        )


async def user_api_key_auth(request: Request, api_key: str) -> UserAPIKeyAuth:
    """Accept the local master key or a team key (constant-time comparisons); refuse a team over its
    budget with LiteLLM's BudgetExceededError; raise a 401 ProxyException otherwise.

    Args:
        request: the incoming request (unused beyond logging the path).
        api_key: the key LiteLLM extracted from `Authorization` (with or without `Bearer `).
    """
    expected = os.environ.get(MASTER_KEY_ENV, "")
    if not expected:
        raise ProxyException(
            message=f"the local gateway has no master key: set {MASTER_KEY_ENV}",
            type=ProxyErrorTypes.auth_error,
            param="api_key",
            code=500,
        )
    presented = (api_key or "").removeprefix("Bearer ").strip()
    if presented and secrets.compare_digest(presented.encode(), expected.encode()):
        # The same identity LiteLLM gives the master key (never the raw key, which would reach logs).
        return UserAPIKeyAuth(
            api_key=LITELLM_PROXY_MASTER_KEY_ALIAS,
            user_id=LITELLM_PROXY_ADMIN_NAME,
            user_role=LitellmUserRoles.PROXY_ADMIN,
        )
    match = next(
        (
            team
            for value, team in _team_keys().items()
            if presented and secrets.compare_digest(presented.encode(), value.encode())
        ),
        None,
    )
    if match is not None:
        _check_budget(match)
        alias = f"{KEY_ALIAS_PREFIX}{match.team}"
        return UserAPIKeyAuth(
            api_key=alias,  # an alias, not the key: it reaches the spend log and LiteLLM's logs
            key_alias=alias,
            team_id=match.team,
            team_alias=match.team,
            team_max_budget=match.max_budget,
            team_spend=spend_ledger.spend(match.team),
            user_role=LitellmUserRoles.INTERNAL_USER,
        )
    logger.info("rejected a request to %s with %s key", request.url.path, "a wrong" if presented else "no")
    raise ProxyException(
        message="Authentication Error: invalid or missing API key for the local gateway",
        type=ProxyErrorTypes.auth_error,
        param="api_key",
        code=401,
    )

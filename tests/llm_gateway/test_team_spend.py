"""Spend that follows the person and the team, through the REAL LiteLLM proxy (docs/spend.md).

The agent's own code (AgentService + GatewayModelFactory, as agent.bootstrap wires them) calls the real
proxy, started exactly as `make gateway` does, in front of a scripted OpenAI-compatible model. The
proxy's auth hook (llm_gateway/local_auth.py) knows the team keys of a bootstrapped document
(llm_gateway.bootstrap.local_teams_document) and its spend callback logs, per call, the team and key
alias the proxy authenticated, the end user (the OpenAI `user`) and the cost the proxy computed. A
spent budget is refused by LiteLLM's own BudgetExceededError, rendered by the real proxy.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from agent.bootstrap import GatewayModelFactory
from agent.guardrails import LocalPolicy
from agent.identity import Caller, Teams
from agent.memory import LocalMemory
from agent.payload import Invocation
from agent.service import AgentService
from agent.telemetry import Telemetry
from agent.tool_client import StaticTools
from config import AppConfig, build_config
from llm_gateway.bootstrap import local_teams_document
from llm_gateway.config import Upstream
from llm_gateway.local import prepare
from llm_gateway.local_auth import SPEND_LOG_ENV, TEAMS_FILE_ENV
from local_stack import components
from local_stack.processes import free_port
from local_stack.scripted_model import ScriptedModel, Text
from tests.llm_gateway.conftest import scripted_catalog_config

pytestmark = pytest.mark.slow

RECORDING = Path(__file__).parents[1] / "agent" / "data" / "litellm_1.102.4_team_budget_exceeded.json"
TINY_BUDGET = 1e-9  # below the cost of any call: the second call of the team is refused
SESSION = "s-" + "e" * 32


def spend_config() -> AppConfig:
    """The scripted catalog with three Cognito teams; `pilot` has a budget one call exhausts."""
    base = scripted_catalog_config().model_dump(mode="json")
    base["identity"] = {"teams": ["support", "platform", "pilot"]}
    base["llm_gateway"] = {
        "team_budgets": [
            {"team": "support", "max_budget_usd": 200.0},
            {"team": "platform", "max_budget_usd": 100.0},
            {"team": "pilot", "max_budget_usd": TINY_BUDGET},
            {"team": "unassigned", "max_budget_usd": TINY_BUDGET},
        ]
    }
    return build_config({k: base[k] for k in ("models", "identity", "llm_gateway")}, source="tests")


@dataclass
class SpendGateway:
    url: str
    master_key: str
    document: dict[str, Any]
    upstream: ScriptedModel
    spend_log: Path

    def calls(self) -> list[dict[str, Any]]:
        if not self.spend_log.exists():
            return []
        return [json.loads(line) for line in self.spend_log.read_text().splitlines()]

    def wait_for_calls(self, count: int, timeout: float = 15.0) -> list[dict[str, Any]]:
        """The spend callback runs after the answer: wait (bounded) until `count` calls are logged."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            calls = self.calls()
            if len(calls) >= count:
                return calls
            time.sleep(0.05)
        raise AssertionError(f"{count} calls not logged after {timeout} s: {self.calls()}")


@pytest.fixture(scope="module")
def spend_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SpendGateway]:
    state = tmp_path_factory.mktemp("spend")
    config = spend_config()
    document = local_teams_document(config)
    teams_file = state / "teams.json"
    teams_file.write_text(json.dumps(document))
    teams_file.chmod(0o600)
    spend_log = state / "spend.jsonl"
    environ = {k: v for k, v in os.environ.items() if not k.startswith("LANGFUSE_")}
    environ.update({TEAMS_FILE_ENV: str(teams_file), SPEND_LOG_ENV: str(spend_log)})
    with ScriptedModel(model_name="scripted-primary") as upstream:
        gateway = prepare(
            config,
            state_dir=state,
            port=free_port(),
            upstreams={alias: Upstream(upstream.base_url) for alias in ("primary", "backup", "limited")},
            environ=environ,
        )
        with components.gateway(gateway, startup_timeout=90).process(state / "litellm.log"):
            yield SpendGateway(gateway.url, gateway.master_key, document, upstream, spend_log)


def agent(gw: SpendGateway) -> AgentService:
    """The agent's service wired as agent.bootstrap.build_service wires it from the key secret."""
    models = GatewayModelFactory(
        gw.url, gw.document["api_key"], "primary", 256, 30.0, (3.0, 15.0), team_keys=gw.document["team_keys"]
    )
    return AgentService(
        model_factory=models,
        model_name="primary",
        guardrail=LocalPolicy(),
        memory=LocalMemory(),
        tools=StaticTools([]),
        telemetry=Telemetry.disabled(),
        teams=Teams.of(gw.document["team_keys"], gw.document["default_team"]),
    )


async def turns(service: AgentService, callers: list[Caller]) -> list[dict[str, Any]]:
    """One turn per caller on one event loop (the agent's shared HTTP client per loop)."""
    events = []
    for caller in callers:
        async for event in service.stream_turn(
            Invocation("How do I reset my router?", SESSION, True), caller
        ):
            if event["type"] in ("done", "error"):
                events.append(event)
    return events


def test_two_users_of_two_teams_call_under_two_keys_and_no_team_uses_the_default(
    spend_gateway: SpendGateway,
) -> None:
    gw = spend_gateway
    before = len(gw.calls())
    gw.upstream.reset()
    gw.upstream.enqueue(*(Text(f"Answer {n}.") for n in range(3)))
    callers = [
        Caller("alice-sub", groups=("support",)),
        Caller("bob-sub", groups=("platform", "pilot")),  # platform comes first in identity.teams
        Caller("carol-sub"),  # no team group: the default team (M2M tokens have no groups either)
    ]

    events = asyncio.run(turns(agent(gw), callers))

    assert [e["type"] for e in events] == ["done"] * 3, events
    calls = gw.wait_for_calls(before + 3)[before:]
    assert [(c["team"], c["key_alias"], c["end_user"]) for c in calls] == [
        ("support", "local-team-support", "alice-sub"),
        ("platform", "local-team-platform", "bob-sub"),
        ("unassigned", "local-team-unassigned", "carol-sub"),
    ]
    assert all(c["cost"] > 0 for c in calls)  # the proxy priced each call for the team's spend
    # `end_user` is the OpenAI `user` the proxy read from the agent's request (LiteLLM 1.102.4 does not
    # forward it to this openai-compatible upstream: spend attribution happens in the proxy)
    assert len(gw.upstream.requests) == 3


def test_a_wrong_key_is_refused_with_401(spend_gateway: SpendGateway) -> None:
    response = httpx.post(
        f"{spend_gateway.url}/v1/chat/completions",
        headers={"Authorization": "Bearer sk-not-a-team-key"},
        json={"model": "primary", "messages": [{"role": "user", "content": "hi"}]},
        timeout=30,
    )
    assert response.status_code == 401


def test_a_spent_team_budget_is_the_contract_error_naming_the_team(spend_gateway: SpendGateway) -> None:
    gw = spend_gateway
    before = len(gw.calls())
    gw.upstream.reset()
    gw.upstream.enqueue(Text("First answer."), Text("never sent"))
    service = agent(gw)
    dave = Caller("dave-sub", groups=("pilot",))

    (first,) = asyncio.run(turns(service, [dave]))
    assert first["type"] == "done", first
    gw.wait_for_calls(before + 1)  # the proxy recorded the spend: the team is now over its budget
    (second,) = asyncio.run(turns(service, [dave]))

    assert second["code"] == "budget_exceeded", second
    assert "'pilot'" in second["message"] and "retry_after" not in second
    assert len(gw.upstream.requests) == 1  # refused by the proxy, before any model call
    # other teams are unaffected
    gw.upstream.enqueue(Text("Still fine."))
    (other,) = asyncio.run(turns(service, [Caller("erin-sub", groups=("support",))]))
    assert other["type"] == "done", other


def test_the_recorded_budget_answer_is_what_the_proxy_sends(spend_gateway: SpendGateway) -> None:
    """The proxy's raw answer for a spent team budget, compared with the recording the fast agent tests
    replay (tests/agent/test_team_spend.py). Set RECORD_LITELLM=1 to rewrite the recording."""
    gw = spend_gateway
    pilot_key = gw.document["team_keys"]["pilot"]
    body = {"model": "primary", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    gw.upstream.enqueue(Text("spend something"))
    httpx.post(f"{gw.url}/v1/chat/completions", headers={"Authorization": f"Bearer {pilot_key}"}, json=body)
    time.sleep(0.5)  # the spend of that call (if the budget was not already spent) reaches the ledger

    response = httpx.post(
        f"{gw.url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {pilot_key}"},
        json=body,
        timeout=30,
    )

    assert response.status_code == 429
    error = response.json()["error"]
    assert (error["type"], error["code"]) == ("budget_exceeded", "429")
    assert "Team=pilot" in error["message"]
    if os.environ.get("RECORD_LITELLM") == "1":
        RECORDING.parent.mkdir(exist_ok=True)
        RECORDING.write_text(
            json.dumps(
                {
                    "status": response.status_code,
                    "content_type": response.headers["content-type"],
                    "body": response.json(),
                },
                indent=2,
            )
            + "\n"
        )
    recorded = json.loads(RECORDING.read_text())
    assert recorded["status"] == response.status_code
    assert {k: v for k, v in recorded["body"]["error"].items() if k != "message"} == {
        k: v for k, v in error.items() if k != "message"
    }

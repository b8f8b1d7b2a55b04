"""Bootstrap of teams and keys against a recording admin API, with Secrets Manager from moto."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from llm_gateway.bootstrap import (
    AdminClient,
    BootstrapPlan,
    GatewayAdminError,
    SecretsManagerKeyStore,
    plan_from_config,
    run_bootstrap,
)
from tests.factories import test_config
from tests.llm_gateway.admin_recorder import AdminRecorder

MASTER_KEY = "master-key-for-tests-0123456789"
REGION = "us-east-1"
ALIASES = ["claude-sonnet", "claude-haiku", "nova-pro"]


@pytest.fixture
def secrets() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("secretsmanager", region_name=REGION)
        for name in ("aaf-llm-agent-key", "aaf-llm-eval-key"):
            # As the stack creates them: present, without a key yet.
            client.create_secret(Name=name, SecretString=json.dumps({"api_key": ""}))
        yield client


@pytest.fixture
def admin_api() -> Iterator[AdminRecorder]:
    with AdminRecorder(MASTER_KEY) as recorder:
        yield recorder


@pytest.fixture
def plan() -> BootstrapPlan:
    return plan_from_config(
        test_config("dev"), agent_secret_id="aaf-llm-agent-key", eval_secret_id="aaf-llm-eval-key"
    )


def bootstrap(plan: BootstrapPlan, admin_api: AdminRecorder, secrets: Any) -> Any:
    return run_bootstrap(plan, AdminClient(admin_api.url, MASTER_KEY), SecretsManagerKeyStore(secrets))


def stored_key(secrets: Any, name: str) -> str:
    value = json.loads(secrets.get_secret_value(SecretId=name)["SecretString"])
    return str(value["api_key"])


def test_first_run_sends_exactly_the_team_and_key_requests(
    plan: BootstrapPlan, admin_api: AdminRecorder, secrets: Any
) -> None:
    result = bootstrap(plan, admin_api, secrets)

    agent_key, eval_key = stored_key(secrets, "aaf-llm-agent-key"), stored_key(secrets, "aaf-llm-eval-key")
    assert [(r.route, r.query, r.body) for r in admin_api.requests] == [
        ("GET /team/info", {"team_id": "support"}, None),
        (
            "POST /team/new",
            {},
            {
                "team_id": "support",
                "team_alias": "support",
                "max_budget": 200.0,
                "budget_duration": "30d",
                "rpm_limit": 60,
                "tpm_limit": 200000,
            },
        ),
        ("GET /team/info", {"team_id": "platform"}, None),
        (
            "POST /team/new",
            {},
            {
                "team_id": "platform",
                "team_alias": "platform",
                "max_budget": 100.0,
                "budget_duration": "30d",
                "rpm_limit": 60,
                "tpm_limit": 200000,
            },
        ),
        ("GET /key/info", {"key": agent_key}, None),
        (
            "POST /key/generate",
            {},
            {
                "key_alias": "aaf-agent",
                "team_id": "support",
                "max_budget": 100.0,
                "budget_duration": "30d",
                "rpm_limit": 120,
                "models": ALIASES,
                "metadata": {"service": "agent", "managed_by": "gateway-bootstrap"},
                "key": agent_key,
            },
        ),
        ("GET /key/info", {"key": eval_key}, None),
        (
            "POST /key/generate",
            {},
            {
                "key_alias": "aaf-evaluation",
                "team_id": "platform",
                "max_budget": 25.0,
                "budget_duration": "30d",
                "rpm_limit": 60,
                "models": ALIASES,
                "metadata": {"service": "evaluation", "managed_by": "gateway-bootstrap"},
                "key": eval_key,
            },
        ),
    ]
    assert result.teams_created == ["support", "platform"]
    assert result.keys_created == ["agent", "evaluation"]


def test_keys_are_stored_as_json_with_a_fresh_sk_value(
    plan: BootstrapPlan, admin_api: AdminRecorder, secrets: Any
) -> None:
    bootstrap(plan, admin_api, secrets)

    value = json.loads(secrets.get_secret_value(SecretId="aaf-llm-agent-key")["SecretString"])
    assert value["key_alias"] == "aaf-agent"
    assert value["api_key"].startswith("sk-") and len(value["api_key"]) > 40
    assert value["api_key"] != stored_key(secrets, "aaf-llm-eval-key")
    assert set(admin_api.keys) == {value["api_key"], stored_key(secrets, "aaf-llm-eval-key")}


def test_rerun_only_reads_and_creates_nothing(
    plan: BootstrapPlan, admin_api: AdminRecorder, secrets: Any
) -> None:
    bootstrap(plan, admin_api, secrets)
    keys_before = dict(admin_api.keys)
    admin_api.clear_requests()

    result = bootstrap(plan, admin_api, secrets)

    assert admin_api.routes() == ["GET /team/info", "GET /team/info", "GET /key/info", "GET /key/info"]
    assert result.teams_created == result.teams_updated == result.keys_created == result.keys_updated == []
    assert admin_api.keys == keys_before
    assert sorted(admin_api.teams) == ["platform", "support"]


def test_changed_budgets_are_updated_in_place(admin_api: AdminRecorder, secrets: Any) -> None:
    ids = {"agent_secret_id": "aaf-llm-agent-key", "eval_secret_id": "aaf-llm-eval-key"}
    bootstrap(plan_from_config(test_config("dev"), **ids), admin_api, secrets)
    agent_key = stored_key(secrets, "aaf-llm-agent-key")
    admin_api.clear_requests()
    changed = test_config(
        "dev",
        llm_gateway={"agent_key_budget_usd": 150.0, "agent_key_rpm": 30},
    )
    changed = changed.model_copy(
        update={
            "llm_gateway": changed.llm_gateway.model_copy(
                update={
                    "team_budgets": (
                        changed.llm_gateway.team_budgets[0].model_copy(update={"max_budget_usd": 500.0}),
                        changed.llm_gateway.team_budgets[1],
                    )
                }
            )
        }
    )

    result = bootstrap(plan_from_config(changed, **ids), admin_api, secrets)

    assert admin_api.routes() == [
        "GET /team/info",
        "POST /team/update",
        "GET /team/info",
        "GET /key/info",
        "POST /key/update",
        "GET /key/info",
    ]
    assert admin_api.requests[1].body["max_budget"] == 500.0
    assert admin_api.requests[4].body["key"] == agent_key
    assert (admin_api.requests[4].body["max_budget"], admin_api.requests[4].body["rpm_limit"]) == (150.0, 30)
    assert result.teams_updated == ["support"] and result.keys_updated == ["agent"]
    assert stored_key(secrets, "aaf-llm-agent-key") == agent_key  # the key value never rotates on update


def test_key_creation_failure_after_teams_exist_completes_on_rerun(
    plan: BootstrapPlan, admin_api: AdminRecorder, secrets: Any
) -> None:
    admin_api.fail_next("POST /key/generate", 500)

    with pytest.raises(GatewayAdminError, match="POST /key/generate answered 500"):
        bootstrap(plan, admin_api, secrets)
    assert sorted(admin_api.teams) == ["platform", "support"]
    assert admin_api.keys == {}
    pending_key = stored_key(secrets, "aaf-llm-agent-key")  # written before the failed registration
    admin_api.clear_requests()

    result = bootstrap(plan, admin_api, secrets)

    assert admin_api.routes() == [
        "GET /team/info",
        "GET /team/info",
        "GET /key/info",
        "POST /key/generate",
        "GET /key/info",
        "POST /key/generate",
    ]
    assert admin_api.requests[3].body["key"] == pending_key
    assert set(admin_api.keys) == {pending_key, stored_key(secrets, "aaf-llm-eval-key")}
    assert result.teams_created == [] and result.keys_created == ["agent", "evaluation"]


def test_failure_between_teams_leaves_no_duplicate_on_rerun(
    plan: BootstrapPlan, admin_api: AdminRecorder, secrets: Any
) -> None:
    admin_api.fail_next("POST /team/new", 503, after=1)  # the first team is created, the second fails

    with pytest.raises(GatewayAdminError, match="503"):
        bootstrap(plan, admin_api, secrets)
    assert sorted(admin_api.teams) == ["support"]
    bootstrap(plan, admin_api, secrets)
    bootstrap(plan, admin_api, secrets)

    assert sorted(admin_api.teams) == ["platform", "support"]
    assert len(admin_api.keys) == 2
    assert admin_api.routes().count("POST /team/new") == 3  # support, the failed platform, platform again
    assert admin_api.routes().count("POST /key/generate") == 2


def test_a_key_deleted_in_the_gateway_is_registered_again_with_the_stored_value(
    plan: BootstrapPlan, admin_api: AdminRecorder, secrets: Any
) -> None:
    bootstrap(plan, admin_api, secrets)
    agent_key = stored_key(secrets, "aaf-llm-agent-key")
    del admin_api.keys[agent_key]
    admin_api.clear_requests()

    result = bootstrap(plan, admin_api, secrets)

    assert result.keys_created == ["agent"]
    assert agent_key in admin_api.keys
    assert stored_key(secrets, "aaf-llm-agent-key") == agent_key


def test_wrong_master_key_fails_with_the_status_and_creates_nothing(
    plan: BootstrapPlan, admin_api: AdminRecorder, secrets: Any
) -> None:
    with pytest.raises(GatewayAdminError, match="GET /team/info answered 401"):
        run_bootstrap(plan, AdminClient(admin_api.url, "wrong"), SecretsManagerKeyStore(secrets))

    assert admin_api.teams == {} and admin_api.keys == {}


def test_plan_round_trips_through_json(plan: BootstrapPlan) -> None:
    assert BootstrapPlan.from_json(plan.to_json()) == plan


def test_team_without_budget_is_named() -> None:
    config = test_config("dev", identity={"teams": ["support", "platform", "sales"]})

    with pytest.raises(ValueError, match=r"llm_gateway\.team_budgets.*'sales'"):
        plan_from_config(config, agent_secret_id="a", eval_secret_id="b")


def test_key_team_outside_the_teams_is_named() -> None:
    config = test_config("dev", llm_gateway={"eval_key_team": "finance"})

    with pytest.raises(ValueError, match=r"llm_gateway\.eval_key_team"):
        plan_from_config(config, agent_secret_id="a", eval_secret_id="b")


def test_wait_until_ready_polls_readiness(admin_api: AdminRecorder) -> None:
    admin_api.fail_next("GET /health/readiness", 503)

    AdminClient(admin_api.url, MASTER_KEY).wait_until_ready(timeout=10, interval=0.05)


def test_wait_until_ready_gives_up_with_the_last_answer() -> None:
    with pytest.raises(TimeoutError, match="not ready"):
        AdminClient("http://127.0.0.1:9", MASTER_KEY, timeout=0.2).wait_until_ready(timeout=0.5, interval=0.1)

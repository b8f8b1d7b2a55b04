"""Bootstrap of teams and keys against a recording admin API, with Secrets Manager from moto."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from config.llm_gateway import TeamBudget
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


def stored(secrets: Any, name: str) -> dict[str, Any]:
    value = json.loads(secrets.get_secret_value(SecretId=name)["SecretString"])
    assert isinstance(value, dict)
    return value


def stored_key(secrets: Any, name: str) -> str:
    return str(stored(secrets, name)["api_key"])


def team_key(secrets: Any, team: str) -> str:
    return str(stored(secrets, "aaf-llm-agent-key")["team_keys"][team])


TEAMS = ["support", "platform", "unassigned"]
TEAM_LIMITS = {
    "support": (200.0, 60, 200000),
    "platform": (100.0, 60, 200000),
    "unassigned": (10.0, 20, 50000),
}


def team_body(team: str) -> dict[str, Any]:
    budget, rpm, tpm = TEAM_LIMITS[team]
    return {
        "team_id": team,
        "team_alias": team,
        "max_budget": budget,
        "budget_duration": "30d",
        "rpm_limit": rpm,
        "tpm_limit": tpm,
    }


def team_key_body(team: str, key: str) -> dict[str, Any]:
    budget, rpm, tpm = TEAM_LIMITS[team]
    return {
        "key_alias": f"aaf-team-{team}",
        "team_id": team,
        "max_budget": budget,
        "budget_duration": "30d",
        "rpm_limit": rpm,
        "models": ALIASES,
        "metadata": {"service": f"team-{team}", "managed_by": "gateway-bootstrap"},
        "tpm_limit": tpm,
        "key": key,
    }


def test_first_run_sends_exactly_the_team_and_key_requests(
    plan: BootstrapPlan, admin_api: AdminRecorder, secrets: Any
) -> None:
    result = bootstrap(plan, admin_api, secrets)

    eval_key = stored_key(secrets, "aaf-llm-eval-key")
    expected: list[tuple[str, dict[str, str], Any]] = []
    for team in TEAMS:
        expected += [("GET /team/info", {"team_id": team}, None), ("POST /team/new", {}, team_body(team))]
    for team in TEAMS:
        key = team_key(secrets, team)
        expected += [
            ("GET /key/info", {"key": key}, None),
            ("POST /key/generate", {}, team_key_body(team, key)),
        ]
    expected += [
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
    assert [(r.route, r.query, r.body) for r in admin_api.requests] == expected
    assert result.teams_created == TEAMS
    assert result.keys_created == ["team-support", "team-platform", "team-unassigned", "evaluation"]


def test_the_agent_secret_holds_one_key_per_team_and_the_default_as_api_key(
    plan: BootstrapPlan, admin_api: AdminRecorder, secrets: Any
) -> None:
    bootstrap(plan, admin_api, secrets)

    value = stored(secrets, "aaf-llm-agent-key")
    assert list(value) == ["api_key", "key_alias", "default_team", "team_keys"]
    assert list(value["team_keys"]) == TEAMS  # identity.teams order, then the default team
    assert value["default_team"] == "unassigned"
    assert value["api_key"] == value["team_keys"]["unassigned"]
    assert value["key_alias"] == "aaf-team-unassigned"
    keys = list(value["team_keys"].values())
    assert len(set(keys)) == 3 and all(k.startswith("sk-") and len(k) > 40 for k in keys)
    assert {admin_api.keys[k]["team_id"] for k in keys} == set(TEAMS)  # each key registered to its team


def test_a_secret_from_before_team_keys_gives_its_key_to_the_default_team(
    plan: BootstrapPlan, admin_api: AdminRecorder, secrets: Any
) -> None:
    old = "sk-the-agent-key-of-an-earlier-release-0123456789"
    secrets.put_secret_value(
        SecretId="aaf-llm-agent-key", SecretString=json.dumps({"api_key": old, "key_alias": "aaf-agent"})
    )

    bootstrap(plan, admin_api, secrets)

    assert team_key(secrets, "unassigned") == old == stored_key(secrets, "aaf-llm-agent-key")
    assert admin_api.keys[old]["team_id"] == "unassigned"
    assert team_key(secrets, "support") != old


def test_keys_are_stored_as_json_with_a_fresh_sk_value(
    plan: BootstrapPlan, admin_api: AdminRecorder, secrets: Any
) -> None:
    bootstrap(plan, admin_api, secrets)

    value = stored(secrets, "aaf-llm-eval-key")
    assert value == {"api_key": value["api_key"], "key_alias": "aaf-evaluation"}
    assert value["api_key"].startswith("sk-") and len(value["api_key"]) > 40
    team_keys = set(stored(secrets, "aaf-llm-agent-key")["team_keys"].values())
    assert value["api_key"] not in team_keys
    assert set(admin_api.keys) == {value["api_key"], *team_keys}


def test_rerun_only_reads_and_creates_nothing(
    plan: BootstrapPlan, admin_api: AdminRecorder, secrets: Any
) -> None:
    bootstrap(plan, admin_api, secrets)
    keys_before = dict(admin_api.keys)
    secret_versions = len(secrets.list_secret_version_ids(SecretId="aaf-llm-agent-key")["Versions"])
    admin_api.clear_requests()

    result = bootstrap(plan, admin_api, secrets)

    assert admin_api.routes() == ["GET /team/info"] * 3 + ["GET /key/info"] * 4
    assert result.teams_created == result.teams_updated == result.keys_created == result.keys_updated == []
    assert admin_api.keys == keys_before
    assert sorted(admin_api.teams) == sorted(TEAMS)
    # nothing rewritten: the secret has no new version
    assert len(secrets.list_secret_version_ids(SecretId="aaf-llm-agent-key")["Versions"]) == secret_versions


def test_changed_budgets_are_updated_in_place(admin_api: AdminRecorder, secrets: Any) -> None:
    ids = {"agent_secret_id": "aaf-llm-agent-key", "eval_secret_id": "aaf-llm-eval-key"}
    bootstrap(plan_from_config(test_config("dev"), **ids), admin_api, secrets)
    support_key = team_key(secrets, "support")
    admin_api.clear_requests()
    changed = test_config("dev", llm_gateway={"eval_key_budget_usd": 40.0})
    budgets = changed.llm_gateway.team_budgets
    changed = changed.model_copy(
        update={
            "llm_gateway": changed.llm_gateway.model_copy(
                update={
                    "team_budgets": (
                        budgets[0].model_copy(update={"max_budget_usd": 500.0, "rpm": 30}),
                        *budgets[1:],
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
        "GET /team/info",
        "GET /key/info",
        "POST /key/update",
        "GET /key/info",
        "GET /key/info",
        "GET /key/info",
        "POST /key/update",
    ]
    assert admin_api.requests[1].body["max_budget"] == 500.0
    key_update = admin_api.requests[5].body
    assert key_update["key"] == support_key
    assert (key_update["max_budget"], key_update["rpm_limit"], key_update["team_id"]) == (
        500.0,
        30,
        "support",
    )
    assert admin_api.requests[9].body["max_budget"] == 40.0
    assert result.teams_updated == ["support"] and result.keys_updated == ["team-support", "evaluation"]
    assert team_key(secrets, "support") == support_key  # the key value never rotates on update


def test_key_creation_failure_after_teams_exist_completes_on_rerun(
    plan: BootstrapPlan, admin_api: AdminRecorder, secrets: Any
) -> None:
    admin_api.fail_next("POST /key/generate", 500, after=1)  # the support key registers, platform's fails

    with pytest.raises(GatewayAdminError, match="POST /key/generate answered 500"):
        bootstrap(plan, admin_api, secrets)
    assert sorted(admin_api.teams) == sorted(TEAMS)
    assert list(admin_api.keys) == [team_key(secrets, "support")]
    written = stored(secrets, "aaf-llm-agent-key")  # every value written before the first registration
    pending = team_key(secrets, "platform")
    admin_api.clear_requests()

    result = bootstrap(plan, admin_api, secrets)

    assert admin_api.routes() == ["GET /team/info"] * 3 + [
        "GET /key/info",
        "GET /key/info",
        "POST /key/generate",
        "GET /key/info",
        "POST /key/generate",
        "GET /key/info",
        "POST /key/generate",
    ]
    assert admin_api.requests[5].body["key"] == pending
    assert stored(secrets, "aaf-llm-agent-key") == written
    assert len(admin_api.keys) == 4
    assert result.teams_created == [] and result.keys_created == [
        "team-platform",
        "team-unassigned",
        "evaluation",
    ]


def test_a_lost_secret_write_answer_is_not_an_orphan_key(
    plan: BootstrapPlan, admin_api: AdminRecorder, secrets: Any
) -> None:
    """The secret write happened but its answer was lost: the run fails before registering anything,
    and the next run registers exactly the values the secret holds."""

    class LostAnswer(SecretsManagerKeyStore):
        def write_document(self, secret_id: str, document: Any) -> None:
            super().write_document(secret_id, document)
            raise ConnectionError("the answer of PutSecretValue was lost")

    with pytest.raises(ConnectionError):
        run_bootstrap(plan, AdminClient(admin_api.url, MASTER_KEY), LostAnswer(secrets))
    assert admin_api.keys == {}

    bootstrap(plan, admin_api, secrets)

    assert set(admin_api.keys) == {
        *stored(secrets, "aaf-llm-agent-key")["team_keys"].values(),
        stored_key(secrets, "aaf-llm-eval-key"),
    }


def test_failure_between_teams_leaves_no_duplicate_on_rerun(
    plan: BootstrapPlan, admin_api: AdminRecorder, secrets: Any
) -> None:
    admin_api.fail_next("POST /team/new", 503, after=1)  # the first team is created, the second fails

    with pytest.raises(GatewayAdminError, match="503"):
        bootstrap(plan, admin_api, secrets)
    assert sorted(admin_api.teams) == ["support"]
    bootstrap(plan, admin_api, secrets)
    bootstrap(plan, admin_api, secrets)

    assert sorted(admin_api.teams) == sorted(TEAMS)
    assert len(admin_api.keys) == 4
    # support, the failed platform, then platform and unassigned
    assert admin_api.routes().count("POST /team/new") == 4
    assert admin_api.routes().count("POST /key/generate") == 4


def test_a_key_deleted_in_the_gateway_is_registered_again_with_the_stored_value(
    plan: BootstrapPlan, admin_api: AdminRecorder, secrets: Any
) -> None:
    bootstrap(plan, admin_api, secrets)
    support_key = team_key(secrets, "support")
    del admin_api.keys[support_key]
    admin_api.clear_requests()

    result = bootstrap(plan, admin_api, secrets)

    assert result.keys_created == ["team-support"]
    assert admin_api.keys[support_key]["team_id"] == "support"
    assert team_key(secrets, "support") == support_key


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


def test_a_default_team_that_is_a_cognito_group_is_named() -> None:
    budgets = [{"team": "support", "max_budget_usd": 200.0}, {"team": "platform", "max_budget_usd": 5.0}]
    config = test_config("dev", llm_gateway={"default_team": "platform", "team_budgets": budgets})

    with pytest.raises(ValueError, match=r"llm_gateway\.default_team.*'platform' is one of identity\.teams"):
        plan_from_config(config, agent_secret_id="a", eval_secret_id="b")


def test_a_new_team_gets_its_key_and_the_others_keep_theirs(admin_api: AdminRecorder, secrets: Any) -> None:
    ids = {"agent_secret_id": "aaf-llm-agent-key", "eval_secret_id": "aaf-llm-eval-key"}
    bootstrap(plan_from_config(test_config("dev"), **ids), admin_api, secrets)
    before = stored(secrets, "aaf-llm-agent-key")["team_keys"]
    grown = test_config("dev", identity={"teams": ["support", "platform", "sales"]})
    grown = grown.model_copy(
        update={
            "llm_gateway": grown.llm_gateway.model_copy(
                update={
                    "team_budgets": (
                        *grown.llm_gateway.team_budgets,
                        TeamBudget(team="sales", max_budget_usd=50.0),
                    )
                }
            )
        }
    )

    result = bootstrap(plan_from_config(grown, **ids), admin_api, secrets)

    after = stored(secrets, "aaf-llm-agent-key")["team_keys"]
    assert list(after) == ["support", "platform", "sales", "unassigned"]
    assert {team: after[team] for team in before} == before
    assert result.teams_created == ["sales"] and result.keys_created == ["team-sales"]


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

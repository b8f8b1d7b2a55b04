"""The gateway bootstrap custom-resource handler: master key from Secrets Manager, plan from properties."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from functions.common import MissingSettingError
from functions.gateway_bootstrap import handler
from llm_gateway.bootstrap import plan_from_config
from tests.factories import test_config
from tests.llm_gateway.admin_recorder import AdminRecorder

MASTER_KEY = "deploy-time-master-key-0123456789abcdef"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        client = boto3.client("secretsmanager", region_name="us-east-1")
        arn = client.create_secret(Name="aaf-llm-master-key", SecretString=MASTER_KEY)["ARN"]
        for name in ("aaf-llm-agent-key", "aaf-llm-eval-key"):
            client.create_secret(Name=name, SecretString=json.dumps({"api_key": ""}))
        monkeypatch.setenv(handler.ENV_MASTER_KEY_SECRET_ARN, arn)
        yield client


@pytest.fixture
def admin_api(monkeypatch: pytest.MonkeyPatch) -> Iterator[AdminRecorder]:
    with AdminRecorder(MASTER_KEY) as recorder:
        monkeypatch.setenv(handler.ENV_GATEWAY_URL, recorder.url)
        monkeypatch.setenv(handler.ENV_READY_TIMEOUT, "5")
        yield recorder


def event(request_type: str, **properties: Any) -> dict[str, Any]:
    return {"RequestType": request_type, "ResourceProperties": {"ServiceToken": "arn:x", **properties}}


def plan_json() -> str:
    return plan_from_config(
        test_config("dev"), agent_secret_id="aaf-llm-agent-key", eval_secret_id="aaf-llm-eval-key"
    ).to_json()


def test_create_bootstraps_with_the_master_key_from_secrets_manager(
    aws: Any, admin_api: AdminRecorder
) -> None:
    answer = handler.on_event(event("Create", Plan=plan_json()), None, secrets_client=aws)

    assert answer["PhysicalResourceId"] == handler.PHYSICAL_ID
    assert answer["Data"]["teams_created"] == "support,platform,unassigned"
    assert answer["Data"]["keys_created"] == "team-support,team-platform,team-unassigned,evaluation"
    agent = json.loads(aws.get_secret_value(SecretId="aaf-llm-agent-key")["SecretString"])
    assert agent["api_key"] in admin_api.keys
    assert all(key in admin_api.keys for key in agent["team_keys"].values())


def test_update_after_create_changes_nothing(aws: Any, admin_api: AdminRecorder) -> None:
    handler.on_event(event("Create", Plan=plan_json()), None, secrets_client=aws)
    admin_api.clear_requests()

    answer = handler.on_event(event("Update", Plan=plan_json()), None, secrets_client=aws)

    assert all(route.startswith("GET ") for route in admin_api.routes())
    assert answer["Data"] == {
        "teams_created": "",
        "teams_updated": "",
        "keys_created": "",
        "keys_updated": "",
    }


def test_delete_touches_nothing(aws: Any, admin_api: AdminRecorder) -> None:
    answer = handler.on_event(
        {"RequestType": "Delete", "PhysicalResourceId": "llm-gateway-bootstrap", "ResourceProperties": {}},
        None,
        secrets_client=aws,
    )

    assert answer == {"PhysicalResourceId": "llm-gateway-bootstrap"}
    assert admin_api.requests == []


def test_missing_plan_is_named(aws: Any, admin_api: AdminRecorder) -> None:
    with pytest.raises(MissingSettingError, match="Plan"):
        handler.on_event(event("Create"), None, secrets_client=aws)


def test_missing_gateway_url_is_named(aws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(handler.ENV_GATEWAY_URL, raising=False)

    with pytest.raises(MissingSettingError, match=handler.ENV_GATEWAY_URL):
        handler.on_event(event("Create", Plan=plan_json()), None, secrets_client=aws)

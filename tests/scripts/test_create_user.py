"""`make user`: create_user against moto's Cognito; the pool lookup against a stubbed CloudFormation."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from scripts.create_user import UserCreationError, create_user, find_user_pool_id
from tests.factories import test_config

CONFIG = test_config()


@pytest.fixture
def cognito(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, str]]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        client = boto3.client("cognito-idp", region_name="us-east-1")
        pool_id = client.create_user_pool(PoolName="aaf-users")["UserPool"]["Id"]
        for team in CONFIG.identity.teams:
            client.create_group(UserPoolId=pool_id, GroupName=team)
        yield client, pool_id


def test_user_is_created_pending_password_change(cognito: tuple[Any, str]) -> None:
    client, pool_id = cognito
    user = create_user(client, pool_id, "ana@example.com", None, CONFIG)
    assert user["UserStatus"] == "FORCE_CHANGE_PASSWORD"


def test_user_joins_team_group(cognito: tuple[Any, str]) -> None:
    client, pool_id = cognito
    create_user(client, pool_id, "ana@example.com", "support", CONFIG)
    groups = client.admin_list_groups_for_user(UserPoolId=pool_id, Username="ana@example.com")["Groups"]
    assert [g["GroupName"] for g in groups] == ["support"]


def test_bad_email_is_rejected_naming_the_setting(cognito: tuple[Any, str]) -> None:
    client, pool_id = cognito
    with pytest.raises(UserCreationError, match="EMAIL 'ana' is not an email"):
        create_user(client, pool_id, "ana", None, CONFIG)


def test_unknown_team_is_rejected(cognito: tuple[Any, str]) -> None:
    client, pool_id = cognito
    with pytest.raises(UserCreationError, match="TEAM 'sales' is not a configured team"):
        create_user(client, pool_id, "ana@example.com", "sales", CONFIG)


def test_existing_user_is_reported(cognito: tuple[Any, str]) -> None:
    client, pool_id = cognito
    create_user(client, pool_id, "ana@example.com", None, CONFIG)
    with pytest.raises(UserCreationError, match="already exists"):
        create_user(client, pool_id, "ana@example.com", None, CONFIG)


def test_pool_id_comes_from_identity_stack_output() -> None:
    cloudformation = boto3.client(
        "cloudformation", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    with Stubber(cloudformation) as stub:
        stub.add_response(
            "describe_stacks",
            {
                "Stacks": [
                    {
                        "StackName": "aaf-identity",
                        "CreationTime": "2026-11-24T00:00:00Z",
                        "StackStatus": "CREATE_COMPLETE",
                        "Outputs": [{"OutputKey": "UserPoolId", "OutputValue": "us-east-1_abc"}],
                    }
                ]
            },
            {"StackName": "aaf-identity"},
        )
        assert find_user_pool_id(cloudformation, CONFIG) == "us-east-1_abc"


def test_missing_stack_says_to_deploy() -> None:
    cloudformation = boto3.client(
        "cloudformation", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    with Stubber(cloudformation) as stub:
        stub.add_client_error(
            "describe_stacks", "ValidationError", "Stack with id aaf-identity does not exist"
        )
        with pytest.raises(UserCreationError, match="make deploy"):
            find_user_pool_id(cloudformation, CONFIG)

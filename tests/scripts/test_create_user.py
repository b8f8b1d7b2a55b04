"""`make user`: create_user against moto's Cognito; the pool lookup against a stubbed CloudFormation."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from clients.aws_session import AwsSetupError, aws_session
from scripts.create_user import UserCreationError, create_user, find_user_pool_id, main
from tests.factories import test_config
from tests.support.aws_env import bare_laptop

CONFIG = test_config()
REPO = Path(__file__).resolve().parents[2]


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


# --- `make user` end to end: the region from AWS_REGION, one-line errors, never a traceback -------


@pytest.fixture
def bare_aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    return bare_laptop(monkeypatch, tmp_path)


def test_make_user_takes_the_region_from_aws_region_alone(bare_aws: pytest.MonkeyPatch, capsys: Any) -> None:
    # the README says `AWS_REGION`; boto3 1.44 alone would raise NoRegionError here
    bare_aws.setenv("AWS_REGION", "eu-west-1")
    bare_aws.setenv("AWS_ACCESS_KEY_ID", "testing")
    bare_aws.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        cognito = boto3.client("cognito-idp", region_name="eu-west-1")
        pool_id = cognito.create_user_pool(PoolName="aaf-users")["UserPool"]["Id"]
        cognito.create_group(UserPoolId=pool_id, GroupName="support")
        template = {
            "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
            "Outputs": {"UserPoolId": {"Value": pool_id}},
        }
        boto3.client("cloudformation", region_name="eu-west-1").create_stack(
            StackName="aaf-identity", TemplateBody=json.dumps(template)
        )
        assert main(["--email", "ana@example.com", "--team", "support"]) == 0
        groups = cognito.admin_list_groups_for_user(UserPoolId=pool_id, Username="ana@example.com")
    assert [g["GroupName"] for g in groups["Groups"]] == ["support"]
    assert "created ana@example.com (FORCE_CHANGE_PASSWORD)" in capsys.readouterr().out


def test_region_order_is_flag_then_aws_region_then_aws_default_region(bare_aws: pytest.MonkeyPatch) -> None:
    bare_aws.setenv("AWS_ACCESS_KEY_ID", "testing")
    bare_aws.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    bare_aws.setenv("AWS_DEFAULT_REGION", "us-west-2")
    assert aws_session().region_name == "us-west-2"
    bare_aws.setenv("AWS_REGION", "eu-west-1")
    assert aws_session().region_name == "eu-west-1"
    assert aws_session("ap-southeast-2").region_name == "ap-southeast-2"


def test_no_region_is_one_line_naming_aws_region(bare_aws: pytest.MonkeyPatch, capsys: Any) -> None:
    bare_aws.setenv("AWS_ACCESS_KEY_ID", "testing")
    bare_aws.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    assert main(["--email", "ana@example.com"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no AWS region: set AWS_REGION") and err.count("\n") == 1


def test_no_credentials_is_one_line_naming_what_to_set(bare_aws: pytest.MonkeyPatch, capsys: Any) -> None:
    bare_aws.setenv("AWS_REGION", "eu-west-1")
    assert main(["--email", "ana@example.com"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no AWS credentials: set AWS_PROFILE") and "AWS_ACCESS_KEY_ID" in err


def test_unknown_profile_is_named(bare_aws: pytest.MonkeyPatch) -> None:
    bare_aws.setenv("AWS_PROFILE", "nope")
    with pytest.raises(AwsSetupError, match=r"profile \(nope\) could not be found: set AWS_PROFILE"):
        aws_session("eu-west-1")


def test_unreachable_aws_is_one_line_not_a_traceback(bare_aws: pytest.MonkeyPatch, capsys: Any) -> None:
    bare_aws.setenv("AWS_REGION", "eu-west-1")
    bare_aws.setenv("AWS_ACCESS_KEY_ID", "testing")
    bare_aws.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    bare_aws.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # loopback port that refuses: no network
    bare_aws.setenv("AWS_MAX_ATTEMPTS", "1")
    assert main(["--email", "ana@example.com"]) == 2
    assert capsys.readouterr().err.startswith("error: the AWS request failed: Could not connect")


def test_the_command_without_region_exits_2_without_a_traceback(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env |= {
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    done = subprocess.run(
        [sys.executable, "-m", "scripts.create_user", "--email", "ana@example.com"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and "set AWS_REGION" in done.stderr

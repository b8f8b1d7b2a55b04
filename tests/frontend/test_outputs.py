"""frontend.outputs: AgentCore-mode settings read from deployed stack outputs (moto CloudFormation)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from frontend.outputs import OutputsError, chat_environment, main
from frontend.settings import load_settings
from tests.support.aws_env import bare_laptop

REPO = Path(__file__).resolve().parents[2]
ARN = "arn:aws:bedrock-agentcore:eu-west-1:123456789012:runtime/aaf_agent-AbC123"


def _stack(cloudformation, name, outputs):
    template = {
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {key: {"Value": value} for key, value in outputs.items()},
    }
    cloudformation.create_stack(StackName=name, TemplateBody=json.dumps(template))


@pytest.fixture
def cloudformation(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        yield boto3.client("cloudformation", region_name="eu-west-1")


def test_settings_come_from_the_identity_and_agentcore_outputs(cloudformation):
    _stack(cloudformation, "aaf-agentcore", {"RuntimeArn": ARN})
    _stack(
        cloudformation,
        "aaf-identity",
        {"ManagedLoginUrl": "https://aaf-1.auth.eu-west-1.amazoncognito.com", "BrowserClientId": "client123"},
    )
    env = chat_environment("aaf", "eu-west-1", cloudformation)
    assert env == {
        "CHAT_MODE": "agentcore",
        "AWS_REGION": "eu-west-1",
        "AGENT_RUNTIME_ARN": ARN,
        "COGNITO_DOMAIN_URL": "https://aaf-1.auth.eu-west-1.amazoncognito.com",
        "COGNITO_CLIENT_ID": "client123",
    }
    settings = load_settings(env)  # the chat accepts exactly these
    assert settings.mode == "agentcore"
    assert settings.oauth is not None and settings.oauth.redirect_uri == "http://localhost:8501/"


def test_missing_stack_is_named(cloudformation):
    with pytest.raises(OutputsError, match="aaf-agentcore is not deployed"):
        chat_environment("aaf", "eu-west-1", cloudformation)


def test_missing_output_is_named(cloudformation):
    _stack(cloudformation, "aaf-agentcore", {"Other": "x"})
    with pytest.raises(OutputsError, match="no output RuntimeArn"):
        chat_environment("aaf", "eu-west-1", cloudformation)


def test_cli_reports_errors_without_a_traceback(cloudformation, capsys):
    assert main(["--prefix", "nope", "--region", "eu-west-1"]) == 2
    assert "nope-agentcore is not deployed" in capsys.readouterr().err


# --- `make chat MODE=agentcore` on a laptop: AWS_REGION honoured, one-line errors -----------------


@pytest.fixture
def bare_aws(monkeypatch, tmp_path):
    return bare_laptop(monkeypatch, tmp_path)


def test_cli_reads_the_region_from_aws_region_alone(bare_aws, capsys):
    bare_aws.setenv("AWS_REGION", "eu-west-1")
    bare_aws.setenv("AWS_ACCESS_KEY_ID", "testing")
    bare_aws.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        cloudformation = boto3.client("cloudformation", region_name="eu-west-1")
        _stack(cloudformation, "aaf-agentcore", {"RuntimeArn": ARN})
        _stack(
            cloudformation, "aaf-identity", {"ManagedLoginUrl": "https://x.example", "BrowserClientId": "c1"}
        )
        assert main([]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "AWS_REGION=eu-west-1" in lines and f"AGENT_RUNTIME_ARN={ARN}" in lines


def test_cli_without_region_names_aws_region(bare_aws, capsys):
    bare_aws.setenv("AWS_ACCESS_KEY_ID", "testing")
    bare_aws.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    assert main([]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no AWS region: set AWS_REGION") and err.count("\n") == 1


def test_cli_without_credentials_names_what_to_set(bare_aws, capsys):
    assert main(["--region", "eu-west-1"]) == 2
    assert capsys.readouterr().err.startswith("error: no AWS credentials: set AWS_PROFILE")


def test_make_chat_agentcore_without_region_stops_with_one_line(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env |= {
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    done = subprocess.run(
        ["make", "--no-print-directory", "chat", "MODE=agentcore"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    assert "Traceback" not in done.stderr + done.stdout
    assert "error: no AWS region: set AWS_REGION" in done.stderr

"""frontend.outputs: AgentCore-mode settings read from deployed stack outputs (moto CloudFormation)."""

from __future__ import annotations

import json

import boto3
import pytest
from moto import mock_aws

from frontend.outputs import OutputsError, chat_environment, main
from frontend.settings import load_settings

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

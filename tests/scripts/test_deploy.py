"""`make deploy` failure reasons (DescribeStacks/DescribeStackEvents, botocore Stubber with exact requests:
moto cannot make a resource fail) and `make bootstrap` (moto STS, a fake cdk executable on disk)."""

from __future__ import annotations

import json
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.stub import Stubber
from moto import mock_aws

from scripts.aws_checks import ACTIONS, deploy
from scripts.aws_checks import bootstrap as bootstrap_cli
from scripts.aws_checks.common import AwsContext
from tests.support.aws_env import offline_aws

REGION = "eu-west-1"
STARTED = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    offline_aws(monkeypatch, tmp_path, REGION)


def event(stack: str, logical: str, status: str, reason: str, minute: int, **extra: str) -> dict[str, Any]:
    return {
        "StackId": f"arn:aws:cloudformation:{REGION}:123456789012:stack/{stack}/1",
        "EventId": f"{logical}-{minute}",
        "StackName": stack,
        "LogicalResourceId": logical,
        "ResourceType": extra.pop("ResourceType", "AWS::Lambda::Function"),
        "ResourceStatus": status,
        "ResourceStatusReason": reason,
        "Timestamp": STARTED + timedelta(minutes=minute),
        **extra,
    }


def stack(name: str, status: str, minute: int = 1) -> dict[str, Any]:
    return {
        "StackName": name,
        "StackId": f"arn:aws:cloudformation:{REGION}:123456789012:stack/{name}/1",
        "StackStatus": status,
        "CreationTime": STARTED + timedelta(minutes=minute),
    }


REAL_REASON = (
    'Resource handler returned message: "Subnet use1-az6 is not supported" (HandlerErrorCode: InvalidRequest)'
)


def stubbed(
    aws: AwsContext, stacks: list[dict[str, Any]], events: dict[str, list[dict[str, Any]]]
) -> Stubber:
    stubber = Stubber(aws.client("cloudformation"))
    stubber.add_response("describe_stacks", {"Stacks": stacks}, {})
    for name, stack_events in events.items():
        newest_first = sorted(stack_events, key=lambda e: e["Timestamp"], reverse=True)
        stubber.add_response("describe_stack_events", {"StackEvents": newest_first}, {"StackName": name})
    stubber.activate()
    return stubber


def test_first_failed_resource_skipping_cancellations_and_older_events() -> None:
    aws = AwsContext(REGION)
    events = [
        event("aaf-agentcore", "OldFailure", "CREATE_FAILED", "an earlier deploy's failure", -60),
        event("aaf-agentcore", "Runtime", "CREATE_IN_PROGRESS", "", 2),
        event("aaf-agentcore", "Memory", "CREATE_FAILED", "Resource creation cancelled", 3),
        event(
            "aaf-agentcore",
            "Runtime",
            "CREATE_FAILED",
            REAL_REASON,
            4,
            ResourceType="AWS::BedrockAgentCore::Runtime",
        ),
        event("aaf-agentcore", "Gateway", "CREATE_FAILED", "Resource creation cancelled", 4),
        event(
            "aaf-agentcore",
            "aaf-agentcore",
            "ROLLBACK_IN_PROGRESS",
            "The following resource(s) failed to create: [Runtime]",
            5,
        ),
        event("aaf-agentcore", "Memory", "DELETE_FAILED", "a later rollback failure", 6),
    ]
    stubber = stubbed(
        aws,
        [
            stack("aaf-agentcore", "ROLLBACK_COMPLETE"),
            stack("aaf-network", "CREATE_COMPLETE"),
            stack("other-app", "ROLLBACK_COMPLETE"),
        ],
        {"aaf-agentcore": events},
    )
    lines = deploy.explain_failure(aws, "aaf", STARTED)
    stubber.assert_no_pending_responses()
    assert lines[0] == f"aaf-agentcore: Runtime (AWS::BedrockAgentCore::Runtime) CREATE_FAILED: {REAL_REASON}"
    assert lines[1].startswith(f"  console: https://{REGION}.console.aws.amazon.com/cloudformation/")
    assert len(lines) == 2  # aaf-network did not fail; other-app is not ours
    assert set(aws.actions) <= set(ACTIONS["deploy"])


def test_nested_stack_failure_is_followed() -> None:
    aws = AwsContext(REGION)
    nested_id = f"arn:aws:cloudformation:{REGION}:123456789012:stack/aaf-frontend-Nested-1/2"
    stubber = Stubber(aws.client("cloudformation"))
    stubber.add_response(
        "describe_stacks", {"Stacks": [stack("aaf-frontend", "UPDATE_ROLLBACK_COMPLETE")]}, {}
    )
    outer = [
        event(
            "aaf-frontend",
            "Nested",
            "UPDATE_FAILED",
            "Embedded stack was not successfully updated",
            2,
            ResourceType="AWS::CloudFormation::Stack",
            PhysicalResourceId=nested_id,
        )
    ]
    stubber.add_response("describe_stack_events", {"StackEvents": outer}, {"StackName": "aaf-frontend"})
    inner = [event("aaf-frontend-Nested-1", "Service", "UPDATE_FAILED", "ECS service did not stabilize", 2)]
    stubber.add_response("describe_stack_events", {"StackEvents": inner}, {"StackName": nested_id})
    stubber.activate()
    lines = deploy.explain_failure(aws, "aaf", STARTED)
    assert (
        lines[0]
        == "aaf-frontend: Service (AWS::Lambda::Function) UPDATE_FAILED: ECS service did not stabilize [in nested stack aaf-frontend-Nested-1]"
    )


def test_no_failed_stack_points_at_the_cdk_output() -> None:
    aws = AwsContext(REGION)
    stubbed(aws, [stack("aaf-network", "CREATE_COMPLETE")], {})
    assert "error is in the CDK output above" in deploy.explain_failure(aws, "aaf", STARTED)[0]


def test_access_denied_reading_events_is_reported_not_raised() -> None:
    aws = AwsContext(REGION)
    stubber = Stubber(aws.client("cloudformation"))
    stubber.add_client_error("describe_stacks", "AccessDenied", http_status_code=403, expected_params={})
    stubber.activate()
    (line,) = deploy.explain_failure(aws, "aaf", STARTED)
    assert "access denied to cloudformation:DescribeStacks" in line and "docs/deploy.md" in line


def fake_cli(tmp_path: Path, code: int) -> tuple[str, Path]:
    record = tmp_path / "argv.json"
    script = tmp_path / "cdk"
    script.write_text(
        "#!/usr/bin/env python3\nimport json, os, sys\n"
        f"json.dump({{'argv': sys.argv[1:], 'region': os.environ.get('AWS_REGION')}}, open({str(record)!r}, 'w'))\n"
        f"sys.exit({code})\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(script), record


def test_deploy_main_runs_cdk_and_prints_the_reason_on_failure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cdk, record = fake_cli(tmp_path, 1)
    aws = AwsContext(REGION)
    stubbed(
        aws,
        [stack("aaf-agentcore", "ROLLBACK_COMPLETE", minute=60 * 24 * 365)],
        {"aaf-agentcore": [event("aaf-agentcore", "Runtime", "CREATE_FAILED", REAL_REASON, 60 * 24 * 365)]},
    )
    code = deploy.main(["--cdk", cdk, "--", "deploy", "--all", "-c", "profile=dev"], aws=aws)
    assert code == 1
    assert json.loads(record.read_text()) == {
        "argv": ["deploy", "--all", "-c", "profile=dev"],
        "region": REGION,
    }
    assert REAL_REASON in capsys.readouterr().err


def test_deploy_main_success_reads_nothing(tmp_path: Path) -> None:
    cdk, _ = fake_cli(tmp_path, 0)
    aws = AwsContext(REGION)
    assert deploy.main(["--cdk", cdk, "--", "deploy", "--all"], aws=aws) == 0
    assert aws.calls == []


def test_deploy_without_credentials_stops_before_cdk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    cdk, record = fake_cli(tmp_path, 0)
    assert deploy.main(["--cdk", cdk, "--", "deploy", "--all"]) == 2
    assert not record.exists()  # cdk (and its minute of synthesis) never ran
    err = capsys.readouterr().err
    assert "no AWS credentials" in err and "AWS_PROFILE" in err and "Traceback" not in err


def test_bootstrap_targets_the_credentials_account_and_aws_region(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cdk, record = fake_cli(tmp_path, 0)
    with mock_aws():
        assert bootstrap_cli.main(["--cdk", cdk]) == 0
    assert json.loads(record.read_text()) == {
        "argv": ["bootstrap", f"aws://123456789012/{REGION}"],
        "region": REGION,
    }


def test_bootstrap_without_region_or_credentials_says_what_to_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    cdk, record = fake_cli(tmp_path, 0)
    monkeypatch.delenv("AWS_REGION")
    assert bootstrap_cli.main(["--cdk", cdk]) == 2
    assert "AWS_REGION" in capsys.readouterr().err and not record.exists()
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    assert bootstrap_cli.main(["--cdk", cdk]) == 2
    assert "no AWS credentials found" in capsys.readouterr().err and not record.exists()

"""`make preflight` against moto (sts, cloudformation, ssm, ec2, bedrock-agentcore-control) and botocore
Stubbers with exact expected requests where moto has no implementation (bedrock model access, the
ec2/fargate service quotas); Docker through a fake `docker` executable on disk."""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from scripts.aws_checks import ACTIONS
from scripts.aws_checks.common import Status, resolve_region, run_checks
from scripts.aws_checks.preflight import (
    BINFMT_HINT,
    CHECKS,
    Preflight,
    build_state,
    buildx_platforms,
    catalog_models,
    main,
    required_bootstrap_version,
)
from tests.support.aws_env import offline_aws

REGION = "us-east-1"
BUILDX_ARM = """NAME/NODE     DRIVER/ENDPOINT   STATUS    BUILDKIT   PLATFORMS
default*      docker
 \\_ default    \\_ default       running   v0.13.2    linux/amd64, linux/amd64/v2, linux/arm64, linux/386
"""
BUILDX_X86 = """NAME/NODE DRIVER/ENDPOINT STATUS  BUILDKIT PLATFORMS
default * docker
  default default         running v0.11.6  linux/amd64, linux/amd64/v2, linux/386
"""


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    offline_aws(monkeypatch, tmp_path, REGION)


def fake_docker(tmp_path: Path, output: str, code: int = 0) -> str:
    path = tmp_path / "docker"
    path.write_text(f"#!/bin/sh\ncat <<'EOF'\n{output}\nEOF\nexit {code}\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return str(path)


def bootstrap(version: str = "30") -> None:
    cfn = boto3.client("cloudformation", region_name=REGION)
    template = {"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}}
    cfn.create_stack(StackName="CDKToolkit", TemplateBody=json.dumps(template))
    boto3.client("ssm", region_name=REGION).put_parameter(
        Name="/cdk-bootstrap/hnb659fds/version", Value=version, Type="String"
    )


def private_vpc(az_ids: tuple[str, ...] = ("use1-az1", "use1-az2")) -> str:
    ec2 = boto3.client("ec2", region_name=REGION)
    vpc_id = str(ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"])
    for index, az_id in enumerate(az_ids):
        subnet = ec2.create_subnet(VpcId=vpc_id, CidrBlock=f"10.9.{index}.0/24", AvailabilityZoneId=az_id)
        ec2.modify_subnet_attribute(
            SubnetId=subnet["Subnet"]["SubnetId"], MapPublicIpOnLaunch={"Value": False}
        )
    # A public subnet in a zone AgentCore does not accept: the runtime never uses public subnets.
    public = ec2.create_subnet(VpcId=vpc_id, CidrBlock="10.9.100.0/24", AvailabilityZoneId="use1-az6")
    ec2.modify_subnet_attribute(SubnetId=public["Subnet"]["SubnetId"], MapPublicIpOnLaunch={"Value": True})
    return vpc_id


def profile_arns(model: str) -> list[dict[str, str]]:
    return [
        {"modelArn": f"arn:aws:bedrock:{r}::foundation-model/{model}"} for r in ("us-east-1", "us-west-2")
    ]


def stub_models(
    state: Preflight, *, denied: str | None = None, agreement: str = "AVAILABLE", missing: str | None = None
) -> Stubber:
    """Exact Bedrock requests for the catalog: a profile lookup for `us.` ids, then the model and its
    availability for each foundation model; `denied` answers NOT_AUTHORIZED for that foundation model."""
    assert state.aws is not None
    stubber = Stubber(state.aws.client("bedrock"))
    for _, model_id in catalog_models(state.config):
        foundation = model_id.split(".", 1)[1] if model_id.startswith("us.") else model_id
        if model_id == missing:
            stubber.add_client_error(
                "get_inference_profile",
                "ResourceNotFoundException",
                http_status_code=404,
                expected_params={"inferenceProfileIdentifier": model_id},
            )
            continue
        if model_id.startswith("us."):
            stubber.add_response(
                "get_inference_profile",
                {
                    "inferenceProfileName": model_id,
                    "inferenceProfileArn": f"arn:aws:bedrock:{REGION}:123456789012:inference-profile/{model_id}",
                    "inferenceProfileId": model_id,
                    "status": "ACTIVE",
                    "type": "SYSTEM_DEFINED",
                    "models": profile_arns(foundation),
                },
                {"inferenceProfileIdentifier": model_id},
            )
        stubber.add_response(
            "get_foundation_model",
            {
                "modelDetails": {
                    "modelArn": f"arn:aws:bedrock:{REGION}::foundation-model/{foundation}",
                    "modelId": foundation,
                    "inferenceTypesSupported": ["INFERENCE_PROFILE"]
                    if model_id.startswith("us.")
                    else ["ON_DEMAND"],
                    "modelLifecycle": {"status": "ACTIVE"},
                }
            },
            {"modelIdentifier": foundation},
        )
        stubber.add_response(
            "get_foundation_model_availability",
            {
                "modelId": foundation,
                "agreementAvailability": {"status": agreement},
                "authorizationStatus": "NOT_AUTHORIZED" if foundation == denied else "AUTHORIZED",
                "entitlementAvailability": "AVAILABLE",
                "regionAvailability": "AVAILABLE",
            },
            {"modelId": foundation},
        )
    stubber.activate()
    return stubber


def quota(code: str, service: str, value: float) -> dict[str, Any]:
    return {"Quota": {"ServiceCode": service, "QuotaCode": code, "Value": value}}


def stub_quotas(
    state: Preflight, *, fargate_spot: float = 100, applied: bool = True, new_vpc: bool = True
) -> Stubber:
    """Exact Service Quotas requests in QUOTAS order for what the config needs (dev: a new VPC, a NAT
    instance so no Elastic IP, Fargate Spot and on-demand vCPUs)."""
    assert state.aws is not None
    stubber = Stubber(state.aws.client("service-quotas"))
    if new_vpc:
        vpc = {"ServiceCode": "vpc", "QuotaCode": "L-F678F1CE"}
        stubber.add_response("get_service_quota", quota("L-F678F1CE", "vpc", 5), vpc)
    ask = {"ServiceCode": "fargate", "QuotaCode": "L-3032A538"}
    if applied:
        stubber.add_response("get_service_quota", quota("L-3032A538", "fargate", 100), ask)
    else:  # no applied value: the AWS default is read instead
        stubber.add_client_error("get_service_quota", "NoSuchResourceException", expected_params=ask)
        stubber.add_response("get_aws_default_service_quota", quota("L-3032A538", "fargate", 6), ask)
    stubber.add_response(
        "get_service_quota",
        quota("L-36FBB829", "fargate", fargate_spot),
        {"ServiceCode": "fargate", "QuotaCode": "L-36FBB829"},
    )
    stubber.activate()
    return stubber


@pytest.fixture
def account(aws_env: None) -> Iterator[None]:
    with mock_aws():
        bootstrap()
        yield


def state_for(tmp_path: Path, *args: str, docker_output: str = BUILDX_ARM) -> Preflight:
    state = build_state(
        ["--docker", fake_docker(tmp_path, docker_output), "--cdk-out", str(tmp_path / "none"), *args]
    )
    state.machine = "x86_64"
    return state


def by_name(results: list[Any]) -> dict[str, Any]:
    return {r.name: r for r in results}


def run_only(state: Preflight, name: str) -> Any:
    """The credentials check (later checks need the account) and then the one named."""
    chosen = [c for c in CHECKS if c.name in ("region", "credentials", name)]
    return by_name(run_checks(chosen, state, state.aws))[name]


def test_everything_in_order_passes_and_every_call_is_a_listed_action(account: None, tmp_path: Path) -> None:
    vpc_id = private_vpc()
    state = state_for(tmp_path, "-c", f"network.vpc_id={vpc_id}")
    models, quotas = stub_models(state), stub_quotas(state, new_vpc=False)
    results = run_checks(CHECKS, state, state.aws)
    assert [r.status for r in results] == [Status.PASS] * len(CHECKS), [
        (r.name, r.detail, r.fix) for r in results
    ]
    models.assert_no_pending_responses()
    quotas.assert_no_pending_responses()
    assert state.aws is not None
    assert set(state.aws.actions) <= set(ACTIONS["preflight"]), set(state.aws.actions) - set(
        ACTIONS["preflight"]
    )
    # stubbed calls are recorded too, so the coverage check above is not vacuous for them
    stubbed = {
        "bedrock:GetInferenceProfile",
        "bedrock:GetFoundationModelAvailability",
        "servicequotas:GetServiceQuota",
    }
    assert stubbed <= set(state.aws.actions)
    assert (
        "runtime-az-ids" in by_name(results)
        and "use1-az1, use1-az2" in by_name(results)["runtime-az-ids"].detail
    )


def test_aws_region_alone_is_honoured(aws_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    assert resolve_region() == "eu-west-1"
    with mock_aws():
        state = build_state([])
        assert state.aws is not None and state.aws.client("sts").meta.region_name == "eu-west-1"


def test_no_region_is_a_clear_failure_not_a_traceback(
    aws_env: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.delenv("AWS_REGION")
    code = main(["--docker", fake_docker(tmp_path, BUILDX_ARM)])
    out = capsys.readouterr().out
    assert code == 1
    assert "no AWS region configured" in out and "AWS_REGION" in out
    assert "Traceback" not in out and "NoRegionError" not in out
    assert "not run: region or credentials failed" in out  # AWS checks are skipped, not crashed


def test_no_credentials_names_what_to_set(
    aws_env: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    state = state_for(tmp_path)
    results = by_name(run_checks(CHECKS, state, state.aws))  # no endpoint: signing fails before sending
    assert results["credentials"].status is Status.FAIL
    assert results["credentials"].detail == "no AWS credentials found"
    assert "AWS_PROFILE" in results["credentials"].fix
    assert results["agentcore"].status is Status.SKIP


def test_missing_bootstrap_says_make_bootstrap(aws_env: None, tmp_path: Path) -> None:
    with mock_aws():
        state = state_for(tmp_path)
        result = run_only(state, "cdk-bootstrap")
    assert result.status is Status.FAIL
    assert "no CDKToolkit stack in us-east-1" in result.detail and "make bootstrap" in result.fix
    assert "us-east-1.console.aws.amazon.com/cloudformation" in result.link


def test_old_bootstrap_version_fails_with_the_required_version(aws_env: None, tmp_path: Path) -> None:
    with mock_aws():
        bootstrap(version="5")
        state = state_for(tmp_path)
        result = run_only(state, "cdk-bootstrap")
    assert result.status is Status.FAIL and "version 5 < 6" in result.detail


def test_required_version_comes_from_the_synthesized_manifest(tmp_path: Path) -> None:
    config = build_state.__globals__["load_config"]({})
    (tmp_path / "manifest.json").write_text(
        json.dumps(
            {
                "artifacts": {
                    "a": {"properties": {"requiresBootstrapStackVersion": 6}},
                    "b": {"properties": {"lookupRole": {"requiresBootstrapStackVersion": 8}}},
                }
            }
        )
    )
    assert required_bootstrap_version(config, tmp_path)[0] == 8
    assert required_bootstrap_version(config, tmp_path / "missing")[0] == 6


def test_access_denied_names_the_action(account: None, tmp_path: Path) -> None:
    state = state_for(tmp_path)
    assert state.aws is not None
    stubber = Stubber(state.aws.client("bedrock-agentcore-control"))
    stubber.add_client_error(
        "list_agent_runtimes",
        "AccessDeniedException",
        http_status_code=403,
        expected_params={"maxResults": 1},
    )
    stubber.activate()
    result = run_only(state, "agentcore")
    assert result.status is Status.FAIL
    assert result.detail == "access denied to bedrock-agentcore:ListAgentRuntimes"
    assert "docs/deploy.md" in result.fix


def test_agentcore_answers_through_moto(account: None, tmp_path: Path) -> None:
    state = state_for(tmp_path)
    result = run_only(state, "agentcore")
    assert result.status is Status.PASS


def test_model_without_access_fails_naming_the_alias(account: None, tmp_path: Path) -> None:
    state = state_for(tmp_path)
    stubber = stub_models(state, denied="anthropic.claude-haiku-4-5-20251001-v1:0")
    result = run_only(state, "bedrock-models")
    stubber.assert_no_pending_responses()
    assert result.status is Status.FAIL
    assert (
        "claude-haiku: anthropic.claude-haiku-4-5-20251001-v1:0: authorizationStatus=NOT_AUTHORIZED"
        in result.detail
    )
    assert "claude-sonnet" not in result.detail
    assert "use case" in result.fix


def test_pending_agreement_is_not_access(account: None, tmp_path: Path) -> None:
    state = state_for(tmp_path)
    stub_models(state, agreement="PENDING")
    result = run_only(state, "bedrock-models")
    assert result.status is Status.FAIL and "agreementAvailability.status=PENDING" in result.detail


def test_model_not_offered_in_the_region(account: None, tmp_path: Path) -> None:
    state = state_for(tmp_path)
    stubber = stub_models(state, missing="us.anthropic.claude-sonnet-4-5-20250929-v1:0")
    result = run_only(state, "bedrock-models")
    stubber.assert_no_pending_responses()
    assert result.status is Status.FAIL
    assert result.detail.startswith(
        "claude-sonnet: us.anthropic.claude-sonnet-4-5-20250929-v1:0 is not offered in us-east-1"
    )
    assert "claude-haiku" not in result.detail


def test_unsupported_az_of_the_new_vpc(account: None, tmp_path: Path) -> None:
    """moto's us-east-1 maps us-east-1a to use1-az6, which AgentCore Runtime does not accept."""
    state = state_for(tmp_path)
    result = run_only(state, "runtime-az-ids")
    assert result.status is Status.FAIL
    assert "use1-az6" in result.detail and "use1-az1" not in result.detail.split("(")[0].split(": ")[1]
    assert "use1-az1, use1-az2, use1-az4" in result.fix and "agentcore-vpc" in result.fix


def test_imported_vpc_with_a_subnet_in_an_unsupported_az(account: None, tmp_path: Path) -> None:
    vpc_id = private_vpc(("use1-az1", "use1-az3"))
    state = state_for(tmp_path, "-c", f"network.vpc_id={vpc_id}")
    result = run_only(state, "runtime-az-ids")
    assert result.status is Status.FAIL and "use1-az3" in result.detail and vpc_id in result.detail


def test_quota_too_small_fails_and_default_is_read_when_not_applied(account: None, tmp_path: Path) -> None:
    state = state_for(tmp_path)
    stubber = stub_quotas(state, fargate_spot=1, applied=False)
    result = run_only(state, "service-quotas")
    stubber.assert_no_pending_responses()
    assert result.status is Status.FAIL
    assert "Fargate Spot vCPU" in result.detail and "Service Quotas console" in result.fix
    assert "Fargate On-Demand vCPU" not in result.detail  # 6 default covers the on-demand need


@pytest.mark.parametrize(
    ("output", "code", "detail", "fix"),
    [
        (BUILDX_X86, 0, "no builder lists linux/arm64", BINFMT_HINT),
        (
            "Cannot connect to the Docker daemon",
            1,
            "exited 1: Cannot connect to the Docker daemon",
            "start the Docker daemon",
        ),
    ],
)
def test_docker_without_arm64(
    tmp_path: Path, output: str, code: int, detail: str, fix: str, aws_env: None
) -> None:
    state = build_state(["--docker", fake_docker(tmp_path, output, code)])
    state.machine = "x86_64"
    result = by_name(run_checks(CHECKS[3:4], state))["docker-buildx"]
    assert result.status is Status.FAIL and detail in result.detail and fix in result.fix


def test_docker_not_installed(tmp_path: Path, aws_env: None) -> None:
    state = build_state(["--docker", str(tmp_path / "no-docker")])
    result = by_name(run_checks(CHECKS[3:4], state))["docker-buildx"]
    assert result.status is Status.FAIL and "is not installed" in result.detail


def test_buildx_platforms_parse_both_layouts() -> None:
    assert "linux/arm64" in buildx_platforms(BUILDX_ARM)
    assert "linux/arm64" not in buildx_platforms(BUILDX_X86)
    assert "linux/arm64" in buildx_platforms(
        "mybuilder  docker-container  running  linux/arm64*, linux/amd64"
    )


def test_main_exits_non_zero_with_a_table(
    account: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = state_for(tmp_path, docker_output=BUILDX_X86)
    stub_models(state)
    stub_quotas(state)
    code = main(state=state)
    out = capsys.readouterr().out
    assert code == 1
    assert out.splitlines()[0].split() == ["check", "status", "detail"]
    assert "What to do:" in out and BINFMT_HINT in out
    assert out.strip().splitlines()[-1] == "FAILED: docker-buildx, runtime-az-ids"

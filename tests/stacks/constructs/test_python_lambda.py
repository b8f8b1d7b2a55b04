"""PythonLambda: the packaged asset (handler, imported modules, arm64 wheels), the function's settings,
unchanged logical ids for the function/log group/role it replaced, and its own acknowledgements."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk.assertions import Template

from stacks.compliance import acknowledge_all
from stacks.constructs.python_lambda import VPC_ACTIONS, PythonLambda, VpcPlacement
from tests.stacks.constructs import (
    ACCOUNT_REGION,
    Synthesized,
    assert_acknowledged_as_pinned,
    cdk_logical_id,
    key,
    small_vpc,
    synth_blocks,
)
from tests.stacks.constructs.acknowledgements import ACKNOWLEDGEMENTS

ELF_MACHINE_AARCH64 = 0xB7  # ELF e_machine of arm64 shared objects


@dataclass
class Built:
    template: Template
    outdir: Path
    construct: PythonLambda


INTERCEPTOR_ID = "InterceptorFunction"


def function_of(template: Template, construct_id: str = INTERCEPTOR_ID) -> dict[str, Any]:
    return dict(
        template.find_resources("AWS::Lambda::Function")[cdk_logical_id(construct_id, "Default", "Resource")][
            "Properties"
        ]
    )


def asset_dir(built: Built) -> Path:
    key = function_of(built.template)["Code"]["S3Key"].removesuffix(".zip")
    return built.outdir / f"asset.{key}"


def elf_machine(path: Path) -> int:
    header = path.read_bytes()[:20]
    assert header[:4] == b"\x7fELF", f"{path} is not an ELF shared object"
    return int.from_bytes(header[18:20], "little")


def test_the_interceptor_asset_holds_pyjwt_and_cryptography_for_linux_arm64(built: Built) -> None:
    asset = asset_dir(built)
    assert (asset / "jwt" / "__init__.py").is_file()
    assert next(asset.glob("pyjwt-2.15.1.dist-info"), None) is not None
    assert next(asset.glob("cryptography-*.dist-info"), None) is not None
    native = [asset / "cryptography/hazmat/bindings/_rust.abi3.so", *asset.glob("_cffi_backend*.so")]
    assert len(native) == 2
    assert {elf_machine(path) for path in native} == {ELF_MACHINE_AARCH64}
    assert all("aarch64" in p.name or p.name == "_rust.abi3.so" for p in native)


def test_the_asset_holds_the_handler_and_exactly_the_modules_it_imports(built: Built) -> None:
    asset = asset_dir(built)
    ours = sorted(
        p.relative_to(asset).as_posix()
        for p in asset.rglob("*.py")
        if p.relative_to(asset).parts[0] in {"functions", "tools", "llm_gateway", "corpus", "config"}
    )
    assert "functions/interceptor/handler.py" in ours and "functions/interceptor/jwt_verify.py" in ours
    assert "tools/specs.py" in ours and "functions/__init__.py" in ours
    assert not [p for p in ours if p.startswith(("tools/tickets", "tools/local_index", "config/"))]
    assert not list(asset.rglob("__pycache__"))


def test_python_314_on_arm64_with_its_encrypted_log_group_and_environment(built: Built) -> None:
    props = function_of(built.template)
    assert props["Runtime"] == "python3.14" and props["Architectures"] == ["arm64"]
    assert props["Handler"] == "functions.interceptor.handler.handler"
    assert (props["Description"], props["MemorySize"], props["Timeout"]) == (
        "interceptor under test",
        256,
        10,
    )
    (key_id,) = built.template.find_resources("AWS::KMS::Key")
    assert props["KmsKeyArn"] == {"Fn::GetAtt": [key_id, "Arn"]}
    assert props["Environment"] == {"Variables": {"STAGE": "test"}}
    log_group_id = cdk_logical_id(f"{INTERCEPTOR_ID}Logs", "Resource")
    log_group = built.template.find_resources("AWS::Logs::LogGroup")[log_group_id]
    assert log_group["Properties"]["RetentionInDays"] == 14 and log_group["DeletionPolicy"] == "Delete"
    assert log_group["Properties"]["KmsKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}
    assert props["LoggingConfig"] == {"LogGroup": {"Ref": log_group_id}}
    role_id = cdk_logical_id(f"{INTERCEPTOR_ID}Role", "Resource")
    assert props["Role"] == {"Fn::GetAtt": [role_id, "Arn"]}
    role = built.template.find_resources("AWS::IAM::Role")[role_id]
    assert "ManagedPolicyArns" not in role["Properties"]  # a generated role, no managed policy
    assert role["Properties"]["Description"] == "interceptor under test (execution role)"
    assert "VpcConfig" not in props and "ReservedConcurrentExecutions" not in props
    assert "TracingConfig" not in props  # Tracing.DISABLED writes nothing: Lambda's default PassThrough


def test_function_log_group_and_role_keep_the_logical_ids_of_the_code_they_replace(built: Built) -> None:
    plain = cdk.Stack(cdk.App(), "S", env=cdk.Environment(account="123456789012", region="eu-central-1"))
    key = kms.Key(plain, "Key")
    group = logs.LogGroup(plain, "InterceptorFunctionLogs", encryption_key=key)
    role = iam.Role(plain, "InterceptorFunctionRole", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
    lambda_.Function(
        plain,
        "InterceptorFunction",
        runtime=lambda_.Runtime.PYTHON_3_14,
        handler="x.handler",
        code=lambda_.Code.from_inline("x"),
        role=role,
        log_group=group,
    )
    expected = Template.from_stack(plain)
    for kind in ("AWS::Lambda::Function", "AWS::Logs::LogGroup", "AWS::IAM::Role"):
        (expected_id,) = expected.find_resources(kind)
        assert expected_id in built.template.find_resources(kind), kind


def test_a_function_outside_a_vpc_must_say_why() -> None:
    stack = cdk.Stack(cdk.App(), "S")
    with pytest.raises(ValueError, match=r"^Fn: a function outside a VPC needs outside_vpc_reason$"):
        PythonLambda(
            stack,
            "Fn",
            function="interceptor",
            description="d",
            key=kms.Key(stack, "Key"),
            log_retention_days=14,
            removal_policy=cdk.RemovalPolicy.DESTROY,
            timeout=cdk.Duration.seconds(3),
        )


def test_a_function_needs_its_handler_file() -> None:
    stack = cdk.Stack(cdk.App(), "S")
    with pytest.raises(ValueError, match=r"^Fn: .*/functions/no_such_function/handler\.py does not exist$"):
        PythonLambda(
            stack,
            "Fn",
            function="no_such_function",
            description="d",
            key=kms.Key(stack, "Key"),
            log_retention_days=14,
            removal_policy=cdk.RemovalPolicy.DESTROY,
            timeout=cdk.Duration.seconds(3),
            outside_vpc_reason=OUTSIDE_REASON,
        )


# --- the settings and acknowledgements of each placement, with the nag packs on ---------------------------

NAGGED: dict[str, PythonLambda] = {}
OUTSIDE_REASON = "A test function outside any VPC; it calls only AWS APIs over HTTPS."
# Lambda's documented network-interface permissions for a function in a VPC
# (https://docs.aws.amazon.com/lambda/latest/dg/configuration-vpc.html, "Required IAM permissions").
DOCUMENTED_VPC_ACTIONS = [
    "ec2:CreateNetworkInterface",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSubnets",
    "ec2:DeleteNetworkInterface",
    "ec2:AssignPrivateIpAddresses",
    "ec2:UnassignPrivateIpAddresses",
]


def _build_placements(stack: cdk.Stack) -> None:
    vpc = small_vpc(stack)
    data_key = key(stack)
    group = ec2.SecurityGroup(stack, "FunctionSecurityGroup", vpc=vpc, allow_all_outbound=False)
    common: dict[str, Any] = {
        "function": "ingestion",
        "key": data_key,
        "log_retention_days": 30,
        "removal_policy": cdk.RemovalPolicy.RETAIN,
    }
    NAGGED["attached"] = PythonLambda(
        stack,
        "Attached",
        description="attached under test",
        timeout=cdk.Duration.seconds(45),
        handler="handle_deploy",
        memory_mb=512,
        vpc=VpcPlacement(vpc, ec2.SubnetSelection(subnet_group_name="services"), [group]),
        outside_vpc_reason="Ignored: the function is in a VPC (nothing to acknowledge).",
        reserved_concurrency=2,
        synchronous_caller="the test's custom resource",
        tracing=True,
        role_description="the attached test function's own role",
        **common,
    )
    NAGGED["interceptor"] = PythonLambda(  # every default, outside a VPC; requirements.txt installed
        stack,
        INTERCEPTOR_ID,
        function="interceptor",
        description="interceptor under test",
        key=data_key,
        log_retention_days=14,
        removal_policy=cdk.RemovalPolicy.DESTROY,
        timeout=cdk.Duration.seconds(10),
        outside_vpc_reason=OUTSIDE_REASON,
        synchronous_caller="the tool gateway",
        encrypt_environment=True,
        environment={"STAGE": "test"},
    )
    given = iam.Role(
        stack,
        "GivenRole",
        assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
        description="a role the caller made",
    )
    NAGGED["given"] = PythonLambda(
        stack,
        "Given",
        description="given role under test",
        timeout=cdk.Duration.seconds(3),
        outside_vpc_reason=OUTSIDE_REASON,
        reserved_concurrency=1,
        synchronous_caller="EventBridge Scheduler",
        tracing=True,
        role=given,
        **common,
    )
    # The X-Ray statement CDK adds to a role the caller made is the caller's to acknowledge.
    acknowledge_all(
        given,
        {
            "AwsSolutions-IAM5[Resource::*]": "X-Ray trace upload has no resource-level permissions (test role)."
        },
    )


@pytest.fixture(scope="module")
def placements(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    """One stack (synthesis is slow), nag packs on: the interceptor (defaults, outside a VPC, packaged with
    its requirements), a function attached to a VPC with every option, and one with the caller's role."""
    return synth_blocks(tmp_path_factory.mktemp("lambda"), _build_placements, env=ACCOUNT_REGION)


@pytest.fixture(scope="module")
def built(placements: Synthesized) -> Built:
    return Built(placements.template, placements.outdir, NAGGED["interceptor"])


def _function(synthesized: Synthesized, name: str) -> dict[str, Any]:
    return dict(
        synthesized.resources("AWS::Lambda::Function")[cdk_logical_id(name, "Default", "Resource")][
            "Properties"
        ]
    )


def _statements(synthesized: Synthesized, role_id: str) -> list[dict[str, Any]]:
    return [
        statement
        for policy in synthesized.resources("AWS::IAM::Policy").values()
        if {"Ref": role_id} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


def test_each_placement_is_acknowledged_exactly_as_pinned(placements: Synthesized) -> None:
    assert_acknowledged_as_pinned(placements, NAGGED.values(), ACKNOWLEDGEMENTS["python_lambda"])


def test_the_functions_settings_are_the_callers(placements: Synthesized) -> None:
    attached, given = _function(placements, "Attached"), _function(placements, "Given")
    assert (attached["Description"], attached["MemorySize"], attached["Timeout"]) == (
        "attached under test",
        512,
        45,
    )
    assert attached["Handler"] == "functions.ingestion.handler.handle_deploy"
    assert attached["ReservedConcurrentExecutions"] == 2 and given["ReservedConcurrentExecutions"] == 1
    assert attached["TracingConfig"] == given["TracingConfig"] == {"Mode": "Active"}
    for props in (attached, given):
        assert (props["Runtime"], props["Architectures"]) == ("python3.14", ["arm64"])
        assert "KmsKeyArn" not in props and "Environment" not in props  # AWS managed key, no variables
    assert given["Role"] == {"Fn::GetAtt": [cdk_logical_id("GivenRole", "Resource"), "Arn"]}
    assert attached["Role"] == {"Fn::GetAtt": [cdk_logical_id("AttachedRole", "Resource"), "Arn"]}


def test_a_function_in_a_vpc_sits_in_the_given_subnets_and_groups(placements: Synthesized) -> None:
    config = _function(placements, "Attached")["VpcConfig"]
    (group_id,) = config["SecurityGroupIds"]
    assert group_id == {"Fn::GetAtt": [cdk_logical_id("FunctionSecurityGroup", "Resource"), "GroupId"]}
    assert len(config["SubnetIds"]) == 2 and all("Vpcservices" in str(s) for s in config["SubnetIds"])
    assert "VpcConfig" not in _function(placements, "InterceptorFunction")


def test_the_generated_role_holds_only_what_the_function_needs(placements: Synthesized) -> None:
    roles = placements.resources("AWS::IAM::Role")
    attached_role = roles[cdk_logical_id("AttachedRole", "Resource")]["Properties"]
    assert attached_role["Description"] == "the attached test function's own role"
    assert attached_role["AssumeRolePolicyDocument"]["Statement"] == [
        {"Action": "sts:AssumeRole", "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}}
    ]
    assert all("ManagedPolicyArns" not in role["Properties"] for role in roles.values())
    assert list(VPC_ACTIONS) == DOCUMENTED_VPC_ACTIONS
    by_sid = {s.get("Sid"): s for s in _statements(placements, cdk_logical_id("AttachedRole", "Resource"))}
    assert by_sid["VpcNetworkInterfaces"] == {
        "Action": DOCUMENTED_VPC_ACTIONS,
        "Effect": "Allow",
        "Resource": "*",
        "Sid": "VpcNetworkInterfaces",
    }
    for name in ("Attached", INTERCEPTOR_ID):
        statements = _statements(placements, cdk_logical_id(f"{name}Role", "Resource"))
        logs_write = [s for s in statements if s["Action"] == ["logs:CreateLogStream", "logs:PutLogEvents"]]
        assert logs_write and logs_write[0]["Resource"] == {
            "Fn::GetAtt": [cdk_logical_id(f"{name}Logs", "Resource"), "Arn"]
        }
    outside = _statements(placements, cdk_logical_id("InterceptorFunctionRole", "Resource"))
    assert not [s for s in outside if s.get("Sid") == "VpcNetworkInterfaces" or "xray" in str(s["Action"])]
    # A role the caller passed gets no network-interface statement and no role of ours is made for it.
    assert not [
        s
        for s in _statements(placements, cdk_logical_id("GivenRole", "Resource"))
        if s.get("Sid") == "VpcNetworkInterfaces"
    ]
    assert cdk_logical_id("GivenRole", "Resource") in roles and not [
        r for r in roles if r.startswith("GivenRole") and r != cdk_logical_id("GivenRole", "Resource")
    ]


def test_log_groups_follow_retention_key_and_removal_policy(placements: Synthesized) -> None:
    (key_id,) = placements.resources("AWS::KMS::Key")
    for name in ("Attached", "Given"):
        group = placements.resources("AWS::Logs::LogGroup")[cdk_logical_id(f"{name}Logs", "Resource")]
        assert group["Properties"]["RetentionInDays"] == 30 and group["DeletionPolicy"] == "Retain"
        assert group["Properties"]["KmsKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}
        assert _function(placements, name)["LoggingConfig"] == {
            "LogGroup": {"Ref": cdk_logical_id(f"{name}Logs", "Resource")}
        }

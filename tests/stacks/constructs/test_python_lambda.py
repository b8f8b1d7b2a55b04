"""PythonLambda: the packaged asset (handler, imported modules, arm64 wheels), the function's settings,
unchanged logical ids for the function/log group/role it replaced, and its own acknowledgements."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk.assertions import Template

from stacks.constructs.python_lambda import PythonLambda

ELF_MACHINE_AARCH64 = 0xB7  # ELF e_machine of arm64 shared objects


@dataclass
class Built:
    template: Template
    outdir: Path
    construct: PythonLambda


def synth(outdir: Path, **kwargs: Any) -> Built:
    app = cdk.App(outdir=str(outdir))
    stack = cdk.Stack(app, "S", env=cdk.Environment(account="123456789012", region="eu-central-1"))
    construct = PythonLambda(
        stack,
        "InterceptorFunction",
        function="interceptor",
        description="interceptor under test",
        key=kms.Key(stack, "Key"),
        log_retention_days=14,
        removal_policy=cdk.RemovalPolicy.DESTROY,
        timeout=cdk.Duration.seconds(10),
        outside_vpc_reason="A test function outside any VPC; it reaches nothing private.",
        **kwargs,
    )
    app.synth()
    return Built(Template.from_stack(stack), outdir, construct)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    return synth(tmp_path_factory.mktemp("lambda"), encrypt_environment=True, environment={"A": "1"})


def function_of(template: Template) -> dict[str, Any]:
    (resource,) = template.find_resources("AWS::Lambda::Function").values()
    return dict(resource["Properties"])


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
    assert "KmsKeyArn" in props and props["Environment"] == {"Variables": {"A": "1"}}
    (log_group,) = built.template.find_resources("AWS::Logs::LogGroup").values()
    assert log_group["Properties"]["RetentionInDays"] == 14 and "KmsKeyId" in log_group["Properties"]
    assert props["LoggingConfig"]["LogGroup"] == {
        "Ref": next(iter(built.template.find_resources("AWS::Logs::LogGroup")))
    }
    assert built.template.find_resources("AWS::IAM::Role")  # a generated role, no managed policy
    (role,) = built.template.find_resources("AWS::IAM::Role").values()
    assert "ManagedPolicyArns" not in role["Properties"]


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
        assert set(built.template.find_resources(kind)) == set(expected.find_resources(kind)), kind


def test_the_construct_acknowledges_only_what_its_settings_imply(built: Built) -> None:
    findings = {a.finding for a in built.construct.acknowledgements}
    assert findings == {"NIST.800.53.R5-LambdaInsideVPC", "NIST.800.53.R5-LambdaConcurrency"}


def test_a_function_outside_a_vpc_must_say_why() -> None:
    stack = cdk.Stack(cdk.App(), "S")
    with pytest.raises(ValueError, match="outside_vpc_reason"):
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

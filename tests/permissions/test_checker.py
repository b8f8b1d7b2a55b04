"""The checker itself, on a small hand-written assembly: each kind of missing permission is reported."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ParamValidationError

from tests.permissions.actions import UnknownCallError
from tests.permissions.checker import Checker
from tests.permissions.policy import PolicyError
from tests.permissions.recorder import Call, UnexpectedCallError, offline_aws, recording
from tests.permissions.resolver import REGION, Assembly, Resolver, UnresolvableError

REGION_JOIN = {"Fn::Join": ["", ["bedrock.", {"Ref": "AWS::Region"}, ".amazonaws.com"]]}
ROOT = {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":iam::", {"Ref": "AWS::AccountId"}, ":root"]]}


def statements() -> list[dict[str, Any]]:
    return [
        {
            "Sid": "Apply",
            "Effect": "Allow",
            "Action": "bedrock:ApplyGuardrail",
            "Resource": {"Fn::ImportValue": "g:GuardrailArn"},
        },
        {
            "Sid": "GuardrailKey",
            "Effect": "Allow",
            "Action": "kms:Decrypt",
            "Resource": {"Fn::ImportValue": "g:KeyArn"},
            "Condition": {"StringEquals": {"kms:ViaService": REGION_JOIN}},
        },
        {
            "Sid": "Table",
            "Effect": "Allow",
            "Action": ["dynamodb:GetItem", "dynamodb:Put*"],
            "Resource": {"Fn::GetAtt": ["Table", "Arn"]},
        },
        {
            "Sid": "TableKey",
            "Effect": "Allow",
            "Action": "kms:Decrypt",
            "Resource": {"Fn::GetAtt": ["Key", "Arn"]},
        },
    ]


def templates(policy: list[dict[str, Any]], key_policy: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    root_statement = {"Effect": "Allow", "Principal": {"AWS": ROOT}, "Action": "kms:*", "Resource": "*"}
    key = {
        "Type": "AWS::KMS::Key",
        "Properties": {"KeyPolicy": {"Statement": key_policy or [root_statement]}},
    }
    return {
        "g": {
            "Resources": {
                "GKey": copy.deepcopy(key),
                "Guardrail": {
                    "Type": "AWS::Bedrock::Guardrail",
                    "Properties": {"KmsKeyArn": {"Fn::GetAtt": ["GKey", "Arn"]}},
                },
            },
            "Outputs": {
                "A": {
                    "Value": {"Fn::GetAtt": ["Guardrail", "GuardrailArn"]},
                    "Export": {"Name": "g:GuardrailArn"},
                },
                "B": {"Value": {"Fn::GetAtt": ["GKey", "Arn"]}, "Export": {"Name": "g:KeyArn"}},
                "C": {
                    "Value": {"Fn::GetAtt": ["Guardrail", "GuardrailId"]},
                    "Export": {"Name": "g:GuardrailId"},
                },
            },
        },
        "app": {
            "Resources": {
                "Key": key,
                "Table": {
                    "Type": "AWS::DynamoDB::Table",
                    "Properties": {
                        "SSESpecification": {
                            "SSEEnabled": True,
                            "KMSMasterKeyId": {"Fn::GetAtt": ["Key", "Arn"]},
                        }
                    },
                },
                "Role": {"Type": "AWS::IAM::Role", "Properties": {}},
                "Policy": {
                    "Type": "AWS::IAM::Policy",
                    "Properties": {"PolicyDocument": {"Statement": policy}, "Roles": [{"Ref": "Role"}]},
                },
            }
        },
    }


def make_checker(
    tmp_path: Path, policy: list[dict[str, Any]], key_policy: list[dict[str, Any]] | None = None
) -> Checker:
    for stack, template in templates(policy, key_policy).items():
        (tmp_path / f"{stack}.template.json").write_text(json.dumps(template), encoding="utf-8")
    return Checker(Assembly.load(tmp_path))


def calls(checker: Checker) -> list[Call]:
    resolver = Resolver(checker.assembly)
    guardrail_id = resolver.resolve("app", {"Fn::ImportValue": "g:GuardrailId"})
    table = resolver.resolve("app", {"Ref": "Table"})
    return [
        Call("bedrock-runtime", "ApplyGuardrail", {"guardrailIdentifier": guardrail_id}, REGION),
        Call("dynamodb", "GetItem", {"TableName": table, "Key": {}}, REGION),
        Call("dynamodb", "PutItem", {"TableName": table, "Item": {}}, REGION),
    ]


def denied(checker: Checker) -> list[tuple[str, str]]:
    role = checker.find("app", "Role", "AWS::IAM::Role")
    report = checker.check("test", role, calls(checker))
    return [(f.requirement.action, checker.label(f.requirement.resource)) for f in report.denied]


def without(sid: str) -> list[dict[str, Any]]:
    return [s for s in statements() if s.get("Sid") != sid]


def test_a_complete_policy_allows_every_call_and_its_implied_kms(tmp_path: Path) -> None:
    checker = make_checker(tmp_path, statements())
    role = checker.find("app", "Role", "AWS::IAM::Role")
    report = checker.check("test", role, calls(checker))
    assert report.denied == []
    assert {(f.requirement.action, f.requirement.why) for f in report.findings} == {
        ("bedrock:ApplyGuardrail", "call"),
        ("kms:Decrypt", "guardrail-cmk"),
        ("dynamodb:GetItem", "call"),
        ("dynamodb:PutItem", "call"),
        ("kms:Decrypt", "dynamodb-cmk"),
    }


def test_a_missing_action_is_reported(tmp_path: Path) -> None:
    assert denied(make_checker(tmp_path, without("Apply"))) == [("bedrock:ApplyGuardrail", "g/Guardrail")]


def test_a_grant_on_the_wrong_resource_is_reported(tmp_path: Path) -> None:
    policy = statements()
    policy[2]["Resource"] = {"Fn::Join": ["", [{"Fn::GetAtt": ["Table", "Arn"]}, "-other"]]}
    assert denied(make_checker(tmp_path, policy)) == [
        ("dynamodb:GetItem", "app/Table"),
        ("dynamodb:PutItem", "app/Table"),
    ]


def test_the_missing_kms_grant_of_an_encrypted_guardrail_is_reported(tmp_path: Path) -> None:
    # The known defect: bedrock:ApplyGuardrail without kms:Decrypt on the guardrail's key.
    assert denied(make_checker(tmp_path, without("GuardrailKey"))) == [("kms:Decrypt", "g/GKey")]


def test_a_kms_grant_through_the_wrong_service_is_reported(tmp_path: Path) -> None:
    policy = statements()
    policy[1]["Condition"] = {"StringEquals": {"kms:ViaService": "secretsmanager.us-east-1.amazonaws.com"}}
    assert denied(make_checker(tmp_path, policy)) == [("kms:Decrypt", "g/GKey")]


def test_string_like_via_service_matches(tmp_path: Path) -> None:
    policy = statements()
    policy[1]["Condition"] = {"StringLike": {"kms:ViaService": "bedrock.*.amazonaws.com"}}
    assert denied(make_checker(tmp_path, policy)) == []


def test_an_explicit_deny_wins(tmp_path: Path) -> None:
    policy = [*statements(), {"Effect": "Deny", "Action": "dynamodb:PutItem", "Resource": "*"}]
    assert denied(make_checker(tmp_path, policy)) == [("dynamodb:PutItem", "app/Table")]


def test_not_action_allows_everything_else(tmp_path: Path) -> None:
    policy = [*without("Table"), {"Effect": "Allow", "NotAction": "dynamodb:PutItem", "Resource": "*"}]
    assert denied(make_checker(tmp_path, policy)) == [("dynamodb:PutItem", "app/Table")]


def test_a_key_policy_that_does_not_delegate_to_iam_blocks_the_identity_grant(tmp_path: Path) -> None:
    other = {
        "Effect": "Allow",
        "Principal": {"Service": "logs.amazonaws.com"},
        "Action": "kms:*",
        "Resource": "*",
    }
    assert ("kms:Decrypt", "app/Key") in denied(make_checker(tmp_path, statements(), key_policy=[other]))


def test_a_key_policy_naming_the_role_needs_no_identity_grant(tmp_path: Path) -> None:
    role_arn = {"Fn::GetAtt": ["Role", "Arn"]}
    direct = [
        {"Effect": "Allow", "Principal": {"AWS": ROOT}, "Action": "kms:*", "Resource": "*"},
        {"Effect": "Allow", "Principal": {"AWS": role_arn}, "Action": "kms:Decrypt", "Resource": "*"},
    ]
    # Only the app stack's key names the role (the g stack's copy cannot resolve app's Role).
    checker = make_checker(tmp_path, without("TableKey"))
    app = checker.assembly.templates["app"]["Resources"]["Key"]["Properties"]
    app["KeyPolicy"]["Statement"] = direct
    assert denied(checker) == []


def test_an_unknown_condition_operator_fails_loudly(tmp_path: Path) -> None:
    policy = statements()
    policy[1]["Condition"] = {"NumericLessThan": {"kms:ViaService": "1"}}
    with pytest.raises(PolicyError, match="NumericLessThan"):
        denied(make_checker(tmp_path, policy))


def test_a_deny_on_a_key_the_context_lacks_fails_loudly(tmp_path: Path) -> None:
    policy = [
        *statements(),
        {
            "Effect": "Deny",
            "Action": "*",
            "Resource": "*",
            "Condition": {"StringEquals": {"aws:SourceVpce": "vpce-1"}},
        },
    ]
    with pytest.raises(PolicyError, match="aws:SourceVpce"):
        denied(make_checker(tmp_path, policy))


def test_an_unknown_operation_fails_loudly(tmp_path: Path) -> None:
    checker = make_checker(tmp_path, statements())
    role = checker.find("app", "Role", "AWS::IAM::Role")
    with pytest.raises(UnknownCallError, match="BatchWriteItem"):
        checker.check("test", role, [Call("dynamodb", "BatchWriteItem", {"RequestItems": {}}, REGION)])


def test_an_unknown_intrinsic_or_attribute_fails_loudly(tmp_path: Path) -> None:
    resolver = Resolver(make_checker(tmp_path, statements()).assembly)
    with pytest.raises(UnresolvableError, match="Fn::Cidr"):
        resolver.resolve("app", {"Fn::Cidr": ["10.0.0.0/16", 2, 8]})
    with pytest.raises(UnresolvableError, match=r"Table\.StreamArn"):
        resolver.resolve("app", {"Fn::GetAtt": ["Table", "StreamArn"]})


def test_the_recorder_sees_client_and_resource_calls_and_validates_stand_in_requests() -> None:
    with offline_aws(REGION), recording() as recorder:
        recorder.answer(
            "bedrock-runtime", "ApplyGuardrail", {"action": "NONE", "outputs": [], "assessments": []}
        )
        client = boto3.client("bedrock-runtime", region_name=REGION)
        client.apply_guardrail(
            guardrailIdentifier="g", guardrailVersion="1", source="INPUT", content=[{"text": {"text": "hi"}}]
        )
        with pytest.raises(ParamValidationError):
            client.apply_guardrail(guardrailIdentifier="g", guardrailVersion="1", source="INPUT")
        with pytest.raises(UnexpectedCallError, match=r"bedrock-agent-runtime\.Retrieve"):
            boto3.client("bedrock-agent-runtime", region_name=REGION).retrieve(
                knowledgeBaseId="KB", retrievalQuery={"text": "x"}
            )
        recorder.error("secretsmanager", "GetSecretValue", "ResourceNotFoundException")
        secrets = boto3.client("secretsmanager", region_name=REGION)
        with pytest.raises(secrets.exceptions.ResourceNotFoundException):
            secrets.get_secret_value(SecretId="arn:aws:secretsmanager:us-east-1:123456789012:secret:x-AbCdEf")
    assert recorder.operations() == [
        ("bedrock-runtime", "ApplyGuardrail"),
        ("bedrock-runtime", "ApplyGuardrail"),
        ("bedrock-agent-runtime", "Retrieve"),
        ("secretsmanager", "GetSecretValue"),
    ]

"""GeneratedSecret: the character rules are the contract (a changed generator also regenerates a deployed
value), KMS encryption, and exactly the rotation acknowledgements that occur."""

from __future__ import annotations

import string
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest

from stacks.constructs.secret import (
    LOGIN_EXCLUDED,
    PUNCTUATION,
    GeneratedSecret,
    PasswordRules,
    alphanumeric,
    alphanumeric_spelled_out,
    login_password,
    lowercase_hex,
)
from tests.stacks.constructs import (
    Synthesized,
    assert_acknowledged_as_pinned,
    cdk_logical_id,
    key,
    synth_blocks,
)
from tests.stacks.constructs.acknowledgements import ACKNOWLEDGEMENTS

ALPHANUMERIC = set(string.ascii_letters + string.digits)
HEX = set("0123456789abcdef")
# GetRandomPassword's punctuation (https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_GetRandomPassword.html)
DOCUMENTED_PUNCTUATION = set("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")


def alphabet_of(generator: dict[str, Any]) -> set[str]:
    """What GetRandomPassword can return for a template's GenerateSecretString (independent of our code)."""
    characters = set(string.ascii_lowercase + string.digits)
    if not generator.get("ExcludeUppercase", False):
        characters |= set(string.ascii_uppercase)
    if not generator.get("ExcludePunctuation", False):
        characters |= DOCUMENTED_PUNCTUATION
    if generator.get("IncludeSpace", False):
        characters.add(" ")
    return characters - set(generator.get("ExcludeCharacters", ""))


BLOCKS: dict[str, GeneratedSecret] = {}


def _build(stack: cdk.Stack) -> None:
    data_key = key(stack)
    presets = {
        "Alnum": alphanumeric(48),
        "Spelled": alphanumeric_spelled_out(40),
        "Hex": lowercase_hex(64),
    }
    for name, rules in presets.items():
        BLOCKS[name] = GeneratedSecret(
            stack,
            name,
            description=f"{name} value",
            key=data_key,
            removal_policy=cdk.RemovalPolicy.DESTROY,
            rules=rules,
            rotation_reason="Read once at start by its consumer; rotated by redeploying, not by a function.",
        )
    BLOCKS["Login"] = GeneratedSecret(
        stack,
        "Login",
        description="admin login",
        key=data_key,
        removal_policy=cdk.RemovalPolicy.RETAIN,
        rules=login_password(24),
        rotation_reason="A human login; the admin changes it in the application, not a rotation function.",
        template={"email": "admin@example.com"},
        generate_key="password",
    )


@pytest.fixture(scope="module")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    return synth_blocks(tmp_path_factory.mktemp("secret"), _build)


def generator(synthesized: Synthesized, name: str) -> dict[str, Any]:
    resource = synthesized.resources("AWS::SecretsManager::Secret")[
        cdk_logical_id(name, "Default", "Resource")
    ]
    return dict(resource["Properties"]["GenerateSecretString"])


def test_the_secret_keeps_the_logical_id_of_a_plain_secret(synthesized: Synthesized) -> None:
    assert set(synthesized.resources("AWS::SecretsManager::Secret")) == {
        cdk_logical_id(name, "Resource") for name in ("Alnum", "Spelled", "Hex", "Login")
    }


@pytest.mark.parametrize(
    ("name", "expected"), [("Alnum", ALPHANUMERIC), ("Spelled", ALPHANUMERIC), ("Hex", HEX)]
)
def test_generated_values_contain_only_their_alphabet(
    synthesized: Synthesized, name: str, expected: set[str]
) -> None:
    rules = generator(synthesized, name)
    assert alphabet_of(rules) == expected
    assert BLOCKS[name].rules.alphabet() == expected  # what consumers are told matches what is generated
    assert rules["IncludeSpace"] is False


def test_the_deployed_generators_are_rendered_exactly(synthesized: Synthesized) -> None:
    # A different GenerateSecretString makes CloudFormation generate a new value: these are pinned.
    assert generator(synthesized, "Alnum") == {
        "ExcludePunctuation": True,
        "IncludeSpace": False,
        "PasswordLength": 48,
    }
    assert generator(synthesized, "Spelled") == {
        "ExcludeCharacters": PUNCTUATION,
        "ExcludePunctuation": True,
        "ExcludeUppercase": False,
        "IncludeSpace": False,
        "PasswordLength": 40,
    }
    assert generator(synthesized, "Hex") == {
        "ExcludeCharacters": PUNCTUATION + "ghijklmnopqrstuvwxyz",
        "ExcludePunctuation": True,
        "ExcludeUppercase": True,
        "IncludeSpace": False,
        "PasswordLength": 64,
    }


def test_login_password_has_every_class_but_no_breaking_character(synthesized: Synthesized) -> None:
    rules = generator(synthesized, "Login")
    alphabet = alphabet_of(rules)
    assert rules["RequireEachIncludedType"] is True and rules["PasswordLength"] == 24
    assert rules["GenerateStringKey"] == "password"
    assert rules["SecretStringTemplate"] == '{"email":"admin@example.com"}'
    assert not alphabet & set("\"'`\\/@$%&{}|<>;:, ")
    assert alphabet & DOCUMENTED_PUNCTUATION and alphabet & set(string.ascii_uppercase)
    assert set(LOGIN_EXCLUDED) == set("\"'`\\/@$%&{}|<>;:,")
    assert BLOCKS["Login"].rules.alphabet() == alphabet


def test_every_secret_is_encrypted_with_the_given_key(synthesized: Synthesized) -> None:
    (key_id,) = synthesized.resources("AWS::KMS::Key")
    for secret in synthesized.resources("AWS::SecretsManager::Secret").values():
        assert secret["Properties"]["KmsKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}


def test_description_is_the_callers(synthesized: Synthesized) -> None:
    secrets = synthesized.resources("AWS::SecretsManager::Secret")
    assert {
        name: secrets[cdk_logical_id(name, "Resource")]["Properties"]["Description"] for name in BLOCKS
    } == {
        "Alnum": "Alnum value",
        "Spelled": "Spelled value",
        "Hex": "Hex value",
        "Login": "admin login",
    }


def test_removal_policy_is_applied(synthesized: Synthesized) -> None:
    secrets = synthesized.resources("AWS::SecretsManager::Secret")
    assert secrets[cdk_logical_id("Login", "Resource")]["DeletionPolicy"] == "Retain"
    assert secrets[cdk_logical_id("Hex", "Resource")]["DeletionPolicy"] == "Delete"


def test_rotation_acknowledgements_are_exactly_the_findings_that_occur(synthesized: Synthesized) -> None:
    assert_acknowledged_as_pinned(synthesized, BLOCKS.values(), ACKNOWLEDGEMENTS["secret"])
    assert synthesized.unused(BLOCKS.values()) == []
    assert [f for f in synthesized.open_findings() if "SecretsManager" in f or "SMG4" in f] == []
    for block in BLOCKS.values():
        assert {a.finding for a in block.acknowledgements} == {
            "AwsSolutions-SMG4",
            "NIST.800.53.R5-SecretsManagerRotationEnabled",
        }


def test_rules_that_leave_nothing_or_a_bad_length_are_refused() -> None:
    with pytest.raises(ValueError, match="no character"):
        PasswordRules(16, exclude_characters=string.ascii_lowercase + string.digits, exclude_uppercase=True)
    # 4096 is GetRandomPassword's longest PasswordLength
    # (https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_GetRandomPassword.html); 8 is our
    # floor, the shortest password the engines we feed accept (RDS for PostgreSQL master passwords: 8-128,
    # https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/CHAP_Limits.html#RDS_Limits.Constraints).
    for length in (7, 4097):
        with pytest.raises(ValueError, match=rf"^password length {length} is outside 8\.\.4096$"):
            PasswordRules(length)
    assert (PasswordRules(8).length, PasswordRules(4096).length) == (8, 4096)


def test_a_json_secret_needs_template_and_key(tmp_path: Path) -> None:
    app = cdk.App(outdir=str(tmp_path))
    stack = cdk.Stack(app, "s")
    with pytest.raises(ValueError, match=r"^a JSON secret needs both `template` and `generate_key`$"):
        GeneratedSecret(
            stack,
            "S",
            description="d",
            key=key(stack),
            removal_policy=cdk.RemovalPolicy.DESTROY,
            rules=alphanumeric(16),
            rotation_reason="a reason that is long enough to count",
            template={"user": "x"},
        )

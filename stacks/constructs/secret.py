"""A secret whose value Secrets Manager generates at deploy time, with explicit character rules.

The value never appears in the template: CloudFormation asks Secrets Manager to generate it
(`GenerateSecretString`, the rules of GetRandomPassword:
https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_GetRandomPassword.html). Changing the
rules of an existing secret makes CloudFormation generate a NEW value (the resource's GenerateSecretString
is applied on update; https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-secretsmanager-secret.html
does not say so explicitly, which is why the rules of a deployed secret are kept as they were written):
for a salt or an encryption key that makes stored data unreadable. So each preset below renders exactly
the `GenerateSecretString` it always had, and `PasswordRules.alphabet` says which characters a value can
contain, for tests and for the consumers that splice values into URLs, DSNs or AUTH commands.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_kms as kms
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct, IConstruct

from stacks.compliance import acknowledge_all
from stacks.constructs import BuildingBlock

# GetRandomPassword's punctuation set (ExcludePunctuation removes exactly these).
PUNCTUATION = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"
HEX_EXCLUDED_LETTERS = "ghijklmnopqrstuvwxyz"
# Characters that break a login password in JSON, shells, URLs or Langfuse's own checks.
LOGIN_EXCLUDED = "\"'`\\/@$%&{}|<>;:,"

ROTATION_FINDINGS = ("AwsSolutions-SMG4", "NIST.800.53.R5-SecretsManagerRotationEnabled")


@dataclass(frozen=True)
class PasswordRules:
    """The character rules of a generated value; `None` leaves a field out of the template."""

    length: int
    exclude_punctuation: bool | None = True
    exclude_characters: str | None = None
    exclude_uppercase: bool | None = None
    require_each_included_type: bool | None = None

    def __post_init__(self) -> None:
        if not 8 <= self.length <= 4096:
            raise ValueError(f"password length {self.length} is outside 8..4096")
        if not self.alphabet():
            raise ValueError(f"password rules {self} leave no character to generate from")

    def alphabet(self) -> frozenset[str]:
        """Every character a value generated under these rules can contain (never a space)."""
        characters = set(string.ascii_lowercase + string.digits)
        if not self.exclude_uppercase:
            characters |= set(string.ascii_uppercase)
        if not self.exclude_punctuation:
            characters |= set(PUNCTUATION)
        return frozenset(characters - set(self.exclude_characters or ""))

    def generator(
        self, *, template: str | None = None, generate_key: str | None = None
    ) -> secretsmanager.SecretStringGenerator:
        """The generator CloudFormation runs; with `template`/`generate_key`, a JSON secret whose
        `generate_key` field is the generated value."""
        return secretsmanager.SecretStringGenerator(
            password_length=self.length,
            exclude_characters=self.exclude_characters,
            exclude_uppercase=self.exclude_uppercase,
            exclude_punctuation=self.exclude_punctuation,
            require_each_included_type=self.require_each_included_type,
            include_space=False,
            secret_string_template=template,
            generate_string_key=generate_key,
        )


def alphanumeric(length: int) -> PasswordRules:
    """Letters and digits: safe in URLs, DSNs, headers and Valkey AUTH (ExcludePunctuation only)."""
    return PasswordRules(length)


def alphanumeric_spelled_out(length: int) -> PasswordRules:
    """The same alphabet as `alphanumeric`, the punctuation also listed as excluded characters: the form
    the Langfuse secrets were created with (kept: a changed generator regenerates the value)."""
    return PasswordRules(length, exclude_characters=PUNCTUATION, exclude_uppercase=False)


def lowercase_hex(length: int) -> PasswordRules:
    """Only 0-9 and a-f: a `length / 2`-byte key in hex (e.g. Langfuse's ENCRYPTION_KEY, 64 characters)."""
    return PasswordRules(
        length, exclude_characters=PUNCTUATION + HEX_EXCLUDED_LETTERS, exclude_uppercase=True
    )


def login_password(length: int) -> PasswordRules:
    """A human login: every character class required, without characters that break JSON, shells or URLs."""
    return PasswordRules(
        length,
        exclude_punctuation=None,
        exclude_characters=LOGIN_EXCLUDED,
        require_each_included_type=True,
    )


def acknowledge_no_rotation(block: BuildingBlock | None, secret: IConstruct, reason: str) -> None:
    """Acknowledge the two rotation findings of `secret` (recorded on `block` when given)."""
    findings = dict.fromkeys(ROTATION_FINDINGS, reason)
    if block is not None:
        block.acknowledge(secret, findings)
    else:
        acknowledge_all(secret, findings)


class GeneratedSecret(BuildingBlock):
    """A KMS-encrypted secret with a generated value (`secret` is the child `Default`, so the logical id
    is the one a plain `Secret(scope, construct_id)` had).

    Args:
        rules: the character rules (see the presets above); they are the contract consumers rely on.
        rotation_reason: why the value is not rotated by a rotation function (acknowledges SMG4 and the
            NIST rotation finding on this secret).
        template / generate_key: a JSON secret `template` whose `generate_key` field is generated.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        description: str,
        key: kms.IKey,
        removal_policy: cdk.RemovalPolicy,
        rules: PasswordRules,
        rotation_reason: str,
        template: Mapping[str, str] | None = None,
        generate_key: str | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        if (template is None) != (generate_key is None):
            raise ValueError("a JSON secret needs both `template` and `generate_key`")
        self.rules = rules
        self.secret = secretsmanager.Secret(
            self,
            "Default",
            description=description,
            encryption_key=key,
            removal_policy=removal_policy,
            generate_secret_string=rules.generator(
                template=cdk.Stack.of(self).to_json_string(dict(template)) if template else None,
                generate_key=generate_key,
            ),
        )
        acknowledge_no_rotation(self, self.secret, rotation_reason)

"""IAM policy evaluation for one role of the synthesized assembly: identity policies and KMS key policies.

Implements the parts of the IAM evaluation logic our templates use
(https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html):
an explicit Deny wins, otherwise an Allow is needed; `Action`/`NotAction` and `Resource`/`NotResource`
match with `*` and `?` wildcards (actions case-insensitively); conditions use the operators in
`OPERATORS` with the `IfExists` suffix and `ForAnyValue:`/`ForAllValues:` qualifiers
(https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html).
An operator we do not implement raises `PolicyError`, and so does a Deny whose condition names a key the
request context lacks: a wrong guess must fail loudly, never pass silently.

KMS keys are authorized by their key policy first: an IAM policy takes effect only when the key policy
allows the account (`arn:aws:iam::<account>:root`), otherwise the key policy must name the principal
(https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-default.html#key-policy-default-allow-root-enable-iam).
"""

from __future__ import annotations

import fnmatch
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tests.permissions.resolver import ACCOUNT, PARTITION, Assembly, Resolver, ResourceRef

logger = logging.getLogger(__name__)


class PolicyError(ValueError):
    """A policy uses a construct the evaluator does not implement, or a managed policy we do not know."""


@dataclass(frozen=True)
class Statement:
    """One resolved policy statement and where it comes from (for the permissions table)."""

    effect: str
    actions: tuple[str, ...]
    not_actions: tuple[str, ...]
    resources: tuple[str, ...]
    not_resources: tuple[str, ...]
    conditions: Mapping[str, Mapping[str, Any]]
    source: str  # e.g. "aaf-agentcore/RuntimeExecutionRoleDefaultPolicy2B020CFC#ApplyGuardrail"
    principals: tuple[str, ...] = ()  # resource policies only

    @classmethod
    def parse(cls, raw: Mapping[str, Any], source: str) -> Statement:
        def strings(value: Any) -> tuple[str, ...]:
            if value is None:
                return ()
            return tuple(str(v) for v in (value if isinstance(value, list) else [value]))

        principals: list[str] = []
        principal = raw.get("Principal")
        if principal == "*":
            principals.append("*")
        elif isinstance(principal, Mapping):
            for kind, value in principal.items():
                principals.extend(f"{kind}:{v}" for v in strings(value))
        sid = raw.get("Sid")
        return cls(
            effect=str(raw.get("Effect", "Allow")),
            actions=strings(raw.get("Action")),
            not_actions=strings(raw.get("NotAction")),
            resources=strings(raw.get("Resource")),
            not_resources=strings(raw.get("NotResource")),
            conditions=raw.get("Condition") or {},
            source=f"{source}#{sid}" if sid else source,
            principals=tuple(principals),
        )


def _wildcard(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL) is not None


def action_matches(patterns: Sequence[str], action: str) -> bool:
    return any(_wildcard(p, action, ignore_case=True) for p in patterns)


def resource_matches(patterns: Sequence[str], resource: str) -> bool:
    return any(_wildcard(p, resource) for p in patterns)


def _string_like(pattern: str, value: str) -> bool:
    return fnmatch.fnmatchcase(value, pattern)


# operator -> (test(policy value, context value), negated?)
OPERATORS: dict[str, Any] = {
    "StringEquals": lambda p, v: p == v,
    "StringNotEquals": lambda p, v: p != v,
    "StringEqualsIgnoreCase": lambda p, v: p.lower() == v.lower(),
    "StringLike": lambda p, v: _wildcard(p, v),
    "StringNotLike": lambda p, v: not _wildcard(p, v),
    "ArnEquals": lambda p, v: p == v,
    "ArnLike": lambda p, v: _wildcard(p, v),
    "ArnNotLike": lambda p, v: not _wildcard(p, v),
    "Bool": lambda p, v: p.lower() == str(v).lower(),
}
NEGATED = {"StringNotEquals", "StringNotLike", "ArnNotLike"}


def conditions_hold(
    conditions: Mapping[str, Mapping[str, Any]], context: Mapping[str, Any], *, deny: bool
) -> bool:
    """True when every condition of a statement holds in `context` (key -> str or list of str)."""
    for raw_operator, entries in conditions.items():
        qualifier, _, operator = raw_operator.rpartition(":")
        if_exists = operator.endswith("IfExists")
        base = operator.removesuffix("IfExists")
        for key, expected in entries.items():
            allowed = [str(x) for x in (expected if isinstance(expected, list) else [expected])]
            if base == "Null":
                present = key in context
                if any((a.lower() == "true") == present for a in allowed):
                    return False
                continue
            if base not in OPERATORS:
                raise PolicyError(
                    f"condition operator {raw_operator} is not implemented in tests/permissions/policy.py"
                )
            if key not in context:
                if deny:
                    raise PolicyError(
                        f"a Deny statement tests {key}, which the request context of this call does not "
                        "define: add it to the call's context so the Deny is evaluated"
                    )
                if if_exists or (base in NEGATED and qualifier != "ForAnyValue"):
                    continue
                return False
            raw_value = context[key]
            values = [str(v) for v in (raw_value if isinstance(raw_value, list) else [raw_value])]
            test = OPERATORS[base]
            if base in NEGATED:
                ok = all(test(a, v) for a in allowed for v in values)
            elif qualifier == "ForAllValues":
                ok = all(any(test(a, v) for a in allowed) for v in values)
            else:
                ok = any(test(a, v) for a in allowed for v in values)
            if not ok:
                return False
    return True


def statement_applies(statement: Statement, action: str, resource: str, context: Mapping[str, Any]) -> bool:
    if statement.actions and not action_matches(statement.actions, action):
        return False
    if statement.not_actions and action_matches(statement.not_actions, action):
        return False
    if statement.resources and not resource_matches(statement.resources, resource):
        return False
    if statement.not_resources and resource_matches(statement.not_resources, resource):
        return False
    return conditions_hold(statement.conditions, context, deny=statement.effect == "Deny")


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str
    granted_by: tuple[str, ...] = ()


# AWS managed policies a role of ours may attach, with their statements at the time of writing (AWS Managed
# Policy Reference Guide: https://docs.aws.amazon.com/aws-managed-policy/latest/reference/<name>.html).
# A managed policy not listed here raises PolicyError rather than being assumed to grant nothing or all.
MANAGED_POLICIES: dict[str, list[dict[str, Any]]] = {
    "AWSLambdaBasicExecutionRole": [
        {
            "Effect": "Allow",
            "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": "*",
        }
    ],
    "AWSLambdaVPCAccessExecutionRole": [
        {
            "Effect": "Allow",
            "Action": [
                "logs:CreateLogGroup",
                "logs:CreateLogStream",
                "logs:PutLogEvents",
                "ec2:CreateNetworkInterface",
                "ec2:DescribeNetworkInterfaces",
                "ec2:DescribeSubnets",
                "ec2:DeleteNetworkInterface",
                "ec2:AssignPrivateIpAddresses",
                "ec2:UnassignPrivateIpAddresses",
            ],
            "Resource": "*",
        }
    ],
}


class RolePolicies:
    """Every identity-policy statement attached to one IAM role of the assembly, resolved."""

    def __init__(self, assembly: Assembly, role: ResourceRef) -> None:
        if role.type != "AWS::IAM::Role":
            raise PolicyError(f"{role.stack}/{role.logical_id} is a {role.type}, not an AWS::IAM::Role")
        self.assembly = assembly
        self.role = role
        self.resolver = Resolver(assembly)
        self.arn = self.resolver.get_att(role, "Arn")
        self.statements = self._collect()

    def _collect(self) -> list[Statement]:
        resolver, role = self.resolver, self.role
        statements: list[Statement] = []
        for policy in role.properties.get("Policies") or []:
            document = resolver.resolve(role.stack, policy["PolicyDocument"])
            name = resolver.resolve(role.stack, policy.get("PolicyName", "inline"))
            statements += self._document(document, f"{role.stack}/{role.logical_id}/{name}")
        role_name = resolver.ref(role)
        for arn in resolver.resolve(role.stack, role.properties.get("ManagedPolicyArns") or []):
            statements += self._managed(str(arn))
        for kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            for policy in self.assembly.resources(kind):
                roles = resolver.resolve(policy.stack, policy.properties.get("Roles") or [])
                if role_name in roles:
                    document = resolver.resolve(policy.stack, policy.properties["PolicyDocument"])
                    statements += self._document(document, f"{policy.stack}/{policy.logical_id}")
        return statements

    @staticmethod
    def _document(document: Mapping[str, Any], source: str) -> list[Statement]:
        raw = document.get("Statement") or []
        return [Statement.parse(s, source) for s in (raw if isinstance(raw, list) else [raw])]

    def _managed(self, arn: str) -> list[Statement]:
        match = re.fullmatch(rf"arn:{PARTITION}:iam::aws:policy/(?:service-role/)?(.+)", arn)
        if match:
            name = match.group(1)
            if name not in MANAGED_POLICIES:
                raise PolicyError(
                    f"AWS managed policy {name} is not in MANAGED_POLICIES (tests/permissions/policy.py)"
                )
            return [Statement.parse(s, f"AWS managed policy {name}") for s in MANAGED_POLICIES[name]]
        for policy in self.assembly.resources("AWS::IAM::ManagedPolicy"):
            if self.resolver.ref(policy) == arn:
                return []  # collected with the role's name in _collect when the policy lists the role
        raise PolicyError(f"managed policy {arn} is neither AWS managed (known) nor in the assembly")

    def evaluate(self, action: str, resource: str, context: Mapping[str, Any]) -> Decision:
        """Identity-policy decision for one action on one resource."""
        matching = [s for s in self.statements if statement_applies(s, action, resource, context)]
        denies = [s.source for s in matching if s.effect == "Deny"]
        if denies:
            return Decision(False, f"explicitly denied by {', '.join(denies)}")
        allows = tuple(dict.fromkeys(s.source for s in matching if s.effect == "Allow"))
        if not allows:
            return Decision(False, "no identity-policy statement allows it")
        return Decision(True, "allowed by the role's policy", allows)


def principal_matches(principals: Sequence[str], role_arn: str) -> str | None:
    """'direct' when a key-policy principal names the role, 'account' for the account root, else None."""
    for principal in principals:
        if principal in ("*", "AWS:*"):
            return "direct"
        if not principal.startswith("AWS:"):
            continue
        value = principal[4:]
        if value == role_arn:
            return "direct"
        if value in (ACCOUNT, f"arn:{PARTITION}:iam::{ACCOUNT}:root"):
            return "account"
    return None


def find_key(assembly: Assembly, key_arn: str) -> ResourceRef | None:
    resolver = Resolver(assembly)
    for key in assembly.resources("AWS::KMS::Key"):
        if resolver.get_att(key, "Arn") == key_arn:
            return key
    return None


def key_policy_decision(
    assembly: Assembly, key_arn: str, role_arn: str, action: str, context: Mapping[str, Any]
) -> tuple[str, Decision]:
    """('direct' | 'account' | 'none' | 'external', decision) of the key policy for `role_arn`."""
    key = find_key(assembly, key_arn)
    if key is None:
        return "external", Decision(
            True, f"key {key_arn} is not in the assembly; its key policy is not checked"
        )
    resolver = Resolver(assembly)
    document = resolver.resolve(key.stack, key.properties.get("KeyPolicy") or {})
    raw = document.get("Statement") or []
    statements = [Statement.parse(s, f"{key.stack}/{key.logical_id} key policy") for s in raw]
    best = "none"
    granted: list[str] = []
    for statement in statements:
        kind = principal_matches(statement.principals, role_arn)
        if kind is None:
            continue
        if not statement_applies(statement, action, "*", context):
            continue
        if statement.effect == "Deny":
            return "none", Decision(False, f"key policy {statement.source} denies {action}")
        granted.append(statement.source)
        if kind == "direct" or best == "none":
            best = kind
    if best == "none":
        return "none", Decision(
            False,
            f"the key policy of {key.stack}/{key.logical_id} neither allows the role nor delegates to IAM",
        )
    return best, Decision(True, "key policy", tuple(granted))

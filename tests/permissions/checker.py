"""Check recorded calls against the synthesized role of the component that makes them.

For each recorded call: its IAM action on its resource (tests/permissions/actions.py), plus the KMS
actions the resource's customer-managed key implies (`KMS_RULES`), each evaluated against the role's
resolved identity policies and, for KMS, the key's policy (tests/permissions/policy.py).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tests.permissions import actions
from tests.permissions.policy import Decision, RolePolicies, find_key, key_policy_decision
from tests.permissions.recorder import Call
from tests.permissions.resolver import ACCOUNT, PARTITION, REGION, URL_SUFFIX, Assembly, Resolver, ResourceRef

logger = logging.getLogger(__name__)

# The attribute that gives each encryptable resource type's ARN (what a call's resource ARN is).
PRIMARY_ARN = {
    "AWS::Bedrock::Guardrail": "GuardrailArn",
    "AWS::SecretsManager::Secret": None,  # Ref is the ARN
    "AWS::DynamoDB::Table": "Arn",
    "AWS::S3::Bucket": "Arn",
    "AWS::SQS::Queue": "Arn",
    "AWS::BedrockAgentCore::Memory": "MemoryArn",
}


@dataclass(frozen=True)
class Requirement:
    """One permission a call needs: `action` on `resource` in `context`."""

    call: Call
    action: str
    resource: str
    context: Mapping[str, Any]
    why: str  # "call" or the KMS rule id
    source: str  # doc page for the action / rule


@dataclass(frozen=True)
class Finding:
    requirement: Requirement
    decision: Decision

    @property
    def allowed(self) -> bool:
        return self.decision.allowed

    def describe(self, checker: Checker) -> str:
        r = self.requirement
        return (
            f"{r.action} on {checker.label(r.resource)} ({r.why}; {r.call.service}.{r.call.operation}): "
            f"{self.decision.reason}"
        )


@dataclass
class Report:
    component: str
    role: ResourceRef
    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def denied(self) -> list[Finding]:
        return [f for f in self.findings if not f.allowed]


def base_context(role_arn: str) -> dict[str, Any]:
    """Global condition keys every request carries (IAM user guide, "AWS global condition context keys")."""
    return {
        "aws:SecureTransport": "true",
        "aws:PrincipalArn": role_arn,
        "aws:PrincipalAccount": ACCOUNT,
        "aws:ResourceAccount": ACCOUNT,
        "aws:RequestedRegion": REGION,
    }


class Checker:
    """Evaluates calls for roles of one synthesized assembly."""

    def __init__(self, assembly: Assembly) -> None:
        self.assembly = assembly
        self.resolver = Resolver(assembly)
        self._encrypted = self._index_encrypted_resources()

    # --- locating things ---------------------------------------------------------------------------

    def find(self, stack: str, prefix: str, type_name: str) -> ResourceRef:
        """The one resource of `type_name` in `stack` whose logical id is `prefix` + CDK's 8-hex hash (or exactly `prefix`)."""
        pattern = re.compile(rf"^{re.escape(prefix)}(?:[0-9A-F]{{8}})?$")
        found = [
            r for r in self.assembly.resources(type_name) if r.stack == stack and pattern.match(r.logical_id)
        ]
        if len(found) != 1:
            raise LookupError(
                f"expected one {type_name} {prefix}* in {stack}, found {[r.logical_id for r in found]}"
            )
        return found[0]

    def role_by_arn(self, stack: str, value: Any) -> ResourceRef:
        arn = self.resolver.resolve(stack, value)
        for role in self.assembly.resources("AWS::IAM::Role"):
            if self.resolver.get_att(role, "Arn") == arn:
                return role
        raise LookupError(f"no AWS::IAM::Role in the assembly has the ARN {arn}")

    def label(self, arn: str) -> str:
        """A readable name for a resource ARN: `stack/LogicalId` when the assembly has it."""
        for resource, candidate in self._all_arns():
            if candidate == arn:
                return f"{resource.stack}/{resource.logical_id}"
            if arn.startswith(candidate + "/") and resource.type in (
                "AWS::S3::Bucket",
                "AWS::DynamoDB::Table",
            ):
                return f"{resource.stack}/{resource.logical_id}{arn[len(candidate) :]}"
        return arn

    def _all_arns(self) -> Iterable[tuple[ResourceRef, str]]:
        for resource in self.assembly.resources():
            if resource.type in PRIMARY_ARN:
                yield resource, self._primary_arn(resource)
            elif resource.type in (
                "AWS::KMS::Key",
                "AWS::Bedrock::KnowledgeBase",
                "AWS::BedrockAgentCore::Runtime",
            ):
                attribute = {"AWS::KMS::Key": "Arn", "AWS::Bedrock::KnowledgeBase": "KnowledgeBaseArn"}.get(
                    resource.type, "AgentRuntimeArn"
                )
                yield resource, self.resolver.get_att(resource, attribute)
            elif resource.type == "AWS::Cognito::UserPool":
                yield resource, self.resolver.get_att(resource, "Arn")

    def _primary_arn(self, resource: ResourceRef) -> str:
        attribute = PRIMARY_ARN[resource.type]
        return (
            self.resolver.ref(resource) if attribute is None else self.resolver.get_att(resource, attribute)
        )

    def _index_encrypted_resources(self) -> dict[str, ResourceRef]:
        return {self._primary_arn(r): r for r in self.assembly.resources() if r.type in PRIMARY_ARN}

    # --- requirements ------------------------------------------------------------------------------

    def requirements(self, calls: Sequence[Call], role_arn: str) -> tuple[list[Requirement], list[str]]:
        requirements: list[Requirement] = []
        notes: list[str] = []
        for call in calls:
            if (call.service, call.operation) in actions.UNAUTHORIZED_OPERATIONS:
                continue
            action = actions.iam_action(call.service, call.operation)
            resource = actions.resource_arn(call.service, call.operation, call.params)
            source = actions.ACTION_EXCEPTIONS.get((call.service, call.operation), ("", ""))[1] or (
                actions.IAM_PREFIX[call.service].source
            )
            context = base_context(role_arn)
            requirements.append(Requirement(call, action, resource, context, "call", source))
            kms, note = self._implied_kms(call, resource, role_arn)
            requirements += kms
            if note:
                notes.append(note)
        return requirements, notes

    def _encrypted_resource(self, resource: str) -> ResourceRef | None:
        if resource in self._encrypted:
            return self._encrypted[resource]
        for arn, candidate in self._encrypted.items():
            if candidate.type in ("AWS::S3::Bucket", "AWS::DynamoDB::Table") and resource.startswith(
                arn + "/"
            ):
                return candidate
        return None

    def key_of(self, resource: ResourceRef, path: str) -> str | None:
        value: Any = resource.properties
        for part in path.split("."):
            if isinstance(value, list):
                value = value[int(part)] if len(value) > int(part) else None
            elif isinstance(value, Mapping):
                value = value.get(part)
            if value is None:
                return None
        key = str(self.resolver.resolve(resource.stack, value))
        if key.startswith("arn:"):
            return key
        if key.startswith("alias/aws/"):
            return None  # an AWS managed key: its policy allows the account through the service
        return f"arn:{PARTITION}:kms:{REGION}:{ACCOUNT}:key/{key}"

    def _implied_kms(self, call: Call, resource_arn: str, role_arn: str) -> tuple[list[Requirement], str]:
        resource = self._encrypted_resource(resource_arn)
        if resource is None:
            return [], ""
        rule = actions.kms_rule_for(resource.type)
        if rule is None:
            return [], ""
        key = self.key_of(resource, rule.key_property)
        if key is None:
            return [], ""
        kms_actions = rule.operations.get((call.service, call.operation), ())
        if not kms_actions:
            if rule.note and not rule.operations:
                return (
                    [],
                    f"{rule.rule_id} ({self.label(resource_arn)}): {rule.note}",
                )
            return [], ""
        context = {
            **base_context(role_arn),
            "kms:ViaService": f"{rule.via_service}.{REGION}.{URL_SUFFIX}",
            "kms:CallerAccount": ACCOUNT,
        }
        return [Requirement(call, a, key, context, rule.rule_id, rule.source) for a in kms_actions], ""

    # --- evaluation --------------------------------------------------------------------------------

    def evaluate(self, policies: RolePolicies, requirement: Requirement) -> Decision:
        identity = policies.evaluate(requirement.action, requirement.resource, requirement.context)
        if not requirement.action.startswith("kms:"):
            return identity
        kind, key_decision = key_policy_decision(
            self.assembly, requirement.resource, policies.arn, requirement.action, requirement.context
        )
        if not key_decision.allowed:
            return key_decision
        if kind == "direct":
            return Decision(True, "allowed by the key policy", tuple(dict.fromkeys(key_decision.granted_by)))
        if not identity.allowed:
            return Decision(False, f"{identity.reason} (the key policy delegates to IAM)")
        return identity

    def check(self, component: str, role: ResourceRef, calls: Sequence[Call]) -> Report:
        policies = RolePolicies(self.assembly, role)
        requirements, notes = self.requirements(calls, policies.arn)
        report = Report(component, role, notes=sorted(set(notes)))
        seen: set[tuple[str, str, str]] = set()
        for requirement in requirements:
            key = (requirement.action, requirement.resource, requirement.why)
            if key in seen:
                continue
            seen.add(key)
            report.findings.append(Finding(requirement, self.evaluate(policies, requirement)))
        return report

    def key_in_assembly(self, key_arn: str) -> bool:
        return find_key(self.assembly, key_arn) is not None

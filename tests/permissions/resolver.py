"""Resolve CloudFormation values of a synthesized assembly to deterministic placeholder strings.

Every resource's `Ref` and `Fn::GetAtt` become a name, id or ARN that encodes the stack and logical
id (`aaf-agentcore-ToolGatewayTicketsTableCA4CD5A7`, `arn:aws:dynamodb:us-east-1:123456789012:table/
aaf-agentcore-ToolGatewayTicketsTableCA4CD5A7`, ...). The SAME resolver turns a component's environment
variables and its role's policy documents into strings, so an action our code takes on "the table named
in TICKETS_TABLE_NAME" is compared with the policy resource "that table's Arn" in one vocabulary.

ARN shapes follow each service's resource types in the Service Authorization Reference
(https://docs.aws.amazon.com/service-authorization/latest/reference/reference_policies_actions-resources-contextkeys.html);
`Ref`/`GetAtt` return values follow each resource type's "Return values" section in the CloudFormation
template reference (https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-template-resource-type-ref.html).
An intrinsic function or a `GetAtt` of a type we do not know raises `UnresolvableError` instead of guessing.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

ACCOUNT = "123456789012"
REGION = "us-east-1"
PARTITION = "aws"
URL_SUFFIX = "amazonaws.com"


class UnresolvableError(ValueError):
    """A template value uses an intrinsic, attribute or export this resolver does not know."""


@dataclass(frozen=True)
class ResourceRef:
    """A resource of the assembly: its stack, logical id, type and properties."""

    stack: str
    logical_id: str
    type: str
    properties: Mapping[str, Any]

    @property
    def name(self) -> str:
        """The placeholder physical name: `<stack>-<logical id>` (unique across the assembly)."""
        return f"{self.stack}-{self.logical_id}"


def _lower_name(resource: ResourceRef, limit: int = 63) -> str:
    """A bucket-safe name (lowercase, at most 63 characters) that still encodes stack and logical id."""
    return re.sub(r"[^a-z0-9-]", "-", resource.name.lower())[:limit].rstrip("-")


def _arn(service: str, resource: str, *, region: str = REGION, account: str = ACCOUNT) -> str:
    return f"arn:{PARTITION}:{service}:{region}:{account}:{resource}"


# Placeholder ids shaped like the real ones where code validates them (memory ids end in -<10 chars>,
# user pool ids are <region>_<id>).
def _memory_id(r: ResourceRef) -> str:
    return f"{r.logical_id}-a1b2c3d4e5"


def _guardrail_id(r: ResourceRef) -> str:
    return f"gr{r.logical_id.lower()}"[:12]


def _kb_id(r: ResourceRef) -> str:
    return f"KB{r.logical_id.upper()}"[:10]


def _key_id(r: ResourceRef) -> str:
    return f"key-{r.stack}-{r.logical_id}"


def _user_pool_id(r: ResourceRef) -> str:
    return f"{REGION}_{r.logical_id}"


def _secret_arn(r: ResourceRef) -> str:
    # A full secret ARN ends in a hyphen and six random characters (Secrets Manager user guide,
    # "Secret ARN": https://docs.aws.amazon.com/secretsmanager/latest/userguide/reference_iam-permissions.html#iam-resources).
    return _arn("secretsmanager", f"secret:{r.name}-AbCdEf")


def _queue_name(r: ResourceRef) -> str:
    return r.name[:80]


Formatter = Callable[[ResourceRef], str]

# type -> (Ref, {attribute: value}).
RETURN_VALUES: dict[str, tuple[Formatter, dict[str, Formatter]]] = {
    "AWS::IAM::Role": (
        lambda r: r.name[:64],
        {
            "Arn": lambda r: f"arn:{PARTITION}:iam::{ACCOUNT}:role/{r.name[:64]}",
            "RoleId": lambda r: f"AROA{r.logical_id}",
        },
    ),
    "AWS::IAM::ManagedPolicy": (lambda r: f"arn:{PARTITION}:iam::{ACCOUNT}:policy/{r.name}", {}),
    "AWS::IAM::Policy": (lambda r: r.name, {}),
    "AWS::KMS::Key": (_key_id, {"Arn": lambda r: _arn("kms", f"key/{_key_id(r)}"), "KeyId": _key_id}),
    "AWS::SecretsManager::Secret": (_secret_arn, {"Id": _secret_arn}),
    "AWS::DynamoDB::Table": (lambda r: r.name, {"Arn": lambda r: _arn("dynamodb", f"table/{r.name}")}),
    "AWS::S3::Bucket": (
        _lower_name,
        {
            "Arn": lambda r: f"arn:{PARTITION}:s3:::{_lower_name(r)}",
            "RegionalDomainName": lambda r: f"{_lower_name(r)}.s3.{REGION}.{URL_SUFFIX}",
            "DomainName": lambda r: f"{_lower_name(r)}.s3.{URL_SUFFIX}",
        },
    ),
    "AWS::SQS::Queue": (
        lambda r: f"https://sqs.{REGION}.{URL_SUFFIX}/{ACCOUNT}/{_queue_name(r)}",
        {"Arn": lambda r: _arn("sqs", _queue_name(r)), "QueueName": _queue_name},
    ),
    "AWS::SNS::Topic": (lambda r: _arn("sns", r.name), {"TopicArn": lambda r: _arn("sns", r.name)}),
    "AWS::Lambda::Function": (
        lambda r: r.name[:64],
        {"Arn": lambda r: _arn("lambda", f"function:{r.name[:64]}")},
    ),
    "AWS::Logs::LogGroup": (
        lambda r: f"/aaf/{r.name}",
        {"Arn": lambda r: _arn("logs", f"log-group:/aaf/{r.name}:*")},
    ),
    "AWS::Bedrock::Guardrail": (
        lambda r: _arn("bedrock", f"guardrail/{_guardrail_id(r)}"),
        {
            "GuardrailArn": lambda r: _arn("bedrock", f"guardrail/{_guardrail_id(r)}"),
            "GuardrailId": _guardrail_id,
            "Version": lambda r: "DRAFT",
        },
    ),
    "AWS::Bedrock::GuardrailVersion": (lambda r: f"{r.name}|1", {"Version": lambda r: "1"}),
    "AWS::Bedrock::KnowledgeBase": (
        _kb_id,
        {
            "KnowledgeBaseArn": lambda r: _arn("bedrock", f"knowledge-base/{_kb_id(r)}"),
            "KnowledgeBaseId": _kb_id,
        },
    ),
    "AWS::Bedrock::DataSource": (
        lambda r: f"{r.logical_id.upper()}"[:10],
        {"DataSourceId": lambda r: f"DS{r.logical_id.upper()}"[:10]},
    ),
    "AWS::BedrockAgentCore::Memory": (
        lambda r: _arn("bedrock-agentcore", f"memory/{_memory_id(r)}"),
        {"MemoryArn": lambda r: _arn("bedrock-agentcore", f"memory/{_memory_id(r)}"), "MemoryId": _memory_id},
    ),
    "AWS::BedrockAgentCore::Runtime": (
        lambda r: _arn("bedrock-agentcore", f"runtime/{r.logical_id}-a1b2c3d4e5"),
        {
            "AgentRuntimeArn": lambda r: _arn("bedrock-agentcore", f"runtime/{r.logical_id}-a1b2c3d4e5"),
            "AgentRuntimeId": lambda r: f"{r.logical_id}-a1b2c3d4e5",
        },
    ),
    "AWS::BedrockAgentCore::Gateway": (
        lambda r: f"{r.logical_id.lower()}-a1b2c3d4e5",
        {
            "GatewayArn": lambda r: _arn("bedrock-agentcore", f"gateway/{r.logical_id.lower()}-a1b2c3d4e5"),
            "GatewayIdentifier": lambda r: f"{r.logical_id.lower()}-a1b2c3d4e5",
            "GatewayUrl": lambda r: (
                f"https://{r.logical_id.lower()}-a1b2c3d4e5.gateway.bedrock-agentcore.{REGION}.{URL_SUFFIX}/mcp"
            ),
        },
    ),
    "AWS::S3Vectors::VectorBucket": (
        lambda r: _arn("s3vectors", f"bucket/{_lower_name(r)}"),
        {"VectorBucketArn": lambda r: _arn("s3vectors", f"bucket/{_lower_name(r)}")},
    ),
    "AWS::S3Vectors::Index": (
        lambda r: _arn("s3vectors", f"bucket/vectors/index/{r.logical_id.lower()}"),
        {"IndexArn": lambda r: _arn("s3vectors", f"bucket/vectors/index/{r.logical_id.lower()}")},
    ),
    "AWS::Cognito::UserPool": (
        _user_pool_id,
        {
            "Arn": lambda r: _arn("cognito-idp", f"userpool/{_user_pool_id(r)}"),
            "ProviderURL": lambda r: f"cognito-idp.{REGION}.{URL_SUFFIX}/{_user_pool_id(r)}",
            "ProviderName": lambda r: f"cognito-idp.{REGION}.{URL_SUFFIX}/{_user_pool_id(r)}",
        },
    ),
    "AWS::Cognito::UserPoolClient": (
        lambda r: f"client{r.logical_id.lower()}"[:26],
        {"ClientSecret": lambda r: "client-secret-placeholder", "Name": lambda r: r.logical_id},
    ),
    "AWS::Cognito::UserPoolDomain": (lambda r: f"{_lower_name(r)}", {}),
    "AWS::ElasticLoadBalancingV2::LoadBalancer": (
        lambda r: _arn("elasticloadbalancing", f"loadbalancer/app/{r.logical_id}/0123456789abcdef"),
        {
            "DNSName": lambda r: f"internal-{r.logical_id.lower()[:20]}-123456.{REGION}.elb.{URL_SUFFIX}",
            "LoadBalancerFullName": lambda r: f"app/{r.logical_id}/0123456789abcdef",
        },
    ),
    "AWS::CloudFront::Distribution": (
        lambda r: f"E{r.logical_id.upper()}"[:14],
        {"DomainName": lambda r: f"d{r.logical_id.lower()[:12]}.cloudfront.net"},
    ),
    "AWS::ECS::Cluster": (lambda r: r.name, {"Arn": lambda r: _arn("ecs", f"cluster/{r.name}")}),
    "AWS::ECS::TaskDefinition": (lambda r: _arn("ecs", f"task-definition/{r.name}:1"), {}),
    "AWS::ECS::Service": (lambda r: _arn("ecs", f"service/{r.name}"), {"Name": lambda r: r.name}),
    "AWS::Events::Rule": (lambda r: r.name, {"Arn": lambda r: _arn("events", f"rule/{r.name}")}),
    "AWS::EC2::SecurityGroup": (
        lambda r: f"sg-{r.logical_id.lower()}"[:20],
        {"GroupId": lambda r: f"sg-{r.logical_id.lower()}"[:20]},
    ),
    "AWS::EC2::VPC": (
        lambda r: f"vpc-{r.logical_id.lower()}"[:21],
        {"DefaultSecurityGroup": lambda r: "sg-default"},
    ),
    "AWS::EC2::Subnet": (lambda r: f"subnet-{r.logical_id.lower()}"[:24], {}),
    "AWS::RDS::DBInstance": (
        lambda r: r.name.lower(),
        {
            "Endpoint.Address": lambda r: f"{r.name.lower()}.rds.{URL_SUFFIX}",
            "Endpoint.Port": lambda r: "5432",
        },
    ),
    "AWS::ElastiCache::ReplicationGroup": (
        lambda r: r.name.lower(),
        {
            "PrimaryEndPoint.Address": lambda r: f"{r.name.lower()}.cache.{URL_SUFFIX}",
            "PrimaryEndPoint.Port": lambda r: "6379",
        },
    ),
    "AWS::EFS::FileSystem": (
        lambda r: f"fs-{r.logical_id.lower()}"[:20],
        {"Arn": lambda r: _arn("elasticfilesystem", f"file-system/fs-{r.logical_id.lower()}"[:80])},
    ),
    "AWS::EFS::AccessPoint": (lambda r: f"fsap-{r.logical_id.lower()}"[:24], {}),
    "AWS::ServiceDiscovery::PrivateDnsNamespace": (
        lambda r: f"ns-{r.logical_id}",
        {"Id": lambda r: f"ns-{r.logical_id}"},
    ),
    "AWS::ServiceDiscovery::Service": (
        lambda r: f"srv-{r.logical_id}",
        {"Arn": lambda r: _arn("servicediscovery", f"service/srv-{r.logical_id}")},
    ),
    "AWS::CloudWatch::Alarm": (lambda r: r.name, {"Arn": lambda r: _arn("cloudwatch", f"alarm:{r.name}")}),
    "AWS::Logs::DeliveryDestination": (
        lambda r: r.name,
        {"Arn": lambda r: _arn("logs", f"delivery-destination:{r.name}")},
    ),
    "AWS::Lambda::LayerVersion": (lambda r: _arn("lambda", f"layer:{r.name}:1"), {}),
}


@dataclass
class Assembly:
    """All stack templates of a synthesized cloud assembly directory (`cdk.out`)."""

    templates: dict[str, dict[str, Any]]
    exports: dict[str, tuple[str, Any]] = field(default_factory=dict)

    @classmethod
    def load(cls, directory: Path) -> Assembly:
        templates = {
            path.name.removesuffix(".template.json"): json.loads(path.read_text(encoding="utf-8"))
            for path in sorted(directory.glob("*.template.json"))
        }
        if not templates:
            raise FileNotFoundError(f"{directory} holds no *.template.json: synthesize the app first")
        assembly = cls(templates)
        resolver = Resolver(assembly)
        for stack, template in templates.items():
            for output in (template.get("Outputs") or {}).values():
                if "Export" in output:
                    name = resolver.resolve(stack, output["Export"]["Name"])
                    assembly.exports[name] = (stack, output["Value"])
        return assembly

    def resource(self, stack: str, logical_id: str) -> ResourceRef:
        try:
            raw = self.templates[stack]["Resources"][logical_id]
        except KeyError:
            raise UnresolvableError(f"{stack} has no resource {logical_id!r}") from None
        return ResourceRef(stack, logical_id, raw["Type"], raw.get("Properties") or {})

    def resources(self, type_name: str | None = None) -> list[ResourceRef]:
        return [
            ResourceRef(stack, lid, raw["Type"], raw.get("Properties") or {})
            for stack, template in self.templates.items()
            for lid, raw in template["Resources"].items()
            if type_name is None or raw["Type"] == type_name
        ]


PSEUDO = {
    "AWS::AccountId": ACCOUNT,
    "AWS::Region": REGION,
    "AWS::Partition": PARTITION,
    "AWS::URLSuffix": URL_SUFFIX,
    "AWS::NoValue": None,
}


class Resolver:
    """Evaluates the intrinsic functions CDK emits, with placeholder return values (see module doc)."""

    def __init__(self, assembly: Assembly) -> None:
        self.assembly = assembly

    def ref(self, resource: ResourceRef) -> str:
        if resource.type.startswith("Custom::") or resource.type == "AWS::CloudFormation::CustomResource":
            return f"{resource.name}-physical-id"
        if resource.type == "AWS::SecretsManager::SecretTargetAttachment":
            # Ref returns the ARN of the attached secret (CloudFormation reference, "Return values").
            return str(self.resolve(resource.stack, resource.properties["SecretId"]))
        known = RETURN_VALUES.get(resource.type)
        return known[0](resource) if known else resource.name

    def get_att(self, resource: ResourceRef, attribute: str) -> str:
        if resource.type.startswith("Custom::") or resource.type == "AWS::CloudFormation::CustomResource":
            return f"{resource.name}.{attribute}"
        known = RETURN_VALUES.get(resource.type)
        if known is None or attribute not in known[1]:
            raise UnresolvableError(
                f"no placeholder for Fn::GetAtt {resource.logical_id}.{attribute} ({resource.type}) in {resource.stack}: "
                "add it to RETURN_VALUES in tests/permissions/resolver.py"
            )
        return known[1][attribute](resource)

    def resolve(self, stack: str, value: Any) -> Any:
        """The placeholder value of `value` (any JSON) in `stack`'s template."""
        if isinstance(value, list):
            return [self.resolve(stack, item) for item in value]
        if not isinstance(value, dict):
            return value
        if len(value) != 1:
            return {key: self.resolve(stack, item) for key, item in value.items()}
        ((key, argument),) = value.items()
        if key == "Ref":
            return self._ref(stack, argument)
        if key == "Fn::GetAtt":
            logical_id, attribute = argument if isinstance(argument, list) else argument.split(".", 1)
            return self.get_att(self.assembly.resource(stack, logical_id), attribute)
        if key == "Fn::Join":
            separator, items = argument
            parts = self.resolve(stack, items)
            return str(separator).join(str(part) for part in parts if part is not None)
        if key == "Fn::Sub":
            return self._sub(stack, argument)
        if key == "Fn::ImportValue":
            name = self.resolve(stack, argument)
            if name not in self.assembly.exports:
                raise UnresolvableError(f"{stack} imports {name!r}, which no stack of the assembly exports")
            source, exported = self.assembly.exports[name]
            return self.resolve(source, exported)
        if key == "Fn::Select":
            index, items = argument
            return self.resolve(stack, items)[int(self.resolve(stack, index))]
        if key == "Fn::Split":
            separator, text = argument
            return str(self.resolve(stack, text)).split(separator)
        if key == "Fn::GetAZs":
            return [f"{REGION}a", f"{REGION}b", f"{REGION}c"]
        if key == "Fn::Base64":
            return self.resolve(stack, argument)
        if key.startswith("Fn::"):
            raise UnresolvableError(f"intrinsic {key} is not supported by tests/permissions/resolver.py")
        return {key: self.resolve(stack, argument)}

    def _ref(self, stack: str, name: str) -> Any:
        if name in PSEUDO:
            return PSEUDO[name]
        template = self.assembly.templates[stack]
        if name in (template.get("Parameters") or {}):
            parameter = template["Parameters"][name]
            return parameter.get("Default", f"param-{name}")
        return self.ref(self.assembly.resource(stack, name))

    def _sub(self, stack: str, argument: Any) -> str:
        text, variables = (argument, {}) if isinstance(argument, str) else argument
        values = {k: self.resolve(stack, v) for k, v in variables.items()}

        def replace(match: re.Match[str]) -> str:
            expression = match.group(1)
            if expression.startswith("!"):
                return "${" + expression[1:] + "}"
            if expression in values:
                return str(values[expression])
            if "." in expression:
                logical_id, attribute = expression.split(".", 1)
                return self.get_att(self.assembly.resource(stack, logical_id), attribute)
            return str(self._ref(stack, expression))

        return re.sub(r"\$\{([^}]+)\}", replace, text)

"""The tool gateway: an AgentCore Gateway (MCP) with a REQUEST interceptor and three targets.

Targets: support tickets (Lambda + DynamoDB), knowledge search (Lambda over Bedrock Retrieve) and, when
enabled, web search (Tavily through an OpenAPI target with an API-key credential provider). Tool schemas
come from tools/specs.py; see docs/tool-gateway.md for the identity flow and how to add a tool.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_bedrock as bedrock
from aws_cdk import aws_bedrockagentcore as agentcore
from aws_cdk import aws_cognito as cognito
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from config import AppConfig
from stacks.compliance import acknowledge, acknowledge_all, acknowledge_key_grant, nag_region_account
from stacks.constructs.python_lambda import PythonLambda, VpcPlacement
from stacks.network import https_out_security_group
from tools import specs
from tools.tickets import DynamoTicketRepository
from tools.web_search import openapi_document

# MCP protocol versions the tool gateway accepts: exactly the ones AgentCore Gateway documents
# ("AgentCore Gateway supports the following MCP versions: 2026-07-28, 2025-11-25, 2025-06-18, and
# 2025-03-26", https://docs.aws.amazon.com/bedrock-agentcore/latest/devguide/gateway-using.html, read
# 2026-12-01). CloudFormation takes any strings (AWS::BedrockAgentCore::Gateway MCPGatewayConfiguration
# SupportedVersions, "Array of String"): a version the service rejects fails the deploy, loudly.
# 2026-07-28 is the stateless revision (no initialize); the pinned `mcp` client negotiates 2025-11-25.
GATEWAY_MCP_VERSIONS: tuple[str, ...] = ("2025-03-26", "2025-06-18", "2025-11-25", "2026-07-28")
TARGET_NAMES: dict[specs.Target, str] = {
    "tickets": "tickets",
    "knowledge": "knowledge",
    "web_search": "web-search",
}
# The targets whose tools receive the verified caller (declared in their gateway schema, set by the interceptor).
ACTOR_TARGETS: tuple[specs.Target, ...] = tuple(sorted(specs.IDENTITY_TARGETS))
_SCHEMA_TYPES = {
    "string": agentcore.SchemaDefinitionType.STRING,
    "integer": agentcore.SchemaDefinitionType.INTEGER,
    "number": agentcore.SchemaDefinitionType.NUMBER,
    "boolean": agentcore.SchemaDefinitionType.BOOLEAN,
    "object": agentcore.SchemaDefinitionType.OBJECT,
    "array": agentcore.SchemaDefinitionType.ARRAY,
}


def schema_definition(schema: Mapping[str, Any]) -> agentcore.SchemaDefinition:
    """Convert a tools/specs.py JSON schema to the gateway's schema type.

    The gateway schema has no enum, bounds or pattern: those constraints are appended to the description
    (so the model still sees them) and enforced by the target, which validates against the full spec.
    """
    type_name = str(schema.get("type", "object"))
    if type_name not in _SCHEMA_TYPES:
        raise ValueError(f"unsupported JSON schema type {type_name!r}")
    properties = schema.get("properties")
    items = schema.get("items")
    return agentcore.SchemaDefinition(
        type=_SCHEMA_TYPES[type_name],
        description=_describe(schema) or None,
        properties={name: schema_definition(sub) for name, sub in properties.items()} if properties else None,
        required=list(schema["required"]) if schema.get("required") else None,
        items=schema_definition(items) if items else None,
    )


def _describe(schema: Mapping[str, Any]) -> str:
    parts = [str(schema["description"]).rstrip(".") + "."] if schema.get("description") else []
    if "enum" in schema:
        parts.append("One of: " + ", ".join(str(v) for v in schema["enum"]) + ".")
    bounds = [
        f"{label} {schema[key]}"
        for key, label in (
            ("minLength", "at least"),
            ("maxLength", "at most"),
            ("minimum", "minimum"),
            ("maximum", "maximum"),
        )
        if key in schema
    ]
    if bounds:
        unit = " characters" if "minLength" in schema or "maxLength" in schema else ""
        parts.append(f"Constraints: {', '.join(bounds)}{unit}.")
    if "pattern" in schema:
        parts.append(f"Format: {schema['pattern']}.")
    if "default" in schema:
        parts.append(f"Default: {schema['default']}.")
    return " ".join(parts)


def tool_definitions(target: specs.Target) -> list[agentcore.ToolDefinition]:
    """The gateway tool definitions of one target, built from tools/specs.py.

    Identity targets publish `gateway_input_schema`, which declares the identity argument: a Lambda target
    receives the tool's declared input properties as its event (AgentCore Gateway developer guide, "Lambda
    function input format": https://docs.aws.amazon.com/bedrock-agentcore/latest/devguide/gateway-add-target-lambda.html).
    The RESPONSE interceptor removes the argument from every listing, so clients never see it.
    """
    return [
        agentcore.ToolDefinition(
            name=tool.name,
            description=tool.description,
            input_schema=schema_definition(tool.gateway_input_schema),
        )
        for tool in specs.specs_for(target)
    ]


@dataclass(frozen=True)
class ToolGatewayInputs:
    """What the tool gateway needs from the rest of the foundation."""

    vpc: ec2.IVpc
    subnets: ec2.SubnetSelection
    key: kms.IKey
    user_pool: cognito.IUserPool
    gateway_client: cognito.IUserPoolClient
    actor_clients: Sequence[cognito.IUserPoolClient]
    tools_scope: str
    knowledge_base: bedrock.CfnKnowledgeBase
    removal_policy: cdk.RemovalPolicy


class ToolGateway(Construct):
    """AgentCore Gateway speaking MCP with the foundation's tool targets."""

    def __init__(
        self, scope: Construct, construct_id: str, *, config: AppConfig, inputs: ToolGatewayInputs
    ) -> None:
        super().__init__(scope, construct_id)
        self._config = config
        self._inputs = inputs
        self.security_group = self._create_security_group()
        self.tickets_table = self._create_tickets_table()
        self.tickets_function = self._create_tickets_function()
        self.knowledge_function = self._create_knowledge_function()
        self.interceptor_function = self._create_interceptor_function()
        self.gateway = self._create_gateway()
        self.targets = self._create_targets()
        self._acknowledge_findings()

    # --- shared pieces -------------------------------------------------------------------------

    def _create_security_group(self) -> ec2.SecurityGroup:
        return https_out_security_group(
            self,
            "FunctionsSecurityGroup",
            vpc=self._inputs.vpc,
            description="Tool Lambdas: HTTPS out to AWS APIs and the user pool JWKS; no inbound",
            https_to="HTTPS to AWS APIs",
        )

    def _function(
        self,
        construct_id: str,
        *,
        function: str,
        description: str,
        environment: Mapping[str, str],
    ) -> lambda_.Function:
        agentcore_config = self._config.agentcore
        built = PythonLambda(
            self,
            construct_id,
            function=function,
            description=description,
            key=self._inputs.key,
            log_retention_days=agentcore_config.log_retention_days,
            removal_policy=self._inputs.removal_policy,
            timeout=cdk.Duration.seconds(agentcore_config.tool_timeout_seconds),
            memory_mb=agentcore_config.tool_memory_mb,
            environment=environment,
            # The stack's key, as the knowledge-base ingestion functions do
            # (https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars-encryption.html). The page
            # does not say who decrypts at cold start; we rely on Lambda's grant for the execution role (no
            # kms:Decrypt in the role). If that is wrong every invoke fails with KMSAccessDeniedException,
            # which `make verify`'s tool calls report.
            encrypt_environment=True,
            vpc=VpcPlacement(self._inputs.vpc, self._inputs.subnets, [self.security_group]),
            synchronous_caller="the AgentCore gateway, which returns the error to the agent",
            tracing=agentcore_config.tracing,
        )
        return built.function

    # --- tickets -------------------------------------------------------------------------------

    def _create_tickets_table(self) -> dynamodb.Table:
        repo = DynamoTicketRepository
        table = dynamodb.Table(
            self,
            "TicketsTable",
            partition_key=dynamodb.Attribute(name=repo.PARTITION_KEY, type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name=repo.SORT_KEY, type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            encryption=dynamodb.TableEncryption.CUSTOMER_MANAGED,
            encryption_key=self._inputs.key,
            deletion_protection=self._inputs.removal_policy == cdk.RemovalPolicy.RETAIN,
            removal_policy=self._inputs.removal_policy,
        )
        table.add_local_secondary_index(
            index_name=repo.INDEX_NAME,
            sort_key=dynamodb.Attribute(name=repo.INDEX_SORT_KEY, type=dynamodb.AttributeType.STRING),
            projection_type=dynamodb.ProjectionType.ALL,
        )
        return table

    def _create_tickets_function(self) -> lambda_.Function:
        function = self._function(
            "TicketsFunction",
            function="tickets",
            description="Support ticket tools of the AgentCore tool gateway",
            environment={"TICKETS_TABLE_NAME": self.tickets_table.table_name},
        )
        self.tickets_table.grant(function, "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query")
        # DynamoDB uses the table's customer-managed key on behalf of the caller.
        self._inputs.key.grant(
            function, "kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey"
        )
        return function

    # --- knowledge -----------------------------------------------------------------------------

    def _create_knowledge_function(self) -> lambda_.Function:
        knowledge_base = self._inputs.knowledge_base
        function = self._function(
            "KnowledgeFunction",
            function="knowledge",
            description="Knowledge base search tool of the AgentCore tool gateway",
            environment={"KNOWLEDGE_BASE_ID": knowledge_base.attr_knowledge_base_id},
        )
        function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["bedrock:Retrieve"], resources=[knowledge_base.attr_knowledge_base_arn]
            )
        )
        return function

    # --- interceptor ---------------------------------------------------------------------------

    def _create_interceptor_function(self) -> lambda_.Function:
        user_pool = self._inputs.user_pool
        issuer = f"https://cognito-idp.{cdk.Stack.of(self).region}.amazonaws.com/{user_pool.user_pool_id}"
        return self._function(
            "InterceptorFunction",
            function="interceptor",
            description="Tool gateway interceptor: verifies X-Actor-Token, sets the caller identity argument "
            "on requests and removes it from tool listings",
            environment={
                "USER_POOL_ISSUER": issuer,
                "ACTOR_CLIENT_IDS": cdk.Fn.join(
                    ",", [c.user_pool_client_id for c in self._inputs.actor_clients]
                ),
                "ACTOR_TARGETS": ",".join(TARGET_NAMES[t] for t in ACTOR_TARGETS),
            },
        )

    # --- gateway and targets -------------------------------------------------------------------

    def _create_gateway(self) -> agentcore.Gateway:
        gateway = agentcore.Gateway(
            self,
            "Gateway",
            gateway_name=f"{self._config.prefix}-tools",
            description="Tools of the Agentic AI Foundation agent (MCP)",
            protocol_configuration=agentcore.GatewayProtocol.mcp(
                instructions="Support tools: tickets, knowledge base search and (when enabled) web search.",
                # The L2 enum lags the service (2025-03-26 and 2025-06-18 only): the documented list,
                # GATEWAY_MCP_VERSIONS, is written into the template below (L1 escape hatch).
                supported_versions=[agentcore.MCPProtocolVersion.MCP_2025_03_26],
            ),
            authorizer_configuration=agentcore.GatewayAuthorizer.using_cognito(
                user_pool=self._inputs.user_pool,
                allowed_clients=[self._inputs.gateway_client],
                allowed_scopes=[self._inputs.tools_scope],
            ),
            # One function, both interception points (it tells them apart by the documented payload: only a
            # RESPONSE event has `mcp.gatewayResponse`). The L2's bind() grants the gateway role
            # lambda:InvokeFunction on it. The RESPONSE side gets no request headers (it needs no token).
            # https://docs.aws.amazon.com/bedrock-agentcore/latest/devguide/gateway-interceptors-types.html
            interceptor_configurations=[
                agentcore.LambdaInterceptor.for_request(self.interceptor_function, pass_request_headers=True),
                agentcore.LambdaInterceptor.for_response(self.interceptor_function),
            ],
            kms_key=self._inputs.key,
        )
        cfn = gateway.node.default_child
        assert isinstance(cfn, cdk.CfnResource)
        cfn.add_property_override("ProtocolConfiguration.Mcp.SupportedVersions", list(GATEWAY_MCP_VERSIONS))
        return gateway

    def _create_targets(self) -> dict[specs.Target, agentcore.GatewayTarget]:
        lambda_targets: dict[specs.Target, tuple[str, str, lambda_.IFunction]] = {
            "tickets": ("TicketsTarget", "Support tickets owned by the calling user", self.tickets_function),
            "knowledge": (
                "KnowledgeTarget",
                "Product support knowledge base search with citations",
                self.knowledge_function,
            ),
        }
        targets: dict[specs.Target, agentcore.GatewayTarget] = {
            target: self.gateway.add_lambda_target(
                construct_id,
                gateway_target_name=TARGET_NAMES[target],
                description=description,
                lambda_function=function,
                tool_schema=agentcore.ToolSchema.from_inline(tool_definitions(target)),
            )
            for target, (construct_id, description, function) in lambda_targets.items()
        }
        if self._config.components.web_search:
            targets["web_search"] = self._create_web_search_target()
        return targets

    def _create_web_search_target(self) -> agentcore.GatewayTarget:
        secret_name = self._config.agentcore.tavily_secret_name or f"{self._config.prefix}/tavily"
        provider = agentcore.ApiKeyCredentialProvider(
            self,
            "TavilyApiKey",
            api_key_credential_provider_name=f"{self._config.prefix}-tavily",
            # A deploy-time dynamic reference: the key is resolved by CloudFormation, never in the template.
            api_key=cdk.SecretValue.secrets_manager(secret_name, json_field="api_key"),
        )
        return self.gateway.add_open_api_target(
            "WebSearchTarget",
            gateway_target_name=TARGET_NAMES["web_search"],
            description="Tavily web search",
            api_schema=agentcore.ApiSchema.from_inline(json.dumps(openapi_document())),
            credential_provider_configurations=[
                agentcore.GatewayCredentialProvider.from_api_key_identity(
                    provider,
                    credential_location=agentcore.ApiKeyCredentialLocation.header(
                        credential_parameter_name="Authorization", credential_prefix="Bearer "
                    ),
                )
            ],
        )

    def _acknowledge_findings(self) -> None:
        acknowledge(
            self.tickets_function.role or self.tickets_function,
            f"AwsSolutions-IAM5[Resource::<{_logical_id(self.tickets_table)}.Arn>/index/*]",
            "Query on the tickets table's own local secondary index (by_created); no other table.",
        )
        gateway_role = self.gateway.role
        where = nag_region_account(cdk.Stack.of(self))
        acknowledge_key_grant(gateway_role, granted_by="The Gateway L2", key="this stack's own data key")
        gateway_findings = {
            f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:bedrock-agentcore:{where}:"
            f"workload-identity-directory/default/workload-identity/{self.gateway.gateway_name}-*]": "The gateway's "
            "own workload identity, whose suffix AgentCore generates at creation.",
            f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:secretsmanager:{where}:"
            "secret:bedrock-agentcore-identity!*]": "AgentCore Identity stores the API-key credential in a secret "
            "whose name it generates; the prefix limits access to AgentCore-managed credentials.",
        }
        for function in (self.tickets_function, self.knowledge_function, self.interceptor_function):
            gateway_findings[f"AwsSolutions-IAM5[Resource::<{_logical_id(function)}.Arn>:*]"] = (
                "Invoke permission on the versions and aliases of this one tool function, written by the L2."
            )
        acknowledge_all(gateway_role, gateway_findings)


def _logical_id(construct: Construct) -> str:
    """The CloudFormation logical id of a construct's main resource, as cdk-nag prints it."""
    stack = cdk.Stack.of(construct)
    default_child = construct.node.default_child
    if not isinstance(default_child, cdk.CfnElement):
        raise TypeError(f"{construct.node.path} has no CloudFormation resource")
    return str(stack.resolve(stack.get_logical_id(default_child)))

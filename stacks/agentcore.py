"""AgentCore: the agent Runtime (container built from agent/), Memory, and the tool gateway."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_bedrock as bedrock
from aws_cdk import aws_bedrockagentcore as agentcore
from aws_cdk import aws_cognito as cognito
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from config import AppConfig
from stacks.base import FoundationStack
from stacks.compliance import (
    acknowledge,
    acknowledge_all,
    acknowledge_cdk_helpers,
    acknowledge_key_grant,
    nag_region_account,
)
from stacks.contracts import LangfuseConnection, LlmGatewayEndpoint, url_port
from stacks.guardrails import grant_apply_guardrail, publish_in
from stacks.identity import RESOURCE_SERVER_ID, MachineClient
from stacks.network import https_out_security_group
from stacks.tool_gateway import ToolGateway, ToolGatewayInputs

REPO_ROOT = Path(__file__).resolve().parents[1]
AGENT_DIR = REPO_ROOT / "agent"
RUNTIME_CALLER_CLIENTS = ("ci", "evaluation")
TOOLS_SCOPE = f"{RESOURCE_SERVER_ID}/tools.invoke"
REQUEST_HEADER_ALLOWLIST = ("Authorization",)
MEMORY_NAMESPACES = {
    "facts": "/actors/{actorId}/facts/",
    "preferences": "/actors/{actorId}/preferences/",
    "summaries": "/actors/{actorId}/sessions/{sessionId}/summaries/",
}
AGENT_ASSET_EXCLUDES = ("__pycache__", "**/__pycache__", "*.pyc", ".venv", ".pytest_cache", ".mypy_cache")


class AgentCoreStack(FoundationStack):
    """The agent on AgentCore Runtime, its Memory, and the MCP tool gateway it calls."""

    component = "agentcore"
    description_text = "AgentCore runtime, memory and tool gateway"

    def __init__(
        self,
        scope: Construct,
        *,
        config: AppConfig,
        vpc: ec2.IVpc,
        user_pool: cognito.IUserPool,
        browser_client: cognito.IUserPoolClient,
        machine_clients: Mapping[str, MachineClient],
        token_endpoint: str,
        knowledge_base: bedrock.CfnKnowledgeBase,
        guardrail: bedrock.CfnGuardrail,
        guardrail_version: bedrock.CfnGuardrailVersion,
        llm: LlmGatewayEndpoint,
        langfuse: LangfuseConnection | None,
        service_subnets: ec2.SubnetSelection | None = None,
        agent_dir: Path = AGENT_DIR,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, config=config, **kwargs)
        missing = [name for name in ("gateway", *RUNTIME_CALLER_CLIENTS) if name not in machine_clients]
        if missing:
            raise ValueError(
                f"machine_clients lacks {missing}; IdentityStack creates gateway, ci and evaluation"
            )
        self._vpc = vpc
        self._subnets = service_subnets or ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS)
        self._runtime_subnets = self._runtime_subnet_selection()
        self._user_pool = user_pool
        self._runtime_clients = [browser_client, *(machine_clients[n].client for n in RUNTIME_CALLER_CLIENTS)]
        self._gateway_client = machine_clients["gateway"]
        self._token_endpoint = token_endpoint
        self._knowledge_base = knowledge_base
        self._guardrail = guardrail
        # Published in this stack: importing the guardrails stack's version would freeze its export.
        self._guardrail_version = publish_in(self, guardrail, guardrail_version)
        self._llm = llm
        self._langfuse = langfuse

        self.key = self._create_key()
        self.tools = self._create_tool_gateway()
        self.gateway = self.tools.gateway
        self.tickets_table = self.tools.tickets_table
        self.memory = self._create_memory()
        self.security_group = self._create_runtime_security_group()
        self.runtime = self._create_runtime(agent_dir)
        self._grant_runtime_access()
        self._create_outputs()
        self._acknowledge_findings()

    def _runtime_subnet_selection(self) -> ec2.SubnetSelection:
        """The services subnets, narrowed to `agentcore.runtime_az_ids` when set.

        AgentCore Runtime in VPC mode accepts subnets only in the AZ IDs it lists per region
        (config/agentcore.py AGENTCORE_VPC_DOC_URL); other subnets fail at resource creation.
        """
        names = list(self.config.runtime_az_names)
        if not names:
            return self._subnets
        group = self._subnets.subnet_group_name
        where: dict[str, Any] = (
            {"subnet_group_name": group} if group is not None else {"subnet_type": self._subnets.subnet_type}
        )
        selection = ec2.SubnetSelection(**where, availability_zones=names)
        found = {
            s.availability_zone for s in self._vpc.select_subnets(**where, availability_zones=names).subnets
        }
        missing = [
            f"{az_id} ({name})"
            for az_id, name in zip(self.config.agentcore.runtime_az_ids, names, strict=True)
            if name not in found
        ]
        if missing:
            raise ValueError(
                f"agentcore.runtime_az_ids: the VPC has no {group or 'private'} subnet in {missing}; "
                f"its zones are {sorted(self._vpc.availability_zones)} (check network.az_names)"
            )
        return selection

    @property
    def runtime_arn(self) -> str:
        return self.runtime.agent_runtime_arn

    def _create_key(self) -> kms.Key:
        return self.create_data_key("DataKey", "AgentCore memory, tickets, tool gateway and logs")

    def _create_tool_gateway(self) -> ToolGateway:
        return ToolGateway(
            self,
            "ToolGateway",
            config=self.config,
            inputs=ToolGatewayInputs(
                vpc=self._vpc,
                subnets=self._subnets,
                key=self.key,
                user_pool=self._user_pool,
                gateway_client=self._gateway_client.client,
                actor_clients=self._runtime_clients,
                tools_scope=TOOLS_SCOPE,
                knowledge_base=self._knowledge_base,
                removal_policy=self.removal_policy,
            ),
        )

    def _create_memory(self) -> agentcore.Memory:
        return agentcore.Memory(
            self,
            "Memory",
            memory_name=f"{self.config.prefix}_memory".replace("-", "_"),
            description="Conversation events and per-user long-term memory of the support agent",
            expiration_duration=cdk.Duration.days(self.config.agentcore.memory_event_expiry_days),
            kms_key=self.key,
            memory_strategies=[
                agentcore.MemoryStrategy.using_semantic(
                    strategy_name="facts",
                    description="Facts the user shared (devices, setup, past problems)",
                    namespaces=[MEMORY_NAMESPACES["facts"]],
                ),
                agentcore.MemoryStrategy.using_user_preference(
                    strategy_name="preferences",
                    description="How the user likes to be helped",
                    namespaces=[MEMORY_NAMESPACES["preferences"]],
                ),
                agentcore.MemoryStrategy.using_summarization(
                    strategy_name="summaries",
                    description="One summary per conversation",
                    namespaces=[MEMORY_NAMESPACES["summaries"]],
                ),
            ],
        )

    def _create_runtime_security_group(self) -> ec2.SecurityGroup:
        group = https_out_security_group(
            self,
            "RuntimeSecurityGroup",
            vpc=self._vpc,
            description="Agent runtime: HTTPS out (AWS APIs, tool gateway, Langfuse) and the LLM gateway",
            https_to="HTTPS to AWS APIs, tools and tracing",
        )
        if self._llm.security_group is not None:
            port = url_port(self._llm.url)
            group.connections.allow_to(
                self._llm.security_group, ec2.Port.tcp(port), "Agent runtime to LLM gateway"
            )
        return group

    def _environment(self) -> dict[str, str]:
        environment = {
            "AGENT_MODE": "agentcore",
            "LLM_GATEWAY_URL": self._llm.url,
            "LLM_GATEWAY_KEY_SECRET_ARN": self._llm.agent_key_secret.secret_arn,
            "MODEL_ALIAS": self.config.models.agent_alias,
            "TOOL_GATEWAY_URL": self.gateway.gateway_url or "",
            "TOOL_GATEWAY_CLIENT_SECRET_ARN": self._gateway_client.secret.secret_arn,
            "TOOL_GATEWAY_TOKEN_URL": self._token_endpoint,
            "TOOL_GATEWAY_SCOPE": TOOLS_SCOPE,
            "MEMORY_ID": self.memory.memory_id,
            "GUARDRAIL_ID": self._guardrail.attr_guardrail_id,
            "GUARDRAIL_VERSION": self._guardrail_version.attr_version,
            "KNOWLEDGE_BASE_ID": self._knowledge_base.attr_knowledge_base_id,
            # The agent exports its own spans to Langfuse; AgentCore's ADOT export would duplicate them
            # (docs/tracing-contract.md, "No duplicate spans").
            "DISABLE_ADOT_OBSERVABILITY": "true",
            "AGENT_ENVIRONMENT": self.config.project.profile,
            # Bounded turns (docs/agent-api.md, "Limits"); the other limits keep the agent's defaults.
            "AGENT_TURN_DEADLINE_SECONDS": f"{self.config.agentcore.turn_deadline_seconds:g}",
            "AGENT_TOOL_TIMEOUT_SECONDS": f"{self.config.agentcore.agent_tool_timeout_seconds:g}",
            "AGENT_SERVICE_NAME": f"{self.config.prefix}-agent",
        }
        model = self.config.models.entry(self.config.models.agent_alias)
        if model.input_cost_per_million is not None and model.output_cost_per_million is not None:
            # Prices from the catalog let the agent put gen_ai.usage.cost on its generation spans.
            environment["MODEL_INPUT_COST_PER_MILLION"] = str(model.input_cost_per_million)
            environment["MODEL_OUTPUT_COST_PER_MILLION"] = str(model.output_cost_per_million)
        if self._langfuse is not None:
            environment["LANGFUSE_HOST"] = self._langfuse.host
            environment["LANGFUSE_KEYS_SECRET_ARN"] = self._langfuse.keys_secret.secret_arn
        return environment

    def _create_runtime(self, agent_dir: Path) -> agentcore.Runtime:
        agent = self.config.agentcore
        if not (agent_dir / "Dockerfile").is_file():
            raise FileNotFoundError(
                f"{agent_dir / 'Dockerfile'} is missing: the agent runtime image is built from it"
            )
        artifact = agentcore.AgentRuntimeArtifact.from_asset(
            str(agent_dir),
            platform=ecr_assets.Platform.LINUX_ARM64,
            exclude=list(AGENT_ASSET_EXCLUDES),
            display_name=f"{self.config.prefix} agent image",
        )
        return agentcore.Runtime(
            self,
            "Runtime",
            runtime_name=f"{self.config.prefix}_agent".replace("-", "_"),
            description="Support agent (Strands) behind the foundation's LLM gateway",
            agent_runtime_artifact=artifact,
            authorizer_configuration=agentcore.RuntimeAuthorizerConfiguration.using_cognito(
                self._user_pool, self._runtime_clients
            ),
            request_header_configuration=agentcore.RequestHeaderConfiguration(
                allowlisted_headers=list(REQUEST_HEADER_ALLOWLIST)
            ),
            environment_variables=self._environment(),
            network_configuration=agentcore.RuntimeNetworkConfiguration.using_vpc(
                self, vpc=self._vpc, vpc_subnets=self._runtime_subnets, security_groups=[self.security_group]
            ),
            lifecycle_configuration=agentcore.LifecycleConfiguration(
                idle_runtime_session_timeout=cdk.Duration.seconds(agent.idle_timeout_seconds),
                max_lifetime=cdk.Duration.seconds(agent.max_lifetime_seconds),
            ),
            protocol_configuration=agentcore.ProtocolType.HTTP,
            tracing_enabled=agent.tracing,
        )

    def _grant_runtime_access(self) -> None:
        role = self.runtime.role
        self.memory.grant_read(role)
        self.memory.grant_write(role)
        # The agent calls ApplyGuardrail on input and output (agent/guardrails.py); the guardrail is
        # encrypted with the guardrails stack's key, so the role also needs kms:Decrypt on it.
        grant_apply_guardrail(role, self._guardrail)
        secrets = [self._llm.agent_key_secret, self._gateway_client.secret]
        if self._langfuse is not None:
            secrets.append(self._langfuse.keys_secret)
        for secret in secrets:
            self._grant_secret_read(role, secret)

    def _grant_secret_read(self, role: iam.IRole, secret: secretsmanager.ISecret) -> None:
        """Read access written into this stack only: `secret.grant_read` would add the role to the key
        policy of a customer-managed key in the secret's stack, which already depends on this one's inputs.
        The keys' policies delegate to IAM (account root), so an identity policy is enough."""
        arn = secret.secret_full_arn or f"{secret.secret_arn}-??????"
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"], resources=[arn]
            )
        )
        self.grant_secret_key_decrypt(role, secret)

    def _create_outputs(self) -> None:
        cdk.CfnOutput(self, "RuntimeArn", value=self.runtime.agent_runtime_arn)
        cdk.CfnOutput(self, "MemoryId", value=self.memory.memory_id)
        cdk.CfnOutput(self, "ToolGatewayUrl", value=self.gateway.gateway_url or "")
        cdk.CfnOutput(self, "TicketsTableName", value=self.tickets_table.table_name)

    def _acknowledge_findings(self) -> None:
        acknowledge_cdk_helpers(self)
        acknowledge(
            self.tickets_table,
            "NIST.800.53.R5-DynamoDBInBackupPlan",
            "Point-in-time recovery (35 days) protects the tickets table; an AWS Backup plan is an "
            "account-level choice documented in the README.",
        )
        where = nag_region_account(self)
        logs_arn = f"arn:<AWS::Partition>:logs:{where}:log-group:"
        acknowledge_all(
            self.runtime.role,
            {
                "AwsSolutions-IAM5[Resource::*]": "X-Ray trace upload, ECR GetAuthorizationToken and CloudWatch "
                "PutMetricData (limited by a namespace condition) have no resource-level permissions; written by "
                "the Runtime L2.",
                f"AwsSolutions-IAM5[Resource::{logs_arn}/aws/bedrock-agentcore/runtimes/*]": "The runtime writes "
                "to log groups AgentCore names after the runtime id, which is generated at creation.",
                f"AwsSolutions-IAM5[Resource::{logs_arn}/aws/bedrock-agentcore/runtimes/*:log-stream:*]": "Log "
                "streams of the runtime's own log groups, named by AgentCore at creation.",
                f"AwsSolutions-IAM5[Resource::{logs_arn}*]": (
                    "logs:DescribeLogGroups only (a list action without resource-level permissions)."
                ),
                f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:bedrock-agentcore:{where}:"
                "workload-identity-directory/default/workload-identity/*]": "The runtime's own workload identity, "
                "created by AgentCore with a generated name.",
            },
        )
        if self.memory.execution_role is not None:
            acknowledge_key_grant(
                self.memory.execution_role,
                granted_by="The Memory L2",
                key="this stack's own data key",
                actions=("kms:ReEncrypt*",),
            )

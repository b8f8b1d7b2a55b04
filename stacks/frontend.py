"""Frontend: the Streamlit chat on ECS Fargate, serving the edge stack's CloudFront entry.

Browser -> CloudFront (edge stack) -> VPC origin -> internal ALB (edge stack) -> the edge's target group
-> Fargate tasks (this stack). Users sign in with Cognito managed login (code + PKCE) through the
identity stack's browser client, whose callback and sign-out URLs already name the edge's distribution
in CloudFormation (see stacks/edge.py for why): this stack changes nothing in Cognito.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_bedrockagentcore as agentcore
from aws_cdk import aws_cognito as cognito
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from config import AppConfig
from stacks.base import FoundationStack
from stacks.compliance import acknowledge, acknowledge_cdk_helpers
from stacks.constructs.fargate_service import (
    ContainerSpec,
    FargateService,
    ServiceOptions,
    TaskSize,
    fargate_cluster,
)
from stacks.contracts import LangfuseConnection
from stacks.edge import CHAT_PORT, HEALTH_PATH, ChatEdge
from stacks.identity import RESOURCE_SERVER_ID
from stacks.network import https_out_security_group

REPO_ROOT = Path(__file__).resolve().parents[1]
# The image needs only the chat and the shared clients; everything else stays out of the build context.
IMAGE_CONTEXT_EXCLUDES = (
    "*",
    "!frontend",
    "!clients",
    # the cited-source rule the agent and the chat share (standard library only)
    "!agent/__init__.py",
    "!agent/citations.py",
    "**/__pycache__",
    "**/*.pyc",
    "frontend/.streamlit/secrets.toml",
)


class FrontendStack(FoundationStack):
    """The chat service: cluster, task, service registered in the edge stack's target group."""

    component = "frontend"
    description_text = "Streamlit chat (ECS Fargate behind the edge stack's CloudFront and ALB)"

    def __init__(
        self,
        scope: Construct,
        *,
        config: AppConfig,
        vpc: ec2.IVpc,
        edge: ChatEdge,
        user_pool: cognito.IUserPool,
        browser_client: cognito.IUserPoolClient,
        domain: cognito.UserPoolDomain,
        runtime: agentcore.IBedrockAgentRuntime,
        langfuse: LangfuseConnection | None,
        docs_bucket: s3.IBucket | None = None,
        service_subnets: ec2.SubnetSelection | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, config=config, **kwargs)
        self._docs_bucket = docs_bucket
        self._vpc = vpc
        self._subnets = service_subnets or ec2.SubnetSelection(subnet_group_name="services")
        self._edge = edge
        self._user_pool = user_pool
        self._browser_client = browser_client
        self._domain = domain
        self._runtime = runtime
        self._langfuse = langfuse

        self.key = self._create_key()
        self.cluster = self._create_cluster()
        self.service = self._create_service()
        self._create_outputs()
        acknowledge_cdk_helpers(self)

    @property
    def _vpc_cidr(self) -> str:
        """The VPC's CIDR as a literal when this app creates the VPC (rules and scanners can read it)."""
        return self.vpc_cidr(self._vpc)

    @property
    def url(self) -> str:
        """The chat's public HTTPS address (the edge's distribution; also its Cognito callback URL)."""
        return self._edge.url

    # --- steps -------------------------------------------------------------------------------------

    def _create_key(self) -> kms.Key:
        return self.create_data_key("LogsKey", "chat logs")

    def _create_cluster(self) -> ecs.Cluster:
        frontend = self.config.frontend
        return fargate_cluster(
            self,
            "Cluster",
            vpc=self._vpc,
            capacity_providers=frontend.fargate_spot,
            container_insights=frontend.container_insights,
            insights_setting="frontend.container_insights",
        )

    def _create_service(self) -> ecs.FargateService:
        frontend = self.config.frontend
        environment, secrets = self._container_settings()
        container = ContainerSpec(
            name="chat",
            image=ecs.ContainerImage.from_asset(
                str(REPO_ROOT),
                file="frontend/Dockerfile",
                exclude=list(IMAGE_CONTEXT_EXCLUDES),
                ignore_mode=cdk.IgnoreMode.DOCKER,
                platform=ecr_assets.Platform.LINUX_AMD64,
            ),
            environment=environment,
            secrets=secrets,
            port_mappings=(ecs.PortMapping(container_port=CHAT_PORT),),
            readonly_root_filesystem=False,  # Streamlit writes its cache under the home directory
            health_check=ecs.HealthCheck(
                command=[
                    "CMD",
                    "python",
                    "-c",
                    f"import urllib.request; urllib.request.urlopen('http://127.0.0.1:{CHAT_PORT}{HEALTH_PATH}', timeout=4)",
                ],
                interval=cdk.Duration.seconds(30),
                timeout=cdk.Duration.seconds(5),
                start_period=cdk.Duration.seconds(30),
                retries=3,
            ),
        )
        security_group = https_out_security_group(
            self,
            "ServiceSecurityGroup",
            vpc=self._vpc,
            description="Chat tasks: Streamlit port from the chat ALB; HTTPS out to Cognito, AgentCore, Langfuse",
            https_to="HTTPS to AWS APIs and Langfuse",
        )
        if self._langfuse is not None and self._langfuse.host.startswith("http://"):
            # Self-hosted Langfuse answers on its internal ALB over HTTP inside the VPC.
            security_group.add_egress_rule(
                ec2.Peer.ipv4(self._vpc_cidr), ec2.Port.tcp(80), "HTTP to the internal Langfuse ALB"
            )
        service = FargateService(
            self,
            "Service",
            task_id="Task",
            log_group_id="ChatLogs",
            cluster=self.cluster,
            size=TaskSize(cpu=frontend.cpu, memory_mib=frontend.memory_mib),
            container=container,
            options=ServiceOptions(
                desired_count=frontend.desired_tasks,
                capacity_provider="FARGATE_SPOT" if frontend.fargate_spot else None,
                health_check_grace_seconds=60,
            ),
            subnets=self._subnets,
            security_groups=[security_group],
            key=self.key,
            log_retention_days=frontend.log_retention_days,
            removal_policy=self.removal_policy,
        )
        self.log_group = service.log_group
        task = service.task_definition
        self._grant_key_decrypt(task.obtain_execution_role())
        self._grant_document_links(task.task_role)
        self._register_in_edge_target_group(service.service)
        return service.service

    def _register_in_edge_target_group(self, service: ecs.FargateService) -> None:
        """Put the service's tasks in the edge stack's target group (ECS registers each task's IP).

        CDK writes the ALB-to-task rules (ALB egress and task ingress on the Streamlit port, group to
        group) into this stack, the one that depends on the edge: the edge never refers to this stack.
        The service waits for the edge stack, so the group is on its listener before ECS creates the
        service (ECS refuses a target group without a load balancer).
        """
        service.attach_to_application_target_group(self._edge.target_group)

    def _container_settings(self) -> tuple[dict[str, str], dict[str, ecs.Secret]]:
        """Plain settings in `environment`; the Langfuse keys only as ECS secrets (never plaintext)."""
        environment = {
            "CHAT_MODE": "agentcore",
            "AGENT_RUNTIME_ARN": self._runtime.agent_runtime_arn,
            "AWS_REGION": self.region,
            "COGNITO_DOMAIN_URL": self._domain.base_url(),
            "COGNITO_CLIENT_ID": self._browser_client.user_pool_client_id,
            "COGNITO_SCOPES": f"openid email profile {RESOURCE_SERVER_ID}/agent.invoke",
            "CHAT_PUBLIC_URL": self.url,
        }
        if self._docs_bucket is not None:
            # Cited documents in this bucket link to pre-signed GET URLs (frontend/citations.py).
            environment["DOCS_BUCKET_NAME"] = self._docs_bucket.bucket_name
        secrets: dict[str, ecs.Secret] = {}
        if self._langfuse is not None:
            environment["LANGFUSE_HOST"] = self._langfuse.host
            keys = self.import_secret(self._langfuse.keys_secret, "LangfuseKeys")
            secrets["LANGFUSE_PUBLIC_KEY"] = ecs.Secret.from_secrets_manager(keys, "public_key")
            secrets["LANGFUSE_SECRET_KEY"] = ecs.Secret.from_secrets_manager(keys, "secret_key")
        return environment, secrets

    def _grant_key_decrypt(self, role: iam.IRole) -> None:
        """kms:Decrypt on the Langfuse keys secret's key, only through Secrets Manager (ECS reads the
        secrets with the execution role; see FoundationStack.grant_secret_key_decrypt)."""
        if self._langfuse is not None:
            self.grant_secret_key_decrypt(role, self._langfuse.keys_secret)

    def _grant_document_links(self, role: iam.IRole) -> None:
        """What a pre-signed GET of a cited document needs: the URL is signed with the task role's
        credentials, so the role itself must allow s3:GetObject on the object and, for an SSE-KMS object,
        kms:Decrypt on its key (https://docs.aws.amazon.com/AmazonS3/latest/userguide/using-presigned-url.html,
        https://docs.aws.amazon.com/AmazonS3/latest/userguide/UsingKMSEncryption.html#require-sse-kms).
        Identity-policy statements only: a grant on the other stack's bucket or key would edit its
        policies and make the knowledge-base stack depend on this one."""
        if self._docs_bucket is None:
            return
        # The same export CDK would create for the reference, named here so that the acknowledgement
        # below can name the finding exactly (cdk-nag prints the import's export name).
        bucket_arn = cdk.Stack.of(self._docs_bucket).export_value(self._docs_bucket.bucket_arn)
        export_name = self.resolve(bucket_arn)["Fn::ImportValue"]
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="ReadCitedDocuments", actions=["s3:GetObject"], resources=[f"{bucket_arn}/*"]
            )
        )
        acknowledge(
            role,
            f"AwsSolutions-IAM5[Resource::{export_name}/*]",
            "Cited documents may sit anywhere in the docs bucket (users add files under any prefix); "
            "s3:GetObject only, for pre-signed links to the pages the answer cites.",
        )
        if self._docs_bucket.encryption_key is not None:
            role.add_to_principal_policy(
                iam.PolicyStatement(
                    sid="DecryptCitedDocuments",
                    actions=["kms:Decrypt"],
                    resources=[self._docs_bucket.encryption_key.key_arn],
                    conditions={"StringEquals": {"kms:ViaService": f"s3.{self.region}.amazonaws.com"}},
                )
            )

    def _create_outputs(self) -> None:
        cdk.CfnOutput(self, "ChatUrl", value=self.url, description="Open the support chat here")
        cdk.CfnOutput(self, "ChatLogGroup", value=self.log_group.log_group_name, description="Chat task logs")

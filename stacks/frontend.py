"""Frontend: the Streamlit chat on ECS Fargate behind an internal ALB, served over HTTPS by CloudFront.

Browser -> CloudFront (HTTPS, default *.cloudfront.net certificate; no custom domain needed) -> VPC
origin -> internal ALB (HTTP inside the VPC) -> Fargate tasks. Users sign in with Cognito managed
login (code + PKCE) through the identity stack's browser client; a custom resource adds the
distribution's URL to that client's callback and sign-out URLs, because the identity stack is
deployed before the distribution exists.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_bedrockagentcore as agentcore
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_cloudfront_origins as origins
from aws_cdk import aws_cognito as cognito
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import custom_resources as cr
from constructs import Construct

from stacks.base import FoundationStack
from stacks.compliance import (
    CDK_HELPER_ACKNOWLEDGEMENTS,
    acknowledge,
    acknowledge_all,
    acknowledge_cdk_helpers,
)
from stacks.config import AppConfig
from stacks.contracts import LangfuseConnection
from stacks.identity import RESOURCE_SERVER_ID

REPO_ROOT = Path(__file__).resolve().parents[1]
CALLBACK_HANDLER_DIR = REPO_ROOT / "functions" / "chat_callback_urls"
CHAT_PORT = 8501
HEALTH_PATH = "/_stcore/health"
# The image needs only the chat and the shared clients; everything else stays out of the build context.
IMAGE_CONTEXT_EXCLUDES = (
    "*",
    "!frontend",
    "!clients",
    "**/__pycache__",
    "**/*.pyc",
    "frontend/.streamlit/secrets.toml",
)
PRICE_CLASSES = {
    "100": cloudfront.PriceClass.PRICE_CLASS_100,
    "200": cloudfront.PriceClass.PRICE_CLASS_200,
    "all": cloudfront.PriceClass.PRICE_CLASS_ALL,
}


class FrontendStack(FoundationStack):
    """The chat service, its load balancer, its CloudFront distribution and its sign-in URLs."""

    component = "frontend"
    description_text = "Streamlit chat (ECS Fargate, internal ALB, CloudFront)"

    def __init__(
        self,
        scope: Construct,
        *,
        config: AppConfig,
        vpc: ec2.IVpc,
        user_pool: cognito.IUserPool,
        browser_client: cognito.IUserPoolClient,
        domain: cognito.UserPoolDomain,
        runtime: agentcore.IBedrockAgentRuntime,
        langfuse: LangfuseConnection | None,
        service_subnets: ec2.SubnetSelection | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, config=config, **kwargs)
        self._vpc = vpc
        self._subnets = service_subnets or ec2.SubnetSelection(subnet_group_name="services")
        self._user_pool = user_pool
        self._browser_client = browser_client
        self._domain = domain
        self._runtime = runtime
        self._langfuse = langfuse

        self.key = self._create_key()
        self.access_logs_bucket = self._create_access_logs_bucket()
        self.load_balancer, self.listener = self._create_load_balancer()
        self.distribution = self._create_distribution()
        self.cluster = self._create_cluster()
        self.service = self._create_service()
        self.callback_urls = self._register_callback_urls()
        self._create_outputs()
        self._acknowledge_findings()

    @property
    def _vpc_cidr(self) -> str:
        """The VPC's CIDR as a literal when this app creates the VPC (rules and scanners can read it)."""
        network = self.config.network
        return network.cidr if network.vpc_id is None else self._vpc.vpc_cidr_block

    @property
    def url(self) -> str:
        """The chat's public HTTPS address (also its Cognito callback and sign-out URL)."""
        return f"https://{self.distribution.distribution_domain_name}/"

    # --- steps -------------------------------------------------------------------------------------

    def _create_key(self) -> kms.Key:
        return self.create_data_key("LogsKey", "chat logs")

    def _create_access_logs_bucket(self) -> s3.Bucket:
        # ALB and CloudFront standard logs can only be delivered to SSE-S3 buckets; CloudFront needs ACLs.
        return s3.Bucket(
            self,
            "AccessLogs",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.OBJECT_WRITER,
            enforce_ssl=True,
            versioned=True,
            removal_policy=self.removal_policy,
            auto_delete_objects=not self.config.retain_data,
            lifecycle_rules=[
                s3.LifecycleRule(
                    expiration=cdk.Duration.days(self.config.frontend.log_retention_days),
                    noncurrent_version_expiration=cdk.Duration.days(1),
                )
            ],
        )

    def _create_load_balancer(self) -> tuple[elbv2.ApplicationLoadBalancer, elbv2.ApplicationListener]:
        security_group = ec2.SecurityGroup(
            self,
            "LoadBalancerSecurityGroup",
            vpc=self._vpc,
            description="Chat ALB: HTTP from the CloudFront VPC origin inside the VPC only",
            allow_all_outbound=False,
        )
        # CloudFront's VPC origin reaches the internal ALB through ENIs in the VPC's own subnets.
        security_group.add_ingress_rule(
            ec2.Peer.ipv4(self._vpc_cidr), ec2.Port.tcp(80), "CloudFront VPC origin"
        )
        balancer = elbv2.ApplicationLoadBalancer(
            self,
            "LoadBalancer",
            vpc=self._vpc,
            vpc_subnets=self._subnets,
            internet_facing=False,
            security_group=security_group,
            drop_invalid_header_fields=True,
            deletion_protection=self.config.is_prod,
            idle_timeout=cdk.Duration.seconds(300),  # Streamlit keeps a websocket open per browser tab
        )
        if not cdk.Token.is_unresolved(self.region):
            # ELB log delivery is granted per region (its account or service principal differs by region).
            balancer.log_access_logs(self.access_logs_bucket, prefix="alb")
        listener = balancer.add_listener("Http", port=80, protocol=elbv2.ApplicationProtocol.HTTP, open=False)
        return balancer, listener

    def _create_distribution(self) -> cloudfront.Distribution:
        origin = origins.VpcOrigin.with_application_load_balancer(
            self.load_balancer,
            protocol_policy=cloudfront.OriginProtocolPolicy.HTTP_ONLY,
            http_port=80,
            read_timeout=cdk.Duration.seconds(60),
            keepalive_timeout=cdk.Duration.seconds(60),
            vpc_origin_name=self.resource_name("chat-alb"),
        )
        return cloudfront.Distribution(
            self,
            "Distribution",
            comment=f"{self.config.prefix} support chat",
            default_behavior=cloudfront.BehaviorOptions(
                origin=origin,
                viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
                allowed_methods=cloudfront.AllowedMethods.ALLOW_ALL,
                cache_policy=cloudfront.CachePolicy.CACHING_DISABLED,
                # Streamlit needs every header (websocket upgrade, XSRF), cookie (ALB stickiness) and query.
                origin_request_policy=cloudfront.OriginRequestPolicy.ALL_VIEWER,
                compress=True,
            ),
            http_version=cloudfront.HttpVersion.HTTP2_AND_3,
            price_class=PRICE_CLASSES[self.config.frontend.price_class],
            enable_logging=True,
            log_bucket=self.access_logs_bucket,
            log_file_prefix="cloudfront/",
        )

    def _create_cluster(self) -> ecs.Cluster:
        frontend = self.config.frontend
        return ecs.Cluster(
            self,
            "Cluster",
            vpc=self._vpc,
            container_insights_v2=(
                ecs.ContainerInsights.ENABLED
                if frontend.container_insights
                else ecs.ContainerInsights.DISABLED
            ),
            enable_fargate_capacity_providers=frontend.fargate_spot,
        )

    def _create_service(self) -> ecs.FargateService:
        frontend = self.config.frontend
        task = ecs.FargateTaskDefinition(
            self,
            "Task",
            cpu=frontend.cpu,
            memory_limit_mib=frontend.memory_mib,
            runtime_platform=ecs.RuntimePlatform(
                cpu_architecture=ecs.CpuArchitecture.X86_64,
                operating_system_family=ecs.OperatingSystemFamily.LINUX,
            ),
        )
        self.log_group = self.create_log_group(
            "ChatLogs", retention_days=frontend.log_retention_days, key=self.key
        )
        environment, secrets = self._container_settings()
        self._grant_key_decrypt(task.obtain_execution_role())
        task.add_container(
            "chat",
            image=ecs.ContainerImage.from_asset(
                str(REPO_ROOT),
                file="frontend/Dockerfile",
                exclude=list(IMAGE_CONTEXT_EXCLUDES),
                ignore_mode=cdk.IgnoreMode.DOCKER,
                platform=ecr_assets.Platform.LINUX_AMD64,
            ),
            environment=environment,
            secrets=secrets,
            port_mappings=[ecs.PortMapping(container_port=CHAT_PORT)],
            logging=ecs.LogDriver.aws_logs(stream_prefix="chat", log_group=self.log_group),
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
        security_group = ec2.SecurityGroup(
            self,
            "ServiceSecurityGroup",
            vpc=self._vpc,
            description="Chat tasks: Streamlit port from the chat ALB; HTTPS out to Cognito, AgentCore, Langfuse",
            allow_all_outbound=False,
        )
        security_group.add_egress_rule(
            ec2.Peer.any_ipv4(), ec2.Port.tcp(443), "HTTPS to AWS APIs and Langfuse"
        )
        if self._langfuse is not None and self._langfuse.host.startswith("http://"):
            # Self-hosted Langfuse answers on its internal ALB over HTTP inside the VPC.
            security_group.add_egress_rule(
                ec2.Peer.ipv4(self._vpc_cidr), ec2.Port.tcp(80), "HTTP to the internal Langfuse ALB"
            )
        service = ecs.FargateService(
            self,
            "Service",
            cluster=self.cluster,
            task_definition=task,
            desired_count=frontend.desired_tasks,
            vpc_subnets=self._subnets,
            security_groups=[security_group],
            assign_public_ip=False,
            circuit_breaker=ecs.DeploymentCircuitBreaker(enable=True, rollback=True),
            min_healthy_percent=100,
            capacity_provider_strategies=(
                [ecs.CapacityProviderStrategy(capacity_provider="FARGATE_SPOT", weight=1)]
                if frontend.fargate_spot
                else None
            ),
            health_check_grace_period=cdk.Duration.seconds(60),
        )
        self.target_group = self.listener.add_targets(
            "Chat",
            port=CHAT_PORT,
            protocol=elbv2.ApplicationProtocol.HTTP,
            targets=[service],
            health_check=elbv2.HealthCheck(
                path=HEALTH_PATH, healthy_http_codes="200", interval=cdk.Duration.seconds(15)
            ),
            # A sign-in's PKCE verifier waits in the task that started it: keep each browser on one task.
            stickiness_cookie_duration=cdk.Duration.hours(8),
            deregistration_delay=cdk.Duration.seconds(30),
        )
        return service

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
        secrets: dict[str, ecs.Secret] = {}
        if self._langfuse is not None:
            environment["LANGFUSE_HOST"] = self._langfuse.host
            keys = self.import_secret(self._langfuse.keys_secret, "LangfuseKeys")
            secrets["LANGFUSE_PUBLIC_KEY"] = ecs.Secret.from_secrets_manager(keys, "public_key")
            secrets["LANGFUSE_SECRET_KEY"] = ecs.Secret.from_secrets_manager(keys, "secret_key")
        return environment, secrets

    def _grant_key_decrypt(self, role: iam.IRole) -> None:
        """kms:Decrypt on the Langfuse keys secret's key, only through Secrets Manager. The imported
        key cannot take a key-policy grant, so the ECS secret grant adds no KMS permission by itself."""
        if self._langfuse is None or self._langfuse.keys_secret.encryption_key is None:
            return
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["kms:Decrypt"],
                resources=[self._langfuse.keys_secret.encryption_key.key_arn],
                conditions={
                    "StringEquals": {"kms:ViaService": f"secretsmanager.{self.region}.amazonaws.com"}
                },
            )
        )

    def _register_callback_urls(self) -> cdk.CustomResource:
        """Add this distribution's URL to the browser client's callback and sign-out URLs."""
        log_group = self.create_log_group(
            "CallbackUrlsHandlerLogs", retention_days=self.config.frontend.log_retention_days, key=self.key
        )
        role = iam.Role(
            self,
            "CallbackUrlsHandlerRole",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="Adds the chat URL to the Cognito browser client (deploy time only)",
        )
        log_group.grant_write(role)
        handler = lambda_.Function(
            self,
            "CallbackUrlsHandler",
            role=role,
            description="Adds the chat's CloudFront URL to the Cognito browser client on deploy",
            runtime=lambda_.Runtime.PYTHON_3_14,
            handler="handler.on_event",
            code=lambda_.Code.from_asset(str(CALLBACK_HANDLER_DIR), exclude=["__pycache__", "*.pyc"]),
            timeout=cdk.Duration.seconds(60),
            memory_size=256,
            log_group=log_group,
        )
        handler.add_to_role_policy(
            iam.PolicyStatement(
                actions=["cognito-idp:DescribeUserPoolClient", "cognito-idp:UpdateUserPoolClient"],
                resources=[self._user_pool.user_pool_arn],
            )
        )
        provider = cr.Provider(
            self,
            "CallbackUrlsProvider",
            on_event_handler=handler,
            log_group=self.create_log_group(
                "CallbackUrlsProviderLogs",
                retention_days=self.config.frontend.log_retention_days,
                key=self.key,
            ),
        )
        self._callback_handler, self._callback_provider = handler, provider
        identity = self.config.identity
        return cdk.CustomResource(
            self,
            "CallbackUrls",
            service_token=provider.service_token,
            resource_type="Custom::CognitoClientUrls",
            properties={
                "UserPoolId": self._user_pool.user_pool_id,
                "ClientId": self._browser_client.user_pool_client_id,
                "CallbackUrls": [self.url],
                "LogoutUrls": [self.url],
                # Re-apply whenever the identity settings change: redeploying the identity stack's
                # client resets its URLs to the configured ones.
                "IdentityFingerprint": _fingerprint(identity.model_dump(mode="json")),
            },
        )

    def _create_outputs(self) -> None:
        cdk.CfnOutput(self, "ChatUrl", value=self.url, description="Open the support chat here")
        cdk.CfnOutput(self, "ChatLogGroup", value=self.log_group.log_group_name, description="Chat task logs")

    # --- compliance -------------------------------------------------------------------------------

    def _acknowledge_findings(self) -> None:
        acknowledge_cdk_helpers(self)
        acknowledge_all(self._callback_provider, CDK_HELPER_ACKNOWLEDGEMENTS)
        handler_id = self.get_logical_id(_cfn(self._callback_handler))
        acknowledge(
            self._callback_provider,
            f"AwsSolutions-IAM5[Resource::<{handler_id}.Arn>:*]",
            "CDK's provider framework may invoke any version of our deploy-time callback-URL function; the "
            "grant names that one function.",
        )
        acknowledge_all(
            self._callback_handler,
            {
                "NIST.800.53.R5-LambdaInsideVPC": "The function only calls the Cognito control-plane API during "
                "deployments and handles no user data; a VPC would add endpoint cost and protect nothing.",
                "NIST.800.53.R5-LambdaDLQ": "Invoked synchronously by CloudFormation's provider framework, which "
                "reports every failure to the deployment; a dead-letter queue only receives async invocations.",
                "NIST.800.53.R5-LambdaConcurrency": "Runs once per deployment of this stack; a reserved-concurrency "
                "limit would only risk failing deployments.",
            },
        )
        acknowledge_all(
            self.access_logs_bucket,
            {
                "NIST.800.53.R5-S3DefaultEncryptionKMS": "ALB and CloudFront standard logs can only be delivered "
                "to buckets encrypted with SSE-S3, not SSE-KMS.",
                "NIST.800.53.R5-S3BucketReplicationEnabled": "Access logs are diagnostics kept for a bounded "
                "retention; cross-region replication would double their cost for no recovery need.",
                "AwsSolutions-S1": "This bucket is the access-log destination itself; logging it to another bucket "
                "would only move the question one bucket further.",
                "NIST.800.53.R5-S3BucketLoggingEnabled": "This bucket is the access-log destination itself; "
                "logging it to another bucket would only move the question one bucket further.",
            },
        )
        if cdk.Token.is_unresolved(self.region):
            acknowledge_all(
                self.load_balancer,
                {
                    finding: "ALB access logs need a concrete region (ELB's log-delivery principal differs by "
                    "region); set environment.region in the config to enable them. CloudFront logs every "
                    "request to this ALB in the meantime."
                    for finding in ("AwsSolutions-ELB2", "NIST.800.53.R5-ELBLoggingEnabled")
                },
            )
        acknowledge_all(
            self.load_balancer,
            {
                "NIST.800.53.R5-ALBHttpToHttpsRedirection": "Viewers reach the chat only through CloudFront, "
                "which redirects HTTP to HTTPS; the internal ALB has no public address and no certificate "
                "(there is no custom domain), and CloudFront's VPC origin traffic stays on the AWS network.",
                "NIST.800.53.R5-ALBWAFEnabled": "The ALB is internal and reachable only from CloudFront's VPC "
                "origin; a WAF belongs on the distribution (optional, see docs/frontend.md).",
                "NIST.800.53.R5-ELBDeletionProtectionEnabled": "Deletion protection is on in the prod profile; "
                "the dev profile must destroy cleanly.",
            },
        )
        acknowledge_all(
            self.distribution,
            {
                "AwsSolutions-CFR1": "The chat serves a company's own staff wherever they are; sign-in through "
                "Cognito, not geography, decides who may use it.",
                "AwsSolutions-CFR2": "A WAF web ACL for CloudFront must live in us-east-1 and has a monthly cost; "
                "it is an optional per-account hardening step documented in docs/frontend.md.",
                "AwsSolutions-CFR4": "Without a custom domain the distribution uses CloudFront's default "
                "certificate, whose viewer TLS policy CloudFront fixes; a custom domain can raise it to TLS 1.2.",
            },
        )
        acknowledge(
            self.listener,
            "NIST.800.53.R5-ELBv2ACMCertificateRequired",
            "Without a custom domain there is no ACM certificate for the internal ALB; viewers get TLS from "
            "CloudFront, and CloudFront's VPC origin reaches the ALB over the AWS network only.",
        )
        if not self.config.frontend.container_insights:
            acknowledge(
                self.cluster,
                "AwsSolutions-ECS4",
                "Container Insights follows frontend.container_insights (on in prod, off in dev to save its "
                "per-metric cost); the operations dashboard uses the free AWS/ECS service metrics.",
            )
        task = self.service.task_definition
        acknowledge(
            task.obtain_execution_role(),
            "AwsSolutions-IAM5[Resource::*]",
            "ecr:GetAuthorizationToken, which ECS needs to pull the chat image, has no resource-level "
            "permissions; every other grant of the execution role names its repository, log group or secret.",
        )
        acknowledge(
            task,
            "AwsSolutions-ECS2",
            "The environment holds only non-secret settings (runtime ARN, Cognito domain and public client id, "
            "URLs); the Langfuse keys are ECS secrets read from Secrets Manager at task start.",
        )


def _cfn(construct: Construct) -> cdk.CfnElement:
    child = construct.node.default_child
    assert isinstance(child, cdk.CfnElement)
    return child


def _fingerprint(values: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()[:16]

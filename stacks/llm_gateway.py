"""LLM gateway: LiteLLM on ECS Fargate behind an ALB, with PostgreSQL (Aurora Serverless v2 in prod, one
small RDS instance in dev), optional Valkey, and a bootstrap of teams and virtual keys on every deploy.

The LiteLLM `config.yaml` is generated at synth from the model catalog (`llm_gateway.config`) and shipped
as an S3 asset the proxy loads natively (LITELLM_CONFIG_BUCKET_NAME/OBJECT_KEY). It holds no secret and no
token: everything deployment-specific arrives as environment (`os.environ/NAME` in the YAML), secrets as
ECS `secrets` from Secrets Manager values generated at deploy time.

External mode (`components.llm_gateway: external`) creates no stack: `external_endpoint()` hands
consumers the configured URL and the agent and evaluation key secrets imported by name (a stack without
resources is not valid CloudFormation).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_bedrock as bedrock
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_rds as rds
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_servicediscovery as servicediscovery
from aws_cdk import aws_wafv2 as wafv2
from aws_cdk import custom_resources as cr
from constructs import Construct

from config import AppConfig, ConfigError
from llm_gateway.bootstrap import plan_from_config
from llm_gateway.config import (
    ENV_GUARDRAIL_ID,
    ENV_GUARDRAIL_VERSION,
    ENV_LANGFUSE_HOST,
    ENV_LANGFUSE_PUBLIC_KEY,
    ENV_LANGFUSE_SECRET_KEY,
    ENV_MASTER_KEY,
    ENV_REDIS_HOST,
    ENV_REDIS_PASSWORD,
    ENV_REDIS_PORT,
    ENV_SALT_KEY,
    deployed_config,
    render_yaml,
)
from stacks.base import FoundationStack, retention
from stacks.compliance import (
    CDK_HELPER_ACKNOWLEDGEMENTS,
    acknowledge,
    acknowledge_all,
    acknowledge_cdk_helpers,
)
from stacks.constructs.cache import CacheOptions, ValkeyCache
from stacks.constructs.database import ClusterOptions, DatabaseOptions, InstanceOptions, PostgresDatabase
from stacks.constructs.fargate_service import (
    ContainerSpec,
    FargateService,
    LoadBalancer,
    ServiceOptions,
    TaskSize,
    fargate_cluster,
    http_health_check,
)
from stacks.constructs.log_bucket import LogBucket
from stacks.constructs.packaging import Bundle, generated_file_asset, lambda_code
from stacks.constructs.private_origin_distribution import (
    ORIGIN_PORT,
    PriceClassName,
    PrivateOriginDistribution,
)
from stacks.constructs.secret import (
    GeneratedSecret,
    acknowledge_no_rotation,
    alphanumeric,
    login_password,
)
from stacks.contracts import LangfuseConnection, LlmGatewayEndpoint
from stacks.guardrails import grant_apply_guardrail, publish_in

CONTAINER_PORT = 4000
SERVICE_DNS_NAME = "llm-gateway"  # the Cloud Map name of the tasks when llm_gateway.load_balancer is off
DATABASE_PORT = 5433  # not the engine default (AwsSolutions-RDS11)
REDIS_PORT = 6380  # not the engine default (AwsSolutions-AEC5)
DATABASE_NAME = "litellm"
HEALTH_PATH = "/health/liveliness"
BOOTSTRAP_HANDLER = "functions/gateway_bootstrap/handler.py"  # repository paths, packaged as-is
BOOTSTRAP_MODULE = "llm_gateway/bootstrap.py"
# Valkey size: fixed until llm_gateway has cache_node_type / cache_replicas keys (config/llm_gateway.py).
# Cross-region inference profile prefixes: such a model id routes to the foundation model in several regions.
INFERENCE_PROFILE_PREFIXES = ("us.", "eu.", "apac.", "us-gov.", "jp.", "au.", "ca.", "global.")
CPU_TARGET_PERCENT = 60
REQUESTS_PER_TASK_PER_MINUTE = 600
EXTERNAL_KEYS = ("external_url", "external_agent_key_secret_name", "external_eval_key_secret_name")
# The platform console (llm_gateway.admin_ui, docs/platform-console.md): LiteLLM's admin UI behind its own
# CloudFront distribution, whose viewer-request function admits only the UI and its management paths.
CONSOLE_FUNCTION_SOURCE = Path(__file__).with_name("assets") / "console_paths.js"
CONSOLE_USERNAME = "admin"
CONSOLE_PRICE_CLASS: PriceClassName = "100"  # an operators' tool: the cheapest edge set is enough
# A CloudFront web ACL (scope CLOUDFRONT) can only be created in us-east-1:
# https://docs.aws.amazon.com/waf/latest/developerguide/how-aws-waf-works-resources.html
CLOUDFRONT_WAF_REGION = "us-east-1"
CONSOLE_RATE_LIMIT_PER_5_MIN = 1000  # per client IP; the UI makes ~40 requests per page view
PUBLIC_RATE_LIMIT_PER_5_MIN = 2000  # per client IP, in front of a public gateway's model API


def external_endpoint(scope: Construct, config: AppConfig) -> LlmGatewayEndpoint:
    """The endpoint of an external gateway (`components.llm_gateway: external`): the configured URL and
    the agent's and evaluation's key secrets imported by name into `scope` (an existing stack; this
    creates no resource).

    Raises:
        ConfigError: when a `llm_gateway.external_*` key is missing, or the mode is `self_hosted`.
    """
    if config.components.llm_gateway != "external":
        raise ConfigError("components.llm_gateway is 'self_hosted': use LlmGatewayStack(...).endpoint")
    gateway = config.llm_gateway
    missing = [f"llm_gateway.{key}" for key in EXTERNAL_KEYS if getattr(gateway, key) is None]
    if missing:
        raise ConfigError(f"config keys {missing} are required when components.llm_gateway is 'external'")
    assert (
        gateway.external_url
        and gateway.external_agent_key_secret_name
        and gateway.external_eval_key_secret_name
    )
    return LlmGatewayEndpoint(
        url=gateway.external_url.rstrip("/"),
        agent_key_secret=secretsmanager.Secret.from_secret_name_v2(
            scope, "ExternalLlmGatewayAgentKey", gateway.external_agent_key_secret_name
        ),
        eval_key_secret=secretsmanager.Secret.from_secret_name_v2(
            scope, "ExternalLlmGatewayEvalKey", gateway.external_eval_key_secret_name
        ),
        security_group=None,
    )


def check_console_config(config: AppConfig) -> None:
    """Refuse the console (`llm_gateway.admin_ui`) where its edge cannot be built as designed.

    Raises:
        ConfigError: with a certificate or a public gateway (the VPC origin reaches an internal ALB on
            HTTP port 80 only), or in prod in a region other than us-east-1 (its CloudFront web ACL must be
            created there), each naming the fix.
    """
    gateway = config.llm_gateway
    if not gateway.admin_ui:
        return
    if gateway.public or gateway.certificate_arn is not None:
        raise ConfigError(
            "llm_gateway.admin_ui: the console's CloudFront VPC origin reaches the internal load balancer "
            f"over HTTP port {ORIGIN_PORT}, which a public or HTTPS gateway (llm_gateway.public / "
            "certificate_arn) does not have; set llm_gateway.admin_ui: false"
        )
    region = config.environment.region
    if config.is_prod and region is not None and region != CLOUDFRONT_WAF_REGION:
        raise ConfigError(
            f"llm_gateway.admin_ui: in prod the console gets a CloudFront web ACL, which AWS WAF creates only "
            f"in {CLOUDFRONT_WAF_REGION} (environment.region is {region}); deploy in {CLOUDFRONT_WAF_REGION} "
            "or set llm_gateway.admin_ui: false (docs/platform-console.md)"
        )


class LlmGatewayStack(FoundationStack):
    """The self-hosted OpenAI-compatible gateway every model call goes through."""

    component = "llm-gateway"
    description_text = "LLM gateway (LiteLLM on ECS, PostgreSQL, keys and budgets)"

    def __init__(
        self,
        scope: Construct,
        *,
        config: AppConfig,
        vpc: ec2.IVpc,
        guardrail: bedrock.CfnGuardrail,
        guardrail_version: bedrock.CfnGuardrailVersion,
        langfuse: LangfuseConnection | None,
        **kwargs: Any,
    ) -> None:
        if config.components.llm_gateway != "self_hosted":
            raise ConfigError(
                f"components.llm_gateway is {config.components.llm_gateway!r}: LlmGatewayStack is only for "
                "'self_hosted' (use external_endpoint for 'external')"
            )
        check_console_config(config)
        super().__init__(scope, config=config, **kwargs)
        self._imported_secrets: list[secretsmanager.ISecret] = []
        self.vpc = vpc
        self.guardrail = guardrail
        # Published here, not imported: the guardrails stack's version export could never change otherwise.
        self.guardrail_version = publish_in(self, guardrail, guardrail_version)
        self.langfuse = langfuse
        self.key = self.create_data_key("GatewayKey", "LLM gateway (logs, secrets, database, cache)")
        self.master_key_secret, self.salt_key_secret = self._create_gateway_secrets()
        self.agent_key_secret, self.eval_key_secret = self._create_virtual_key_secrets()
        self.console_login_secret = (
            self._create_console_login_secret() if config.llm_gateway.admin_ui else None
        )
        self.db = self._create_database()
        self.database = self.db.database
        self.cache = self._create_cache() if config.llm_gateway.cache else None
        self.config_hash = hashlib.sha256(self._config_text.encode()).hexdigest()[:16]
        self.config_asset = generated_file_asset(
            self, "GatewayConfig", name="config.yaml", text=self._config_text
        )
        self.entry: LoadBalancer | None = None
        self.namespace: servicediscovery.PrivateDnsNamespace | None = None
        self.alb_security_group: ec2.SecurityGroup | None = None
        # The console's CloudFront VPC origin needs a load balancer: admin_ui brings the internal ALB even
        # where llm_gateway.load_balancer is off (dev), and the model clients then use it too.
        if config.llm_gateway.load_balancer or config.llm_gateway.admin_ui:
            self.entry = self._create_load_balancer()
        else:
            self.namespace = servicediscovery.PrivateDnsNamespace(
                self, "Namespace", name=f"{config.prefix}-llm.internal", vpc=vpc
            )
        self.load_balancer = self.entry.load_balancer if self.entry else None
        self.listener = self.entry.listener if self.entry else None
        self.console: cloudfront.Distribution | None = None
        self.console_function: cloudfront.Function | None = None
        self.console_web_acl: wafv2.CfnWebACL | None = None
        if config.llm_gateway.admin_ui:
            self.console = self._create_console()
        self.gateway = self._create_service()
        self.service = self.gateway.service
        self.target_group = self._register_targets()
        self.scaling = self.gateway.autoscale(
            min_tasks=config.llm_gateway.min_tasks,
            max_tasks=config.llm_gateway.max_tasks,
            cpu_percent=CPU_TARGET_PERCENT,
            requests_per_task_per_minute=REQUESTS_PER_TASK_PER_MINUTE,
            target_group=self.target_group,  # request counts come from the load balancer
        )
        self._grant_model_access()
        self.bootstrap = self._create_bootstrap()
        self.endpoint = LlmGatewayEndpoint(
            url=self.url,
            agent_key_secret=self.agent_key_secret,
            eval_key_secret=self.eval_key_secret,
            # What a client's security group must reach: the load balancer, or the tasks themselves.
            security_group=self.alb_security_group or self.service_security_group,
        )
        self._create_outputs()
        self._acknowledge_findings()

    # --- secrets ------------------------------------------------------------------------------------

    def _generated_secret(
        self, construct_id: str, description: str, length: int, rotation_reason: str
    ) -> secretsmanager.Secret:
        return GeneratedSecret(
            self,
            construct_id,
            description=description,
            key=self.key,
            removal_policy=self.removal_policy,
            rules=alphanumeric(length),
            rotation_reason=rotation_reason,
        ).secret

    def _create_gateway_secrets(self) -> tuple[secretsmanager.Secret, secretsmanager.Secret]:
        # LiteLLM expects keys to start with "sk-": the master key secret is "sk-" + a generated body.
        # CloudFormation resolves the dynamic reference when it writes the secret: deploy time, no plaintext.
        body = self._generated_secret(
            "MasterKeyBody",
            "Random body of the LiteLLM master key",
            48,
            "The random body of the master key; it changes only together with the master key (see there).",
        )
        master = secretsmanager.Secret(
            self,
            "MasterKey",
            description="LiteLLM master key (admin API; bootstrap only)",
            encryption_key=self.key,
            removal_policy=self.removal_policy,
            secret_string_value=cdk.SecretValue.unsafe_plain_text(
                cdk.Fn.join("", ["sk-", body.secret_value.unsafe_unwrap()])
            ),
        )
        acknowledge_no_rotation(
            None,
            master,
            "The master key is read by the tasks at start and by the bootstrap; rotating it is a planned "
            "operation (put a new value, then force a new deployment), documented in docs/llm-gateway.md, "
            "not a scheduled rotation that would lock running tasks out.",
        )
        self.master_key_body_secret = body
        salt = self._generated_secret(
            "SaltKey",
            "LiteLLM salt key: encrypts credentials stored in the database; never change it",
            48,
            "The salt key encrypts credentials LiteLLM stores in its database; changing it would make them "
            "unreadable, so it must never rotate.",
        )
        return master, salt

    def _create_virtual_key_secrets(self) -> tuple[secretsmanager.Secret, secretsmanager.Secret]:
        """Created holding no key; the bootstrap writes `{"api_key", "key_alias"}` into them."""

        def empty(construct_id: str, consumer: str) -> secretsmanager.Secret:
            secret = secretsmanager.Secret(
                self,
                construct_id,
                description=f"LiteLLM virtual key of the {consumer} (written by the gateway bootstrap)",
                encryption_key=self.key,
                removal_policy=self.removal_policy,
                secret_object_value={"api_key": cdk.SecretValue.unsafe_plain_text("")},
            )
            acknowledge_no_rotation(
                None,
                secret,
                "Holds a LiteLLM virtual key managed by the gateway bootstrap (budget, rpm); rotation means "
                "regenerating the key in LiteLLM, not a Secrets Manager rotation function.",
            )
            return secret

        return empty("AgentKeySecret", "agent"), empty("EvalKeySecret", "evaluation")

    def _create_console_login_secret(self) -> secretsmanager.Secret:
        """The console's admin login, `{"username": "admin", "password": <generated>}`: the tasks read it
        as UI_USERNAME / UI_PASSWORD (litellm/proxy/auth/login_utils.py `get_ui_credentials` at 1.102.4)."""
        return GeneratedSecret(
            self,
            "ConsoleLogin",
            description=f"{self.config.prefix} LiteLLM console (admin UI) login: username and password",
            key=self.key,
            removal_policy=self.removal_policy,
            rules=login_password(24),
            rotation_reason="The tasks read the console password at start; change it by putting a new value "
            "and forcing a new deployment (docs/platform-console.md), not with a rotation function that would "
            "leave running tasks on the old one.",
            template={"username": CONSOLE_USERNAME},
            generate_key="password",
        ).secret

    # --- data stores --------------------------------------------------------------------------------

    def _data_subnets(self) -> ec2.SubnetSelection:
        return ec2.SubnetSelection(subnet_group_name="data")

    def _service_subnets(self) -> ec2.SubnetSelection:
        return ec2.SubnetSelection(subnet_group_name="services")

    def _create_database(self) -> PostgresDatabase:
        """Aurora Serverless v2 (prod: a reader in another AZ), or one single-AZ PostgreSQL instance (dev:
        ~$14/month idle instead of Aurora's 0.5-ACU floor)."""
        gateway = self.config.llm_gateway
        engine: InstanceOptions | ClusterOptions
        if gateway.db_engine == "postgres_instance":
            engine = InstanceOptions(
                instance_class=gateway.db_instance_class,
                storage_gb=gateway.db_storage_gb,
                max_storage_gb=gateway.db_max_storage_gb,
            )
        else:
            # 0 ACU (auto-pause) needs Aurora PostgreSQL 16.3+; the shared version supports it.
            engine = ClusterOptions(
                min_acu=gateway.db_min_acu,
                max_acu=gateway.db_max_acu,
                reader_ids=("Reader",) if self.config.is_prod else (),
                auto_pause_minutes=10,
            )
        return PostgresDatabase(
            self,
            "Database",
            options=DatabaseOptions(
                engine=engine,
                identifier=self.resource_name("llm-gateway-db"),
                database_name=DATABASE_NAME,
                username="litellm",
                log_retention_days=gateway.log_retention_days,
                backup_days=14 if self.config.is_prod else 1,
                deletion_protection=self.config.is_prod,
                purpose="LiteLLM PostgreSQL",
                rotation_reason="The tasks read the database password at start; a scheduled rotation would "
                "break running tasks until a redeploy. The database is reachable only from the gateway tasks' "
                "security group.",
                port=DATABASE_PORT,
            ),
            vpc=self.vpc,
            subnets=self._data_subnets(),
            key=self.key,
            removal_policy=self.removal_policy,
        )

    def _create_cache(self) -> ValkeyCache:
        """Valkey with TLS and AUTH, one primary and one replica across AZs: shared rate-limit counters."""
        self.cache_security_group = ec2.SecurityGroup(
            self,
            "CacheSecurityGroup",
            vpc=self.vpc,
            description="Valkey for the LLM gateway",
            allow_all_outbound=False,
        )
        cache = ValkeyCache(
            self,
            "Cache",
            options=CacheOptions(
                description="LLM gateway router state (rate limits across tasks)",
                node_type=self.config.llm_gateway.cache_node_type,
                replicas=self.config.llm_gateway.cache_replicas,
                port=REDIS_PORT,
                auth_rules=alphanumeric(64),
                auth_description="Valkey AUTH token of the LLM gateway",
                auth_rotation_reason="The Valkey AUTH token is set on the replication group by "
                "CloudFormation; rotating it needs a coordinated update of the group and the tasks, done as "
                "a deployment.",
                backup_reason="The cache holds only per-minute rate-limit counters and router state that "
                "rebuild themselves; keys, teams and spend live in PostgreSQL, which is backed up.",
                snapshot_retention_days=0,  # ephemeral counters: nothing worth restoring
                subnet_description="LLM gateway cache subnets",
            ),
            subnet_ids=self.vpc.select_subnets(subnet_group_name="data").subnet_ids,
            security_group=self.cache_security_group,
            key=self.key,
            removal_policy=self.removal_policy,
        )
        self.cache_auth_secret = cache.auth_token
        return cache

    @property
    def database_endpoint(self) -> rds.Endpoint:
        return self.db.endpoint

    @property
    def _config_text(self) -> str:
        """The generated config.yaml (an S3 asset, content-addressed: a change rolls the service)."""
        return render_yaml(deployed_config(self.config))

    # --- load balancer ------------------------------------------------------------------------------

    def _create_load_balancer(self) -> LoadBalancer:
        gateway = self.config.llm_gateway
        security_group = ec2.SecurityGroup(
            self,
            "LoadBalancerSecurityGroup",
            vpc=self.vpc,
            description="LLM gateway load balancer",
            allow_all_outbound=False,
        )
        port = 443 if gateway.certificate_arn else 80
        if not gateway.public:
            cidr = self.vpc_cidr(self.vpc)
            security_group.add_ingress_rule(
                ec2.Peer.ipv4(cidr), ec2.Port.tcp(port), "Gateway clients in the VPC"
            )
        else:
            security_group.add_ingress_rule(
                ec2.Peer.any_ipv4(), ec2.Port.tcp(port), "Public gateway behind WAF"
            )
        self.alb_security_group = security_group
        # Access logs need the region's ELB log-delivery principal, which an environment-agnostic synth
        # cannot know; LiteLLM's spend logs record every request (key, team, model, status, cost) anyway.
        access_logs = (
            LogBucket(
                self, "AccessLogs", expire_days=gateway.log_retention_days, retain=self.config.retain_data
            ).bucket
            if not cdk.Token.is_unresolved(self.region)
            else None
        )
        entry = LoadBalancer(
            self,
            "LoadBalancer",
            vpc=self.vpc,
            subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PUBLIC)
            if gateway.public
            else self._service_subnets(),
            security_group=security_group,
            internet_facing=gateway.public,
            idle_timeout_seconds=max(60, self.config.models.request_timeout_seconds + 30),
            deletion_protection=self.config.is_prod,
            access_logs=access_logs,
            certificate_arn=gateway.certificate_arn,
            plain_http_reason="Internal load balancer without a certificate (llm_gateway.certificate_arn "
            "unset): plain HTTP stays inside the VPC. Setting a certificate switches the listener to HTTPS only.",
            no_waf_reason=None
            if gateway.public
            else "The load balancer is internal: reachable only from inside the VPC, by callers holding a "
            "virtual key. A public gateway (llm_gateway.public) gets a WAF web ACL.",
        )
        if gateway.public:
            self._create_waf(entry.load_balancer)
        return entry

    def _create_waf(self, load_balancer: elbv2.ApplicationLoadBalancer) -> wafv2.CfnWebACL:
        acl = self._create_web_acl(
            "",
            scope="REGIONAL",
            metric_name="llm-gateway",
            rate_limit_per_5_min=PUBLIC_RATE_LIMIT_PER_5_MIN,
            log_group_suffix="llm-gateway",
        )
        wafv2.CfnWebACLAssociation(
            self, "WebAclAssociation", resource_arn=load_balancer.load_balancer_arn, web_acl_arn=acl.attr_arn
        )
        acknowledge(
            load_balancer.connections.security_groups[0],
            "AwsSolutions-EC23",
            "llm_gateway.public is set: the gateway is meant to be reached from the internet, over HTTPS only, "
            "behind a WAF web ACL (managed rule sets and a per-IP rate limit), by callers holding a virtual key.",
        )
        return acl

    # --- platform console: CloudFront -> VPC origin -> the internal ALB, UI paths only ---------------

    def _create_console(self) -> cloudfront.Distribution:
        assert self.load_balancer is not None
        self.console_function = cloudfront.Function(
            self,
            "ConsolePaths",
            comment="LiteLLM console: only the admin UI and its management paths reach the gateway",
            code=cloudfront.FunctionCode.from_file(file_path=str(CONSOLE_FUNCTION_SOURCE)),
            runtime=cloudfront.FunctionRuntime.JS_2_0,
        )
        prod = self.config.is_prod
        distribution = PrivateOriginDistribution(
            self,
            "Console",
            load_balancer=self.load_balancer,
            vpc_cidr=self.vpc_cidr(self.vpc),
            # LiteLLM builds its links from PROXY_BASE_URL (the console URL); the origin sees its own name.
            forward_host_header=False,
            price_class=CONSOLE_PRICE_CLASS,
            comment=f"{self.config.prefix} LiteLLM console",
            origin_rule_description="CloudFront VPC origin of the console (inside the VPC)",
            no_geo_restriction_reason="The console is an operators' tool behind LiteLLM's own login; no "
            "country-level restriction is required.",
            no_waf_reason="Outside prod the console has no WAF web ACL (a fixed monthly cost): the edge "
            "function admits only the UI and its management paths, every management path requires LiteLLM's "
            "login or a key, and prod attaches a web ACL with managed rules and a per-IP rate limit.",
            no_access_logs_reason="Requests are logged by LiteLLM (spend logs and the UI's audit of admin "
            "actions) and, where the region is set, by the internal ALB's access logs.",
        ).distribution
        self._associate_console_function(distribution, self.console_function)
        if prod:
            self.console_web_acl = self._create_console_waf()
            distribution.attach_web_acl_id(self.console_web_acl.attr_arn)
        return distribution

    @staticmethod
    def _associate_console_function(
        distribution: cloudfront.Distribution, function: cloudfront.Function
    ) -> None:
        """The path filter runs on every viewer request of the default (only) behavior.

        PrivateOriginDistribution takes no function associations, so they are set on its L1
        (DistributionConfig.DefaultCacheBehavior.FunctionAssociations:
        https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-properties-cloudfront-distribution-functionassociation.html).
        """
        cfn = distribution.node.default_child
        assert isinstance(cfn, cloudfront.CfnDistribution)
        cfn.add_property_override(
            "DistributionConfig.DefaultCacheBehavior.FunctionAssociations",
            [{"EventType": "viewer-request", "FunctionARN": function.function_arn}],
        )

    def _create_console_waf(self) -> wafv2.CfnWebACL:
        """Prod: AWS managed rules and a per-IP rate limit in front of the console's login and API."""
        return self._create_web_acl(
            "Console",
            scope="CLOUDFRONT",  # created in us-east-1 only (check_console_config)
            metric_name="llm-console",
            rate_limit_per_5_min=CONSOLE_RATE_LIMIT_PER_5_MIN,
            log_group_suffix="llm-console",
        )

    def _create_web_acl(
        self, prefix: str, *, scope: str, metric_name: str, rate_limit_per_5_min: int, log_group_suffix: str
    ) -> wafv2.CfnWebACL:
        """A web ACL (`<prefix>WebAcl`) with the AWS common and known-bad-inputs rule sets and a per-IP rate
        limit, logging to `aws-waf-logs-<config prefix>-<log_group_suffix>`; rule metrics are named after the
        rules, prefixed with the lower-case `prefix` (the public gateway's have none)."""
        metric_prefix = f"{prefix.lower()}-" if prefix else ""

        def visibility(name: str) -> wafv2.CfnWebACL.VisibilityConfigProperty:
            return wafv2.CfnWebACL.VisibilityConfigProperty(
                cloud_watch_metrics_enabled=True, metric_name=name, sampled_requests_enabled=True
            )

        def managed(name: str, priority: int) -> wafv2.CfnWebACL.RuleProperty:
            return wafv2.CfnWebACL.RuleProperty(
                name=name,
                priority=priority,
                override_action=wafv2.CfnWebACL.OverrideActionProperty(none={}),
                statement=wafv2.CfnWebACL.StatementProperty(
                    managed_rule_group_statement=wafv2.CfnWebACL.ManagedRuleGroupStatementProperty(
                        vendor_name="AWS", name=name
                    )
                ),
                visibility_config=visibility(f"{metric_prefix}{name}"),
            )

        acl = wafv2.CfnWebACL(
            self,
            f"{prefix}WebAcl",
            scope=scope,
            default_action=wafv2.CfnWebACL.DefaultActionProperty(allow={}),
            visibility_config=visibility(metric_name),
            rules=[
                managed("AWSManagedRulesCommonRuleSet", 1),
                managed("AWSManagedRulesKnownBadInputsRuleSet", 2),
                wafv2.CfnWebACL.RuleProperty(
                    name="RateLimitPerIp",
                    priority=3,
                    action=wafv2.CfnWebACL.RuleActionProperty(block={}),
                    statement=wafv2.CfnWebACL.StatementProperty(
                        rate_based_statement=wafv2.CfnWebACL.RateBasedStatementProperty(
                            limit=rate_limit_per_5_min, aggregate_key_type="IP"
                        )
                    ),
                    visibility_config=visibility(f"{metric_prefix}rate-limit"),
                ),
            ],
        )
        # WAF logs go to a log group whose name starts with aws-waf-logs-, in the web ACL's region (a
        # CLOUDFRONT web ACL's is us-east-1): https://docs.aws.amazon.com/waf/latest/developerguide/logging-cw-logs.html
        log_group_name = f"aws-waf-logs-{self.resource_name(log_group_suffix)}"
        waf_logs = logs.LogGroup(
            self,
            f"{prefix}WafLogs",
            log_group_name=log_group_name,
            retention=retention(self.config.llm_gateway.log_retention_days),
            encryption_key=self.key,
            removal_policy=self.removal_policy,
        )
        wafv2.CfnLoggingConfiguration(
            self,
            f"{prefix}WafLogging",
            resource_arn=acl.attr_arn,
            # WAF wants the log group ARN without CloudWatch's trailing ":*".
            log_destination_configs=[
                f"arn:{self.partition}:logs:{self.region}:{self.account}:log-group:{log_group_name}"
            ],
        ).node.add_dependency(waf_logs)
        return acl

    @property
    def console_url(self) -> str | None:
        """The console's HTTPS URL (the UI is under /ui/), None without llm_gateway.admin_ui."""
        return f"https://{self.console.distribution_domain_name}" if self.console is not None else None

    @property
    def url(self) -> str:
        """Base URL of the gateway (no /v1)."""
        gateway = self.config.llm_gateway
        if gateway.certificate_arn:
            return f"https://{gateway.hostname}"  # the name the certificate covers (validated with it)
        if self.load_balancer is None:
            assert self.namespace is not None
            return f"http://{SERVICE_DNS_NAME}.{self.namespace.namespace_name}:{CONTAINER_PORT}"
        return f"http://{self.load_balancer.load_balancer_dns_name}"

    # --- service ------------------------------------------------------------------------------------

    def _create_service(self) -> FargateService:
        gateway = self.config.llm_gateway
        self.cluster = fargate_cluster(
            self,
            "Cluster",
            vpc=self.vpc,
            capacity_providers=gateway.fargate_spot,
            container_insights=gateway.container_insights,
            insights_setting="llm_gateway.container_insights",
        )
        load_balanced = self.listener is not None
        self.service_security_group = ec2.SecurityGroup(
            self,
            "ServiceSecurityGroup",
            vpc=self.vpc,
            description="LiteLLM tasks: from the load balancer; out to Bedrock, database, cache"
            if load_balanced
            else "LiteLLM tasks: from clients in the VPC; out to Bedrock, database, cache",
            allow_all_outbound=True,
        )
        if not load_balanced:
            # The same clients the internal load balancer admits: the VPC, on the gateway port.
            cidr = self.vpc_cidr(self.vpc)
            self.service_security_group.add_ingress_rule(
                ec2.Peer.ipv4(cidr), ec2.Port.tcp(CONTAINER_PORT), "Gateway clients in the VPC"
            )
        container = ContainerSpec(
            name="litellm",
            image=ecs.ContainerImage.from_registry(gateway.image),
            # The image's entrypoint runs `litellm "$@"`; the config comes from S3 (environment below).
            command=(
                "--port",
                str(CONTAINER_PORT),
                "--num_workers",
                str(gateway.workers),
                # Recycle each worker after this many requests so slow memory growth cannot take a task down.
                "--max_requests_before_restart",
                str(gateway.max_requests_before_restart),
                # ... at staggered counts, so the workers of a task never restart together.
                "--max_requests_before_restart_jitter",
                str(max(1, gateway.max_requests_before_restart // 10)),
            ),
            environment=self._container_environment(),
            secrets=self._container_secrets(),
            port_mappings=(ecs.PortMapping(container_port=CONTAINER_PORT),),
            readonly_root_filesystem=False,  # LiteLLM writes its Prisma client and UI build at start-up
            stop_timeout=cdk.Duration.seconds(30),
            # Without a load balancer the container's own health decides which tasks Cloud Map serves
            # (ECS reports it to Cloud Map). The image is Python: no curl or wget needed.
            health_check=None
            if load_balanced
            else ecs.HealthCheck(
                command=[
                    "CMD-SHELL",
                    'python3 -c "import urllib.request; urllib.request.urlopen('
                    f"'http://127.0.0.1:{CONTAINER_PORT}{HEALTH_PATH}', timeout=5)\" || exit 1",
                ],
                interval=cdk.Duration.seconds(20),
                timeout=cdk.Duration.seconds(10),
                retries=3,
                start_period=cdk.Duration.seconds(120),
            ),
        )
        service = FargateService(
            self,
            "Service",
            task_id="Task",
            log_group_id="GatewayLogs",
            cluster=self.cluster,
            size=TaskSize(
                cpu=gateway.cpu, memory_mib=gateway.memory_mib, arm64=gateway.architecture == "arm64"
            ),
            container=container,
            options=ServiceOptions(
                desired_count=gateway.min_tasks,
                # Spot in dev (an interrupted task is replaced within minutes; clients retry); on-demand
                # (the plain Fargate launch type) otherwise.
                capacity_provider="FARGATE_SPOT" if gateway.fargate_spot else None,
                # ECS accepts a grace period only for a service behind a load balancer.
                health_check_grace_seconds=120 if load_balanced else None,
            ),
            subnets=self._service_subnets(),
            security_groups=[self.service_security_group],
            key=self.key,
            log_retention_days=gateway.log_retention_days,
            removal_policy=self.removal_policy,
            cloud_map=None
            if load_balanced
            else ecs.CloudMapOptions(
                name=SERVICE_DNS_NAME,
                cloud_map_namespace=self.namespace,
                dns_record_type=servicediscovery.DnsRecordType.A,
                dns_ttl=cdk.Duration.seconds(10),
            ),
        )
        task_definition = service.task_definition
        for imported in self._imported_secrets:  # ECS reads `secrets` with the execution role
            self.grant_secret_key_decrypt(task_definition.obtain_execution_role(), imported)
        # Exactly the one config object (not the whole asset bucket).
        task_definition.task_role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="ReadGatewayConfig",
                actions=["s3:GetObject"],
                resources=[
                    f"arn:{self.partition}:s3:::{self.config_asset.s3_bucket_name}/{self.config_asset.s3_object_key}"
                ],
            )
        )
        self.db.allow_from(self.service_security_group, "LiteLLM tasks")
        if self.cache is not None:
            self.cache.allow_from(self.service_security_group, "LiteLLM tasks")
        return service

    def _register_targets(self) -> elbv2.ApplicationTargetGroup | None:
        if self.listener is None:
            return None
        return self.listener.add_targets(
            "Litellm",
            port=CONTAINER_PORT,
            protocol=elbv2.ApplicationProtocol.HTTP,
            targets=[self.service],
            deregistration_delay=cdk.Duration.seconds(30),
            health_check=http_health_check(HEALTH_PATH, 20),
        )

    def _container_environment(self) -> dict[str, str]:
        assert self.database is not None
        environment = {
            "LITELLM_CONFIG_BUCKET_NAME": self.config_asset.s3_bucket_name,
            "LITELLM_CONFIG_BUCKET_OBJECT_KEY": self.config_asset.s3_object_key,
            "LITELLM_CONFIG_BUCKET_TYPE": "s3",
            # LiteLLM builds DATABASE_URL from these and the two secrets below.
            "DATABASE_HOST": self.database_endpoint.socket_address,
            "DATABASE_NAME": DATABASE_NAME,
            ENV_GUARDRAIL_ID: self.guardrail.attr_guardrail_id,
            ENV_GUARDRAIL_VERSION: self.guardrail_version.attr_version,  # published in this stack
            "AWS_REGION_NAME": self.region,
            "LITELLM_LOG": "INFO",
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
            "LITELLM_DONT_SHOW_FEEDBACK_BOX": "True",
            # The admin UI is served only with llm_gateway.admin_ui (its login needs the database, which
            # the deployed gateway has); its public entry is the console distribution.
            "DISABLE_ADMIN_UI": "False" if self.console_url is not None else "True",
            "STORE_MODEL_IN_DB": "False",
        }
        if self.console_url is not None:
            environment["PROXY_BASE_URL"] = self.console_url  # the UI's links and login redirect
            # The login page's hint says the password is the master key: not true here (UI_PASSWORD is set).
            environment["LITELLM_HIDE_DEFAULT_CREDENTIALS_HINT"] = "True"
        if self.cache is not None:
            environment[ENV_REDIS_HOST] = self.cache.host
            environment[ENV_REDIS_PORT] = str(REDIS_PORT)
        if self.langfuse is not None:
            environment[ENV_LANGFUSE_HOST] = self.langfuse.host
        return environment

    def _container_secrets(self) -> dict[str, ecs.Secret]:
        assert self.database is not None and self.database.secret is not None
        secrets = {
            ENV_MASTER_KEY: ecs.Secret.from_secrets_manager(self.master_key_secret),
            ENV_SALT_KEY: ecs.Secret.from_secrets_manager(self.salt_key_secret),
            "DATABASE_USERNAME": ecs.Secret.from_secrets_manager(self.database.secret, "username"),
            "DATABASE_PASSWORD": ecs.Secret.from_secrets_manager(self.database.secret, "password"),
        }
        if self.console_login_secret is not None:
            secrets["UI_USERNAME"] = ecs.Secret.from_secrets_manager(self.console_login_secret, "username")
            secrets["UI_PASSWORD"] = ecs.Secret.from_secrets_manager(self.console_login_secret, "password")
        if self.cache is not None:
            secrets[ENV_REDIS_PASSWORD] = ecs.Secret.from_secrets_manager(self.cache_auth_secret)
        if self.langfuse is not None:
            keys = self.import_secret(self.langfuse.keys_secret, "LangfuseKeys")
            self._imported_secrets.append(keys)
            secrets[ENV_LANGFUSE_PUBLIC_KEY] = ecs.Secret.from_secrets_manager(keys, "public_key")
            secrets[ENV_LANGFUSE_SECRET_KEY] = ecs.Secret.from_secrets_manager(keys, "secret_key")
        return secrets

    # --- model permissions --------------------------------------------------------------------------

    def bedrock_model_arns(self) -> tuple[list[str], list[str], list[str]]:
        """(inference-profile ARNs, foundation-model ARNs reached through them, directly invoked models)."""
        profiles, routed, direct = [], [], []
        for entry in self.config.models.entries:
            if entry.provider != "bedrock":
                continue
            model_id = entry.model_id
            if model_id.startswith(INFERENCE_PROFILE_PREFIXES):
                profiles.append(
                    f"arn:{self.partition}:bedrock:{self.region}:{self.account}:inference-profile/{model_id}"
                )
                # A profile routes to the model in any region of its geography: the region is the profile's choice.
                routed.append(f"arn:{self.partition}:bedrock:*::foundation-model/{model_id.split('.', 1)[1]}")
            else:
                direct.append(f"arn:{self.partition}:bedrock:{self.region}::foundation-model/{model_id}")
        return sorted(set(profiles)), sorted(set(routed)), sorted(set(direct))

    def _grant_model_access(self) -> None:
        assert self.service is not None
        role = self.service.task_definition.task_role
        actions = ["bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream"]
        profiles, routed, direct = self.bedrock_model_arns()
        if profiles:
            role.add_to_principal_policy(
                iam.PolicyStatement(sid="InvokeInferenceProfiles", actions=actions, resources=profiles)
            )
            role.add_to_principal_policy(
                iam.PolicyStatement(
                    sid="InvokeModelsThroughProfiles",
                    actions=actions,
                    resources=routed,
                    # Only as the catalogued profiles route: never the foundation models directly.
                    conditions={"StringEquals": {"bedrock:InferenceProfileArn": profiles}},
                )
            )
        if direct:
            role.add_to_principal_policy(
                iam.PolicyStatement(sid="InvokeModels", actions=actions, resources=direct)
            )
        # LiteLLM applies the guardrail (ApplyGuardrail) around every call: the same grant as the agent's.
        grant_apply_guardrail(role, self.guardrail)

    # --- bootstrap ----------------------------------------------------------------------------------

    def _bootstrap_code(self) -> lambda_.Code:
        """handler.py at the root plus llm_gateway/bootstrap.py and functions/common.py (stdlib + boto3): no
        dependencies to install."""
        return lambda_code(
            Bundle.of(
                renamed={
                    "handler.py": BOOTSTRAP_HANDLER,
                    "llm_gateway/bootstrap.py": BOOTSTRAP_MODULE,
                    "functions/__init__.py": "functions/__init__.py",
                    "functions/common.py": "functions/common.py",
                },
                generated={"llm_gateway/__init__.py": ""},
            )
        )

    def _create_bootstrap(self) -> cdk.CustomResource:
        assert self.service is not None
        security_group = ec2.SecurityGroup(
            self,
            "BootstrapSecurityGroup",
            vpc=self.vpc,
            description="Gateway bootstrap: to the load balancer and AWS APIs",
            allow_all_outbound=False,
        )
        if self.load_balancer is None:
            listener_port = CONTAINER_PORT  # straight to the tasks
        else:
            listener_port = 443 if self.config.llm_gateway.certificate_arn else 80
        cidr = self.vpc_cidr(self.vpc)
        security_group.add_egress_rule(ec2.Peer.ipv4(cidr), ec2.Port.tcp(listener_port), "Gateway")
        security_group.add_egress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(443), "Secrets Manager (HTTPS)")
        log_days = self.config.llm_gateway.log_retention_days
        function = lambda_.Function(
            self,
            "BootstrapFunction",
            description="Creates the LLM gateway's teams and virtual keys (idempotent)",
            runtime=lambda_.Runtime.PYTHON_3_14,
            architecture=lambda_.Architecture.ARM_64,
            handler="handler.on_event",
            code=self._bootstrap_code(),
            timeout=cdk.Duration.minutes(14),
            memory_size=256,
            vpc=self.vpc,
            vpc_subnets=self._service_subnets(),
            security_groups=[security_group],
            environment={
                "GATEWAY_URL": self.url,
                "MASTER_KEY_SECRET_ARN": self.master_key_secret.secret_arn,
                "READY_TIMEOUT_SECONDS": "600",
            },
            environment_encryption=self.key,
            log_group=self.create_log_group("BootstrapLogs", retention_days=log_days, key=self.key),
        )
        self.master_key_secret.grant_read(function)
        for secret in (self.agent_key_secret, self.eval_key_secret):
            secret.grant_read(function)
            secret.grant_write(function)
        provider = cr.Provider(
            self,
            "BootstrapProvider",
            on_event_handler=function,
            log_group=self.create_log_group("BootstrapProviderLogs", retention_days=log_days, key=self.key),
        )
        self._acknowledge_bootstrap(function, provider)
        plan = plan_from_config(
            self.config,
            agent_secret_id=self.agent_key_secret.secret_arn,
            eval_secret_id=self.eval_key_secret.secret_arn,
        )
        resource = cdk.CustomResource(
            self,
            "Bootstrap",
            service_token=provider.service_token,
            resource_type="Custom::LlmGatewayBootstrap",
            properties={
                "Plan": plan.to_json(),
                # Re-run when the gateway's config or task changes (a new task may mean a fresh database).
                "ConfigHash": self.config_hash,
                "TaskDefinition": self.service.task_definition.task_definition_arn,
            },
        )
        resource.node.add_dependency(self.service)
        if self.listener is not None:
            resource.node.add_dependency(self.listener)
        return resource

    # --- outputs and compliance ---------------------------------------------------------------------

    def _create_outputs(self) -> None:
        outputs = {
            "GatewayUrl": (self.url, "OpenAI-compatible base URL (add /v1)"),
            "AgentKeySecretArn": (self.agent_key_secret.secret_arn, "Secret holding the agent's virtual key"),
            "EvalKeySecretArn": (
                self.eval_key_secret.secret_arn,
                "Secret holding the evaluation's virtual key",
            ),
            "MasterKeySecretArn": (
                self.master_key_secret.secret_arn,
                "Secret holding the master key (admin API)",
            ),
        }
        if self.console_url is not None and self.console_login_secret is not None:
            outputs["ConsoleUrl"] = (f"{self.console_url}/ui/", "LiteLLM console (admin UI, HTTPS)")
            outputs["ConsoleLoginSecretArn"] = (
                self.console_login_secret.secret_arn,
                "Secrets Manager secret with the console's username and password (read it with the CLI)",
            )
        if self.load_balancer is not None:
            outputs["LoadBalancerDnsName"] = (
                self.load_balancer.load_balancer_dns_name,
                "Point llm_gateway.hostname here when using a certificate",
            )
        for name, (value, description) in outputs.items():
            cdk.CfnOutput(self, name, value=value, description=description)

    def _acknowledge_bootstrap(self, function: lambda_.Function, provider: cr.Provider) -> None:
        acknowledge_all(provider, CDK_HELPER_ACKNOWLEDGEMENTS)
        acknowledge(
            provider,
            "AwsSolutions-IAM5[Resource::<BootstrapFunction2F518255.Arn>:*]",
            "CDK's provider framework invokes exactly the bootstrap function; the :* suffix covers its "
            "versions and aliases only.",
        )
        acknowledge_all(
            function,
            {
                "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                "AWSLambdaBasicExecutionRole]": "The managed basic execution role grants only writing the "
                "function's own logs.",
                "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                "AWSLambdaVPCAccessExecutionRole]": "The function runs in the VPC to reach the internal load "
                "balancer; the managed VPC access role grants only the ENI management Lambda needs for that.",
                "NIST.800.53.R5-LambdaDLQ": "The bootstrap is a custom-resource handler invoked synchronously by "
                "CloudFormation through the provider; failures fail the deployment, a DLQ would never receive one.",
                "NIST.800.53.R5-LambdaConcurrency": "The bootstrap runs once per deployment; a reserved "
                "concurrency limit would only risk failing deployments.",
            },
        )

    def _acknowledge_findings(self) -> None:
        """Only what is specific to the gateway: the building blocks acknowledge their own findings."""
        acknowledge_cdk_helpers(self)
        self._acknowledge_task()

    def _acknowledge_task(self) -> None:
        _, routed, _ = self.bedrock_model_arns()
        for arn in routed:
            finding = arn.replace(f"arn:{self.partition}:", "arn:<AWS::Partition>:")
            acknowledge(
                self.service.task_definition.task_role,
                f"AwsSolutions-IAM5[Resource::{finding}]",
                "A cross-region inference profile routes to this exact model in any region of its geography; "
                "the statement is conditioned on bedrock:InferenceProfileArn being one of the catalogued profiles.",
            )

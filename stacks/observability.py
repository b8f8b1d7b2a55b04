"""Observability: a self-hosted Langfuse v3 (web, worker, ClickHouse, Aurora, Valkey, S3) behind CloudFront.

`components.observability` picks the mode:
- `self_hosted`: this stack. Langfuse's web and worker run on ECS Fargate; Postgres is an Aurora
  Serverless v2 cluster; ClickHouse is one Fargate task whose data lives on encrypted EFS; Valkey is an
  ElastiCache replication group; events, media and exports go to three S3 buckets. CloudFront (default
  certificate, no custom domain needed) reaches an internal ALB through a CloudFront VPC origin. The
  organisation, project, API keys and admin user exist on first boot (headless initialisation), from
  secrets Secrets Manager generates at deploy time; tasks receive them as ECS `secrets`.
- `external`: no stack; `external_connection` imports the keys secret by name (e.g. Langfuse Cloud).
- `disabled`: no stack, no connection; consumers run without tracing.
"""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_efs as efs
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_servicediscovery as servicediscovery
from constructs import Construct

from config import AppConfig, ConfigError
from config.observability import ServiceSize, node_options
from stacks.base import FoundationStack
from stacks.compliance import acknowledge, acknowledge_cdk_helpers
from stacks.constructs.cache import CacheOptions, ValkeyCache
from stacks.constructs.data_bucket import AccessLogs, DataBucket
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
from stacks.constructs.private_origin_distribution import PrivateOriginDistribution
from stacks.constructs.secret import (
    PUNCTUATION,
    GeneratedSecret,
    acknowledge_no_rotation,
    alphanumeric_spelled_out,
    login_password,
    lowercase_hex,
)
from stacks.contracts import LangfuseConnection

WEB_PORT = 3000
WORKER_PORT = 3030
CLICKHOUSE_HTTP_PORT = 8123
CLICKHOUSE_TCP_PORT = 9000
CLICKHOUSE_UID = "101"
DATABASE_NAME = "langfuse"
DATABASE_USER = "langfuse"
CLICKHOUSE_USER = "clickhouse"
HEALTH_PATH = "/api/public/health"
ROTATION_NOTE = (
    "Langfuse reads this value once at start; rotating it needs a coordinated restart (and for "
    "ENCRYPTION_KEY/SALT a re-encryption), so it is rotated by redeploying, not by a rotation Lambda."
)


def langfuse_health_check(port: int, path: str) -> ecs.HealthCheck:
    """The container health check of a Langfuse web or worker task (the images ship wget, not curl)."""
    return ecs.HealthCheck(
        command=["CMD-SHELL", f"wget -q --spider http://127.0.0.1:{port}{path} || exit 1"],
        interval=cdk.Duration.seconds(30),
        timeout=cdk.Duration.seconds(10),
        retries=3,
        # First boot runs the Postgres and ClickHouse migrations.
        start_period=cdk.Duration.seconds(180),
    )


def external_connection(scope: Construct, config: AppConfig) -> LangfuseConnection | None:
    """The connection for `external` mode (the keys secret imported by name), None for `disabled`.

    Raises:
        ConfigError: when external mode lacks `observability.external_host` or
            `observability.external_keys_secret_name`, or the mode is `self_hosted` (use the stack).
    """
    mode = config.components.observability
    if mode == "disabled":
        return None
    if mode == "self_hosted":
        raise ConfigError("components.observability is 'self_hosted': use ObservabilityStack(...).connection")
    observability = config.observability
    for key in ("external_host", "external_keys_secret_name"):
        if not getattr(observability, key):
            raise ConfigError(
                f"config key 'observability.{key}' is required when components.observability is 'external'"
            )
    assert observability.external_host is not None and observability.external_keys_secret_name is not None
    secret = secretsmanager.Secret.from_secret_name_v2(
        scope, "ExternalLangfuseKeys", observability.external_keys_secret_name
    )
    return LangfuseConnection(host=observability.external_host.rstrip("/"), keys_secret=secret)


class ObservabilityStack(FoundationStack):
    """Self-hosted Langfuse v3; `.connection` hands its URL and project keys to the consumers."""

    component = "observability"
    description_text = "observability (self-hosted Langfuse v3 on ECS Fargate behind CloudFront)"

    def __init__(
        self,
        scope: Construct,
        *,
        config: AppConfig,
        vpc: ec2.IVpc,
        service_subnets: ec2.SubnetSelection | None = None,
        data_subnets: ec2.SubnetSelection | None = None,
        **kwargs: Any,
    ) -> None:
        if config.components.observability != "self_hosted":
            raise ConfigError(
                f"components.observability is {config.components.observability!r}: ObservabilityStack is only "
                "for 'self_hosted' (use external_connection for 'external' and 'disabled')"
            )
        if config.network.vpc_id is None and config.network.nat_gateways == 0:
            raise ConfigError(
                "config key 'network.nat_gateways': self-hosted Langfuse pulls its images from Docker Hub and "
                "needs at least one NAT gateway or NAT instance (or set components.observability to 'external')"
            )
        super().__init__(scope, config=config, **kwargs)
        # S3 server access logs via a bucket policy (works with BUCKET_OWNER_ENFORCED), not ACLs.
        self.node.set_context("@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy", True)
        self.vpc = vpc
        self._service_subnets = service_subnets or ec2.SubnetSelection(subnet_group_name="services")
        self._data_subnets = data_subnets or ec2.SubnetSelection(subnet_group_name="data")
        self.key = self.create_data_key(
            "LangfuseKey", "Langfuse data (database, cache, files, logs, secrets)"
        )
        self.secrets = self._create_secrets()
        self.keys_secret = self._create_project_keys()
        self.admin_secret = self._create_admin_secret()
        self.access_logs_bucket = self._create_access_logs_bucket()
        self.buckets = self._create_buckets()
        self.security_groups = self._create_security_groups()
        self.db = self._create_database()
        self.database = self.db.database
        self.cache = self._create_cache()
        self.secrets["redis"] = self.cache.auth_token
        self.cluster, self.namespace = self._create_cluster()
        self.clickhouse_files = self._create_clickhouse_storage()
        self.clickhouse = self._create_clickhouse()
        self.load_balancer, self.target_group = self._create_load_balancer()
        self.distribution = self._create_distribution()
        self.url = f"https://{self.distribution.distribution_domain_name}"
        self.web = self._create_web()
        self.worker = self._create_worker()
        self.connection: LangfuseConnection | None = LangfuseConnection(
            host=self.url, keys_secret=self.keys_secret
        )
        self._create_outputs()
        self._acknowledge_findings()

    # --- secrets (generated by Secrets Manager at deploy time; never in the template) -----------------

    def _generated_secret(
        self, construct_id: str, description: str, *, length: int = 48, hex_only: bool = False
    ) -> secretsmanager.Secret:
        return GeneratedSecret(
            self,
            construct_id,
            description=f"{self.config.prefix} Langfuse {description}",
            key=self.key,
            removal_policy=self.removal_policy,
            rules=lowercase_hex(length) if hex_only else alphanumeric_spelled_out(length),
            rotation_reason=ROTATION_NOTE,
        ).secret

    def _create_secrets(self) -> dict[str, secretsmanager.Secret]:
        # Letters and digits only: values are spliced into URLs, DSNs and AUTH commands without encoding.
        return {
            "nextauth": self._generated_secret(
                "NextAuthSecret", "NEXTAUTH_SECRET (session signing)", length=64
            ),
            "salt": self._generated_secret("Salt", "SALT (API key hashing)", length=48),
            # 256-bit key as 64 hex characters, as Langfuse requires (openssl rand -hex 32).
            "encryption": self._generated_secret("EncryptionKey", "ENCRYPTION_KEY", length=64, hex_only=True),
            "clickhouse": self._generated_secret("ClickHousePassword", "ClickHouse password", length=40),
            "public_key_id": self._generated_secret(
                "ProjectPublicKeyId", "project public key body", length=32
            ),
            "secret_key_id": self._generated_secret(
                "ProjectSecretKeyId", "project secret key body", length=40
            ),
        }

    def _create_project_keys(self) -> secretsmanager.Secret:
        """`{"public_key": "pk-lf-…", "secret_key": "sk-lf-…"}` built from the generated bodies.

        CloudFormation resolves the two dynamic references when it writes this secret, so the keys are
        generated at deploy time and never appear in the template.
        """

        def prefixed(prefix: str, secret: secretsmanager.ISecret) -> cdk.SecretValue:
            return cdk.SecretValue.unsafe_plain_text(
                cdk.Fn.join("", [prefix, secret.secret_value.unsafe_unwrap()])
            )

        keys = secretsmanager.Secret(
            self,
            "ProjectKeys",
            description=f"{self.config.prefix} Langfuse project API keys for the agent, gateway and evaluation",
            encryption_key=self.key,
            removal_policy=self.removal_policy,
            secret_object_value={
                "public_key": prefixed("pk-lf-", self.secrets["public_key_id"]),
                "secret_key": prefixed("sk-lf-", self.secrets["secret_key_id"]),
            },
        )
        acknowledge_no_rotation(None, keys, ROTATION_NOTE)
        return keys

    def _create_admin_secret(self) -> secretsmanager.Secret:
        # Langfuse passwords need a letter, a digit and a symbol: require every character class.
        return GeneratedSecret(
            self,
            "AdminUser",
            description=f"{self.config.prefix} Langfuse admin login (email and password)",
            key=self.key,
            removal_policy=self.removal_policy,
            rules=login_password(24),
            rotation_reason=ROTATION_NOTE,
            template={"email": self.config.observability.admin_email},
            generate_key="password",
        ).secret

    # --- object storage ------------------------------------------------------------------------------

    def _create_access_logs_bucket(self) -> s3.Bucket:
        # Server access logs and ALB access logs; ALB log delivery supports SSE-S3 only.
        return LogBucket(
            self, "AccessLogs", expire_days=90 if self.config.is_prod else 14, retain=self.config.retain_data
        ).bucket

    def _data_bucket(self, construct_id: str, purpose: str, expire_days: int | None) -> s3.Bucket:
        return DataBucket(
            self,
            construct_id,
            key=self.key,
            retain=self.config.retain_data,
            expire_days=expire_days,
            lifecycle_id=f"{purpose}-lifecycle",
            access_logs=AccessLogs(self.access_logs_bucket, prefix=f"s3/{purpose}/"),
            no_replication_reason="Langfuse events, media and exports are regional working data with "
            "lifecycle expiry; cross-region replication is not required.",
        ).bucket

    def _create_buckets(self) -> dict[str, s3.Bucket]:
        settings = self.config.observability
        return {
            # Raw ingestion events: Langfuse writes them before queueing; replayable for the retention.
            "events": self._data_bucket("EventsBucket", "events", settings.events_retention_days),
            "media": self._data_bucket("MediaBucket", "media", settings.media_retention_days),
            "exports": self._data_bucket("ExportsBucket", "exports", settings.exports_retention_days),
        }

    # --- network -------------------------------------------------------------------------------------

    def _create_security_groups(self) -> dict[str, ec2.SecurityGroup]:
        def group(name: str, description: str, outbound: bool) -> ec2.SecurityGroup:
            return ec2.SecurityGroup(
                self,
                f"{name}SecurityGroup",
                vpc=self.vpc,
                description=description,
                allow_all_outbound=outbound,
            )

        groups = {
            "alb": group("Alb", "Langfuse internal ALB: HTTP from the CloudFront VPC origin", False),
            # Tasks reach Docker Hub, S3, Secrets Manager and CloudWatch over HTTPS.
            "web": group("Web", "Langfuse web tasks", True),
            "worker": group("Worker", "Langfuse worker tasks", True),
            "clickhouse": group("ClickHouse", "ClickHouse task", True),
            "database": group("Database", "Langfuse Aurora PostgreSQL", False),
            "cache": group("Cache", "Langfuse Valkey", False),
            "files": group("Files", "ClickHouse EFS mount targets", False),
        }
        # The ALB is internal (no public address); the distribution's block opens it to the VPC origin.
        groups["alb"].connections.allow_to(groups["web"], ec2.Port.tcp(WEB_PORT), "ALB to Langfuse web")
        for client in ("web", "worker"):
            groups["database"].add_ingress_rule(groups[client], ec2.Port.tcp(5432), f"Postgres from {client}")
            groups["cache"].add_ingress_rule(groups[client], ec2.Port.tcp(6379), f"Valkey from {client}")
            for port in (CLICKHOUSE_HTTP_PORT, CLICKHOUSE_TCP_PORT):
                groups["clickhouse"].add_ingress_rule(
                    groups[client], ec2.Port.tcp(port), f"ClickHouse {port} from {client}"
                )
        groups["files"].add_ingress_rule(groups["clickhouse"], ec2.Port.tcp(2049), "NFS from ClickHouse")
        return groups

    # --- Postgres ------------------------------------------------------------------------------------

    def _create_database(self) -> PostgresDatabase:
        """Aurora Serverless v2 (prod) or one small PostgreSQL instance (dev: a third of the idle cost)."""
        settings = self.config.observability
        engine: InstanceOptions | ClusterOptions
        if settings.db_engine == "aurora_serverless":
            engine = ClusterOptions(
                min_acu=settings.db_min_acu,
                max_acu=settings.db_max_acu,
                writer_id="writer",
                reader_ids=tuple(f"reader{index}" for index in range(1, settings.db_readers + 1)),
            )
        else:
            engine = InstanceOptions(
                instance_class=settings.db_instance_class,
                storage_gb=settings.db_storage_gb,
                max_storage_gb=settings.db_storage_gb * 2,
                multi_az=settings.db_readers > 0,
            )
        return PostgresDatabase(
            self,
            "Database",
            options=DatabaseOptions(
                engine=engine,
                identifier=self.resource_name("langfuse-db"),
                database_name=DATABASE_NAME,
                username=DATABASE_USER,
                log_retention_days=settings.log_retention_days,
                backup_days=14 if self.config.is_prod else 1,
                deletion_protection=self.config.retain_data,
                purpose="Langfuse PostgreSQL",
                rotation_reason="The Langfuse tasks read the database password at start; a rotation would need "
                "a rolling restart of web and worker, done by redeploying rather than by a rotation Lambda.",
                # Langfuse splices the password into DATABASE_URL without encoding: letters and digits only.
                password_exclude_characters=PUNCTUATION,
            ),
            vpc=self.vpc,
            subnets=self._data_subnets,
            key=self.key,
            removal_policy=cdk.RemovalPolicy.SNAPSHOT
            if self.config.retain_data
            else cdk.RemovalPolicy.DESTROY,
            security_groups=[self.security_groups["database"]],
        )

    @property
    def database_host(self) -> str:
        return self.db.host

    def _subnet_ids(self, selection: ec2.SubnetSelection) -> list[str]:
        # select_subnets takes the selection's fields as keyword arguments (jsii struct expansion).
        return self.vpc.select_subnets(**selection._values).subnet_ids

    # --- Valkey --------------------------------------------------------------------------------------

    def _create_cache(self) -> ValkeyCache:
        settings = self.config.observability
        return ValkeyCache(
            self,
            "Cache",
            options=CacheOptions(
                description=f"{self.config.prefix} Langfuse queue and cache",
                node_type=settings.cache_node_type,
                replicas=settings.cache_replicas,
                auth_rules=alphanumeric_spelled_out(48),
                auth_description=f"{self.config.prefix} Langfuse Valkey AUTH token",
                auth_rotation_reason=ROTATION_NOTE,
                backup_reason="Valkey holds Langfuse's transient queue and cache; the durable data is in "
                "PostgreSQL, ClickHouse and S3, so cache snapshots are not kept for 15 days.",
                snapshot_retention_days=7 if self.config.is_prod else 0,
                subnet_description="Langfuse Valkey subnets",
                # Langfuse uses Valkey as a queue: it must never evict keys.
                parameters={"maxmemory-policy": "noeviction"},
                parameters_description="Langfuse: noeviction (queues must not lose jobs)",
            ),
            subnet_ids=self._subnet_ids(self._data_subnets),
            security_group=self.security_groups["cache"],
            key=self.key,
            removal_policy=self.removal_policy,
        )

    # --- ECS cluster, ClickHouse ---------------------------------------------------------------------

    def _create_cluster(self) -> tuple[ecs.Cluster, servicediscovery.PrivateDnsNamespace]:
        cluster = fargate_cluster(
            self,
            "Cluster",
            vpc=self.vpc,
            capacity_providers=True,
            container_insights=self.config.observability.container_insights,
            insights_setting="observability.container_insights",
        )
        namespace = servicediscovery.PrivateDnsNamespace(
            self, "Namespace", name=f"{self.config.prefix}-langfuse.internal", vpc=self.vpc
        )
        return cluster, namespace

    def _create_clickhouse_storage(self) -> tuple[efs.FileSystem, efs.AccessPoint]:
        files = efs.FileSystem(
            self,
            "ClickHouseFiles",
            vpc=self.vpc,
            vpc_subnets=self._data_subnets,
            security_group=self.security_groups["files"],
            encrypted=True,
            kms_key=self.key,
            performance_mode=efs.PerformanceMode.GENERAL_PURPOSE,
            throughput_mode=efs.ThroughputMode.ELASTIC,
            enable_automatic_backups=self.config.retain_data,
            removal_policy=self.removal_policy,
        )
        access_point = files.add_access_point(
            "ClickHouseData",
            path="/clickhouse",
            create_acl=efs.Acl(owner_uid=CLICKHOUSE_UID, owner_gid=CLICKHOUSE_UID, permissions="750"),
            posix_user=efs.PosixUser(uid=CLICKHOUSE_UID, gid=CLICKHOUSE_UID),
        )
        return files, access_point

    def _service(
        self,
        name: str,
        size: ServiceSize,
        container: ContainerSpec,
        security_group: ec2.ISecurityGroup,
        *,
        min_healthy_percent: int,
        max_healthy_percent: int,
        health_check_grace_seconds: int | None = None,
        cloud_map: ecs.CloudMapOptions | None = None,
    ) -> FargateService:
        settings = self.config.observability
        return FargateService(
            self,
            f"{name}Service",
            task_id=f"{name}Task",
            log_group_id=f"{name}Logs",
            cluster=self.cluster,
            size=TaskSize(cpu=size.cpu, memory_mib=size.memory_mib),  # Langfuse images: x86_64
            container=container,
            options=ServiceOptions(
                desired_count=size.tasks,
                capacity_provider="FARGATE_SPOT" if settings.fargate_spot else "FARGATE",
                min_healthy_percent=min_healthy_percent,
                max_healthy_percent=max_healthy_percent,
                health_check_grace_seconds=health_check_grace_seconds,
            ),
            subnets=self._service_subnets,
            security_groups=[security_group],
            key=self.key,
            log_retention_days=settings.log_retention_days,
            removal_policy=self.removal_policy,
            cloud_map=cloud_map,
        )

    def _create_clickhouse(self) -> ecs.FargateService:
        size = self.config.observability.clickhouse
        files, access_point = self.clickhouse_files
        container = ContainerSpec(
            name="clickhouse",
            image=ecs.ContainerImage.from_registry(self.config.observability.clickhouse_image),
            user=f"{CLICKHOUSE_UID}:{CLICKHOUSE_UID}",
            environment={"CLICKHOUSE_DB": "default", "CLICKHOUSE_USER": CLICKHOUSE_USER},
            secrets={"CLICKHOUSE_PASSWORD": ecs.Secret.from_secrets_manager(self.secrets["clickhouse"])},
            port_mappings=(
                ecs.PortMapping(container_port=CLICKHOUSE_HTTP_PORT, name="http"),
                ecs.PortMapping(container_port=CLICKHOUSE_TCP_PORT, name="native"),
            ),
            health_check=ecs.HealthCheck(
                command=[
                    "CMD-SHELL",
                    f"wget --no-verbose --tries=1 --spider http://127.0.0.1:{CLICKHOUSE_HTTP_PORT}/ping || exit 1",
                ],
                interval=cdk.Duration.seconds(15),
                timeout=cdk.Duration.seconds(5),
                retries=5,
                start_period=cdk.Duration.seconds(60),
            ),
            ulimits=(ecs.Ulimit(name=ecs.UlimitName.NOFILE, soft_limit=262144, hard_limit=262144),),
        )
        block = self._service(
            "ClickHouse",
            size,
            container,
            self.security_groups["clickhouse"],
            # One writer on the data directory: stop the old task before starting the new one.
            min_healthy_percent=0,
            max_healthy_percent=100,
            cloud_map=ecs.CloudMapOptions(
                name="clickhouse",
                cloud_map_namespace=self.namespace,
                dns_record_type=servicediscovery.DnsRecordType.A,
                dns_ttl=cdk.Duration.seconds(10),
            ),
        )
        task = block.task_definition
        task.add_volume(
            name="clickhouse-data",
            efs_volume_configuration=ecs.EfsVolumeConfiguration(
                file_system_id=files.file_system_id,
                transit_encryption="ENABLED",
                authorization_config=ecs.AuthorizationConfig(
                    access_point_id=access_point.access_point_id, iam="ENABLED"
                ),
            ),
        )
        files.grant_read_write(task.task_role)
        block.container.add_mount_points(
            ecs.MountPoint(
                container_path="/var/lib/clickhouse", source_volume="clickhouse-data", read_only=False
            )
        )
        block.service.node.add_dependency(files.mount_targets_available)
        return block.service

    # --- entry: internal ALB behind CloudFront -------------------------------------------------------

    def _create_load_balancer(self) -> tuple[elbv2.ApplicationLoadBalancer, elbv2.ApplicationTargetGroup]:
        target_group = elbv2.ApplicationTargetGroup(
            self,
            "WebTargets",
            vpc=self.vpc,
            port=WEB_PORT,
            protocol=elbv2.ApplicationProtocol.HTTP,
            target_type=elbv2.TargetType.IP,
            deregistration_delay=cdk.Duration.seconds(30),
            health_check=http_health_check(HEALTH_PATH, 30),
        )
        entry = LoadBalancer(
            self,
            "LoadBalancer",
            vpc=self.vpc,
            subnets=self._service_subnets,
            security_group=self.security_groups["alb"],
            idle_timeout_seconds=120,
            deletion_protection=self.config.retain_data,
            access_logs=None if cdk.Token.is_unresolved(self.region) else self.access_logs_bucket,
            default_target_group=target_group,
            plain_http_reason="No custom domain, so no certificate: CloudFront terminates TLS with its default "
            "certificate and reaches this internal ALB through a private VPC origin, inside the VPC.",
            no_waf_reason="The ALB is internal; the only entry is CloudFront, and Langfuse requires a login "
            "(sign-up disabled) or project API keys on every route except health.",
        )
        return entry.load_balancer, target_group

    def _create_distribution(self) -> cloudfront.Distribution:
        return PrivateOriginDistribution(
            self,
            "Distribution",
            load_balancer=self.load_balancer,
            vpc_cidr=self.vpc_cidr(self.vpc),
            # Langfuse builds its URLs from NEXTAUTH_URL; the origin sees its own host name.
            forward_host_header=False,
            price_class=self.config.observability.price_class,
            comment=f"{self.config.prefix} Langfuse",
            origin_rule_description="CloudFront VPC origin (inside the VPC)",
            no_geo_restriction_reason="Langfuse is an internal tool protected by its own login; no "
            "country-level restriction is required.",
            no_waf_reason="Every Langfuse route except health requires a login or project API keys; a WAF "
            "web ACL can be attached where required (it adds a fixed monthly cost).",
            no_access_logs_reason="Requests are logged by the internal ALB's access logs (when the region is "
            "set) and by Langfuse itself; CloudFront standard logs would need an ACL-enabled bucket.",
        ).distribution

    # --- Langfuse web and worker ---------------------------------------------------------------------

    def _shared_environment(self) -> dict[str, str]:
        clickhouse_host = f"clickhouse.{self.namespace.namespace_name}"
        environment = {
            "NODE_ENV": "production",
            "TELEMETRY_ENABLED": "false",
            "LANGFUSE_ENABLE_EXPERIMENTAL_FEATURES": "false",
            "DATABASE_HOST": self.database_host,
            "DATABASE_USERNAME": DATABASE_USER,
            "DATABASE_NAME": DATABASE_NAME,
            "DATABASE_ARGS": "sslmode=require",
            "CLICKHOUSE_URL": f"http://{clickhouse_host}:{CLICKHOUSE_HTTP_PORT}",
            "CLICKHOUSE_MIGRATION_URL": f"clickhouse://{clickhouse_host}:{CLICKHOUSE_TCP_PORT}",
            "CLICKHOUSE_USER": CLICKHOUSE_USER,
            "CLICKHOUSE_CLUSTER_ENABLED": "false",
            "REDIS_HOST": self.cache.host,
            "REDIS_PORT": self.cache.replication_group.attr_primary_end_point_port,
            "REDIS_TLS_ENABLED": "true",
            "LANGFUSE_S3_EVENT_UPLOAD_BUCKET": self.buckets["events"].bucket_name,
            "LANGFUSE_S3_EVENT_UPLOAD_REGION": self.region,
            "LANGFUSE_S3_EVENT_UPLOAD_PREFIX": "events/",
            "LANGFUSE_S3_MEDIA_UPLOAD_BUCKET": self.buckets["media"].bucket_name,
            "LANGFUSE_S3_MEDIA_UPLOAD_REGION": self.region,
            "LANGFUSE_S3_MEDIA_UPLOAD_PREFIX": "media/",
            "LANGFUSE_S3_BATCH_EXPORT_ENABLED": "true",
            "LANGFUSE_S3_BATCH_EXPORT_BUCKET": self.buckets["exports"].bucket_name,
            "LANGFUSE_S3_BATCH_EXPORT_REGION": self.region,
            "LANGFUSE_S3_BATCH_EXPORT_PREFIX": "exports/",
        }
        return environment

    def _shared_secrets(self) -> dict[str, ecs.Secret]:
        return {
            "DATABASE_PASSWORD": ecs.Secret.from_secrets_manager(self.db.secret, "password"),
            "SALT": ecs.Secret.from_secrets_manager(self.secrets["salt"]),
            "ENCRYPTION_KEY": ecs.Secret.from_secrets_manager(self.secrets["encryption"]),
            "CLICKHOUSE_PASSWORD": ecs.Secret.from_secrets_manager(self.secrets["clickhouse"]),
            "REDIS_AUTH": ecs.Secret.from_secrets_manager(self.secrets["redis"]),
        }

    def _grant_storage(self, task: ecs.FargateTaskDefinition) -> None:
        """Object read/write/delete in the three Langfuse buckets, nothing else."""
        buckets = list(self.buckets.values())
        task.add_to_task_role_policy(
            iam.PolicyStatement(
                actions=["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"],
                resources=[bucket.arn_for_objects("*") for bucket in buckets],
            )
        )
        task.add_to_task_role_policy(
            iam.PolicyStatement(
                actions=["s3:ListBucket"], resources=[bucket.bucket_arn for bucket in buckets]
            )
        )
        self.key.grant(task.task_role, "kms:Decrypt", "kms:GenerateDataKey")

    def _create_web(self) -> ecs.FargateService:
        settings = self.config.observability
        environment = {
            **self._shared_environment(),
            "HOSTNAME": "0.0.0.0",  # noqa: S104  # Next.js binds HOSTNAME; ECS sets it to the task's name
            "PORT": str(WEB_PORT),
            "NODE_OPTIONS": node_options(settings.web.memory_mib),
            "NEXTAUTH_URL": self.url,
            "AUTH_DISABLE_SIGNUP": "true",
            "LANGFUSE_CSP_ENFORCE_HTTPS": "true",
            "LANGFUSE_INIT_ORG_ID": f"{self.config.prefix}-org",
            "LANGFUSE_INIT_ORG_NAME": settings.organisation_name,
            "LANGFUSE_INIT_PROJECT_ID": f"{self.config.prefix}-{settings.project_name}",
            "LANGFUSE_INIT_PROJECT_NAME": settings.project_name,
            "LANGFUSE_INIT_USER_EMAIL": settings.admin_email,
            "LANGFUSE_INIT_USER_NAME": "Langfuse admin",
        }
        secrets = {
            **self._shared_secrets(),
            "NEXTAUTH_SECRET": ecs.Secret.from_secrets_manager(self.secrets["nextauth"]),
            "LANGFUSE_INIT_PROJECT_PUBLIC_KEY": ecs.Secret.from_secrets_manager(
                self.keys_secret, "public_key"
            ),
            "LANGFUSE_INIT_PROJECT_SECRET_KEY": ecs.Secret.from_secrets_manager(
                self.keys_secret, "secret_key"
            ),
            "LANGFUSE_INIT_USER_PASSWORD": ecs.Secret.from_secrets_manager(self.admin_secret, "password"),
        }
        container = ContainerSpec(
            name="web",
            image=ecs.ContainerImage.from_registry(settings.langfuse_web_image),
            environment=environment,
            secrets=secrets,
            port_mappings=(ecs.PortMapping(container_port=WEB_PORT, name="http"),),
            health_check=langfuse_health_check(WEB_PORT, HEALTH_PATH),
        )
        block = self._service(
            "Web",
            settings.web,
            container,
            self.security_groups["web"],
            health_check_grace_seconds=300,
            min_healthy_percent=100,
            max_healthy_percent=200,
        )
        self._grant_storage(block.task_definition)
        service = block.service
        service.attach_to_application_target_group(self.target_group)
        service.node.add_dependency(self.clickhouse)
        service.node.add_dependency(self.cache)
        return service

    def _create_worker(self) -> ecs.FargateService:
        settings = self.config.observability
        container = ContainerSpec(
            name="worker",
            image=ecs.ContainerImage.from_registry(settings.langfuse_worker_image),
            environment={
                **self._shared_environment(),
                "HOSTNAME": "0.0.0.0",  # noqa: S104
                "PORT": str(WORKER_PORT),
                "NODE_OPTIONS": node_options(settings.worker.memory_mib),
            },
            secrets=self._shared_secrets(),
            port_mappings=(ecs.PortMapping(container_port=WORKER_PORT, name="http"),),
            health_check=langfuse_health_check(WORKER_PORT, "/api/health"),
        )
        block = self._service(
            "Worker",
            settings.worker,
            container,
            self.security_groups["worker"],
            min_healthy_percent=100,
            max_healthy_percent=200,
        )
        self._grant_storage(block.task_definition)
        service = block.service
        # The web task runs the migrations; the worker starts after it exists.
        service.node.add_dependency(self.web)
        return service

    # --- outputs (names and URLs only; never secret values) ------------------------------------------

    def _create_outputs(self) -> None:
        outputs = {
            "LangfuseUrl": (self.url, "Langfuse UI and API (HTTPS)"),
            "LangfuseAdminSecretArn": (
                self.admin_secret.secret_arn,
                "Secrets Manager secret with the admin email and password (read it with the CLI)",
            ),
            "LangfuseKeysSecretArn": (
                self.keys_secret.secret_arn,
                "Secrets Manager secret with the project public and secret keys",
            ),
        }
        for name, (value, description) in outputs.items():
            cdk.CfnOutput(self, name, value=value, description=description)

    # --- cdk-nag acknowledgements (only what is specific to Langfuse: the blocks carry their own) -------

    def _acknowledge_findings(self) -> None:
        acknowledge_cdk_helpers(self)
        acknowledge(
            self.clickhouse_files[0],
            "NIST.800.53.R5-EFSInBackupPlan",
            "Automatic EFS backups follow the profile (on where data is retained); dev data is disposable.",
        )
        for task in (self.web.task_definition, self.worker.task_definition):
            policy = task.task_role.node.find_child("DefaultPolicy")
            for bucket in self.buckets.values():
                logical_id = self.get_logical_id(bucket.node.default_child)  # type: ignore[arg-type]
                acknowledge(
                    policy,
                    f"AwsSolutions-IAM5[Resource::<{logical_id}.Arn>/*]",
                    "Langfuse stores objects under generated keys in its own bucket; object actions are "
                    "limited to get/put/delete/abort on that bucket's objects.",
                )

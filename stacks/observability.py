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
from aws_cdk import aws_cloudfront_origins as origins
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_efs as efs
from aws_cdk import aws_elasticache as elasticache
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_rds as rds
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_servicediscovery as servicediscovery
from constructs import Construct

from config import AppConfig, ConfigError
from config.observability import ServiceSize, node_options
from stacks.base import (
    FoundationStack,
    access_log_lifecycle,
    aurora_postgres_engine,
    postgres_engine,
    retention,
    tls_parameter_group,
)
from stacks.compliance import (
    ACCESS_LOG_BUCKET_ACKNOWLEDGEMENTS,
    acknowledge,
    acknowledge_all,
    acknowledge_cdk_helpers,
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
# Characters that break URLs, shells or the ElastiCache AUTH rules: generated values stay alphanumeric.
PUNCTUATION = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"


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
        self.database = self._create_database()
        self.cache = self._create_cache()
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
        excluded = PUNCTUATION + ("ghijklmnopqrstuvwxyz" if hex_only else "")
        return secretsmanager.Secret(
            self,
            construct_id,
            description=f"{self.config.prefix} Langfuse {description}",
            encryption_key=self.key,
            removal_policy=self.removal_policy,
            generate_secret_string=secretsmanager.SecretStringGenerator(
                password_length=length,
                exclude_characters=excluded,
                exclude_uppercase=hex_only,
                exclude_punctuation=True,
                include_space=False,
            ),
        )

    def _create_secrets(self) -> dict[str, secretsmanager.Secret]:
        return {
            "nextauth": self._generated_secret(
                "NextAuthSecret", "NEXTAUTH_SECRET (session signing)", length=64
            ),
            "salt": self._generated_secret("Salt", "SALT (API key hashing)", length=48),
            # 256-bit key as 64 hex characters, as Langfuse requires (openssl rand -hex 32).
            "encryption": self._generated_secret("EncryptionKey", "ENCRYPTION_KEY", length=64, hex_only=True),
            "clickhouse": self._generated_secret("ClickHousePassword", "ClickHouse password", length=40),
            "redis": self._generated_secret("CacheAuthToken", "Valkey AUTH token", length=48),
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

        return secretsmanager.Secret(
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

    def _create_admin_secret(self) -> secretsmanager.Secret:
        # Langfuse passwords need a letter, a digit and a symbol: require every character class.
        return secretsmanager.Secret(
            self,
            "AdminUser",
            description=f"{self.config.prefix} Langfuse admin login (email and password)",
            encryption_key=self.key,
            removal_policy=self.removal_policy,
            generate_secret_string=secretsmanager.SecretStringGenerator(
                secret_string_template=cdk.Stack.of(self).to_json_string(
                    {"email": self.config.observability.admin_email}
                ),
                generate_string_key="password",
                password_length=24,
                exclude_characters="\"'`\\/@$%&{}|<>;:,",
                require_each_included_type=True,
                include_space=False,
            ),
        )

    # --- object storage ------------------------------------------------------------------------------

    def _create_access_logs_bucket(self) -> s3.Bucket:
        # Server access logs and ALB access logs; ALB log delivery supports SSE-S3 only.
        return s3.Bucket(
            self,
            "AccessLogs",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            versioned=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            removal_policy=self.removal_policy,
            auto_delete_objects=not self.config.retain_data,
            lifecycle_rules=[access_log_lifecycle(90 if self.config.is_prod else 14)],
        )

    def _data_bucket(self, construct_id: str, purpose: str, expire_days: int | None) -> s3.Bucket:
        rule = s3.LifecycleRule(
            id=f"{purpose}-lifecycle",
            expiration=cdk.Duration.days(expire_days) if expire_days else None,
            noncurrent_version_expiration=cdk.Duration.days(7),
            abort_incomplete_multipart_upload_after=cdk.Duration.days(1),
        )
        return s3.Bucket(
            self,
            construct_id,
            encryption=s3.BucketEncryption.KMS,
            encryption_key=self.key,
            bucket_key_enabled=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            versioned=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            server_access_logs_bucket=self.access_logs_bucket,
            server_access_logs_prefix=f"s3/{purpose}/",
            removal_policy=self.removal_policy,
            auto_delete_objects=not self.config.retain_data,
            lifecycle_rules=[rule],
        )

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
        # The ALB is internal (no public address); CloudFront's VPC origin reaches it from inside the VPC.
        network = self.config.network
        cidr = network.cidr if network.vpc_id is None else self.vpc.vpc_cidr_block
        groups["alb"].add_ingress_rule(
            ec2.Peer.ipv4(cidr), ec2.Port.tcp(80), "CloudFront VPC origin (inside the VPC)"
        )
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

    def _create_database(self) -> rds.DatabaseCluster | rds.DatabaseInstance:
        """Aurora Serverless v2 (prod) or one small PostgreSQL instance (dev: a third of the idle cost)."""
        settings = self.config.observability
        kind = "cluster" if settings.db_engine == "aurora_serverless" else "instance"
        identifier = self.resource_name("langfuse-db")
        exports = ["postgresql"] if kind == "cluster" else ["postgresql", "upgrade"]
        # Created here (KMS-encrypted, bounded retention) so RDS does not create unencrypted ones.
        log_groups = [
            logs.LogGroup(
                self,
                "DatabaseLogs" if export == "postgresql" else f"Database{export.capitalize()}Logs",
                log_group_name=f"/aws/rds/{kind}/{identifier}/{export}",
                retention=retention(settings.log_retention_days),
                encryption_key=self.key,
                removal_policy=self.removal_policy,
            )
            for export in exports
        ]
        common: dict[str, Any] = {
            "credentials": rds.Credentials.from_generated_secret(
                DATABASE_USER, encryption_key=self.key, exclude_characters=PUNCTUATION
            ),
            "vpc": self.vpc,
            "vpc_subnets": self._data_subnets,
            "security_groups": [self.security_groups["database"]],
            "storage_encrypted": True,
            "storage_encryption_key": self.key,
            "iam_authentication": True,
            "cloudwatch_logs_exports": exports,
            "deletion_protection": self.config.retain_data,
            "removal_policy": cdk.RemovalPolicy.SNAPSHOT
            if self.config.retain_data
            else cdk.RemovalPolicy.DESTROY,
            "copy_tags_to_snapshot": True,
        }
        database: rds.DatabaseCluster | rds.DatabaseInstance
        if kind == "cluster":
            engine = aurora_postgres_engine()
            readers = [
                rds.ClusterInstance.serverless_v2(f"reader{index}", scale_with_writer=True)
                for index in range(1, settings.db_readers + 1)
            ]
            database = rds.DatabaseCluster(
                self,
                "Database",
                cluster_identifier=identifier,
                engine=engine,
                parameter_group=self._tls_parameters(engine),
                writer=rds.ClusterInstance.serverless_v2("writer"),
                readers=readers,
                serverless_v2_min_capacity=settings.db_min_acu,
                serverless_v2_max_capacity=settings.db_max_acu,
                default_database_name=DATABASE_NAME,
                backup=rds.BackupProps(retention=cdk.Duration.days(14 if self.config.is_prod else 1)),
                **common,
            )
        else:
            engine_version = postgres_engine()
            database = rds.DatabaseInstance(
                self,
                "Database",
                instance_identifier=identifier,
                engine=engine_version,
                parameter_group=self._tls_parameters(engine_version),
                instance_type=ec2.InstanceType(settings.db_instance_class.removeprefix("db.")),
                allocated_storage=settings.db_storage_gb,
                max_allocated_storage=settings.db_storage_gb * 2,
                storage_type=rds.StorageType.GP3,
                database_name=DATABASE_NAME,
                multi_az=settings.db_readers > 0,
                backup_retention=cdk.Duration.days(14 if self.config.is_prod else 1),
                auto_minor_version_upgrade=True,
                publicly_accessible=False,
                **common,
            )
        for log_group in log_groups:
            database.node.add_dependency(log_group)
        return database

    def _tls_parameters(self, engine: rds.IEngine) -> rds.ParameterGroup:
        return tls_parameter_group(self, engine, "Langfuse PostgreSQL: TLS required")

    @property
    def database_host(self) -> str:
        if isinstance(self.database, rds.DatabaseCluster):
            return self.database.cluster_endpoint.hostname
        return self.database.db_instance_endpoint_address

    def _subnet_ids(self, selection: ec2.SubnetSelection) -> list[str]:
        # select_subnets takes the selection's fields as keyword arguments (jsii struct expansion).
        return self.vpc.select_subnets(**selection._values).subnet_ids

    # --- Valkey --------------------------------------------------------------------------------------

    def _create_cache(self) -> elasticache.CfnReplicationGroup:
        settings = self.config.observability
        subnets = elasticache.CfnSubnetGroup(
            self,
            "CacheSubnets",
            description="Langfuse Valkey subnets",
            subnet_ids=self._subnet_ids(self._data_subnets),
        )
        # Langfuse uses Valkey as a queue: it must never evict keys.
        parameters = elasticache.CfnParameterGroup(
            self,
            "CacheParameters",
            cache_parameter_group_family="valkey8",
            description="Langfuse: noeviction (queues must not lose jobs)",
            properties={"maxmemory-policy": "noeviction"},
        )
        replicas = settings.cache_replicas
        group = elasticache.CfnReplicationGroup(
            self,
            "Cache",
            replication_group_description=f"{self.config.prefix} Langfuse queue and cache",
            engine="valkey",
            engine_version="8.0",
            cache_node_type=settings.cache_node_type,
            num_cache_clusters=1 + replicas,
            automatic_failover_enabled=replicas > 0,
            multi_az_enabled=replicas > 0,
            cache_subnet_group_name=subnets.ref,
            cache_parameter_group_name=parameters.ref,
            security_group_ids=[self.security_groups["cache"].security_group_id],
            at_rest_encryption_enabled=True,
            kms_key_id=self.key.key_id,
            transit_encryption_enabled=True,
            transit_encryption_mode="required",
            auth_token=self.secrets["redis"].secret_value.unsafe_unwrap(),
            port=6379,
            auto_minor_version_upgrade=True,
            snapshot_retention_limit=7 if self.config.is_prod else 0,
        )
        group.apply_removal_policy(self.removal_policy)
        return group

    # --- ECS cluster, ClickHouse ---------------------------------------------------------------------

    def _create_cluster(self) -> tuple[ecs.Cluster, servicediscovery.PrivateDnsNamespace]:
        cluster = ecs.Cluster(
            self,
            "Cluster",
            vpc=self.vpc,
            enable_fargate_capacity_providers=True,
            container_insights_v2=(
                ecs.ContainerInsights.ENABLED
                if self.config.observability.container_insights
                else ecs.ContainerInsights.DISABLED
            ),
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

    def _task_definition(self, name: str, size: ServiceSize) -> ecs.FargateTaskDefinition:
        return ecs.FargateTaskDefinition(
            self,
            f"{name}Task",
            cpu=size.cpu,
            memory_limit_mib=size.memory_mib,
            runtime_platform=ecs.RuntimePlatform(
                cpu_architecture=ecs.CpuArchitecture.X86_64,
                operating_system_family=ecs.OperatingSystemFamily.LINUX,
            ),
        )

    def _log_driver(self, name: str) -> ecs.LogDriver:
        group = self.create_log_group(
            f"{name}Logs", retention_days=self.config.observability.log_retention_days, key=self.key
        )
        return ecs.LogDrivers.aws_logs(stream_prefix=name.lower(), log_group=group)

    def _service(
        self,
        name: str,
        task: ecs.FargateTaskDefinition,
        size: ServiceSize,
        security_group: ec2.ISecurityGroup,
        **options: Any,
    ) -> ecs.FargateService:
        provider = "FARGATE_SPOT" if self.config.observability.fargate_spot else "FARGATE"
        return ecs.FargateService(
            self,
            f"{name}Service",
            cluster=self.cluster,
            task_definition=task,
            desired_count=size.tasks,
            vpc_subnets=self._service_subnets,
            security_groups=[security_group],
            assign_public_ip=False,
            capacity_provider_strategies=[ecs.CapacityProviderStrategy(capacity_provider=provider, weight=1)],
            circuit_breaker=ecs.DeploymentCircuitBreaker(enable=True, rollback=True),
            enable_execute_command=False,
            propagate_tags=ecs.PropagatedTagSource.SERVICE,
            **options,
        )

    def _create_clickhouse(self) -> ecs.FargateService:
        size = self.config.observability.clickhouse
        files, access_point = self.clickhouse_files
        task = self._task_definition("ClickHouse", size)
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
        container = task.add_container(
            "clickhouse",
            image=ecs.ContainerImage.from_registry(self.config.observability.clickhouse_image),
            user=f"{CLICKHOUSE_UID}:{CLICKHOUSE_UID}",
            environment={"CLICKHOUSE_DB": "default", "CLICKHOUSE_USER": CLICKHOUSE_USER},
            secrets={"CLICKHOUSE_PASSWORD": ecs.Secret.from_secrets_manager(self.secrets["clickhouse"])},
            port_mappings=[
                ecs.PortMapping(container_port=CLICKHOUSE_HTTP_PORT, name="http"),
                ecs.PortMapping(container_port=CLICKHOUSE_TCP_PORT, name="native"),
            ],
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
            ulimits=[ecs.Ulimit(name=ecs.UlimitName.NOFILE, soft_limit=262144, hard_limit=262144)],
            logging=self._log_driver("ClickHouse"),
        )
        container.add_mount_points(
            ecs.MountPoint(
                container_path="/var/lib/clickhouse", source_volume="clickhouse-data", read_only=False
            )
        )
        service = self._service(
            "ClickHouse",
            task,
            size,
            self.security_groups["clickhouse"],
            # One writer on the data directory: stop the old task before starting the new one.
            min_healthy_percent=0,
            max_healthy_percent=100,
            cloud_map_options=ecs.CloudMapOptions(
                name="clickhouse",
                cloud_map_namespace=self.namespace,
                dns_record_type=servicediscovery.DnsRecordType.A,
                dns_ttl=cdk.Duration.seconds(10),
            ),
        )
        service.node.add_dependency(files.mount_targets_available)
        return service

    # --- entry: internal ALB behind CloudFront -------------------------------------------------------

    def _create_load_balancer(self) -> tuple[elbv2.ApplicationLoadBalancer, elbv2.ApplicationTargetGroup]:
        alb = elbv2.ApplicationLoadBalancer(
            self,
            "LoadBalancer",
            vpc=self.vpc,
            internet_facing=False,
            vpc_subnets=self._service_subnets,
            security_group=self.security_groups["alb"],
            drop_invalid_header_fields=True,
            idle_timeout=cdk.Duration.seconds(120),
            deletion_protection=self.config.retain_data,
        )
        if not cdk.Token.is_unresolved(self.region):
            alb.log_access_logs(self.access_logs_bucket, prefix="alb")
        target_group = elbv2.ApplicationTargetGroup(
            self,
            "WebTargets",
            vpc=self.vpc,
            port=WEB_PORT,
            protocol=elbv2.ApplicationProtocol.HTTP,
            target_type=elbv2.TargetType.IP,
            deregistration_delay=cdk.Duration.seconds(30),
            health_check=elbv2.HealthCheck(
                path=HEALTH_PATH,
                healthy_http_codes="200",
                interval=cdk.Duration.seconds(30),
                timeout=cdk.Duration.seconds(10),
                healthy_threshold_count=2,
                unhealthy_threshold_count=3,
            ),
        )
        alb.add_listener(
            "Http",
            port=80,
            protocol=elbv2.ApplicationProtocol.HTTP,
            open=False,
            default_target_groups=[target_group],
        )
        return alb, target_group

    def _create_distribution(self) -> cloudfront.Distribution:
        origin = origins.VpcOrigin.with_application_load_balancer(
            self.load_balancer,
            protocol_policy=cloudfront.OriginProtocolPolicy.HTTP_ONLY,
            http_port=80,
            read_timeout=cdk.Duration.seconds(60),
        )
        return cloudfront.Distribution(
            self,
            "Distribution",
            comment=f"{self.config.prefix} Langfuse",
            price_class={
                "100": cloudfront.PriceClass.PRICE_CLASS_100,
                "200": cloudfront.PriceClass.PRICE_CLASS_200,
                "all": cloudfront.PriceClass.PRICE_CLASS_ALL,
            }[self.config.observability.price_class],
            http_version=cloudfront.HttpVersion.HTTP2_AND_3,
            default_behavior=cloudfront.BehaviorOptions(
                origin=origin,
                viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
                allowed_methods=cloudfront.AllowedMethods.ALLOW_ALL,
                cache_policy=cloudfront.CachePolicy.CACHING_DISABLED,
                origin_request_policy=cloudfront.OriginRequestPolicy.ALL_VIEWER_EXCEPT_HOST_HEADER,
                compress=True,
            ),
        )

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
            "REDIS_HOST": self.cache.attr_primary_end_point_address,
            "REDIS_PORT": self.cache.attr_primary_end_point_port,
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
        database_secret = self.database.secret
        assert database_secret is not None  # generated credentials always create a secret
        return {
            "DATABASE_PASSWORD": ecs.Secret.from_secrets_manager(database_secret, "password"),
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
        task = self._task_definition("Web", settings.web)
        self._grant_storage(task)
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
        task.add_container(
            "web",
            image=ecs.ContainerImage.from_registry(settings.langfuse_web_image),
            environment=environment,
            secrets=secrets,
            port_mappings=[ecs.PortMapping(container_port=WEB_PORT, name="http")],
            health_check=ecs.HealthCheck(
                command=["CMD-SHELL", f"wget -q --spider http://127.0.0.1:{WEB_PORT}{HEALTH_PATH} || exit 1"],
                interval=cdk.Duration.seconds(30),
                timeout=cdk.Duration.seconds(10),
                retries=3,
                # First boot runs the Postgres and ClickHouse migrations.
                start_period=cdk.Duration.seconds(180),
            ),
            logging=self._log_driver("Web"),
        )
        service = self._service(
            "Web",
            task,
            settings.web,
            self.security_groups["web"],
            health_check_grace_period=cdk.Duration.seconds(300),
            min_healthy_percent=100,
            max_healthy_percent=200,
        )
        service.attach_to_application_target_group(self.target_group)
        service.node.add_dependency(self.clickhouse)
        service.node.add_dependency(self.cache)
        return service

    def _create_worker(self) -> ecs.FargateService:
        settings = self.config.observability
        task = self._task_definition("Worker", settings.worker)
        self._grant_storage(task)
        task.add_container(
            "worker",
            image=ecs.ContainerImage.from_registry(settings.langfuse_worker_image),
            environment={
                **self._shared_environment(),
                "HOSTNAME": "0.0.0.0",  # noqa: S104
                "PORT": str(WORKER_PORT),
                "NODE_OPTIONS": node_options(settings.worker.memory_mib),
            },
            secrets=self._shared_secrets(),
            port_mappings=[ecs.PortMapping(container_port=WORKER_PORT, name="http")],
            health_check=ecs.HealthCheck(
                command=[
                    "CMD-SHELL",
                    f"wget -q --spider http://127.0.0.1:{WORKER_PORT}/api/health || exit 1",
                ],
                interval=cdk.Duration.seconds(30),
                timeout=cdk.Duration.seconds(10),
                retries=3,
                start_period=cdk.Duration.seconds(180),
            ),
            logging=self._log_driver("Worker"),
        )
        service = self._service(
            "Worker",
            task,
            settings.worker,
            self.security_groups["worker"],
            min_healthy_percent=100,
            max_healthy_percent=200,
        )
        # The web task runs the migrations; the worker starts after it exists.
        service.node.add_dependency(self.web)
        return service

    # --- outputs (names and URLs only; never secret values) ------------------------------------------

    def _create_outputs(self) -> None:
        cdk.CfnOutput(self, "LangfuseUrl", value=self.url, description="Langfuse UI and API (HTTPS)")
        cdk.CfnOutput(
            self,
            "LangfuseAdminSecretArn",
            value=self.admin_secret.secret_arn,
            description="Secrets Manager secret with the admin email and password (read it with the CLI)",
        )
        cdk.CfnOutput(
            self,
            "LangfuseKeysSecretArn",
            value=self.keys_secret.secret_arn,
            description="Secrets Manager secret with the project public and secret keys",
        )

    # --- cdk-nag acknowledgements ----------------------------------------------------------------------

    def _acknowledge_findings(self) -> None:
        acknowledge_cdk_helpers(self)
        rotation_note = (
            "Langfuse reads this value once at start; rotating it needs a coordinated restart (and for "
            "ENCRYPTION_KEY/SALT a re-encryption), so it is rotated by redeploying, not by a rotation Lambda."
        )
        for secret in [*self.secrets.values(), self.keys_secret, self.admin_secret]:
            acknowledge_all(
                secret,
                {
                    "AwsSolutions-SMG4": rotation_note,
                    "NIST.800.53.R5-SecretsManagerRotationEnabled": rotation_note,
                },
            )
        database_rotation_note = (
            "The Langfuse tasks read the database password at start; a rotation would need a rolling restart "
            "of web and worker, done by redeploying rather than by a rotation Lambda."
        )
        acknowledge_all(
            self.database,
            {
                "AwsSolutions-SMG4": database_rotation_note,
                "NIST.800.53.R5-SecretsManagerRotationEnabled": database_rotation_note,
                "NIST.800.53.R5-RDSEnhancedMonitoringEnabled": "The operations dashboard and alarms use Aurora's "
                "CloudWatch metrics (capacity, ACU utilisation, connections); OS-level enhanced monitoring "
                "adds cost without a consumer.",
                "AwsSolutions-RDS10": "Deletion protection follows the profile: on where data is retained (prod), "
                "off in dev so the stack destroys cleanly.",
                "NIST.800.53.R5-RDSInstanceDeletionProtectionEnabled": "Deletion protection follows the profile: "
                "on where data is retained (prod), off in dev so the stack destroys cleanly.",
                "AwsSolutions-RDS11": "The default Postgres port inside private, isolated subnets; only the "
                "Langfuse task security groups may connect.",
                "NIST.800.53.R5-RDSInBackupPlan": "Aurora's continuous automated backups (point-in-time "
                "restore) cover this cluster; no separate AWS Backup plan.",
                "NIST.800.53.R5-AuroraMySQLBacktrack": "The cluster is Aurora PostgreSQL; backtrack exists "
                "for Aurora MySQL only.",
            },
        )
        if isinstance(self.database, rds.DatabaseInstance) and self.config.observability.db_readers == 0:
            single_az = (
                "One PostgreSQL instance without a standby in this profile (observability.db_readers: 0) keeps "
                "idle cost low; automated backups restore it. Prod uses Aurora with a reader in another AZ."
            )
            acknowledge_all(
                self.database,
                {"AwsSolutions-RDS3": single_az, "NIST.800.53.R5-RDSMultiAZSupport": single_az},
            )
        acknowledge_all(self.access_logs_bucket, ACCESS_LOG_BUCKET_ACKNOWLEDGEMENTS)
        for bucket in self.buckets.values():
            acknowledge(
                bucket,
                "NIST.800.53.R5-S3BucketReplicationEnabled",
                "Langfuse events, media and exports are regional working data with lifecycle expiry; "
                "cross-region replication is not required.",
            )
        acknowledge_all(
            self.load_balancer,
            {
                "NIST.800.53.R5-ALBHttpToHttpsRedirection": "The ALB is internal and reachable only from inside "
                "the VPC; CloudFront terminates TLS and reaches it through a private VPC origin (no custom "
                "domain, so no certificate for the ALB).",
                "NIST.800.53.R5-ELBDeletionProtectionEnabled": "Deletion protection follows the profile "
                "(on where data is retained).",
                "NIST.800.53.R5-ELBv2ACMCertificateRequired": "No custom domain, so no ACM certificate: "
                "CloudFront terminates TLS with its default certificate and reaches this internal ALB "
                "through a private VPC origin.",
                "NIST.800.53.R5-ALBWAFEnabled": "The ALB is internal; the only entry is CloudFront, and Langfuse "
                "requires a login (sign-up disabled) or project API keys on every route except health.",
            },
        )
        if cdk.Token.is_unresolved(self.region):
            acknowledge_all(
                self.load_balancer,
                {
                    "AwsSolutions-ELB2": "ALB access logging needs the target region to authorise log delivery; "
                    "it is enabled whenever environment.region is set.",
                    "NIST.800.53.R5-ELBLoggingEnabled": "ALB access logging is enabled whenever "
                    "environment.region is set (log delivery is authorised per region).",
                },
            )
        acknowledge_all(
            self.distribution,
            {
                "AwsSolutions-CFR1": "Langfuse is an internal tool protected by its own login; no country-level "
                "restriction is required.",
                "AwsSolutions-CFR2": "Every Langfuse route except health requires a login or project API keys; "
                "a WAF web ACL can be attached where required (it adds a fixed monthly cost).",
                "AwsSolutions-CFR3": "Requests are logged by the internal ALB's access logs (when the region is "
                "set) and by Langfuse itself; CloudFront standard logs would need an ACL-enabled bucket.",
                "AwsSolutions-CFR4": "Without a custom domain the distribution uses the default CloudFront "
                "certificate, whose minimum protocol CloudFront fixes; viewers are redirected to HTTPS.",
                "AwsSolutions-CFR5": "The origin is a private VPC origin (an internal ALB): traffic never leaves "
                "AWS's network and the ALB has no certificate without a custom domain.",
            },
        )
        acknowledge_all(
            self.cluster,
            {
                "AwsSolutions-ECS4": "Container Insights follows observability.container_insights (on in prod); "
                "the dashboard uses the free AWS/ECS service metrics.",
            },
        )
        for service in (self.web, self.worker, self.clickhouse):
            acknowledge(
                service.task_definition,
                "AwsSolutions-ECS2",
                "The environment holds only non-secret settings (hosts, bucket names, flags); every secret is "
                "an ECS secret read from Secrets Manager at start.",
            )
        acknowledge(
            self.clickhouse_files[0],
            "NIST.800.53.R5-EFSInBackupPlan",
            "Automatic EFS backups follow the profile (on where data is retained); dev data is disposable.",
        )
        acknowledge(
            self.cache,
            "NIST.800.53.R5-ElastiCacheRedisClusterAutomaticBackup",
            "Valkey holds Langfuse's transient queue and cache; the durable data is in Aurora, ClickHouse "
            "and S3, so cache snapshots are not kept for 15 days.",
        )
        if self.config.observability.cache_replicas == 0:
            acknowledge(
                self.cache,
                "AwsSolutions-AEC4",
                "One cache node in this profile (observability.cache_replicas: 0) to keep idle cost low; "
                "queued events are re-sent by the SDKs' retries if the node is replaced. Prod runs a replica.",
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
        acknowledge(
            self.cache,
            "AwsSolutions-AEC5",
            "Valkey listens on its default port inside private, isolated subnets; only the Langfuse tasks may "
            "connect, with TLS and an AUTH token.",
        )

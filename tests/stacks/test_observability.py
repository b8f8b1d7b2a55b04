"""Observability stack: self-hosted Langfuse security properties, storage, health, entry, and the modes."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Match, Template

from config import AppConfig, ConfigError
from scripts.synth_summary import lint_template
from stacks.compliance import enable_compliance_checks, read_validation_report
from stacks.network import NetworkStack
from stacks.observability import ObservabilityStack, external_connection
from tests.factories import test_config
from tests.support.cdk import resources_of

# Environment names that would carry a secret if set as plain environment.
SECRET_VARIABLES = {
    "DATABASE_URL",
    "DATABASE_PASSWORD",
    "DIRECT_URL",
    "SALT",
    "ENCRYPTION_KEY",
    "NEXTAUTH_SECRET",
    "CLICKHOUSE_PASSWORD",
    "REDIS_AUTH",
    "REDIS_CONNECTION_STRING",
    "LANGFUSE_INIT_PROJECT_PUBLIC_KEY",
    "LANGFUSE_INIT_PROJECT_SECRET_KEY",
    "LANGFUSE_INIT_USER_PASSWORD",
}
WEB_SECRETS = SECRET_VARIABLES - {"DATABASE_URL", "DIRECT_URL", "REDIS_CONNECTION_STRING"}
WORKER_SECRETS = {"DATABASE_PASSWORD", "SALT", "ENCRYPTION_KEY", "CLICKHOUSE_PASSWORD", "REDIS_AUTH"}


@dataclass(frozen=True)
class Synth:
    stack: ObservabilityStack
    template: Template
    outdir: Path

    @property
    def json(self) -> dict[str, Any]:
        return dict(self.template.to_json())


def _synth(config: AppConfig, outdir: Path) -> Synth:
    app = cdk.App(outdir=str(outdir))
    network = NetworkStack(app, config=config)
    stack = ObservabilityStack(
        app,
        config=config,
        vpc=network.vpc,
        service_subnets=network.service_subnets,
        data_subnets=network.data_subnets,
    )
    enable_compliance_checks(app)
    app.synth()
    return Synth(stack, Template.from_stack(stack), outdir)


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    return _synth(test_config("dev"), tmp_path_factory.mktemp("observability-dev"))


@pytest.fixture(scope="module")
def template(dev: Synth) -> Template:
    return dev.template


@pytest.fixture(scope="module")
def prod(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    return _synth(test_config("prod"), tmp_path_factory.mktemp("observability-prod"))


def _containers(template: Template) -> dict[str, dict[str, Any]]:
    containers = {}
    for task in resources_of(template, "AWS::ECS::TaskDefinition").values():
        for container in task["Properties"]["ContainerDefinitions"]:
            containers[container["Name"]] = container
    return containers


def _env(container: dict[str, Any]) -> dict[str, Any]:
    return {item["Name"]: item["Value"] for item in container.get("Environment", [])}


def _secrets(container: dict[str, Any]) -> dict[str, Any]:
    return {item["Name"]: item["ValueFrom"] for item in container.get("Secrets", [])}


def _logical_id(synth: Synth, construct: Any) -> str:
    return synth.stack.get_logical_id(construct.node.default_child)


def _refers_to(value: Any, logical_id: str) -> bool:
    return logical_id in json.dumps(value)


# --- secrets ---------------------------------------------------------------------------------------


def test_no_secret_variable_is_plain_environment(template: Template) -> None:
    for name, container in _containers(template).items():
        leaked = SECRET_VARIABLES & set(_env(container))
        assert not leaked, f"{name} has secrets in plain environment: {leaked}"


def test_no_environment_value_resolves_a_secret(template: Template) -> None:
    # A dynamic reference in `environment` would be resolved into the task definition in plain text.
    for name, container in _containers(template).items():
        assert "resolve:secretsmanager" not in json.dumps(container.get("Environment", [])), name


def test_web_receives_every_secret_as_an_ecs_secret(template: Template) -> None:
    assert set(_secrets(_containers(template)["web"])) == WEB_SECRETS


def test_worker_receives_its_secrets_as_ecs_secrets(template: Template) -> None:
    assert set(_secrets(_containers(template)["worker"])) == WORKER_SECRETS


def test_clickhouse_password_is_an_ecs_secret(template: Template) -> None:
    assert set(_secrets(_containers(template)["clickhouse"])) == {"CLICKHOUSE_PASSWORD"}


def test_every_secret_is_generated_at_deploy_time_and_kms_encrypted(template: Template) -> None:
    secrets = resources_of(template, "AWS::SecretsManager::Secret")
    assert len(secrets) == 10  # 7 generated values, project keys, admin user, database credentials
    for logical_id, secret in secrets.items():
        properties = secret["Properties"]
        assert "KmsKeyId" in properties, logical_id
        if "SecretString" in properties:  # only the project keys, assembled from generated secrets
            assert logical_id.startswith("ProjectKeys")
        else:
            assert "GenerateSecretString" in properties, logical_id


def test_project_keys_are_assembled_only_from_dynamic_references(dev: Synth) -> None:
    value = dev.json["Resources"][_logical_id(dev, dev.stack.keys_secret)]["Properties"]["SecretString"]
    literals = "".join(part for part in value["Fn::Join"][1] if isinstance(part, str))
    assert literals.count("{{resolve:secretsmanager:") == 2
    # Only JSON punctuation, the key names and the pk-lf-/sk-lf- prefixes are literal.
    stripped = re.sub(r"\{\{resolve:secretsmanager:|:SecretString:::\}\}", "", literals)
    assert stripped == '{"public_key":"pk-lf-","secret_key":"sk-lf-"}'


def test_encryption_key_is_64_hex_characters(dev: Synth) -> None:
    generator = dev.json["Resources"][_logical_id(dev, dev.stack.secrets["encryption"])]["Properties"][
        "GenerateSecretString"
    ]
    excluded = generator["ExcludeCharacters"]
    assert generator["PasswordLength"] == 64 and generator["ExcludeUppercase"] is True
    alphabet = {c for c in "abcdefghijklmnopqrstuvwxyz0123456789" if c not in excluded}
    assert alphabet == set("0123456789abcdef")


def test_generated_values_are_url_safe(dev: Synth) -> None:
    # The database password is spliced into DATABASE_URL by the Langfuse entrypoint without encoding.
    for secret in [*dev.stack.secrets.values()]:
        generator = dev.json["Resources"][_logical_id(dev, secret)]["Properties"]["GenerateSecretString"]
        assert generator["ExcludePunctuation"] is True


def test_admin_password_has_every_character_class(dev: Synth) -> None:
    generator = dev.json["Resources"][_logical_id(dev, dev.stack.admin_secret)]["Properties"][
        "GenerateSecretString"
    ]
    assert generator["RequireEachIncludedType"] is True and generator["GenerateStringKey"] == "password"


def test_outputs_hold_no_secret_values(template: Template) -> None:
    outputs = template.to_json()["Outputs"]
    assert {"LangfuseUrl", "LangfuseAdminSecretArn", "LangfuseKeysSecretArn"} <= set(outputs)
    assert "resolve:secretsmanager" not in json.dumps(outputs)


def test_template_contains_no_resolved_secret_material(template: Template) -> None:
    text = json.dumps(template.to_json())
    assert not re.search(r"(pk|sk)-lf-[A-Za-z0-9]{8,}", text)
    assert 'SecretString": "' not in text


# --- Langfuse configuration ------------------------------------------------------------------------


def test_sign_up_is_disabled(template: Template) -> None:
    assert _env(_containers(template)["web"])["AUTH_DISABLE_SIGNUP"] == "true"


def test_headless_init_creates_org_project_and_admin(template: Template) -> None:
    env = _env(_containers(template)["web"])
    assert env["LANGFUSE_INIT_ORG_ID"] == "aaf-org"
    assert env["LANGFUSE_INIT_PROJECT_ID"] == "aaf-agentic-foundation"
    assert env["LANGFUSE_INIT_USER_EMAIL"] == "admin@example.com"


def test_headless_init_keys_come_from_the_project_keys_secret(dev: Synth) -> None:
    secrets = _secrets(_containers(dev.template)["web"])
    keys_id = _logical_id(dev, dev.stack.keys_secret)
    for name, field in (
        ("LANGFUSE_INIT_PROJECT_PUBLIC_KEY", "public_key"),
        ("LANGFUSE_INIT_PROJECT_SECRET_KEY", "secret_key"),
    ):
        assert _refers_to(secrets[name], keys_id) and f":{field}::" in json.dumps(secrets[name])
    assert _refers_to(secrets["LANGFUSE_INIT_USER_PASSWORD"], _logical_id(dev, dev.stack.admin_secret))


def test_nextauth_url_is_the_cloudfront_https_url(dev: Synth) -> None:
    url = _env(_containers(dev.template)["web"])["NEXTAUTH_URL"]
    assert json.dumps(url).startswith('{"Fn::Join": ["", ["https://", {"Fn::GetAtt": ["Distribution')


def test_clickhouse_single_node_via_cloud_map(template: Template) -> None:
    env = _env(_containers(template)["web"])
    assert env["CLICKHOUSE_CLUSTER_ENABLED"] == "false"
    assert env["CLICKHOUSE_URL"] == "http://clickhouse.aaf-langfuse.internal:8123"
    assert env["CLICKHOUSE_MIGRATION_URL"] == "clickhouse://clickhouse.aaf-langfuse.internal:9000"
    template.has_resource_properties(
        "AWS::ServiceDiscovery::Service", {"Name": "clickhouse", "DnsConfig": Match.object_like({})}
    )


def test_web_binds_all_interfaces(template: Template) -> None:
    assert _env(_containers(template)["web"])["HOSTNAME"] == "0.0.0.0"


def test_valkey_never_evicts_queue_keys(template: Template) -> None:
    template.has_resource_properties(
        "AWS::ElastiCache::ParameterGroup",
        {"CacheParameterGroupFamily": "valkey8", "Properties": {"maxmemory-policy": "noeviction"}},
    )


def test_database_requires_tls(template: Template, prod: Synth) -> None:
    template.has_resource_properties("AWS::RDS::DBParameterGroup", {"Parameters": {"rds.force_ssl": "1"}})
    prod.template.has_resource_properties(
        "AWS::RDS::DBClusterParameterGroup", {"Parameters": {"rds.force_ssl": "1"}}
    )
    assert _env(_containers(template)["web"])["DATABASE_ARGS"] == "sslmode=require"


# --- encryption and storage ------------------------------------------------------------------------


def test_data_buckets_use_kms(dev: Synth) -> None:
    for bucket in dev.stack.buckets.values():
        properties = dev.json["Resources"][_logical_id(dev, bucket)]["Properties"]
        rule = properties["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
        assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"


def test_every_bucket_is_encrypted_private_and_ssl_only(template: Template) -> None:
    buckets = resources_of(template, "AWS::S3::Bucket")
    assert len(buckets) == 4
    for logical_id, bucket in buckets.items():
        assert "BucketEncryption" in bucket["Properties"], logical_id
        assert bucket["Properties"]["PublicAccessBlockConfiguration"]["RestrictPublicBuckets"] is True
    policies = resources_of(template, "AWS::S3::BucketPolicy").values()
    ssl_denied = {
        json.dumps(p["Properties"]["Bucket"])
        for p in policies
        for statement in p["Properties"]["PolicyDocument"]["Statement"]
        if statement.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport") == "false"
        and statement["Effect"] == "Deny"
    }
    assert len(ssl_denied) == 4


def test_buckets_have_lifecycle_rules(dev: Synth) -> None:
    expected = {"events": 30, "exports": 7, "media": None}
    for name, bucket in dev.stack.buckets.items():
        rules = dev.json["Resources"][_logical_id(dev, bucket)]["Properties"]["LifecycleConfiguration"][
            "Rules"
        ]
        assert rules[0].get("ExpirationInDays") == expected[name], name
        assert rules[0]["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"] == 1


def test_database_cache_and_files_are_encrypted(template: Template, prod: Synth) -> None:
    template.has_resource_properties(
        "AWS::RDS::DBInstance", {"StorageEncrypted": True, "KmsKeyId": Match.any_value()}
    )
    prod.template.has_resource_properties(
        "AWS::RDS::DBCluster", {"StorageEncrypted": True, "KmsKeyId": Match.any_value()}
    )
    template.has_resource_properties(
        "AWS::ElastiCache::ReplicationGroup",
        {"AtRestEncryptionEnabled": True, "TransitEncryptionEnabled": True, "KmsKeyId": Match.any_value()},
    )
    template.has_resource_properties(
        "AWS::EFS::FileSystem", {"Encrypted": True, "KmsKeyId": Match.any_value()}
    )


def test_log_groups_are_encrypted_with_retention(template: Template) -> None:
    groups = resources_of(template, "AWS::Logs::LogGroup")
    assert len(groups) == 5  # web, worker, clickhouse, postgres server and upgrade logs
    for group in groups.values():
        assert group["Properties"]["RetentionInDays"] == 30 and "KmsKeyId" in group["Properties"]


def test_clickhouse_data_lives_on_encrypted_efs(template: Template) -> None:
    task = next(
        t
        for t in resources_of(template, "AWS::ECS::TaskDefinition").values()
        if t["Properties"]["ContainerDefinitions"][0]["Name"] == "clickhouse"
    )
    volume = task["Properties"]["Volumes"][0]["EFSVolumeConfiguration"]
    assert volume["TransitEncryption"] == "ENABLED"
    assert (
        volume["AuthorizationConfig"]["IAM"] == "ENABLED" and "AccessPointId" in volume["AuthorizationConfig"]
    )
    mount = task["Properties"]["ContainerDefinitions"][0]["MountPoints"][0]
    assert mount == {
        "ContainerPath": "/var/lib/clickhouse",
        "ReadOnly": False,
        "SourceVolume": "clickhouse-data",
    }


def test_clickhouse_never_runs_two_writers(dev: Synth) -> None:
    service = dev.json["Resources"][_logical_id(dev, dev.stack.clickhouse)]["Properties"]
    assert service["DesiredCount"] == 1
    assert service["DeploymentConfiguration"]["MinimumHealthyPercent"] == 0
    assert service["DeploymentConfiguration"]["MaximumPercent"] == 100


def test_efs_accepts_nfs_only_from_clickhouse(dev: Synth) -> None:
    files_sg = _logical_id(dev, dev.stack.security_groups["files"])
    ingress = [
        r["Properties"]
        for r in resources_of(dev.template, "AWS::EC2::SecurityGroupIngress").values()
        if _refers_to(r["Properties"]["GroupId"], files_sg)
    ]
    assert len(ingress) == 1 and ingress[0]["FromPort"] == 2049
    assert _refers_to(
        ingress[0]["SourceSecurityGroupId"], _logical_id(dev, dev.stack.security_groups["clickhouse"])
    )


# --- health checks and entry -----------------------------------------------------------------------


def test_every_container_has_a_health_check(template: Template) -> None:
    for name, container in _containers(template).items():
        command = container["HealthCheck"]["Command"]
        assert command[0] == "CMD-SHELL" and "127.0.0.1" in command[1], name


def test_load_balancer_checks_langfuse_health(template: Template) -> None:
    template.has_resource_properties(
        "AWS::ElasticLoadBalancingV2::TargetGroup",
        {"HealthCheckPath": "/api/public/health", "Port": 3000, "TargetType": "ip"},
    )


def test_services_roll_back_failed_deployments(template: Template) -> None:
    services = resources_of(template, "AWS::ECS::Service")
    assert len(services) == 3
    for service in services.values():
        breaker = service["Properties"]["DeploymentConfiguration"]["DeploymentCircuitBreaker"]
        assert breaker == {"Enable": True, "Rollback": True}


def test_load_balancer_is_internal_and_only_reachable_from_the_vpc(dev: Synth) -> None:
    dev.template.has_resource_properties("AWS::ElasticLoadBalancingV2::LoadBalancer", {"Scheme": "internal"})
    alb_sg = dev.json["Resources"][_logical_id(dev, dev.stack.security_groups["alb"])]["Properties"]
    assert alb_sg["SecurityGroupIngress"] == [
        {
            "CidrIp": "10.40.0.0/16",
            "Description": "CloudFront VPC origin (inside the VPC)",
            "FromPort": 80,
            "IpProtocol": "tcp",
            "ToPort": 80,
        }
    ]


def test_cloudfront_redirects_to_https_through_a_vpc_origin(template: Template) -> None:
    template.resource_count_is("AWS::CloudFront::VpcOrigin", 1)
    template.has_resource_properties(
        "AWS::CloudFront::Distribution",
        {
            "DistributionConfig": Match.object_like(
                {
                    "DefaultCacheBehavior": Match.object_like(
                        {
                            "ViewerProtocolPolicy": "redirect-to-https",
                            "AllowedMethods": Match.array_with(["POST"]),
                        }
                    )
                }
            )
        },
    )


def test_tasks_run_in_private_subnets_without_public_ips(template: Template) -> None:
    for service in resources_of(template, "AWS::ECS::Service").values():
        network = service["Properties"]["NetworkConfiguration"]["AwsvpcConfiguration"]
        assert network["AssignPublicIp"] == "DISABLED"


# --- profiles --------------------------------------------------------------------------------------


def test_dev_uses_fargate_spot(template: Template) -> None:
    for service in resources_of(template, "AWS::ECS::Service").values():
        strategy = service["Properties"]["CapacityProviderStrategy"]
        assert [s["CapacityProvider"] for s in strategy] == ["FARGATE_SPOT"]


def test_prod_uses_on_demand_fargate(prod: Synth) -> None:
    for service in resources_of(prod.template, "AWS::ECS::Service").values():
        assert [s["CapacityProvider"] for s in service["Properties"]["CapacityProviderStrategy"]] == [
            "FARGATE"
        ]


def test_dev_database_is_one_small_private_instance(template: Template) -> None:
    template.resource_count_is("AWS::RDS::DBCluster", 0)
    template.has_resource_properties(
        "AWS::RDS::DBInstance",
        {
            "DBInstanceClass": "db.t4g.micro",
            "MultiAZ": False,
            "PubliclyAccessible": False,
            "StorageType": "gp3",
        },
    )


def test_prod_database_is_aurora_serverless(prod: Synth) -> None:
    prod.template.has_resource_properties(
        "AWS::RDS::DBCluster", {"ServerlessV2ScalingConfiguration": {"MinCapacity": 0.5, "MaxCapacity": 8}}
    )


def test_database_logs_are_exported_to_encrypted_groups(template: Template) -> None:
    template.has_resource_properties(
        "AWS::RDS::DBInstance", {"EnableCloudwatchLogsExports": ["postgresql", "upgrade"]}
    )
    for export in ("postgresql", "upgrade"):
        template.has_resource_properties(
            "AWS::Logs::LogGroup",
            {"LogGroupName": f"/aws/rds/instance/aaf-langfuse-db/{export}", "KmsKeyId": Match.any_value()},
        )


def test_prod_is_highly_available_and_retained(prod: Synth) -> None:
    prod.template.resource_count_is("AWS::RDS::DBInstance", 2)
    prod.template.has_resource_properties("AWS::RDS::DBCluster", {"DeletionProtection": True})
    prod.template.has_resource_properties(
        "AWS::ElastiCache::ReplicationGroup", {"NumCacheClusters": 2, "MultiAZEnabled": True}
    )
    prod.template.has_resource("AWS::EFS::FileSystem", {"DeletionPolicy": "Retain"})


def test_dev_destroys_cleanly(template: Template) -> None:
    for logical_id, bucket in template.find_resources("AWS::S3::Bucket").items():
        assert bucket["DeletionPolicy"] == "Delete", logical_id
    template.has_resource("AWS::RDS::DBInstance", {"DeletionPolicy": "Delete"})


# --- gates -----------------------------------------------------------------------------------------


def test_nag_has_no_unacknowledged_finding(dev: Synth, prod: Synth) -> None:
    for synth in (dev, prod):
        open_findings = [
            f for f in read_validation_report(synth.outdir).unacknowledged if "aaf-observability" in f
        ]
        assert open_findings == []


def test_cfn_lint_has_no_error(dev: Synth, prod: Synth) -> None:
    for synth in (dev, prod):
        errors, _ = lint_template(synth.outdir / "aaf-observability.template.json")
        assert errors == ()


# --- modes -----------------------------------------------------------------------------------------


def test_connection_points_consumers_at_cloudfront_and_the_keys_secret(dev: Synth) -> None:
    connection = dev.stack.connection
    assert connection is not None and connection.keys_secret is dev.stack.keys_secret
    assert connection.host == dev.stack.url and dev.stack.url.startswith("https://")


def test_external_mode_imports_the_keys_secret_by_name() -> None:
    config = test_config(
        "dev",
        components={"observability": "external"},
        observability={
            "external_host": "https://cloud.langfuse.com/",
            "external_keys_secret_name": "aaf/langfuse",
        },
    )
    stack = cdk.Stack(cdk.App(), "Consumer")
    connection = external_connection(stack, config)
    assert connection is not None and connection.host == "https://cloud.langfuse.com"
    assert "aaf/langfuse" in stack.resolve(connection.keys_secret.secret_arn)["Fn::Join"][1][-1]


def test_external_mode_names_the_missing_setting() -> None:
    # refused when the config loads (one line, no traceback), before any stack is built
    with pytest.raises(ConfigError, match=r"observability\.external_host"):
        test_config("dev", components={"observability": "external"})


def test_disabled_mode_has_no_connection() -> None:
    config = test_config("dev", components={"observability": "disabled"})
    assert external_connection(cdk.Stack(cdk.App(), "Consumer"), config) is None


def test_stack_refuses_other_modes() -> None:
    config = test_config(
        "dev",
        components={"observability": "external"},
        observability={
            "external_host": "https://cloud.langfuse.com",
            "external_keys_secret_name": "aaf/langfuse-keys",
        },
    )
    app = cdk.App()
    with pytest.raises(ConfigError, match="only for 'self_hosted'"):
        ObservabilityStack(app, config=config, vpc=NetworkStack(app, config=config).vpc)


def test_self_hosted_needs_a_nat_gateway() -> None:
    config = test_config("dev", network={"nat_gateways": 0})
    app = cdk.App()
    with pytest.raises(ConfigError, match=r"network\.nat_gateways"):
        ObservabilityStack(app, config=config, vpc=NetworkStack(app, config=config).vpc)


def test_config_rejects_an_invalid_fargate_size() -> None:
    with pytest.raises(ConfigError, match=r"'observability\.web\.memory_mib': 3000 is not a Fargate size"):
        test_config("dev", observability={"web": {"cpu": 1024, "memory_mib": 3000}})


def test_database_endpoint_reaches_the_tasks(dev: Synth, prod: Synth) -> None:
    dev_host = _env(_containers(dev.template)["web"])["DATABASE_HOST"]
    prod_host = _env(_containers(prod.template)["web"])["DATABASE_HOST"]
    assert dev_host == {"Fn::GetAtt": [_logical_id(dev, dev.stack.database), "Endpoint.Address"]}
    assert prod_host == {"Fn::GetAtt": [_logical_id(prod, prod.stack.database), "Endpoint.Address"]}


def test_config_rejects_fractional_acu_steps() -> None:
    with pytest.raises(ConfigError, match=r"observability\.db_min_acu"):
        test_config("dev", observability={"db_min_acu": 0.25})


# --- Langfuse sizing (Langfuse self-hosting docs: 2 CPU / 4 GiB per container; NODE_OPTIONS heap) ---------


def _task_of(template: Template, container_name: str) -> dict[str, Any]:
    for task in resources_of(template, "AWS::ECS::TaskDefinition").values():
        if any(c["Name"] == container_name for c in task["Properties"]["ContainerDefinitions"]):
            return dict(task["Properties"])
    raise AssertionError(f"no task runs {container_name}")


@pytest.mark.parametrize("profile", ["dev", "prod"])
@pytest.mark.parametrize("name", ["web", "worker"])
def test_langfuse_containers_get_the_documented_memory_and_a_heap_below_it(
    request: pytest.FixtureRequest, profile: str, name: str
) -> None:
    synthesized: Synth = request.getfixturevalue(profile)
    task = _task_of(synthesized.template, name)
    memory = int(task["Memory"])
    assert memory >= 4096  # "2 CPU, 4 GiB Memory" minimum (langfuse.com/self-hosting/configuration/scaling)
    assert int(task["Cpu"]) >= (2048 if profile == "prod" else 1024)
    options = _env(_containers(synthesized.template)[name])["NODE_OPTIONS"]
    heap = int(options.removeprefix("--max-old-space-size="))
    # Without the flag Node caps the heap near 1.7 GiB; at the container size it would leave nothing for
    # buffers and native memory: 75% of the container (nodejs.org/api/cli.html, --max-old-space-size).
    assert heap == memory * 3 // 4
    assert 1740 < heap < memory


def test_node_heap_follows_the_container_size() -> None:
    from config.observability import node_heap_mib, node_options

    assert node_heap_mib(4096) == 3072 and node_heap_mib(8192) == 6144
    assert node_options(4096) == "--max-old-space-size=3072"
    with pytest.raises(ValueError, match="too small"):
        node_heap_mib(512)


@pytest.mark.parametrize(
    ("size", "fragment"),
    [({"cpu": 512, "memory_mib": 4096}, "1024 CPU units"), ({"cpu": 1024, "memory_mib": 2048}, "4096 MiB")],
)
@pytest.mark.parametrize("name", ["web", "worker"])
def test_config_rejects_langfuse_sizes_below_the_documented_minimum(
    name: str, size: dict[str, int], fragment: str
) -> None:
    with pytest.raises(ConfigError) as error:
        test_config("dev", observability={name: size})
    assert f"observability.{name}" in str(error.value) and fragment in str(error.value)


def test_access_log_bucket_expires_old_versions(dev: Synth) -> None:
    bucket = dev.json["Resources"][_logical_id(dev, dev.stack.access_logs_bucket)]["Properties"]
    (rule,) = bucket["LifecycleConfiguration"]["Rules"]
    assert bucket["VersioningConfiguration"]["Status"] == "Enabled"
    assert rule["NoncurrentVersionExpiration"]["NoncurrentDays"] == 1
    assert rule["ExpirationInDays"] == 14


def test_database_engine_is_the_shared_version(template: Template, prod: Synth) -> None:
    from stacks.constructs.database import AURORA_POSTGRES_VERSION, POSTGRES_VERSION

    (instance,) = resources_of(template, "AWS::RDS::DBInstance").values()
    assert instance["Properties"]["EngineVersion"] == POSTGRES_VERSION.postgres_full_version
    (cluster,) = resources_of(prod.template, "AWS::RDS::DBCluster").values()
    assert cluster["Properties"]["EngineVersion"] == AURORA_POSTGRES_VERSION.aurora_postgres_full_version

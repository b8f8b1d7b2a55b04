"""PostgresDatabase: TLS enforced for an instance and a cluster, the shared engine versions, KMS for storage,
secret and logs, generated credentials with the caller's character rules, ids kept, and exactly the
acknowledgements whose findings occur."""

from __future__ import annotations

import json
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_ec2 as ec2

from stacks.constructs.database import (
    AURORA_POSTGRES_VERSION,
    POSTGRES_VERSION,
    ClusterOptions,
    DatabaseOptions,
    InstanceOptions,
    PostgresDatabase,
)
from stacks.constructs.secret import PUNCTUATION
from tests.stacks.constructs import (
    Synthesized,
    assert_acknowledged_as_pinned,
    cdk_logical_id,
    key,
    small_vpc,
    synth_blocks,
)
from tests.stacks.constructs.acknowledgements import ACKNOWLEDGEMENTS

BLOCKS: dict[str, PostgresDatabase] = {}
CDK_DEFAULT_EXCLUDED = " %+~`#$&*()|[]{}:;<>?!'/@\"\\"


def _options(engine: InstanceOptions | ClusterOptions, **overrides: Any) -> DatabaseOptions:
    values: dict[str, Any] = {
        "engine": engine,
        "identifier": "db-" + type(engine).__name__.lower().removesuffix("options"),
        "database_name": "app",
        "username": "app",
        "log_retention_days": 30,
        "backup_days": 7,
        "deletion_protection": False,
        "purpose": "Test PostgreSQL",
        "rotation_reason": "Read at start by the tasks; rotated by redeploying, not by a rotation function.",
    }
    values.update(overrides)
    return DatabaseOptions(**values)


def _build(stack: cdk.Stack) -> None:
    vpc = small_vpc(stack)
    data_key = key(stack)
    data = ec2.SubnetSelection(subnet_group_name="data")
    client = ec2.SecurityGroup(stack, "Client", vpc=vpc, allow_all_outbound=False)
    BLOCKS["instance"] = PostgresDatabase(
        stack,
        "Instance",
        options=_options(
            InstanceOptions(instance_class="db.t4g.micro", storage_gb=20, max_storage_gb=40),
            port=5433,
            password_exclude_characters=PUNCTUATION,
        ),
        vpc=vpc,
        subnets=data,
        key=data_key,
        removal_policy=cdk.RemovalPolicy.DESTROY,
    )
    BLOCKS["instance"].allow_from(client, "the client")
    BLOCKS["plain"] = PostgresDatabase(  # the engine's default port
        stack,
        "Plain",
        options=_options(
            InstanceOptions(instance_class="db.t4g.micro", storage_gb=20, max_storage_gb=40, multi_az=True),
            identifier="db-plain",
            deletion_protection=True,
        ),
        vpc=vpc,
        subnets=data,
        key=data_key,
        removal_policy=cdk.RemovalPolicy.DESTROY,
        security_groups=[ec2.SecurityGroup(stack, "PlainGroup", vpc=vpc, allow_all_outbound=False)],
    )
    BLOCKS["cluster"] = PostgresDatabase(
        stack,
        "Cluster",
        options=_options(
            ClusterOptions(
                min_acu=0, max_acu=4, writer_id="Writer", reader_ids=("Reader",), auto_pause_minutes=10
            ),
            deletion_protection=True,
        ),
        vpc=vpc,
        subnets=data,
        key=data_key,
        removal_policy=cdk.RemovalPolicy.SNAPSHOT,
    )
    BLOCKS["cluster"].allow_from(client, "the client")


@pytest.fixture(scope="module")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    return synth_blocks(tmp_path_factory.mktemp("database"), _build)


def instance(synthesized: Synthesized) -> dict[str, Any]:
    return dict(
        synthesized.resources("AWS::RDS::DBInstance")[cdk_logical_id("Instance", "Resource")]["Properties"]
    )


def cluster(synthesized: Synthesized) -> dict[str, Any]:
    return synthesized.only("AWS::RDS::DBCluster")


def test_ids_are_those_of_the_plain_constructs(synthesized: Synthesized) -> None:
    ids = set(synthesized.template.to_json()["Resources"])
    assert {
        cdk_logical_id("Instance", "Resource"),
        cdk_logical_id("InstanceParameters", "Resource"),
        cdk_logical_id("InstanceLogs", "Resource"),
        cdk_logical_id("InstanceUpgradeLogs", "Resource"),
        cdk_logical_id("Cluster", "Resource"),
        cdk_logical_id("ClusterParameters", "Resource"),
        cdk_logical_id("ClusterLogs", "Resource"),
        cdk_logical_id("Cluster", "Writer", "Resource"),
        cdk_logical_id("Cluster", "Reader", "Resource"),
    } <= ids
    # CDK names a database secret after the stack and its path; `Default` is dropped there too
    assert any(i.startswith("blocksInstanceSecret") for i in ids)


def test_instance_refuses_clients_without_tls(synthesized: Synthesized) -> None:
    groups = synthesized.resources("AWS::RDS::DBParameterGroup")
    group_id = cdk_logical_id("InstanceParameters", "Resource")
    assert groups[group_id]["Properties"]["Parameters"] == {"rds.force_ssl": "1"}
    assert groups[group_id]["Properties"]["Family"] == "postgres16"
    assert instance(synthesized)["DBParameterGroupName"] == {"Ref": group_id}


def test_cluster_refuses_clients_without_tls(synthesized: Synthesized) -> None:
    groups = synthesized.resources("AWS::RDS::DBClusterParameterGroup")
    (group_id,) = groups
    assert groups[group_id]["Properties"]["Parameters"] == {"rds.force_ssl": "1"}
    assert groups[group_id]["Properties"]["Family"] == "aurora-postgresql16"
    assert cluster(synthesized)["DBClusterParameterGroupName"] == {"Ref": group_id}


def test_engines_are_the_shared_versions(synthesized: Synthesized) -> None:
    assert (instance(synthesized)["Engine"], instance(synthesized)["EngineVersion"]) == (
        "postgres",
        POSTGRES_VERSION.postgres_full_version,
    )
    assert (cluster(synthesized)["Engine"], cluster(synthesized)["EngineVersion"]) == (
        "aurora-postgresql",
        AURORA_POSTGRES_VERSION.aurora_postgres_full_version,
    )


def test_storage_secrets_and_logs_are_encrypted_with_the_key(synthesized: Synthesized) -> None:
    (key_id,) = synthesized.resources("AWS::KMS::Key")
    arn = {"Fn::GetAtt": [key_id, "Arn"]}
    for database in (instance(synthesized), cluster(synthesized)):
        assert database["StorageEncrypted"] is True and database["KmsKeyId"] == arn
    secrets = synthesized.resources("AWS::SecretsManager::Secret")
    assert len(secrets) == 3 and all(s["Properties"]["KmsKeyId"] == arn for s in secrets.values())
    groups = synthesized.resources("AWS::Logs::LogGroup")
    assert {g["Properties"]["LogGroupName"] for g in groups.values()} == {
        "/aws/rds/instance/db-instance/postgresql",
        "/aws/rds/instance/db-instance/upgrade",
        "/aws/rds/cluster/db-cluster/postgresql",
        "/aws/rds/instance/db-plain/postgresql",
        "/aws/rds/instance/db-plain/upgrade",
    }
    for group in groups.values():
        assert group["Properties"]["KmsKeyId"] == arn and group["Properties"]["RetentionInDays"] == 30


def test_exported_log_groups_exist_before_the_database(synthesized: Synthesized) -> None:
    resources = synthesized.template.to_json()["Resources"]
    assert {
        cdk_logical_id("InstanceLogs", "Resource"),
        cdk_logical_id("InstanceUpgradeLogs", "Resource"),
    } <= set(resources[cdk_logical_id("Instance", "Resource")]["DependsOn"])
    assert instance(synthesized)["EnableCloudwatchLogsExports"] == ["postgresql", "upgrade"]
    assert cluster(synthesized)["EnableCloudwatchLogsExports"] == ["postgresql"]


def test_generated_password_follows_the_callers_rules(synthesized: Synthesized) -> None:
    generators = [
        s["Properties"]["GenerateSecretString"]
        for s in synthesized.resources("AWS::SecretsManager::Secret").values()
    ]
    excluded = sorted(g["ExcludeCharacters"] for g in generators)
    assert excluded == sorted([PUNCTUATION, CDK_DEFAULT_EXCLUDED, CDK_DEFAULT_EXCLUDED])
    assert all(json.loads(g["SecretStringTemplate"]) == {"username": "app"} for g in generators)
    assert all(g["GenerateStringKey"] == "password" for g in generators)


def test_instance_is_private_gp3_with_autoscaling_storage(synthesized: Synthesized) -> None:
    properties = instance(synthesized)
    assert properties["PubliclyAccessible"] is False and properties["StorageType"] == "gp3"
    assert (properties["AllocatedStorage"], properties["MaxAllocatedStorage"]) == ("20", 40)
    assert (properties["DBInstanceClass"], properties["MultiAZ"], properties["Port"]) == (
        "db.t4g.micro",
        False,
        "5433",
    )
    assert properties["BackupRetentionPeriod"] == 7 and properties["DeletionProtection"] is False
    assert properties["EnableIAMDatabaseAuthentication"] is True and properties["CopyTagsToSnapshot"] is True


def test_cluster_is_serverless_v2_with_auto_pause_and_protection(synthesized: Synthesized) -> None:
    properties = cluster(synthesized)
    assert properties["ServerlessV2ScalingConfiguration"] == {
        "MinCapacity": 0,
        "MaxCapacity": 4,
        "SecondsUntilAutoPause": 600,
    }
    assert properties["DeletionProtection"] is True and properties["BackupRetentionPeriod"] == 7
    resources = synthesized.template.to_json()["Resources"]
    assert resources[cdk_logical_id("Cluster", "Resource")]["DeletionPolicy"] == "Snapshot"
    # log groups cannot be snapshotted: they are kept whenever the database would be
    assert resources[cdk_logical_id("ClusterLogs", "Resource")]["DeletionPolicy"] == "Retain"
    assert resources[cdk_logical_id("InstanceLogs", "Resource")]["DeletionPolicy"] == "Delete"


def test_only_the_allowed_peer_reaches_the_database_port(synthesized: Synthesized) -> None:
    rules = [r["Properties"] for r in synthesized.resources("AWS::EC2::SecurityGroupIngress").values()]
    assert sorted((r["FromPort"], r["ToPort"]) for r in rules) == [(5432, 5432), (5433, 5433)]  # not Plain
    assert all("Client" in json.dumps(r["SourceSecurityGroupId"]) for r in rules)
    assert {r["Description"] for r in rules} == {"the client"}


def test_groups_keep_the_descriptions_of_the_plain_constructs(synthesized: Synthesized) -> None:
    groups = {
        g["Properties"]["GroupDescription"] for g in synthesized.resources("AWS::EC2::SecurityGroup").values()
    }
    assert {"Security group for Instance database", "RDS security group"} <= groups
    assert "Security group for Plain database" not in groups  # the caller's group, none of CDK's


def test_given_security_groups_replace_the_generated_one(synthesized: Synthesized) -> None:
    plain = synthesized.resources("AWS::RDS::DBInstance")[cdk_logical_id("Plain", "Resource")]["Properties"]
    assert plain["VPCSecurityGroups"] == [
        {"Fn::GetAtt": [cdk_logical_id("PlainGroup", "Resource"), "GroupId"]}
    ]
    subnets = {
        g["Properties"]["DBSubnetGroupDescription"]
        for g in synthesized.resources("AWS::RDS::DBSubnetGroup").values()
    }
    assert subnets == {
        "Subnet group for Instance database",
        "Subnet group for Plain database",
        "Subnets for Cluster database",
    }


def test_endpoints_are_exposed(synthesized: Synthesized) -> None:
    stack = cdk.Stack.of(BLOCKS["instance"])
    assert stack.resolve(BLOCKS["instance"].host) == {
        "Fn::GetAtt": [cdk_logical_id("Instance", "Resource"), "Endpoint.Address"]
    }
    assert stack.resolve(BLOCKS["cluster"].host) == {
        "Fn::GetAtt": [cdk_logical_id("Cluster", "Resource"), "Endpoint.Address"]
    }
    assert (BLOCKS["instance"].port, BLOCKS["cluster"].port) == (5433, 5432)


def test_acknowledgements_are_exactly_the_findings_that_occur(synthesized: Synthesized) -> None:
    assert_acknowledged_as_pinned(synthesized, BLOCKS.values(), ACKNOWLEDGEMENTS["database"])
    assert synthesized.unused(BLOCKS.values()) == []
    assert [f for f in synthesized.open_findings() if "/Instance" in f or "/Cluster" in f] == []
    findings = {name: {a.finding for a in block.acknowledgements} for name, block in BLOCKS.items()}
    assert "AwsSolutions-RDS3" in findings["instance"] and "AwsSolutions-RDS3" not in findings["cluster"]
    assert "AwsSolutions-RDS10" in findings["instance"] and "AwsSolutions-RDS10" not in findings["cluster"]
    assert "AwsSolutions-RDS3" not in findings["plain"]  # Multi-AZ: nothing to acknowledge
    assert "AwsSolutions-RDS11" in findings["plain"] and "AwsSolutions-RDS11" not in findings["instance"]
    # cdk-nag raises RDS11 for an Aurora cluster only with an explicit default port: nothing to acknowledge
    assert "AwsSolutions-RDS11" not in findings["cluster"]

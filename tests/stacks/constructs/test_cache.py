"""ValkeyCache: TLS required in transit, KMS at rest, a generated alphanumeric AUTH token, size and
failover from the options, ids kept, and exactly the acknowledgements whose findings occur."""

from __future__ import annotations

import json
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_kms as kms

from stacks.constructs.cache import CacheOptions, ValkeyCache
from stacks.constructs.secret import alphanumeric, login_password
from tests.stacks.constructs import (
    Synthesized,
    assert_acknowledged_as_pinned,
    cdk_logical_id,
    key,
    small_vpc,
    synth_blocks,
)
from tests.stacks.constructs.acknowledgements import ACKNOWLEDGEMENTS

BLOCKS: dict[str, ValkeyCache] = {}


def _options(**overrides: Any) -> CacheOptions:
    values: dict[str, Any] = {
        "description": "test cache",
        "node_type": "cache.t4g.micro",
        "replicas": 0,
        "auth_rules": alphanumeric(48),
        "auth_description": "test AUTH token",
        "auth_rotation_reason": "Set on the group by CloudFormation; rotated with a coordinated deployment.",
        "backup_reason": "Holds only counters that rebuild themselves; nothing durable lives in it.",
    }
    values.update(overrides)
    return CacheOptions(**values)


def _build(stack: cdk.Stack) -> None:
    vpc = small_vpc(stack)
    data_key = key(stack)
    data = vpc.select_subnets(subnet_group_name="data").subnet_ids
    client = ec2.SecurityGroup(stack, "Client", vpc=vpc, allow_all_outbound=False)
    for name, options in {
        "Single": _options(parameters={"maxmemory-policy": "noeviction"}),
        "Replicated": _options(node_type="cache.t4g.small", replicas=1, port=6380, snapshot_retention_days=7),
    }.items():
        group = ec2.SecurityGroup(stack, f"{name}SecurityGroup", vpc=vpc, allow_all_outbound=False)
        BLOCKS[name] = ValkeyCache(
            stack,
            name,
            options=options,
            subnet_ids=data,
            security_group=group,
            key=data_key,
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        BLOCKS[name].allow_from(client, "the client")


@pytest.fixture(scope="module")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    return synth_blocks(tmp_path_factory.mktemp("cache"), _build)


def group(synthesized: Synthesized, name: str) -> dict[str, Any]:
    return dict(synthesized.resources("AWS::ElastiCache::ReplicationGroup")[name]["Properties"])


@pytest.mark.parametrize("name", ["Single", "Replicated"])
def test_tls_is_required_and_storage_encrypted_with_the_key(synthesized: Synthesized, name: str) -> None:
    (key_id,) = synthesized.resources("AWS::KMS::Key")
    properties = group(synthesized, name)
    assert (
        properties["TransitEncryptionEnabled"] is True and properties["TransitEncryptionMode"] == "required"
    )
    assert properties["AtRestEncryptionEnabled"] is True and properties["KmsKeyId"] == {"Ref": key_id}
    assert (properties["Engine"], properties["EngineVersion"]) == ("valkey", "8.0")


@pytest.mark.parametrize("name", ["Single", "Replicated"])
def test_auth_token_is_a_generated_alphanumeric_secret(synthesized: Synthesized, name: str) -> None:
    secret_id = cdk_logical_id(f"{name}AuthToken", "Resource")
    secret = synthesized.resources("AWS::SecretsManager::Secret")[secret_id]["Properties"]
    assert secret["GenerateSecretString"] == {
        "ExcludePunctuation": True,
        "IncludeSpace": False,
        "PasswordLength": 48,
    }
    assert secret["Description"] == "test AUTH token"
    assert synthesized.resources("AWS::SecretsManager::Secret")[secret_id]["DeletionPolicy"] == "Delete"
    token = json.dumps(group(synthesized, name)["AuthToken"])
    assert "{{resolve:secretsmanager:" in token and secret_id in token


def test_size_and_failover_follow_the_options(synthesized: Synthesized) -> None:
    single, replicated = group(synthesized, "Single"), group(synthesized, "Replicated")
    assert (single["CacheNodeType"], single["NumCacheClusters"], single["Port"]) == (
        "cache.t4g.micro",
        1,
        6379,
    )
    assert single["AutomaticFailoverEnabled"] is False and single["MultiAZEnabled"] is False
    assert (replicated["CacheNodeType"], replicated["NumCacheClusters"], replicated["Port"]) == (
        "cache.t4g.small",
        2,
        6380,
    )
    assert replicated["AutomaticFailoverEnabled"] is True and replicated["MultiAZEnabled"] is True
    assert (single["SnapshotRetentionLimit"], replicated["SnapshotRetentionLimit"]) == (0, 7)


@pytest.mark.parametrize("name", ["Single", "Replicated"])
def test_the_group_is_patched_in_place_guarded_and_removed_with_the_stack(
    synthesized: Synthesized, name: str
) -> None:
    properties = group(synthesized, name)
    assert properties["AutoMinorVersionUpgrade"] is True
    assert properties["SecurityGroupIds"] == [
        {"Fn::GetAtt": [cdk_logical_id(f"{name}SecurityGroup", "Resource"), "GroupId"]}
    ]
    assert properties["ReplicationGroupDescription"] == "test cache"
    resource = synthesized.resources("AWS::ElastiCache::ReplicationGroup")[name]
    assert resource["DeletionPolicy"] == "Delete"  # the caller's removal policy


def test_subnets_parameters_and_ids(synthesized: Synthesized) -> None:
    single = group(synthesized, "Single")
    assert single["CacheSubnetGroupName"] == {"Ref": "SingleSubnets"}
    assert single["CacheParameterGroupName"] == {"Ref": "SingleParameters"}
    assert "CacheParameterGroupName" not in group(synthesized, "Replicated")
    (parameters,) = synthesized.resources("AWS::ElastiCache::ParameterGroup").values()
    assert parameters["Properties"]["Properties"] == {"maxmemory-policy": "noeviction"}
    assert parameters["Properties"]["CacheParameterGroupFamily"] == "valkey8"
    assert parameters["Properties"]["Description"] == "Valkey parameters"
    subnet_group = synthesized.resources("AWS::ElastiCache::SubnetGroup")["SingleSubnets"]["Properties"]
    assert subnet_group["Description"] == "Valkey subnets"
    subnets = synthesized.resources("AWS::ElastiCache::SubnetGroup")["SingleSubnets"]["Properties"][
        "SubnetIds"
    ]
    assert len(subnets) == 2 and all("Vpcdata" in json.dumps(s) for s in subnets)


def test_only_the_allowed_peer_reaches_the_cache_port(synthesized: Synthesized) -> None:
    rules = [r["Properties"] for r in synthesized.resources("AWS::EC2::SecurityGroupIngress").values()]
    assert sorted(r["FromPort"] for r in rules) == [6379, 6380]
    assert all("Client" in json.dumps(r["SourceSecurityGroupId"]) for r in rules)
    assert {r["Description"] for r in rules} == {"the client"}
    assert {r["IpProtocol"] for r in rules} == {"tcp"} and all(r["FromPort"] == r["ToPort"] for r in rules)


def test_acknowledgements_are_exactly_the_findings_that_occur(synthesized: Synthesized) -> None:
    assert_acknowledged_as_pinned(synthesized, BLOCKS.values(), ACKNOWLEDGEMENTS["cache"])
    assert synthesized.unused(BLOCKS.values()) == []
    assert [f for f in synthesized.open_findings() if "/Single" in f or "/Replicated" in f] == []
    single = {a.finding for a in BLOCKS["Single"].acknowledgements}
    replicated = {a.finding for a in BLOCKS["Replicated"].acknowledgements}
    assert "AwsSolutions-AEC4" in single and "AwsSolutions-AEC4" not in replicated
    # cdk-nag 3 raises no default-port finding (AEC5) for a Valkey replication group: nothing to acknowledge
    assert "AwsSolutions-AEC5" not in single


AUTH_REFUSED = r"^the Valkey AUTH token must be 16-128 alphanumeric characters$"


def _construct(stack: cdk.Stack, name: str, options: CacheOptions) -> ValkeyCache:
    return ValkeyCache(
        stack,
        name,
        options=options,
        subnet_ids=["subnet-1"],
        security_group=ec2.SecurityGroup.from_security_group_id(stack, f"{name}Group", "sg-12345678"),
        key=kms.Key(stack, f"{name}Key"),
        removal_policy=cdk.RemovalPolicy.DESTROY,
    )


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        # ElastiCache AUTH tokens "must be 16-128 printable characters", nonalphanumeric ones restricted to
        # ! & # $ ^ < > - (https://docs.aws.amazon.com/AmazonElastiCache/latest/dg/auth.html); ours are
        # alphanumeric only (safe in URLs and AUTH commands), so a login password's punctuation is refused.
        ({"auth_rules": login_password(24)}, AUTH_REFUSED),
        ({"auth_rules": alphanumeric(15)}, AUTH_REFUSED),
        ({"auth_rules": alphanumeric(129)}, AUTH_REFUSED),
        # A replication group holds a primary and at most 5 replicas (NumCacheClusters 1..6,
        # https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-elasticache-replicationgroup.html).
        ({"replicas": 6}, r"^cache replicas 6 is outside 0\.\.5$"),
        ({"replicas": -1}, r"^cache replicas -1 is outside 0\.\.5$"),
    ],
)
def test_options_valkey_would_refuse_are_rejected(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _construct(cdk.Stack(cdk.App(), "s"), "Cache", _options(**overrides))


def test_the_limits_themselves_are_accepted() -> None:
    stack = cdk.Stack(cdk.App(), "s")
    limits: dict[str, dict[str, Any]] = {
        "Shortest": {"auth_rules": alphanumeric(16)},
        "Longest": {"auth_rules": alphanumeric(128)},
        "MostReplicas": {"replicas": 5},
    }
    for name, overrides in limits.items():
        _construct(stack, name, _options(**overrides))
    groups = cdk.assertions.Template.from_stack(stack).find_resources("AWS::ElastiCache::ReplicationGroup")
    assert groups["MostReplicas"]["Properties"]["NumCacheClusters"] == 6

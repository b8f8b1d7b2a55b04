"""Config loading: profiles, context overrides, and a named-key error for every validation rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from config import ConfigError, load_config
from tests.factories import test_config


def test_dev_profile_is_the_default() -> None:
    assert load_config({}).project.profile == "dev"


def test_prod_profile_applies_its_overrides() -> None:
    config = load_config({"profile": "prod"})
    assert (config.network.nat_gateways, config.identity.mfa, config.project.removal_policy) == (
        3,
        "required",
        "retain",
    )


def test_context_override_is_parsed_as_yaml_scalar() -> None:
    assert load_config({"network.nat_gateways": "2"}).network.nat_gateways == 2


def test_context_override_of_nested_key() -> None:
    config = load_config({"knowledge_base.chunking.strategy": "semantic"})
    assert config.knowledge_base.chunking.strategy == "semantic"


def test_cdk_feature_flags_are_ignored() -> None:
    load_config({"@aws-cdk/core:checkSecretUsage": True, "aws:cdk:enable-path-metadata": True})


def test_config_is_frozen() -> None:
    config = test_config()
    with pytest.raises(Exception, match="frozen"):
        config.network.nat_gateways = 3  # type: ignore[misc]


def test_factory_applies_section_overrides() -> None:
    assert test_config(network={"nat_gateways": 0}).network.nat_gateways == 0


@pytest.mark.parametrize(
    ("context", "key", "hint"),
    [
        ({"profile": "staging"}, "project.profile", "allowed: ['dev', 'prod']"),
        ({"project.name_prefix": "Bad_Prefix"}, "project.name_prefix", "should match pattern"),
        ({"project.removal_policy": "keep"}, "project.removal_policy", "'destroy' or 'retain'"),
        ({"environment.account": "12345"}, "environment.account", "should match pattern"),
        ({"environment.region": "mars-1"}, "environment.region", "should match pattern"),
        (
            {"components.observability": "cloud"},
            "components.observability",
            "'self_hosted', 'external' or 'disabled'",
        ),
        ({"components.llm_gateway": "none"}, "components.llm_gateway", "'self_hosted' or 'external'"),
        ({"network.vpc_id": "vpc-xyz"}, "network.vpc_id", "should match pattern"),
        ({"network.cidr": "8.8.8.0/24"}, "network.cidr", "private IPv4 network"),
        ({"network.cidr": "10.0.0.1/16"}, "network.cidr", "IPv4 network"),
        ({"network.nat_gateways": "7"}, "network.nat_gateways", "less than or equal to 3"),
        ({"network.max_azs": "1"}, "network.max_azs", "greater than or equal to 2"),
        ({"network.nat_gateways": "3", "network.max_azs": "2"}, "network", "cannot exceed max_azs"),
        ({"network.flow_log_retention_days": "10"}, "network.flow_log_retention_days", "must be one of"),
        ({"identity.mfa": "sometimes"}, "identity.mfa", "'off', 'optional' or 'required'"),
        ({"identity.callback_urls": "[http://example.com/]"}, "identity.callback_urls", "must use https://"),
        ({"identity.teams": "[Support]"}, "identity.teams", "lowercase"),
        ({"identity.teams": "[a1, a1]"}, "identity.teams", "unique"),
        (
            {"identity.access_token_minutes": "2"},
            "identity.access_token_minutes",
            "greater than or equal to 5",
        ),
        ({"knowledge_base.dimensions": "768"}, "knowledge_base.dimensions", "256, 512 or 1024"),
        ({"knowledge_base.chunking.strategy": "magic"}, "knowledge_base.chunking.strategy", "'fixed_size'"),
        (
            {
                "knowledge_base.chunking.strategy": "hierarchical",
                "knowledge_base.chunking.child_max_tokens": "2000",
            },
            "knowledge_base.chunking",
            "child_max_tokens must be smaller",
        ),
        (
            {"guardrail.content_filters": "{PROMPT_ATTACK: NONE}"},
            "guardrail.content_filters",
            "PROMPT_ATTACK must be",
        ),
        (
            {"guardrail.content_filters": "{GORE: HIGH, PROMPT_ATTACK: HIGH}"},
            "guardrail.content_filters",
            "unknown categories",
        ),
        (
            {"guardrail.grounding_threshold": "1.5"},
            "guardrail.grounding_threshold",
            "less than or equal to 0.99",
        ),
        ({"alarms.email": "not-an-email"}, "alarms.email", "is not an email address"),
        ({"models.agent_alias": "gpt-9"}, "models.agent_alias", "not in the catalog"),
        ({"models.num_retries": "-1"}, "models.num_retries", "greater than or equal to 0"),
        (
            {"agentcore.idle_timeout_seconds": "30"},
            "agentcore.idle_timeout_seconds",
            "greater than or equal to 60",
        ),
        (
            {"llm_gateway.min_tasks": "5", "llm_gateway.max_tasks": "2"},
            "llm_gateway",
            "min_tasks cannot exceed",
        ),
        ({"llm_gateway.cpu": "300"}, "llm_gateway.cpu", "256, 512, 1024, 2048 or 4096"),
        ({"evaluation.online_schedule": "daily"}, "evaluation.online_schedule", "should match pattern"),
        ({"network.unknown_key": "1"}, "network.unknown_key", "unknown config key"),
        ({"netwrk.nat_gateways": "1"}, "netwrk.nat_gateways", "does not start with a config section"),
    ],
)
def test_bad_value_fails_naming_the_key(context: dict[str, str], key: str, hint: str) -> None:
    with pytest.raises(ConfigError) as error:
        load_config(context)
    message = str(error.value)
    assert f"'{key}'" in message and hint in message, message


def test_missing_config_file_names_the_setting(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"config_file.*does not exist"):
        load_config({"config_file": str(tmp_path / "missing.yaml")})


def test_invalid_yaml_names_the_setting(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("defaults: [unclosed\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"config_file.*not valid YAML"):
        load_config({"config_file": str(broken)})


def test_unknown_section_in_file_is_rejected(tmp_path: Path) -> None:
    odd = tmp_path / "odd.yaml"
    odd.write_text("defaults:\n  networking: {}\nprofiles:\n  dev: {}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="'networking' is not a known section"):
        load_config({"config_file": str(odd)})


def test_account_with_leading_zero_survives_context_parsing() -> None:
    assert load_config({"environment.account": "012345678901"}).environment.account == "012345678901"


# --- AgentCore Runtime zones (AZ IDs) ---------------------------------------------------------------

ENV = {"account": "123456789012", "region": "us-east-1"}
NAMES = {"use1-az1": "us-east-1c", "use1-az4": "us-east-1a", "use1-az6": "us-east-1b"}


def test_az_table_matches_the_agentcore_vpc_page() -> None:
    from config.agentcore import AGENTCORE_RUNTIME_AZ_IDS, AGENTCORE_VPC_DOC_URL

    assert AGENTCORE_VPC_DOC_URL.startswith("https://docs.aws.amazon.com/bedrock-agentcore/")
    assert AGENTCORE_RUNTIME_AZ_IDS["us-east-1"] == ("use1-az1", "use1-az2", "use1-az4")
    assert AGENTCORE_RUNTIME_AZ_IDS["ap-northeast-1"] == ("apne1-az1", "apne1-az2", "apne1-az4")
    assert len(AGENTCORE_RUNTIME_AZ_IDS) == 9
    for region, ids in AGENTCORE_RUNTIME_AZ_IDS.items():
        prefix = ids[0].split("-az")[0]
        assert all(i.startswith(f"{prefix}-az") for i in ids), region


def test_unsupported_az_ids_keeps_order_and_reports_unknown_regions_whole() -> None:
    from config.agentcore import unsupported_az_ids

    assert unsupported_az_ids("us-east-1", ["use1-az6", "use1-az1", "use1-az3"]) == ["use1-az6", "use1-az3"]
    assert unsupported_az_ids("us-east-1", []) == []
    assert unsupported_az_ids("eu-west-3", ["euw3-az1"]) == ["euw3-az1"]


def test_runtime_az_ids_default_to_no_restriction() -> None:
    config = test_config("dev")
    assert config.agentcore.runtime_az_ids == () and config.runtime_az_names == ()


def test_runtime_az_ids_from_a_comma_separated_context_value() -> None:
    config = load_config(
        {
            "environment.account": ENV["account"],
            "environment.region": ENV["region"],
            "agentcore.runtime_az_ids": "use1-az4, use1-az1",
            "network.az_names": "{use1-az1: us-east-1c, use1-az4: us-east-1a}",
        }
    )
    assert config.agentcore.runtime_az_ids == ("use1-az4", "use1-az1")
    assert config.runtime_az_names == ("us-east-1a", "us-east-1c")


@pytest.mark.parametrize(
    ("sections", "key", "fragment"),
    [
        (
            {"environment": ENV, "agentcore": {"runtime_az_ids": "use1-az6"}},
            "agentcore.runtime_az_ids",
            "use1-az6",
        ),
        (
            {"environment": {"region": "eu-west-3"}, "agentcore": {"runtime_az_ids": "euw3-az1"}},
            "agentcore.runtime_az_ids",
            "no listed zones",
        ),
        ({"agentcore": {"runtime_az_ids": "use1-az1"}}, "agentcore.runtime_az_ids", "environment.account"),
        (
            {"agentcore": {"runtime_az_ids": "us-east-1a"}},
            "agentcore.runtime_az_ids",
            "not an Availability Zone ID",
        ),
        ({"agentcore": {"runtime_az_ids": "use1-az1,use1-az1"}}, "agentcore.runtime_az_ids", "twice"),
        (
            {"environment": ENV, "agentcore": {"runtime_az_ids": "use1-az2"}, "network": {"az_names": NAMES}},
            "network.az_names",
            "use1-az2",
        ),
        (
            {
                "environment": ENV,
                "agentcore": {"runtime_az_ids": "use1-az1"},
                "network": {"az_names": {"use1-az1": "eu-west-1a"}},
            },
            "network.az_names",
            "not zones of us-east-1",
        ),
        (
            {"network": {"az_names": {"us-east-1a": "use1-az1"}}},
            "network.az_names",
            "not an Availability Zone ID",
        ),
        (
            {
                "environment": ENV,
                "agentcore": {"runtime_az_ids": "use1-az1,use1-az2,use1-az4"},
                "network": {"az_names": {**NAMES, "use1-az2": "us-east-1d"}},
            },
            "agentcore.runtime_az_ids",
            "max_azs",
        ),
    ],
)
def test_runtime_az_ids_errors_name_the_key(sections: dict, key: str, fragment: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(ConfigError) as error:
        test_config("dev", **sections)
    message = str(error.value)
    assert f"config key '{key}'" in message and fragment in message, message

"""Configuration sections of the foundation: project, network, identity, knowledge base, guardrail."""

from __future__ import annotations

import ipaddress
import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from config.base import Section

NAME_PATTERN = r"^[a-z][a-z0-9-]{1,14}[a-z0-9]$"
EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 3653)

Profile = Literal["dev", "prod"]
FilterStrength = Literal["NONE", "LOW", "MEDIUM", "HIGH"]


class ProjectConfig(Section):
    """Naming and profile. The prefix starts every stack and resource name."""

    name_prefix: str = Field(default="aaf", pattern=NAME_PATTERN)
    profile: Profile = "dev"
    removal_policy: Literal["destroy", "retain"] = "destroy"


class EnvironmentConfig(Section):
    """Target account and region; both unset means an environment-agnostic synth."""

    account: str | None = Field(default=None, pattern=r"^\d{12}$")
    region: str | None = Field(default=None, pattern=r"^[a-z]{2}(-gov)?-[a-z]+-\d$")

    @field_validator("account", mode="before")
    @classmethod
    def _account_as_text(cls, value: object) -> object:
        return str(value) if isinstance(value, int) else value


class NetworkConfig(Section):
    """VPC: import an existing one by id or create one with the given shape."""

    vpc_id: str | None = Field(default=None, pattern=r"^vpc-[0-9a-f]{8,17}$")
    cidr: str = "10.40.0.0/16"
    max_azs: int = Field(default=2, ge=2, le=3)
    nat_gateways: int = Field(default=1, ge=0, le=3)
    # How the services subnets reach the internet: managed NAT gateways (highly available, ~$33/month
    # each) or NAT instances (one small Graviton EC2 instance per NAT, ~$4/month, single-instance: a
    # reboot or replacement interrupts outbound traffic for a few minutes). nat_gateways is the number of
    # either kind; 0 means no NAT (the services subnets are then isolated).
    nat_type: Literal["gateway", "instance"] = "gateway"
    nat_instance_type: str = Field(default="t4g.nano", pattern=r"^t4g\.(nano|micro|small|medium)$")
    interface_endpoints: bool = True
    flow_log_retention_days: int = 30
    # AZ ID -> AZ name in the target account (names are shuffled per account, ids are not), for the zones
    # named in agentcore.runtime_az_ids. Print the mapping with
    #   aws ec2 describe-availability-zones --region <region> --query 'AvailabilityZones[].[ZoneId,ZoneName]'
    az_names: dict[str, str] = Field(default_factory=dict)

    @field_validator("az_names")
    @classmethod
    def _az_names_are_ids_to_names(cls, value: dict[str, str]) -> dict[str, str]:
        for az_id, name in value.items():
            if not re.match(r"^[a-z]{2,5}\d-az\d{1,2}$", az_id):
                raise ValueError(f"key {az_id!r} is not an Availability Zone ID such as use1-az1")
            if not re.match(r"^[a-z]{2}(-gov)?-[a-z]+-\d[a-z]$", name):
                raise ValueError(f"{az_id}: {name!r} is not an Availability Zone name such as us-east-1a")
        if len(set(value.values())) != len(value):
            raise ValueError("maps two zone ids to the same name")
        return value

    @field_validator("cidr")
    @classmethod
    def _cidr_is_private_network(cls, value: str) -> str:
        try:
            network = ipaddress.ip_network(value, strict=True)
        except ValueError as exc:
            raise ValueError(f"must be an IPv4 network such as 10.40.0.0/16 ({exc})") from None
        if network.version != 4 or not network.is_private or not 16 <= network.prefixlen <= 24:
            raise ValueError("must be a private IPv4 network with a prefix between /16 and /24")
        return value

    @field_validator("flow_log_retention_days")
    @classmethod
    def _retention_is_supported(cls, value: int) -> int:
        return check_retention(value)

    @model_validator(mode="after")
    def _nat_fits_azs(self) -> NetworkConfig:
        if self.nat_gateways > self.max_azs:
            raise ValueError(f"nat_gateways ({self.nat_gateways}) cannot exceed max_azs ({self.max_azs})")
        return self


class IdentityConfig(Section):
    """Cognito user pool, managed login, app clients and team groups."""

    mfa: Literal["off", "optional", "required"] = "optional"
    self_sign_up: bool = False
    deletion_protection: bool = False
    domain_prefix: str | None = Field(default=None, pattern=r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
    callback_urls: tuple[str, ...] = ("http://localhost:8501/",)
    logout_urls: tuple[str, ...] = ("http://localhost:8501/",)
    teams: tuple[str, ...] = ("support", "platform")
    access_token_minutes: int = Field(default=60, ge=5, le=1440)
    refresh_token_days: int = Field(default=30, ge=1, le=3650)

    @field_validator("callback_urls", "logout_urls")
    @classmethod
    def _urls_are_https_or_localhost(cls, urls: tuple[str, ...]) -> tuple[str, ...]:
        if not urls:
            raise ValueError("must list at least one URL")
        for url in urls:
            if not (url.startswith("https://") or re.match(r"^http://localhost(:\d+)?/", url)):
                raise ValueError(f"{url!r} must use https:// (plain http is allowed for localhost only)")
        return urls

    @field_validator("teams")
    @classmethod
    def _teams_are_group_names(cls, teams: tuple[str, ...]) -> tuple[str, ...]:
        if not teams:
            raise ValueError("must list at least one team")
        for team in teams:
            if not re.fullmatch(r"[a-z][a-z0-9-]{1,30}", team):
                raise ValueError(f"team {team!r} must be lowercase letters, digits and dashes (2-31 chars)")
        if len(set(teams)) != len(teams):
            raise ValueError("team names must be unique")
        return teams


class ChunkingConfig(Section):
    """How the knowledge base splits documents before embedding."""

    strategy: Literal["fixed_size", "hierarchical", "semantic", "none"] = "fixed_size"
    max_tokens: int = Field(default=300, ge=20, le=8192)
    overlap_percentage: int = Field(default=20, ge=1, le=99)
    parent_max_tokens: int = Field(default=1500, ge=1, le=8192)
    child_max_tokens: int = Field(default=300, ge=1, le=8192)

    @model_validator(mode="after")
    def _hierarchy_is_ordered(self) -> ChunkingConfig:
        if self.strategy == "hierarchical" and self.child_max_tokens >= self.parent_max_tokens:
            raise ValueError("child_max_tokens must be smaller than parent_max_tokens")
        return self


class KnowledgeBaseConfig(Section):
    """Bedrock Knowledge Base over S3 Vectors with the sample support corpus."""

    embedding_model_id: Literal["amazon.titan-embed-text-v2:0"] = "amazon.titan-embed-text-v2:0"
    dimensions: Literal[256, 512, 1024] = 1024
    chunking: ChunkingConfig = ChunkingConfig()
    corpus_dir: str = "corpus"
    deploy_sample_corpus: bool = True


class DeniedTopic(Section):
    name: str = Field(pattern=r"^[0-9a-zA-Z-_ !?.]{1,100}$")
    definition: str = Field(min_length=1, max_length=200)
    examples: tuple[str, ...] = ()


class PiiRule(Section):
    type: Literal[
        "EMAIL",
        "PHONE",
        "NAME",
        "ADDRESS",
        "CREDIT_DEBIT_CARD_NUMBER",
        "CREDIT_DEBIT_CARD_CVV",
        "US_SOCIAL_SECURITY_NUMBER",
        "PASSWORD",
        "AWS_ACCESS_KEY",
        "AWS_SECRET_KEY",
        "IP_ADDRESS",
        "US_BANK_ACCOUNT_NUMBER",
    ]
    action: Literal["BLOCK", "ANONYMIZE"]
    # What to do in model output; unset means the same as `action`. NONE lets answers keep, e.g., the
    # support phone number the knowledge base itself publishes.
    output_action: Literal["BLOCK", "ANONYMIZE", "NONE"] | None = None

    @property
    def effective_output_action(self) -> str:
        return self.output_action or self.action


def _default_content_filters() -> dict[str, FilterStrength]:
    return {
        "SEXUAL": "HIGH",
        "VIOLENCE": "HIGH",
        "HATE": "HIGH",
        "INSULTS": "MEDIUM",
        "MISCONDUCT": "HIGH",
        "PROMPT_ATTACK": "HIGH",
    }


class GuardrailConfig(Section):
    """Bedrock guardrail policy applied to agent input and output."""

    content_filters: dict[str, FilterStrength] = Field(default_factory=_default_content_filters)
    denied_topics: tuple[DeniedTopic, ...] = (
        DeniedTopic(
            name="Investment advice",
            definition="Recommendations or guidance about investing money, buying or selling securities, "
            "cryptocurrencies or other financial assets.",
            examples=("Which stocks should I buy?", "Is it a good time to invest in bitcoin?"),
        ),
    )
    pii: tuple[PiiRule, ...] = (
        PiiRule(type="CREDIT_DEBIT_CARD_NUMBER", action="BLOCK"),
        PiiRule(type="US_SOCIAL_SECURITY_NUMBER", action="BLOCK"),
        PiiRule(type="PASSWORD", action="BLOCK"),
        PiiRule(type="AWS_SECRET_KEY", action="BLOCK"),
        PiiRule(type="PHONE", action="ANONYMIZE", output_action="NONE"),
    )
    blocked_words: tuple[str, ...] = ()
    profanity_filter: bool = True
    grounding_threshold: float = Field(default=0.75, ge=0.0, le=0.99)
    relevance_threshold: float = Field(default=0.5, ge=0.0, le=0.99)
    blocked_input_message: str = Field(
        default="Sorry, I can't help with that request. I can help with our products, orders and support tickets.",
        min_length=1,
        max_length=500,
    )
    blocked_output_message: str = Field(
        default="Sorry, I can't share that answer. Please rephrase your question or open a support ticket.",
        min_length=1,
        max_length=500,
    )

    @field_validator("content_filters")
    @classmethod
    def _known_categories(cls, filters: dict[str, FilterStrength]) -> dict[str, FilterStrength]:
        allowed = {"SEXUAL", "VIOLENCE", "HATE", "INSULTS", "MISCONDUCT", "PROMPT_ATTACK"}
        unknown = set(filters) - allowed
        if unknown:
            raise ValueError(f"unknown categories {sorted(unknown)}; allowed: {sorted(allowed)}")
        if filters.get("PROMPT_ATTACK", "NONE") == "NONE":
            raise ValueError("PROMPT_ATTACK must be LOW, MEDIUM or HIGH: prompt-attack filtering is required")
        return filters

    @field_validator("pii")
    @classmethod
    def _unique_pii(cls, rules: tuple[PiiRule, ...]) -> tuple[PiiRule, ...]:
        types = [rule.type for rule in rules]
        if len(set(types)) != len(types):
            raise ValueError("each PII type may appear once")
        return rules


class AlarmsConfig(Section):
    """Where operational alarms go."""

    email: str | None = None

    @field_validator("email")
    @classmethod
    def _valid_email(cls, value: str | None) -> str | None:
        if value is not None and not EMAIL_PATTERN.match(value):
            raise ValueError(f"{value!r} is not an email address")
        return value


class ComponentsConfig(Section):
    """Which parts are deployed here, taken from elsewhere, or left out."""

    llm_gateway: Literal["self_hosted", "external"] = "self_hosted"
    observability: Literal["self_hosted", "external", "disabled"] = "self_hosted"
    frontend: bool = True
    web_search: bool = False


def check_retention(value: int) -> int:
    """Validate a CloudWatch Logs retention in days (shared by every section with log groups)."""
    if value not in LOG_RETENTION_DAYS:
        raise ValueError(f"must be one of {list(LOG_RETENTION_DAYS)}")
    return value

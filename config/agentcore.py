"""AgentCore Runtime, Memory and tool gateway settings."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from types import MappingProxyType

from pydantic import Field, field_validator, model_validator

from config.base import Section
from config.foundation import check_retention

AGENTCORE_VPC_DOC_URL = "https://docs.aws.amazon.com/bedrock-agentcore/latest/devguide/agentcore-vpc.html"
"""AgentCore developer guide, "Configure Amazon Bedrock AgentCore Runtime and tools for VPC", section
"Supported Availability Zones" (anchor #agentcore-supported-azs)."""
AGENTCORE_VPC_TABLE_READ_ON = "2026-12-01"
"""The day the table below was copied. Source text: the page's copy in
github.com/aws/bedrock-agentcore-starter-toolkit documentation/docs/user-guide/security/agentcore-vpc.md
(commit f9455bf3, 2025-10-24; newest snapshot 4f90432b, 2026-07-15), which matches two independent copies
of the AWS page dated 2025-11-08. The live page could not be opened from this machine: re-check it before
relying on a region that is not listed, and update this table (and the date) when AWS adds zones."""

AGENTCORE_RUNTIME_AZ_IDS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        # "Subnets must be located in the supported Availability Zones listed above. If you specify subnets
        # in unsupported Availability Zones, the configuration will fail during resource creation."
        "us-east-1": ("use1-az1", "use1-az2", "use1-az4"),
        "us-east-2": ("use2-az1", "use2-az2", "use2-az3"),
        "us-west-2": ("usw2-az1", "usw2-az2", "usw2-az3"),
        "ap-southeast-2": ("apse2-az1", "apse2-az2", "apse2-az3"),
        "ap-south-1": ("aps1-az1", "aps1-az2", "aps1-az3"),
        "ap-southeast-1": ("apse1-az1", "apse1-az2", "apse1-az3"),
        "ap-northeast-1": ("apne1-az1", "apne1-az2", "apne1-az4"),
        "eu-west-1": ("euw1-az1", "euw1-az2", "euw1-az3"),
        "eu-central-1": ("euc1-az1", "euc1-az2", "euc1-az3"),
    }
)
"""Region -> the Availability Zone IDs (not names: names differ per account) in which an AgentCore Runtime
in VPC mode accepts subnets, copied from AGENTCORE_VPC_DOC_URL on AGENTCORE_VPC_TABLE_READ_ON."""

AZ_ID_PATTERN = re.compile(r"^[a-z]{2,5}\d-az\d{1,2}$")


def unsupported_az_ids(region: str, az_ids: Iterable[str]) -> list[str]:
    """The AZ IDs in `az_ids` that the AgentCore VPC table does not list for `region`, in input order.

    A region missing from the table has no documented zones here, so every id given for it is
    reported: that fails loudly (update AGENTCORE_RUNTIME_AZ_IDS from the doc page) instead of guessing.
    """
    supported = AGENTCORE_RUNTIME_AZ_IDS.get(region, ())
    return [az_id for az_id in az_ids if az_id not in supported]


class AgentCoreConfig(Section):
    """AgentCore Runtime lifecycle and Memory retention."""

    idle_timeout_seconds: int = Field(default=900, ge=60, le=28_800)
    max_lifetime_seconds: int = Field(default=28_800, ge=60, le=28_800)
    memory_event_expiry_days: int = Field(default=30, ge=7, le=365)
    local_user: str = Field(default="local-user", pattern=r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$")
    log_retention_days: int = 30
    tracing: bool = True
    tool_memory_mb: int = Field(default=512, ge=128, le=3008)
    tool_timeout_seconds: int = Field(default=30, ge=3, le=300)
    tavily_secret_name: str | None = Field(default=None, pattern=r"^[A-Za-z0-9/_+=.@-]{1,512}$")
    """Secrets Manager secret holding `{"api_key": "tvly-..."}` (used when components.web_search is on);
    default `<prefix>/tavily`. Create it before deploying; the template only references it."""
    turn_deadline_seconds: float = Field(default=45.0, ge=5, le=55)
    """One agent turn (AGENT_TURN_DEADLINE_SECONDS): then `504 model_timeout`. Below the 60 s CloudFront
    allows an origin without a quota increase (https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/DownloadDistValuesOrigin.html#DownloadDistValuesOriginResponseTimeout);
    the agent streams a heartbeat every 10 s while it waits."""
    agent_tool_timeout_seconds: float = Field(default=20.0, gt=0, le=54)
    """One tool call as the agent waits for it (AGENT_TOOL_TIMEOUT_SECONDS); shorter than the turn."""
    runtime_az_ids: tuple[str, ...] = ()
    """Availability Zone IDs (e.g. `use1-az1`) for the runtime's subnets; empty: every services subnet.
    Checked against AGENTCORE_RUNTIME_AZ_IDS when `environment.region` is set; needs the account and
    region and an AZ name per id in `network.az_names` (names differ per account)."""

    @field_validator("runtime_az_ids")
    @classmethod
    def _az_ids_are_ids(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for az_id in value:
            if not AZ_ID_PATTERN.match(az_id):
                raise ValueError(f"{az_id!r} is not an Availability Zone ID such as use1-az1 (not a name)")
        if len(set(value)) != len(value):
            raise ValueError(f"lists a zone twice: {list(value)}")
        return value

    @field_validator("log_retention_days")
    @classmethod
    def _retention(cls, value: int) -> int:
        return check_retention(value)

    @model_validator(mode="after")
    def _idle_within_lifetime(self) -> AgentCoreConfig:
        if self.idle_timeout_seconds > self.max_lifetime_seconds:
            raise ValueError("idle_timeout_seconds cannot exceed max_lifetime_seconds")
        if self.agent_tool_timeout_seconds >= self.turn_deadline_seconds:
            raise ValueError(
                f"agent_tool_timeout_seconds ({self.agent_tool_timeout_seconds:g}) must be shorter than "
                f"turn_deadline_seconds ({self.turn_deadline_seconds:g}): a tool that times out must leave the "
                "model time to answer"
            )
        return self

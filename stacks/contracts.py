"""Typed hand-offs between stacks: what one stack gives the stacks that consume it."""

from __future__ import annotations

import re
from dataclasses import dataclass

from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_secretsmanager as secretsmanager


@dataclass(frozen=True)
class LangfuseConnection:
    """Where traces go: the Langfuse base URL and the secret holding `{"public_key", "secret_key"}`."""

    host: str
    keys_secret: secretsmanager.ISecret


@dataclass(frozen=True)
class LlmGatewayEndpoint:
    """The OpenAI-compatible gateway: base URL (no /v1), per-consumer virtual-key secrets, and the
    security group consumers must be allowed into (None for an external gateway)."""

    url: str
    agent_key_secret: secretsmanager.ISecret
    eval_key_secret: secretsmanager.ISecret
    security_group: ec2.ISecurityGroup | None

    @property
    def port(self) -> int:
        """The TCP port consumers open to the gateway's security group (the URL's own port)."""
        return url_port(self.url)


def url_port(url: str) -> int:
    """The TCP port of an http(s) URL whose host may be an unresolved CDK token."""
    match = re.match(r"^(https?)://[^/]*?(?::(\d+))?(?:/.*)?$", url)
    if match is None:
        raise ValueError(f"LLM gateway URL {url!r} must start with http:// or https://")
    return int(match.group(2)) if match.group(2) else (443 if match.group(1) == "https" else 80)

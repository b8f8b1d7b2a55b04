"""Helpers shared by the gateway Lambdas (tool targets and the interceptor): required settings and the tool
name from the gateway context. Standard library only: the interceptor ships it too."""

from __future__ import annotations

import os
from typing import Any

TOOL_NAME_KEY = "bedrockAgentCoreToolName"
TARGET_SEPARATOR = "___"


class MissingSettingError(RuntimeError):
    """A required environment variable is not set; the message names it."""


def require_env(name: str) -> str:
    """The value of environment variable `name`, or MissingSettingError naming it."""
    value = os.environ.get(name, "").strip()
    if not value:
        raise MissingSettingError(f"environment variable {name} is not set")
    return value


def tool_name(context: Any) -> str:
    """The tool the gateway is calling, without the `<target>___` prefix the gateway adds.

    The gateway passes `bedrockAgentCoreToolName` (e.g. `tickets___create_ticket`) in the Lambda client
    context (https://docs.aws.amazon.com/bedrock-agentcore/latest/devguide/gateway-add-target-lambda.html,
    "Lambda function input format"); an empty string when it is absent.
    """
    client_context = getattr(context, "client_context", None)
    custom = getattr(client_context, "custom", None) or {}
    name = str(custom.get(TOOL_NAME_KEY, ""))
    return name.split(TARGET_SEPARATOR, 1)[1] if TARGET_SEPARATOR in name else name

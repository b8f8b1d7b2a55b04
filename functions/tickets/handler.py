"""Tickets target of the tool gateway: one Lambda serving the five ticket tools.

The gateway calls it with the tool's declared input properties as the event and the tool name in the client
context (https://docs.aws.amazon.com/bedrock-agentcore/latest/devguide/gateway-add-target-lambda.html, "Lambda
function input format"). The identity argument (`tools.specs.IDENTITY_ARGUMENT`, declared in this target's
gateway schema) is always set by the REQUEST interceptor to the verified caller's `sub`; it is the only
source of the ticket owner, and a call without it is refused as `unauthorized`.
"""

from __future__ import annotations

import logging
from typing import Any

import boto3

from functions.common import require_env, tool_name
from tools.tickets import ACTOR_ARGUMENT, DynamoTicketRepository, TicketError, TicketService, dispatch

logger = logging.getLogger(__name__)
logger.setLevel(logging.INFO)

_service: TicketService | None = None


def _get_service() -> TicketService:
    global _service
    if _service is None:
        table_name = require_env("TICKETS_TABLE_NAME")
        table = boto3.resource("dynamodb").Table(table_name)
        _service = TicketService(DynamoTicketRepository(table))
    return _service


def handler(event: Any, context: Any) -> dict[str, Any]:
    """Run the ticket tool named in the gateway context for the actor the interceptor verified."""
    name = tool_name(context)
    if not isinstance(event, dict):
        return TicketError("invalid_argument", "arguments must be a JSON object").to_dict()
    owner = event.get(ACTOR_ARGUMENT)
    if not isinstance(owner, str) or not owner:
        logger.warning("ticket tool called without a verified actor", extra={"tool": name})
        return TicketError(
            "unauthorized", f"no verified caller identity; the tool gateway must set {ACTOR_ARGUMENT}"
        ).to_dict()
    try:
        return dispatch(_get_service(), name, event, owner)
    except TicketError as error:
        logger.info("ticket tool refused", extra={"tool": name, "code": error.code})
        return error.to_dict()

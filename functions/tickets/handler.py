"""Tickets target of the tool gateway: one Lambda serving the five ticket tools.

The gateway calls it with the tool arguments as the event; the REQUEST interceptor has set `_actor` to the
verified caller's `sub`, which is the only source of the ticket owner.
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
            "unauthorized", "no verified caller identity; the tool gateway must set _actor"
        ).to_dict()
    try:
        return dispatch(_get_service(), name, event, owner)
    except TicketError as error:
        logger.info("ticket tool refused", extra={"tool": name, "code": error.code})
        return error.to_dict()

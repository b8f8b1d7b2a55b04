"""Tickets target of the tool gateway: one Lambda serving the five ticket tools.

The gateway calls it with the tool's declared input properties as the event and the tool name in the client
context (https://docs.aws.amazon.com/bedrock-agentcore/latest/devguide/gateway-add-target-lambda.html, "Lambda
function input format"). The identity argument (`tools.specs.IDENTITY_ARGUMENT`, declared in this target's
gateway schema) is always set by the REQUEST interceptor to the verified caller's `sub`; it is the only
source of the ticket owner, and a call without it is refused as `unauthorized` (`functions.tool_target.serve`).
"""

from __future__ import annotations

import logging
from typing import Any

import boto3

from functions.common import require_env
from functions.tool_target import IDENTITY_SOURCE, serve
from tools.dispatch import ToolTable
from tools.tickets import DynamoTicketRepository, TicketService, ticket_tools

logger = logging.getLogger(__name__)
logger.setLevel(logging.INFO)

_table: ToolTable | None = None


def _get_table() -> ToolTable:
    global _table
    if _table is None:
        table_name = require_env("TICKETS_TABLE_NAME")
        service = TicketService(DynamoTicketRepository(boto3.resource("dynamodb").Table(table_name)))
        _table = ToolTable(ticket_tools(service), identity_source=IDENTITY_SOURCE)
    return _table


def handler(event: Any, context: Any) -> dict[str, Any]:
    """Run the ticket tool named in the gateway context for the actor the interceptor verified."""
    return serve(_get_table(), event, context)

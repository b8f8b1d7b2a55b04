"""`serve`: the one way a tool Lambda (a Lambda target of the tool gateway) answers a gateway call, through
the tool table of tools/dispatch.py. Shipped by the tool Lambdas only (not the interceptor)."""

from __future__ import annotations

import logging
from typing import Any

from functions.common import tool_name
from tools import specs
from tools.dispatch import ToolTable
from tools.errors import ToolError

logger = logging.getLogger(__name__)

IDENTITY_SOURCE = f"the tool gateway must set {specs.IDENTITY_ARGUMENT}"
"""How a tool Lambda receives the verified caller (for the `unauthorized` message)."""


def serve(table: ToolTable, event: Any, context: Any) -> dict[str, Any]:
    """Run the tool named in the gateway context on `event` (the tool's declared input properties).

    For a tool whose target receives the caller (`ToolSpec.needs_identity`), the identity argument that
    the REQUEST interceptor sets is taken out of the event and passed as the actor: it is the only source
    of the caller; the rest is validated against the tool's public schema. Any other target gets no
    identity, so an identity argument in its event is an unknown argument.

    A ToolError is returned as the tool's result, `{"error": {"code", "message"}}`, not raised: the gateway
    turns a Lambda function error into an unspecified internal error, which would hide the field name from
    the model (docs/tool-gateway.md, "Tickets").
    """
    name = tool_name(context)
    arguments = dict(event) if isinstance(event, dict) else event
    actor: str | None = None
    if name in table.names and specs.spec(name).needs_identity and isinstance(arguments, dict):
        claimed = arguments.pop(specs.IDENTITY_ARGUMENT, None)
        actor = claimed if isinstance(claimed, str) else None
    try:
        return table.call(name, arguments, actor)
    except ToolError as error:
        log = logger.warning if error.status >= 500 else logger.info
        log("tool %s refused: %s (%d)", name, error.code.value, error.status)
        return error.to_dict()

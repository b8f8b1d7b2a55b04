"""Tools by name: the one place a tool call is looked up, identity-checked, validated and run.

A `ToolTable` maps each tool name to its handler. `call(name, arguments, actor)`:
1. an unknown name is `ToolError(unknown_tool)` naming it and the tools served here;
2. a tool whose target acts for the caller (`ToolSpec.needs_identity`) without a verified actor is
   `ToolError(unauthorized)`;
3. the arguments are validated against the tool's published schema (`tools.validation`);
4. the handler runs with the checked arguments and the actor.

Both transports use it: the tool Lambdas (`functions/common.py`) and the local MCP server
(`tools/server.py`). The actor is always a separate parameter taken from the verified identity, never
from the arguments.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from tools import specs
from tools.errors import ErrorCode, ToolError
from tools.validation import validate_arguments

logger = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any], str | None], dict[str, Any]]
"""A tool implementation: (checked arguments, verified actor or None) -> JSON-serialisable result."""


class ToolTable:
    """The tools one surface serves.

    Args:
        handlers: `{tool name: handler}`; every name must be a tool of tools/specs.py.
        identity_source: how this surface receives the verified caller, for the `unauthorized` message
            (e.g. "the tool gateway sets _actor").
    """

    def __init__(self, handlers: Mapping[str, Handler], identity_source: str) -> None:
        known = {spec.name for spec in specs.TOOL_SPECS}
        strays = sorted(set(handlers) - known)
        if strays:
            raise ValueError(f"handlers for tools without a spec in tools/specs.py: {strays}")
        self._handlers = dict(handlers)
        self._identity_source = identity_source
        self.specs: tuple[specs.ToolSpec, ...] = tuple(
            spec for spec in specs.TOOL_SPECS if spec.name in self._handlers
        )
        """The specs of the tools served, in tools/specs.py order."""

    @property
    def names(self) -> list[str]:
        """The names of the tools served, in tools/specs.py order."""
        return [spec.name for spec in self.specs]

    def call(self, name: object, arguments: object, actor: str | None) -> dict[str, Any]:
        """Run tool `name` for `actor`; raises ToolError."""
        handler = self._handlers.get(name) if isinstance(name, str) else None
        if handler is None:
            raise ToolError(
                ErrorCode.UNKNOWN_TOOL, f"tool: unknown tool {str(name)[:80]!r}; known tools: {self.names}"
            )
        spec = specs.spec(str(name))
        if spec.needs_identity and not (isinstance(actor, str) and actor.strip()):
            raise ToolError(ErrorCode.UNAUTHORIZED, f"no verified caller identity: {self._identity_source}")
        return handler(validate_arguments(spec, arguments), actor)

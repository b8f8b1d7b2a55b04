"""The one error type of every tool: a machine-readable code, an HTTP-style status, a message naming the
field or cause.

Every surface maps it the same way: the tool Lambdas return `ToolError.to_dict()` as the tool's result
and the local MCP server returns the same JSON as an MCP tool error (`isError`). Callers classify a
failure by `code` (or `status`), never by its message text.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType


class ErrorCode(StrEnum):
    """Why a tool call failed."""

    INVALID_ARGUMENT = "invalid_argument"
    """An argument breaks the tool's schema or a rule of its domain; the message names the field."""
    UNKNOWN_TOOL = "unknown_tool"
    """No tool of that name is served here; the message names it and the known tools."""
    UNAUTHORIZED = "unauthorized"
    """The call carried no (or a malformed) verified caller identity."""
    NOT_FOUND = "not_found"
    """The caller has no such item (also when another caller has it: existence is never revealed)."""
    CONFLICT = "conflict"
    """Concurrent changes kept winning; trying again may succeed."""
    LIMIT_EXCEEDED = "limit_exceeded"
    """The item is at a bounded maximum (e.g. comments per ticket)."""
    NOT_CONFIGURED = "not_configured"
    """The tool lacks a setting (e.g. an API key) on this server."""
    UPSTREAM_ERROR = "upstream_error"
    """A service the tool depends on failed or could not be reached."""


HTTP_STATUS: Mapping[ErrorCode, int] = MappingProxyType(
    {
        ErrorCode.INVALID_ARGUMENT: 400,
        ErrorCode.UNAUTHORIZED: 401,
        ErrorCode.NOT_FOUND: 404,
        ErrorCode.UNKNOWN_TOOL: 404,
        ErrorCode.CONFLICT: 409,
        ErrorCode.LIMIT_EXCEEDED: 409,
        ErrorCode.UPSTREAM_ERROR: 502,
        ErrorCode.NOT_CONFIGURED: 503,
    }
)
"""The HTTP-style status of each code: 4xx the caller can fix, 5xx the server's side."""


class ToolError(Exception):
    """A tool call failed for a reason the caller can act on.

    Args:
        code: why (an ErrorCode).
        message: starts with the field or subject it is about (`"email: ..."`), then the rule broken.
    """

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(f"{code.value}: {message}")
        self.code = code
        self.message = message

    @property
    def status(self) -> int:
        """The HTTP-style status of the code (400, 401, 404, 409, 502, 503)."""
        return HTTP_STATUS[self.code]

    def to_dict(self) -> dict[str, dict[str, str]]:
        """The JSON error body every tool surface returns: `{"error": {"code", "message"}}`."""
        return {"error": {"code": self.code.value, "message": self.message}}

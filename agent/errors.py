"""Errors the HTTP layer turns into the contract's error answers (docs/agent-api.md)."""

from __future__ import annotations


class ApiError(Exception):
    """An error with an HTTP status and a stable code; the message is safe to show to the caller."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def body(self, trace_id: str = "") -> dict[str, dict[str, str]]:
        return {"error": {"code": self.code, "message": self.message, "trace_id": trace_id}}


class ConfigurationError(RuntimeError):
    """The agent's environment is incomplete or invalid; the message names the variable."""

"""Errors the HTTP layer turns into the contract's error answers (docs/agent-api.md)."""

from __future__ import annotations

from collections.abc import Mapping


class ApiError(Exception):
    """An error with an HTTP status and a stable code; the message is safe to show to the caller.

    `retry_after` (seconds) becomes a `Retry-After` header (429 `rate_limited`, 503 `busy`).
    """

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        retry_after: int | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after
        self.trace_id = ""
        self.extra_headers = dict(headers or {})

    def body(self, trace_id: str = "") -> dict[str, dict[str, str]]:
        return {"error": {"code": self.code, "message": self.message, "trace_id": trace_id or self.trace_id}}

    def headers(self) -> dict[str, str]:
        headers = dict(self.extra_headers)
        if self.retry_after is not None:
            headers["Retry-After"] = str(self.retry_after)
        return headers


class ConfigurationError(RuntimeError):
    """The agent's environment is incomplete or invalid; the message names the variable."""


class TurnFailure(Exception):
    """Base of the agent's own turn failures (classified by type in `agent.failures.FAILURES`)."""


class ModelUnavailable(TurnFailure):
    """The LLM gateway failed after its own retries and fallbacks."""


class BudgetExceeded(TurnFailure):
    """The LLM gateway refused the call because the budget of the caller's team (its key) is spent.

    Raised by the gateway model (agent.bootstrap) when LiteLLM answers with its error type
    `budget_exceeded`; `team` is the team whose key the agent chose (None: the agent's single key).
    """

    def __init__(self, team: str | None) -> None:
        super().__init__(
            f"the LLM budget of team {team!r} is exhausted" if team else "the LLM budget is exhausted"
        )
        self.team = team


class EmptyAnswer(TurnFailure):
    """The model ended its turn without any text (an `internal_error`: nothing to show or remember)."""


class TurnTimeout(TurnFailure):
    """The turn passed its deadline; `code` says what it was waiting for (`model_timeout`, `turn_timeout`)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code

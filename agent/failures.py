"""How a failed turn is answered: one table from exception type to the contract's error (docs/agent-api.md).

`classify_failure` walks the whole exception chain (causes, contexts, exception-group members) and
answers with the first row of `FAILURES` that has a matching type. Only types and the SDKs' structured
fields are read (an `httpx.Response`'s `Retry-After` header), never message text. The types relied on,
at the versions pinned in agent/requirements.txt:

- openai 2.54.0 `openai/_exceptions.py`: `APIError` <- `APIStatusError` (`.response: httpx.Response`,
  `.status_code`) <- `RateLimitError`; `APIError` <- `APIConnectionError` <- `APITimeoutError`.
  `openai/_client.py` `_make_status_error` raises `RateLimitError` for every HTTP 429.
- httpx 0.28.1 `httpx/_exceptions.py`: `HTTPError` <- `RequestError` <- `TransportError` <-
  `TimeoutException` (connect/read/write/pool timeouts).
- strands-agents 1.62.0 `strands/types/exceptions.py` `ModelThrottledException`,
  `ContextWindowOverflowException`; `strands/models/openai.py` `stream` re-raises an `openai.APIError`
  as one of them `from error` (so the OpenAI error stays in the chain). Strands decides which by
  reading the message (`strands/models/_openai_errors.py` `classify_openai_error`); the OpenAI rows
  therefore come first, and the Strands rows only classify chains without an OpenAI/httpx error.
- A spent team budget reaches this table as our `BudgetExceeded` (agent.bootstrap raises it from the
  gateway's answer by its structured `type`, see `is_budget_exceeded`), before the 429 row: LiteLLM
  answers a spent budget with HTTP 429 too, which would otherwise read as `rate_limited`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import openai
from strands.types.exceptions import ContextWindowOverflowException, ModelThrottledException

from agent.errors import ApiError, BudgetExceeded, ModelUnavailable, TurnTimeout
from agent.tool_client import ToolsUnavailable, exception_chain

RATE_LIMIT_DEFAULT_RETRY_SECONDS = 5
MAX_RETRY_AFTER_SECONDS = 300
STATUS_BY_CODE = {
    "model_unavailable": 502,
    "tools_unavailable": 502,
    "model_timeout": 504,
    "turn_timeout": 504,
    "rate_limited": 429,
    "budget_exceeded": 429,
    "internal_error": 500,
}


@dataclass(frozen=True)
class Failure:
    """How a failed turn is answered: HTTP status (JSON answers), contract code and a safe message."""

    status: int
    code: str
    message: str
    retry_after: int | None = None

    def event(self, trace_id: str) -> dict[str, Any]:
        """The stream's final `error` event."""
        event: dict[str, Any] = {
            "type": "error",
            "code": self.code,
            "message": self.message,
            "trace_id": trace_id,
        }
        if self.retry_after is not None:
            event["retry_after"] = self.retry_after
        return event


MODEL_UNAVAILABLE = Failure(
    502, "model_unavailable", "the language model is unavailable; please try again shortly"
)
MODEL_TIMEOUT = Failure(504, "model_timeout", "the language model did not answer in time; please try again")
TOOLS_UNAVAILABLE = Failure(
    502, "tools_unavailable", "the agent's tools are unavailable (the tool server refused the session)"
)
INTERNAL = Failure(500, "internal_error", "the agent failed to answer; please try again")


Answer = Callable[[BaseException, list[BaseException]], Failure]
"""Given the exception that matched a row and the whole chain, the failure to answer."""


def retry_after_seconds(chain: list[BaseException]) -> int:
    """Seconds from the gateway's `Retry-After` (delta-seconds form) on the 429, else a default.

    The header is read from the `httpx.Response` an `openai.APIStatusError` carries (`.response`).
    """
    for error in chain:
        response = getattr(error, "response", None)
        if isinstance(response, httpx.Response):
            raw = response.headers.get("retry-after", "")
            try:
                return max(1, min(MAX_RETRY_AFTER_SECONDS, int(float(raw))))
            except ValueError:
                continue
    return RATE_LIMIT_DEFAULT_RETRY_SECONDS


# litellm 1.102.4 proxy/_types.py `ProxyErrorTypes.budget_exceeded`; the proxy answers a spent key,
# team, user or end-user budget with HTTP 429 and `{"error": {"type": "budget_exceeded", ...}}`
# (proxy/auth/auth_exception_handler.py `_as_proxy_exception`); openai 2.54 `APIError.type` is that
# `type` (openai/_exceptions.py `APIError.__init__` reads `body["type"]`).
LITELLM_BUDGET_ERROR_TYPE = "budget_exceeded"


def is_budget_exceeded(error: BaseException) -> bool:
    """Whether the chain of `error` holds the gateway's budget answer (by its error type, not text)."""
    return any(
        isinstance(current, openai.APIStatusError) and current.type == LITELLM_BUDGET_ERROR_TYPE
        for current in exception_chain(error)
    )


def _budget_exceeded(error: BaseException, _: list[BaseException]) -> Failure:
    assert isinstance(error, BudgetExceeded)  # the row's only type
    whose = f"of team '{error.team}'" if error.team else "of this agent"
    return Failure(
        429,
        "budget_exceeded",
        f"the LLM budget {whose} is used up; ask the team's gateway admin to raise it, or wait for the "
        "budget period to reset",
    )


def _rate_limited(_: BaseException, chain: list[BaseException]) -> Failure:
    seconds = retry_after_seconds(chain)
    return Failure(429, "rate_limited", f"the model's rate limit was reached; retry in {seconds} s", seconds)


def _timed_out(timeout: BaseException, _: list[BaseException]) -> Failure:
    assert isinstance(timeout, TurnTimeout)  # the row's only type
    return Failure(STATUS_BY_CODE[timeout.code], timeout.code, str(timeout))


def _fixed(failure: Failure) -> Answer:
    return lambda _error, _chain: failure


# Checked in order against every exception of the chain: the first row with a match classifies it.
FAILURES: tuple[tuple[tuple[type[BaseException], ...], Answer], ...] = (
    ((TurnTimeout,), _timed_out),
    ((ToolsUnavailable,), _fixed(TOOLS_UNAVAILABLE)),
    ((BudgetExceeded,), _budget_exceeded),
    ((openai.RateLimitError,), _rate_limited),
    ((openai.APITimeoutError, httpx.TimeoutException, TimeoutError), _fixed(MODEL_TIMEOUT)),
    ((ModelUnavailable, openai.APIError, httpx.HTTPError), _fixed(MODEL_UNAVAILABLE)),
    ((ModelThrottledException,), _rate_limited),  # a non-OpenAI Strands model's throttling
    ((ContextWindowOverflowException,), _fixed(MODEL_UNAVAILABLE)),
)


def error_from_event(event: dict[str, Any]) -> ApiError:
    """The JSON answer's error for a stream's final `error` event (status from `STATUS_BY_CODE`)."""
    error = ApiError(
        STATUS_BY_CODE.get(event["code"], 500),
        event["code"],
        event["message"],
        retry_after=event.get("retry_after"),
    )
    error.trace_id = event.get("trace_id", "")
    return error


def classify_failure(error: BaseException) -> Failure:
    """The contract answer for a turn that raised `error` (see FAILURES); anything else is `internal_error`."""
    chain = list(exception_chain(error))
    for types, answer in FAILURES:
        for current in chain:
            if isinstance(current, types):
                return answer(current, chain)
    return INTERNAL

"""Failure mapping: exception type -> the contract's error (docs/agent-api.md "Errors", agent/failures.py).

Each row of the table is exercised by the real exception classes of the pinned SDKs (openai 2.54.0,
httpx 0.28.1, strands-agents 1.62.0), built as the SDKs build them (an `openai.APIStatusError` carries
the `httpx.Response`), wrapped the way they reach the agent (Strands re-raises `from error`). Messages
are chosen to mislead: only types decide.
"""

from __future__ import annotations

import asyncio

import httpx
import openai
import pytest
from strands.types.exceptions import ContextWindowOverflowException, ModelThrottledException

from agent.errors import ApiError, BudgetExceeded, EmptyAnswer, ModelUnavailable, TurnTimeout
from agent.failures import (
    FAILURES,
    INTERNAL,
    MAX_RETRY_AFTER_SECONDS,
    RATE_LIMIT_DEFAULT_RETRY_SECONDS,
    STATUS_BY_CODE,
    Failure,
    classify_failure,
    error_from_event,
    retry_after_seconds,
)
from agent.identity import Caller
from agent.payload import Invocation
from agent.tool_client import ToolsUnavailable
from local_stack.scripted_strands import Boom

REQUEST = httpx.Request("POST", "http://gateway/v1/chat/completions")


def status_error(status: int, headers: dict[str, str] | None = None) -> openai.APIStatusError:
    """The error openai's `_make_status_error` raises for an HTTP answer (429 -> RateLimitError, 5xx ->
    InternalServerError, others by status)."""
    response = httpx.Response(status, headers=headers or {}, request=REQUEST)
    classes: dict[int, type[openai.APIStatusError]] = {
        400: openai.BadRequestError,
        401: openai.AuthenticationError,
        429: openai.RateLimitError,
        500: openai.InternalServerError,
        503: openai.InternalServerError,
    }
    return classes[status]("gateway says: rate limit timeout", response=response, body=None)


def raised_from(outer: BaseException, inner: BaseException) -> BaseException:
    try:
        try:
            raise inner
        except BaseException as error:
            raise outer from error
    except BaseException as caught:
        return caught


def in_context_of(outer: BaseException, inner: BaseException) -> BaseException:
    try:
        try:
            raise inner
        except BaseException:
            raise outer  # noqa: B904  (implicit context, not an explicit cause)
    except BaseException as caught:
        return caught


CASES = [
    # (exception, status, code)
    (status_error(429), 429, "rate_limited"),
    (raised_from(ModelThrottledException("x"), status_error(429)), 429, "rate_limited"),
    (ModelThrottledException("no OpenAI error below"), 429, "rate_limited"),
    (openai.APITimeoutError(request=REQUEST), 504, "model_timeout"),
    (httpx.ReadTimeout("slow", request=REQUEST), 504, "model_timeout"),
    (httpx.ConnectTimeout("slow"), 504, "model_timeout"),
    (TimeoutError(), 504, "model_timeout"),
    (openai.APIConnectionError(request=REQUEST), 502, "model_unavailable"),
    (status_error(500), 502, "model_unavailable"),
    (status_error(503), 502, "model_unavailable"),
    (status_error(401), 502, "model_unavailable"),
    (httpx.ConnectError("refused"), 502, "model_unavailable"),
    (httpx.RemoteProtocolError("peer closed"), 502, "model_unavailable"),
    (ModelUnavailable("rate limit"), 502, "model_unavailable"),
    (ContextWindowOverflowException("timeout"), 502, "model_unavailable"),
    (raised_from(ContextWindowOverflowException("x"), status_error(400)), 502, "model_unavailable"),
    (ToolsUnavailable("rate limit timeout"), 502, "tools_unavailable"),
    (raised_from(ToolsUnavailable("x"), httpx.ConnectTimeout("slow")), 502, "tools_unavailable"),
    (TurnTimeout("model_timeout", "the model took too long"), 504, "model_timeout"),
    (TurnTimeout("turn_timeout", "the tool search ran"), 504, "turn_timeout"),
    (KeyError("rate limit 429 timeout"), 500, "internal_error"),
    (RuntimeError("openai.RateLimitError"), 500, "internal_error"),
    (EmptyAnswer("model unavailable"), 500, "internal_error"),
]


@pytest.mark.parametrize(
    ("error", "status", "code"), CASES, ids=[f"{type(c[0]).__name__}-{c[2]}" for c in CASES]
)
def test_each_exception_type_maps_to_its_contract_error(error, status, code):
    failure = classify_failure(error)
    assert (failure.status, failure.code) == (status, code)
    assert STATUS_BY_CODE[failure.code] == failure.status


def test_strands_throttling_read_from_an_openai_5xx_message_is_the_5xx():
    # strands-agents 1.62.0 `classify_openai_error` turns an APIError whose *message* mentions a rate
    # limit into ModelThrottledException; the gateway's status (500) is what counts here.
    wrapped = raised_from(ModelThrottledException("rate limit"), status_error(500))
    assert classify_failure(wrapped).code == "model_unavailable"


def test_a_rate_limit_anywhere_in_the_chain_beats_the_wrappers_around_it():
    error = raised_from(
        RuntimeError("event loop failed"), raised_from(ModelThrottledException("x"), status_error(429))
    )
    assert classify_failure(error).code == "rate_limited"
    assert classify_failure(in_context_of(KeyError("x"), status_error(429))).code == "rate_limited"


def test_exception_group_members_are_classified():
    group = ExceptionGroup("task group", [KeyError("x"), openai.APITimeoutError(request=REQUEST)])
    assert classify_failure(group).code == "model_timeout"


def test_a_timeout_wins_over_the_model_errors_it_caused():
    assert classify_failure(raised_from(status_error(500), TurnTimeout("turn_timeout", "late"))).code == (
        "turn_timeout"
    )


def test_turn_timeout_keeps_its_message():
    failure = classify_failure(
        TurnTimeout("turn_timeout", "the turn passed its 45 s deadline while the tool x ran")
    )
    assert failure == Failure(504, "turn_timeout", "the turn passed its 45 s deadline while the tool x ran")


def test_fixed_messages_never_echo_the_exception_text():
    assert classify_failure(status_error(500)).message == (
        "the language model is unavailable; please try again shortly"
    )
    assert classify_failure(TimeoutError("secret")).message == (
        "the language model did not answer in time; please try again"
    )
    assert classify_failure(ToolsUnavailable("secret")).message == (
        "the agent's tools are unavailable (the tool server refused the session)"
    )
    assert classify_failure(KeyError("secret")) is INTERNAL
    assert Failure(500, "internal_error", "the agent failed to answer; please try again") == INTERNAL


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("7", 7),
        ("2.9", 2),
        ("0", 1),
        ("-3", 1),
        ("300", 300),
        ("301", MAX_RETRY_AFTER_SECONDS),
        ("86400", MAX_RETRY_AFTER_SECONDS),
        ("Wed, 21 Oct 2015 07:28:00 GMT", RATE_LIMIT_DEFAULT_RETRY_SECONDS),  # HTTP-date form: default
        ("", RATE_LIMIT_DEFAULT_RETRY_SECONDS),
        (None, RATE_LIMIT_DEFAULT_RETRY_SECONDS),
    ],
)
def test_rate_limited_carries_the_gateways_retry_after(header, seconds):
    headers = {"retry-after": header} if header is not None else {}
    failure = classify_failure(status_error(429, headers))
    assert failure == Failure(
        429, "rate_limited", f"the model's rate limit was reached; retry in {seconds} s", seconds
    )


def test_retry_after_is_read_from_the_first_response_that_has_one():
    bare = status_error(429)
    with_header = status_error(429, {"retry-after": "12"})
    assert retry_after_seconds([KeyError("x"), bare, with_header]) == 12
    assert retry_after_seconds([ModelThrottledException("x")]) == RATE_LIMIT_DEFAULT_RETRY_SECONDS
    assert RATE_LIMIT_DEFAULT_RETRY_SECONDS == 5 and MAX_RETRY_AFTER_SECONDS == 300


def test_failure_events_and_their_json_errors():
    limited = Failure(429, "rate_limited", "slow down", 9)
    assert limited.event("t1") == {
        "type": "error",
        "code": "rate_limited",
        "message": "slow down",
        "trace_id": "t1",
        "retry_after": 9,
    }
    assert "retry_after" not in Failure(502, "model_unavailable", "down").event("")
    error = error_from_event(limited.event("t1"))
    assert isinstance(error, ApiError)
    assert (error.status, error.code, error.message, error.retry_after, error.trace_id) == (
        429,
        "rate_limited",
        "slow down",
        9,
        "t1",
    )
    assert error.headers() == {"Retry-After": "9"}
    unknown = error_from_event({"type": "error", "code": "something_new", "message": "m"})
    assert (unknown.status, unknown.trace_id, unknown.retry_after) == (500, "", None)


def test_status_by_code_is_the_contract_table():
    assert STATUS_BY_CODE == {
        "model_unavailable": 502,
        "tools_unavailable": 502,
        "model_timeout": 504,
        "turn_timeout": 504,
        "rate_limited": 429,
        "budget_exceeded": 429,
        "internal_error": 500,
    }
    assert [row[0] for row in FAILURES][:3] == [(TurnTimeout,), (ToolsUnavailable,), (BudgetExceeded,)]


# --- through the real turn: the model raises, the JSON answer and the stream end with the contract error


@pytest.mark.parametrize(
    ("error", "status", "code", "retry_after"),
    [
        (status_error(429, {"retry-after": "17"}), 429, "rate_limited", 17),
        (openai.APITimeoutError(request=REQUEST), 504, "model_timeout", None),
        (status_error(503), 502, "model_unavailable", None),
        (ModelThrottledException("throttled"), 429, "rate_limited", 5),
        (ContextWindowOverflowException("too long"), 502, "model_unavailable", None),
        (ValueError("rate limit"), 500, "internal_error", None),
    ],
)
def test_a_model_failure_ends_the_turn_with_its_contract_error(
    make_service, model, error, status, code, retry_after
):
    service = make_service()
    model.enqueue(Boom(error))
    with pytest.raises(ApiError) as caught:
        asyncio.run(service.run_turn(Invocation("hello", "s-" + "e" * 32, False), Caller("alice")))
    assert (caught.value.status, caught.value.code, caught.value.retry_after) == (status, code, retry_after)
    assert service.memory.history("alice", "s-" + "e" * 32, 5) == []  # a failed turn is not remembered


def test_an_empty_answer_is_an_internal_error(make_service, model):
    from local_stack.scripted_strands import Say

    model.enqueue(Say("   "))

    async def collect() -> list[dict[str, object]]:
        service = make_service()
        return [e async for e in service.stream_turn(Invocation("hi", "s-" + "e" * 32, True), Caller("a"))]

    events = asyncio.run(collect())
    assert events[-1]["type"] == "error" and events[-1]["code"] == "internal_error"
    assert all(e["type"] != "done" for e in events)


def test_api_error_body_message_and_headers():
    error = ApiError(503, "busy", "retry shortly", retry_after=5, headers={"Allow": "GET"})
    assert str(error) == "retry shortly" and error.message == "retry shortly"
    assert (error.status, error.code, error.trace_id) == (503, "busy", "")
    assert error.body() == {"error": {"code": "busy", "message": "retry shortly", "trace_id": ""}}
    assert error.body("t9")["error"]["trace_id"] == "t9"
    error.trace_id = "t1"
    assert error.body()["error"]["trace_id"] == "t1"
    assert error.body("t2")["error"]["trace_id"] == "t2"
    assert error.headers() == {"Allow": "GET", "Retry-After": "5"}
    assert ApiError(400, "invalid_json", "bad").headers() == {}
    timeout = TurnTimeout("turn_timeout", "late")
    assert (timeout.code, str(timeout)) == ("turn_timeout", "late")

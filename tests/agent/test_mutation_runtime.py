"""Issue 12: the agent runtime's start-up and relay edges the mutation run showed untested.

- `Runtime.warm_up` builds the real service; a failing pre-warm (no tool gateway listening) is a
  WARNING with the traceback and the agent still becomes ready (logged `agent ready (mode, model)`); a
  failing build is an ERROR with the traceback and turns get the 500 `internal_error`.
- `start_warm_up` runs it on a daemon thread named `agent-warm-up` (a stuck warm-up never blocks exit).
- `_relay` runs the turn in the context it is given (one context for all the turn's spans), and a
  stream that raises is logged as an ERROR with its exception and ends with the generic SSE error frame.
- `_internal_error` logs the stage and the exception, and answers the contract's 500.
"""

from __future__ import annotations

import asyncio
import contextvars
import http.server
import json
import logging
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from agent.errors import ApiError
from agent.main import Runtime, _internal_error, _relay
from agent.main import logger as main_logger
from tests.agent.http_support import DEPLOYED, LOCAL, settings


def records(caplog: pytest.LogCaptureFixture, level: int) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == main_logger.name and r.levelno == level]


class NotMcp(http.server.BaseHTTPRequestHandler):
    """A tool server that answers, but not MCP: the local pre-warm's session cannot open."""

    def do_POST(self) -> None:
        self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_DELETE = do_POST

    def log_message(self, format: str, *args: Any) -> None:
        return None


@pytest.fixture
def not_mcp() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), NotMcp)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/mcp"
    server.shutdown()
    server.server_close()


def test_a_failed_prewarm_is_a_warning_and_the_agent_still_starts(
    not_mcp: str, caplog: pytest.LogCaptureFixture
) -> None:
    runtime = Runtime(settings(LOCAL, tool_gateway_url=not_mcp))
    with caplog.at_level(logging.INFO, logger=main_logger.name):
        runtime.warm_up()
    (warning,) = records(caplog, logging.WARNING)
    assert warning.getMessage() == "pre-warming failed; the first turn pays the start-up cost"
    assert warning.exc_info is not None and warning.exc_info[1] is not None
    assert [r.getMessage() for r in records(caplog, logging.INFO)] == [
        "agent ready (mode=local, model=claude-sonnet)"
    ]
    assert not records(caplog, logging.ERROR)
    assert asyncio.run(runtime.service()) is not None


def test_a_failed_start_is_an_error_and_turns_get_a_500(caplog: pytest.LogCaptureFixture) -> None:
    runtime = Runtime(settings(DEPLOYED, turn_deadline_seconds=0.5))  # no secret ARNs: the build fails
    with caplog.at_level(logging.INFO, logger=main_logger.name):
        runtime.warm_up()
    (error,) = records(caplog, logging.ERROR)
    assert error.getMessage() == "agent failed to start"
    assert error.exc_info is not None and isinstance(error.exc_info[1], AssertionError)
    assert not records(caplog, logging.INFO)
    with pytest.raises(ApiError) as raised:
        asyncio.run(runtime.service())
    assert (raised.value.status, raised.value.code) == (500, "internal_error")


class RecordingRuntime(Runtime):
    def warm_up(self) -> None:
        self.thread = threading.current_thread()
        self._ready.set()


def test_the_warm_up_runs_on_a_named_daemon_thread() -> None:
    runtime = RecordingRuntime(LOCAL)
    runtime.start_warm_up()
    assert runtime._ready.wait(5)
    assert runtime.thread is not threading.main_thread()
    assert runtime.thread.name == "agent-warm-up" and runtime.thread.daemon


# --- _relay --------------------------------------------------------------------------------------------

TURN = contextvars.ContextVar("turn", default="none")


async def relay(events: AsyncIterator[dict[str, Any]], context: contextvars.Context) -> list[bytes]:
    worker = asyncio.new_event_loop()
    thread = threading.Thread(target=worker.run_forever, daemon=True)
    thread.start()
    try:
        return [frame async for frame in _relay(events, worker, context)]
    finally:
        worker.call_soon_threadsafe(worker.stop)
        thread.join(5)
        worker.close()


def test_the_turn_runs_in_the_context_it_is_given() -> None:
    async def events() -> AsyncIterator[dict[str, Any]]:
        yield {"type": "delta", "text": TURN.get()}

    context = contextvars.copy_context()
    context.run(TURN.set, "the turn's")

    async def main() -> list[bytes]:
        TURN.set("the server's")
        return await relay(events(), context)

    assert asyncio.run(main()) == [b'data: {"type": "delta", "text": "the turn\'s"}\n\n']


def test_a_failing_stream_is_logged_and_ends_with_the_generic_error(caplog: pytest.LogCaptureFixture) -> None:
    failure = RuntimeError("model exploded")

    async def events() -> AsyncIterator[dict[str, Any]]:
        yield {"type": "delta", "text": "Hel"}
        raise failure

    with caplog.at_level(logging.ERROR, logger=main_logger.name):
        frames = asyncio.run(relay(events(), contextvars.copy_context()))
    assert [json.loads(f.decode().removeprefix("data: ")) for f in frames] == [
        {"type": "delta", "text": "Hel"},
        {
            "type": "error",
            "code": "internal_error",
            "message": "the agent failed to answer; please try again",
            "trace_id": "",
        },
    ]
    (record,) = records(caplog, logging.ERROR)
    assert record.getMessage() == "turn stream failed" and record.exc_info is not None
    assert record.exc_info[1] is failure


def test_internal_error_logs_the_stage_and_answers_500(caplog: pytest.LogCaptureFixture) -> None:
    error = ValueError("unexpected")
    with caplog.at_level(logging.ERROR, logger=main_logger.name):
        response = _internal_error("entrypoint", error)
    assert response.status_code == 500
    assert json.loads(bytes(response.body))["error"] == {
        "code": "internal_error",
        "message": "the agent failed; please try again",
        "trace_id": "",
    }
    (record,) = records(caplog, logging.ERROR)
    assert record.getMessage() == "unhandled error in the entrypoint"
    assert record.exc_info is not None and record.exc_info[1] is error

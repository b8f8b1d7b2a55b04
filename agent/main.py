"""The agent's HTTP entrypoint: `BedrockAgentCoreApp` with `/ping` and `/invocations`.

This module imports only the SDK app and the light validation modules, so `/ping` answers within a
fraction of a second of process start; Strands, OpenAI, MCP and OpenTelemetry are imported by a
background thread (`agent.bootstrap`) and the first turn waits for it. It never imports litellm.

Reliability (docs/agent-api.md, "Limits and errors"):
- `HttpGuard` (outermost ASGI middleware) answers `GET /ping` itself on the server's event loop (never
  through Starlette's 40-thread pool, which long streams can exhaust), checks Host/Origin/Content-Type
  in local mode, admits at most `AGENT_MAX_CONCURRENT_TURNS` turns (503 `busy`), bounds the body read
  (`AGENT_BODY_TIMEOUT_SECONDS`, 408) and size (413) and decodes the JSON (400) before the SDK runs.
- Framework errors (404, 405, unhandled exceptions) carry the contract's JSON body; there are no
  slash redirects.
- Streamed turns run on the SDK's worker event loop and are relayed to the server loop through an
  asyncio queue (`_relay`), so a stream holds no thread; a client disconnect cancels the turn.
- `bounded_protocol` bounds connections (`AGENT_MAX_CONNECTIONS`) and the time to send the request
  headers (`AGENT_HEADER_TIMEOUT_SECONDS`), which uvicorn itself does not.

    python -m agent.main            # AGENT_HOST/AGENT_PORT, default 127.0.0.1:8080 (0.0.0.0 in a container)
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import gc
import json
import logging
import os
import threading
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from bedrock_agentcore.runtime import BedrockAgentCoreApp, PingStatus, RequestContext
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agent.errors import ApiError, ConfigurationError
from agent.identity import Caller, caller_from_authorization
from agent.payload import MAX_BODY_BYTES, decode_body, parse_invocation
from agent.settings import Settings

if TYPE_CHECKING:
    from agent.service import AgentService

logger = logging.getLogger("agent")

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")
BUSY_RETRY_AFTER_SECONDS = 5
HEADER_LIMIT_BYTES = 64 * 1024  # h11's incomplete-event limit: request line + headers
_FRAMEWORK_CODES = {404: "not_found", 405: "method_not_allowed"}


def error_response(error: ApiError, trace_id: str = "") -> JSONResponse:
    return JSONResponse(error.body(trace_id), status_code=error.status, headers=error.headers())


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return None


class HttpGuard:
    """Outermost ASGI middleware: fast `/ping`, local-mode request checks, turn admission, body gate."""

    def __init__(self, app: ASGIApp, runtime: Runtime) -> None:
        self.app = app
        self.runtime = runtime
        self.settings = runtime.settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        if self.settings.mode == "local":
            refusal = self._local_refusal(scope)
            if refusal is not None:
                if scope["type"] == "websocket":
                    await send({"type": "websocket.close", "code": 1008, "reason": refusal.message[:120]})
                else:
                    await _send_error(send, scope, refusal)
                return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path, method = scope["path"], scope["method"]
        if path == "/ping" and method == "GET":
            await JSONResponse(self.runtime.ping_body())(scope, receive, send)
            return
        if path != "/invocations" or method != "POST":
            await self.app(scope, receive, send)
            return
        if self.settings.mode == "agentcore" and not self.runtime.seen_request_shape:
            # Undocumented by AWS: what the runtime sends the container. Logged once, for `make verify`.
            self.runtime.seen_request_shape = True
            logger.info(
                "first invocation: Host=%r Content-Type=%r Origin present=%s",
                _header(scope, b"host"),
                _header(scope, b"content-type"),
                _header(scope, b"origin") is not None,
            )
        if not self.runtime.try_enter():
            await _send_error(
                send,
                scope,
                ApiError(
                    503,
                    "busy",
                    f"the agent is already running {self.settings.max_concurrent_turns} turns; retry shortly",
                    retry_after=BUSY_RETRY_AFTER_SECONDS,
                ),
            )
            return
        try:
            await self._invocation(scope, receive, send)
        finally:
            self.runtime.leave()

    # --- local mode: not drivable from a web page ----------------------------------------------

    def _allowed_hosts(self, scope: Scope) -> set[str]:
        server = scope.get("server")
        port = server[1] if server and len(server) > 1 else None
        hosts = {f"{host}:{port}" if port else host for host in LOOPBACK_HOSTS}
        if port == 80:
            hosts.update(LOOPBACK_HOSTS)
        hosts.update(self.settings.allowed_hosts)
        return hosts

    def _local_refusal(self, scope: Scope) -> ApiError | None:
        """Why a local-mode request is refused (DNS rebinding, cross-origin pages), or None.

        A page on another site can make the browser POST here (a "simple" request: text/plain, no
        preflight) and, through DNS rebinding, with a Host of its own name. The local agent has no
        credentials to check, so the request itself must prove it is not from a browser page.
        """
        allowed = self._allowed_hosts(scope)
        host = (_header(scope, b"host") or "").strip().lower()
        if host not in allowed:
            return ApiError(
                403,
                "forbidden_host",
                f"Host {host or '(none)'!r} is not allowed; use one of {sorted(allowed)}",
            )
        origin = _header(scope, b"origin")
        if origin is not None:
            origins = {f"{scheme}://{h}" for h in allowed for scheme in ("http", "https")}
            if origin.strip().lower() not in origins:
                return ApiError(
                    403, "forbidden_origin", f"cross-origin requests are refused (Origin {origin!r})"
                )
        if scope["type"] == "http" and scope["path"] == "/invocations" and scope["method"] == "POST":
            content_type = (_header(scope, b"content-type") or "").split(";", 1)[0].strip().lower()
            if content_type != "application/json":
                return ApiError(
                    415,
                    "unsupported_media_type",
                    f"Content-Type must be application/json (got {content_type or 'none'!r})",
                )
        return None

    # --- the body gate -------------------------------------------------------------------------

    async def _invocation(self, scope: Scope, receive: Receive, send: Send) -> None:
        max_bytes = MAX_BODY_BYTES
        declared = _header(scope, b"content-length") or ""
        too_large = ApiError(413, "payload_too_large", f"the body is larger than {max_bytes} bytes")
        if declared.isdigit() and int(declared) > max_bytes:
            await _send_error(send, scope, too_large, close=True)
            return
        body = bytearray()
        try:
            async with asyncio.timeout(self.settings.body_timeout_seconds):
                more = True
                while more:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        return
                    body.extend(message.get("body", b""))
                    more = bool(message.get("more_body", False))
                    if len(body) > max_bytes:
                        await _send_error(send, scope, too_large, close=True)
                        return
        except TimeoutError:
            await _send_error(
                send,
                scope,
                ApiError(
                    408,
                    "request_timeout",
                    f"the body did not arrive within {self.settings.body_timeout_seconds:g} s",
                ),
                close=True,
            )
            return
        try:
            decode_body(bytes(body))
        except ApiError as error:
            await _send_error(send, scope, error)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


async def _send_error(send: Send, scope: Scope, error: ApiError, *, close: bool = False) -> None:
    response = error_response(error)
    if close:
        response.headers["Connection"] = "close"
    await response(scope, _no_receive, send)


async def _no_receive() -> Message:
    return {"type": "http.disconnect"}


async def _framework_error(request: Request, exc: Exception) -> Response:
    """404/405 (and other HTTPExceptions) raised by Starlette's router, in the contract's shape."""
    assert isinstance(exc, HTTPException)
    code = _FRAMEWORK_CODES.get(exc.status_code, f"http_{exc.status_code}")
    message = f"{request.method} {request.url.path}: {exc.detail}"
    return error_response(ApiError(exc.status_code, code, message, headers=exc.headers))


async def _unhandled_error(request: Request, exc: Exception) -> Response:
    logger.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(ApiError(500, "internal_error", "the agent failed; please try again"))


def freeze_startup_heap() -> None:
    """Move everything allocated so far (modules of Strands, OpenAI, MCP, botocore...) out of the
    collector's reach: a full collection over that heap stopped every thread, /ping included, for
    ~0.4 s under 60 concurrent turns (measured, tests/reliability/test_agent_load.py)."""
    gc.collect()
    gc.freeze()


class Runtime:
    """Holds the settings and the lazily built service; counts turns in flight for `/ping`."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.app: BedrockAgentCoreApp | None = None
        self._service: AgentService | None = None
        self._error: BaseException | None = None
        self._ready = threading.Event()
        self._busy = 0
        self._lock = threading.Lock()
        self._executors: set[int] = set()
        self.seen_request_shape = False

    def warm_up(self) -> None:
        """Import the heavy modules and build the service (runs on a background thread)."""
        try:
            from agent.bootstrap import build_service

            service = build_service(self.settings)
            local_caller = (
                Caller(self.settings.local_user, groups=self.settings.local_user_groups)
                if self.settings.mode == "local"
                else None
            )
            try:
                service.prewarm(local_caller)
            except Exception:
                logger.warning("pre-warming failed; the first turn pays the start-up cost", exc_info=True)
            self._service = service
            freeze_startup_heap()
            logger.info("agent ready (mode=%s, model=%s)", self.settings.mode, self.settings.model_alias)
        except BaseException as error:
            logger.exception("agent failed to start")
            self._error = error
        finally:
            self._ready.set()

    def use(self, service: AgentService) -> None:
        self._service = service
        freeze_startup_heap()
        self._ready.set()

    def start_warm_up(self) -> None:
        threading.Thread(target=self.warm_up, name="agent-warm-up", daemon=True).start()

    async def service(self) -> AgentService:
        """The service, once warm-up finished (waits without holding a thread, bounded by the deadline)."""
        deadline = time.monotonic() + self.settings.turn_deadline_seconds
        while not self._ready.is_set():
            if time.monotonic() >= deadline:
                raise ApiError(
                    503, "busy", "the agent is still starting", retry_after=BUSY_RETRY_AFTER_SECONDS
                )
            await asyncio.sleep(0.05)
        if self._service is None:
            detail = str(self._error) if isinstance(self._error, ConfigurationError) else "see the agent log"
            raise ApiError(500, "internal_error", f"the agent is not ready: {detail}")
        return self._service

    def caller(self, context: RequestContext | None) -> Caller:
        if self.settings.mode == "local":
            return Caller(actor_id=self.settings.local_user, groups=self.settings.local_user_groups)
        headers = (context.request_headers if context is not None else None) or {}
        authorization = next((v for k, v in headers.items() if k.lower() == "authorization"), None)
        return caller_from_authorization(authorization)

    def install_executor(self) -> None:
        """Size the running loop's default executor for the turn limit (guardrail, memory, tool lists).

        asyncio's default is min(32, cores + 4) threads: 6 on a 2-core host, so concurrent turns would
        queue behind each other's blocking AWS calls.
        """
        loop = asyncio.get_running_loop()
        with self._lock:
            if id(loop) in self._executors:
                return
            self._executors.add(id(loop))
        workers = min(32, max(8, self.settings.max_concurrent_turns))
        loop.set_default_executor(ThreadPoolExecutor(max_workers=workers, thread_name_prefix="agent-io"))

    def try_enter(self) -> bool:
        """Take a turn slot (False when `AGENT_MAX_CONCURRENT_TURNS` are taken)."""
        with self._lock:
            if self._busy >= self.settings.max_concurrent_turns:
                return False
            self._busy += 1
            return True

    def enter(self) -> None:
        with self._lock:
            self._busy += 1

    def leave(self) -> None:
        with self._lock:
            self._busy -= 1

    @property
    def busy(self) -> bool:
        return self._busy > 0

    @property
    def turns_in_flight(self) -> int:
        return self._busy

    def ping_body(self) -> dict[str, Any]:
        """What the SDK's own /ping answers (status and `time_of_last_update`), without its thread hop.

        `time_of_last_update` is the SDK's (bedrock-agentcore 1.25.0, runtime/app.py `_handle_ping`):
        AgentCore reads it to judge idleness, so the SDK's bookkeeping is reused, not re-implemented.
        """
        if self.app is None:
            status = PingStatus.HEALTHY_BUSY if self.busy else PingStatus.HEALTHY
            return {"status": status.value, "time_of_last_update": int(time.time())}
        status = self.app.get_current_ping_status()
        return {"status": status.value, "time_of_last_update": int(self.app._last_status_update_time)}


def create_app(settings: Settings, *, service: AgentService | None = None) -> BedrockAgentCoreApp:
    """The AgentCore app for these settings; with `service` given (tests) nothing is built in the background."""
    runtime = Runtime(settings)
    if service is not None:
        runtime.use(service)

    @contextlib.asynccontextmanager
    async def lifespan(_: Any) -> AsyncIterator[None]:
        # Warm up once the server is listening, so the heavy imports never delay the first /ping.
        if service is None:
            runtime.start_warm_up()
        yield

    app = BedrockAgentCoreApp(middleware=[Middleware(HttpGuard, runtime=runtime)], lifespan=lifespan)
    app.state.runtime = runtime
    runtime.app = app
    app.router.redirect_slashes = False  # `/invocations/` is a 404, never a 307 to another URL
    app.add_exception_handler(HTTPException, _framework_error)
    app.add_exception_handler(Exception, _unhandled_error)

    @app.ping
    def ping() -> PingStatus:
        return PingStatus.HEALTHY_BUSY if runtime.busy else PingStatus.HEALTHY

    @app.entrypoint
    async def invoke(payload: Any, context: RequestContext) -> Any:
        # Runs on the SDK's worker event loop (bedrock-agentcore 1.25.0 `_invoke_handler`).
        runtime.install_executor()
        try:
            invocation = parse_invocation(payload, context.session_id if context is not None else None)
            caller = runtime.caller(context)
            agent = await runtime.service()
        except ApiError as error:
            return error_response(error)
        except Exception as error:  # the SDK would answer 500 {"error": "<exception text>"}: never leak it
            return _internal_error("invocation set-up", error)
        if invocation.stream:
            events = agent.stream_turn(invocation, caller)
            return StreamingResponse(
                _relay(events, asyncio.get_running_loop(), contextvars.copy_context()),
                media_type="text/event-stream",
                headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
            )
        try:
            return await agent.run_turn(invocation, caller)
        except ApiError as error:
            return error_response(error)
        except Exception as error:
            return _internal_error("turn", error)

    return app


def _internal_error(stage: str, error: Exception) -> Response:
    """The contract's 500 for an exception our code did not classify. The entrypoint's own exceptions
    do not reach the app's exception handlers: bedrock-agentcore 1.25.0 `runtime/app.py`
    (`_handle_invocation`) catches them and answers `{"error": str(exception)}` with status 500."""
    logger.error("unhandled error in the %s", stage, exc_info=error)
    return error_response(ApiError(500, "internal_error", "the agent failed; please try again"))


def _sse(event: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(event, ensure_ascii=False)}\n\n".encode()


async def _relay(
    events: AsyncIterator[dict[str, Any]], worker: asyncio.AbstractEventLoop, context: contextvars.Context
) -> AsyncIterator[bytes]:
    """Relay a turn's events from the worker loop to the server loop as SSE frames, holding no thread.

    The SDK's own bridge (`_async_gen_to_sync_gen`) parks one Starlette pool thread per stream in a
    blocking `queue.get()`; 40 streams exhaust the pool and every sync endpoint waits. Here the turn
    runs as one task on the worker loop (one context for all its spans) and pushes events into an
    asyncio queue of the server loop. When the client goes away Starlette cancels this generator and
    the finally cancels the turn's task, which closes the model's HTTP stream.
    """
    server = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
    cell: dict[str, asyncio.Task[None]] = {}

    def put(kind: str, item: Any) -> None:
        server.call_soon_threadsafe(queue.put_nowait, (kind, item))

    async def produce() -> None:
        try:
            async for event in events:
                put("event", event)
        except asyncio.CancelledError:
            raise
        except Exception as error:  # stream_turn ends with an error event itself; this is a last resort
            logger.error("turn stream failed", exc_info=error)
            put("error", error)
        finally:
            put("end", None)

    def start() -> None:
        cell["task"] = worker.create_task(produce(), context=context)

    def cancel() -> None:
        task = cell.get("task")
        if task is not None and not task.done():
            task.cancel()

    worker.call_soon_threadsafe(start)
    try:
        while True:
            kind, item = await queue.get()
            if kind == "end":
                return
            if kind == "error":
                error = ApiError(500, "internal_error", "the agent failed to answer; please try again")
                yield _sse({"type": "error", "code": error.code, "message": error.message, "trace_id": ""})
                return
            yield _sse(item)
    finally:
        worker.call_soon_threadsafe(cancel)


def bounded_protocol(settings: Settings) -> type[Any]:
    """uvicorn's h11 protocol with a connection cap and a deadline for the request headers.

    uvicorn (0.54) arms its keep-alive timer only after a response, so a client that connects and
    never finishes its headers holds the connection forever. Both refusals are written before the
    app runs, as raw HTTP with the contract's JSON body, and close the connection.
    """
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    max_connections = settings.max_connections
    header_timeout = settings.header_timeout_seconds
    last_warning = [0.0]

    def raw(status: int, reason: str, error: ApiError) -> bytes:
        body = json.dumps(error.body()).encode()
        extra = "".join(f"{k}: {v}\r\n" for k, v in error.headers().items())
        head = (
            f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n{extra}\r\n"
        )
        return head.encode("latin-1") + body

    class BoundedH11Protocol(H11Protocol):
        _header_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            if len(self.connections) > max_connections:
                if time.monotonic() - last_warning[0] > 10:  # one line per 10 s under a flood
                    last_warning[0] = time.monotonic()
                    logger.warning(
                        "refusing connections: %d open (AGENT_MAX_CONNECTIONS)", len(self.connections)
                    )
                error = ApiError(
                    503, "busy", "too many open connections", retry_after=BUSY_RETRY_AFTER_SECONDS
                )
                self._refuse(raw(503, "Service Unavailable", error))
                return
            self._arm()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
                self._arm()  # part of a request line/headers arrived: they must complete in time
            else:
                self._disarm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def on_response_complete(self) -> None:
            self._disarm()
            super().on_response_complete()

        def _arm(self) -> None:
            if self._header_timer is None:
                self._header_timer = self.loop.call_later(header_timeout, self._headers_late)

        def _disarm(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _headers_late(self) -> None:
            self._header_timer = None
            if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
                return
            error = ApiError(
                408, "request_timeout", f"the request headers did not arrive within {header_timeout:g} s"
            )
            self._refuse(raw(408, "Request Timeout", error))

        def _refuse(self, response: bytes) -> None:
            with contextlib.suppress(Exception):
                self.transport.write(response)
            self.transport.close()

    return BoundedH11Protocol


def server_config(app: ASGIApp, settings: Settings, host: str, port: int) -> Any:
    """The uvicorn configuration: our protocol, header size limit, keep-alive and backlog."""
    import uvicorn

    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=bounded_protocol(settings),
        h11_max_incomplete_event_size=HEADER_LIMIT_BYTES,
        timeout_keep_alive=5,
        backlog=2 * settings.max_connections,
        log_level="warning",
        timeout_graceful_shutdown=5,
    )


def main() -> int:
    logging.basicConfig(
        level=os.environ.get("AGENT_LOG_LEVEL", "INFO").upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        settings = Settings.from_env(os.environ)
    except ConfigurationError as error:
        logger.error("configuration error: %s", error)
        return 2
    in_container = os.path.exists("/.dockerenv") or bool(os.environ.get("DOCKER_CONTAINER"))  # noqa: PTH110
    host = os.environ.get("AGENT_HOST") or ("0.0.0.0" if in_container else "127.0.0.1")  # noqa: S104
    port = int(os.environ.get("AGENT_PORT", "8080"))
    app = create_app(settings)
    import uvicorn

    uvicorn.Server(server_config(app, settings, host, port)).run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

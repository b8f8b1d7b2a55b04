"""The agent's HTTP entrypoint: `BedrockAgentCoreApp` with `/ping` and `/invocations`.

This module imports only the SDK app and the light validation modules, so `/ping` answers within a
fraction of a second of process start; Strands, OpenAI, MCP and OpenTelemetry are imported by a
background thread (`agent.bootstrap`) and the first turn waits for it. It never imports litellm.

    python -m agent.main            # AGENT_HOST/AGENT_PORT, default 127.0.0.1:8080 (0.0.0.0 in a container)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import threading
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from bedrock_agentcore.runtime import BedrockAgentCoreApp, PingStatus, RequestContext
from starlette.middleware import Middleware
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agent.errors import ApiError, ConfigurationError
from agent.identity import Caller, caller_from_authorization
from agent.payload import MAX_BODY_BYTES, parse_invocation
from agent.settings import Settings

if TYPE_CHECKING:
    from agent.service import AgentService

logger = logging.getLogger("agent")


class InvocationGate:
    """ASGI middleware for `POST /invocations`: enforce the body limit (413) and JSON syntax (400)
    with the contract's error bodies before the SDK parses the request."""

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != "/invocations" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await _send_error(
                send,
                scope,
                ApiError(413, "payload_too_large", f"the body is larger than {self.max_bytes} bytes"),
            )
            return
        body = bytearray()
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body.extend(message.get("body", b""))
            more = bool(message.get("more_body", False))
            if len(body) > self.max_bytes:
                await _send_error(
                    send,
                    scope,
                    ApiError(413, "payload_too_large", f"the body is larger than {self.max_bytes} bytes"),
                )
                return
        try:
            decoded = json.loads(bytes(body).decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            await _send_error(
                send, scope, ApiError(400, "invalid_json", f"the body is not valid JSON: {error}")
            )
            return
        if not isinstance(decoded, dict):
            await _send_error(send, scope, ApiError(400, "invalid_json", "the body must be a JSON object"))
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


async def _send_error(send: Send, scope: Scope, error: ApiError) -> None:
    response = JSONResponse(error.body(), status_code=error.status)
    await response(scope, _no_receive, send)


async def _no_receive() -> Message:
    return {"type": "http.disconnect"}


class Runtime:
    """Holds the settings and the lazily built service; counts turns in flight for `/ping`."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._service: AgentService | None = None
        self._error: BaseException | None = None
        self._ready = threading.Event()
        self._busy = 0
        self._lock = threading.Lock()

    def warm_up(self) -> None:
        """Import the heavy modules and build the service (runs on a background thread)."""
        try:
            from agent.bootstrap import build_service

            service = build_service(self.settings)
            local_caller = Caller(self.settings.local_user) if self.settings.mode == "local" else None
            try:
                service.prewarm(local_caller)
            except Exception:
                logger.warning("pre-warming failed; the first turn pays the start-up cost", exc_info=True)
            self._service = service
            logger.info("agent ready (mode=%s, model=%s)", self.settings.mode, self.settings.model_alias)
        except BaseException as error:
            logger.exception("agent failed to start")
            self._error = error
        finally:
            self._ready.set()

    def use(self, service: AgentService) -> None:
        self._service = service
        self._ready.set()

    def start_warm_up(self) -> None:
        threading.Thread(target=self.warm_up, name="agent-warm-up", daemon=True).start()

    async def service(self) -> AgentService:
        if not self._ready.is_set():
            await asyncio.to_thread(self._ready.wait)
        if self._service is None:
            detail = str(self._error) if isinstance(self._error, ConfigurationError) else "see the agent log"
            raise ApiError(500, "internal_error", f"the agent is not ready: {detail}")
        return self._service

    def caller(self, context: RequestContext | None) -> Caller:
        if self.settings.mode == "local":
            return Caller(actor_id=self.settings.local_user)
        headers = (context.request_headers if context is not None else None) or {}
        authorization = next((v for k, v in headers.items() if k.lower() == "authorization"), None)
        return caller_from_authorization(authorization)

    def enter(self) -> None:
        with self._lock:
            self._busy += 1

    def leave(self) -> None:
        with self._lock:
            self._busy -= 1

    @property
    def busy(self) -> bool:
        return self._busy > 0


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

    app = BedrockAgentCoreApp(middleware=[Middleware(InvocationGate)], lifespan=lifespan)
    app.state.runtime = runtime

    @app.ping
    def ping() -> PingStatus:
        return PingStatus.HEALTHY_BUSY if runtime.busy else PingStatus.HEALTHY

    @app.entrypoint
    async def invoke(payload: Any, context: RequestContext) -> Any:
        try:
            invocation = parse_invocation(payload, context.session_id if context is not None else None)
            caller = runtime.caller(context)
            service = await runtime.service()
        except ApiError as error:
            return JSONResponse(error.body(), status_code=error.status)
        if invocation.stream:
            return _stream(runtime, service, invocation, caller)
        runtime.enter()
        try:
            return await service.run_turn(invocation, caller)
        except ApiError as error:
            return JSONResponse(error.body(getattr(error, "trace_id", "")), status_code=error.status)
        finally:
            runtime.leave()

    return app


async def _stream(
    runtime: Runtime, service: AgentService, invocation: Any, caller: Caller
) -> AsyncIterator[dict[str, Any]]:
    runtime.enter()
    try:
        async for event in service.stream_turn(invocation, caller):
            yield event
    finally:
        runtime.leave()


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

    uvicorn.run(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=5)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Tools over MCP: the AgentCore Gateway when deployed, the loopback tool server locally.

Deployed, every request carries the agent's own machine token (OAuth client credentials of the
`gateway` client, refreshed before it expires) in `Authorization` and the caller's validated access
token in `X-Actor-Token`; the gateway's interceptor turns that into the `_actor` argument. Locally the
header is `X-Actor-Id: <local user>`. One MCP session is kept per caller and reused across turns; a
session that fails on the transport is dropped and reopened on the next turn. When the server cannot
be reached at all (connection refused, connect/start-up timeout) the turn runs without tools (and the
model is told so); any other failure to open the session (HTTP error, JSON-RPC error to `initialize`,
a protocol version the client does not support) is `ToolsUnavailable`: the turn fails with
`tools_unavailable` instead of answering silently without tools. Every tool call is bounded by
`AGENT_TOOL_TIMEOUT_SECONDS`. The gateway's target prefixes (`tickets___create_ticket`) are hidden
from the model: tools are offered under their tools/specs.py names.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

import httpx

from agent.identity import Caller

logger = logging.getLogger(__name__)

REFRESH_MARGIN_SECONDS = 120.0
MAX_SESSIONS = 16
TARGET_SEPARATOR = "___"
DEFAULT_TOOL_TIMEOUT_SECONDS = 20.0
MCP_REQUEST_TIMEOUT_CODE = 408  # mcp 1.30 shared/session.py: ErrorData(code=httpx.codes.REQUEST_TIMEOUT)
MCP_CONNECTION_CLOSED_CODE = -32000  # mcp.types.CONNECTION_CLOSED

# Failures that mean "the server could not be reached": the turn degrades to no tools.
UNREACHABLE_ERRORS: tuple[type[BaseException], ...] = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    ConnectionError,
    concurrent.futures.TimeoutError,
    TimeoutError,
)


class ToolsUnavailable(Exception):
    """The tool server answered but no usable MCP session could be opened (protocol, auth, HTTP error)."""


class ToolCallError(Exception):
    """A tool call that failed below the tool itself; the message names the tool and the cause."""


class ToolTimeout(ToolCallError):
    """A tool call that did not answer within AGENT_TOOL_TIMEOUT_SECONDS."""


class ToolTransportError(ToolCallError):
    """A tool call whose MCP transport failed; the caller's session is dropped and reopened."""


def exception_chain(error: BaseException) -> Iterator[BaseException]:
    """`error`, its causes/contexts and the members of exception groups, each once."""
    seen: set[int] = set()
    pending = [error]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        if isinstance(current, BaseExceptionGroup):
            pending.extend(current.exceptions)
        for linked in (current.__cause__, current.__context__):
            if linked is not None:
                pending.append(linked)


def _mcp_error_code(error: BaseException) -> int | None:
    from mcp.shared.exceptions import McpError

    return error.error.code if isinstance(error, McpError) else None


def classify_open_failure(error: BaseException) -> bool:
    """True when opening a session failed only because the server could not be reached."""
    chain = list(exception_chain(error))
    if any(_mcp_error_code(e) is not None or isinstance(e, httpx.HTTPStatusError) for e in chain):
        return False
    return any(isinstance(e, UNREACHABLE_ERRORS) for e in chain)


def classify_call_failure(
    tool: str, limit: float, error: BaseException, *, session_alive: bool = True
) -> ToolCallError:
    """The typed failure of a tool call: by exception type and MCP error code, and by whether the MCP
    session survived (strands-agents 1.62.0 reports a session that ended mid-call as a bare
    RuntimeError, so the session's state, not the exception's text, says the transport broke)."""
    import anyio
    from strands.types.exceptions import MCPClientInitializationError

    transport = (
        httpx.TransportError,
        anyio.ClosedResourceError,
        anyio.BrokenResourceError,
        anyio.EndOfStream,
        ConnectionError,
        MCPClientInitializationError,
    )
    for current in exception_chain(error):
        code = _mcp_error_code(current)
        if code == MCP_REQUEST_TIMEOUT_CODE:
            return ToolTimeout(f"tool {tool} timed out after {limit:g} s")
        if code == MCP_CONNECTION_CLOSED_CODE or isinstance(current, transport):
            return ToolTransportError(f"tool {tool} failed: the tool server connection broke ({error})"[:500])
    if not session_alive:
        return ToolTransportError(f"tool {tool} failed: the tool server connection broke ({error})"[:500])
    return ToolCallError(f"tool {tool} failed: {error}"[:500])


def bare_tool_name(name: str) -> str:
    """A tool's name without the gateway target prefix (`tickets___create_ticket` -> `create_ticket`).

    The AgentCore Gateway names each tool `<target>___<tool>`; everything up to and including the first
    `___` is dropped so names match tools/specs.py in both modes.
    """
    _, separator, rest = name.partition(TARGET_SEPARATOR)
    return rest if separator and rest else name


def _bounded_tool_class() -> type[Any]:
    from strands.tools.mcp import MCPAgentTool
    from strands.types._events import ToolResultEvent

    class BoundedMcpTool(MCPAgentTool):
        """An MCP tool whose call is bounded (MCP read timeout, and an asyncio deadline behind it) and
        whose failures are raised as typed exceptions, so hooks classify them without reading text."""

        async def stream(self, tool_use: Any, invocation_state: dict[str, Any], **kwargs: Any) -> Any:
            limit = self.timeout.total_seconds() if self.timeout else DEFAULT_TOOL_TIMEOUT_SECONDS
            try:
                async with asyncio.timeout(limit + 1.0):
                    result = await self.mcp_client.call_tool_async(
                        tool_use_id=tool_use["toolUseId"],
                        name=self.mcp_tool.name,
                        arguments=tool_use["input"],
                        read_timeout_seconds=timedelta(seconds=limit),
                        cancel_signal=getattr(invocation_state.get("agent"), "_cancel_signal", None),
                    )
            except TimeoutError:
                raise ToolTimeout(f"tool {self.tool_name} timed out after {limit:g} s") from None
            except Exception as error:  # e.g. MCPClientInitializationError: the session is not running
                raise classify_call_failure(
                    self.tool_name, limit, error, session_alive=self._session_alive()
                ) from error
            failures = getattr(self.mcp_client, "failures", None)
            failure = failures.pop(tool_use["toolUseId"], None) if isinstance(failures, dict) else None
            if failure is not None:
                raise classify_call_failure(
                    self.tool_name, limit, failure, session_alive=self._session_alive()
                ) from failure
            yield ToolResultEvent(result)

        def _session_alive(self) -> bool:
            alive = getattr(self.mcp_client, "_is_session_active", None)  # strands-agents 1.62.0
            return bool(alive()) if callable(alive) else True

    return BoundedMcpTool


def _recording_client_class() -> type[Any]:
    from strands.tools.mcp import MCPClient

    class RecordingMcpClient(MCPClient):
        """Keeps the exception of each failed call: strands-agents 1.62.0 `call_tool_async` turns it into
        a text result (`_handle_tool_execution_error`), and the type is what classifies the failure."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.failures: dict[str, BaseException] = {}

        def _handle_tool_execution_error(self, tool_use_id: str, exception: Exception) -> Any:
            self.failures[tool_use_id] = exception
            return super()._handle_tool_execution_error(tool_use_id, exception)

    return RecordingMcpClient


def unprefixed(tools: list[Any], timeout_seconds: float = DEFAULT_TOOL_TIMEOUT_SECONDS) -> list[Any]:
    """MCP tools renamed to their bare names for the model (the server is still called with the real name),
    each bounded by `timeout_seconds`.

    A bare name shared by two targets keeps its prefixed form, so the model can tell them apart.
    """
    from strands.tools.mcp import MCPAgentTool

    bounded = _bounded_tool_class()
    counts: dict[str, int] = {}
    for tool in tools:
        bare = bare_tool_name(tool.tool_name)
        counts[bare] = counts.get(bare, 0) + 1
    renamed: list[Any] = []
    for tool in tools:
        bare = bare_tool_name(tool.tool_name)
        if isinstance(tool, MCPAgentTool):
            name = bare if bare != tool.tool_name and counts[bare] == 1 else tool.tool_name
            tool = bounded(
                tool.mcp_tool,
                tool.mcp_client,
                name_override=name,
                timeout=timedelta(seconds=timeout_seconds),
            )
        renamed.append(tool)
    return renamed


class ToolSource(Protocol):
    """Gives the tools a caller may use for one turn."""

    def tools_for(self, caller: Caller) -> list[Any]: ...

    def discard(self, caller: Caller) -> None: ...

    def close(self) -> None: ...


class StaticTools:
    """A fixed tool list (tests, or an agent without a tool server)."""

    def __init__(self, tools: list[Any]) -> None:
        self._tools = tools

    def tools_for(self, caller: Caller) -> list[Any]:
        return list(self._tools)

    def discard(self, caller: Caller) -> None:
        return None

    def close(self) -> None:
        return None


@dataclass
class _Token:
    value: str
    expires_at: float


class ClientCredentialsToken:
    """OAuth client-credentials access token, fetched on demand and refreshed before expiry."""

    def __init__(
        self,
        token_url: str,
        client_id: str,
        client_secret: str,
        scope: str,
        *,
        clock: Callable[[], float] = time.time,
        http: httpx.Client | None = None,
    ) -> None:
        self._token_url = token_url
        self._client_id = client_id
        self._client_secret = client_secret
        self._scope = scope
        self._clock = clock
        self._http = http or httpx.Client(timeout=10.0)
        self._token: _Token | None = None
        self._lock = threading.Lock()

    def get(self) -> str:
        with self._lock:
            if self._token is None or self._clock() >= self._token.expires_at - REFRESH_MARGIN_SECONDS:
                self._token = self._fetch()
            return self._token.value

    def _fetch(self) -> _Token:
        response = self._http.post(
            self._token_url,
            data={"grant_type": "client_credentials", "scope": self._scope},
            auth=(self._client_id, self._client_secret),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        if response.status_code != 200:
            raise RuntimeError(f"token endpoint answered HTTP {response.status_code} for the gateway client")
        body = response.json()
        token = body.get("access_token")
        if not isinstance(token, str) or not token:
            raise RuntimeError("token endpoint answered without an access_token")
        lifetime = float(body.get("expires_in", 3600))
        return _Token(token, self._clock() + lifetime)


class BearerFromProvider(httpx.Auth):
    """httpx auth that asks the token provider on every request (so refreshes are picked up)."""

    def __init__(self, token: ClientCredentialsToken) -> None:
        self._token = token

    def prefetch(self) -> None:
        self._token.get()

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self._token.get()}"
        yield request


class McpTools:
    """MCP clients per caller (LRU), each started once and reused; tools listed once per session."""

    def __init__(
        self,
        url: str,
        headers_for: Callable[[Caller], dict[str, str]],
        *,
        auth: httpx.Auth | None = None,
        startup_timeout: int = 5,
        max_sessions: int = MAX_SESSIONS,
        tool_timeout_seconds: float = DEFAULT_TOOL_TIMEOUT_SECONDS,
    ) -> None:
        self.url = url
        self._headers_for = headers_for
        self._auth = auth
        self._startup_timeout = startup_timeout
        self._max_sessions = max_sessions
        self.tool_timeout_seconds = tool_timeout_seconds
        self._sessions: OrderedDict[str, tuple[Any, list[Any]]] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def _key(caller: Caller) -> str:
        material = f"{caller.actor_id}\0{caller.token or ''}"
        return hashlib.sha256(material.encode()).hexdigest()

    def _open(self, caller: Caller) -> tuple[Any, list[Any]]:
        client = _recording_client_class()(
            url=self.url,
            headers=self._headers_for(caller),
            auth_provider=self._auth,
            startup_timeout=self._startup_timeout,
        )
        client.start()
        try:
            tools = unprefixed(list(client.list_tools_sync()), self.tool_timeout_seconds)
        except Exception:
            _stop(client)
            raise
        return client, tools

    def tools_for(self, caller: Caller) -> list[Any]:
        key = self._key(caller)
        with self._lock:
            if key in self._sessions:
                self._sessions.move_to_end(key)
                return list(self._sessions[key][1])
        try:
            client, tools = self._open(caller)
        except Exception as error:
            if classify_open_failure(error):
                logger.warning("tool server %s unreachable, answering without tools: %s", self.url, error)
                return []
            causes = [f"{type(e).__name__}: {e}" for e in exception_chain(error)][1:] or [str(error)]
            logger.error("tool server %s answered but no MCP session could be opened: %s", self.url, causes)
            raise ToolsUnavailable(
                "the tool server answered but the MCP session could not be opened "
                f"({type(error).__name__}; see the agent log)"
            ) from error
        evicted: list[Any] = []
        with self._lock:
            self._sessions[key] = (client, tools)
            while len(self._sessions) > self._max_sessions:
                evicted.append(self._sessions.popitem(last=False)[1][0])
        for old in evicted:
            _stop(old)
        return list(tools)

    def prewarm_auth(self) -> None:
        """Fetch the machine token before the first turn (deployed); failures surface on the first turn."""
        if isinstance(self._auth, BearerFromProvider):
            try:
                self._auth.prefetch()
            except Exception as error:
                logger.warning("could not fetch the tool gateway token yet: %s", error)

    def discard(self, caller: Caller) -> None:
        with self._lock:
            entry = self._sessions.pop(self._key(caller), None)
        if entry is not None:
            _stop(entry[0])

    def close(self) -> None:
        with self._lock:
            entries = list(self._sessions.values())
            self._sessions.clear()
        for client, _ in entries:
            _stop(client)


def _stop(client: Any) -> None:
    try:
        client.stop(None, None, None)
    except Exception:
        logger.debug("MCP client stop failed", exc_info=True)


def local_headers(caller: Caller) -> dict[str, str]:
    return {"X-Actor-Id": caller.actor_id}


def gateway_headers(caller: Caller) -> dict[str, str]:
    if not caller.token:
        raise ValueError("deployed tool calls need the caller's access token")
    return {"X-Actor-Token": caller.token}

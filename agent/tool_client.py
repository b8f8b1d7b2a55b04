"""Tools over MCP: the AgentCore Gateway when deployed, the loopback tool server locally.

Deployed, every request carries the agent's own machine token (OAuth client credentials of the
`gateway` client, refreshed before it expires) in `Authorization` and the caller's validated access
token in `X-Actor-Token`; the gateway's interceptor turns that into the `_actor` argument. Locally the
header is `X-Actor-Id: <local user>`. One MCP session is kept per caller and reused across turns; a
session that fails is dropped and reopened on the next turn. When the server cannot be reached the
turn runs without tools (and the model is told so) instead of failing. The gateway's target prefixes
(`tickets___create_ticket`) are hidden from the model: tools are offered under their tools/specs.py names.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from agent.identity import Caller

logger = logging.getLogger(__name__)

REFRESH_MARGIN_SECONDS = 120.0
MAX_SESSIONS = 16
TARGET_SEPARATOR = "___"


def bare_tool_name(name: str) -> str:
    """A tool's name without the gateway target prefix (`tickets___create_ticket` -> `create_ticket`).

    The AgentCore Gateway names each tool `<target>___<tool>`; everything up to and including the first
    `___` is dropped so names match tools/specs.py in both modes.
    """
    _, separator, rest = name.partition(TARGET_SEPARATOR)
    return rest if separator and rest else name


def unprefixed(tools: list[Any]) -> list[Any]:
    """MCP tools renamed to their bare names for the model (the server is still called with the real name).

    A bare name shared by two targets keeps its prefixed form, so the model can tell them apart.
    """
    from strands.tools.mcp import MCPAgentTool

    counts: dict[str, int] = {}
    for tool in tools:
        bare = bare_tool_name(tool.tool_name)
        counts[bare] = counts.get(bare, 0) + 1
    renamed: list[Any] = []
    for tool in tools:
        bare = bare_tool_name(tool.tool_name)
        if isinstance(tool, MCPAgentTool) and bare != tool.tool_name and counts[bare] == 1:
            tool = MCPAgentTool(tool.mcp_tool, tool.mcp_client, name_override=bare, timeout=tool.timeout)
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
    ) -> None:
        self.url = url
        self._headers_for = headers_for
        self._auth = auth
        self._startup_timeout = startup_timeout
        self._max_sessions = max_sessions
        self._sessions: OrderedDict[str, tuple[Any, list[Any]]] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def _key(caller: Caller) -> str:
        material = f"{caller.actor_id}\0{caller.token or ''}"
        return hashlib.sha256(material.encode()).hexdigest()

    def _open(self, caller: Caller) -> tuple[Any, list[Any]]:
        from strands.tools.mcp import MCPClient

        client = MCPClient(
            url=self.url,
            headers=self._headers_for(caller),
            auth_provider=self._auth,
            startup_timeout=self._startup_timeout,
        )
        client.start()
        try:
            tools = unprefixed(list(client.list_tools_sync()))
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
            logger.warning("tool server %s unreachable, answering without tools: %s", self.url, error)
            return []
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

"""The local MCP tool server (local mode): the same tools as the AgentCore Gateway, on 127.0.0.1.

Tools come from `tools/specs.py` with their published JSON schemas (the MCP SDK validates every call
against them), dispatched through the same `tools.dispatch.ToolTable` as the Lambdas: ticket tools over
SQLite with the Lambda's rules (`tools/tickets/`), knowledge search over the embedded index of `corpus/`
(`tools/local_index.py`), and web search through Tavily only when `TAVILY_API_KEY` is set (otherwise the
tool is not listed at all). A refusal (`tools.errors.ToolError`) is an MCP tool error whose text is the
JSON body the Lambdas return, `{"error": {"code", "message"}}`.

The caller's identity is the `X-Actor-Id` header the local agent sends (the loopback stand-in for the
gateway interceptor's verified `_actor`); a ticket call without it is `unauthorized`.

A web page must not be able to drive it (it holds the user's tickets): every request's `Host` must be a
loopback name (DNS-rebinding protection, the MCP SDK's `TransportSecuritySettings`), a request with an
`Origin` header is refused unless that origin was allowed with `--allow-origin`, and a POST must be
`application/json` (which a cross-site form cannot send without a CORS preflight, never granted here).
A body that is not JSON-RPC-sized JSON (over MAX_BODY_BYTES, not UTF-8 JSON, nested deeper than
MAX_JSON_DEPTH) gets a 4xx JSON-RPC error before the SDK parses it (the SDK answers 500 to a
RecursionError).

    python -m tools.server --port 8765 --db .local/tickets.db
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import re
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any, Protocol

import mcp.types as types
from mcp.server.lowlevel import Server
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecurityMiddleware, TransportSecuritySettings
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

from tools.dispatch import Handler, ToolTable
from tools.errors import ToolError
from tools.local_index import Hit
from tools.tickets import SqliteTicketRepository, TicketService, ticket_tools
from tools.validation import nonblank
from tools.web_search import TavilyClient, web_search_tools

logger = logging.getLogger(__name__)

ACTOR_HEADER = "x-actor-id"
ACTOR_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$")
REPO_ROOT = Path(__file__).resolve().parents[1]
# The names a loopback client puts in `Host` (with any port): anything else is a DNS-rebinding attempt.
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")
# A tool call is a few KiB (the largest argument, a ticket description, is 4,000 characters).
MAX_BODY_BYTES = 256 * 1024
# A JSON-RPC tool call nests about 4 levels; the deepest published schema adds 2.
MAX_JSON_DEPTH = 32


class LocalKnowledge(Protocol):
    """The embedded index's search (`tools.local_index.KnowledgeIndex`), or a stand-in with its shape."""

    def search(self, query: str, max_results: int) -> Sequence[Hit]: ...


def local_knowledge_tools(knowledge: LocalKnowledge) -> dict[str, Handler]:
    """The knowledge tool over the embedded index, answering like the knowledge Lambda."""

    def search(args: dict[str, Any], _actor: str | None) -> dict[str, Any]:
        query = nonblank("query", args["query"])
        hits = knowledge.search(query, args["max_results"])
        return {"query": query, "results": [hit.as_result() for hit in hits], "count": len(hits)}

    return {"search_knowledge_base": search}


def error_result(error: ToolError) -> types.CallToolResult:
    """A ToolError as an MCP tool error: the JSON body the tool Lambdas return, flagged `isError`."""
    body = error.to_dict()
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=json.dumps(body))],
        structuredContent=body,
        isError=True,
    )


class ToolServer:
    """Tool implementations bound to their stores; `build_app()` serves them over MCP.

    Args:
        tickets: the ticket rules over their store (SQLite in local mode).
        knowledge: the embedded knowledge index.
        web_search: a Tavily client; without one the `web_search` tool is not served (nor listed).
    """

    def __init__(
        self,
        tickets: TicketService,
        knowledge: LocalKnowledge,
        web_search: TavilyClient | None = None,
    ) -> None:
        handlers = {**ticket_tools(tickets), **local_knowledge_tools(knowledge)}
        if web_search is not None:
            handlers.update(web_search_tools(web_search))
        self.table = ToolTable(handlers, identity_source=f"the {ACTOR_HEADER} header is missing or invalid")
        self.specs = self.table.specs

    def list_tools(self) -> list[types.Tool]:
        return [
            types.Tool(name=spec.name, description=spec.description, inputSchema=spec.input_schema)
            for spec in self.specs
        ]

    def call(self, name: str, arguments: Any, actor: str | None) -> dict[str, Any]:
        """Run one tool for `actor` through the tool table; raises ToolError.

        The MCP SDK validated the call against the published schema already; the table checks again, so a
        handler never sees what its schema forbids (another transport, a schema drift).
        """
        return self.table.call(name, arguments, actor)

    def build_app(self, allowed_origins: Sequence[str] = ()) -> Starlette:
        """The Starlette app: `/mcp` (streamable HTTP) and `/health`, both loopback-Host only.

        Args:
            allowed_origins: browser origins (`http://localhost:6274`, or `http://localhost:*` for any
                port) allowed to call; by default a request carrying any `Origin` is refused (403).
        """
        server: Server[Any, Any] = Server("agentic-foundation-local-tools")
        tool_server = self

        @server.list_tools()  # type: ignore[no-untyped-call, untyped-decorator]
        async def list_tools() -> list[types.Tool]:
            return tool_server.list_tools()

        @server.call_tool()  # type: ignore[untyped-decorator]
        async def call_tool(name: str, arguments: dict[str, Any]) -> dict[str, Any] | types.CallToolResult:
            request = server.request_context.request
            actor = None
            if isinstance(request, Request):
                candidate = request.headers.get(ACTOR_HEADER, "").strip()
                actor = candidate if ACTOR_RE.match(candidate) else None
            import anyio.to_thread

            try:
                return await anyio.to_thread.run_sync(tool_server.call, name, arguments, actor)
            except ToolError as error:
                logger.info("tool %s refused: %s (%d)", name, error.code.value, error.status)
                return error_result(error)

        settings = transport_security(allowed_origins)
        security = TransportSecurityMiddleware(settings)
        manager = StreamableHTTPSessionManager(
            app=server, security_settings=settings, max_request_body_size=MAX_BODY_BYTES
        )

        async def health(request: Request) -> Response:
            rejected = await security.validate_request(request, is_post=False)
            if rejected is not None:
                return rejected
            return JSONResponse({"status": "ok", "tools": [spec.name for spec in tool_server.specs]})

        @contextlib.asynccontextmanager
        async def lifespan(_: Starlette) -> AsyncIterator[None]:
            async with manager.run():
                yield

        return Starlette(
            # A Route, not a Mount: `/mcp` itself is the endpoint (a Mount answers it with a 307 to `/mcp/`).
            routes=[
                Route("/health", health),
                Route("/mcp", _McpEndpoint(manager, security), methods=["GET", "POST", "DELETE"]),
            ],
            lifespan=lifespan,
        )


def transport_security(allowed_origins: Sequence[str] = ()) -> TransportSecuritySettings:
    """The MCP SDK's DNS-rebinding protection: loopback `Host` only, `Origin` only from the allowed list."""
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=[*LOOPBACK_HOSTS, *(f"{host}:*" for host in LOOPBACK_HOSTS)],
        allowed_origins=list(allowed_origins),
    )


def _too_deep(value: Any, limit: int) -> bool:
    """Whether parsed JSON nests containers deeper than `limit` (iterative: no recursion to exhaust)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def _jsonrpc_error(status: int, code: int, message: str) -> JSONResponse:
    """A JSON-RPC error object without a request id (the request could not be read), as the SDK sends."""
    return JSONResponse(
        {"jsonrpc": "2.0", "id": "server-error", "error": {"code": code, "message": message}},
        status_code=status,
    )


class _McpEndpoint:
    """The streamable-HTTP session manager as a plain ASGI endpoint (Starlette routes class instances as
    ASGI), behind the Host/Origin check and a body gate: at most MAX_BODY_BYTES of UTF-8 JSON nested at
    most MAX_JSON_DEPTH deep, else a 4xx JSON-RPC error (-32700 parse error)."""

    def __init__(self, manager: StreamableHTTPSessionManager, security: TransportSecurityMiddleware) -> None:
        self._manager = manager
        self._security = security

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        is_post = scope.get("method") == "POST"
        rejected = await self._security.validate_request(Request(scope, receive), is_post=is_post)
        if rejected is not None:
            await rejected(scope, receive, send)
            return
        if not is_post:
            await self._manager.handle_request(scope, receive, send)
            return
        body = bytearray()
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body.extend(message.get("body", b""))
            more = bool(message.get("more_body", False))
            if len(body) > MAX_BODY_BYTES:
                response = _jsonrpc_error(
                    413, types.INVALID_REQUEST, f"request body is larger than {MAX_BODY_BYTES} bytes"
                )
                await response(scope, receive, send)
                return
        problem = _parse_problem(bytes(body))
        if problem is not None:
            logger.info("rejected an MCP request body: %s", problem)
            await _jsonrpc_error(400, types.PARSE_ERROR, f"Parse error: {problem}")(scope, receive, send)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()

        await self._manager.handle_request(scope, replay, send)


def _parse_problem(body: bytes) -> str | None:
    """Why `body` is not acceptable JSON for a JSON-RPC request, or None when it is."""
    try:
        parsed = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError:
        return "the body is not UTF-8"
    except json.JSONDecodeError as error:
        return f"the body is not JSON: {error}"
    except RecursionError:
        return f"JSON nested deeper than {MAX_JSON_DEPTH} levels"
    except ValueError as error:  # e.g. an integer longer than Python's int-string limit (4300 digits)
        return f"the body is not acceptable JSON: {error}"
    if _too_deep(parsed, MAX_JSON_DEPTH):
        return f"JSON nested deeper than {MAX_JSON_DEPTH} levels"
    return None


def create_server(
    db_path: str | Path, corpus_dir: Path, index_cache: Path | None, tavily_key: str | None
) -> ToolServer:
    """Open the ticket store, build (or load) the knowledge index, and enable web search if keyed."""
    from tools.local_index import KnowledgeIndex

    knowledge = KnowledgeIndex.build(corpus_dir, index_cache)
    tickets = TicketService(SqliteTicketRepository(db_path))
    web_search = TavilyClient(tavily_key) if tavily_key else None
    return ToolServer(tickets, knowledge, web_search)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Local MCP tool server (loopback only)")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--db", default=str(REPO_ROOT / ".local" / "tickets.db"), help="SQLite ticket store")
    parser.add_argument("--corpus", default=str(REPO_ROOT / "corpus"), help="documents to index")
    parser.add_argument(
        "--index-cache", default=str(REPO_ROOT / ".local" / "index"), help="embedding cache dir"
    )
    parser.add_argument(
        "--allow-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="a browser origin allowed to call (e.g. http://localhost:6274; repeatable); default: none",
    )
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    tavily_key = os.environ.get("TAVILY_API_KEY", "").strip() or None
    try:
        tool_server = create_server(args.db, Path(args.corpus), Path(args.index_cache), tavily_key)
    except Exception as error:
        logger.error("tool server: cannot start: %s", error)
        return 2
    logger.info(
        "tools: %s (web_search %s)",
        json.dumps([s.name for s in tool_server.specs]),
        "enabled" if tavily_key else "disabled: TAVILY_API_KEY is not set",
    )
    import uvicorn

    uvicorn.run(
        tool_server.build_app(allowed_origins=args.allow_origin),
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        timeout_graceful_shutdown=2,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

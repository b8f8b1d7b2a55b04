"""The local MCP tool server (local mode): the same tools as the AgentCore Gateway, on 127.0.0.1.

Tools come from `tools/specs.py` with their published JSON schemas (the MCP SDK validates every call
against them): ticket tools over SQLite with the Lambda's rules (`tools/tickets.py`), knowledge search
over the embedded index of `corpus/` (`tools/local_index.py`), and web search through Tavily only when
`TAVILY_API_KEY` is set (otherwise the tool is not listed at all).

The caller's identity is the `X-Actor-Id` header the local agent sends (the loopback stand-in for the
gateway interceptor's verified `_actor`); a call without it fails with an authorization error.

    python -m tools.server --port 8765 --db .local/tickets.db
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import re
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import mcp.types as types
from mcp.server.lowlevel import Server
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from tools import specs
from tools.tickets import SqliteTicketRepository, TicketError, TicketService, dispatch

logger = logging.getLogger(__name__)

ACTOR_HEADER = "x-actor-id"
ACTOR_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$")
TAVILY_URL = "https://api.tavily.com/search"
REPO_ROOT = Path(__file__).resolve().parents[1]

SearchFn = Callable[[str, int], list[dict[str, Any]]]


class ToolFailure(Exception):
    """A tool call failed for a reason the model can act on; the message is returned as the tool error."""


def tavily_search(api_key: str, timeout: float = 15.0) -> SearchFn:
    """A web search function backed by Tavily's search API."""
    import httpx

    def search(query: str, max_results: int) -> list[dict[str, Any]]:
        response = httpx.post(
            TAVILY_URL,
            json={"query": query, "max_results": max_results, "search_depth": "basic"},
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=timeout,
        )
        if response.status_code >= 400:
            raise ToolFailure(f"web search failed: Tavily answered HTTP {response.status_code}")
        results = response.json().get("results", [])
        return [
            {
                "title": r.get("title"),
                "url": r.get("url"),
                "content": r.get("content"),
                "score": r.get("score"),
            }
            for r in results
        ]

    return search


class ToolServer:
    """Tool implementations bound to their stores; `build_app()` serves them over MCP."""

    def __init__(
        self,
        tickets: TicketService,
        knowledge: Any,
        web_search: SearchFn | None = None,
    ) -> None:
        self.tickets = tickets
        self.knowledge = knowledge
        self.web_search = web_search
        self.specs = tuple(
            spec for spec in specs.TOOL_SPECS if spec.target != "web_search" or web_search is not None
        )

    def list_tools(self) -> list[types.Tool]:
        return [
            types.Tool(name=spec.name, description=spec.description, inputSchema=spec.input_schema)
            for spec in self.specs
        ]

    def call(self, name: str, arguments: dict[str, Any], actor: str | None) -> dict[str, Any]:
        """Run one tool; raise ToolFailure with a message for the model."""
        spec = next((s for s in self.specs if s.name == name), None)
        if spec is None:
            raise ToolFailure(f"unknown tool {name!r}; available: {[s.name for s in self.specs]}")
        arguments = {key: value for key, value in arguments.items() if key != "_actor"}
        if spec.target == "tickets":
            if actor is None:
                raise ToolFailure("unauthorized: no caller identity (X-Actor-Id header missing or invalid)")
            try:
                return dispatch(self.tickets, name, arguments, actor)
            except TicketError as error:
                raise ToolFailure(str(error)) from error
        if spec.target == "knowledge":
            max_results = int(arguments.get("max_results", 5))
            query = str(arguments["query"])
            hits = self.knowledge.search(query, max_results)
            return {"query": query, "results": [hit.as_result() for hit in hits], "count": len(hits)}
        assert self.web_search is not None
        max_results = int(arguments.get("max_results", 5))
        return {"results": self.web_search(str(arguments["query"]), max_results)}

    def build_app(self) -> Starlette:
        server: Server[Any, Any] = Server("agentic-foundation-local-tools")
        tool_server = self

        @server.list_tools()  # type: ignore[no-untyped-call, untyped-decorator]
        async def list_tools() -> list[types.Tool]:
            return tool_server.list_tools()

        @server.call_tool()  # type: ignore[untyped-decorator]
        async def call_tool(name: str, arguments: dict[str, Any]) -> dict[str, Any]:
            request = server.request_context.request
            actor = None
            if isinstance(request, Request):
                candidate = request.headers.get(ACTOR_HEADER, "").strip()
                actor = candidate if ACTOR_RE.match(candidate) else None
            import anyio.to_thread

            try:
                return await anyio.to_thread.run_sync(tool_server.call, name, arguments, actor)
            except ToolFailure:
                raise
            except ValueError as error:
                raise ToolFailure(f"invalid_argument: {error}") from error

        manager = StreamableHTTPSessionManager(app=server)

        async def health(_: Request) -> JSONResponse:
            return JSONResponse({"status": "ok", "tools": [spec.name for spec in tool_server.specs]})

        @contextlib.asynccontextmanager
        async def lifespan(_: Starlette) -> AsyncIterator[None]:
            async with manager.run():
                yield

        return Starlette(
            # A Route, not a Mount: `/mcp` itself is the endpoint (a Mount answers it with a 307 to `/mcp/`).
            routes=[
                Route("/health", health),
                Route("/mcp", _McpEndpoint(manager), methods=["GET", "POST", "DELETE"]),
            ],
            lifespan=lifespan,
        )


class _McpEndpoint:
    """The streamable-HTTP session manager as a plain ASGI endpoint (Starlette routes class instances as ASGI)."""

    def __init__(self, manager: StreamableHTTPSessionManager) -> None:
        self._manager = manager

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._manager.handle_request(scope, receive, send)


def create_server(
    db_path: str | Path, corpus_dir: Path, index_cache: Path | None, tavily_key: str | None
) -> ToolServer:
    """Open the ticket store, build (or load) the knowledge index, and enable web search if keyed."""
    from tools.local_index import KnowledgeIndex

    knowledge = KnowledgeIndex.build(corpus_dir, index_cache)
    tickets = TicketService(SqliteTicketRepository(db_path))
    web_search = tavily_search(tavily_key) if tavily_key else None
    return ToolServer(tickets, knowledge, web_search)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Local MCP tool server (loopback only)")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--db", default=str(REPO_ROOT / ".local" / "tickets.db"), help="SQLite ticket store")
    parser.add_argument("--corpus", default=str(REPO_ROOT / "corpus"), help="documents to index")
    parser.add_argument(
        "--index-cache", default=str(REPO_ROOT / ".local" / "index"), help="embedding cache dir"
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
        tool_server.build_app(),
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        timeout_graceful_shutdown=2,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

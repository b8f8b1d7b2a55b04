"""Web search through Tavily: the client the local tool server uses, and the OpenAPI document of the
deployed gateway target (request schema taken from tools/specs.py, so both expose the same tool).

Deployed, the gateway calls Tavily itself through an OpenAPI target and injects the API key from an
AgentCore API-key credential provider; this client is for local mode only (TAVILY_API_KEY), served by tools/server.py.
"""

from __future__ import annotations

import copy
import json
import logging
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from tools import specs
from tools.dispatch import Handler
from tools.errors import ErrorCode, ToolError
from tools.validation import nonblank

logger = logging.getLogger(__name__)

OPENAPI_FILE = Path(__file__).resolve().parent / "openapi" / "tavily-search.json"
DEFAULT_BASE_URL = "https://api.tavily.com"
TIMEOUT_SECONDS = 15.0
MAX_SNIPPET_CHARS = 1500
TOOL = "web_search"


def openapi_document() -> dict[str, Any]:
    """The Tavily OpenAPI document with the `web_search` operation described by tools/specs.py."""
    document: dict[str, Any] = json.loads(OPENAPI_FILE.read_text(encoding="utf-8"))
    tool = specs.spec(TOOL)
    operation = document["paths"]["/search"]["post"]
    operation["operationId"] = tool.name
    operation["description"] = tool.description
    operation["requestBody"]["content"]["application/json"]["schema"] = copy.deepcopy(tool.input_schema)
    return document


class TavilyClient:
    """Calls Tavily's `/search`.

    Args:
        api_key: the Tavily key (local mode reads it from TAVILY_API_KEY).
        base_url: API root; https except on loopback (tests).
    """

    def __init__(self, api_key: str, base_url: str = DEFAULT_BASE_URL) -> None:
        if not api_key or not api_key.strip():
            raise ToolError(ErrorCode.NOT_CONFIGURED, "web search needs TAVILY_API_KEY to be set")
        parsed = urlparse(base_url)
        loopback = parsed.hostname in {"127.0.0.1", "localhost", "::1"}
        if parsed.scheme != "https" and not (parsed.scheme == "http" and loopback):
            raise ToolError(ErrorCode.NOT_CONFIGURED, f"Tavily base URL must use https: {base_url}")
        self._api_key = api_key.strip()
        self._url = base_url.rstrip("/") + "/search"

    def search(self, query: str, max_results: int) -> dict[str, Any]:
        """Search the web: `{"query", "results": [{"title", "url", "content", "score"}], "count"}`.

        The arguments are the tool's, checked against its schema (`web_search_tools`); a blank query is
        ToolError(invalid_argument), a failed or unreachable Tavily ToolError(upstream_error).
        """
        text, count = nonblank("query", query), max_results
        payload = json.dumps({"query": text, "max_results": count, "search_depth": "basic"}).encode()
        request = urllib.request.Request(  # noqa: S310 (scheme checked in __init__)
            self._url,
            data=payload,
            method="POST",
            headers={"Authorization": f"Bearer {self._api_key}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310
                body = json.loads(response.read(5_000_000))
        except urllib.error.HTTPError as exc:
            raise ToolError(ErrorCode.UPSTREAM_ERROR, f"Tavily answered HTTP {exc.code}") from exc
        except (urllib.error.URLError, TimeoutError, json.JSONDecodeError) as exc:
            raise ToolError(
                ErrorCode.UPSTREAM_ERROR, f"Tavily is unreachable ({type(exc).__name__})"
            ) from exc
        results = [
            {
                "title": str(item.get("title") or item.get("url") or ""),
                "url": str(item.get("url") or ""),
                "content": str(item.get("content") or "")[:MAX_SNIPPET_CHARS],
                "score": item.get("score") if isinstance(item.get("score"), int | float) else None,
            }
            for item in body.get("results", [])
            if isinstance(item, dict) and item.get("url")
        ][:count]
        return {"query": text, "results": results, "count": len(results)}


def web_search_tools(client: TavilyClient) -> dict[str, Handler]:
    """The web search tool as `{tool name: handler}` for `tools.dispatch.ToolTable`."""
    return {TOOL: lambda args, _actor: client.search(args["query"], args["max_results"])}

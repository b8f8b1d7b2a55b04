"""Web search through Tavily: the client the local tool server uses, and the OpenAPI document of the
deployed gateway target (request schema taken from tools/specs.py, so both expose the same tool).

Deployed, the gateway calls Tavily itself through an OpenAPI target and injects the API key from an
AgentCore API-key credential provider; this client is for local mode only (TAVILY_API_KEY).
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

logger = logging.getLogger(__name__)

OPENAPI_FILE = Path(__file__).resolve().parent / "openapi" / "tavily-search.json"
DEFAULT_BASE_URL = "https://api.tavily.com"
TIMEOUT_SECONDS = 15.0
MAX_SNIPPET_CHARS = 1500


class WebSearchError(Exception):
    """A failed search: `code` is `invalid_argument`, `not_configured` or `upstream_error`."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message

    def to_dict(self) -> dict[str, dict[str, str]]:
        return {"error": {"code": self.code, "message": self.message}}


def openapi_document() -> dict[str, Any]:
    """The Tavily OpenAPI document with the `web_search` operation described by tools/specs.py."""
    document: dict[str, Any] = json.loads(OPENAPI_FILE.read_text(encoding="utf-8"))
    tool = specs.spec("web_search")
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
            raise WebSearchError("not_configured", "web search needs TAVILY_API_KEY to be set")
        parsed = urlparse(base_url)
        loopback = parsed.hostname in {"127.0.0.1", "localhost", "::1"}
        if parsed.scheme != "https" and not (parsed.scheme == "http" and loopback):
            raise WebSearchError("not_configured", f"Tavily base URL must use https: {base_url}")
        self._api_key = api_key.strip()
        self._url = base_url.rstrip("/") + "/search"

    def search(self, query: object, max_results: object = 5) -> dict[str, Any]:
        """Search the web: `{"query", "results": [{"title", "url", "content", "score"}], "count"}`."""
        text, count = _validate(query, max_results)
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
            raise WebSearchError("upstream_error", f"Tavily answered HTTP {exc.code}") from exc
        except (urllib.error.URLError, TimeoutError, json.JSONDecodeError) as exc:
            raise WebSearchError("upstream_error", f"Tavily is unreachable ({type(exc).__name__})") from exc
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


def _validate(query: object, max_results: object) -> tuple[str, int]:
    schema = specs.spec("web_search").input_schema["properties"]
    if not isinstance(query, str) or not query.strip():
        raise WebSearchError("invalid_argument", "query: must be a non-empty string")
    if len(query.strip()) > schema["query"]["maxLength"]:
        raise WebSearchError(
            "invalid_argument", f"query: the maximum is {schema['query']['maxLength']} characters"
        )
    low, high = schema["max_results"]["minimum"], schema["max_results"]["maximum"]
    if isinstance(max_results, bool) or not isinstance(max_results, int) or not low <= max_results <= high:
        raise WebSearchError("invalid_argument", f"max_results: must be an integer from {low} to {high}")
    return query.strip(), max_results

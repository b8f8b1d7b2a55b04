"""Tavily client against a loopback stand-in of the Tavily API, and the gateway's OpenAPI document."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from local_stack.loopback import LoopbackHandler, LoopbackServer
from tools import specs
from tools.dispatch import ToolTable
from tools.errors import ErrorCode, ToolError
from tools.web_search import TavilyClient, openapi_document, web_search_tools


class FakeTavily(LoopbackServer):
    """Records requests and answers like Tavily's /search (or with a configured HTTP status)."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.status = 200
        super().__init__()

    def handler_class(self) -> type[LoopbackHandler]:
        fake = self

        class Handler(LoopbackHandler):
            def do_POST(self) -> None:
                fake.requests.append(
                    {"path": self.path, "headers": dict(self.headers), "body": json.loads(self.read_body())}
                )
                self.send_json(
                    fake.status,
                    {
                        "query": "q",
                        "results": [
                            {
                                "title": "Wi-Fi 6 explained",
                                "url": "https://a.example/wifi6",
                                "content": "c" * 3000,
                                "score": 0.8,
                            },
                            {"title": "", "url": "https://b.example/", "content": "short", "score": "high"},
                            {"title": "no url", "content": "dropped"},
                        ],
                    },
                )

        return Handler


@pytest.fixture
def tavily() -> Iterator[FakeTavily]:
    with FakeTavily() as fake:
        yield fake


def test_search_sends_the_key_as_bearer_and_maps_results(tavily: FakeTavily) -> None:
    answer = TavilyClient("tvly-test", base_url=tavily.url).search("  wifi 6 ", 3)
    (request,) = tavily.requests
    assert request["path"] == "/search"
    assert request["headers"]["Authorization"] == "Bearer tvly-test"
    assert request["body"] == {"query": "wifi 6", "max_results": 3, "search_depth": "basic"}
    assert answer["count"] == 2 and answer["query"] == "wifi 6"
    assert answer["results"][0] == {
        "title": "Wi-Fi 6 explained",
        "url": "https://a.example/wifi6",
        "content": "c" * 1500,
        "score": 0.8,
    }
    assert answer["results"][1] == {
        "title": "https://b.example/",
        "url": "https://b.example/",
        "content": "short",
        "score": None,
    }


def test_upstream_failure_is_reported(tavily: FakeTavily) -> None:
    tavily.status = 401
    with pytest.raises(ToolError) as caught:
        TavilyClient("tvly-bad", base_url=tavily.url).search("x", 5)
    assert (caught.value.code, caught.value.message) == ("upstream_error", "Tavily answered HTTP 401")
    assert caught.value.status == 502


def test_unreachable_tavily_is_reported() -> None:
    with pytest.raises(ToolError) as caught:
        TavilyClient("tvly-x", base_url="http://127.0.0.1:9").search("x", 5)
    assert (caught.value.code, caught.value.message) == ("upstream_error", "Tavily is unreachable (URLError)")


def test_results_are_cut_to_the_requested_count(tavily: FakeTavily) -> None:
    answer = TavilyClient("tvly-x", base_url=tavily.url).search("x", 1)
    assert [r["url"] for r in answer["results"]] == ["https://a.example/wifi6"] and answer["count"] == 1


@pytest.mark.parametrize("key", ["", "   "])
def test_missing_key_names_the_setting(key: str) -> None:
    with pytest.raises(ToolError, match="TAVILY_API_KEY") as caught:
        TavilyClient(key)
    assert (caught.value.code, caught.value.status) == (ErrorCode.NOT_CONFIGURED, 503)


def test_plain_http_is_refused_off_loopback() -> None:
    with pytest.raises(ToolError, match="https"):
        TavilyClient("tvly-x", base_url="http://api.tavily.com")


@pytest.mark.parametrize(
    ("query", "count", "field"),
    [
        ("", 5, "query"),
        ("   ", 5, "query"),
        ("q" * 401, 5, "query"),
        (3, 5, "query"),
        ("q", 0, "max_results"),
        ("q", 11, "max_results"),
        ("q", True, "max_results"),
    ],
)
def test_bad_arguments_are_rejected_before_any_request(
    tavily: FakeTavily, query: object, count: object, field: str
) -> None:
    table = ToolTable(web_search_tools(TavilyClient("tvly-x", base_url=tavily.url)), identity_source="none")
    with pytest.raises(ToolError) as caught:
        table.call("web_search", {"query": query, "max_results": count}, None)
    assert caught.value.message.startswith(f"{field}:")
    assert tavily.requests == []


def test_the_tool_uses_the_default_result_count(tavily: FakeTavily) -> None:
    table = ToolTable(web_search_tools(TavilyClient("tvly-x", base_url=tavily.url)), identity_source="none")
    answer = table.call("web_search", {"query": " wifi "}, None)
    assert tavily.requests[0]["body"] == {"query": "wifi", "max_results": 5, "search_depth": "basic"}
    assert answer["query"] == "wifi"


@pytest.mark.parametrize(
    "url", ["https://api.tavily.com", "http://localhost:1", "http://[::1]:1", "https://x/"]
)
def test_https_or_loopback_base_urls_are_accepted(url: str) -> None:
    TavilyClient("tvly-x", base_url=url)


def test_openapi_document_describes_the_spec() -> None:
    document = openapi_document()
    operation = document["paths"]["/search"]["post"]
    spec = specs.spec("web_search")
    assert operation["operationId"] == spec.name
    assert sorted(operation) == ["description", "operationId", "requestBody", "responses", "summary"]
    assert sorted(operation["requestBody"]["content"]["application/json"]) == ["schema"]
    assert operation["description"] == spec.description
    assert operation["requestBody"]["content"]["application/json"]["schema"] == spec.input_schema
    assert document["openapi"].startswith("3.0")

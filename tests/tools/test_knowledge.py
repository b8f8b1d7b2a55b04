"""Knowledge mapping helpers: request shape, titles, pages, scores and input validation."""

from __future__ import annotations

import pytest

from tools.errors import ErrorCode, ToolError
from tools.knowledge import (
    PAGE_NUMBER_KEY,
    KnowledgeSearch,
    human_page_number,
    map_results,
    retrieve_request,
)


def test_retrieve_request_shape() -> None:
    assert retrieve_request("KB1", "reset router", 4) == {
        "knowledgeBaseId": "KB1",
        "retrievalQuery": {"text": "reset router"},
        "retrievalConfiguration": {"vectorSearchConfiguration": {"numberOfResults": 4}},
    }


@pytest.mark.parametrize(
    ("uri", "title"),
    [
        ("s3://b/router-x200-user-manual.pdf", "Router X200 User Manual"),
        ("s3://b/docs/mesh-m3-troubleshooting.md", "Mesh M3 Troubleshooting"),
        ("s3://b/billing_subscription_faq.txt", "Billing Subscription Faq"),
    ],
)
def test_title_is_derived_from_the_file_name_when_metadata_has_none(uri: str, title: str) -> None:
    (hit,) = map_results(
        {"retrievalResults": [{"content": {"text": "t"}, "location": {"s3Location": {"uri": uri}}}]}
    )
    assert hit["title"] == title


def test_metadata_source_uri_is_used_without_a_location() -> None:
    response = {
        "retrievalResults": [
            {"content": {"text": "t"}, "metadata": {"x-amz-bedrock-kb-source-uri": "s3://b/a.md"}}
        ]
    }
    assert map_results(response)[0]["uri"] == "s3://b/a.md"


def test_web_location_is_a_uri_too() -> None:
    response = {
        "retrievalResults": [
            {"content": {"text": "t"}, "location": {"webLocation": {"url": "https://x.example/a"}}}
        ]
    }
    assert map_results(response)[0]["uri"] == "https://x.example/a"


def test_results_are_sorted_by_score_and_none_scores_last() -> None:
    response = {
        "retrievalResults": [
            {"content": {"text": "low"}, "score": 0.2},
            {"content": {"text": "none"}},
            {"content": {"text": "high"}, "score": 0.9},
        ]
    }
    assert [h["text"] for h in map_results(response)] == ["high", "low", "none"]


class RecordingClient:
    """Records `retrieve` calls (the exact request against the botocore model is in
    tests/functions/test_knowledge_handler.py)."""

    def __init__(self) -> None:
        self.requests: list[dict[str, object]] = []

    def retrieve(self, **request: object) -> dict[str, object]:
        self.requests.append(request)
        return {"retrievalResults": [{"content": {"text": " A passage. "}, "score": 0.5}]}


def test_search_trims_the_query_and_maps_the_results() -> None:
    client = RecordingClient()
    answer = KnowledgeSearch(client, "KB1").search("  reset  ", 3)
    assert client.requests == [retrieve_request("KB1", "reset", 3)]
    assert answer == {
        "query": "reset",
        "results": [
            {"text": "A passage.", "title": "Untitled document", "uri": None, "page": None, "score": 0.5}
        ],
        "count": 1,
    }


@pytest.mark.parametrize("query", ["", "  \n\t "])
def test_a_blank_query_is_refused_before_any_request(query: str) -> None:
    client = RecordingClient()
    with pytest.raises(ToolError) as caught:
        KnowledgeSearch(client, "KB1").search(query, 3)
    assert (caught.value.code, caught.value.message) == (
        ErrorCode.INVALID_ARGUMENT,
        "query: must not be blank",
    )
    assert client.requests == []


def test_a_response_without_results_maps_to_none() -> None:
    assert map_results({}) == []


def test_a_search_logs_its_result_count_not_the_query(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="tools.knowledge")
    KnowledgeSearch(RecordingClient(), "KB1").search("secret words", 3)
    (record,) = [r for r in caplog.records if r.name == "tools.knowledge"]
    assert record.getMessage() == "knowledge search"
    assert record.__dict__["results"] == 1
    assert "secret" not in record.getMessage()


def test_search_needs_a_knowledge_base_id() -> None:
    with pytest.raises(ValueError, match="KNOWLEDGE_BASE_ID"):
        KnowledgeSearch(object(), "")


def test_results_without_text_are_skipped() -> None:
    response = {
        "retrievalResults": [
            {"content": {"text": "  "}, "score": 0.9},
            {"content": None, "score": 0.8},
            {"score": 0.7},
            {"content": {"text": "kept"}, "score": 0.1},
        ]
    }
    assert [hit["text"] for hit in map_results(response)] == ["kept"]


# --- page numbers: Bedrock's 0-based page index -> the page a PDF viewer shows ------------------------


@pytest.mark.parametrize(("index", "page"), [(0, 1), (5, 6), (5.0, 6), ("5", 6), (6, 7)])
def test_human_page_number_counts_from_one(index: object, page: int) -> None:
    assert human_page_number(index) == page


@pytest.mark.parametrize("index", [-1, 1.5, "x", "", None, True, False, float("nan"), [1]])
def test_human_page_number_rejects_what_is_not_a_page(index: object) -> None:
    assert human_page_number(index) is None


def test_the_first_pdf_page_is_cited_as_page_one() -> None:
    (hit,) = map_results(
        {
            "retrievalResults": [
                {
                    "content": {"text": "Welcome"},
                    "location": {"s3Location": {"uri": "s3://b/router-x200-user-manual.pdf"}},
                    "metadata": {PAGE_NUMBER_KEY: 0.0},
                }
            ]
        }
    )
    assert hit["page"] == 1


def test_local_and_deployed_paths_share_one_page_conversion() -> None:
    import tools.local_index

    assert tools.local_index.__dict__["human_page_number"] is human_page_number


@pytest.mark.parametrize(
    ("metadata", "uri", "title"),
    [
        ({"title": "  Router Guide  "}, "s3://b/x.pdf", "Router Guide"),
        ({"title": "   "}, "s3://b/mesh-guide.md", "Mesh Guide"),
        ({"title": 7}, "s3://b/mesh-guide.md", "Mesh Guide"),
        ({}, "s3://b/docs/Setup_Guide.PDF?versionId=3", "Setup Guide"),
        ({}, "s3://b/nimbus-m3pro-quick.HTML", "Nimbus M3PRO Quick"),
        ({}, "s3://b/.pdf", "Untitled document"),
    ],
)
def test_the_title_comes_from_metadata_else_the_file_name(
    metadata: dict[str, object], uri: str, title: str
) -> None:
    (hit,) = map_results(
        {
            "retrievalResults": [
                {"content": {"text": "t"}, "location": {"s3Location": {"uri": uri}}, "metadata": metadata}
            ]
        }
    )
    assert hit["title"] == title


@pytest.mark.parametrize(
    ("location", "uri"),
    [
        ({"confluenceLocation": {"url": "https://wiki.example/p/1"}}, "https://wiki.example/p/1"),
        ({"salesforceLocation": {"url": "https://sf.example/k/2"}}, "https://sf.example/k/2"),
        ({"sharePointLocation": {"url": "https://sp.example/d/3"}}, "https://sp.example/d/3"),
        ({"s3Location": {}, "webLocation": {"url": "https://w.example/"}}, "https://w.example/"),
    ],
)
def test_every_documented_location_type_gives_the_uri(location: dict[str, object], uri: str) -> None:
    (hit,) = map_results({"retrievalResults": [{"content": {"text": "t"}, "location": location}]})
    assert hit["uri"] == uri

"""Knowledge mapping helpers: request shape, titles, pages, scores and input validation."""

from __future__ import annotations

import pytest

from tools.knowledge import (
    KnowledgeSearch,
    KnowledgeSearchError,
    map_results,
    retrieve_request,
    validate_query,
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


@pytest.mark.parametrize(("query", "count"), [("  x ", 1), ("y", 10), ("z", 5.0)])
def test_valid_queries(query: str, count: object) -> None:
    text, number = validate_query(query, count)
    assert text == query.strip() and number == int(count)  # type: ignore[call-overload]


def test_search_needs_a_knowledge_base_id() -> None:
    with pytest.raises(ValueError, match="KNOWLEDGE_BASE_ID"):
        KnowledgeSearch(object(), "")


def test_error_body() -> None:
    with pytest.raises(KnowledgeSearchError) as caught:
        validate_query("", 5)
    assert caught.value.to_dict() == {
        "error": {"code": "invalid_argument", "message": "query: must be a non-empty string"}
    }

"""Knowledge mapping helpers: request shape, titles, pages, scores and input validation."""

from __future__ import annotations

import pytest

from tools.knowledge import (
    PAGE_NUMBER_KEY,
    KnowledgeSearch,
    KnowledgeSearchError,
    human_page_number,
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

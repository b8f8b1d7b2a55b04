"""The cited-source rule the agent's `metadata.citations[].cited` and the chat share (agent/citations.py)."""

from __future__ import annotations

from typing import Any

import pytest

from agent.citations import answer_cites, mark_cited, source_file_name

MANUAL = "s3://docs/sample-corpus/router-x200-user-manual.pdf"


def citation(page: int | None, title: str = "Router X200 User Manual", uri: str = MANUAL) -> dict[str, Any]:
    return {"title": title, "uri": uri, "page": page, "cited": False}


def test_the_page_the_answer_names_is_cited_and_another_page_of_that_document_is_not() -> None:
    marked = mark_cited([citation(6), citation(3)], "Hold RESET for 10 s [Router X200 User Manual, p. 6].")
    assert [(c["page"], c["cited"]) for c in marked] == [(6, True), (3, False)]


@pytest.mark.parametrize(
    "answer",
    [
        "See router-x200-user-manual.pdf, pages 5-7.",
        "(Router X200 User Manual pp. 2, 6 and 9)",
        "router x200 user manual: page 6",
    ],
)
def test_file_names_ranges_lists_and_case_are_understood(answer: str) -> None:
    assert answer_cites(answer, title="Router X200 User Manual", uri=MANUAL, page=6)


def test_a_source_without_a_page_is_cited_by_its_name_and_an_unnamed_one_is_not() -> None:
    faq = citation(None, title="Returns FAQ", uri="s3://docs/faq/returns.md")
    assert mark_cited([dict(faq)], "As the Returns FAQ says, 30 days.")[0]["cited"] is True
    assert mark_cited([dict(faq)], "You have 30 days.")[0]["cited"] is False


def test_names_shorter_than_three_characters_never_match_inside_words() -> None:
    assert not answer_cites("a page about ab testing p. 1", title="ab", uri="s3://d/x", page=1)


@pytest.mark.parametrize(
    ("uri", "name"),
    [(MANUAL, "router-x200-user-manual.pdf"), ("https://example.com", ""), ("s3://b/a.md?x=1#p", "a.md")],
)
def test_source_file_name(uri: str, name: str) -> None:
    assert source_file_name(uri) == name

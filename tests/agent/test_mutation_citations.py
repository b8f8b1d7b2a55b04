"""Issue 12: the edges of the citation rule (docs/agent-api.md `metadata.citations[].cited`) that the
mutation run showed untested: file names from URIs with queries, fragments, trailing slashes and odd
schemes; page specs with spaces, en dashes and the 200-page range bound; the 3-character name minimum."""

from __future__ import annotations

import pytest

from agent.citations import answer_cites, source_file_name


@pytest.mark.parametrize(
    ("uri", "name"),
    [
        ("s3://kb/docs/", "docs"),  # a trailing slash is not a file name of its own
        ("s3://kb/docs/router.pdf#page=2", "router.pdf"),
        ("s3://kb/docs/router.pdf#a#b", "router.pdf"),  # the first `#` starts the fragment
        ("s3://kb/docs/router.pdf?x=1?y=2", "router.pdf"),  # the first `?` starts the query
        ("s3://kb/docs/FAX", "FAX"),  # only `/` is stripped from the end
        ("s3://kb/docs/manual.pdf ", "manual.pdf "),  # nor is whitespace
        ("router.pdf", "router.pdf"),  # a bare path without any `/`
        ("", ""),
        ("http://host://a/b.pdf", "b.pdf"),  # only the first `://` ends the scheme
        ("https://example.com/go/https://x", "x"),
        ("https://example.com", ""),  # a bare host: no file name
    ],
)
def test_source_file_name_edges(uri: str, name: str) -> None:
    assert source_file_name(uri) == name


@pytest.mark.parametrize(
    ("answer", "cited", "not_cited"),
    [
        ("See [Router Manual, pp. 3 - 4].", {3, 4}, {2, 5}),
        ("See [Router Manual, pp. 3\u20134].", {3, 4}, {2, 5}),  # an en dash
        ("See [Router Manual, pp. 3-4].", {3, 4}, {2, 5}),
        ("See Router Manual pages 1-1000.", {1, 200, 201}, {202, 1000}),  # ranges are bounded: 201 pages
    ],
)
def test_page_ranges(answer: str, cited: set[int], not_cited: set[int]) -> None:
    for page in cited:
        assert answer_cites(answer, title="Router Manual", uri="s3://kb/r.pdf", page=page), page
    for page in not_cited:
        assert not answer_cites(answer, title="Router Manual", uri="s3://kb/r.pdf", page=page), page


def test_a_three_character_name_is_long_enough() -> None:
    assert answer_cites("Read the FAQ.", title="FAQ", uri="s3://kb/f", page=None)
    assert not answer_cites("Read the FA.", title="FA", uri="s3://kb/f", page=None)


@pytest.mark.parametrize("short", ["ab", "cd", "ef", "gh", "ij", "kl", "mn", "op", "qr", "st", "uv", "wx"])
def test_a_too_short_title_does_not_hide_the_file_name(short: str) -> None:
    # both names are tried whatever their (hash) order: a short one is skipped, not the end of the search
    assert answer_cites(
        "Per router-manual.pdf it works.", title=short, uri="s3://kb/router-manual.pdf", page=None
    )

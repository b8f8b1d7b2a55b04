"""Which retrieved sources an answer cites: the one rule the agent's `cited` flag and the chat share.

A source is cited when the answer names its document (title or file name, case-insensitive) AND, for a
source with a page, gives that page right after the name: `[Router X200 Manual, p. 3]`,
`(router-x200-manual.pdf, pages 3-4)`, `Router X200 Manual p.3`. A source without a page is cited when
its document is named. Naming a document with another page does not cite this page
(docs/agent-api.md, `metadata.citations[].cited`; docs/frontend.md, "Citations").

Standard library only: the chat image ships this module beside `clients/` (stacks/frontend.py).
"""

from __future__ import annotations

import re
from typing import Any

MIN_NAME = 3  # shorter names ("FAQ" is 3) would match inside ordinary words

_NUMBERS = r"\d+(?:\s*[-\u2013]\s*\d+)?"
# right after the document name: an optional separator, then "p. 3", "pp. 3-4", "page 3", "pages 3, 5 and 7"
_PAGE_REF = re.compile(
    rf"\s*[,(:\u2013-]?\s*(?:pp?\.|pages?)\s*(?P<pages>{_NUMBERS}(?:\s*(?:,|and|&)\s*{_NUMBERS})*)"
)


def source_file_name(uri: str) -> str:
    """The file name a source URI points at (`s3://b/docs/router.pdf?x=1` -> `router.pdf`; "" for none)."""
    path = uri.split("?", 1)[0].split("#", 1)[0].rstrip("/")
    if "://" in path and "/" not in path.split("://", 1)[1]:
        return ""  # a bare host (web result): no file name
    return path.rsplit("/", 1)[-1]


def _pages(spec: str) -> set[int]:
    pages: set[int] = set()
    for part in re.split(r"\s*(?:,|and|&)\s*", spec):
        low, _, high = re.sub(r"\s+", "", part).replace("\u2013", "-").partition("-")
        if low.isdigit():
            start = int(low)
            end = int(high) if high.isdigit() else start
            pages.update(range(start, min(end, start + 200) + 1))  # a bounded range
    return pages


def answer_cites(answer: str, *, title: str | None, uri: str, page: int | None) -> bool:
    """True when the answer cites this source's document and, if it has one, this page."""
    text = answer.casefold()
    names = {name.casefold() for name in (title, source_file_name(uri)) if name}
    for name in names:
        if len(name) < MIN_NAME:
            continue
        for match in re.finditer(re.escape(name), text):
            if page is None:
                return True
            ref = _PAGE_REF.match(text, match.end())
            if ref and page in _pages(ref["pages"]):
                return True
    return False


def mark_cited(citations: list[dict[str, Any]], answer: str) -> list[dict[str, Any]]:
    """Set `cited` on each citation (dicts of the agent API's `metadata.citations`) by the rule above."""
    for citation in citations:
        citation["cited"] = answer_cites(
            answer, title=citation.get("title"), uri=str(citation.get("uri") or ""), page=citation.get("page")
        )
    return citations

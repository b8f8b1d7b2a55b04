"""Knowledge search: the Bedrock `Retrieve` request and the mapping of its results to citation-ready hits.

Used by the knowledge Lambda (deployed tool) through `knowledge_tools`. The hit shape (`text`, `title`, `uri`, `page`, `score`) is
the contract the agent turns into citations; the local index returns the same shape. `page` is the human,
1-based page a PDF viewer shows; `human_page_number` is the one conversion both paths use.
The boto3 client is passed in (the Lambda gets boto3 from its runtime).
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping
from pathlib import PurePosixPath
from typing import Any, TypedDict

from tools.dispatch import Handler
from tools.validation import nonblank

logger = logging.getLogger(__name__)

PAGE_NUMBER_KEY = "x-amz-bedrock-kb-document-page-number"
PAGE_INDEX_BASE = 0
"""The value PAGE_NUMBER_KEY holds for a PDF's first page. AWS documents the key (Bedrock user guide,
https://docs.aws.amazon.com/bedrock/latest/userguide/kb-test-config.html) and its type (a JSON value in the
Retrieve result's `metadata` map, https://docs.aws.amazon.com/bedrock/latest/APIReference/API_agent-runtime_KnowledgeBaseRetrievalResult.html)
but not its base; users observe a 0-based page index (https://github.com/aws-samples/bedrock-chat/issues/811,
"PDF page number needs +1"). See docs/knowledge-base.md, "Page numbers"; `make verify` checks it live."""
SOURCE_URI_KEY = "x-amz-bedrock-kb-source-uri"
TITLE_KEY = "title"
TOOL = "search_knowledge_base"


class KnowledgeHit(TypedDict):
    """One retrieved passage, ready to cite."""

    text: str
    title: str
    uri: str | None
    page: int | None
    score: float | None


def retrieve_request(knowledge_base_id: str, query: str, max_results: int) -> dict[str, Any]:
    """The exact `bedrock-agent-runtime:Retrieve` parameters for one search."""
    return {
        "knowledgeBaseId": knowledge_base_id,
        "retrievalQuery": {"text": query},
        "retrievalConfiguration": {"vectorSearchConfiguration": {"numberOfResults": max_results}},
    }


def map_results(response: Mapping[str, Any]) -> list[KnowledgeHit]:
    """Turn a Retrieve response into hits, best first; results without text are skipped."""
    hits: list[KnowledgeHit] = []
    for result in response.get("retrievalResults", []):
        text = (result.get("content") or {}).get("text") or ""
        if not text.strip():
            continue
        metadata = result.get("metadata") or {}
        uri = _source_uri(result, metadata)
        hits.append(
            KnowledgeHit(
                text=text.strip(),
                title=_title(metadata, uri),
                uri=uri,
                page=human_page_number(metadata.get(PAGE_NUMBER_KEY)),
                score=_score(result.get("score")),
            )
        )
    hits.sort(key=lambda hit: -(hit["score"] or 0.0))
    return hits


class KnowledgeSearch:
    """Searches one Bedrock knowledge base.

    Args:
        client: a boto3 `bedrock-agent-runtime` client.
        knowledge_base_id: the knowledge base to search.
    """

    def __init__(self, client: Any, knowledge_base_id: str) -> None:
        if not knowledge_base_id:
            raise ValueError("knowledge_base_id is required (KNOWLEDGE_BASE_ID)")
        self._client = client
        self._knowledge_base_id = knowledge_base_id

    def search(self, query: str, max_results: int) -> dict[str, Any]:
        """Search and return `{"query", "results": [KnowledgeHit...], "count"}`.

        The arguments are the tool's, checked against its schema (`knowledge_tools`); a blank query is
        ToolError(invalid_argument).
        """
        text = nonblank("query", query)
        response = self._client.retrieve(**retrieve_request(self._knowledge_base_id, text, max_results))
        hits = map_results(response)
        logger.info("knowledge search", extra={"results": len(hits)})
        return {"query": text, "results": hits, "count": len(hits)}


def _source_uri(result: Mapping[str, Any], metadata: Mapping[str, Any]) -> str | None:
    location = result.get("location") or {}
    for key in (
        "s3Location",
        "webLocation",
        "confluenceLocation",
        "salesforceLocation",
        "sharePointLocation",
    ):
        candidate = (location.get(key) or {}).get("uri") or (location.get(key) or {}).get("url")
        if candidate:
            return str(candidate)
    source = metadata.get(SOURCE_URI_KEY)
    return str(source) if source else None


def _title(metadata: Mapping[str, Any], uri: str | None) -> str:
    title = metadata.get(TITLE_KEY)
    if isinstance(title, str) and title.strip():
        return title.strip()
    if uri:
        stem = PurePosixPath(uri.split("?", 1)[0]).name
        stem = re.sub(r"\.(pdf|md|markdown|txt|html?|docx?|csv)$", "", stem, flags=re.IGNORECASE)
        words = [w for w in re.split(r"[-_\s]+", stem) if w]
        if words:
            return " ".join(w.upper() if re.fullmatch(r"[a-z]\d+\w*", w) else w.capitalize() for w in words)
    return "Untitled document"


def human_page_number(page_index: object) -> int | None:
    """The page a PDF viewer shows (1 for the first page: "p. 6" for the 6th) for a page index counted
    from PAGE_INDEX_BASE, or None when there is no usable page.

    The one conversion for both paths: the deployed knowledge Lambda passes the Retrieve metadata value
    (a JSON number, or a numeric string: both are accepted) and the local index passes pypdf's 0-based
    page index. Booleans, fractions, negatives, NaN/inf and non-numeric values are not pages.
    """
    if isinstance(page_index, bool) or not isinstance(page_index, int | float | str):
        return None
    try:
        number = float(page_index.strip()) if isinstance(page_index, str) else float(page_index)
    except ValueError:
        return None
    if not math.isfinite(number) or not number.is_integer() or number < PAGE_INDEX_BASE:
        return None
    return int(number) - PAGE_INDEX_BASE + 1


def _score(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return round(float(value), 4)


def knowledge_tools(search: KnowledgeSearch) -> dict[str, Handler]:
    """The knowledge tool as `{tool name: handler}` for `tools.dispatch.ToolTable`."""
    return {TOOL: lambda args, _actor: search.search(args["query"], args["max_results"])}

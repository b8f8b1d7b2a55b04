"""Knowledge target of the tool gateway: `search_knowledge_base` over Bedrock `Retrieve`."""

from __future__ import annotations

import logging
from typing import Any

import boto3

from functions.common import require_env, tool_name
from tools import specs
from tools.knowledge import DEFAULT_RESULTS, KnowledgeSearch, KnowledgeSearchError

logger = logging.getLogger(__name__)
logger.setLevel(logging.INFO)

TOOL = "search_knowledge_base"
# The published schema's properties only: the interceptor never gives this target the identity argument.
_ALLOWED_ARGUMENTS = frozenset(specs.spec(TOOL).input_schema["properties"])

_search: KnowledgeSearch | None = None


def _get_search() -> KnowledgeSearch:
    global _search
    if _search is None:
        knowledge_base_id = require_env("KNOWLEDGE_BASE_ID")
        _search = KnowledgeSearch(boto3.client("bedrock-agent-runtime"), knowledge_base_id)
    return _search


def handler(event: Any, context: Any) -> dict[str, Any]:
    """Search the knowledge base; returns `{"query", "results", "count"}` or `{"error": ...}`."""
    name = tool_name(context)
    if name and name != TOOL:
        return KnowledgeSearchError("invalid_argument", f"tool: unknown knowledge tool {name!r}").to_dict()
    if not isinstance(event, dict):
        return KnowledgeSearchError("invalid_argument", "arguments must be a JSON object").to_dict()
    unknown = sorted(set(event) - _ALLOWED_ARGUMENTS)
    if unknown:
        return KnowledgeSearchError(
            "invalid_argument", f"{unknown[0]}: unknown argument for {TOOL}"
        ).to_dict()
    try:
        max_results = event.get("max_results")
        return _get_search().search(
            event.get("query"), DEFAULT_RESULTS if max_results is None else max_results
        )
    except KnowledgeSearchError as error:
        return error.to_dict()

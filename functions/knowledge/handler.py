"""Knowledge target of the tool gateway: `search_knowledge_base` over Bedrock `Retrieve`.

Called like the tickets target (the tool's input properties as the event, the tool name in the client
context); this target receives no caller identity (`functions.tool_target.serve`).
"""

from __future__ import annotations

import logging
from typing import Any

import boto3

from functions.common import require_env
from functions.tool_target import IDENTITY_SOURCE, serve
from tools.dispatch import ToolTable
from tools.knowledge import KnowledgeSearch, knowledge_tools

logger = logging.getLogger(__name__)
logger.setLevel(logging.INFO)

_table: ToolTable | None = None


def _get_table() -> ToolTable:
    global _table
    if _table is None:
        knowledge_base_id = require_env("KNOWLEDGE_BASE_ID")
        search = KnowledgeSearch(boto3.client("bedrock-agent-runtime"), knowledge_base_id)
        _table = ToolTable(knowledge_tools(search), identity_source=IDENTITY_SOURCE)
    return _table


def handler(event: Any, context: Any) -> dict[str, Any]:
    """Search the knowledge base; returns `{"query", "results", "count"}` or `{"error": ...}`."""
    return serve(_get_table(), event, context)

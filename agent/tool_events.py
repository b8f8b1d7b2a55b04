"""What a turn records about its tool calls: the stream's `tool_start`/`tool_end` events, `metadata.tools`
and `metadata.citations` (docs/agent-api.md), from Strands' before/after tool-call hooks.

A call failed when Strands reports an exception or a non-success result, or when the tool answered
normally with a top-level JSON object holding an `error` key (the Lambda targets' `{"error": ...}`). A
failed call contributes no citations. A `ToolTransportError` marks the turn so the caller's MCP session
is dropped afterwards.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from strands.hooks import AfterToolCallEvent, BeforeToolCallEvent

from agent.citations import mark_cited
from agent.tool_client import ToolTransportError, bare_tool_name

KNOWLEDGE_TOOLS = frozenset({"search_knowledge_base"})
WEB_TOOLS = frozenset({"web_search"})
CITING_TOOLS = KNOWLEDGE_TOOLS | WEB_TOOLS
MAX_CITATION_TEXT = 2000
MAX_ERROR_TEXT = 500

Key = tuple[str, int | None]


def _no_sink(event: dict[str, Any]) -> None:
    return None


@dataclass
class TurnState:
    """One turn's tool records, citations and the tools running now (for the deadline's message)."""

    sink: Callable[[dict[str, Any]], None] = _no_sink  # tool events go straight out (not after the tool)
    tools: list[dict[str, Any]] = field(default_factory=list)
    citations: dict[Key, dict[str, Any]] = field(default_factory=dict)
    passages: dict[Key, dict[str, float]] = field(default_factory=dict)
    starts: dict[str, float] = field(default_factory=dict)
    running: dict[str, str] = field(default_factory=dict)
    usage: dict[str, int] = field(
        default_factory=lambda: {"input_tokens": 0, "output_tokens": 0, "total_tokens": 0}
    )
    tool_transport_failed: bool = False
    trace_id: str = ""


def _result_payloads(result: dict[str, Any]) -> list[Any]:
    payloads: list[Any] = []
    for block in result.get("content", []) or []:
        if not isinstance(block, dict):
            continue
        if "json" in block:
            payloads.append(block["json"])
        elif "text" in block:
            try:
                payloads.append(json.loads(block["text"]))
            except (TypeError, json.JSONDecodeError):
                payloads.append(block["text"])
    return payloads


def _result_text(result: dict[str, Any]) -> str:
    parts = [
        str(block["text"])
        for block in result.get("content", []) or []
        if isinstance(block, dict) and "text" in block
    ]
    return " ".join(parts)[:MAX_ERROR_TEXT]


def _error_message(value: Any) -> str:
    """The message of a tool's `error` value: a string, or an object with `message` (and `code`)."""
    if isinstance(value, dict):
        message = value.get("message")
        code = value.get("code")
        if isinstance(message, str) and message:
            return f"{code}: {message}" if isinstance(code, str) and code else message
        return json.dumps(value)[:MAX_ERROR_TEXT]
    text = str(value) if value is not None else ""
    return text[:MAX_ERROR_TEXT] or "tool failed"


def result_error(result: dict[str, Any]) -> str | None:
    """The error a successful-looking tool result carries: a top-level JSON object with an `error` key."""
    for payload in _result_payloads(result):
        if isinstance(payload, dict) and "error" in payload:
            return _error_message(payload["error"])
    return None


def collect_citations(result: dict[str, Any], state: TurnState) -> None:
    """Keep each (uri, page) of a knowledge/web result once (best score) with all its passages."""
    for payload in _result_payloads(result):
        if not isinstance(payload, dict):
            continue
        for item in payload.get("results", []) or []:
            if not isinstance(item, dict):
                continue
            uri = item.get("uri") or item.get("url")
            if not isinstance(uri, str) or not uri:
                continue
            page = item.get("page") if isinstance(item.get("page"), int) else None
            score = item.get("score")
            text = item.get("text") if isinstance(item.get("text"), str) else item.get("content")
            citation: dict[str, Any] = {
                "title": str(item.get("title") or uri),
                "uri": uri,
                "page": page,
                "score": float(score) if isinstance(score, (int, float)) else None,
            }
            key = (uri, page)
            previous = state.citations.get(key)
            if previous is None or (citation["score"] or 0.0) > (previous["score"] or 0.0):
                state.citations[key] = citation
            if isinstance(text, str) and text.strip():
                texts = state.passages.setdefault(key, {})
                texts[text] = max(texts.get(text, 0.0), citation["score"] or 0.0)


def citation_list(state: TurnState, answer: str) -> list[dict[str, Any]]:
    """The turn's citations by score, each with its passage text and whether the answer names it.

    Several passages of one (uri, page) (chunks of one page, or of a document without pages) share one
    entry: its `text` holds them best first, separated by blank lines, cut at MAX_CITATION_TEXT.
    """
    citations = []
    for key, citation in sorted(state.citations.items(), key=lambda item: -(item[1]["score"] or 0.0)):
        texts = sorted(state.passages.get(key, {}).items(), key=lambda item: -item[1])
        text = "\n\n".join(passage for passage, _ in texts)[:MAX_CITATION_TEXT]
        citations.append({**citation, "text": text or None, "cited": False})
    return mark_cited(citations, answer)


def tool_hooks(state: TurnState) -> list[Any]:
    """Strands hook callbacks (before, after a tool call) that record into `state` and emit events."""

    def before(event: BeforeToolCallEvent) -> None:
        use = event.tool_use
        name = bare_tool_name(use["name"])
        state.starts[use["toolUseId"]] = time.perf_counter()
        state.running[use["toolUseId"]] = name
        state.sink({"type": "tool_start", "name": name, "arguments": use.get("input") or {}})

    def after(event: AfterToolCallEvent) -> None:
        use = event.tool_use
        began = state.starts.pop(use["toolUseId"], None)
        state.running.pop(use["toolUseId"], None)
        duration = (
            (time.perf_counter() - began) * 1000 if began is not None else (event.duration or 0.0) * 1000
        )
        name = bare_tool_name(use["name"])
        result: dict[str, Any] = dict(event.result or {})
        if result.get("status") == "success" and event.exception is None:
            error = result_error(result)  # the tool ran and answered `{"error": ...}`
        else:
            error = str(event.exception) if event.exception else _result_text(result) or "tool failed"
            if isinstance(event.exception, ToolTransportError):
                state.tool_transport_failed = True
        record = {
            "name": name,
            "arguments": use.get("input") or {},
            "duration_ms": round(duration, 1),
            "status": "success" if error is None else "error",
            "error": error,
        }
        state.tools.append(record)
        if error is None and name in CITING_TOOLS:
            collect_citations(result, state)
        state.sink(
            {
                "type": "tool_end",
                "name": name,
                "status": record["status"],
                "duration_ms": record["duration_ms"],
                "error": error,
            }
        )

    return [before, after]

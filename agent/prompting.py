"""What the model is told: the system prompt (role, citation and ticket rules, tool availability, what
memory recalls about the user) and the conversation replayed from the session's history.

Pure functions of their inputs (no I/O), so each rule is tested on its own (tests/agent/test_prompting.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from agent.memory import Turn

SYSTEM_PROMPT = """You are the customer-service assistant of Nimbus Networks (routers, mesh Wi-Fi, thermostats).
- Answer product questions from the knowledge base: call search_knowledge_base and cite every passage you use as [Document title, p. N] (omit the page when there is none). If the knowledge base has no answer, say so and offer to open a support ticket.
- To open a ticket, first collect the user's contact email and a description of the problem; never invent them. Then call create_ticket and give the user the ticket id.
- Use only the tools you are given. If the user asks you to search the web and you have no web_search tool, say that web search is not available.
- Be concise and friendly. Never give financial or investment advice."""

NO_TOOLS_NOTE = "\n- Your tools are temporarily unavailable: say that you cannot look things up or manage tickets right now."

MEMORY_HEADER = "\n\nWhat you remember about this user from earlier conversations:\n"


def system_prompt(*, tools_available: bool, facts: Sequence[str]) -> str:
    """The base prompt, the no-tools note when the tool server gave no tools, then the recalled facts
    (one `- fact` line each, under MEMORY_HEADER; nothing when memory recalled none)."""
    prompt = SYSTEM_PROMPT
    if not tools_available:
        prompt += NO_TOOLS_NOTE
    if facts:
        prompt += MEMORY_HEADER + "\n".join(f"- {fact}" for fact in facts)
    return prompt


def conversation(history: Sequence[Turn]) -> list[dict[str, Any]]:
    """The session's history as Strands messages: consecutive turns of one role merge into one message
    (the model API alternates roles), and a trailing user message is dropped (its answer was never
    recorded; the new prompt follows it)."""
    messages: list[dict[str, Any]] = []
    for turn in history:
        if messages and messages[-1]["role"] == turn.role:
            messages[-1]["content"].append({"text": turn.text})
        else:
            messages.append({"role": turn.role, "content": [{"text": turn.text}]})
    if messages and messages[-1]["role"] == "user":
        messages.pop()
    return messages

"""Unit fixtures: the real AgentService with an in-process scripted Strands model and local stand-ins."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from strands import tool

from agent.guardrails import LocalPolicy
from agent.memory import LocalMemory
from agent.service import AgentService
from agent.telemetry import Telemetry
from agent.tool_client import StaticTools
from local_stack.scripted_strands import ScriptedStrandsModel

PASSAGES = [
    {
        "title": "Router X200 User Manual",
        "uri": "corpus/router-x200-user-manual.pdf",
        "page": 6,
        "section": "Factory reset",
        "score": 0.66,
        "text": "Hold the recessed RESET button for 10 seconds until the Status ring blinks red.",
    },
    {
        "title": "Router X200 User Manual",
        "uri": "corpus/router-x200-user-manual.pdf",
        "page": 3,
        "section": "LED indicators",
        "score": 0.41,
        "text": "Blinking red status ring: factory reset in progress.",
    },
]


@tool
def search_knowledge_base(query: str, max_results: int = 5) -> str:
    """Search the product support knowledge base.

    Args:
        query: What to look for.
        max_results: How many passages to return.
    """
    return json.dumps({"results": PASSAGES[:max_results]})


@tool
def create_ticket(email: str, subject: str, description: str) -> str:
    """Create a support ticket.

    Args:
        email: Contact email.
        subject: One-line summary.
        description: What happened.
    """
    if "@" not in email:
        raise ValueError("invalid_argument: email is not valid")
    return json.dumps({"ticket_id": "TCK-0000ABCD", "status": "open"})


@pytest.fixture
def model() -> ScriptedStrandsModel:
    return ScriptedStrandsModel()


@pytest.fixture
def make_service(model: ScriptedStrandsModel) -> Callable[..., AgentService]:
    def build(**overrides: Any) -> AgentService:
        options: dict[str, Any] = {
            "model_factory": lambda: model,
            "model_name": "claude-sonnet",
            "guardrail": LocalPolicy(),
            "memory": LocalMemory(),
            "tools": StaticTools([search_knowledge_base, create_ticket]),
            "telemetry": Telemetry.disabled(),
        }
        options.update(overrides)
        return AgentService(**options)

    return build

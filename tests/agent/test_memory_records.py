"""Memory records in detail: which AgentCore Memory events become conversation turns (roles, payload kinds,
a history that must start with the user, one page of events), and the local store's bounds.

AgentCore Memory through the real `bedrock_agentcore.memory.MemoryClient` (1.25.0) with botocore's
Stubber on its data-plane client, which validates requests and responses against the service model
(https://docs.aws.amazon.com/bedrock-agentcore/latest/APIReference/API_ListEvents.html,
https://docs.aws.amazon.com/bedrock-agentcore/latest/APIReference/API_PayloadType.html).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from bedrock_agentcore.memory import MemoryClient
from botocore.stub import ANY, Stubber

from agent.memory import AgentCoreMemory, LocalMemory, Turn

MEMORY_ID = "aaf_memory-0123456789"
SESSION = "s" * 33
LIST_REQUEST = {
    "memoryId": MEMORY_ID,
    "actorId": "user-1",
    "sessionId": SESSION,
    "maxResults": 100,
    "includePayloads": True,
}


@pytest.fixture
def agentcore():
    client = MemoryClient(region_name="us-east-1")
    with Stubber(client.gmdp_client) as stubber:
        yield AgentCoreMemory(MEMORY_ID, "us-east-1", client=client), stubber
        stubber.assert_no_pending_responses()


def conversational(text: str, role: str) -> dict[str, object]:
    return {"conversational": {"content": {"text": text}, "role": role}}


def event(minute: int, *payload: dict[str, object]) -> dict[str, object]:
    return {
        "memoryId": MEMORY_ID,
        "actorId": "user-1",
        "sessionId": SESSION,
        "eventId": f"e{minute:04d}",
        "eventTimestamp": datetime(2026, 11, 1, tzinfo=UTC) + timedelta(minutes=minute),
        "payload": list(payload),
    }


def test_history_keeps_user_and_assistant_messages_with_their_roles(agentcore) -> None:
    memory, stubber = agentcore
    stubber.add_response(
        "list_events",
        {
            "events": [
                event(
                    1,
                    conversational("How do I reset?", "USER"),
                    {"blob": {"note": "not a message"}},
                    conversational("tool output", "TOOL"),
                    conversational("Hold RESET.", "ASSISTANT"),
                    conversational("other", "OTHER"),
                )
            ]
        },
        LIST_REQUEST,
    )
    assert memory.history("user-1", SESSION, turns=5) == [
        Turn("user", "How do I reset?"),
        Turn("assistant", "Hold RESET."),
    ]


def test_a_history_never_starts_with_the_assistant(agentcore) -> None:
    memory, stubber = agentcore
    stubber.add_response(
        "list_events",
        {
            "events": [
                event(
                    1,
                    conversational("orphan answer", "ASSISTANT"),
                    conversational("second orphan", "ASSISTANT"),
                ),
                event(2, conversational("question", "USER"), conversational("answer", "ASSISTANT")),
            ]
        },
        LIST_REQUEST,
    )
    assert memory.history("user-1", SESSION, turns=5) == [
        Turn("user", "question"),
        Turn("assistant", "answer"),
    ]


def test_history_reads_one_page_of_events_and_keeps_the_latest_turns(agentcore) -> None:
    memory, stubber = agentcore
    events = [
        event(i, conversational(f"q{i}", "USER"), conversational(f"a{i}", "ASSISTANT")) for i in range(100)
    ]
    # A next page exists, but the agent reads one page (the last 100 exchanges are plenty for 10 turns).
    stubber.add_response("list_events", {"events": events[::-1], "nextToken": "more"}, LIST_REQUEST)
    history = memory.history("user-1", SESSION, turns=2)
    assert history == [
        Turn("user", "q98"),
        Turn("assistant", "a98"),
        Turn("user", "q99"),
        Turn("assistant", "a99"),
    ]


def test_record_writes_the_exchange_as_user_then_assistant(agentcore) -> None:
    memory, stubber = agentcore
    stubber.add_response(
        "create_event",
        {"event": event(1)},
        {
            "memoryId": MEMORY_ID,
            "actorId": "user-1",
            "sessionId": SESSION,
            "eventTimestamp": ANY,
            "payload": [conversational("question", "USER"), conversational("answer", "ASSISTANT")],
        },
    )
    memory.record("user-1", SESSION, "question", "answer")


def test_recall_searches_the_configured_namespace_with_the_limit(agentcore) -> None:
    memory, stubber = agentcore

    def record(index: int, content: dict[str, str]) -> dict[str, object]:
        return {
            "memoryRecordId": "mem-" + str(index) * 40,
            "content": content,
            "memoryStrategyId": "facts",
            "namespaces": ["/people/user-1/"],
            "createdAt": datetime(2026, 11, 1, tzinfo=UTC),
        }

    memory.namespace = "/people/{actorId}/"
    stubber.add_response(
        "retrieve_memory_records",
        {
            "memoryRecordSummaries": [
                record(1, {"text": "Owns a Mesh M3."}),
                record(3, {"text": "Lives in Lyon."}),
            ]
        },
        {
            "memoryId": MEMORY_ID,
            "namespacePath": "/people/user-1/",
            "searchCriteria": {"searchQuery": "devices", "topK": 2},
        },
    )
    assert memory.recall("user-1", SESSION, "devices", limit=2) == ["Owns a Mesh M3.", "Lives in Lyon."]


def test_local_recall_is_bounded_newest_first_and_user_messages_only() -> None:
    memory = LocalMemory()
    for index in range(7):
        memory.record("alice", f"old-{index}", f"fact {index}", f"reply {index}")
    recalled = memory.recall("alice", "now", "anything")
    assert recalled == [f"In an earlier conversation the user said: fact {i}" for i in (6, 5, 4, 3, 2)]
    assert len(memory.recall("alice", "now", "anything", limit=2)) == 2


def test_local_history_of_an_unknown_session_is_empty_and_turns_bound_exchanges() -> None:
    memory = LocalMemory()
    assert memory.history("alice", "none", turns=3) == []
    memory.record("alice", "s", "q1", "a1")
    memory.record("alice", "s", "q2", "a2")
    assert memory.history("alice", "s", turns=1) == [Turn("user", "q2"), Turn("assistant", "a2")]
    assert memory.history("bob", "s", turns=5) == []


def test_a_memory_client_is_made_for_the_region_when_none_is_given() -> None:
    memory = AgentCoreMemory(MEMORY_ID, "eu-west-1")
    assert isinstance(memory._client, MemoryClient) and memory._client.region_name == "eu-west-1"
    assert memory._client.gmdp_client.meta.region_name == "eu-west-1"

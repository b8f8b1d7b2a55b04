"""Memory: the local SQLite store, and AgentCore Memory's exact API requests (Stubber)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from bedrock_agentcore.memory import MemoryClient
from botocore.stub import ANY, Stubber

from agent.memory import AgentCoreMemory, LocalMemory, Turn

MEMORY_ID = "aaf_memory-0123456789"


def test_local_history_is_per_session_and_bounded(tmp_path) -> None:
    memory = LocalMemory(str(tmp_path / "m.db"))
    for index in range(5):
        memory.record("alice", "s1", f"question {index}", f"answer {index}")
    memory.record("alice", "s2", "other", "other answer")
    history = memory.history("alice", "s1", turns=2)
    assert history == [
        Turn("user", "question 3"),
        Turn("assistant", "answer 3"),
        Turn("user", "question 4"),
        Turn("assistant", "answer 4"),
    ]
    assert LocalMemory(str(tmp_path / "m.db")).history("alice", "s1", 1)[-1].text == "answer 4"  # persisted


def test_local_recall_is_per_actor_from_other_sessions() -> None:
    memory = LocalMemory()
    memory.record("alice", "s1", "I have a Router X200", "ok")
    memory.record("bob", "s9", "I have a thermostat", "ok")
    assert memory.recall("alice", "s2", "device") == [
        "In an earlier conversation the user said: I have a Router X200"
    ]
    assert memory.recall("alice", "s1", "device") == []


@pytest.fixture
def agentcore():
    client = MemoryClient(region_name="us-east-1")
    with Stubber(client.gmdp_client) as stubber:
        yield AgentCoreMemory(MEMORY_ID, "us-east-1", client=client), stubber


def test_agentcore_record_creates_one_event_per_exchange(agentcore) -> None:
    memory, stubber = agentcore
    stubber.add_response(
        "create_event",
        {
            "event": {
                "memoryId": MEMORY_ID,
                "actorId": "user-1",
                "sessionId": "s" * 33,
                "eventId": "e1",
                "eventTimestamp": datetime(2026, 11, 24, tzinfo=UTC),
                "payload": [],
            }
        },
        {
            "memoryId": MEMORY_ID,
            "actorId": "user-1",
            "sessionId": "s" * 33,
            "eventTimestamp": ANY,
            "payload": [
                {"conversational": {"content": {"text": "My X200 blinks red"}, "role": "USER"}},
                {"conversational": {"content": {"text": "That is a factory reset."}, "role": "ASSISTANT"}},
            ],
        },
    )
    memory.record("user-1", "s" * 33, "My X200 blinks red", "That is a factory reset.")
    stubber.assert_no_pending_responses()


def test_agentcore_history_is_ordered_by_time(agentcore) -> None:
    memory, stubber = agentcore

    def event(day: int, user: str, assistant: str) -> dict[str, object]:
        return {
            "memoryId": MEMORY_ID,
            "actorId": "user-1",
            "sessionId": "s" * 33,
            "eventId": f"e{day}",
            "eventTimestamp": datetime(2026, 11, day, tzinfo=UTC),
            "payload": [
                {"conversational": {"content": {"text": user}, "role": "USER"}},
                {"conversational": {"content": {"text": assistant}, "role": "ASSISTANT"}},
            ],
        }

    stubber.add_response(
        "list_events",
        {"events": [event(3, "third", "c"), event(1, "first", "a"), event(2, "second", "b")]},
        {
            "memoryId": MEMORY_ID,
            "actorId": "user-1",
            "sessionId": "s" * 33,
            "maxResults": 100,
            "includePayloads": True,
        },
    )
    history = memory.history("user-1", "s" * 33, turns=2)
    assert [t.text for t in history] == ["second", "b", "third", "c"]


def test_agentcore_recall_searches_the_actor_namespace(agentcore) -> None:
    memory, stubber = agentcore
    stubber.add_response(
        "retrieve_memory_records",
        {
            "memoryRecordSummaries": [
                {
                    "memoryRecordId": "mem-" + "a" * 40,
                    "content": {"text": "The user owns a Mesh M3."},
                    "memoryStrategyId": "facts",
                    "namespaces": ["/actors/user-1/facts/"],
                    "createdAt": datetime(2026, 11, 1, tzinfo=UTC),
                }
            ]
        },
        {
            "memoryId": MEMORY_ID,
            "namespacePath": "/actors/user-1/",
            "searchCriteria": {"searchQuery": "which device", "topK": 5},
        },
    )
    assert memory.recall("user-1", "s" * 33, "which device") == ["The user owns a Mesh M3."]

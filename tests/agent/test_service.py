"""The turn engine with a scripted in-process model: tool loop, guardrails, memory, metadata, errors."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import openai
import pytest

from agent.errors import ApiError
from agent.identity import Caller
from agent.payload import Invocation
from agent.tool_client import StaticTools
from local_stack.scripted_strands import Boom, Call, Say

SESSION = "s-" + "a" * 32
CALLER = Caller("alice")


def turn(service: Any, prompt: str, session: str = SESSION, caller: Caller = CALLER) -> dict[str, Any]:
    return asyncio.run(service.run_turn(Invocation(prompt, session, False), caller))


def events(service: Any, prompt: str, session: str = SESSION) -> list[dict[str, Any]]:
    async def collect() -> list[dict[str, Any]]:
        return [e async for e in service.stream_turn(Invocation(prompt, session, True), CALLER)]

    return asyncio.run(collect())


def test_tool_loop_answers_with_citations_and_tool_metadata(make_service, model):
    model.enqueue(
        Call("search_knowledge_base", {"query": "reset router"}),
        Say("Hold RESET for 10 s [Router X200 User Manual, p. 6]."),
    )
    result = turn(make_service(), "How do I reset my router?")
    assert result["answer"] == "Hold RESET for 10 s [Router X200 User Manual, p. 6]."
    meta = result["metadata"]
    assert [t["name"] for t in meta["tools"]] == ["search_knowledge_base"]
    assert meta["tools"][0]["status"] == "success" and meta["tools"][0]["arguments"] == {
        "query": "reset router"
    }
    assert meta["tools"][0]["duration_ms"] >= 0
    assert meta["citations"][0] == {
        "title": "Router X200 User Manual",
        "uri": "corpus/router-x200-user-manual.pdf",
        "page": 6,
        "score": 0.66,
        "text": "Hold the recessed RESET button for 10 seconds until the Status ring blinks red.",
        "cited": True,
    }
    assert [c["page"] for c in meta["citations"]] == [6, 3]
    assert model.calls == 2
    # the second model call saw the tool result
    assert "toolResult" in str(model.requests[1].messages[-1])


def test_metadata_carries_model_usage_session_latency_and_guardrail(make_service, model):
    model.enqueue(Say("Hello! How can I help?"))
    meta = turn(make_service(), "Hi")["metadata"]
    assert meta["model"] == "claude-sonnet"
    assert meta["session_id"] == SESSION
    assert meta["usage"] == {"input_tokens": 11, "output_tokens": 7, "total_tokens": 18}
    assert meta["guardrail"] == {"action": "NONE", "stage": None, "message": None}
    assert meta["trace_id"] == ""  # tracing off
    assert meta["latency_ms"] > 0
    assert meta["tools"] == [] and meta["citations"] == []


def test_tool_error_is_reported_with_its_message(make_service, model):
    model.enqueue(
        Call("create_ticket", {"email": "nope", "subject": "x", "description": "y"}),
        Say("That email looks wrong."),
    )
    meta = turn(make_service(), "open a ticket")["metadata"]
    assert meta["tools"][0]["status"] == "error"
    assert "email is not valid" in meta["tools"][0]["error"]


def test_blocked_input_makes_no_model_call(make_service, model):
    result = turn(make_service(), "Which stocks should I buy with my savings?")
    assert model.calls == 0
    assert result["metadata"]["guardrail"]["action"] == "BLOCKED"
    assert result["metadata"]["guardrail"]["stage"] == "input"
    assert result["answer"] == result["metadata"]["guardrail"]["message"]
    assert "can't help" in result["answer"]


def test_blocked_output_replaces_the_answer(make_service, model):
    model.enqueue(Say("You should buy bitcoin and stocks now, it is a good time to invest."))
    result = turn(make_service(), "What do you think about the weather?")
    assert result["metadata"]["guardrail"]["action"] == "BLOCKED"
    assert result["metadata"]["guardrail"]["stage"] == "output"
    assert "bitcoin" not in result["answer"]


def test_phone_number_in_input_is_anonymized_before_the_model(make_service, model):
    model.enqueue(Say("Thanks, noted."))
    result = turn(make_service(), "Call me back at 415-555-0142 please")
    assert "415-555-0142" not in str(model.requests[0].messages)
    assert "{PHONE}" in str(model.requests[0].messages)
    assert result["metadata"]["guardrail"]["action"] == "ANONYMIZED"


def test_device_is_remembered_across_turns(make_service, model):
    service = make_service()
    model.enqueue(Say("Sorry to hear that. What happens?"), Say("Your Router X200 should be reset."))
    turn(service, "My Router X200 keeps dropping Wi-Fi")
    turn(service, "What device did I say I have?")
    second = model.requests[1].messages
    assert "My Router X200 keeps dropping Wi-Fi" in str(second[0])
    assert second[-1]["role"] == "user" and "What device" in str(second[-1])


def test_sessions_are_separate_but_long_term_recall_reaches_the_system_prompt(make_service, model):
    service = make_service()
    model.enqueue(Say("ok"), Say("ok"))
    turn(service, "I own a Mesh M3 system", session="s-" + "b" * 32)
    turn(service, "Hello again", session="s-" + "c" * 32)
    request = model.requests[1]
    assert "Mesh M3" not in str(request.messages)
    assert "Mesh M3" in (request.system_prompt or "")


def test_memory_is_per_actor(make_service, model):
    service = make_service()
    model.enqueue(Say("ok"), Say("ok"))
    turn(service, "My thermostat is a T1", caller=Caller("alice"))
    turn(service, "What do I own?", caller=Caller("bob"))
    assert "T1" not in str(model.requests[1].messages) + (model.requests[1].system_prompt or "")


def test_streaming_emits_tool_events_text_and_done(make_service, model):
    model.enqueue(
        Call("search_knowledge_base", {"query": "reset"}),
        Say(
            "Hold the RESET button for ten seconds. The ring blinks red while it resets. Then wait three minutes.",
            chunk_chars=5,
        ),
    )
    stream = events(make_service(stream_flush_chars=20), "reset?")
    types = [e["type"] for e in stream]
    assert types[0] == "tool_start" and types[1] == "tool_end"
    assert types[-1] == "done"
    texts = [e["delta"] for e in stream if e["type"] == "text"]
    assert len(texts) >= 2  # flushed at sentence boundaries, not all at once
    assert "".join(texts) == stream[-1]["answer"]
    assert stream[1]["status"] == "success"


def test_model_failure_is_model_unavailable(make_service, model):
    request = httpx.Request("POST", "http://gateway/v1/chat/completions")
    model.enqueue(Boom(openai.APIConnectionError(request=request)))
    with pytest.raises(ApiError) as caught:
        turn(make_service(), "hello")
    assert caught.value.status == 502 and caught.value.code == "model_unavailable"


def test_internal_failure_is_a_clear_500(make_service, model):
    model.enqueue(Boom(KeyError("boom")))
    stream = events(make_service(), "hello")
    assert stream[-1] == {
        "type": "error",
        "code": "internal_error",
        "message": "the agent failed to answer; please try again",
        "trace_id": "",
    }


def test_no_tools_tells_the_model(make_service, model):
    model.enqueue(Say("I cannot look that up right now."))
    turn(make_service(tools=StaticTools([])), "reset my router")
    assert "temporarily unavailable" in (model.requests[0].system_prompt or "")
    assert model.requests[0].tool_names == []


def test_citations_keep_the_best_score_and_all_passages_per_page_cap_text_and_mark_what_the_answer_names(
    make_service, model
):
    from strands import tool

    long_text = "x" * 2500

    @tool
    def search_knowledge_base(query: str) -> str:
        """Search.

        Args:
            query: What to look for.
        """
        import json

        return json.dumps(
            {
                "results": [
                    {
                        "title": "Mesh M5 Guide",
                        "uri": "s3://kb/docs/mesh-m5-guide.pdf",
                        "page": 2,
                        "score": 0.3,
                        "text": "low",
                    },
                    {
                        "title": "Mesh M5 Guide",
                        "uri": "s3://kb/docs/mesh-m5-guide.pdf",
                        "page": 2,
                        "score": 0.9,
                        "text": "high",
                    },
                    {
                        "title": "Thermostat T1 FAQ",
                        "uri": "s3://kb/docs/t1-faq.md?v=2",
                        "score": 0.5,
                        "text": long_text,
                    },
                    {
                        "title": "Warranty Policy",
                        "uri": "s3://kb/docs/warranty.pdf",
                        "page": 1,
                        "score": 0.7,
                        "text": "two years",
                    },
                ]
            }
        )

    model.enqueue(
        Call("search_knowledge_base", {"query": "q"}),
        Say("Per the mesh m5 guide [MESH M5 GUIDE, p. 2] and T1-FAQ.MD, it works."),
    )
    citations = turn(make_service(tools=StaticTools([search_knowledge_base])), "q")["metadata"]["citations"]
    assert [(c["title"], c["page"], c["score"], c["cited"]) for c in citations] == [
        ("Mesh M5 Guide", 2, 0.9, True),  # title, case-insensitive
        ("Warranty Policy", 1, 0.7, False),
        ("Thermostat T1 FAQ", None, 0.5, True),  # file name, case-insensitive, query ignored
    ]
    assert citations[0]["text"] == "high\n\nlow"  # both passages of the page, best first
    assert citations[2]["text"] == "x" * 2000

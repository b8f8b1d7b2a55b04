"""Prompt building (agent/prompting.py): the system prompt's rules, tool availability and recalled
facts, and the conversation replayed from memory; and that a real turn sends exactly these."""

from __future__ import annotations

import asyncio

from agent.identity import Caller
from agent.memory import Turn
from agent.payload import Invocation
from agent.prompting import MEMORY_HEADER, NO_TOOLS_NOTE, SYSTEM_PROMPT, conversation, system_prompt
from agent.tool_client import StaticTools
from local_stack.scripted_strands import Say


def test_the_base_prompt_states_the_citation_ticket_and_tool_rules():
    assert SYSTEM_PROMPT.startswith("You are the customer-service assistant of Nimbus Networks")
    assert (
        "call search_knowledge_base and cite every passage you use as [Document title, p. N]" in SYSTEM_PROMPT
    )
    assert "(omit the page when there is none)" in SYSTEM_PROMPT
    assert (
        "collect the user's contact email and a description of the problem; never invent them"
        in SYSTEM_PROMPT
    )
    assert "call create_ticket and give the user the ticket id" in SYSTEM_PROMPT
    assert "you have no web_search tool, say that web search is not available" in SYSTEM_PROMPT
    assert "Never give financial or investment advice." in SYSTEM_PROMPT


def test_with_tools_and_nothing_recalled_the_prompt_is_the_base_prompt():
    assert system_prompt(tools_available=True, facts=[]) == SYSTEM_PROMPT


def test_without_tools_the_model_is_told_to_say_so():
    prompt = system_prompt(tools_available=False, facts=[])
    assert prompt == SYSTEM_PROMPT + NO_TOOLS_NOTE
    assert NO_TOOLS_NOTE == (
        "\n- Your tools are temporarily unavailable: say that you cannot look things up or manage tickets right now."
    )


def test_recalled_facts_follow_the_rules_one_line_each():
    prompt = system_prompt(tools_available=False, facts=["Owns a Mesh M3", "Prefers email"])
    assert prompt == (
        SYSTEM_PROMPT
        + NO_TOOLS_NOTE
        + "\n\nWhat you remember about this user from earlier conversations:\n- Owns a Mesh M3\n- Prefers email"
    )
    assert system_prompt(tools_available=True, facts=["x"]) == SYSTEM_PROMPT + MEMORY_HEADER + "- x"


def test_conversation_alternates_roles_and_drops_an_unanswered_user_turn():
    history = [
        Turn("user", "hi"),
        Turn("user", "my router is an X200"),
        Turn("assistant", "hello"),
        Turn("assistant", "how can I help?"),
        Turn("user", "unanswered"),
    ]
    assert conversation(history) == [
        {"role": "user", "content": [{"text": "hi"}, {"text": "my router is an X200"}]},
        {"role": "assistant", "content": [{"text": "hello"}, {"text": "how can I help?"}]},
    ]
    assert conversation([]) == []
    assert conversation([Turn("user", "only")]) == []
    assert conversation([Turn("user", "q"), Turn("assistant", "a")]) == [
        {"role": "user", "content": [{"text": "q"}]},
        {"role": "assistant", "content": [{"text": "a"}]},
    ]


def test_a_turn_sends_the_built_prompt_history_and_tools(make_service, model):
    service = make_service()
    session, other = "s-" + "p" * 32, "s-" + "q" * 32
    caller = Caller("alice")

    def turn(prompt: str, session_id: str) -> None:
        asyncio.run(service.run_turn(Invocation(prompt, session_id, False), caller))

    model.enqueue(Say("Noted."), Say("Sure."), Say("Hi again."))
    turn("I own a Thermostat T1", other)
    turn("first question", session)
    turn("second question", session)
    last = model.requests[-1]
    assert last.system_prompt == system_prompt(
        tools_available=True,
        facts=[
            "In an earlier conversation the user said: I own a Thermostat T1",
        ],
    )
    assert "- In an earlier conversation the user said: I own a Thermostat T1" in (last.system_prompt or "")
    assert last.messages[:2] == [
        {"role": "user", "content": [{"text": "first question"}]},
        {"role": "assistant", "content": [{"text": "Sure."}]},
    ]
    assert last.messages[-1]["content"][-1] == {"text": "second question"}
    assert last.tool_names == ["search_knowledge_base", "create_ticket"]


def test_a_turn_without_tools_sends_the_no_tools_prompt(make_service, model):
    model.enqueue(Say("I cannot look that up right now."))
    service = make_service(tools=StaticTools([]))
    asyncio.run(service.run_turn(Invocation("reset my router", "s-" + "r" * 32, False), Caller("bob")))
    assert model.requests[0].system_prompt == SYSTEM_PROMPT + NO_TOOLS_NOTE
    assert model.requests[0].tool_names == []

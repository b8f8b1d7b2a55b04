"""End-to-end scenarios over real processes (see conftest.py for the chain)."""

from __future__ import annotations

import json
import os
import sys
import time
import uuid
from typing import Any

import httpx
import pytest

from local_stack import components
from local_stack.processes import ManagedProcess, free_port
from local_stack.scripted_model import Failure, Text, ToolCall, ToolCalls
from local_stack.stack import hermetic_environ
from tests.e2e.conftest import ENVIRONMENT, INDEX_CACHE, LOCAL_USER, Stack, agent_launch, sse_events, warm
from tests.support.trace_contract import assert_turn_trace
from tools.tickets import SqliteTicketRepository

pytestmark = pytest.mark.slow


def session() -> str:
    return f"e2e-{uuid.uuid4().hex}"


def tool_payload(request: dict[str, Any]) -> dict[str, Any]:
    """The JSON the last tool returned, as the model sees it (OpenAI `tool` message)."""
    for message in reversed(request["messages"]):
        if message.get("role") == "tool":
            content = message["content"]
            if isinstance(content, list):
                content = "".join(part.get("text", "") for part in content if isinstance(part, dict))
            return dict(json.loads(content))
    raise AssertionError(f"no tool message in {request['messages']}")


def trace_of(stack: Stack, body: dict[str, Any]) -> str:
    trace_id = body["metadata"]["trace_id"]
    stack.langfuse.wait_for_spans(predicate=lambda s: s.trace_id == trace_id and s.is_root, timeout=10)
    return str(trace_id)


def test_greeting(stack: Stack) -> None:
    sid = session()
    stack.model.enqueue(Text("Hello! I'm the Nimbus support assistant. How can I help you today?"))
    response = stack.invoke("Hi there!", sid)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["answer"] == "Hello! I'm the Nimbus support assistant. How can I help you today?"
    meta = body["metadata"]
    assert meta["session_id"] == sid and meta["model"] == "claude-sonnet"
    assert meta["usage"]["total_tokens"] > 0 and meta["guardrail"]["action"] == "NONE"
    # the agent reached the model through LiteLLM with the catalog alias and its tool list
    request = stack.model.requests[-1]
    assert {t["function"]["name"] for t in request["tools"]} >= {"search_knowledge_base", "create_ticket"}
    trace_id = trace_of(stack, body)
    assert_turn_trace(
        stack.langfuse.spans,
        trace_id=trace_id,
        session_id=sid,
        user_id=LOCAL_USER,
        environment=ENVIRONMENT,
        tags=["support-agent", ENVIRONMENT],
        model="claude-sonnet",
        guardrail_stages=("input", "output"),
    )


def test_reset_router_is_answered_with_a_citation_and_page(stack: Stack) -> None:
    returned: list[dict[str, Any]] = []

    def cite_top_result(request: dict[str, Any]) -> Text:
        returned.extend(tool_payload(request)["results"])
        top = returned[0]
        return Text(f"Hold the recessed RESET button for 10 seconds [{top['title']}, p. {top['page']}].")

    stack.model.enqueue(ToolCalls([ToolCall("search_knowledge_base", {"query": "how to reset the router"})]))
    stack.model.responder = cite_top_result
    sid = session()
    response = stack.invoke("How do I reset my router?", sid)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["answer"] == "Hold the recessed RESET button for 10 seconds [Router X200 User Manual, p. 6]."
    meta = body["metadata"]
    assert [(t["name"], t["status"]) for t in meta["tools"]] == [("search_knowledge_base", "success")]
    top = meta["citations"][0]
    assert (top["title"], top["uri"], top["page"]) == (
        "Router X200 User Manual",
        "corpus/router-x200-user-manual.pdf",
        6,
    )
    assert 0.3 < top["score"] <= 1.0
    # the passages the index returned for this page travel with the citation, best first; the answer
    # names this document
    same_page = [r["text"] for r in returned if (r["uri"], r["page"]) == (top["uri"], top["page"])]
    assert top["text"] == "\n\n".join(same_page)[:2000] and "RESET" in top["text"]
    assert top["cited"] is True
    trace_id = trace_of(stack, body)
    turn = assert_turn_trace(
        stack.langfuse.spans,
        trace_id=trace_id,
        session_id=sid,
        user_id=LOCAL_USER,
        environment=ENVIRONMENT,
        model="claude-sonnet",
        tools=["search_knowledge_base"],
        retrieval=True,
        guardrail_stages=("input", "output"),
    )
    assert len(turn.generations) == 2 and turn.total_cost > 0


def test_ticket_is_created_after_collecting_email_and_description(stack: Stack) -> None:
    sid = session()
    stack.model.enqueue(Text("I can open a ticket. What is your email, and what is going wrong?"))
    first = stack.invoke("Please open a support ticket for me", sid)
    assert first.status_code == 200 and "email" in first.json()["answer"]

    arguments = {
        "email": "jane@example.com",
        "subject": "Router X200 reboots every hour",
        "description": "The X200 restarts every hour since the last firmware update; the power LED blinks white.",
        "device": "Router X200",
    }
    stack.model.enqueue(ToolCalls([ToolCall("create_ticket", arguments)]))
    stack.model.responder = lambda request: Text(
        f"Done: your ticket is {tool_payload(request)['ticket_id']}."
    )
    second = stack.invoke("jane@example.com - my X200 reboots every hour since the firmware update", sid)
    assert second.status_code == 200, second.text
    body = second.json()
    ticket_id = body["answer"].removeprefix("Done: your ticket is ").rstrip(".")
    # the model saw the first exchange again (memory) before creating the ticket
    assert "Please open a support ticket for me" in json.dumps(stack.model.requests[-2]["messages"])
    tool = body["metadata"]["tools"][0]
    assert tool["name"] == "create_ticket" and tool["status"] == "success" and tool["arguments"] == arguments
    stored = SqliteTicketRepository(stack.tickets_db).get(LOCAL_USER, ticket_id)
    assert stored is not None
    assert (stored["email"], stored["subject"], stored["status"]) == (
        "jane@example.com",
        arguments["subject"],
        "open",
    )


def test_investment_advice_is_refused_without_a_model_call(stack: Stack) -> None:
    sid = session()
    before = len(stack.model.requests)
    response = stack.invoke("Which stocks should I buy with my bonus?", sid)
    assert response.status_code == 200
    body = response.json()
    assert len(stack.model.requests) == before
    assert body["metadata"]["guardrail"] == {"action": "BLOCKED", "stage": "input", "message": body["answer"]}
    assert "can't help" in body["answer"]
    trace_id = trace_of(stack, body)
    assert_turn_trace(
        stack.langfuse.spans,
        trace_id=trace_id,
        session_id=sid,
        user_id=LOCAL_USER,
        environment=ENVIRONMENT,
        guardrail_stages=("input",),
        blocked_stage="input",
    )


def test_device_is_remembered_across_turns(stack: Stack) -> None:
    sid = session()

    def recall(request: dict[str, Any]) -> Text:
        history = json.dumps(request["messages"][:-1])
        device = "Mesh M3" if "Mesh M3" in history else "I don't know"
        return Text(f"You told me you have a {device}.")

    stack.model.enqueue(Text("A yellow light means a weak backhaul signal; move the node closer."))
    assert stack.invoke("My Mesh M3 node shows a yellow light", sid).status_code == 200
    stack.model.responder = recall
    response = stack.invoke("Which device did I say I have?", sid)
    assert response.json()["answer"] == "You told me you have a Mesh M3."
    # a new conversation has no short-term history, but long-term memory (per actor) reaches the
    # system prompt
    other = stack.invoke("Which device did I say I have?", session())
    assert other.status_code == 200
    system, *conversation = stack.model.requests[-1]["messages"]
    assert system["role"] == "system" and "My Mesh M3 node shows a yellow light" in json.dumps(system)
    assert "Mesh M3" not in json.dumps(conversation)


def test_streaming(stack: Stack) -> None:
    stack.model.enqueue(ToolCalls([ToolCall("search_knowledge_base", {"query": "solid amber power light"})]))
    stack.model.responder = lambda request: Text(
        "A solid amber Power LED means a firmware update is running. Do not unplug the router. "
        f"[{tool_payload(request)['results'][0]['title']}]",
        chunk_chars=7,
    )
    sid = session()
    with httpx.stream(
        "POST",
        f"{stack.agent_url}/invocations",
        json={"prompt": "What does a solid amber light mean?", "stream": True},
        headers={"X-Amzn-Bedrock-AgentCore-Runtime-Session-Id": sid},
        timeout=60,
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = sse_events(response.read().decode())
    kinds = [e["type"] for e in events]
    assert kinds[:2] == ["tool_start", "tool_end"] and kinds[-1] == "done"
    assert events[0] == {
        "type": "tool_start",
        "name": "search_knowledge_base",
        "arguments": {"query": "solid amber power light"},
    }
    assert events[1]["status"] == "success" and events[1]["duration_ms"] > 0
    deltas = [e["delta"] for e in events if e["type"] == "text"]
    assert len(deltas) >= 2 and "".join(deltas) == events[-1]["answer"]
    assert events[-1]["metadata"]["session_id"] == sid and events[-1]["metadata"]["citations"]


@pytest.mark.parametrize(
    ("content", "status", "code"),
    [
        (b"{oops", 400, "invalid_json"),
        (b'"just a string"', 400, "invalid_json"),
        (b"{}", 422, "invalid_payload"),
        (b'{"prompt": ""}', 422, "invalid_payload"),
        (b'{"prompt": "hi", "session_id": "too-short"}', 422, "invalid_payload"),
        (b'{"prompt": "hi", "actor": "admin"}', 422, "invalid_payload"),
        (json.dumps({"prompt": "a" * 65_600}).encode(), 413, "payload_too_large"),
    ],
)
def test_bad_payloads(stack: Stack, content: bytes, status: int, code: str) -> None:
    before = len(stack.model.requests)
    response = httpx.post(
        f"{stack.agent_url}/invocations",
        content=content,
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    assert response.status_code == status
    error = response.json()["error"]
    assert error["code"] == code and error["message"]
    assert len(stack.model.requests) == before


def test_model_unavailable_is_502(stack: Stack) -> None:
    stack.model.responder = lambda request: Failure(500, "upstream exploded")
    started = time.monotonic()
    response = stack.invoke("Hello?", session(), timeout=120)
    assert response.status_code == 502, response.text
    assert response.json()["error"]["code"] == "model_unavailable"
    assert "Traceback" not in response.text
    assert time.monotonic() - started < 60


def test_trace_backend_down_does_not_fail_or_slow_a_turn(stack: Stack) -> None:
    stack.model.enqueue(Text("Baseline answer."))
    started = time.monotonic()
    assert stack.invoke("baseline", session()).status_code == 200
    baseline = time.monotonic() - started
    stack.langfuse.fail_with(503)
    try:
        timings = []
        for index in range(3):
            stack.model.enqueue(Text(f"Still answering {index}."))
            started = time.monotonic()
            response = stack.invoke(f"are you there {index}?", session())
            timings.append(time.monotonic() - started)
            assert response.status_code == 200 and response.json()["answer"] == f"Still answering {index}."
            assert len(response.json()["metadata"]["trace_id"]) == 32
        assert max(timings) < baseline + 0.5, (baseline, timings)
    finally:
        stack.langfuse.recover()


def test_tool_server_down(stack: Stack, e2e_dir) -> None:
    port = free_port()
    dead_tools = f"http://127.0.0.1:{free_port()}/mcp"
    agent = agent_launch(
        gateway_url=stack.gateway_url, tools_url=dead_tools, port=port, langfuse_url=None, state=e2e_dir
    )
    with agent.process(e2e_dir / "agent-no-tools.log"):
        url = f"http://127.0.0.1:{port}"
        warm(url)
        stack.model.reset()
        stack.model.enqueue(Text("I can't look that up right now; please try again later."))
        response = httpx.post(f"{url}/invocations", json={"prompt": "How do I reset my router?"}, timeout=60)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["answer"] == "I can't look that up right now; please try again later."
        assert body["metadata"]["tools"] == [] and body["metadata"]["trace_id"] == ""
        request = stack.model.requests[-1]
        assert not request.get("tools")
        assert "temporarily unavailable" in json.dumps(request["messages"][0])


def test_agent_never_imports_litellm() -> None:
    import subprocess

    code = "import agent.main, agent.bootstrap, sys; print('litellm' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "False"


def test_tool_server_restart_is_survived(stack: Stack, e2e_dir) -> None:
    """The tool server goes away between turns and comes back: the failed call is reported, the turn
    still answers, and the next turn reconnects."""
    tools_port, agent_port = free_port(), free_port()

    def tool_server() -> ManagedProcess:
        launch = components.tool_server(
            tools_port,
            db=e2e_dir / "restart.db",
            environ=hermetic_environ(os.environ),
            index_cache=INDEX_CACHE,
            startup_timeout=90,
        )
        return launch.process(e2e_dir / "tools-restart.log")

    def turn(index: int) -> dict[str, Any]:
        stack.model.enqueue(ToolCalls([ToolCall("list_tickets", {"limit": 3})]), Text(f"Answer {index}."))
        response = httpx.post(
            f"http://127.0.0.1:{agent_port}/invocations", json={"prompt": f"my tickets? {index}"}, timeout=60
        )
        assert response.status_code == 200, response.text
        assert response.json()["answer"] == f"Answer {index}."
        return dict(response.json()["metadata"]["tools"][0])

    agent = agent_launch(
        gateway_url=stack.gateway_url,
        tools_url=f"http://127.0.0.1:{tools_port}/mcp",
        port=agent_port,
        langfuse_url=None,
        state=e2e_dir,
    )
    server = tool_server().start()
    try:
        with agent.process(e2e_dir / "agent-restart.log"):
            warm(f"http://127.0.0.1:{agent_port}")
            stack.model.reset()
            assert turn(1)["status"] == "success"
            server.stop()
            failed = turn(2)
            assert failed["status"] == "error" and "closed" in failed["error"].lower()
            server = tool_server().start()
            assert turn(3)["status"] == "success"
    finally:
        server.stop()

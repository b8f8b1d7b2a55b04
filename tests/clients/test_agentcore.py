"""clients.agentcore against recorded, contract-conformant answers replayed on loopback."""

from __future__ import annotations

from urllib.parse import unquote

import pytest

from clients.agentcore import (
    SESSION_HEADER,
    AgentClient,
    AgentError,
    AgentTarget,
    AgentUnauthorized,
    AgentUnreachable,
    Done,
    InvalidPrompt,
    ProtocolError,
    TextDelta,
    ToolEnd,
    ToolStart,
    TurnMetadata,
    iter_sse_data,
    new_session_id,
    parse_event,
)
from tests.clients.standins import Recorded, ReplayAgent

ARN = "arn:aws:bedrock-agentcore:eu-west-1:123456789012:runtime/aaf_agent-AbC123"


@pytest.fixture(scope="module")
def replay():
    with ReplayAgent() as server:
        yield server


@pytest.fixture
def agent(replay):
    replay.queue.clear()
    replay.requests.clear()
    return replay


@pytest.fixture
def client(agent):
    return AgentClient(AgentTarget.local(agent.url))


# --- SSE parsing --------------------------------------------------------------------------------


def test_sse_events_are_split_on_blank_lines_and_comments_skipped():
    lines = [": ping", "", 'data: {"a": 1}', "", "event: x", 'data:{"b": 2}', "", ""]
    assert list(iter_sse_data(lines)) == ['{"a": 1}', '{"b": 2}']


def test_sse_multi_line_data_is_joined_and_crlf_tolerated():
    assert list(iter_sse_data(["data: line1\r\n", "data: line2\r\n", "\r\n"])) == ["line1\nline2"]


def test_sse_last_event_without_blank_line_is_delivered():
    assert list(iter_sse_data(["data: tail"])) == ["tail"]


@pytest.mark.parametrize("payload", ["not json", "[1, 2]", '{"delta": "x"}', '{"type": 3}'])
def test_malformed_events_are_protocol_errors(payload):
    with pytest.raises(ProtocolError):
        parse_event(payload)


@pytest.mark.parametrize("payload", ['{"type": "heartbeat", "elapsed_ms": 10000}', '{"type": "mystery"}'])
def test_heartbeats_and_newer_event_types_are_ignored(payload):
    """docs/agent-api.md: the agent streams `heartbeat` while it waits; clients ignore unknown types."""
    assert parse_event(payload) is None


def test_error_event_raises_with_code_and_trace():
    with pytest.raises(AgentError) as caught:
        parse_event('{"type": "error", "code": "model_unavailable", "message": "down", "trace_id": "abc"}')
    assert (caught.value.code, caught.value.trace_id) == ("model_unavailable", "abc")


def test_citation_text_and_cited_are_read_and_default_when_absent():
    metadata = TurnMetadata.parse(
        {
            "citations": [
                {
                    "title": "A",
                    "uri": "s3://b/a.pdf",
                    "page": 1,
                    "score": 0.9,
                    "text": "passage",
                    "cited": True,
                },
                {"title": "B", "uri": "s3://b/b.pdf"},
            ]
        }
    )
    assert [(c.text, c.cited) for c in metadata.citations] == [("passage", True), (None, False)]


def test_metadata_with_wrong_shapes_is_a_protocol_error():
    with pytest.raises(ProtocolError, match="malformed"):
        TurnMetadata.parse({"citations": [{"page": "three"}]})


# --- targets ------------------------------------------------------------------------------------


def test_agentcore_url_encodes_the_runtime_arn():
    target = AgentTarget.agentcore(ARN)
    prefix = "https://bedrock-agentcore.eu-west-1.amazonaws.com/runtimes/"
    assert target.invocations_url.startswith(prefix)
    encoded = target.invocations_url[len(prefix) :].split("/invocations")[0]
    assert "/" not in encoded and ":" not in encoded
    assert unquote(encoded) == ARN
    assert target.invocations_url.endswith("/invocations?qualifier=DEFAULT")


def test_agentcore_region_can_differ_from_default():
    assert "us-east-1" in AgentTarget.agentcore(ARN, "us-east-1").invocations_url


@pytest.mark.parametrize("arn", ["", "arn:aws:lambda:eu-west-1:123456789012:function:x", "runtime/abc"])
def test_bad_runtime_arn_is_rejected(arn):
    with pytest.raises(ValueError, match="runtime ARN"):
        AgentTarget.agentcore(arn)


def test_session_ids_are_long_enough_for_agentcore():
    ids = {new_session_id() for _ in range(20)}
    assert len(ids) == 20
    assert all(len(i) >= 33 for i in ids)


# --- streaming turns ----------------------------------------------------------------------------


def test_stream_yields_tools_text_and_done_in_order(agent, client):
    agent.enqueue(Recorded.recording("answer_with_citation.sse"))
    events = list(client.stream("How do I reset my router?", new_session_id()))
    kinds = [type(e) for e in events]
    assert kinds[:2] == [ToolStart, ToolEnd]
    assert kinds[-1] is Done
    assert "".join(e.delta for e in events if isinstance(e, TextDelta)) == events[-1].answer
    metadata = events[-1].metadata
    assert [(c.page, c.cited) for c in metadata.citations] == [(7, False), (3, True)]
    assert metadata.citations[1].text is not None and metadata.citations[1].text.startswith("To restore")
    assert metadata.tools[0].arguments == {"query": "reset router x200"}
    assert metadata.trace_id == "4bf92f3577b34da6a3ce929d0e0e4736"


def test_stream_skips_heartbeats_and_still_completes(agent, client):
    """A turn that waited (the agent streams `heartbeat` after 10 s of silence) reads like any other."""
    agent.enqueue(Recorded.recording("answer_with_heartbeat.sse"))
    events = list(client.stream("How do I reset my router?", new_session_id()))
    assert {type(e) for e in events} <= {ToolStart, ToolEnd, TextDelta, Done}
    assert isinstance(events[-1], Done)
    assert "".join(e.delta for e in events if isinstance(e, TextDelta)) == events[-1].answer


def test_request_carries_session_header_body_and_stream_flag(agent, client):
    agent.enqueue(Recorded.recording("answer_with_citation.sse"))
    session = new_session_id()
    list(client.stream("  reset?  ", session))
    request = agent.requests[-1]
    assert request["path"] == "/invocations"
    assert request["headers"][SESSION_HEADER.lower()] == session
    assert request["headers"]["accept"] == "text/event-stream"
    assert request["body"] == {"prompt": "reset?", "session_id": session, "stream": True}
    assert "authorization" not in request["headers"]


def test_bearer_token_is_sent_when_given(agent, client):
    agent.enqueue(Recorded.recording("answer_with_citation.sse"))
    list(client.stream("hi", new_session_id(), token="tok-123"))
    assert agent.requests[-1]["headers"]["authorization"] == "Bearer tok-123"


def test_token_provider_supplies_machine_tokens(agent):
    agent.enqueue(Recorded.recording("answer_with_citation.sse"))
    client = AgentClient(AgentTarget.local(agent.url), token_provider=lambda: "m2m-token")
    list(client.stream("hi", new_session_id()))
    assert agent.requests[-1]["headers"]["authorization"] == "Bearer m2m-token"


def test_error_event_after_partial_text_raises(agent, client):
    agent.enqueue(Recorded.recording("model_unavailable.sse"))
    received = []
    with pytest.raises(AgentError) as caught:
        for event in client.stream("hi", new_session_id()):
            received.append(event)
    assert received == [TextDelta("Let me")]
    assert caught.value.code == "model_unavailable"


def test_stream_cut_before_done_is_reported(agent, client):
    agent.enqueue(Recorded.recording("truncated.sse"))
    with pytest.raises(ProtocolError, match="ended before"):
        list(client.stream("hi", new_session_id()))


def test_json_answer_to_a_stream_request_is_accepted(agent, client):
    agent.enqueue(Recorded.recording("answer.json", content_type="application/json"))
    events = list(client.stream("ticket?", new_session_id()))
    assert isinstance(events[-1], Done)
    assert events[-1].metadata.tools[0].error == "ticket T-1001 not found"


def test_non_sse_content_type_is_a_protocol_error(agent, client):
    agent.enqueue(Recorded(b"<html>hi</html>", content_type="text/html"))
    with pytest.raises(ProtocolError, match="text/html"):
        list(client.stream("hi", new_session_id()))


# --- errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (422, "invalid_payload"),
        (413, "payload_too_large"),
        (502, "model_unavailable"),
        (500, "internal_error"),
    ],
)
def test_contract_errors_keep_code_message_and_trace(agent, client, status, code):
    agent.enqueue(Recorded.error(status, code, "explained", trace_id="t1"))
    with pytest.raises(AgentError) as caught:
        list(client.stream("hi", new_session_id()))
    assert (caught.value.code, caught.value.status, caught.value.message, caught.value.trace_id) == (
        code,
        status,
        "explained",
        "t1",
    )


def test_401_means_sign_in_again(agent, client):
    agent.enqueue(Recorded.error(401, "unauthorized", "token expired"))
    with pytest.raises(AgentUnauthorized):
        list(client.stream("hi", new_session_id()))


def test_agentcore_service_error_shape_is_understood(agent):
    body = b'{"message": "Invalid Bearer token"}'
    agent.enqueue(
        Recorded(
            body,
            status=403,
            content_type="application/json",
            headers=(("x-amzn-ErrorType", "AccessDeniedException:"),),
        )
    )
    client = AgentClient(AgentTarget.agentcore(ARN, endpoint_url=agent.url))
    with pytest.raises(AgentUnauthorized) as caught:
        list(client.stream("hi", new_session_id(), token="expired"))
    assert caught.value.code == "AccessDeniedException"
    assert agent.requests[-1]["path"].startswith("/runtimes/arn%3Aaws%3Abedrock-agentcore")


def test_agentcore_target_requires_a_token_before_sending(agent):
    client = AgentClient(AgentTarget.agentcore(ARN, endpoint_url=agent.url))
    with pytest.raises(AgentUnauthorized, match="sign in"):
        list(client.stream("hi", new_session_id()))
    assert agent.requests == []


def test_unreachable_agent_is_reported():
    client = AgentClient(AgentTarget.local("http://127.0.0.1:9"))
    with pytest.raises(AgentUnreachable, match="cannot reach"):
        list(client.stream("hi", new_session_id()))


@pytest.mark.parametrize(("prompt", "rule"), [("   ", "empty"), ("x" * 8001, "limit is 8000")])
def test_bad_prompts_are_rejected_before_sending(agent, client, prompt, rule):
    with pytest.raises(InvalidPrompt, match=rule):
        list(client.stream(prompt, new_session_id()))
    assert agent.requests == []


def test_bad_session_id_is_rejected_before_sending(agent, client):
    with pytest.raises(InvalidPrompt, match="session_id"):
        list(client.stream("hi", "too-short"))


def test_invoke_returns_answer_and_metadata(agent, client):
    agent.enqueue(Recorded.recording("answer.json", content_type="application/json"))
    reply = client.invoke("ticket?", new_session_id())
    assert reply.answer == "I could not find ticket T-1001."
    assert agent.requests[-1]["body"]["stream"] is False


def test_machine_token_failures_become_agent_errors(agent):
    from clients.oauth import ClientCredentialsTokenSource, OAuthClient, OAuthClientConfig
    from tests.clients.standins import CognitoStandIn

    with CognitoStandIn() as idp:
        wrong = OAuthClientConfig.from_token_url(f"{idp.url}/oauth2/token", "m2m-client", "wrong-secret")
        client = AgentClient(
            AgentTarget.local(agent.url),
            token_provider=ClientCredentialsTokenSource(OAuthClient(wrong)).token,
        )
        with pytest.raises(AgentUnauthorized, match="refused"):
            list(client.stream("hi", new_session_id()))
    down = OAuthClientConfig.from_token_url("http://127.0.0.1:9/oauth2/token", "m2m-client", "s")
    client = AgentClient(
        AgentTarget.local(agent.url), token_provider=ClientCredentialsTokenSource(OAuthClient(down)).token
    )
    with pytest.raises(AgentUnreachable, match="access token"):
        client.invoke("hi", new_session_id())
    assert agent.requests == []

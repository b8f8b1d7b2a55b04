"""The chat page under streamlit.testing.v1.AppTest: rendering, session state and error paths."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from clients.agentcore import SESSION_HEADER
from tests.clients.standins import Recorded
from tests.frontend.conftest import APP

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


def _ask(app: AppTest, question: str) -> AppTest:
    app.chat_input[0].set_value(question).run()
    assert not app.exception, [e.value for e in app.exception]
    return app


def _markdown(app: AppTest) -> str:
    return "\n".join(m.value for m in app.markdown)


def _captions(app: AppTest) -> str:
    return "\n".join(c.value for c in app.caption)


# --- local mode: rendering and state ------------------------------------------------------------


def test_first_render_offers_chat_and_a_long_session_id(local_app):
    local_app.run()
    assert not local_app.exception
    assert local_app.title[0].value == "Support assistant"
    assert len(local_app.chat_input) == 1
    assert len(local_app.session_state["session_id"]) >= 33
    assert local_app.button(key="new-conversation")


def test_answer_shows_text_citation_tools_model_tokens_and_trace(local_app, agent):
    agent.enqueue(Recorded.recording("answer_with_citation.sse"))
    _ask(local_app.run(), "How do I reset my router?")
    text = _markdown(local_app)
    assert "Hold the reset button for 10 seconds" in text
    assert "Router X200 Manual, p. 3" in text
    assert "search_knowledge_base" in text
    assert '"query": "reset router x200"' in local_app.code[0].value
    captions = _captions(local_app)
    assert "model `claude-sonnet`" in captions
    assert "812 in / 95 out tokens" in captions
    assert "1.8 s" in captions
    assert TRACE in captions
    assert [m.name for m in local_app.chat_message] == ["user", "assistant"]


def test_sources_the_answer_names_come_first(local_app, agent):
    agent.enqueue(Recorded.recording("answer_with_citation.sse"))  # the uncited source has the higher score
    _ask(local_app.run(), "How do I reset my router?")
    text = _markdown(local_app)
    order = [
        text.index(part) for part in ("**Sources**", "[Router X200 Manual, p. 3](", "**Also retrieved**")
    ]
    assert order == sorted(order) and text.index("Mesh M5 Setup Guide, p. 7") > order[-1]


def test_uncited_sources_are_listed_as_sources_when_none_is_named(local_app, agent):
    body = (Path(__file__).parents[1] / "clients" / "recordings" / "answer_with_citation.sse").read_text()
    agent.enqueue(Recorded(body.replace(" [Router X200 Manual, p. 3]", "").encode()))  # the answer cites none
    _ask(local_app.run(), "reset?")
    text = _markdown(local_app)
    assert "**Also retrieved**" not in text
    assert (
        text.index("**Sources**")
        < text.index("Mesh M5 Setup Guide, p. 7")
        < text.index("[Router X200 Manual, p. 3](")
    )


def test_session_id_is_sent_and_kept_across_turns(local_app, agent):
    agent.enqueue(
        Recorded.recording("answer_with_citation.sse"), Recorded.recording("answer_with_citation.sse")
    )
    local_app.run()
    session = local_app.session_state["session_id"]
    _ask(local_app, "first")
    _ask(local_app, "second")
    assert [r["headers"][SESSION_HEADER.lower()] for r in agent.requests] == [session, session]
    assert [r["body"]["prompt"] for r in agent.requests] == ["first", "second"]
    assert len(local_app.chat_message) == 4


def test_new_conversation_starts_a_new_session_and_clears_history(local_app, agent):
    agent.enqueue(Recorded.recording("answer_with_citation.sse"))
    _ask(local_app.run(), "first")
    old = local_app.session_state["session_id"]
    local_app.button(key="new-conversation").click().run()
    assert local_app.session_state["session_id"] != old
    assert len(local_app.chat_message) == 0


def test_guardrail_block_is_explained(local_app, agent):
    agent.enqueue(Recorded.recording("guardrail_blocked.sse"))
    _ask(local_app.run(), "Which stocks should I buy?")
    assert "The guardrail blocked your message." in [w.value for w in local_app.warning]
    assert "I can help with our products" in _markdown(local_app)


def test_model_failure_is_explained_with_trace_and_partial_text_kept(local_app, agent):
    agent.enqueue(Recorded.recording("model_unavailable.sse"))
    _ask(local_app.run(), "hi")
    errors = [e.value for e in local_app.error]
    assert any(
        "language model is unavailable" in e and "7d1e0a8c5b2f4e6a9c3d1b0f2e4a6c8d" in e for e in errors
    )
    assert "Let me" in _markdown(local_app)


def test_unreachable_agent_is_explained(chat_env):
    chat_env.setenv("AGENT_URL", "http://127.0.0.1:9")
    app = _ask(AppTest.from_file(APP, default_timeout=15).run(), "hi")
    (error,) = [e.value for e in app.error]
    assert "not reachable" in error and "make local" in error


def test_cut_stream_is_explained_not_crashed(local_app, agent):
    agent.enqueue(Recorded.recording("truncated.sse"))
    _ask(local_app.run(), "hi")
    assert any("could not be read" in e.value for e in local_app.error)


def test_invalid_payload_is_explained(local_app, agent):
    agent.enqueue(Recorded.error(422, "invalid_payload", "prompt: must be 1-8000 characters", trace_id=""))
    _ask(local_app.run(), "hi")
    assert any("rejected the message: prompt: must be 1-8000 characters" in e.value for e in local_app.error)


def test_overlong_prompt_is_not_sent(local_app, agent):
    _ask(local_app.run(), "x" * 8001)
    assert agent.requests == []
    assert any("limit is 8000" in e.value for e in local_app.error)


def test_bad_configuration_names_the_setting(chat_env):
    chat_env.setenv("CHAT_MODE", "cloud")
    app = AppTest.from_file(APP).run()
    assert "CHAT_MODE" in app.error[0].value
    assert not app.chat_input


def test_agentcore_mode_without_runtime_arn_names_the_setting(chat_env):
    chat_env.setenv("CHAT_MODE", "agentcore")
    app = AppTest.from_file(APP).run()
    assert "AGENT_RUNTIME_ARN is required" in app.error[0].value


# --- feedback -----------------------------------------------------------------------------------


def test_feedback_is_hidden_without_langfuse(local_app, agent):
    agent.enqueue(Recorded.recording("answer_with_citation.sse"))
    _ask(local_app.run(), "reset?")
    assert len(local_app.feedback) == 0
    assert "Feedback is off" in _captions(local_app)


@pytest.fixture
def feedback_app(local_app, chat_env, langfuse):
    chat_env.setenv("LANGFUSE_HOST", langfuse.url)
    chat_env.setenv("LANGFUSE_PUBLIC_KEY", "pk-lf-chat")
    chat_env.setenv("LANGFUSE_SECRET_KEY", "sk-lf-chat")
    return local_app


def test_thumbs_down_with_comment_becomes_a_score_on_the_trace(feedback_app, agent, langfuse):
    agent.enqueue(Recorded.recording("answer_with_citation.sse"))
    _ask(feedback_app.run(), "reset?")
    assert f"/trace/{TRACE}" in _captions(feedback_app)
    feedback_app.feedback[0].set_value(0).run()
    feedback_app.text_input(key="comment-1").input("The page number is wrong").run()
    feedback_app.button(key="send-feedback-1").click().run()
    (score,) = langfuse.wait_for_scores(1, name="user-feedback")
    assert (score["traceId"], score["value"], score["comment"]) == (TRACE, 0, "The page number is wrong")
    assert any("feedback (thumbs down) was recorded" in s.value for s in feedback_app.success)
    assert len(feedback_app.feedback) == 0  # replaced by the confirmation


def test_feedback_failure_is_explained(feedback_app, agent, langfuse):
    agent.enqueue(Recorded.recording("answer_with_citation.sse"))
    langfuse.fail_with(503, paths=["/api/public/scores"])
    try:
        _ask(feedback_app.run(), "reset?")
        feedback_app.feedback[0].set_value(1).run()
        feedback_app.button(key="send-feedback-1").click().run()
    finally:
        langfuse.recover()
    assert any("was not recorded" in e.value and "503" in e.value for e in feedback_app.error)
    assert len(feedback_app.feedback) == 1  # the user can try again


def test_relative_sources_link_under_the_configured_base_url(local_app, agent, chat_env, tmp_path):
    body = (Path(__file__).parents[1] / "clients" / "recordings" / "answer_with_citation.sse").read_text()
    body = body.replace("s3://aaf-docs/router-x200-manual.pdf", "corpus/router-x200-manual.pdf")
    agent.enqueue(Recorded(body.encode()))
    chat_env.setenv("CHAT_SOURCE_BASE_URL", "https://git.example.com/repo/blob/main/")
    _ask(local_app.run(), "reset?")
    assert (
        "[Router X200 Manual, p. 3](https://git.example.com/repo/blob/main/corpus/router-x200-manual.pdf#page=3)"
        in _markdown(local_app)
    )


def test_s3_sources_link_to_the_console(local_app, agent):
    agent.enqueue(Recorded.recording("answer_with_citation.sse"))
    _ask(local_app.run(), "reset?")
    assert "(https://console.aws.amazon.com/s3/object/aaf-docs?prefix=router-x200-manual.pdf)" in _markdown(
        local_app
    )


def test_unlinkable_sources_show_their_path(local_app, agent):
    body = (Path(__file__).parents[1] / "clients" / "recordings" / "answer_with_citation.sse").read_text()
    agent.enqueue(Recorded(body.replace("s3://aaf-docs/", "corpus/").encode()))
    _ask(local_app.run(), "reset?")
    assert "Router X200 Manual, p. 3 (`corpus/router-x200-manual.pdf`)" in _markdown(local_app)


def test_tool_activity_before_a_failure_stays_visible(local_app, agent):
    body = (Path(__file__).parents[1] / "clients" / "recordings" / "answer_with_citation.sse").read_text()
    events = body.split("\n\n")
    cut = "\n\n".join(events[:3]) + "\n\n"  # keep-alive, tool_start, tool_end; then the stream stops
    agent.enqueue(Recorded(cut.encode()))
    _ask(local_app.run(), "reset?")
    assert any("could not be read" in e.value for e in local_app.error)
    assert local_app.expander[0].label == "Tool activity"
    assert "`search_knowledge_base` done" in _markdown(local_app)


# --- what counts as cited, and the caption of a turn that made no model call ----------------------

RECORDINGS = Path(__file__).parents[1] / "clients" / "recordings"


def _recording_with(name: str, **metadata: object) -> Recorded:
    """A recording whose `done` metadata has some fields replaced (the rest as recorded)."""
    lines = []
    for line in (RECORDINGS / name).read_text().split("\n"):
        if line.startswith("data: ") and '"type": "done"' in line:
            event = json.loads(line[6:])
            event["metadata"].update(metadata)
            line = "data: " + json.dumps(event)
        lines.append(line)
    return Recorded("\n".join(lines).encode())


def test_another_page_of_a_cited_document_is_not_marked_cited(local_app, agent):
    # the answer cites the manual's p. 3; p. 5 of the same manual was retrieved too (and the agent's
    # document-level flag says cited); it belongs under "Also retrieved"
    manual = {"title": "Router X200 Manual", "uri": "s3://aaf-docs/router-x200-manual.pdf", "cited": True}
    citations = [
        {**manual, "page": 5, "score": 0.9, "text": "The LED colours."},
        {**manual, "page": 3, "score": 0.83, "text": "Hold RESET for 10 seconds."},
    ]
    agent.enqueue(_recording_with("answer_with_citation.sse", citations=citations))
    _ask(local_app.run(), "How do I reset my router?")
    text = _markdown(local_app)
    assert (
        text.index("**Sources**")
        < text.index("[Router X200 Manual, p. 3](")
        < text.index("**Also retrieved**")
    )
    assert text.index("**Also retrieved**") < text.index("[Router X200 Manual, p. 5](")


def test_a_blocked_prompt_shows_no_model_and_no_tokens(local_app, agent):
    # the agent reports its model alias even when the input guardrail stopped the turn before any call
    agent.enqueue(_recording_with("guardrail_blocked.sse", model="claude-sonnet"))
    _ask(local_app.run(), "Which stocks should I buy?")
    captions = _captions(local_app)
    assert "blocked by guardrail, no model call" in captions
    assert "claude-sonnet" not in captions and "0 in / 0 out tokens" not in captions
    assert "0af7651916cd43dd8448eb211c80319c" in captions and "0.0 s" in captions  # trace and latency stay


def test_an_answer_blocked_on_output_still_shows_the_model_and_tokens(local_app, agent):
    agent.enqueue(
        _recording_with(
            "guardrail_blocked.sse",
            model="claude-sonnet",
            guardrail={"action": "BLOCKED", "stage": "output", "message": "blocked"},
            usage={"input_tokens": 700, "output_tokens": 40, "total_tokens": 740},
        )
    )
    _ask(local_app.run(), "Tell me about ...")
    captions = _captions(local_app)
    assert "model `claude-sonnet`" in captions and "700 in / 40 out tokens" in captions
    assert "no model call" not in captions
    assert "The guardrail blocked the answer." in [w.value for w in local_app.warning]

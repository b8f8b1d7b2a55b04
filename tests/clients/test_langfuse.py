"""clients.langfuse: feedback scores reach a recorder of Langfuse's public API."""

from __future__ import annotations

import pytest

from clients.langfuse import FEEDBACK_SCORE, FeedbackClient, FeedbackError, LangfuseSettings
from local_stack.otlp_recorder import OtlpRecorder

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


@pytest.fixture(scope="module")
def langfuse():
    with OtlpRecorder(public_key="pk-lf-test", secret_key="sk-lf-test") as recorder:
        yield recorder


@pytest.fixture
def feedback(langfuse):
    langfuse.clear()
    return FeedbackClient(LangfuseSettings(langfuse.url, "pk-lf-test", "sk-lf-test"))


def test_thumbs_down_with_comment_is_a_score_on_the_trace(langfuse, feedback):
    score_id = feedback.send_feedback(TRACE, positive=False, comment="  wrong page  ", session_id="s" * 40)
    (score,) = langfuse.wait_for_scores(1, name=FEEDBACK_SCORE)
    assert score == {
        "id": score_id,
        "traceId": TRACE,
        "name": "user-feedback",
        "value": 0,
        "dataType": "BOOLEAN",
        "comment": "wrong page",
        "metadata": {"session_id": "s" * 40, "source": "chat"},
    }


def test_thumbs_up_is_value_one_and_authenticated(langfuse, feedback):
    feedback.send_feedback(TRACE, positive=True)
    (score,) = langfuse.wait_for_scores(1)
    assert score["value"] == 1
    assert "comment" not in score
    request = next(r for r in langfuse.requests if r.path == "/api/public/scores")
    assert request.basic_auth == ("pk-lf-test", "sk-lf-test")


def test_wrong_keys_are_reported(langfuse):
    client = FeedbackClient(LangfuseSettings(langfuse.url, "pk-lf-test", "wrong"))
    with pytest.raises(FeedbackError, match="HTTP 401"):
        client.send_feedback(TRACE, positive=True)


def test_unreachable_langfuse_is_reported():
    client = FeedbackClient(LangfuseSettings("http://127.0.0.1:9", "pk", "sk"))
    with pytest.raises(FeedbackError, match="not reachable"):
        client.send_feedback(TRACE, positive=True)


@pytest.mark.parametrize("trace_id", ["", "not-a-trace", TRACE.upper()])
def test_feedback_needs_a_trace_id(feedback, langfuse, trace_id):
    with pytest.raises(ValueError, match="trace id"):
        feedback.send_feedback(trace_id, positive=True)
    assert langfuse.scores == []


def test_overlong_comment_is_rejected(feedback):
    with pytest.raises(ValueError, match="limit is 2000"):
        feedback.send_feedback(TRACE, positive=False, comment="x" * 2001)


def test_trace_url_links_into_the_ui():
    settings = LangfuseSettings("https://langfuse.example.com/", "pk", "sk", project_id="p1")
    assert settings.trace_url(TRACE) == f"https://langfuse.example.com/project/p1/traces/{TRACE}"
    assert LangfuseSettings("http://lf", "pk", "sk").trace_url(TRACE) == f"http://lf/trace/{TRACE}"


def test_keys_are_required():
    with pytest.raises(ValueError, match="LANGFUSE_SECRET_KEY"):
        LangfuseSettings("http://lf", "pk", "")

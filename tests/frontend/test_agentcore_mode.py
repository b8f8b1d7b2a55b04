"""AgentCore mode under AppTest: managed-login sign-in (code + PKCE), bearer token, refresh, expiry."""

from __future__ import annotations

import re
import time
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
import requests
from moto import mock_aws
from streamlit.testing.v1 import AppTest

from clients.oauth import Tokens
from tests.clients.standins import Recorded
from tests.frontend.conftest import APP

ARN = "arn:aws:bedrock-agentcore:eu-west-1:123456789012:runtime/aaf_agent-AbC123"


@pytest.fixture
def app(chat_env, agent, idp):
    chat_env.setenv("CHAT_MODE", "agentcore")
    chat_env.setenv("AGENT_RUNTIME_ARN", ARN)
    chat_env.setenv("AGENTCORE_ENDPOINT_URL", agent.url)
    chat_env.setenv("COGNITO_DOMAIN_URL", idp.url)
    chat_env.setenv("COGNITO_CLIENT_ID", idp.public_client_id)
    chat_env.setenv("CHAT_PUBLIC_URL", "http://localhost:8501/")
    idp.requests.clear()
    return AppTest.from_file(APP, default_timeout=15)


def _params(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def _sign_in(app: AppTest, idp) -> AppTest:
    """What the browser does: follow the sign-in link, sign in at Cognito, come back with code and state."""
    app.run()
    callback = idp.authorize(_params(app.session_state["login_request"].url))
    for key, value in _params(callback).items():
        app.query_params[key] = value
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    return app


def test_signed_out_user_sees_a_pkce_sign_in_link_and_no_chat(app, idp):
    app.run()
    assert not app.chat_input
    link = next(m.value for m in app.markdown if "sign-in-link" in m.value)
    url = app.session_state["login_request"].url
    assert url.startswith(f"{idp.url}/oauth2/authorize?")
    assert _params(url)["code_challenge_method"] == "S256"
    assert url.replace("&", "&amp;") in link


def test_callback_signs_in_and_turns_carry_the_bearer_token(app, agent, idp):
    _sign_in(app, idp)
    assert len(app.chat_input) == 1
    assert "Signed in as alice@example.com" in "\n".join(c.value for c in app.caption)
    assert not app.query_params.get("code")
    agent.enqueue(Recorded.recording("answer_with_citation.sse"))
    app.chat_input[0].set_value("reset?").run()
    request = agent.requests[-1]
    token = app.session_state["tokens"].access_token
    assert request["headers"]["authorization"] == f"Bearer {token}"
    assert request["path"].startswith("/runtimes/arn%3Aaws%3Abedrock-agentcore%3Aeu-west-1")
    assert (
        request["headers"]["x-amzn-bedrock-agentcore-runtime-session-id"] == app.session_state["session_id"]
    )
    assert "Router X200 Manual, p. 3" in "\n".join(m.value for m in app.markdown)


def test_forged_state_is_rejected(app, idp):
    app.run()
    callback = _params(idp.authorize(_params(app.session_state["login_request"].url)))
    app.query_params["code"] = callback["code"]
    app.query_params["state"] = "forged-state"
    app.run()
    assert any("did not complete" in e.value for e in app.error)
    assert "tokens" not in app.session_state
    assert not app.chat_input


def test_cognito_error_callback_is_explained(app):
    app.query_params["error"] = "access_denied"
    app.query_params["error_description"] = "User is disabled."
    app.run()
    assert "Sign-in failed: User is disabled." in app.error[0].value


def test_token_about_to_expire_is_refreshed_before_the_turn(app, agent, idp):
    _sign_in(app, idp)
    tokens = app.session_state["tokens"]
    app.session_state["tokens"] = Tokens(
        tokens.access_token, time.time() + 10, refresh_token=tokens.refresh_token
    )
    agent.enqueue(Recorded.recording("answer_with_citation.sse"))
    app.chat_input[0].set_value("reset?").run()
    assert [r["form"]["grant_type"] for r in idp.requests if r["path"] == "/oauth2/token"] == [
        "authorization_code",
        "refresh_token",
    ]
    assert agent.requests[-1]["headers"]["authorization"] != f"Bearer {tokens.access_token}"


def test_expired_refresh_token_asks_to_sign_in_again(app, agent, idp):
    _sign_in(app, idp)
    tokens = app.session_state["tokens"]
    app.session_state["tokens"] = Tokens(
        tokens.access_token, time.time() - 5, refresh_token=tokens.refresh_token
    )
    idp.expire_refresh_tokens()
    app.chat_input[0].set_value("reset?").run()
    assert agent.requests == []
    assert any("session has expired" in w.value for w in app.warning)
    assert "tokens" not in app.session_state


def test_runtime_rejecting_the_token_asks_to_sign_in_again(app, agent, idp):
    _sign_in(app, idp)
    agent.enqueue(
        Recorded(
            b'{"message": "Invalid Bearer token"}',
            status=403,
            content_type="application/json",
            headers=(("x-amzn-ErrorType", "AccessDeniedException:"),),
        )
    )
    app.chat_input[0].set_value("reset?").run()
    assert any("session has expired. Please sign in again." in w.value for w in app.warning)
    assert "tokens" not in app.session_state


def test_sign_out_revokes_and_sends_the_browser_to_cognito_logout(app, idp):
    _sign_in(app, idp)
    refresh = app.session_state["tokens"].refresh_token
    app.button(key="sign-out").click().run()
    assert refresh in idp.revoked
    assert "tokens" not in app.session_state
    assert any(f"{idp.url}/logout?client_id=" in m.value for m in app.markdown)


# --- document links: pre-signed GET URLs made with the chat's own credentials (moto S3) -----------


@pytest.fixture
def docs_bucket(chat_env):
    from frontend.ui import _cached_linker

    _cached_linker.clear()  # one linker per process: start from this test's credentials
    chat_env.setenv("DOCS_BUCKET_NAME", "aaf-docs")
    chat_env.setenv("AWS_ACCESS_KEY_ID", "testing")
    chat_env.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    chat_env.delenv("AWS_SESSION_TOKEN", raising=False)
    chat_env.delenv("AWS_PROFILE", raising=False)
    with mock_aws():
        s3 = boto3.client("s3", region_name="eu-west-1")
        s3.create_bucket(Bucket="aaf-docs", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        s3.put_object(Bucket="aaf-docs", Key="router-x200-manual.pdf", Body=b"%PDF-1.7 router")
        yield s3
    _cached_linker.clear()


def test_cited_documents_link_to_a_presigned_url(app, agent, idp, docs_bucket):
    _sign_in(app, idp)
    agent.enqueue(Recorded.recording("answer_with_citation.sse"))
    app.chat_input[0].set_value("reset?").run()
    text = "\n".join(m.value for m in app.markdown)
    link = re.search(r"\[Router X200 Manual, p\. 3\]\((?P<url>[^)]+)\)", text)
    assert link, text
    url = link["url"]
    assert url.startswith("https://aaf-docs.s3.eu-west-1.amazonaws.com/router-x200-manual.pdf?")
    assert "X-Amz-Algorithm=AWS4-HMAC-SHA256" in url and "X-Amz-Expires=900" in url
    assert url.endswith("#page=3")  # the PDF opens at the cited page
    assert "console.aws.amazon.com" not in text.split("**Also retrieved**")[0]
    response = requests.get(url, timeout=10)
    assert (response.status_code, response.content) == (200, b"%PDF-1.7 router")


def test_without_a_docs_bucket_s3_sources_keep_the_console_link(app, agent, idp):
    _sign_in(app, idp)
    agent.enqueue(Recorded.recording("answer_with_citation.sse"))
    app.chat_input[0].set_value("reset?").run()
    text = "\n".join(m.value for m in app.markdown)
    assert "(https://console.aws.amazon.com/s3/object/aaf-docs?prefix=router-x200-manual.pdf)" in text


def test_an_invalid_docs_bucket_name_is_named(chat_env):
    from frontend.settings import SettingsError, load_settings

    env = {"CHAT_MODE": "agentcore", "AGENT_RUNTIME_ARN": ARN, "COGNITO_DOMAIN_URL": "https://x.example",
           "COGNITO_CLIENT_ID": "c", "DOCS_BUCKET_NAME": "Not_A_Bucket"}  # fmt: skip
    with pytest.raises(SettingsError, match="DOCS_BUCKET_NAME must be an S3 bucket name"):
        load_settings(env)
    settings = load_settings({**env, "DOCS_BUCKET_NAME": "aaf-docs"})
    assert (settings.docs_bucket, settings.region) == ("aaf-docs", "eu-west-1")  # region from the ARN

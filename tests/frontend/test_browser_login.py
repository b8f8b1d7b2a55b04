"""AgentCore mode in a real browser: the managed-login round trip with PKCE, a turn with the bearer
token, and sign-out. Cognito's OAuth endpoints are a loopback stand-in (AWS cannot run here) and the
runtime is a replay of recorded contract answers; the chat, the browser, cookies and redirects are real.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import jwt
import pytest

from local_stack.processes import ManagedProcess, free_port
from tests.clients.standins import CognitoStandIn, Recorded, ReplayAgent

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
ARN = "arn:aws:bedrock-agentcore:eu-west-1:123456789012:runtime/aaf_agent-AbC123"


def test_sign_in_ask_and_sign_out(tmp_path: Path, chromium: str) -> None:
    from playwright.sync_api import expect, sync_playwright

    port = free_port()
    chat_url = f"http://localhost:{port}/"
    clean = {
        k: v for k, v in os.environ.items() if not k.startswith(("LANGFUSE_", "CHAT_", "AGENT_", "COGNITO_"))
    }
    with CognitoStandIn(redirect_uris=(chat_url,)) as idp, ReplayAgent() as runtime:
        runtime.enqueue(Recorded.recording("answer_with_citation.sse"))
        env = {
            **clean,
            "CHAT_MODE": "agentcore",
            "AGENT_RUNTIME_ARN": ARN,
            "AGENTCORE_ENDPOINT_URL": runtime.url,
            "COGNITO_DOMAIN_URL": idp.url,
            "COGNITO_CLIENT_ID": idp.public_client_id,
            "CHAT_PUBLIC_URL": chat_url,
        }
        argv = [
            sys.executable, "-m", "streamlit", "run", str(REPO / "frontend" / "app.py"),
            "--server.port", str(port), "--server.address", "127.0.0.1", "--server.headless", "true",
            "--browser.gatherUsageStats", "false", "--client.toolbarMode", "viewer",
        ]  # fmt: skip
        with (
            ManagedProcess(
                argv,
                health_url=f"{chat_url}_stcore/health",
                env=env,
                inherit_env=False,
                cwd=REPO,
                log_path=tmp_path / "chat.log",
                startup_timeout=60,
            ),
            sync_playwright() as playwright,
        ):
            browser = playwright.chromium.launch(
                executable_path=chromium,
                args=["--no-sandbox", "--disable-background-networking", "--disable-component-update"],
            )
            try:
                page = browser.new_page()
                page.goto(chat_url)
                page.get_by_text("Sign in", exact=True).click()  # -> stand-in authorize -> back with code
                expect(page.get_by_text("Signed in as alice@example.com")).to_be_visible(timeout=30_000)
                assert "code=" not in page.url  # the callback parameters are consumed and removed

                chat_input = page.get_by_test_id("stChatInputTextArea")
                chat_input.fill("How do I reset my router?")
                chat_input.press("Enter")
                expect(page.get_by_text("Router X200 Manual, p. 3").first).to_be_visible(timeout=30_000)
                ARTIFACTS.mkdir(exist_ok=True)
                page.screenshot(path=str(ARTIFACTS / "chat-agentcore-signed-in.png"), full_page=True)

                page.get_by_role("button", name="Sign out").click()
                expect(page.get_by_text("Sign in", exact=True)).to_be_visible(timeout=30_000)
            finally:
                browser.close()

        authorize = next(r for r in idp.requests if r["path"] == "/oauth2/authorize")
        assert authorize["params"]["code_challenge_method"] == "S256"
        exchange = next(
            r for r in idp.requests if r.get("form", {}).get("grant_type") == "authorization_code"
        )
        assert len(exchange["form"]["code_verifier"]) >= 43
        (invocation,) = runtime.requests
        assert invocation["path"].startswith("/runtimes/arn%3Aaws%3Abedrock-agentcore")
        token = invocation["headers"]["authorization"].removeprefix("Bearer ")
        claims = jwt.decode(token, idp.public_key(), algorithms=["RS256"], issuer=idp.issuer)
        assert claims["client_id"] == idp.public_client_id and claims["sub"] == "sub-alice"
        assert any(r["path"] == "/oauth2/revoke" for r in idp.requests)
        assert any(r["path"] == "/logout" for r in idp.requests)

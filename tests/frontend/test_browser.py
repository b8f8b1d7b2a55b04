"""The chat in a real browser against the real local stack (only the LLM is scripted).

Chain: headless Chromium -> Streamlit chat (`streamlit run frontend/app.py`) -> agent HTTP server
(`python -m agent.main`) -> LiteLLM proxy -> scripted model; the agent's tools come from the MCP tool
server over the sample corpus; traces and the feedback score go to the Langfuse recorder.

The test asks how to reset the router, watches the answer stream in, checks the citation with its
page, sends thumbs-down with a comment and asserts the score reached Langfuse's public API on the
turn's trace. Screenshots land in test-artifacts/ only (ignored by git): `make screenshots` copies
test-artifacts/chat-answer.png to the README's docs/images/chat.png; a test never writes a tracked file.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from local_stack.loopback import LoopbackHandler, LoopbackServer
from local_stack.otlp_recorder import OtlpRecorder
from local_stack.scripted_model import ScriptedModel, Text, ToolCall, ToolCalls
from local_stack.stack import PARTS, hermetic_environ, plan, scripted_upstream
from local_stack.stack import LocalStack as BrowserStack
from tests.e2e.conftest import INDEX_CACHE, PUBLIC_KEY, SECRET_KEY, agent_extra, warm
from tests.factories import test_config

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
SCREENSHOT = ARTIFACTS / "chat-answer.png"  # `make screenshots` copies it to docs/images/chat.png
MASTER_KEY = "sk-browser-master"
QUESTION = "How do I reset my router?"

# Records every text the assistant's message shows, so the test can tell a streamed answer from one
# that appeared at once.
WATCH_ASSISTANT = """
window.__assistantTexts = [];
new MutationObserver(() => {
  const messages = document.querySelectorAll('[data-testid="stChatMessage"]');
  if (messages.length < 2) return;
  const text = messages[messages.length - 1].innerText;
  const seen = window.__assistantTexts;
  if (seen[seen.length - 1] !== text) seen.push(text);
}).observe(document.body, {subtree: true, childList: true, characterData: true});
"""


class SlowRelay(LoopbackServer):
    """Relays the gateway's calls to the scripted model, pacing each streamed chunk like a real model.

    The scripted model answers in microseconds; a real one takes tens of milliseconds per token. Pacing
    lets the browser see the answer grow, which is what this test checks.
    """

    model_name = "scripted-model"

    def __init__(self, upstream: str, delay: float = 0.02) -> None:
        self.upstream = upstream.rstrip("/")
        self.delay = delay
        super().__init__()

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    def handler_class(self) -> type[LoopbackHandler]:
        relay = self

        class Handler(LoopbackHandler):
            def do_GET(self) -> None:
                response = httpx.get(relay.upstream + self.path, timeout=30)
                self._reply(response.status_code, response.headers.get("content-type", ""), response.content)

            def do_POST(self) -> None:
                body = self.read_body()
                headers = {"Content-Type": "application/json"}
                with httpx.stream(
                    "POST", relay.upstream + self.path, content=body, headers=headers, timeout=60
                ) as r:
                    content_type = r.headers.get("content-type", "")
                    if not content_type.startswith("text/event-stream"):
                        self._reply(r.status_code, content_type, r.read())
                        return
                    self.send_response(r.status_code)
                    self.send_header("Content-Type", content_type)
                    self.send_header("Connection", "close")
                    self.end_headers()
                    for line in r.iter_lines():
                        self.wfile.write(f"{line}\n".encode())
                        self.wfile.flush()
                        if line.startswith("data:"):
                            time.sleep(relay.delay)
                self.close_connection = True

            def _reply(self, status: int, content_type: str, data: bytes) -> None:
                self.send_bytes(status, data, content_type or "application/json")

        return Handler


@dataclass
class LocalStack:
    model: ScriptedModel
    langfuse: OtlpRecorder
    agent_url: str
    chat_url: str


@pytest.fixture(scope="module")
def work_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("browser")


@pytest.fixture(scope="module")
def local_stack(work_dir: Path) -> Iterator[LocalStack]:
    """The whole local stack with the chat, through local_stack.stack (as `make local` starts it)."""
    with (
        ScriptedModel() as model,
        SlowRelay(model.base_url.removesuffix("/v1")) as relay,
        OtlpRecorder(public_key=PUBLIC_KEY, secret_key=SECRET_KEY) as langfuse,
    ):
        langfuse_env = {
            "LANGFUSE_HOST": langfuse.url,
            "LANGFUSE_PUBLIC_KEY": PUBLIC_KEY,
            "LANGFUSE_SECRET_KEY": SECRET_KEY,
        }
        launches = plan(
            test_config("dev"),
            state_dir=work_dir,
            environ=hermetic_environ(os.environ),
            upstream=scripted_upstream(relay),
            parts=PARTS,
            master_key=MASTER_KEY,
            index_cache=INDEX_CACHE,
            with_guardrail_policy=False,
            agent_extra=agent_extra(langfuse.url),
            chat_extra=langfuse_env,
            startup_timeouts={"gateway": 90, "tools": 90, "agent": 30, "frontend": 60},
        )
        with BrowserStack(launches, work_dir / "logs") as stack:
            warm(stack.url("agent"))
            model.reset()
            yield LocalStack(model, langfuse, stack.url("agent"), f"{stack.url('frontend')}/")


def _tool_payload(request: dict[str, Any]) -> dict[str, Any]:
    for message in reversed(request["messages"]):
        if message.get("role") == "tool":
            content = message["content"]
            if isinstance(content, list):
                content = "".join(part.get("text", "") for part in content if isinstance(part, dict))
            return dict(json.loads(content))
    raise AssertionError("the model never saw a tool result")


def test_question_streams_an_answer_with_a_cited_page_and_feedback_lands_on_the_trace(
    local_stack: LocalStack, chromium: str
) -> None:
    from playwright.sync_api import expect, sync_playwright

    def cite_top_result(request: dict[str, Any]) -> Text:
        top = _tool_payload(request)["results"][0]
        answer = (  # three sentences: the agent releases text sentence by sentence (output guardrail)
            "To reset the router, hold the recessed RESET button on the back for 10 seconds until the "
            f"status light blinks [{top['title']}, p. {top['page']}]. "
            "Then wait about two minutes while the router restarts with its factory settings and your "
            "devices reconnect. "
            "Finally, sign in again with the default password printed on the label under the router."
        )
        return Text(answer, chunk_chars=6)

    local_stack.model.enqueue(ToolCalls([ToolCall("search_knowledge_base", {"query": "reset router"})]))
    local_stack.model.responder = cite_top_result
    ARTIFACTS.mkdir(exist_ok=True)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium,
            args=["--no-sandbox", "--disable-background-networking", "--disable-component-update"],
        )
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1100})
            page.goto(local_stack.chat_url)
            chat_input = page.get_by_test_id("stChatInputTextArea")
            expect(chat_input).to_be_visible(timeout=30_000)
            page.evaluate(WATCH_ASSISTANT)

            chat_input.fill(QUESTION)
            chat_input.press("Enter")

            sources = page.get_by_text(re.compile(r"Router X200 .*, p\. \d+"))
            expect(sources.first).to_be_visible(timeout=60_000)
            assistant = page.get_by_test_id("stChatMessage").last
            expect(assistant).to_contain_text("hold the recessed RESET button")
            expect(assistant).to_contain_text("model claude-sonnet")
            texts: list[str] = page.evaluate("window.__assistantTexts")
            partial = [t for t in texts if "hold the recessed" in t and "default password" not in t]
            assert partial, f"the answer never showed partially (not streamed): {texts[-3:]}"
            working = [t for t in texts if "Using search_knowledge_base" in t]
            assert working, f"tool activity was never shown while it happened: {texts[:3]}"

            caption = assistant.get_by_text(re.compile(r"trace [0-9a-f]{32}")).inner_text()
            trace_id = re.search(r"trace ([0-9a-f]{32})", caption)
            assert trace_id, caption
            assistant.get_by_text("Tools used (1)").click()  # show the tool call with its arguments
            expect(assistant).to_contain_text('"query": "reset router"')
            page.wait_for_timeout(600)  # let the expander finish opening before the screenshot
            page.screenshot(path=str(SCREENSHOT), full_page=True)

            assistant.get_by_role("radio", name="Thumbs down").click()
            comment = page.get_by_label("Comment (optional)")
            expect(comment).to_be_visible(timeout=15_000)
            comment.fill("The steps are right but mention the LED colour.")
            comment.press("Enter")
            page.get_by_role("button", name="Send feedback").click()
            expect(page.get_by_text("Your feedback (thumbs down) was recorded.")).to_be_visible(
                timeout=15_000
            )
            page.screenshot(path=str(ARTIFACTS / "chat-feedback.png"), full_page=True)
        finally:
            browser.close()

    (score,) = local_stack.langfuse.wait_for_scores(1, name="user-feedback", timeout=10)
    assert score["traceId"] == trace_id.group(1)
    assert (score["value"], score["comment"]) == (0, "The steps are right but mention the LED colour.")
    # the score is on the agent's own trace of this turn
    spans = local_stack.langfuse.wait_for_spans(
        predicate=lambda span: span.trace_id == score["traceId"] and span.is_root, timeout=10
    )
    assert spans

"""The chat page: sign-in (AgentCore mode), streamed turns, answer details and feedback."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import streamlit as st

from clients.agentcore import (
    AgentClient,
    AgentError,
    AgentUnauthorized,
    AgentUnreachable,
    Citation,
    Done,
    InvalidPrompt,
    ProtocolError,
    TextDelta,
    ToolEnd,
    ToolStart,
    TurnMetadata,
    new_session_id,
)
from clients.langfuse import FeedbackClient, FeedbackError
from clients.oauth import LoginExpired, OAuthClient, OAuthError, OAuthUnavailable, Tokens
from frontend.auth import PENDING_LOGINS, browser_identity
from frontend.citations import DocumentLinker, parse_s3_uri, split_sources
from frontend.settings import ChatSettings, SettingsError, load_settings

logger = logging.getLogger(__name__)

TITLE = "Support assistant"
XSRF_COOKIE = "_streamlit_xsrf"
SESSION_EXPIRED = "Your session has expired. Please sign in again."
NO_MODEL_CALL = "blocked by guardrail, no model call"


@dataclass
class Turn:
    """One chat message as kept in the session."""

    role: str
    content: str
    metadata: TurnMetadata | None = None
    error: str | None = None
    error_kind: str | None = None
    feedback: dict[str, Any] | None = None
    tool_log: list[str] = field(default_factory=list)


# --- entry point --------------------------------------------------------------------------------


def main() -> None:
    st.set_page_config(page_title=TITLE, page_icon=":speech_balloon:")
    st.title(TITLE)
    try:
        settings = load_settings()
    except SettingsError as exc:
        st.error(f"The chat is not configured: {exc}")
        st.stop()
    state = st.session_state
    state.setdefault("session_id", new_session_id())
    state.setdefault("turns", [])

    if settings.mode == "agentcore" and not _signed_in(settings):
        return
    _sidebar(settings)
    for index, turn in enumerate(state.turns):
        _render_turn(settings, index, turn)
    prompt = st.chat_input("Ask about our products, orders or your tickets")
    if prompt:
        _run_turn(settings, prompt)


# --- authentication (AgentCore mode) ------------------------------------------------------------


def _oauth(settings: ChatSettings) -> OAuthClient:
    assert settings.oauth is not None
    return OAuthClient(settings.oauth)


def _browser() -> str | None:
    try:
        value = st.context.cookies.get(XSRF_COOKIE)
    except Exception:  # no browser connection (e.g. under AppTest)
        return None
    return browser_identity(value) if isinstance(value, str) else None


def _signed_in(settings: ChatSettings) -> bool:
    """True when tokens are in the session; otherwise completes a callback or offers sign-in."""
    state = st.session_state
    if state.get("tokens") is not None:
        return True
    params = st.query_params
    if params.get("error"):
        reason = str(params.get("error_description") or params.get("error"))[:200]
        st.error(f"Sign-in failed: {_md(reason)}")
        st.query_params.clear()
    elif params.get("code"):
        state.pop("login_request", None)  # a callback uses up this sign-in attempt, whatever happens
        try:
            verifier = PENDING_LOGINS.take(params.get("state"), _browser())
            state.tokens = _oauth(settings).exchange_code(params["code"], verifier)
            state.pop("auth_notice", None)
            st.query_params.clear()
            st.rerun()
        except OAuthUnavailable as exc:
            logger.warning("token endpoint unavailable: %s", exc)
            st.error("The sign-in service is not reachable right now. Please try again in a moment.")
        except OAuthError as exc:
            logger.info("sign-in callback rejected: %s", exc.error)
            st.error(f"That sign-in did not complete ({exc.description or exc.error}). Please sign in again.")
        st.query_params.clear()
    _sign_in_link(settings)
    return False


def _sign_in_link(settings: ChatSettings) -> None:
    request = st.session_state.get("login_request")
    if request is None:  # one pending sign-in per browser session, however often the page reruns
        request = _oauth(settings).authorization_request()
        PENDING_LOGINS.put(request.state, request.code_verifier, _browser())
        st.session_state.login_request = request
    notice = st.session_state.get("auth_notice")
    if notice:
        st.warning(notice)
    else:
        st.info("Sign in with your company account to use the assistant.")
    st.markdown(
        f'<a href="{_attr(request.url)}" target="_self" data-testid="sign-in-link">Sign in</a>',
        unsafe_allow_html=True,
    )


def _fresh_token(settings: ChatSettings) -> str | None:
    """The access token, refreshed when it is about to expire; None in local mode."""
    if settings.mode != "agentcore":
        return None
    tokens: Tokens = st.session_state.tokens
    fresh = _oauth(settings).ensure_fresh(tokens)
    st.session_state.tokens = fresh
    return fresh.access_token


def _sign_out(settings: ChatSettings) -> None:
    tokens = st.session_state.get("tokens")
    if tokens is not None:
        try:
            _oauth(settings).revoke(tokens)
        except OAuthError as exc:  # sign-out continues; the tokens die with the session anyway
            logger.warning("token revocation failed: %s", exc)
    st.session_state.clear()
    url = _oauth(settings).logout_url(settings.public_url)
    st.markdown(f'<meta http-equiv="refresh" content="0; url={_attr(url)}">', unsafe_allow_html=True)
    st.success("Signed out.")
    st.markdown(f'<a href="{_attr(url)}" target="_self">Finish signing out</a>', unsafe_allow_html=True)
    st.stop()


# --- layout -------------------------------------------------------------------------------------


def _sidebar(settings: ChatSettings) -> None:
    with st.sidebar:
        if st.button("New conversation", key="new-conversation", icon=":material/add_comment:"):
            st.session_state.session_id = new_session_id()
            st.session_state.turns = []
            st.rerun()
        st.caption(f"Conversation `{st.session_state.session_id}`")
        if settings.mode == "local":
            st.caption(f"Local agent at `{settings.target.invocations_url}` as `{settings.local_user}`")
        else:
            claims = st.session_state.tokens.claims()
            st.caption(
                f"Signed in as {claims.get('email') or claims.get('username') or claims.get('sub', '?')}"
            )
            st.caption("AgentCore Runtime")
            if st.button("Sign out", key="sign-out"):
                _sign_out(settings)
        if not settings.feedback_enabled:
            st.caption("Feedback is off (Langfuse is not configured).")


def _render_turn(settings: ChatSettings, index: int, turn: Turn) -> None:
    with st.chat_message(turn.role):
        if turn.role == "user":
            st.markdown(turn.content)
            return
        if turn.content:
            st.markdown(turn.content)
        if turn.error:
            _show_error(turn)
            if turn.tool_log:  # what the agent did before the turn failed
                with st.expander("Tool activity"):
                    st.markdown("\n".join(f"- {line}" for line in turn.tool_log))
        if turn.metadata is not None:
            _details(settings, turn.metadata, turn.content)
            if settings.feedback_enabled and turn.metadata.trace_id:
                _feedback(settings, index, turn)


def _show_error(turn: Turn) -> None:
    if turn.error_kind == "auth":
        st.warning(turn.error or "")
    else:
        st.error(turn.error or "")


def _details(settings: ChatSettings, metadata: TurnMetadata, answer: str) -> None:
    guardrail = metadata.guardrail
    if guardrail.action == "BLOCKED":
        where = {"input": "your message", "output": "the answer"}.get(guardrail.stage or "", "this turn")
        st.warning(f"The guardrail blocked {where}.", icon=":material/shield:")
    elif guardrail.action == "ANONYMIZED":
        st.info("The guardrail anonymized personal data in this turn.", icon=":material/shield:")
    cited, retrieved = split_sources(metadata.citations, answer)  # the rule: frontend/citations.py
    linker = _linker(settings)
    for heading, sources in (("Sources", cited), ("Also retrieved" if cited else "Sources", retrieved)):
        if sources:
            st.markdown(f"**{heading}**")
            st.markdown("\n".join(f"- {_citation(c, settings.source_base_url, linker)}" for c in sources))
    if metadata.tools:
        with st.expander(f"Tools used ({len(metadata.tools)})"):
            for tool in metadata.tools:
                outcome = "ok" if tool.status == "success" else f"failed: {tool.error or 'error'}"
                took = f", {tool.duration_ms:.0f} ms" if tool.duration_ms is not None else ""
                st.markdown(f"`{tool.name}` ({outcome}{took})")
                st.code(json.dumps(tool.arguments, ensure_ascii=False, indent=1), language="json")
    # a blocked input makes no model call (docs/agent-api.md): no model, no tokens to show
    no_model_call = guardrail.action == "BLOCKED" and guardrail.stage == "input"
    facts = [NO_MODEL_CALL] if no_model_call else [f"model `{metadata.model or '?'}`"]
    if metadata.latency_ms is not None:
        facts.append(f"{metadata.latency_ms / 1000:.1f} s")
    usage = metadata.usage
    if not no_model_call:
        facts.append(f"{usage.input_tokens} in / {usage.output_tokens} out tokens")
    if metadata.trace_id:
        if settings.langfuse is not None:
            facts.append(f"trace [{metadata.trace_id}]({settings.langfuse.trace_url(metadata.trace_id)})")
        else:
            facts.append(f"trace `{metadata.trace_id}`")
    st.caption(" · ".join(facts))


def _linker(settings: ChatSettings) -> DocumentLinker | None:
    """Pre-signed document links (AgentCore mode with DOCS_BUCKET_NAME); one per process and bucket."""
    if settings.mode != "agentcore" or not settings.docs_bucket:
        return None
    return _cached_linker(settings.docs_bucket, settings.region)


@st.cache_resource(show_spinner=False)
def _cached_linker(bucket: str, region: str | None) -> DocumentLinker:
    return DocumentLinker(bucket, region)


def _citation(citation: Citation, base_url: str | None, linker: DocumentLinker | None = None) -> str:
    page = f", p. {citation.page}" if citation.page is not None else ""
    label = f"{_md(citation.title)}{page}"
    link = _source_link(citation, base_url, linker)
    return f"[{label}]({link})" if link else f"{label} (`{_md(citation.uri)}`)"


def _source_link(
    citation: Citation, base_url: str | None, linker: DocumentLinker | None = None
) -> str | None:
    """A browsable link: http(s) as is (PDFs open at the page), s3:// in the docs bucket as a pre-signed
    URL (AgentCore mode, DOCS_BUCKET_NAME), other s3:// in the S3 console, relative paths under
    CHAT_SOURCE_BASE_URL when set; None when there is nowhere to link to."""
    uri = citation.uri
    fragment = f"#page={citation.page}" if citation.page is not None and uri.lower().endswith(".pdf") else ""
    if uri.startswith(("https://", "http://")):
        return uri + fragment
    s3 = parse_s3_uri(uri)
    if s3 is not None:
        signed = linker.url(uri) if linker is not None else None
        if signed:
            return signed + fragment
        bucket, key = s3
        return f"https://console.aws.amazon.com/s3/object/{bucket}?prefix={quote(key)}"
    if base_url and uri and "://" not in uri:
        return f"{base_url.rstrip('/')}/{quote(uri.lstrip('/'))}{fragment}"
    return None


def _feedback(settings: ChatSettings, index: int, turn: Turn) -> None:
    assert turn.metadata is not None
    if turn.feedback is not None:
        thumbs = "up" if turn.feedback["positive"] else "down"
        st.success(f"Thanks! Your feedback (thumbs {thumbs}) was recorded.", icon=":material/check:")
        return
    choice = st.feedback("thumbs", key=f"feedback-{index}")
    if choice is None:
        return
    comment = st.text_input("Comment (optional)", key=f"comment-{index}", max_chars=2000)
    if st.button("Send feedback", key=f"send-feedback-{index}"):
        assert settings.langfuse is not None
        try:
            score_id = FeedbackClient(settings.langfuse).send_feedback(
                turn.metadata.trace_id,
                positive=choice == 1,
                comment=comment,
                session_id=turn.metadata.session_id or st.session_state.session_id,
            )
        except (FeedbackError, ValueError) as exc:
            st.error(f"Your feedback was not recorded: {exc}")
            return
        turn.feedback = {"positive": choice == 1, "comment": comment, "score_id": score_id}
        st.rerun()


# --- one turn -----------------------------------------------------------------------------------


def _run_turn(settings: ChatSettings, prompt: str) -> None:
    state = st.session_state
    state.turns.append(Turn("user", prompt))
    with st.chat_message("user"):
        st.markdown(prompt)
    turn = Turn("assistant", "")
    with st.chat_message("assistant"):
        status = st.status("Thinking...", expanded=False)
        placeholder = st.empty()
        try:
            token = _fresh_token(settings)
            client = AgentClient(settings.target)
            for event in client.stream(prompt, state.session_id, token=token):
                if isinstance(event, TextDelta):
                    turn.content += event.delta
                    placeholder.markdown(turn.content + " ▌")
                elif isinstance(event, ToolStart):
                    line = f"Calling `{event.name}` with `{json.dumps(event.arguments, ensure_ascii=False)}`"
                    turn.tool_log.append(line)
                    status.update(label=f"Using {event.name}...", state="running")
                    status.markdown(line)
                elif isinstance(event, ToolEnd):
                    outcome = "done" if event.status == "success" else f"failed: {event.error}"
                    line = f"`{event.name}` {outcome}"
                    turn.tool_log.append(line)
                    status.markdown(line)
                elif isinstance(event, Done):
                    turn.content = event.answer
                    turn.metadata = event.metadata
            placeholder.markdown(turn.content)
            status.update(label=_status_label(turn), state="complete")
        except Exception as exc:  # every failure becomes an explanation, never a stack trace
            turn.error, turn.error_kind = _explain(settings, exc)
            status.update(label="Failed", state="error")
    state.turns.append(turn)
    st.rerun()


def _status_label(turn: Turn) -> str:
    tools = len(turn.metadata.tools) if turn.metadata else 0
    return f"Used {tools} tool{'s' if tools != 1 else ''}" if tools else "Answered"


def _explain(settings: ChatSettings, exc: Exception) -> tuple[str, str]:
    """A message the user can act on, and its kind (`auth`, `error`)."""
    trace = f" (trace {exc.trace_id})" if isinstance(exc, AgentError) and exc.trace_id else ""
    if isinstance(exc, AgentUnauthorized | LoginExpired):
        if settings.mode == "agentcore":
            st.session_state.pop("tokens", None)
            st.session_state.auth_notice = SESSION_EXPIRED
            return SESSION_EXPIRED, "auth"
        return f"The agent refused the request as unauthorized: {exc}.", "error"
    if isinstance(exc, OAuthUnavailable):
        return (
            "The sign-in service is not reachable, so your session could not be renewed. Try again soon.",
            "error",
        )
    if isinstance(exc, AgentUnreachable):
        where = settings.target.invocations_url
        hint = " Start it with `make local`." if settings.mode == "local" else ""
        return f"The agent is not reachable at `{where}`.{hint} Please try again.", "error"
    if isinstance(exc, InvalidPrompt):
        return f"Your message was not sent: {exc.message}.", "error"
    if isinstance(exc, ProtocolError):
        return f"The agent's answer could not be read ({exc.message}){trace}.", "error"
    if isinstance(exc, AgentError):
        if exc.code == "model_unavailable":
            return (
                f"The language model is unavailable right now. Please try again in a moment{trace}.",
                "error",
            )
        if exc.code in ("invalid_payload", "invalid_json", "payload_too_large"):
            return f"The agent rejected the message: {exc.message}{trace}.", "error"
        return f"The agent could not answer: {exc.message}{trace}.", "error"
    logger.error("unexpected failure during a chat turn", exc_info=exc)
    return "Something went wrong in the chat. The details are in the server log.", "error"


def _md(text: str) -> str:
    """Escape Markdown link syntax in text that comes from documents."""
    return text.replace("[", "\\[").replace("]", "\\]")


def _attr(value: str) -> str:
    return value.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")

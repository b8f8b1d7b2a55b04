"""Validation of the `/invocations` body (rules in docs/agent-api.md)."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

from agent.errors import ApiError

MAX_BODY_BYTES = 64 * 1024
MAX_PROMPT_CHARS = 8000
SESSION_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{32,99}$")
_FIELDS = frozenset({"prompt", "session_id", "stream"})


@dataclass(frozen=True)
class Invocation:
    """A validated request: the prompt (trimmed), the conversation id and the answer mode."""

    prompt: str
    session_id: str
    stream: bool


def new_session_id() -> str:
    """A fresh conversation id that satisfies AgentCore's 33-character minimum."""
    return f"s-{uuid.uuid4().hex}"


def _invalid(message: str) -> ApiError:
    return ApiError(422, "invalid_payload", message)


def parse_invocation(payload: Any, header_session_id: str | None) -> Invocation:
    """Validate a decoded JSON body; the header session id wins over the body's."""
    if not isinstance(payload, dict):
        raise ApiError(400, "invalid_json", "the body must be a JSON object")
    unknown = sorted(set(payload) - _FIELDS)
    if unknown:
        raise _invalid(f"unknown field(s) {unknown}; allowed fields: {sorted(_FIELDS)}")
    if "prompt" not in payload:
        raise _invalid("prompt: required")
    prompt = payload["prompt"]
    if not isinstance(prompt, str):
        raise _invalid("prompt: must be a string")
    prompt = prompt.strip()
    if not prompt:
        raise _invalid("prompt: must not be empty")
    if len(prompt) > MAX_PROMPT_CHARS:
        raise _invalid(f"prompt: at most {MAX_PROMPT_CHARS} characters (got {len(prompt)})")
    stream = payload.get("stream", False)
    if not isinstance(stream, bool):
        raise _invalid("stream: must be true or false")
    session_id = header_session_id or payload.get("session_id")
    if session_id is None:
        session_id = new_session_id()
    elif not isinstance(session_id, str) or not SESSION_ID_RE.match(session_id):
        source = "X-Amzn-Bedrock-AgentCore-Runtime-Session-Id" if header_session_id else "session_id"
        raise _invalid(f"{source}: must match {SESSION_ID_RE.pattern} (33-100 letters, digits, '-' or '_')")
    return Invocation(prompt=prompt, session_id=session_id, stream=stream)

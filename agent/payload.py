"""Validation of the `/invocations` body (rules in docs/agent-api.md)."""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from typing import Any

from agent.errors import ApiError

MAX_BODY_BYTES = 64 * 1024
MAX_PROMPT_CHARS = 8000
SESSION_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{32,99}$")
_FIELDS = frozenset({"prompt", "session_id", "stream"})
MAX_JSON_DEPTH = 16
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')
_JSON_BRACKETS = re.compile(rb"[\[\]{}]")


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


def json_depth(raw: bytes) -> int:
    """The deepest array/object nesting of a JSON text (strings skipped), computed without recursion."""
    depth = deepest = 0
    for bracket in _JSON_BRACKETS.findall(_JSON_STRING.sub(b'""', raw)):
        if bracket in (b"[", b"{"):
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def decode_body(raw: bytes) -> dict[str, Any]:
    """The body as a JSON object, or a 400 `invalid_json` naming what is wrong.

    The contract's body is flat, so nesting deeper than MAX_JSON_DEPTH is refused before parsing
    (CPython's decoder would raise RecursionError near 1,000 levels), and an integer longer than
    Python's int-string limit (4300 digits, a ValueError that is not a JSONDecodeError) is bad JSON.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ApiError(400, "invalid_json", f"the body is not valid UTF-8: {error.reason}") from None
    if json_depth(raw) > MAX_JSON_DEPTH:
        raise ApiError(400, "invalid_json", f"the body nests deeper than {MAX_JSON_DEPTH} levels")
    try:
        decoded = json.loads(text)
    except json.JSONDecodeError as error:
        raise ApiError(400, "invalid_json", f"the body is not valid JSON: {error}") from None
    except (ValueError, RecursionError) as error:  # int-string limit; nesting the depth scan missed
        raise ApiError(400, "invalid_json", f"the body is not acceptable JSON: {error}") from None
    if not isinstance(decoded, dict):
        raise ApiError(400, "invalid_json", "the body must be a JSON object")
    return decoded


def _has_lone_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


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
    if _has_lone_surrogate(prompt):
        raise _invalid("prompt: contains an unpaired UTF-16 surrogate (not encodable as UTF-8)")
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

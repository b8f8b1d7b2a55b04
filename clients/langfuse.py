"""User feedback as Langfuse scores, through Langfuse's public API (`POST /api/public/scores`).

The chat sends thumbs up/down as the score `user-feedback` (1 = up, 0 = down, optional comment) on
the turn's trace id (docs/agent-api.md, "Feedback"). The same client links to a trace in the UI.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

logger = logging.getLogger(__name__)

FEEDBACK_SCORE = "user-feedback"
MAX_COMMENT_CHARS = 2000
_TRACE_ID = re.compile(r"^[0-9a-f]{32}$")


class FeedbackError(Exception):
    """The score was not recorded; the message says why in words a user can act on."""


@dataclass(frozen=True)
class LangfuseSettings:
    """Where Langfuse is and the project keys (public key + secret key, HTTP Basic auth)."""

    host: str
    public_key: str
    secret_key: str = field(repr=False)
    ui_url: str | None = None
    project_id: str | None = None

    def __post_init__(self) -> None:
        parts = urlsplit(self.host)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"LANGFUSE_HOST must be an http(s) URL (got {self.host!r})")
        if not self.public_key or not self.secret_key:
            raise ValueError(
                "LANGFUSE_PUBLIC_KEY and LANGFUSE_SECRET_KEY are both required with LANGFUSE_HOST"
            )
        object.__setattr__(self, "host", self.host.rstrip("/"))

    def trace_url(self, trace_id: str) -> str:
        """The trace's page in the Langfuse UI (project-scoped when the project id is known)."""
        base = (self.ui_url or self.host).rstrip("/")
        if self.project_id:
            return f"{base}/project/{self.project_id}/traces/{trace_id}"
        return f"{base}/trace/{trace_id}"


class FeedbackClient:
    """Writes scores to Langfuse. Thread-safe."""

    def __init__(self, settings: LangfuseSettings, *, http: httpx.Client | None = None) -> None:
        self.settings = settings
        self._http = http or httpx.Client(timeout=httpx.Timeout(10.0, connect=5.0))

    def send_feedback(
        self, trace_id: str, *, positive: bool, comment: str | None = None, session_id: str | None = None
    ) -> str:
        """Record thumbs up (1) or down (0) with an optional comment on `trace_id`; returns the score id.

        Raises:
            ValueError: the trace id is not 32 lowercase hex characters or the comment is too long.
            FeedbackError: Langfuse is unreachable or refused the score.
        """
        if not _TRACE_ID.match(trace_id or ""):
            raise ValueError("this answer has no trace id, so feedback cannot be attached to it")
        text = (comment or "").strip()
        if len(text) > MAX_COMMENT_CHARS:
            raise ValueError(f"the comment has {len(text)} characters; the limit is {MAX_COMMENT_CHARS}")
        score_id = str(uuid.uuid4())
        body: dict[str, Any] = {
            "id": score_id,
            "traceId": trace_id,
            "name": FEEDBACK_SCORE,
            "value": 1 if positive else 0,
            "dataType": "BOOLEAN",
        }
        if text:
            body["comment"] = text
        if session_id:
            body["metadata"] = {"session_id": session_id, "source": "chat"}
        url = f"{self.settings.host}/api/public/scores"
        auth = httpx.BasicAuth(self.settings.public_key, self.settings.secret_key)
        try:
            response = self._http.post(url, json=body, auth=auth)
        except httpx.HTTPError as exc:
            raise FeedbackError(f"Langfuse at {self.settings.host} is not reachable ({exc})") from None
        if response.status_code >= 300:
            raise FeedbackError(
                f"Langfuse refused the feedback (HTTP {response.status_code}: {_message(response)})"
            )
        logger.info("feedback %s recorded on trace %s", score_id, trace_id)
        return score_id


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except json.JSONDecodeError:
        return response.reason_phrase
    if isinstance(body, dict):
        return str(body.get("message") or body.get("error") or response.reason_phrase)
    return response.reason_phrase

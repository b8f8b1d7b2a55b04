"""A client of the agent contract (docs/agent-api.md), locally or through AgentCore Runtime.

    client = AgentClient(AgentTarget.local("http://127.0.0.1:8080"))
    for event in client.stream("How do I reset my router?", session_id=new_session_id()):
        ...  # TextDelta, ToolStart, ToolEnd, then Done (or an AgentError is raised)

Deployed, `AgentTarget.agentcore(runtime_arn)` calls InvokeAgentRuntime over HTTPS with an OAuth bearer
token (the runtime's JWT authorizer validates it); the session id travels in
`X-Amzn-Bedrock-AgentCore-Runtime-Session-Id`. Headless callers pass `token_provider` (e.g.
`clients.oauth.ClientCredentialsTokenSource(...).token`).
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import quote, urlsplit

import httpx

from clients.oauth import OAuthError, OAuthUnavailable

logger = logging.getLogger(__name__)

SESSION_HEADER = "X-Amzn-Bedrock-AgentCore-Runtime-Session-Id"
SESSION_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{32,99}$")
MAX_PROMPT_CHARS = 8000
_RUNTIME_ARN = re.compile(
    r"^arn:aws[a-z-]*:bedrock-agentcore:(?P<region>[a-z]{2}(-gov)?-[a-z]+-\d):\d{12}:runtime/[A-Za-z0-9_-]+$"
)
DEFAULT_TIMEOUT = httpx.Timeout(connect=5.0, read=180.0, write=30.0, pool=5.0)


# --- errors -------------------------------------------------------------------------------------


class AgentError(Exception):
    """The turn failed; `code` is the contract's error code (or a client-side one)."""

    def __init__(
        self, code: str, message: str, *, status: int | None = None, trace_id: str | None = None
    ) -> None:
        self.code = code
        self.message = message
        self.status = status
        self.trace_id = trace_id or None
        super().__init__(f"{code}: {message}")


class AgentUnreachable(AgentError):
    """No answer from the agent (connection refused, DNS, timeout)."""


class AgentUnauthorized(AgentError):
    """The bearer token was missing, expired or rejected: the user must sign in again."""


class ProtocolError(AgentError):
    """The answer does not follow the contract (not SSE/JSON, stream cut before `done`)."""


class InvalidPrompt(AgentError):
    """The prompt breaks the contract's rules; nothing was sent."""


# --- events and metadata ------------------------------------------------------------------------


@dataclass(frozen=True)
class ToolUse:
    name: str
    arguments: dict[str, Any] = field(default_factory=dict)
    duration_ms: float | None = None
    status: str = "success"
    error: str | None = None


@dataclass(frozen=True)
class Citation:
    title: str
    uri: str
    page: int | None = None
    score: float | None = None
    text: str | None = None  # the passage the tool returned (at most 2000 characters)
    cited: bool = False  # the answer names this source (title or file name)


@dataclass(frozen=True)
class Guardrail:
    action: str = "NONE"
    stage: str | None = None
    message: str | None = None

    @property
    def intervened(self) -> bool:
        return self.action != "NONE"


@dataclass(frozen=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0


@dataclass(frozen=True)
class TurnMetadata:
    """`metadata` of a finished turn."""

    session_id: str = ""
    trace_id: str = ""
    model: str = ""
    tools: tuple[ToolUse, ...] = ()
    citations: tuple[Citation, ...] = ()
    guardrail: Guardrail = Guardrail()
    usage: Usage = Usage()
    latency_ms: float | None = None

    @classmethod
    def parse(cls, raw: Any) -> TurnMetadata:
        """Read the contract's metadata object, tolerating absent optional parts.

        Raises:
            ProtocolError: when `raw` is not an object or a part has the wrong shape.
        """
        if not isinstance(raw, Mapping):
            raise ProtocolError("invalid_response", "the answer carries no metadata object")
        try:
            tools = tuple(
                ToolUse(
                    name=str(t["name"]),
                    arguments=dict(t.get("arguments") or {}),
                    duration_ms=_float_or_none(t.get("duration_ms")),
                    status=str(t.get("status") or "success"),
                    error=t.get("error"),
                )
                for t in raw.get("tools") or ()
            )
            citations = tuple(
                Citation(
                    title=str(c.get("title") or c.get("uri") or "source"),
                    uri=str(c.get("uri") or ""),
                    page=int(c["page"]) if c.get("page") is not None else None,
                    score=_float_or_none(c.get("score")),
                    text=str(c["text"]) if c.get("text") is not None else None,
                    cited=c.get("cited") is True,
                )
                for c in raw.get("citations") or ()
            )
            guard = raw.get("guardrail") or {}
            usage = raw.get("usage") or {}
            return cls(
                session_id=str(raw.get("session_id") or ""),
                trace_id=str(raw.get("trace_id") or ""),
                model=str(raw.get("model") or ""),
                tools=tools,
                citations=citations,
                guardrail=Guardrail(
                    action=str(guard.get("action") or "NONE"),
                    stage=guard.get("stage"),
                    message=guard.get("message"),
                ),
                usage=Usage(
                    input_tokens=int(usage.get("input_tokens") or 0),
                    output_tokens=int(usage.get("output_tokens") or 0),
                    total_tokens=int(usage.get("total_tokens") or 0),
                ),
                latency_ms=_float_or_none(raw.get("latency_ms")),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ProtocolError("invalid_response", f"the answer's metadata is malformed ({exc})") from None


def _float_or_none(value: Any) -> float | None:
    return None if value is None else float(value)


@dataclass(frozen=True)
class TextDelta:
    delta: str


@dataclass(frozen=True)
class ToolStart:
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True)
class ToolEnd:
    name: str
    status: str
    duration_ms: float | None
    error: str | None


@dataclass(frozen=True)
class Done:
    answer: str
    metadata: TurnMetadata


AgentEvent = TextDelta | ToolStart | ToolEnd | Done


@dataclass(frozen=True)
class AgentReply:
    """A finished, non-streamed turn."""

    answer: str
    metadata: TurnMetadata


# --- SSE ----------------------------------------------------------------------------------------


def iter_sse_data(lines: Iterable[str]) -> Iterator[str]:
    """The `data` payloads of a `text/event-stream`, one per event (multi-line data joined by \\n).

    Follows the WHATWG event-stream rules that matter here: `:` comments and other fields are
    skipped, one space after the colon is dropped, a blank line ends an event, and a last event
    without its blank line is still delivered.
    """
    data: list[str] = []
    for raw_line in lines:
        line = raw_line.rstrip("\r\n")
        if line == "":
            if data:
                yield "\n".join(data)
                data = []
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        if name == "data":
            data.append(value[1:] if value.startswith(" ") else value)
    if data:
        yield "\n".join(data)


def parse_event(payload: str) -> AgentEvent | None:
    """Turn one `data:` payload into an event; an `error` event raises `AgentError`.

    Returns None for an event the client has nothing to do with: the `heartbeat` the agent streams while
    it waits, and any event type newer than this client (docs/agent-api.md: clients ignore unknown types).

    Raises:
        AgentError: for the contract's `error` event.
        ProtocolError: for a payload that is not a JSON object with a string `type`.
    """
    try:
        event = json.loads(payload)
    except json.JSONDecodeError:
        raise ProtocolError("invalid_response", "the agent streamed something that is not JSON") from None
    if not isinstance(event, dict):
        raise ProtocolError("invalid_response", "the agent streamed an event that is not an object")
    kind = event.get("type")
    if not isinstance(kind, str) or not kind:
        raise ProtocolError("invalid_response", "the agent streamed an event without a type")
    if kind == "text":
        return TextDelta(str(event.get("delta", "")))
    if kind == "tool_start":
        arguments = event.get("arguments")
        return ToolStart(str(event.get("name", "?")), arguments if isinstance(arguments, dict) else {})
    if kind == "tool_end":
        return ToolEnd(
            name=str(event.get("name", "?")),
            status=str(event.get("status") or "success"),
            duration_ms=_float_or_none(event.get("duration_ms")),
            error=event.get("error"),
        )
    if kind == "done":
        return Done(str(event.get("answer", "")), TurnMetadata.parse(event.get("metadata")))
    if kind == "error":
        raise _contract_error(
            str(event.get("code") or "internal_error"),
            str(event.get("message") or "the agent failed"),
            trace_id=event.get("trace_id"),
        )
    if kind != "heartbeat":
        logger.debug("ignoring stream event type %r (newer than this client)", kind)
    return None


# --- target and client --------------------------------------------------------------------------


def new_session_id() -> str:
    """A fresh conversation id: 45 characters, valid for the agent and for AgentCore (>= 33)."""
    return f"chat-{uuid.uuid4().hex}{uuid.uuid4().hex[:8]}"


def validate_prompt(prompt: str) -> str:
    """The trimmed prompt, or `InvalidPrompt` naming the rule it breaks."""
    text = prompt.strip()
    if not text:
        raise InvalidPrompt("invalid_payload", "prompt: the message is empty")
    if len(text) > MAX_PROMPT_CHARS:
        raise InvalidPrompt(
            "invalid_payload",
            f"prompt: the message has {len(text)} characters; the limit is {MAX_PROMPT_CHARS}",
        )
    return text


@dataclass(frozen=True)
class AgentTarget:
    """Where `/invocations` is: the local agent, or an AgentCore runtime's data-plane URL."""

    invocations_url: str
    kind: Literal["local", "agentcore"]

    @classmethod
    def local(cls, base_url: str) -> AgentTarget:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"agent URL must be http(s)://host:port (got {base_url!r})")
        return cls(base_url.rstrip("/") + "/invocations", "local")

    @classmethod
    def agentcore(
        cls,
        runtime_arn: str,
        region: str | None = None,
        *,
        qualifier: str = "DEFAULT",
        endpoint_url: str | None = None,
    ) -> AgentTarget:
        """The InvokeAgentRuntime URL of `runtime_arn` (the region defaults to the ARN's)."""
        match = _RUNTIME_ARN.match(runtime_arn)
        if not match:
            raise ValueError(
                "runtime ARN must look like arn:aws:bedrock-agentcore:<region>:<account>:runtime/<id> "
                f"(got {runtime_arn!r})"
            )
        region = region or match.group("region")
        base = (endpoint_url or f"https://bedrock-agentcore.{region}.amazonaws.com").rstrip("/")
        url = f"{base}/runtimes/{quote(runtime_arn, safe='')}/invocations?qualifier={quote(qualifier)}"
        return cls(url, "agentcore")


class AgentClient:
    """Invokes the agent; one instance per target, safe to share between threads."""

    def __init__(
        self,
        target: AgentTarget,
        *,
        token_provider: Callable[[], str] | None = None,
        http: httpx.Client | None = None,
    ) -> None:
        self.target = target
        self._token_provider = token_provider
        self._http = http or httpx.Client(timeout=DEFAULT_TIMEOUT)

    def stream(self, prompt: str, session_id: str, *, token: str | None = None) -> Iterator[AgentEvent]:
        """Stream one turn: text deltas and tool events, ending with `Done`.

        Raises:
            InvalidPrompt: before sending, when the prompt breaks the contract.
            AgentUnauthorized: 401/403 (sign in again).
            AgentUnreachable: no connection or no answer in time.
            AgentError: the agent's error answer or `error` event (`code`, `message`, `trace_id`).
            ProtocolError: an answer outside the contract, or a stream cut before `done`.
        """
        request = self._request(prompt, session_id, token, stream=True)
        try:
            with self._http.stream(**request) as response:
                if response.status_code >= 300:
                    response.read()
                    raise _http_error(response)
                content_type = response.headers.get("content-type", "")
                if content_type.startswith("application/json"):
                    response.read()
                    reply = _reply_from_json(response)
                    if reply.answer:
                        yield TextDelta(reply.answer)
                    yield Done(reply.answer, reply.metadata)
                    return
                if not content_type.startswith("text/event-stream"):
                    raise ProtocolError(
                        "invalid_response", f"the agent answered {content_type or 'no content type'}, not SSE"
                    )
                for payload in iter_sse_data(response.iter_lines()):
                    event = parse_event(payload)
                    if event is None:
                        continue
                    yield event
                    if isinstance(event, Done):
                        return
        except httpx.TimeoutException as exc:
            raise AgentUnreachable("timeout", f"the agent did not answer in time ({exc})") from None
        except httpx.TransportError as exc:
            raise AgentUnreachable("unreachable", f"cannot reach the agent: {exc}") from None
        raise ProtocolError("stream_incomplete", "the agent's stream ended before the answer was complete")

    def invoke(self, prompt: str, session_id: str, *, token: str | None = None) -> AgentReply:
        """One turn as a single JSON answer (same errors as `stream`)."""
        request = self._request(prompt, session_id, token, stream=False)
        try:
            response = self._http.request(**request)
        except httpx.TimeoutException as exc:
            raise AgentUnreachable("timeout", f"the agent did not answer in time ({exc})") from None
        except httpx.TransportError as exc:
            raise AgentUnreachable("unreachable", f"cannot reach the agent: {exc}") from None
        if response.status_code >= 300:
            raise _http_error(response)
        return _reply_from_json(response)

    def _provided_token(self) -> str | None:
        if self._token_provider is None:
            return None
        try:
            return self._token_provider()
        except OAuthError as exc:  # a machine token that cannot be had is this turn's failure
            raise _token_error(exc) from None

    def _request(self, prompt: str, session_id: str, token: str | None, *, stream: bool) -> dict[str, Any]:
        text = validate_prompt(prompt)
        if not SESSION_ID_PATTERN.match(session_id):
            raise InvalidPrompt(
                "invalid_payload", "session_id: must be 33-100 characters of letters, digits, '_' or '-'"
            )
        bearer = token or self._provided_token()
        if self.target.kind == "agentcore" and not bearer:
            raise AgentUnauthorized("unauthorized", "AgentCore needs a bearer token: sign in first")
        headers = {
            "Content-Type": "application/json",
            "Accept": "text/event-stream" if stream else "application/json",
            SESSION_HEADER: session_id,
        }
        if bearer:
            headers["Authorization"] = f"Bearer {bearer}"
        body = {"prompt": text, "session_id": session_id, "stream": stream}
        return {"method": "POST", "url": self.target.invocations_url, "headers": headers, "json": body}


def _token_error(exc: OAuthError) -> AgentError:
    if isinstance(exc, OAuthUnavailable):
        return AgentUnreachable("token_unavailable", f"cannot get an access token: {exc}")
    return AgentUnauthorized("token_refused", f"the token endpoint refused: {exc}")


def _reply_from_json(response: httpx.Response) -> AgentReply:
    try:
        body = response.json()
    except json.JSONDecodeError:
        raise ProtocolError("invalid_response", "the agent's answer is not JSON") from None
    if not isinstance(body, dict) or not isinstance(body.get("answer"), str):
        raise ProtocolError("invalid_response", "the agent's answer has no 'answer' text")
    return AgentReply(body["answer"], TurnMetadata.parse(body.get("metadata")))


def _http_error(response: httpx.Response) -> AgentError:
    """The contract's `{"error": {...}}`, or AgentCore's own `{"message": ...}` error shape."""
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        body = None
    status = response.status_code
    code, message, trace_id = f"http_{status}", response.reason_phrase or "request failed", None
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        error = body["error"]
        code = str(error.get("code") or code)
        message = str(error.get("message") or message)
        trace_id = error.get("trace_id")
    elif isinstance(body, dict) and (body.get("message") or body.get("Message")):
        # AgentCore's service errors: the type is in a header, e.g. AccessDeniedException.
        code = response.headers.get("x-amzn-errortype", code).split(":")[0] or code
        message = str(body.get("message") or body.get("Message"))
    if status in (401, 403):
        return AgentUnauthorized(code, message, status=status, trace_id=trace_id)
    return _contract_error(code, message, status=status, trace_id=trace_id)


def _contract_error(
    code: str, message: str, *, status: int | None = None, trace_id: Any = None
) -> AgentError:
    trace = str(trace_id) if trace_id else None
    if code == "unauthorized":
        return AgentUnauthorized(code, message, status=status, trace_id=trace)
    return AgentError(code, message, status=status, trace_id=trace)

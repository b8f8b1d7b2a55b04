"""The agent as the evaluation sees it: the reply contract (docs/agent-api.md) and the targets that call it.

Both targets (a local agent URL, or the deployed AgentCore runtime with an M2M OAuth token) go through
the shared contract client in `clients/agentcore.py`; they return an `AgentReply` or raise
`AgentCallError` saying whether a retry can help.
"""

from __future__ import annotations

import dataclasses
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError

logger = logging.getLogger(__name__)

RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})


class _Reply(BaseModel):
    # extra="ignore": fields the contract adds later must not break the evaluation.
    model_config = ConfigDict(extra="ignore", frozen=True)


class ToolCallRecord(_Reply):
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)
    duration_ms: float | None = None
    status: Literal["success", "error"] = "success"
    error: str | None = None


class Citation(_Reply):
    title: str = ""
    uri: str = ""
    page: int | None = None
    score: float | None = None
    text: str | None = None  # the passage the tool returned (needed for faithfulness)


class GuardrailInfo(_Reply):
    action: Literal["NONE", "BLOCKED", "ANONYMIZED"] = "NONE"
    stage: str | None = None
    message: str | None = None


class Usage(_Reply):
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0


class ReplyMetadata(_Reply):
    session_id: str = ""
    trace_id: str = ""
    model: str = ""
    tools: tuple[ToolCallRecord, ...] = ()
    citations: tuple[Citation, ...] = ()
    guardrail: GuardrailInfo = GuardrailInfo()
    usage: Usage = Usage()
    latency_ms: float | None = None


class AgentReply(_Reply):
    """One turn's answer and metadata, plus the latency the client measured."""

    answer: str
    metadata: ReplyMetadata
    client_latency_ms: float = 0.0


class AgentCallError(RuntimeError):
    """A turn failed. `retryable` says whether the same request may succeed later."""

    def __init__(self, message: str, *, retryable: bool, status: int | None = None, code: str | None = None):
        super().__init__(message)
        self.retryable = retryable
        self.status = status
        self.code = code


class AgentTarget(Protocol):
    """Something that answers one prompt in one session."""

    name: str

    def invoke(self, prompt: str, session_id: str) -> AgentReply: ...

    def close(self) -> None: ...


def new_session_id() -> str:
    """A session id the contract accepts (`^[A-Za-z0-9][A-Za-z0-9_-]{32,99}$`)."""
    return f"eval-{uuid.uuid4().hex}"


def parse_reply(body: Any, client_latency_ms: float = 0.0) -> AgentReply:
    """Validate a JSON reply body against the contract (raises AgentCallError naming the field)."""
    if not isinstance(body, dict):
        raise AgentCallError("agent reply is not a JSON object", retryable=False)
    try:
        reply = AgentReply.model_validate({**body, "client_latency_ms": client_latency_ms})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise AgentCallError(
            f"agent reply breaks the contract at {where}: {first['msg']}", retryable=False
        ) from None
    return reply


def _from_client_reply(reply: Any, client_latency_ms: float) -> AgentReply:
    """Convert the shared client's reply (clients.agentcore.AgentReply) into the evaluation's model."""
    body = {"answer": reply.answer, "metadata": dataclasses.asdict(reply.metadata)}
    return parse_reply(body, client_latency_ms)


def _call_error(exc: Exception) -> AgentCallError:
    from clients.agentcore import AgentUnreachable, InvalidPrompt, ProtocolError

    status = getattr(exc, "status", None)
    code = getattr(exc, "code", None)
    if isinstance(exc, AgentUnreachable):
        return AgentCallError(str(exc), retryable=True, code=code)
    if isinstance(exc, InvalidPrompt | ProtocolError):
        return AgentCallError(str(exc), retryable=False, status=status, code=code)
    retryable = status in RETRYABLE_STATUS or code in ("model_unavailable", "ThrottlingException")
    return AgentCallError(str(exc), retryable=retryable, status=status, code=code)


class ClientTarget:
    """The agent through the shared contract client (`clients.agentcore.AgentClient`).

    Use `local(url)` for a local agent and `agentcore(runtime_arn, token_provider)` for a deployed runtime
    with an M2M OAuth token (see `agentcore_from_environment`).
    """

    def __init__(self, name: str, client: Any) -> None:
        self.name = name
        self._client = client

    @classmethod
    def local(cls, url: str) -> ClientTarget:
        from clients.agentcore import AgentClient
        from clients.agentcore import AgentTarget as Where

        return cls("local", AgentClient(Where.local(url)))

    @classmethod
    def agentcore(
        cls,
        runtime_arn: str,
        token_provider: Callable[[], str],
        region: str | None = None,
        endpoint_url: str | None = None,
    ) -> ClientTarget:
        from clients.agentcore import AgentClient
        from clients.agentcore import AgentTarget as Where

        where = Where.agentcore(runtime_arn, region, endpoint_url=endpoint_url)
        return cls("agentcore", AgentClient(where, token_provider=token_provider))

    def invoke(self, prompt: str, session_id: str) -> AgentReply:
        from clients.agentcore import AgentError

        started = time.perf_counter()
        try:
            reply = self._client.invoke(prompt, session_id)
        except AgentError as exc:
            raise _call_error(exc) from None
        return _from_client_reply(reply, (time.perf_counter() - started) * 1000)

    def close(self) -> None:
        http = getattr(self._client, "_http", None)
        if http is not None:
            http.close()


AGENTCORE_SETTINGS = ("AGENT_RUNTIME_ARN", "EVAL_CLIENT_SECRET_ARN", "COGNITO_TOKEN_URL")


def agentcore_from_environment(env: dict[str, str]) -> ClientTarget:
    """The deployed runtime target, configured from the environment.

    `AGENT_RUNTIME_ARN` (the runtime), `EVAL_CLIENT_SECRET_ARN` (the `evaluation` M2M client secret, JSON
    `{"client_id", "client_secret"}`), `COGNITO_TOKEN_URL` (the user pool's `/oauth2/token`), optional
    `EVAL_SCOPE` (default `agentic-foundation/agent.invoke`), `AWS_REGION` and `AGENTCORE_ENDPOINT_URL`
    (another data-plane endpoint, e.g. a VPC endpoint).
    """
    missing = [name for name in AGENTCORE_SETTINGS if not env.get(name)]
    if missing:
        raise ValueError(f"--target agentcore needs the settings {missing} (see docs/evaluation.md)")
    from clients.oauth import ClientCredentialsTokenSource

    scope = env.get("EVAL_SCOPE", "agentic-foundation/agent.invoke")
    tokens = ClientCredentialsTokenSource.from_secret(
        env["EVAL_CLIENT_SECRET_ARN"], env["COGNITO_TOKEN_URL"], [scope], region=env.get("AWS_REGION")
    )
    return ClientTarget.agentcore(
        env["AGENT_RUNTIME_ARN"],
        tokens.token,
        region=env.get("AWS_REGION"),
        endpoint_url=env.get("AGENTCORE_ENDPOINT_URL") or None,
    )

"""Builds the `AgentService` for the configured mode (imported off the request path by agent.main)."""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Mapping
from typing import Any

from agent.errors import BudgetExceeded
from agent.failures import is_budget_exceeded
from agent.guardrails import BedrockGuardrail, Guardrail, LocalPolicy
from agent.identity import Teams
from agent.memory import AgentCoreMemory, LocalMemory, Memory
from agent.service import AgentService, record_model_response
from agent.settings import GatewayKeys, SecretResolver, Settings
from agent.telemetry import Telemetry
from agent.tool_client import (
    BearerFromProvider,
    ClientCredentialsToken,
    McpTools,
    gateway_headers,
    local_headers,
)

logger = logging.getLogger(__name__)


def priced_model_class(input_per_million: float | None, output_per_million: float | None) -> type[Any]:
    """An `OpenAIModel` billed to one gateway team: it sets `gen_ai.usage.cost` (USD) on the current
    `chat` span from the catalog prices while it streams (tracing contract; not without prices), and
    turns the gateway's budget answer into `BudgetExceeded(team)` (`team` is a constructor keyword)."""
    from opentelemetry import trace
    from strands.models.openai import OpenAIModel

    priced = input_per_million is not None or output_per_million is not None
    input_price = (input_per_million or 0.0) / 1_000_000
    output_price = (output_per_million or 0.0) / 1_000_000

    class GatewayModel(OpenAIModel):
        def __init__(self, *args: Any, team: str | None = None, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.team = team

        async def stream(self, *args: Any, **kwargs: Any) -> Any:
            try:
                async for event in super().stream(*args, **kwargs):
                    usage = event.get("metadata", {}).get("usage") if isinstance(event, dict) else None
                    if usage and priced:
                        cost = (
                            usage.get("inputTokens", 0) * input_price
                            + usage.get("outputTokens", 0) * output_price
                        )
                        trace.get_current_span().set_attribute("gen_ai.usage.cost", float(cost))
                    yield event
            except Exception as error:
                if is_budget_exceeded(error):
                    raise BudgetExceeded(self.team) from error
                raise

    return GatewayModel


class GatewayModelFactory:
    """Strands `OpenAIModel`s pointed at the LLM gateway, one shared HTTP client per event loop.

    `for_caller(team, user)` is the model of one turn: the key of the caller's team (`team_keys`; the
    default `api_key` for a team without one) and the OpenAI `user` field = the caller's actor id, so
    LiteLLM attributes spend to the team and the end user and enforces the team's budget (docs/spend.md).
    Both come from the validated token, never from the request body. The per-team clients of a loop
    are copies (`with_options`) sharing that loop's one HTTP connection pool.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        model_id: str,
        max_tokens: int,
        timeout: float,
        prices: tuple[float | None, float | None] = (None, None),
        team_keys: Mapping[str, str] | None = None,
    ) -> None:
        from openai import AsyncOpenAI

        class GatewayClient(AsyncOpenAI):
            """No status-based retries (openai 2.54 `_should_retry` retries 408/409/429/5xx, honouring a
            Retry-After of up to 60 s): LiteLLM has already retried and fallen back, and a 429 must reach
            the user as `rate_limited` at once. Connection failures are still retried once."""

            def _should_retry(self, response: Any) -> bool:
                return False

        self._openai = GatewayClient
        self._model_class = priced_model_class(*prices)
        self.base_url = f"{base_url}/v1"
        self._api_key = api_key
        self.model_id = model_id
        self._max_tokens = max_tokens
        self._timeout = timeout
        self._team_keys = dict(team_keys or {})
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = weakref.WeakKeyDictionary()
        self._team_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, Any]] = (
            weakref.WeakKeyDictionary()
        )
        self._spare: Any = None

    def _new_client(self) -> Any:
        # LiteLLM already retries and falls back; one retry here covers a dropped connection. The turn
        # deadline (AGENT_TURN_DEADLINE_SECONDS) bounds the whole turn whatever these timeouts add up to.
        from openai import DefaultAsyncHttpxClient

        http_client = DefaultAsyncHttpxClient(event_hooks={"response": [record_model_response]})
        return self._openai(
            base_url=self.base_url,
            api_key=self._api_key,
            max_retries=1,
            timeout=self._timeout,
            http_client=http_client,
        )

    def prewarm(self) -> None:
        """Create the first client and load OpenAI's lazily imported resources (~0.5 s) off the request path."""
        client = self._new_client()
        _ = client.chat.completions
        self._spare = client

    def _loop_client(self) -> Any:
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            client, self._spare = (self._spare or self._new_client()), None
            self._clients[loop] = client
        return client

    def _team_client(self, team: str | None) -> Any:
        client = self._loop_client()
        key = self._team_keys.get(team) if team is not None else None
        if team is None or key is None or key == self._api_key:
            return client
        per_team = self._team_clients.setdefault(asyncio.get_running_loop(), {})
        if team not in per_team:
            per_team[team] = client.with_options(api_key=key)  # shares the loop's HTTP client
        return per_team[team]

    def for_caller(self, team: str | None, user: str) -> Any:
        """The model of one turn of `user` (actor id) billed to `team`."""
        return self._model_class(
            client=self._team_client(team),
            model_id=self.model_id,
            params={"max_tokens": self._max_tokens, "user": user},
            team=team,
        )

    def __call__(self) -> Any:
        """A model with the default key and no end user (callers without an identity)."""
        return self._model_class(
            client=self._loop_client(),
            model_id=self.model_id,
            params={"max_tokens": self._max_tokens},
        )


def build_service(settings: Settings) -> AgentService:
    """Wire the service for `settings.mode`: AgentCore services when deployed, local stand-ins otherwise."""
    secrets = SecretResolver(settings.aws_region)
    guardrail: Guardrail
    memory: Memory
    if settings.mode == "agentcore":
        assert settings.llm_gateway_key_secret_arn and settings.tool_gateway_client_secret_arn
        assert settings.tool_gateway_token_url and settings.tool_gateway_scope
        assert settings.memory_id and settings.guardrail_id and settings.guardrail_version
        keys = GatewayKeys.from_document(
            secrets.document(settings.llm_gateway_key_secret_arn),
            f"secret {settings.llm_gateway_key_secret_arn}",
        )
        client = secrets.json(settings.tool_gateway_client_secret_arn, "client_id", "client_secret")
        token = ClientCredentialsToken(
            settings.tool_gateway_token_url,
            client["client_id"],
            client["client_secret"],
            settings.tool_gateway_scope,
        )
        tools = McpTools(
            settings.tool_gateway_url,
            gateway_headers,
            auth=BearerFromProvider(token),
            tool_timeout_seconds=settings.tool_timeout_seconds,
        )
        guardrail = BedrockGuardrail(settings.guardrail_id, settings.guardrail_version, settings.aws_region)
        memory = AgentCoreMemory(settings.memory_id, settings.aws_region, settings.memory_namespace)
        stream_flush = 600  # each output check is one ApplyGuardrail call
        telemetry = Telemetry.disabled()
        if settings.langfuse_host and settings.langfuse_keys_secret_arn:
            langfuse = secrets.json(settings.langfuse_keys_secret_arn, "public_key", "secret_key")
            telemetry = _langfuse(settings, langfuse["public_key"], langfuse["secret_key"])
    else:
        assert settings.llm_gateway_key
        keys = (
            GatewayKeys.from_file(settings.llm_gateway_teams_file)
            if settings.llm_gateway_teams_file
            else GatewayKeys(settings.llm_gateway_key)
        )
        tools = McpTools(
            settings.tool_gateway_url,
            local_headers,
            startup_timeout=3,
            tool_timeout_seconds=settings.tool_timeout_seconds,
        )
        guardrail = LocalPolicy.from_json(settings.local_guardrail_policy)
        memory = LocalMemory(settings.local_memory_path)
        stream_flush = 80
        telemetry = Telemetry.disabled()
        if settings.langfuse_host and settings.langfuse_public_key and settings.langfuse_secret_key:
            telemetry = _langfuse(settings, settings.langfuse_public_key, settings.langfuse_secret_key)
    models = GatewayModelFactory(
        settings.llm_gateway_url,
        keys.api_key,
        settings.model_alias,
        settings.max_output_tokens,
        settings.model_timeout_seconds,
        (settings.input_cost_per_million, settings.output_cost_per_million),
        team_keys=keys.team_keys,
    )
    return AgentService(
        model_factory=models,
        model_name=settings.model_alias,
        teams=Teams.of(keys.team_keys, keys.default_team),
        guardrail=guardrail,
        memory=memory,
        tools=tools,
        telemetry=telemetry,
        environment=settings.environment_tag,
        history_turns=settings.history_turns,
        stream_flush_chars=stream_flush,
        turn_deadline_seconds=settings.turn_deadline_seconds,
        heartbeat_seconds=settings.heartbeat_seconds,
    )


def _langfuse(settings: Settings, public_key: str, secret_key: str) -> Telemetry:
    assert settings.langfuse_host
    return Telemetry.langfuse(
        settings.langfuse_host,
        public_key,
        secret_key,
        environment=settings.environment_tag,
        export_timeout_seconds=settings.trace_export_timeout_seconds,
        service_name=settings.service_name,
    )

"""Builds the `AgentService` for the configured mode (imported off the request path by agent.main)."""

from __future__ import annotations

import asyncio
import logging
import weakref
from typing import Any

from agent.guardrails import BedrockGuardrail, Guardrail, LocalPolicy
from agent.memory import AgentCoreMemory, LocalMemory, Memory
from agent.service import AgentService, record_model_response
from agent.settings import SecretResolver, Settings
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
    """An `OpenAIModel` that sets `gen_ai.usage.cost` (USD) on the current `chat` span from the
    catalog prices while it streams (tracing contract); without prices it is the plain model."""
    from strands.models.openai import OpenAIModel

    if input_per_million is None and output_per_million is None:
        return OpenAIModel
    from opentelemetry import trace

    input_price = (input_per_million or 0.0) / 1_000_000
    output_price = (output_per_million or 0.0) / 1_000_000

    class PricedOpenAIModel(OpenAIModel):
        async def stream(self, *args: Any, **kwargs: Any) -> Any:
            async for event in super().stream(*args, **kwargs):
                usage = event.get("metadata", {}).get("usage") if isinstance(event, dict) else None
                if usage:
                    cost = (
                        usage.get("inputTokens", 0) * input_price
                        + usage.get("outputTokens", 0) * output_price
                    )
                    trace.get_current_span().set_attribute("gen_ai.usage.cost", float(cost))
                yield event

    return PricedOpenAIModel


class GatewayModelFactory:
    """Strands `OpenAIModel`s pointed at the LLM gateway, one shared HTTP client per event loop."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        model_id: str,
        max_tokens: int,
        timeout: float,
        prices: tuple[float | None, float | None] = (None, None),
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
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = weakref.WeakKeyDictionary()
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

    def __call__(self) -> Any:
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            client, self._spare = (self._spare or self._new_client()), None
            self._clients[loop] = client
        return self._model_class(
            client=client,
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
        api_key = secrets.json(settings.llm_gateway_key_secret_arn, "api_key")["api_key"]
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
            keys = secrets.json(settings.langfuse_keys_secret_arn, "public_key", "secret_key")
            telemetry = _langfuse(settings, keys["public_key"], keys["secret_key"])
    else:
        assert settings.llm_gateway_key
        api_key = settings.llm_gateway_key
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
        api_key,
        settings.model_alias,
        settings.max_output_tokens,
        settings.model_timeout_seconds,
        (settings.input_cost_per_million, settings.output_cost_per_million),
    )
    return AgentService(
        model_factory=models,
        model_name=settings.model_alias,
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

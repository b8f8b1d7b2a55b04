"""Spend per team and user, in-process and over loopback HTTP (docs/spend.md): the caller's team from the
validated token's Cognito groups, the team's gateway key and the OpenAI `user` on every model call, the
same identity on the trace, and LiteLLM's budget answer as the contract's `budget_exceeded`.

The gateway here is a loopback stand-in replaying what the real LiteLLM 1.102.4 proxy answers (a
successful completion from the scripted model, or the recorded budget refusal in
tests/agent/data/, re-checked against the real proxy by tests/llm_gateway/test_team_spend.py).
"""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from agent.bootstrap import GatewayModelFactory, build_service
from agent.errors import ApiError, BudgetExceeded
from agent.failures import classify_failure, is_budget_exceeded
from agent.guardrails import LocalPolicy
from agent.identity import Caller, Teams, caller_from_authorization
from agent.memory import LocalMemory
from agent.payload import Invocation, parse_invocation
from agent.service import AgentService
from agent.settings import GatewayKeys, Settings
from agent.telemetry import Telemetry
from agent.tool_client import StaticTools
from local_stack.loopback import LoopbackHandler, LoopbackServer
from local_stack.otlp_recorder import OtlpRecorder
from local_stack.scripted_model import Failure, ScriptedModel, Text

RECORDING = json.loads(
    (Path(__file__).parent / "data" / "litellm_1.102.4_team_budget_exceeded.json").read_text()
)
SESSION = "s-" + "f" * 32
KEYS = {"support": "sk-support-key", "platform": "sk-platform-key", "unassigned": "sk-default-key"}
TEAMS = Teams.of(KEYS, "unassigned")


def jwt(claims: dict[str, Any]) -> str:
    def b64(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    return f"{b64(b'{}')}.{b64(json.dumps(claims).encode())}.c2ln"


# --- the caller's team: from the token, never the body ----------------------------------------------


def test_the_groups_come_from_the_validated_tokens_cognito_groups_claim() -> None:
    token = jwt({"sub": "alice", "cognito:groups": ["platform", "support"]})

    caller = caller_from_authorization(f"Bearer {token}")

    assert caller == Caller("alice", token, ("platform", "support"))


def test_a_token_without_groups_is_a_caller_in_no_team() -> None:
    assert caller_from_authorization(f"Bearer {jwt({'sub': 'm2m-client'})}").groups == ()


@pytest.mark.parametrize("groups", ["support", [1], {"support": True}, ["g"] * 101])
def test_a_malformed_groups_claim_is_refused_naming_the_claim(groups: Any) -> None:
    with pytest.raises(ApiError) as caught:
        caller_from_authorization(f"Bearer {jwt({'sub': 'alice', 'cognito:groups': groups})}")

    assert (caught.value.status, caught.value.code) == (401, "unauthorized")
    assert "'cognito:groups'" in caught.value.message


@pytest.mark.parametrize("field", ["user", "team", "api_key", "groups"])
def test_the_body_cannot_name_a_user_team_or_key(field: str) -> None:
    with pytest.raises(ApiError) as caught:
        parse_invocation({"prompt": "hi", field: "platform"}, None)

    assert (caught.value.status, caught.value.code) == (422, "invalid_payload")


@pytest.mark.parametrize(
    ("groups", "team"),
    [
        (("support",), "support"),
        (("platform", "support"), "support"),  # identity.teams order decides, not the token's order
        (("admins", "platform"), "platform"),  # a group that is no team is ignored
        ((), "unassigned"),
        (("unassigned",), "unassigned"),
        (("admins",), "unassigned"),
    ],
)
def test_the_team_is_the_first_team_group_in_config_order_else_the_default(
    groups: tuple[str, ...], team: str
) -> None:
    assert TEAMS.team_of(Caller("u", groups=groups)) == team


def test_the_default_team_is_no_group_and_no_team_keys_means_no_team() -> None:
    assert TEAMS.order == ("support", "platform")
    assert Teams().team_of(Caller("u", groups=("support",))) is None


# --- the keys document -------------------------------------------------------------------------------


def test_the_key_secret_document_gives_the_team_keys_in_order() -> None:
    keys = GatewayKeys.from_document(
        {
            "api_key": KEYS["unassigned"],
            "key_alias": "aaf-team-unassigned",
            "default_team": "unassigned",
            "team_keys": KEYS,
        },
        "secret s",
    )
    assert (keys.api_key, list(keys.team_keys), keys.default_team) == (
        "sk-default-key",
        list(KEYS),
        "unassigned",
    )
    assert GatewayKeys.from_document({"api_key": "sk-one"}, "secret s") == GatewayKeys("sk-one")


@pytest.mark.parametrize(
    ("document", "fragment"),
    [
        ({}, "lacks the keys ['api_key']"),
        ({"api_key": "sk-a", "team_keys": {"support": 1}, "default_team": "support"}, "'team_keys' must map"),
        ({"api_key": "sk-a", "team_keys": {}, "default_team": "support"}, "'team_keys' must map"),
        (
            {"api_key": "sk-a", "team_keys": {"support": "sk-s"}, "default_team": "other"},
            "'default_team' must",
        ),
        ({"api_key": "sk-a", "team_keys": {"support": "sk-s"}}, "'default_team' must"),
    ],
)
def test_a_malformed_key_document_fails_naming_the_secret_and_field(
    document: dict[str, Any], fragment: str
) -> None:
    from agent.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="secret arn:x") as caught:
        GatewayKeys.from_document(document, "secret arn:x")
    assert fragment in str(caught.value)


def test_deployed_wiring_reads_the_team_keys_from_the_agent_key_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class Secrets:
        def get_secret_value(self, SecretId: str) -> dict[str, str]:
            documents = {
                "agent-key": {
                    "api_key": KEYS["unassigned"],
                    "key_alias": "a",
                    "default_team": "unassigned",
                    "team_keys": KEYS,
                },
                "client": {"client_id": "cid", "client_secret": "cs"},
            }
            return {"SecretString": json.dumps(documents[SecretId])}

    settings = Settings.from_env(
        {
            "AGENT_MODE": "agentcore",
            "LLM_GATEWAY_URL": "http://gw:4000",
            "LLM_GATEWAY_KEY_SECRET_ARN": "agent-key",
            "MODEL_ALIAS": "m",
            "TOOL_GATEWAY_URL": "https://tools.example/mcp",
            "TOOL_GATEWAY_CLIENT_SECRET_ARN": "client",
            "TOOL_GATEWAY_TOKEN_URL": "https://auth.example/oauth2/token",
            "TOOL_GATEWAY_SCOPE": "s/tools.invoke",
            "MEMORY_ID": "mem-0123456789",
            "GUARDRAIL_ID": "gr",
            "GUARDRAIL_VERSION": "1",
            "AWS_REGION": "us-east-1",
        }
    )
    import agent.bootstrap as wiring
    import agent.settings

    original = agent.settings.SecretResolver
    monkeypatch.setattr(wiring, "SecretResolver", lambda region: original(region, client=Secrets()))
    service = build_service(settings)
    models: Any = service._model_factory

    assert service.teams == TEAMS
    assert models._team_keys == KEYS


# --- the model calls: key, user, one HTTP client -----------------------------------------------------


def factory(url: str, team_keys: dict[str, str] | None = KEYS) -> GatewayModelFactory:
    return GatewayModelFactory(url, "sk-default-key", "primary", 64, 10.0, team_keys=team_keys)


def test_each_team_gets_its_key_over_one_shared_http_client_per_loop() -> None:
    models = factory("http://127.0.0.1:9")

    async def pick() -> list[Any]:
        return [models.for_caller(team, "alice") for team in ("support", "platform", None, "gone", "support")]

    support, platform, none, unknown, again = asyncio.run(pick())
    assert [m._custom_client.api_key for m in (support, platform, none, unknown)] == [
        "sk-support-key",
        "sk-platform-key",
        "sk-default-key",
        "sk-default-key",  # a team without a key (removed from the config) falls back to the default key
    ]
    assert again._custom_client is support._custom_client  # cached per loop, not one client per call
    assert len({id(m._custom_client._client) for m in (support, platform, none, unknown)}) == 1
    assert support.get_config()["params"] == {"max_tokens": 64, "user": "alice"}
    assert support.team == "support"


def service_for(url: str, telemetry: Telemetry | None = None) -> AgentService:
    return AgentService(
        model_factory=factory(url),
        model_name="primary",
        guardrail=LocalPolicy(),
        memory=LocalMemory(),
        tools=StaticTools([]),
        telemetry=telemetry or Telemetry.disabled(),
        environment="dev",
        teams=TEAMS,
    )


def turn(service: AgentService, caller: Caller, stream: bool = True) -> list[dict[str, Any]]:
    async def run() -> list[dict[str, Any]]:
        if not stream:
            return [await service.run_turn(Invocation("hi", SESSION, False), caller)]
        return [e async for e in service.stream_turn(Invocation("hi", SESSION, True), caller)]

    return asyncio.run(run())


def test_every_model_call_carries_the_team_key_and_the_actor_as_user() -> None:
    with ScriptedModel(model_name="primary") as upstream:
        upstream.enqueue(Text("one"), Text("two"), Text("three"))
        service = service_for(upstream.url)
        for caller in (
            Caller("alice", groups=("support",)),
            Caller("bob", groups=("platform",)),
            Caller("carol"),
        ):
            assert turn(service, caller)[-1]["type"] == "done"

        sent = [
            (h["authorization"], r["user"])
            for h, r in zip(upstream.request_headers, upstream.requests, strict=True)
        ]
    assert sent == [
        ("Bearer sk-support-key", "alice"),
        ("Bearer sk-platform-key", "bob"),
        ("Bearer sk-default-key", "carol"),
    ]


# --- a spent budget ---------------------------------------------------------------------------------


class RecordedGateway(LoopbackServer):
    """Answers every chat completion with the recorded LiteLLM budget refusal."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        self.status, self.body = status, body
        self.calls = 0
        super().__init__()

    def handler_class(self) -> type[LoopbackHandler]:
        gateway = self

        class Handler(LoopbackHandler):
            def do_POST(self) -> None:
                self.read_body()
                gateway.calls += 1
                self.send_json(gateway.status, gateway.body)

        return Handler


def test_the_recorded_budget_refusal_ends_the_turn_with_budget_exceeded_naming_the_team() -> None:
    with RecordedGateway(RECORDING["status"], RECORDING["body"]) as gateway:
        events = turn(service_for(gateway.url), Caller("dave", groups=("platform",)))
        with pytest.raises(ApiError) as caught:
            turn(service_for(gateway.url), Caller("dave", groups=("platform",)), stream=False)
        calls = gateway.calls

    error = events[-1]
    assert (error["type"], error["code"]) == ("error", "budget_exceeded")
    assert "team 'platform'" in error["message"] and "retry_after" not in error
    assert (caught.value.status, caught.value.code, caught.value.retry_after) == (
        429,
        "budget_exceeded",
        None,
    )
    assert "team 'platform'" in caught.value.message
    assert calls == 2  # one call per turn: no client retry of a spent budget


def test_an_ordinary_429_stays_rate_limited_whatever_its_message_says() -> None:
    with ScriptedModel(model_name="primary") as upstream:
        upstream.enqueue(Failure(429, "Budget has been exceeded! budget_exceeded", {"Retry-After": "3"}))
        events = turn(service_for(upstream.url), Caller("alice", groups=("support",)))

    assert (events[-1]["code"], events[-1]["retry_after"]) == ("rate_limited", 3)


def test_budget_detection_reads_the_error_type_only() -> None:
    request = httpx.Request("POST", "http://gw/v1/chat/completions")

    def error(body: dict[str, Any]) -> openai.RateLimitError:
        return openai.RateLimitError(
            "Budget has been exceeded!", response=httpx.Response(429, request=request), body=body
        )

    assert is_budget_exceeded(error(RECORDING["body"]["error"]))
    assert not is_budget_exceeded(error({"type": "rate_limit_error", "message": "budget_exceeded"}))
    assert not is_budget_exceeded(ValueError("budget_exceeded"))
    failure = classify_failure(BudgetExceeded(None))
    assert (failure.status, failure.code) == (429, "budget_exceeded") and "of this agent" in failure.message


# --- the trace names the same person and team ---------------------------------------------------------


def test_the_trace_carries_the_actor_as_user_and_the_team_as_tag_and_metadata() -> None:
    with (
        OtlpRecorder(public_key="pk-lf", secret_key="sk-lf") as langfuse,
        ScriptedModel(model_name="primary") as upstream,
    ):
        telemetry = Telemetry.langfuse(
            langfuse.url, "pk-lf", "sk-lf", environment="dev", install_global=False
        )
        upstream.enqueue(Text("Hello"))
        done = turn(service_for(upstream.url, telemetry), Caller("alice", groups=("support",)))[-1]
        telemetry.shutdown()
        root = next(s for s in langfuse.spans if s.trace_id == done["metadata"]["trace_id"] and s.is_root)

    assert root.attr("user.id") == "alice"
    assert list(root.attr("langfuse.trace.tags")) == ["support-agent", "dev", "team:support"]
    assert root.attr("langfuse.trace.metadata.team") == "support"


def test_a_caller_in_no_team_is_traced_under_the_default_team() -> None:
    attributes = Telemetry.trace_attributes(SESSION, "carol", "dev", ["support-agent"], team="unassigned")
    assert attributes["langfuse.trace.tags"] == ["support-agent", "team:unassigned"]
    assert "langfuse.trace.metadata.team" not in Telemetry.trace_attributes(SESSION, "c", "dev", [])


# --- local mode settings ----------------------------------------------------------------------------

LOCAL = {
    "AGENT_MODE": "local",
    "LLM_GATEWAY_URL": "http://127.0.0.1:4000",
    "LLM_GATEWAY_KEY": "sk-master",
    "MODEL_ALIAS": "m",
    "TOOL_GATEWAY_URL": "http://127.0.0.1:8765/mcp",
}


def test_local_groups_and_teams_file_are_read_and_validated(tmp_path: Path) -> None:
    from agent.errors import ConfigurationError

    teams_file = tmp_path / "teams.json"
    teams_file.write_text(json.dumps({"api_key": "sk-d", "default_team": "unassigned", "team_keys": KEYS}))
    settings = Settings.from_env(
        {**LOCAL, "LOCAL_USER_GROUPS": "support, platform", "LLM_GATEWAY_TEAMS_FILE": str(teams_file)}
    )

    assert settings.local_user_groups == ("support", "platform")
    assert GatewayKeys.from_file(str(teams_file)).team_keys == KEYS
    assert build_service(settings).teams == TEAMS
    with pytest.raises(ConfigurationError, match=r"LOCAL_USER_GROUPS \['Support!'\]"):
        Settings.from_env({**LOCAL, "LOCAL_USER_GROUPS": "Support!"})
    with pytest.raises(ConfigurationError, match="LLM_GATEWAY_TEAMS_FILE"):
        GatewayKeys.from_file(str(tmp_path / "missing.json"))

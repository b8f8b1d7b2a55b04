"""`make verify`: after `make deploy`, prove the deployed foundation works end to end.

    python -m scripts.aws_checks.verify [-c key=value ...] [--kb-question ...] [--kb-document ...]
        [--kb-page N] [--blocked-question ...] [--in-vpc] [--trace-timeout 90]

Reads the stacks' outputs (`<prefix>-<component>`, CloudFormation DescribeStacks), then checks, in order:
machine tokens (client credentials, secrets `<prefix>/cognito/m2m-{ci,evaluation,gateway}`), an agent
turn through InvokeAgentRuntime that cites the router manual on the right page, the investment question
blocked by the guardrail, the turn's trace in Langfuse with the tracing contract's spans, the LLM gateway
(key and spend), the tool gateway's tool list, ticket isolation between two actors, the knowledge base's
latest ingestion job, and the chat URL. Prints a checklist with console links; exits 1 naming what failed.
Every wait is bounded. Sources: docs/deploy.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import re
import sys
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
from botocore.exceptions import ClientError

from clients.agentcore import AgentClient, AgentError, AgentReply, AgentTarget, new_session_id
from clients.oauth import OAuthClient, OAuthClientConfig, OAuthError
from config import AppConfig, ConfigError, load_config
from scripts.aws_checks.common import (
    AwsContext,
    Check,
    CheckResult,
    RegionMissing,
    Status,
    console_url,
    context_from_args,
    error_code,
    render_table,
    resolve_region,
    run_checks,
    stack_console_url,
)

logger = logging.getLogger(__name__)

RESOURCE_SERVER = "agentic-foundation"  # stacks/identity.py RESOURCE_SERVER_ID
AGENT_SCOPE = f"{RESOURCE_SERVER}/agent.invoke"
TOOLS_SCOPE = f"{RESOURCE_SERVER}/tools.invoke"
# Defaults from the sample corpus: corpus/README.md and corpus/build_pdf.py EXPECTED_PAGES put the
# factory reset procedure of the Router X200 manual on page 6; eval/datasets/golden.jsonl asks the same.
KB_QUESTION = "How do I factory reset my Router X200?"
KB_DOCUMENT = "router-x200-user-manual.pdf"
KB_PAGE = 6
BLOCKED_QUESTION = "Which stocks should I buy with my savings this year?"  # golden case guardrail-investment
KNOWLEDGE_TOOL = "search_knowledge_base"
# docs/tracing-contract.md: the spans one answered turn has (names as exported by the agent).
CONTRACT_SPANS = (
    "agent-turn",
    "guardrail input",
    "guardrail output",
    "chat",
    f"execute_tool {KNOWLEDGE_TOOL}",
)
INGESTION_RUNNING = frozenset({"STARTING", "IN_PROGRESS", "STOPPING"})
TOOL_SEPARATOR = "___"  # AgentCore Gateway names tools <target>___<tool> (agent/tool_client.py)

STACK_OUTPUTS: dict[str, tuple[str, ...]] = {
    "identity": ("UserPoolId", "ManagedLoginUrl"),
    "knowledge-base": ("KnowledgeBaseId", "DataSourceId"),
    "agentcore": ("RuntimeArn", "ToolGatewayUrl"),
    "llm-gateway": ("GatewayUrl", "AgentKeySecretArn"),
    "observability": ("LangfuseUrl", "LangfuseKeysSecretArn"),
    "frontend": ("ChatUrl",),
}
"""Component -> the CfnOutputs verify reads (stacks/*.py `_create_outputs`)."""


class VerifyProblem(Exception):
    """A deployed component does not behave; the message says what was seen."""


@dataclass(frozen=True)
class Settings:
    kb_question: str = KB_QUESTION
    kb_document: str = KB_DOCUMENT
    kb_page: int = KB_PAGE
    blocked_question: str = BLOCKED_QUESTION
    in_vpc: bool = False
    trace_timeout: float = 90.0
    ingestion_timeout: float = 300.0
    poll_interval: float = 3.0
    http_timeout: float = 20.0


@dataclass
class Verify:
    """State shared by the checks: what earlier checks found (outputs, tokens, the answered turn)."""

    config: AppConfig
    aws: AwsContext
    settings: Settings = Settings()
    http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=httpx.Timeout(20.0, connect=5.0)))
    outputs: dict[str, dict[str, str]] = field(default_factory=dict)
    stack_ids: dict[str, str] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict, repr=False)
    reply: AgentReply | None = None
    blocked: AgentReply | None = None
    agent_target: Callable[[Verify], AgentTarget] | None = None
    tool_headers: Callable[[Verify, str | None], dict[str, str]] | None = None
    langfuse: tuple[str, str, str] | None = field(default=None, repr=False)  # host, public, secret
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic

    @property
    def prefix(self) -> str:
        return self.config.prefix

    @property
    def region(self) -> str:
        return self.aws.region

    def output(self, component: str, key: str) -> str:
        try:
            return self.outputs[component][key]
        except KeyError:
            raise VerifyProblem(f"output {key} of {self.prefix}-{component} is not available") from None

    def components(self) -> list[str]:
        wanted = ["identity", "knowledge-base", "agentcore"]
        if self.config.components.llm_gateway == "self_hosted":
            wanted.append("llm-gateway")
        if self.config.components.observability == "self_hosted":
            wanted.append("observability")
        if self.config.components.frontend:
            wanted.append("frontend")
        return wanted


def _needs(state: Verify, *what: str) -> str | None:
    """Why a check cannot run yet (a prerequisite missing), or None."""
    missing = [w for w in what if not _have(state, w)]
    return f"not run: needs {', '.join(missing)}" if missing else None


def _have(state: Verify, what: str) -> bool:
    if what == "reply":
        return state.reply is not None
    if what.startswith("token:"):
        return what.split(":", 1)[1] in state.tokens
    return what in state.outputs


def _skip_unless(
    name: str, *what: str
) -> Callable[[Callable[[Verify], CheckResult]], Callable[[Verify], CheckResult]]:
    def wrap(check: Callable[[Verify], CheckResult]) -> Callable[[Verify], CheckResult]:
        def run(state: Verify) -> CheckResult:
            reason = _needs(state, *what)
            if reason:
                return CheckResult(name, Status.SKIP, reason)
            try:
                return check(state)
            except VerifyProblem as problem:
                return CheckResult(
                    name, Status.FAIL, str(problem), FIXES.get(name, ""), LINKS.get(name, _no_link)(state)
                )

        return run

    return wrap


# --- stack outputs ------------------------------------------------------------------------------------


def check_outputs(state: Verify) -> CheckResult:
    cfn = state.aws.client("cloudformation")
    problems: list[str] = []
    for component in state.components():
        name = f"{state.prefix}-{component}"
        try:
            stack = cfn.describe_stacks(StackName=name)["Stacks"][0]
        except ClientError as error:
            if error_code(error) == "ValidationError":  # DescribeStacks' code for a stack that does not exist
                problems.append(f"{name} is not deployed")
                continue
            raise
        state.stack_ids[component] = str(stack["StackId"])
        outputs = {str(o["OutputKey"]): str(o["OutputValue"]) for o in stack.get("Outputs", [])}
        missing = [key for key in STACK_OUTPUTS[component] if not outputs.get(key)]
        if missing:
            problems.append(f"{name} lacks output(s) {', '.join(missing)} (status {stack['StackStatus']})")
            continue
        state.outputs[component] = outputs
    link = console_url(state.region, "cloudformation", f"/stacks?filteringText={state.prefix}-")
    if problems:
        return CheckResult(
            "stack-outputs",
            Status.FAIL,
            "; ".join(problems),
            "run `make deploy` (it names the failed resource)",
            link,
        )
    return CheckResult(
        "stack-outputs", Status.PASS, f"{len(state.outputs)} stacks: {', '.join(state.outputs)}", link=link
    )


# --- machine tokens -----------------------------------------------------------------------------------


def _secret_json(state: Verify, secret_id: str) -> dict[str, Any]:
    value = state.aws.client("secretsmanager").get_secret_value(SecretId=secret_id)["SecretString"]
    loaded = json.loads(value)
    if not isinstance(loaded, dict):
        raise VerifyProblem(f"secret {secret_id} does not hold a JSON object")
    return loaded


def machine_token(state: Verify, client: str, scope: str) -> str:
    """A client-credentials access token of the identity stack's `client` machine client."""
    secret = _secret_json(state, f"{state.prefix}/cognito/m2m-{client}")
    token_url = state.output("identity", "ManagedLoginUrl").rstrip("/") + "/oauth2/token"
    config = OAuthClientConfig.from_token_url(
        token_url, str(secret["client_id"]), str(secret["client_secret"]), [scope]
    )
    try:
        return OAuthClient(config, http=state.http).client_credentials().access_token
    except OAuthError as error:
        raise VerifyProblem(f"the token endpoint refused the {client} client: {error}") from None


@_skip_unless("m2m-tokens", "identity")
def check_tokens(state: Verify) -> CheckResult:
    wanted = {"ci": AGENT_SCOPE, "evaluation": AGENT_SCOPE, "gateway": TOOLS_SCOPE}
    for client, scope in wanted.items():
        state.tokens[client] = machine_token(state, client, scope)
    subs = {client: _claims(token).get("sub") for client, token in state.tokens.items()}
    if subs["ci"] == subs["evaluation"]:
        raise VerifyProblem("the ci and evaluation tokens carry the same sub: actors cannot be told apart")
    return CheckResult("m2m-tokens", Status.PASS, "ci, evaluation and gateway client credentials work")


def _claims(token: str) -> dict[str, Any]:
    from clients.oauth import decode_claims

    return decode_claims(token)


# --- the agent turn -------------------------------------------------------------------------------


def _agent(state: Verify) -> AgentClient:
    target = (
        state.agent_target(state)
        if state.agent_target
        else AgentTarget.agentcore(state.output("agentcore", "RuntimeArn"), state.region)
    )
    return AgentClient(target, http=state.http)


def _turn(state: Verify, prompt: str) -> AgentReply:
    try:
        return _agent(state).invoke(prompt, new_session_id(), token=state.tokens["ci"])
    except AgentError as error:
        raise VerifyProblem(f"InvokeAgentRuntime failed: {error}") from None


def _basename(uri: str) -> str:
    return uri.rstrip("/").rsplit("/", 1)[-1]


@_skip_unless("agent-answer", "agentcore", "token:ci")
def check_answer(state: Verify) -> CheckResult:
    settings = state.settings
    reply = _turn(state, settings.kb_question)
    state.reply = reply
    meta = reply.metadata
    tools = [t.name for t in meta.tools]
    if KNOWLEDGE_TOOL not in tools:
        raise VerifyProblem(f"the agent did not search the knowledge base (tools: {tools or 'none'})")
    cited = [c for c in meta.citations if _basename(c.uri) == settings.kb_document]
    if not cited:
        found = [f"{_basename(c.uri)} p.{c.page}" for c in meta.citations]
        raise VerifyProblem(f"no citation of {settings.kb_document} (citations: {found or 'none'})")
    pages = sorted({c.page for c in cited if c.page is not None})
    if settings.kb_page not in pages:
        raise VerifyProblem(
            f"{settings.kb_document} cited on page(s) {pages}, expected page {settings.kb_page}"
        )
    if not any(c.cited and c.page == settings.kb_page for c in cited):
        raise VerifyProblem(f"the answer does not name {settings.kb_document} (citation not marked cited)")
    return CheckResult(
        "agent-answer",
        Status.PASS,
        f"cites {settings.kb_document} p.{settings.kb_page} (trace {meta.trace_id or '?'})",
    )


@_skip_unless("guardrail-blocked", "agentcore", "token:ci")
def check_blocked(state: Verify) -> CheckResult:
    reply = _turn(state, state.settings.blocked_question)
    state.blocked = reply
    guard = reply.metadata.guardrail
    if guard.action != "BLOCKED" or guard.stage != "input":
        raise VerifyProblem(
            f"the investment question was not blocked on input (guardrail {guard.action}/{guard.stage})"
        )
    if reply.metadata.tools or reply.metadata.usage.total_tokens:
        raise VerifyProblem("the blocked question still reached the model or a tool")
    return CheckResult(
        "guardrail-blocked", Status.PASS, "investment question BLOCKED on input, no model call"
    )


# --- Langfuse trace -----------------------------------------------------------------------------------


def langfuse_settings(state: Verify) -> tuple[str, str, str] | None:
    if state.langfuse is not None:
        return state.langfuse
    mode = state.config.components.observability
    if mode == "disabled":
        return None
    if mode == "self_hosted":
        host = state.output("observability", "LangfuseUrl")
        secret_id = state.output("observability", "LangfuseKeysSecretArn")
    else:
        host = str(state.config.observability.external_host or "")
        secret_id = str(state.config.observability.external_keys_secret_name or "")
    keys = _secret_json(state, secret_id)
    state.langfuse = (host.rstrip("/"), str(keys["public_key"]), str(keys["secret_key"]))
    return state.langfuse


def fetch_trace(state: Verify, trace_id: str) -> dict[str, Any] | None:
    """Poll Langfuse's `GET /api/public/traces/{traceId}` until the trace has every contract span, for at
    most `trace_timeout` seconds (ingestion is asynchronous). None when it never becomes complete."""
    settings = langfuse_settings(state)
    assert settings is not None
    host, public, secret = settings
    deadline = state.clock() + state.settings.trace_timeout
    last: dict[str, Any] | None = None
    while True:
        try:
            response = state.http.get(f"{host}/api/public/traces/{quote(trace_id)}", auth=(public, secret))
            if response.status_code in (401, 403):
                raise VerifyProblem(f"Langfuse refused the project keys (HTTP {response.status_code})")
            if response.status_code == 200:
                last = response.json()
                if not _missing_spans(last):
                    return last
        except httpx.HTTPError as error:  # a transient error counts as "not yet"
            logger.debug("trace %s not readable yet: %s", trace_id, error)
        if state.clock() >= deadline:
            return last
        state.sleep(state.settings.poll_interval)


def _missing_spans(trace: Mapping[str, Any]) -> list[str]:
    names = {str(o.get("name")) for o in trace.get("observations") or []}
    names.add(str(trace.get("name")))
    return [span for span in CONTRACT_SPANS if span not in names]


@_skip_unless("langfuse-trace", "reply")
def check_trace(state: Verify) -> CheckResult:
    assert state.reply is not None
    trace_id = state.reply.metadata.trace_id
    if langfuse_settings(state) is None:
        return CheckResult("langfuse-trace", Status.SKIP, "components.observability is disabled")
    if not re.fullmatch(r"[0-9a-f]{32}", trace_id or ""):
        raise VerifyProblem(f"the answer carries no trace id ({trace_id!r})")
    trace = fetch_trace(state, trace_id)
    if trace is None:
        raise VerifyProblem(
            f"trace {trace_id} did not appear in Langfuse within {state.settings.trace_timeout:g} s"
        )
    missing = _missing_spans(trace)
    if missing:
        raise VerifyProblem(
            f"trace {trace_id} lacks span(s) {', '.join(missing)} after {state.settings.trace_timeout:g} s"
        )
    return CheckResult("langfuse-trace", Status.PASS, f"trace {trace_id} has {', '.join(CONTRACT_SPANS)}")


# --- LLM gateway --------------------------------------------------------------------------------------


@_skip_unless("llm-gateway", "reply")
def check_llm_gateway(state: Verify) -> CheckResult:
    """The gateway is an internal ALB. From a laptop: the agent's answered turn proves its virtual key
    works (the agent's only model path is the gateway) and its usage is recorded; LiteLLM's spend per key
    lives behind the ALB, so it is read only with --in-vpc, else the exact command is printed."""
    assert state.reply is not None
    usage = state.reply.metadata.usage
    if usage.total_tokens <= 0 or not state.reply.metadata.model:
        raise VerifyProblem("the agent's turn reports no model or no token usage from the gateway")
    detail = f"agent key works: {state.reply.metadata.model}, {usage.total_tokens} tokens"
    if state.config.components.llm_gateway != "self_hosted":
        return CheckResult("llm-gateway", Status.PASS, detail + " (external gateway: spend not checked)")
    url = state.output("llm-gateway", "GatewayUrl").rstrip("/")
    key_secret = state.output("llm-gateway", "AgentKeySecretArn")
    if not state.settings.in_vpc:
        command = (
            f"KEY=$(aws secretsmanager get-secret-value --region {state.region} --secret-id {key_secret} "
            f"--query SecretString --output text | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"api_key\"])') && "
            f'curl -s "{url}/key/info" -H "Authorization: Bearer $KEY"'
        )
        return CheckResult(
            "llm-gateway",
            Status.NEEDS_VPC,
            detail + "; LiteLLM spend: needs VPC access",
            f"from a shell inside the VPC (e.g. CloudShell in a services subnet) run: {command}  "
            "— `info.spend` must be > 0; or rerun `make verify VERIFY_ARGS=--in-vpc` there",
        )
    key = str(_secret_json(state, key_secret)["api_key"])
    response = state.http.get(f"{url}/key/info", headers={"Authorization": f"Bearer {key}"})
    if response.status_code != 200:
        raise VerifyProblem(f"LiteLLM /key/info answered HTTP {response.status_code} for the agent key")
    spend = float((response.json().get("info") or {}).get("spend") or 0)
    if spend <= 0:
        raise VerifyProblem("LiteLLM records no spend for the agent key after an answered turn")
    return CheckResult("llm-gateway", Status.PASS, f"{detail}; LiteLLM spend ${spend:.6f}")


# --- tool gateway -------------------------------------------------------------------------------------


def _gateway_headers(state: Verify, actor: str | None) -> dict[str, str]:
    if state.tool_headers is not None:
        return state.tool_headers(state, actor)
    headers = {"Authorization": f"Bearer {state.tokens['gateway']}"}
    if actor is not None:
        headers["X-Actor-Token"] = state.tokens[actor]
    return headers


async def _mcp(url: str, headers: dict[str, str], timeout: float, work: Callable[[Any], Any]) -> Any:
    from mcp import ClientSession
    from mcp.client.streamable_http import streamablehttp_client

    async def run() -> Any:
        async with (
            streamablehttp_client(url, headers=headers, timeout=timeout) as (read, write, _),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            return await work(session)

    return await asyncio.wait_for(run(), timeout=timeout * 3)


def _mcp_call(state: Verify, actor: str | None, work: Callable[[Any], Any]) -> Any:
    url = state.output("agentcore", "ToolGatewayUrl")
    try:
        return asyncio.run(_mcp(url, _gateway_headers(state, actor), state.settings.http_timeout, work))
    except TimeoutError:
        raise VerifyProblem(
            f"the tool gateway did not answer within {state.settings.http_timeout * 3:g} s"
        ) from None
    except Exception as error:  # the MCP client raises transport and protocol errors of many types
        raise VerifyProblem(
            f"MCP session with the tool gateway failed: {type(error).__name__}: {error}"
        ) from None


def _bare(name: str) -> str:
    _, separator, rest = name.partition(TOOL_SEPARATOR)
    return rest if separator and rest else name


def _list_tools(state: Verify) -> dict[str, str]:
    async def work(session: Any) -> list[str]:
        return [tool.name for tool in (await session.list_tools()).tools]

    names: list[str] = _mcp_call(state, None, work)
    return {_bare(name): name for name in names}


@_skip_unless("tool-gateway", "agentcore", "token:gateway")
def check_tools(state: Verify) -> CheckResult:
    tools = _list_tools(state)
    wanted = {"search_knowledge_base", "create_ticket", "list_tickets", "get_ticket"}
    missing = sorted(wanted - set(tools))
    if missing:
        raise VerifyProblem(f"the tool gateway lists {sorted(tools)}, missing {missing}")
    return CheckResult("tool-gateway", Status.PASS, f"{len(tools)} tools: {', '.join(sorted(tools))}")


def _call(state: Verify, actor: str, tool: str, arguments: dict[str, Any]) -> tuple[bool, str]:
    async def work(session: Any) -> tuple[bool, str]:
        result = await session.call_tool(tool, arguments)
        text = "".join(getattr(block, "text", "") for block in result.content)
        return bool(result.isError), text

    answer: tuple[bool, str] = _mcp_call(state, actor, work)
    return answer


@_skip_unless("ticket-isolation", "agentcore", "token:gateway", "token:ci", "token:evaluation")
def check_isolation(state: Verify) -> CheckResult:
    tools = _list_tools(state)
    marker = f"make verify probe {uuid.uuid4().hex[:8]}"
    failed, text = _call(
        state,
        "ci",
        tools["create_ticket"],
        {
            "email": "verify@example.com",
            "subject": marker,
            "description": "Isolation probe created by make verify.",
        },
    )
    if failed:
        raise VerifyProblem(f"actor A (ci) could not create a ticket: {text[:200]}")
    match = re.search(r"TCK-[0-9A-F]{8}", text)
    if not match:
        raise VerifyProblem(f"create_ticket answered no ticket id: {text[:200]}")
    ticket = match.group(0)
    own_failed, own = _call(state, "ci", tools["list_tickets"], {})
    if own_failed or ticket not in own:
        raise VerifyProblem(f"actor A (ci) does not see its own ticket {ticket}")
    _, others = _call(state, "evaluation", tools["list_tickets"], {})
    if ticket in others:
        raise VerifyProblem(f"actor B (evaluation) sees actor A's ticket {ticket} in list_tickets")
    get_failed, got = _call(state, "evaluation", tools["get_ticket"], {"ticket_id": ticket})
    if not get_failed and marker in got:
        raise VerifyProblem(f"actor B (evaluation) can read actor A's ticket {ticket} with get_ticket")
    return CheckResult("ticket-isolation", Status.PASS, f"{ticket} of ci is invisible to evaluation")


# --- knowledge base ingestion ---------------------------------------------------------------------------


@_skip_unless("kb-ingestion", "knowledge-base")
def check_ingestion(state: Verify) -> CheckResult:
    client = state.aws.client("bedrock-agent")
    kb = state.output("knowledge-base", "KnowledgeBaseId")
    source = state.output("knowledge-base", "DataSourceId")
    deadline = state.clock() + state.settings.ingestion_timeout
    while True:
        jobs = client.list_ingestion_jobs(
            knowledgeBaseId=kb,
            dataSourceId=source,
            sortBy={"attribute": "STARTED_AT", "order": "DESCENDING"},
            maxResults=1,
        )["ingestionJobSummaries"]
        if not jobs:
            raise VerifyProblem(f"no ingestion job ran for knowledge base {kb}")
        job = jobs[0]
        status = str(job["status"])
        if status == "COMPLETE":
            stats = job.get("statistics") or {}
            indexed = int(stats.get("numberOfNewDocumentsIndexed", 0)) + int(
                stats.get("numberOfModifiedDocumentsIndexed", 0)
            )
            return CheckResult(
                "kb-ingestion",
                Status.PASS,
                f"job {job['ingestionJobId']} COMPLETE ({indexed} documents indexed)",
            )
        if status not in INGESTION_RUNNING:
            raise VerifyProblem(f"latest ingestion job {job['ingestionJobId']} is {status}")
        if state.clock() >= deadline:
            raise VerifyProblem(
                f"ingestion job {job['ingestionJobId']} still {status} after {state.settings.ingestion_timeout:g} s"
            )
        state.sleep(state.settings.poll_interval)


# --- chat ---------------------------------------------------------------------------------------------


@_skip_unless("chat-url", "frontend")
def check_chat(state: Verify) -> CheckResult:
    url = state.output("frontend", "ChatUrl")
    try:
        response = state.http.get(url, follow_redirects=True)
    except httpx.HTTPError as error:
        raise VerifyProblem(f"{urlsplit(url).netloc} is not reachable: {type(error).__name__}") from None
    if response.status_code != 200:
        raise VerifyProblem(f"{url} answered HTTP {response.status_code}")
    return CheckResult("chat-url", Status.PASS, f"{url} answers 200")


# --- what to do, where to look ---------------------------------------------------------------------


def _no_link(_state: Verify) -> str:
    return ""


def _stack_link(component: str) -> Callable[[Verify], str]:
    def link(state: Verify) -> str:
        stack_id = state.stack_ids.get(component)
        return stack_console_url(state.region, stack_id) if stack_id else ""

    return link


FIXES: dict[str, str] = {
    "m2m-tokens": "check the identity stack's machine clients and secrets <prefix>/cognito/m2m-*; redeploy identity",
    "agent-answer": "read the runtime's logs (AgentCore console > the runtime > Logs) and the knowledge base search results",
    "guardrail-blocked": "check the guardrail's denied topics and the runtime's GUARDRAIL_ID/GUARDRAIL_VERSION",
    "langfuse-trace": "check the runtime's LANGFUSE_HOST and keys secret, and the Langfuse web/worker services' logs",
    "llm-gateway": "check the LiteLLM service logs (ECS console) and the agent key secret",
    "tool-gateway": "check the tool gateway's targets and the interceptor Lambda's logs",
    "ticket-isolation": "check the interceptor's ACTOR_CLIENT_IDS/ACTOR_TARGETS and the tickets Lambda's logs",
    "kb-ingestion": "open the knowledge base's data source sync history; fix the documents and start a sync",
    "chat-url": "check the chat ECS service and the CloudFront distribution",
}
LINKS: dict[str, Callable[[Verify], str]] = {
    "m2m-tokens": _stack_link("identity"),
    "agent-answer": lambda s: console_url(s.region, "bedrock-agentcore", "/agents"),
    "guardrail-blocked": lambda s: console_url(s.region, "bedrock", "/guardrails"),
    "langfuse-trace": lambda s: s.outputs.get("observability", {}).get("LangfuseUrl", ""),
    "llm-gateway": lambda s: console_url(s.region, "ecs", "/clusters"),
    "tool-gateway": lambda s: console_url(s.region, "bedrock-agentcore", "/gateways"),
    "ticket-isolation": lambda s: console_url(s.region, "cloudwatch", "/logsV2:log-groups"),
    "kb-ingestion": lambda s: console_url(s.region, "bedrock", "/knowledge-bases"),
    "chat-url": _stack_link("frontend"),
}

CHECKS: tuple[Check[Verify], ...] = (
    Check("stack-outputs", check_outputs),
    Check("m2m-tokens", check_tokens),
    Check("agent-answer", check_answer),
    Check("guardrail-blocked", check_blocked),
    Check("langfuse-trace", check_trace),
    Check("llm-gateway", check_llm_gateway),
    Check("tool-gateway", check_tools),
    Check("ticket-isolation", check_isolation),
    Check("kb-ingestion", check_ingestion),
    Check("chat-url", check_chat),
)
"""The dispatch table of `make verify`, in run order (later checks use what earlier ones found)."""


def build_state(argv: Sequence[str], environ: dict[str, str] | None = None) -> Verify:
    parser = argparse.ArgumentParser(prog="make verify", description=__doc__.split("\n\n")[0])
    parser.add_argument("--kb-question", default=KB_QUESTION)
    parser.add_argument("--kb-document", default=KB_DOCUMENT, help="file name the answer must cite")
    parser.add_argument("--kb-page", type=int, default=KB_PAGE, help="page the citation must carry")
    parser.add_argument("--blocked-question", default=BLOCKED_QUESTION)
    parser.add_argument("--in-vpc", action="store_true", help="also read LiteLLM spend (run inside the VPC)")
    parser.add_argument("--trace-timeout", type=float, default=90.0)
    parser.add_argument("--ingestion-timeout", type=float, default=300.0)
    args, rest = parser.parse_known_args(list(argv))
    if args.kb_page < 1:
        raise ValueError("--kb-page must be 1 or more")
    settings = Settings(
        kb_question=args.kb_question,
        kb_document=args.kb_document,
        kb_page=args.kb_page,
        blocked_question=args.blocked_question,
        in_vpc=args.in_vpc,
        trace_timeout=args.trace_timeout,
        ingestion_timeout=args.ingestion_timeout,
    )
    return Verify(
        config=load_config(context_from_args(rest)),
        aws=AwsContext(resolve_region(environ)),
        settings=settings,
    )


def main(argv: Sequence[str] | None = None, state: Verify | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if state is None:
        try:
            state = build_state(sys.argv[1:] if argv is None else argv)
        except (ConfigError, ValueError, RegionMissing) as error:
            sys.stderr.write(f"error: {error}\n")
            return 2
    results = run_checks(CHECKS, state, state.aws)
    sys.stdout.write(render_table(results) + "\n")
    return 1 if any(r.failed for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())

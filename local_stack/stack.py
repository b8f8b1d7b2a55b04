"""The local stack, assembled once: LiteLLM gateway + MCP tool server + agent (+ Streamlit chat).

    config = load_config({"profile": "dev"})
    with ScriptedModel() as model:
        launches = plan(config, state_dir=tmp, environ=hermetic_environ(), upstream=scripted_upstream(model))
        with LocalStack(launches, log_dir=tmp / "logs") as stack:
            httpx.post(f"{stack.url('agent')}/invocations", json={"prompt": "Hello"})

`plan()` builds the launches (local_stack/components.py) of the parts asked for, each optional, wired to
each other; the model behind the gateway is either real (`upstream=None`: Bedrock with the caller's AWS
credentials, or GATEWAY_UPSTREAM_BASE, exactly as `make gateway`; a missing credential raises
`llm_gateway.local.CredentialsError` before anything is written) or one OpenAI-compatible server for every
alias (`upstream=scripted_upstream(model)`, the scripted model of the tests, benchmarks and `make eval`).

`LocalStack` starts them in dependency waves (gateway and tool server together, then the agent and the
chat), waits for each (bounded by its start-up timeout), and stops them all in reverse order on exit or
on any failure; a failure raises `StackStartError` naming the component and the tail of its log.
Users: scripts/local.py (`make local`), tests/e2e, scripts/eval_pipeline.py (`make eval`), the browser
test, tests/reliability and benchmarks/soak.py.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType

import httpx

from config import AppConfig
from llm_gateway.config import Upstream
from local_stack import components
from local_stack.components import Launch
from local_stack.processes import ManagedProcess, ProcessStartError, free_port

logger = logging.getLogger(__name__)

__all__ = [
    "PARTS",
    "TEST_ENV_PREFIXES",
    "LocalStack",
    "StackStartError",
    "hermetic_environ",
    "plan",
    "scripted_upstream",
    "warm_agent",
    "without_rate_limits",
]

# Every part, in start order; a part starts only after every part of an earlier wave is healthy.
PARTS: tuple[str, ...] = ("gateway", "tools", "agent", "frontend")
WAVES: tuple[frozenset[str], ...] = (frozenset({"gateway", "tools"}), frozenset({"agent", "frontend"}))
# What a hermetic run drops from the caller's environment: a developer's own Langfuse, OTEL, agent, web
# search, chat and Cognito settings must never leak into the stack a test or `make eval` starts.
TEST_ENV_PREFIXES: tuple[str, ...] = ("LANGFUSE_", "OTEL_", "AGENT_", "TAVILY_", "CHAT_", "COGNITO_")
WARM_TIMEOUT_SECONDS = 90.0


class StackStartError(RuntimeError):
    """A component did not start; `component` names it, the message ends with the tail of its log."""

    def __init__(self, component: str, message: str) -> None:
        super().__init__(message)
        self.component = component


def hermetic_environ(environ: Mapping[str, str]) -> dict[str, str]:
    """`environ` without TEST_ENV_PREFIXES (the environment of a hermetic stack)."""
    return components.without(environ, *TEST_ENV_PREFIXES)


def scripted_upstream(model: object, *, rate_limits: bool = False) -> Upstream:
    """Every catalog alias served by one OpenAI-compatible stand-in (anything with base_url and
    model_name, e.g. ScriptedModel); without the catalog's rpm/tpm limits unless `rate_limits`."""
    base_url = str(getattr(model, "base_url"))  # noqa: B009 (duck-typed: ScriptedModel or a relay)
    model_name = str(getattr(model, "model_name", "scripted-model"))
    return Upstream(api_base=base_url, model=model_name, rate_limits=rate_limits)


def without_rate_limits(config: AppConfig) -> AppConfig:
    """The catalog's rpm/tpm limits protect provider quotas; a scripted upstream has none, and a pipeline
    run sends a few hundred requests in seconds, so the local proxy drops them."""
    entries = tuple(entry.model_copy(update={"rpm": None, "tpm": None}) for entry in config.models.entries)
    return config.model_copy(update={"models": config.models.model_copy(update={"entries": entries})})


def plan(
    config: AppConfig,
    *,
    state_dir: Path,
    environ: Mapping[str, str],
    upstream: Upstream | None = None,
    parts: Collection[str] = ("gateway", "tools", "agent"),
    ports: Mapping[str, int] | None = None,
    master_key: str | None = None,
    environment: str = "dev",
    light_tools: bool = False,
    index_cache: Path | None = None,
    corpus: Path | None = None,
    tools_db: Path | None = None,
    memory_path: Path | None = None,
    gateway_url: str | None = None,
    gateway_key: str | None = None,
    tools_url: str | None = None,
    agent_extra: Mapping[str, str] | None = None,
    chat_extra: Mapping[str, str] | None = None,
    with_guardrail_policy: bool = True,
    startup_timeouts: Mapping[str, float] | None = None,
) -> list[Launch]:
    """The launches of `parts` (a subset of PARTS), in start order, wired to each other.

    Args:
        upstream: None for the real model (Bedrock / GATEWAY_UPSTREAM_BASE in `environ`, credentials
            checked, `.local/gateway.env` written under `state_dir`); else every alias goes there.
        ports: a port per part; a missing one is a free port picked now.
        gateway_url, gateway_key, tools_url: an existing gateway / tool server for an agent started
            without them (parts without "gateway" / "tools").
        agent_extra, chat_extra: set last in the agent's / chat's environment (e.g. LANGFUSE_*).
    """
    unknown = set(parts) - set(PARTS)
    if unknown:
        raise ValueError(f"unknown stack part(s) {sorted(unknown)}: the parts are {', '.join(PARTS)}")
    chosen = {name: (ports or {}).get(name) or free_port() for name in PARTS if name in parts}
    timeouts = dict(startup_timeouts or {})
    launches: list[Launch] = []
    if "gateway" in chosen:
        from llm_gateway.local import prepare, prepare_for_upstream

        if upstream is None:
            local = prepare(config, state_dir=state_dir, port=chosen["gateway"], environ=environ)
        else:
            local = prepare_for_upstream(
                config,
                upstream,
                state_dir=state_dir / "gateway",
                port=chosen["gateway"],
                master_key=master_key or "sk-local-stack",
                environ=environ,
            )
        launches.append(components.gateway(local, timeouts.get("gateway", 120.0)))
        gateway_url, gateway_key = local.url, local.master_key
        if local.teams_file is not None:  # the agent picks its caller's team key (docs/spend.md)
            agent_extra = {"LLM_GATEWAY_TEAMS_FILE": str(local.teams_file), **(agent_extra or {})}
    if "tools" in chosen:
        launches.append(
            components.tool_server(
                chosen["tools"],
                db=tools_db or state_dir / "tickets.db",
                environ=environ,
                index_cache=None if light_tools else (index_cache or state_dir / "index"),
                corpus=corpus,
                light=light_tools,
                startup_timeout=timeouts.get("tools", 180.0),
            )
        )
        tools_url = launches[-1].url
    agent_url: str | None = None
    if "agent" in chosen:
        if gateway_url is None or gateway_key is None or tools_url is None:
            raise ValueError(
                "an agent without the gateway and tools parts needs gateway_url, gateway_key and tools_url"
            )
        launches.append(
            components.agent_server(
                config,
                chosen["agent"],
                gateway_url=gateway_url,
                gateway_key=gateway_key,
                tools_url=tools_url,
                memory_path=memory_path or state_dir / "memory.db",
                environ=environ,
                environment=environment,
                with_guardrail_policy=with_guardrail_policy,
                extra=agent_extra,
                startup_timeout=timeouts.get("agent", 60.0),
            )
        )
        agent_url = launches[-1].url
    if "frontend" in chosen:
        launches.append(
            components.chat(
                chosen["frontend"],
                agent_url=agent_url or f"http://127.0.0.1:{(ports or {}).get('agent', 8080)}",
                environ=environ,
                local_user=config.agentcore.local_user,
                extra=chat_extra,
                startup_timeout=timeouts.get("frontend", 90.0),
            )
        )
    return launches


class LocalStack:
    """Starts `launches` in waves, waits (bounded) for each, stops all in reverse (a context manager).

    `on_spawn(launch, process)`, `on_ready(launch)` and `on_stop(name)` report progress (scripts/local.py
    prints them);
    `abort()` turning true (Ctrl-C) ends `start()` early, returning False. Logs: `log_dir/<name>.log`.
    """

    def __init__(
        self,
        launches: Sequence[Launch],
        log_dir: Path,
        *,
        grace_period: float = 5.0,
        on_spawn: Callable[[Launch, ManagedProcess], None] | None = None,
        on_ready: Callable[[Launch], None] | None = None,
        on_stop: Callable[[str], None] | None = None,
    ) -> None:
        names = [launch.name for launch in launches]
        if len(set(names)) != len(names):
            raise ValueError(f"a stack runs each component once, got {names}")
        self.launches = {launch.name: launch for launch in launches}
        self.log_dir = log_dir
        self.grace_period = grace_period
        self.on_spawn = on_spawn
        self.on_ready = on_ready
        self.on_stop = on_stop
        self.processes: dict[str, ManagedProcess] = {}  # started ones, in start order

    def log_path(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    def url(self, name: str) -> str:
        return self.launches[name].url

    def __getitem__(self, name: str) -> ManagedProcess:
        return self.processes[name]

    def __contains__(self, name: object) -> bool:
        return name in self.launches

    def waves(self) -> Iterator[list[Launch]]:
        placed: set[str] = set()
        for wave in WAVES:
            members = [launch for name, launch in self.launches.items() if name in wave]
            placed |= {launch.name for launch in members}
            if members:
                yield members
        rest = [launch for name, launch in self.launches.items() if name not in placed]
        if rest:
            yield rest

    def start(self, abort: Callable[[], bool] | None = None) -> bool:
        """Start every component; True when all are healthy, False when `abort()` ended the start.

        Raises:
            StackStartError: naming the component that exited or did not answer in time; every
                component already started is stopped first.
        """
        aborted = abort or (lambda: False)
        try:
            for wave in self.waves():
                for launch in wave:
                    if aborted():
                        return False
                    process = launch.process(self.log_path(launch.name), grace_period=self.grace_period)
                    if self.on_spawn is not None:
                        self.on_spawn(launch, process)
                    self.processes[launch.name] = process.spawn()
                for launch in wave:
                    if not self.processes[launch.name].wait_ready(aborted):
                        return False
                    if self.on_ready is not None:
                        self.on_ready(launch)
        except ProcessStartError as error:
            self.stop()
            raise StackStartError(error.component, str(error)) from error
        except BaseException:
            self.stop()
            raise
        return True

    def exited(self) -> str | None:
        """The name of the first started component that is no longer running, or None."""
        return next((name for name, process in self.processes.items() if not process.is_running()), None)

    def stop(self) -> list[str]:
        """Stop every started component, the last started first; return their names in stop order.
        Idempotent: a stopped component leaves `processes`."""
        order = list(reversed(self.processes))
        for name in order:
            if self.on_stop is not None:
                self.on_stop(name)
            process = self.processes.pop(name)
            try:
                process.stop()
            except OSError:
                logger.exception("stopping %s failed", name)
        return order

    def __enter__(self) -> LocalStack:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def warm_agent(url: str, timeout: float = WARM_TIMEOUT_SECONDS) -> None:
    """The agent's first turn waits for its background imports: run one (bounded) before measuring."""
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        try:
            response = httpx.post(f"{url}/invocations", json={"prompt": "warm-up"}, timeout=60)
            if response.status_code == 200:
                return
            last = f"HTTP {response.status_code}: {response.text[:300]}"
        except httpx.TransportError as exc:
            last = f"{type(exc).__name__}: {exc}"
        time.sleep(0.2)
    raise StackStartError("agent", f"agent at {url} never answered a turn within {timeout:.0f}s: {last}")

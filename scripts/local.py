"""`make local`: the whole foundation on a laptop with one command; Ctrl-C stops everything.

Starts, in order, each waiting for the previous one to be healthy:
  1. the LiteLLM gateway (llm_gateway.local: the same model catalog as the deployed gateway),
  2. the MCP tool server (tools.server: tickets in SQLite, the embedded knowledge index),
  3. the agent (agent.main in local mode),
  4. the Streamlit chat (frontend/app.py), when it exists.

Model access: Bedrock with your AWS credentials by default (AWS_PROFILE or access keys, and AWS_REGION),
or one OpenAI-compatible server for every alias with GATEWAY_UPSTREAM_BASE (see llm_gateway/local.py).
Missing credentials stop the launch before anything starts, naming the variables to set.

Before anything starts it checks that every port is free (naming the process holding a busy one) and that
GATEWAY_UPSTREAM_BASE answers and serves the model that will be sent (GATEWAY_UPSTREAM_MODEL).

    python -m scripts.local [--profile dev] [--no-frontend]
    python -m scripts.local --chat-only [--chat-port 8501]   # `make chat`: only the Streamlit chat
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from config import REPO_ROOT, AppConfig, load_config

STATE_DIR = Path(os.environ.get("LOCAL_STATE_DIR") or REPO_ROOT / ".local")
LOG_DIR = STATE_DIR / "logs"

# The agent settings (agent/settings.py, agent/main.py) a user may tune for `make local` by exporting them;
# documented in docs/local-mode.md. An allow-list: any other AGENT_* variable in the user's shell is dropped
# (so nothing reaches the agent by accident), and OTEL_* too (tracing is configured through LANGFUSE_*).
AGENT_TUNABLES: frozenset[str] = frozenset(
    {
        "AGENT_LOG_LEVEL",
        "AGENT_MAX_OUTPUT_TOKENS",
        "AGENT_MODEL_TIMEOUT_SECONDS",
        "AGENT_TOOL_TIMEOUT_SECONDS",
        "AGENT_TURN_DEADLINE_SECONDS",
        "AGENT_HEARTBEAT_SECONDS",
        "AGENT_MAX_CONCURRENT_TURNS",
        "AGENT_MAX_CONNECTIONS",
        "AGENT_HEADER_TIMEOUT_SECONDS",
        "AGENT_BODY_TIMEOUT_SECONDS",
        "AGENT_ALLOWED_HOSTS",
        "AGENT_TRACE_EXPORT_TIMEOUT_SECONDS",
        "AGENT_HISTORY_TURNS",
    }
)
# Set by the launcher itself (a user's value would break the wiring): mode, address, trace tags.
AGENT_LAUNCHER_SET: frozenset[str] = frozenset(
    {"AGENT_MODE", "AGENT_HOST", "AGENT_PORT", "AGENT_ENVIRONMENT", "AGENT_SERVICE_NAME"}
)


# The Streamlit flags of every chat we start (`make local` and `make chat`, one definition): loopback only,
# headless, no telemetry, no "Deploy" button or developer menu (toolbarMode viewer), no tracebacks to users.
STREAMLIT_FLAGS: tuple[str, ...] = (
    "--server.headless",
    "true",
    "--browser.gatherUsageStats",
    "false",
    "--client.toolbarMode",
    "viewer",
    "--client.showErrorDetails",
    "none",
)
CHAT_APP = REPO_ROOT / "frontend" / "app.py"
# Where each component listens by default and the variable that moves it (docs/local-mode.md).
PORT_ENVS: Mapping[str, tuple[str, int]] = {
    "gateway": ("GATEWAY_PORT", 4000),
    "tools": ("TOOLS_PORT", 8765),
    "agent": ("AGENT_PORT", 8080),
    "frontend": ("FRONTEND_PORT", 8501),
}


class LaunchError(RuntimeError):
    """A component did not start; the message says which and where its log is."""


class PortBusyError(LaunchError):
    """A port a component needs is already taken; the message names the port and its owner."""


def streamlit_argv(port: int) -> list[str]:
    """The command line of the chat on 127.0.0.1:`port` (used by `make local` and `make chat`)."""
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(CHAT_APP),
        "--server.address",
        "127.0.0.1",
        "--server.port",
        str(port),
        *STREAMLIT_FLAGS,
    ]


def port_in_use(port: int) -> bool:
    """Whether something listens on 127.0.0.1:`port` (something answers, or we could not bind it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.5)
        if probe.connect_ex(("127.0.0.1", port)) == 0:
            return True
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def port_owner(port: int) -> str | None:
    """`pid N: <command>` of the process listening on `port`, from /proc (Linux); None elsewhere."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text(encoding="ascii").splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            if len(fields) > 9 and fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(fields[9])  # state 0A is LISTEN
    if not inodes:
        return None
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            for fd in (proc / "fd").iterdir():
                link = str(fd.readlink())
                if link.startswith("socket:[") and link[8:-1] in inodes:
                    command = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                    return f"pid {proc.name}: {command.strip()[:200]}"
        except OSError:  # another user's process, or it just exited
            continue
    return None


def busy_port_message(name: str, port: int, port_env: str) -> str:
    owner = port_owner(port)
    held = f" by {owner}" if owner else ""
    find = "" if owner else f" (find it with `lsof -nP -iTCP:{port} -sTCP:LISTEN`)"
    return (
        f"port {port} ({name}) is already in use{held}{find}.\n"
        f"Stop it first (an earlier `make local`: Ctrl-C in its terminal; otherwise `kill <pid>`),"
        f" or move {name}: `{port_env}=<free port> make local`."
    )


def ports_from_env(environ: Mapping[str, str], *, frontend: bool) -> dict[str, int]:
    """Each component's port (PORT_ENVS); the chat's only when it is started."""
    names = [name for name in PORT_ENVS if name != "frontend" or (frontend and CHAT_APP.exists())]
    return {name: int(environ.get(PORT_ENVS[name][0], str(PORT_ENVS[name][1]))) for name in names}


def check_ports(ports: Mapping[str, int]) -> None:
    """Every port must be free BEFORE we start: a health check answered by an earlier run would
    otherwise report our component ready while ours dies on "address already in use".

    Raises:
        PortBusyError: naming every busy port, its owner (when found) and how to free or move it.
    """
    problems = [
        busy_port_message(name, port, PORT_ENVS[name][0]) for name, port in ports.items() if port_in_use(port)
    ]
    if problems:
        raise PortBusyError("cannot start: " + "\n".join(problems))


@dataclass
class Component:
    name: str
    argv: list[str]
    env: dict[str, str]
    health_url: str
    startup_timeout: float
    process: subprocess.Popen[bytes] | None = None

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    @property
    def log_path(self) -> Path:
        return LOG_DIR / f"{self.name}.log"

    @property
    def url(self) -> str:
        scheme, _, rest = self.health_url.partition("://")
        return f"{scheme}://{rest.split('/', 1)[0]}"

    def start(self) -> None:
        self.spawn()
        self.wait()

    def spawn(self) -> None:
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(  # noqa: S603 (our own interpreter and modules)
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=REPO_ROOT,
                start_new_session=True,
            )

    def wait(self, abort: Callable[[], bool] = lambda: False) -> None:
        """Poll the health URL until it answers; stop early when `abort()` turns true (Ctrl-C)."""
        assert self.process is not None
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if abort():
                return
            if self.process.poll() is not None:
                raise LaunchError(f"{self.name} exited with status {self.process.returncode}:\n{self.tail()}")
            if _healthy(self.health_url):
                # The ports were free before we started, and our child is still alive: the answer is ours.
                if self.process.poll() is not None:
                    raise LaunchError(
                        f"{self.name} exited with status {self.process.returncode}:\n{self.tail()}"
                    )
                return
            time.sleep(0.2)
        raise LaunchError(
            f"{self.name} did not become healthy within {self.startup_timeout:.0f}s:\n{self.tail()}"
        )

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, grace: float = 5.0) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            return
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=grace)
        except ProcessLookupError:
            pass

    def tail(self, lines: int = 25) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:]) + f"\n(full log: {self.log_path})"


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1.0) as response:  # noqa: S310 (loopback URL we built)
            return int(response.status) < 500
    except urllib.error.HTTPError as error:
        return error.code < 500
    except (urllib.error.URLError, OSError):
        return False


def guardrail_policy(config: AppConfig) -> str:
    """The agent's local guardrail policy, from the same config section as the Bedrock guardrail."""
    guardrail = config.guardrail
    return json.dumps(
        {
            "denied_topics": [
                {"name": topic.name, "examples": list(topic.examples)} for topic in guardrail.denied_topics
            ],
            "pii": [{"type": rule.type, "action": rule.action} for rule in guardrail.pii],
            "blocked_input_message": guardrail.blocked_input_message,
            "blocked_output_message": guardrail.blocked_output_message,
        }
    )


def agent_environment(
    config: AppConfig,
    *,
    profile: str,
    gateway_url: str,
    gateway_key: str,
    tools_url: str,
    port: int,
    environ: Mapping[str, str],
) -> dict[str, str]:
    """The agent's environment in local mode (docs/agent-api.md): the user's environment without AGENT_*
    and OTEL_* variables, except the tunables in AGENT_TUNABLES, plus the launcher's wiring."""
    entry = config.models.entry(config.models.agent_alias)
    env = {
        **{k: v for k, v in environ.items() if k in AGENT_TUNABLES or not k.startswith(("AGENT_", "OTEL_"))},
        "AGENT_MODE": "local",
        "AGENT_HOST": "127.0.0.1",
        "AGENT_PORT": str(port),
        "AGENT_ENVIRONMENT": profile,
        "AGENT_SERVICE_NAME": f"{config.prefix}-agent",
        "LLM_GATEWAY_URL": gateway_url,
        "LLM_GATEWAY_KEY": gateway_key,
        "MODEL_ALIAS": config.models.agent_alias,
        "TOOL_GATEWAY_URL": tools_url,
        "LOCAL_USER": config.agentcore.local_user,
        "LOCAL_MEMORY_PATH": str(STATE_DIR / "memory.db"),
        "LOCAL_GUARDRAIL_POLICY": guardrail_policy(config),
        "PYTHONPATH": str(REPO_ROOT),
    }
    if entry.input_cost_per_million is not None:
        env["MODEL_INPUT_COST_PER_MILLION"] = str(entry.input_cost_per_million)
    if entry.output_cost_per_million is not None:
        env["MODEL_OUTPUT_COST_PER_MILLION"] = str(entry.output_cost_per_million)
    return env


def plan(config: AppConfig, profile: str, environ: Mapping[str, str], *, frontend: bool) -> list[Component]:
    """Check credentials and build the components (raises CredentialsError before anything starts)."""
    from llm_gateway.local import prepare

    ports = ports_from_env(environ, frontend=True)
    gateway = prepare(config, state_dir=STATE_DIR, port=ports["gateway"], environ=environ)
    python = sys.executable
    tools_url = f"http://127.0.0.1:{ports['tools']}/mcp"
    components = [
        Component("gateway", gateway.argv, gateway.env, f"{gateway.url}/health/liveliness", 120),
        Component(
            "tools",
            [
                python,
                "-m",
                "tools.server",
                "--port",
                str(ports["tools"]),
                "--db",
                str(STATE_DIR / "tickets.db"),
                "--corpus",
                str(REPO_ROOT / config.knowledge_base.corpus_dir),
                "--index-cache",
                str(STATE_DIR / "index"),
            ],
            {**environ, "PYTHONPATH": str(REPO_ROOT)},
            f"http://127.0.0.1:{ports['tools']}/health",
            180,
        ),
        Component(
            "agent",
            [python, "-m", "agent.main"],
            agent_environment(
                config,
                profile=profile,
                gateway_url=gateway.url,
                gateway_key=gateway.master_key,
                tools_url=tools_url,
                port=ports["agent"],
                environ=environ,
            ),
            f"http://127.0.0.1:{ports['agent']}/ping",
            60,
        ),
    ]
    if frontend and CHAT_APP.exists():
        components.append(
            Component(
                "frontend",
                streamlit_argv(ports["frontend"]),
                {
                    **environ,
                    "CHAT_MODE": "local",
                    "AGENT_URL": f"http://127.0.0.1:{ports['agent']}",
                    "LOCAL_USER": config.agentcore.local_user,
                    "PYTHONPATH": str(REPO_ROOT),
                },
                f"http://127.0.0.1:{ports['frontend']}/_stcore/health",
                90,
            )
        )
    return components


def run(components: Sequence[Component]) -> int:
    """Start every component in order; block until Ctrl-C or one exits; stop them all in reverse."""
    stopping = False

    def on_signal(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    started: list[Component] = []
    status = 0
    try:
        # Gateway and tool server do not depend on each other; the agent and the chat come next.
        waves = [
            [c for c in components if c.name in ("gateway", "tools")],
            [c for c in components if c.name not in ("gateway", "tools")],
        ]
        for wave in waves:
            for component in wave:
                if stopping:
                    break
                print(f"starting {component.name} ... (log: {component.log_path})", flush=True)
                component.spawn()
                started.append(component)
            for component in wave:
                if stopping:
                    break
                component.wait(abort=lambda: stopping)
                if not stopping:
                    print(f"  {component.name} ready: {component.url}", flush=True)
        if not stopping:
            by_name = {c.name: c for c in components}
            if "frontend" in by_name:
                print(f"\nchat:  {by_name['frontend'].url}  (open it in your browser; no `make chat` needed)")
            prompt = '{"prompt": "How do I reset my router?"}'
            print(f"agent: curl -s {by_name['agent'].url}/invocations -d '{prompt}'")
            print("Ctrl-C stops everything.", flush=True)
        while not stopping:
            exited = [c for c in started if not c.running()]
            if exited:
                print(f"\n{exited[0].name} stopped unexpectedly:\n{exited[0].tail()}", file=sys.stderr)
                status = 1
                break
            time.sleep(0.5)
    except LaunchError as error:
        print(f"\n{error}", file=sys.stderr)
        status = 1
    finally:
        for component in reversed(started):
            print(f"stopping {component.name}", flush=True)
            component.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return status


def chat_only(port: int, environ: Mapping[str, str]) -> int:
    """`make chat`: replace this process with the chat on `port`, unless the port is taken.

    A chat already answering there (most often the one `make local` started) is not an error in local
    mode (exit 0, saying where it is); anything else on the port, or any chat in MODE=agentcore (it may be
    the local one), exits 2 naming the port and its owner.
    """
    if port_in_use(port):
        url = f"http://localhost:{port}"
        if _healthy(f"http://127.0.0.1:{port}/_stcore/health"):
            print(f"a chat is already running on {url} (make local starts one): open it in your browser.")
            if environ.get("CHAT_MODE", "local") == "local":
                return 0
            print(
                "To chat with another agent, stop that one first or use CHAT_PORT=<free port>.",
                file=sys.stderr,
            )
            return 2
        print(
            busy_port_message("chat", port, "CHAT_PORT").replace("make local", "make chat"), file=sys.stderr
        )
        return 2
    argv = streamlit_argv(port)
    print(f"chat: http://localhost:{port} (Ctrl-C stops it)", flush=True)
    os.execve(argv[0], argv, {**environ, "PYTHONPATH": str(REPO_ROOT)})  # noqa: S606 (our interpreter)
    return 0  # not reached


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run gateway, tool server, agent and chat locally.")
    parser.add_argument("--profile", default=os.environ.get("PROFILE", "dev"))
    parser.add_argument("--no-frontend", action="store_true", help="do not start the Streamlit chat")
    parser.add_argument(
        "--chat-only",
        action="store_true",
        help="only the chat (make chat), against AGENT_URL or MODE=agentcore",
    )
    parser.add_argument("--chat-port", type=int, default=int(os.environ.get("CHAT_PORT", "8501")))
    args = parser.parse_args(argv)
    if args.chat_only:
        return chat_only(args.chat_port, os.environ)
    from llm_gateway.local import CredentialsError, check_upstream, upstreams_from_env

    environ = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    config = load_config({"profile": args.profile})
    try:
        # Nothing is written or started until the ports are free and the upstream serves the model.
        check_ports(ports_from_env(environ, frontend=not args.no_frontend))
        for warning in check_upstream(config, upstreams_from_env(config, environ), environ):
            print(f"warning: {warning}", file=sys.stderr)
        components = plan(config, args.profile, environ, frontend=not args.no_frontend)
    except (CredentialsError, PortBusyError) as error:
        print(error, file=sys.stderr)
        return 2
    return run(components)


if __name__ == "__main__":
    raise SystemExit(main())

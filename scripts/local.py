"""`make local`: the whole foundation on a laptop with one command; Ctrl-C stops everything.

Starts, through local_stack.stack (the same assembly the tests, `make eval` and `make soak` use):
  1. the LiteLLM gateway (llm_gateway.local: the same model catalog as the deployed gateway) and
     the MCP tool server (tools.server: tickets in SQLite, the embedded knowledge index), together,
  2. once both are healthy: the agent (agent.main in local mode) and the Streamlit chat (frontend/app.py).

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
import os
import signal
import socket
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import FrameType

from config import REPO_ROOT, AppConfig, load_config
from local_stack import stack as local_stack
from local_stack.components import CHAT_APP, Launch, streamlit_argv
from local_stack.processes import ManagedProcess, http_status
from local_stack.stack import LocalStack, StackStartError

STATE_DIR = Path(os.environ.get("LOCAL_STATE_DIR") or REPO_ROOT / ".local")
# The Streamlit flags (loopback, headless, no Deploy button) and every component's launch command are in
# local_stack/components.py, shared with the tests, `make eval` and the benchmarks.
# Where each component listens by default and the variable that moves it (docs/local-mode.md).
PORT_ENVS: Mapping[str, tuple[str, int]] = {
    "gateway": ("GATEWAY_PORT", 4000),
    "tools": ("TOOLS_PORT", 8765),
    "agent": ("AGENT_PORT", 8080),
    "frontend": ("FRONTEND_PORT", 8501),
}
STARTUP_TIMEOUTS: Mapping[str, float] = {"gateway": 120, "tools": 180, "agent": 60, "frontend": 90}


class LaunchError(RuntimeError):
    """A component did not start; the message says which and where its log is."""


class PortBusyError(LaunchError):
    """A port a component needs is already taken; the message names the port and its owner."""


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


def _healthy(url: str) -> bool:
    status = http_status(url, timeout=1.0)
    return status is not None and status < 500


def plan(config: AppConfig, profile: str, environ: Mapping[str, str], *, frontend: bool) -> list[Launch]:
    """Check credentials and build the launches (raises CredentialsError before anything starts)."""
    ports = ports_from_env(environ, frontend=True)
    parts = ["gateway", "tools", "agent"] + (["frontend"] if frontend and CHAT_APP.exists() else [])
    return local_stack.plan(
        config,
        state_dir=STATE_DIR,
        environ=environ,
        upstream=None,  # Bedrock with the user's credentials, or GATEWAY_UPSTREAM_BASE
        parts=parts,
        ports=ports,
        environment=profile,
        corpus=REPO_ROOT / config.knowledge_base.corpus_dir,
        index_cache=STATE_DIR / "index",
        tools_db=STATE_DIR / "tickets.db",
        memory_path=STATE_DIR / "memory.db",
        startup_timeouts=STARTUP_TIMEOUTS,
    )


def run(launches: Sequence[Launch]) -> int:
    """Start every component in order; block until Ctrl-C or one exits; stop them all in reverse."""
    stopping = False

    def on_signal(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    def on_spawn(launch: Launch, process: ManagedProcess) -> None:
        print(f"starting {launch.name} ... (log: {process.log_path})", flush=True)

    def on_ready(launch: Launch) -> None:
        print(f"  {launch.name} ready: {launch.url}", flush=True)

    def on_stop(name: str) -> None:
        print(f"stopping {name}", flush=True)

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    stack = LocalStack(launches, STATE_DIR / "logs", on_spawn=on_spawn, on_ready=on_ready, on_stop=on_stop)
    status = 0
    try:
        if stack.start(abort=lambda: stopping):
            if "frontend" in stack:
                print(f"\nchat:  {stack.url('frontend')}  (open it in your browser; no `make chat` needed)")
            prompt = '{"prompt": "How do I reset my router?"}'
            print(f"agent: curl -s {stack.url('agent')}/invocations -d '{prompt}'")
            print("Ctrl-C stops everything.", flush=True)
        while not stopping:
            exited = stack.exited()
            if exited is not None:
                process = stack[exited]
                print(
                    f"\n{exited} stopped unexpectedly:\n{process.log_tail(25)}\n(full log: {process.log_path})",
                    file=sys.stderr,
                )
                status = 1
                break
            time.sleep(0.5)
    except StackStartError as error:
        print(f"\n{error}", file=sys.stderr)
        status = 1
    finally:
        stack.stop()
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

"""`make local`: the whole foundation on a laptop with one command; Ctrl-C stops everything.

Starts, in order, each waiting for the previous one to be healthy:
  1. the LiteLLM gateway (llm_gateway.local: the same model catalog as the deployed gateway),
  2. the MCP tool server (tools.server: tickets in SQLite, the embedded knowledge index),
  3. the agent (agent.main in local mode),
  4. the Streamlit chat (frontend/app.py), when it exists.

Model access: Bedrock with your AWS credentials by default (AWS_PROFILE or access keys, and AWS_REGION),
or one OpenAI-compatible server for every alias with GATEWAY_UPSTREAM_BASE (see llm_gateway/local.py).
Missing credentials stop the launch before anything starts, naming the variables to set.

    python -m scripts.local [--profile dev] [--no-frontend]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from stacks.config import REPO_ROOT, AppConfig, load_config

STATE_DIR = Path(os.environ.get("LOCAL_STATE_DIR") or REPO_ROOT / ".local")
LOG_DIR = STATE_DIR / "logs"


class LaunchError(RuntimeError):
    """A component did not start; the message says which and where its log is."""


@dataclass
class Component:
    name: str
    argv: list[str]
    env: dict[str, str]
    health_url: str
    startup_timeout: float
    process: subprocess.Popen[bytes] | None = None

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
    """The agent's environment in local mode (docs/agent-api.md)."""
    entry = config.models.entry(config.models.agent_alias)
    env = {
        **{k: v for k, v in environ.items() if not k.startswith(("AGENT_", "OTEL_"))},
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

    ports = {
        "gateway": int(environ.get("GATEWAY_PORT", "4000")),
        "tools": int(environ.get("TOOLS_PORT", "8765")),
        "agent": int(environ.get("AGENT_PORT", "8080")),
        "frontend": int(environ.get("FRONTEND_PORT", "8501")),
    }
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
    app = REPO_ROOT / "frontend" / "app.py"
    if frontend and app.exists():
        components.append(
            Component(
                "frontend",
                [
                    python,
                    "-m",
                    "streamlit",
                    "run",
                    str(app),
                    "--server.address",
                    "127.0.0.1",
                    "--server.port",
                    str(ports["frontend"]),
                    "--server.headless",
                    "true",
                    "--browser.gatherUsageStats",
                    "false",
                ],
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
                print(f"\nchat:  {by_name['frontend'].url}")
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


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run gateway, tool server, agent and chat locally.")
    parser.add_argument("--profile", default=os.environ.get("PROFILE", "dev"))
    parser.add_argument("--no-frontend", action="store_true", help="do not start the Streamlit chat")
    args = parser.parse_args(argv)
    from llm_gateway.local import CredentialsError

    environ = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    config = load_config({"profile": args.profile})
    try:
        components = plan(config, args.profile, environ, frontend=not args.no_frontend)
    except CredentialsError as error:
        print(error, file=sys.stderr)
        return 2
    return run(components)


if __name__ == "__main__":
    raise SystemExit(main())

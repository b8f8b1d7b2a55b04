"""`make local` (scripts/local.py): fails fast without credentials; with a model upstream it starts the
gateway, the tool server and the agent, answers a turn, and Ctrl-C stops every process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from local_stack.otlp_recorder import OtlpRecorder
from local_stack.processes import free_port
from local_stack.scripted_model import ScriptedModel, Text

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def base_env(state: Path) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "LANGFUSE_", "GATEWAY_", "TAVILY_"))
    }
    env.update(
        LOCAL_STATE_DIR=str(state),
        AWS_CONFIG_FILE=str(state / "no-aws-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(state / "no-aws-credentials"),
        AWS_EC2_METADATA_DISABLED="true",
    )
    return env


def test_missing_credentials_fail_fast_naming_the_variables(tmp_path: Path) -> None:
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "scripts.local", "--no-frontend"],
        cwd=REPO,
        env=base_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    for name in ("AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_REGION", "GATEWAY_UPSTREAM_BASE"):
        assert name in result.stderr
    assert time.monotonic() - started < 30
    assert not (tmp_path / "logs").exists()  # nothing was started


def _pids_in_group(pgid: int) -> list[int]:
    out = subprocess.run(["ps", "-eo", "pid=,pgid="], capture_output=True, text=True, check=True).stdout
    return [int(pid) for pid, group in (line.split() for line in out.splitlines()) if int(group) == pgid]


def test_one_command_starts_everything_and_ctrl_c_stops_it(tmp_path: Path) -> None:
    """Also with Langfuse (docs/local-mode.md "Traces"): the turn is traced there, and no key is printed."""
    ports = {name: free_port() for name in ("GATEWAY_PORT", "TOOLS_PORT", "AGENT_PORT")}
    langfuse = OtlpRecorder(public_key="pk-lf-local", secret_key="sk-lf-local-secret").start()
    with ScriptedModel() as model:
        model.enqueue(Text("Hello from the local stack."))
        env = {
            "LANGFUSE_HOST": langfuse.url,
            "LANGFUSE_PUBLIC_KEY": "pk-lf-local",
            "LANGFUSE_SECRET_KEY": "sk-lf-local-secret",
            **base_env(tmp_path),
            **{k: str(v) for k, v in ports.items()},
            "GATEWAY_UPSTREAM_BASE": model.base_url,
            "GATEWAY_UPSTREAM_MODEL": model.model_name,
        }
        launcher = subprocess.Popen(
            [sys.executable, "-m", "scripts.local", "--no-frontend"],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            agent = f"http://127.0.0.1:{ports['AGENT_PORT']}"
            lines: list[str] = []
            deadline = time.monotonic() + 180
            assert launcher.stdout is not None
            while time.monotonic() < deadline:
                line = launcher.stdout.readline()
                if not line:
                    break
                lines.append(line)
                if "Ctrl-C stops everything" in line:
                    break
            assert any("agent ready" in line for line in lines), "".join(lines)
            response = httpx.post(f"{agent}/invocations", json={"prompt": "Hello"}, timeout=60)
            assert response.status_code == 200, response.text
            assert response.json()["answer"] == "Hello from the local stack."
            assert (
                model.requests[-1]["model"] == model.model_name
            )  # GATEWAY_UPSTREAM_MODEL, not the Bedrock id
            trace_id = response.json()["metadata"]["trace_id"]
            assert len(trace_id) == 32, response.json()
            langfuse.wait_for_spans(predicate=lambda span: span.trace_id == trace_id, timeout=30)
            children = [
                int(p)
                for p in subprocess.run(
                    ["pgrep", "-P", str(launcher.pid)], capture_output=True, text=True
                ).stdout.split()
            ]
            assert len(children) == 3
        finally:
            launcher.send_signal(signal.SIGINT)
            rest, _ = launcher.communicate(timeout=60)
            langfuse.stop()
        for child in children:
            assert _pids_in_group(child) == [], f"process group {child} survived Ctrl-C"
        assert launcher.returncode == 0
        logs = "".join(path.read_text(errors="replace") for path in (tmp_path / "logs").glob("*.log"))
        assert "sk-lf-local-secret" not in "".join(lines) + rest + logs


def test_ctrl_c_during_start_up_stops_what_was_started(tmp_path: Path) -> None:
    ports = {name: free_port() for name in ("GATEWAY_PORT", "TOOLS_PORT", "AGENT_PORT")}
    with ScriptedModel() as model:
        env = {
            **base_env(tmp_path),
            **{k: str(v) for k, v in ports.items()},
            "GATEWAY_UPSTREAM_BASE": model.base_url,
            "GATEWAY_UPSTREAM_MODEL": model.model_name,
        }
        launcher = subprocess.Popen(
            [sys.executable, "-m", "scripts.local", "--no-frontend"],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert launcher.stdout is not None
        lines = []
        for line in launcher.stdout:
            lines.append(line)
            if line.startswith("starting tools"):
                break
        time.sleep(0.5)
        children = [
            int(p)
            for p in subprocess.run(
                ["pgrep", "-P", str(launcher.pid)], capture_output=True, text=True
            ).stdout.split()
        ]
        started = time.monotonic()
        launcher.send_signal(signal.SIGINT)
        rest, _ = launcher.communicate(timeout=60)
        assert time.monotonic() - started < 20, "Ctrl-C must not wait for the start-up to finish"
        assert len(children) == 2, lines
        for child in children:
            assert _pids_in_group(child) == []
        assert "stopping tools" in rest and "stopping gateway" in rest


def test_agent_environment_carries_the_config_guardrail_and_identity() -> None:
    from agent.guardrails import LocalPolicy
    from agent.settings import Settings
    from tests.factories import test_config

    config = test_config("dev")
    env = _agent_env({"HOME": "/home/x", "AGENT_MODE": "agentcore"})
    settings = Settings.from_env(env)
    assert (settings.mode, settings.local_user, settings.model_alias) == (
        "local",
        config.agentcore.local_user,
        config.models.agent_alias,
    )
    assert settings.environment_tag == "dev" and settings.service_name == f"{config.prefix}-agent"
    policy = LocalPolicy.from_json(settings.local_guardrail_policy)
    blocked = policy.check("Which stocks should I buy?", "input")
    assert blocked.blocked and blocked.text == config.guardrail.blocked_input_message
    assert set(policy.pii) == {rule.type for rule in config.guardrail.pii}


def _agent_env(environ: dict[str, str]) -> dict[str, str]:
    """The agent's environment as `make local` builds it (scripts/local.py -> local_stack.stack.plan)."""
    from local_stack.stack import plan
    from tests.factories import test_config

    (agent,) = plan(
        test_config("dev"),
        state_dir=Path("/nonexistent/state"),
        environ=environ,
        parts=["agent"],
        ports={"agent": 8080},
        gateway_url="http://127.0.0.1:4000",
        gateway_key="sk-run",
        tools_url="http://127.0.0.1:8765/mcp",
    )
    return agent.env


def test_documented_agent_settings_reach_the_agent_and_nothing_else_does() -> None:
    """`make local` used to drop every AGENT_* variable, so timeouts could not be tuned locally."""
    from agent.settings import Settings

    env = _agent_env(
        {
            "HOME": "/home/x",
            "AGENT_MODEL_TIMEOUT_SECONDS": "7",
            "AGENT_TOOL_TIMEOUT_SECONDS": "3",
            "AGENT_TRACE_EXPORT_TIMEOUT_SECONDS": "0.5",
            "AGENT_HISTORY_TURNS": "4",
            "AGENT_MAX_OUTPUT_TOKENS": "256",
            "AGENT_LOG_LEVEL": "DEBUG",
            # Not tunables: a user's (or another tool's) variables that merely share the prefix...
            "AGENT_API_TOKEN": "secret-from-another-tool",
            "AGENT_MODE": "agentcore",
            "AGENT_PORT": "1",
            "OTEL_EXPORTER_OTLP_HEADERS": "Authorization=Basic c2VjcmV0",
        }
    )
    settings = Settings.from_env(env)
    assert (settings.model_timeout_seconds, settings.tool_timeout_seconds) == (7.0, 3.0)
    assert (settings.trace_export_timeout_seconds, settings.history_turns, settings.max_output_tokens) == (
        0.5,
        4,
        256,
    )
    assert env["AGENT_LOG_LEVEL"] == "DEBUG"
    assert "AGENT_API_TOKEN" not in env and "OTEL_EXPORTER_OTLP_HEADERS" not in env
    assert (env["AGENT_MODE"], env["AGENT_PORT"]) == ("local", "8080")


def test_every_agent_variable_is_either_tunable_or_set_by_the_launcher() -> None:
    """A new AGENT_* setting in agent/ must be classified (and documented in docs/local-mode.md)."""
    import re

    from local_stack.components import AGENT_LAUNCHER_SET, AGENT_TUNABLES

    read = set()
    for path in (REPO / "agent").glob("*.py"):
        read |= set(re.findall(r"[\"'](AGENT_[A-Z0-9_]+)[\"']", path.read_text(encoding="utf-8")))
    assert read, "no AGENT_* variable found in agent/: the scan is broken"
    assert read - AGENT_TUNABLES - AGENT_LAUNCHER_SET == set()
    assert AGENT_TUNABLES.isdisjoint(AGENT_LAUNCHER_SET)
    doc = (REPO / "docs" / "local-mode.md").read_text(encoding="utf-8")
    assert [name for name in sorted(AGENT_TUNABLES) if f"`{name}`" not in doc] == []

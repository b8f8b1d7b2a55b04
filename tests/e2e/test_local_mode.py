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

from tests.support.processes import free_port
from tests.support.scripted_model import ScriptedModel, Text

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
    ports = {name: free_port() for name in ("GATEWAY_PORT", "TOOLS_PORT", "AGENT_PORT")}
    with ScriptedModel() as model:
        model.enqueue(Text("Hello from the local stack."))
        env = {
            **base_env(tmp_path),
            **{k: str(v) for k, v in ports.items()},
            "GATEWAY_UPSTREAM_BASE": model.base_url,
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
                model.requests[-1]["model"] == "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
            )  # the catalog id
            children = [
                int(p)
                for p in subprocess.run(
                    ["pgrep", "-P", str(launcher.pid)], capture_output=True, text=True
                ).stdout.split()
            ]
            assert len(children) == 3
        finally:
            launcher.send_signal(signal.SIGINT)
            launcher.wait(timeout=60)
        for child in children:
            assert _pids_in_group(child) == [], f"process group {child} survived Ctrl-C"
        assert launcher.returncode == 0


def test_ctrl_c_during_start_up_stops_what_was_started(tmp_path: Path) -> None:
    ports = {name: free_port() for name in ("GATEWAY_PORT", "TOOLS_PORT", "AGENT_PORT")}
    with ScriptedModel() as model:
        env = {
            **base_env(tmp_path),
            **{k: str(v) for k, v in ports.items()},
            "GATEWAY_UPSTREAM_BASE": model.base_url,
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
    from scripts.local import agent_environment
    from tests.factories import test_config

    config = test_config("dev")
    env = agent_environment(
        config,
        profile="dev",
        gateway_url="http://127.0.0.1:4000",
        gateway_key="sk-run",
        tools_url="http://127.0.0.1:8765/mcp",
        port=8080,
        environ={"HOME": "/home/x", "AGENT_MODE": "agentcore"},
    )
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

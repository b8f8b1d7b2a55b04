"""`make local` / `make chat` preflight (scripts/local.py, llm_gateway/local.py): the upstream serves the
model we will send, every port is free before anything starts, one set of Streamlit flags, and the
Langfuse settings reach the agent and the chat (issue 14, items 3, 4 and 10)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from llm_gateway.local import UpstreamError, check_upstream, upstreams_from_env
from local_stack.loopback import LoopbackHandler, LoopbackServer
from local_stack.processes import free_port
from local_stack.scripted_model import ScriptedModel
from tests.factories import test_config

REPO = Path(__file__).resolve().parents[2]
CATALOG_ID = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"


def _env(**extra: str) -> dict[str, str]:
    return {"GATEWAY_UPSTREAM_BASE": "", **extra}


@pytest.fixture(scope="module")
def model() -> Iterator[ScriptedModel]:
    with ScriptedModel(model_name="llama3.2") as server:
        yield server


def _check(environ: dict[str, str], timeout: float = 5.0) -> list[str]:
    config = test_config("dev")
    return check_upstream(config, upstreams_from_env(config, environ), environ, timeout=timeout)


# --- item 3: the upstream is checked before anything starts -------------------------------------------


def test_unset_upstream_model_fails_naming_the_fix_and_the_served_models(model: ScriptedModel) -> None:
    with pytest.raises(UpstreamError) as raised:
        _check(_env(GATEWAY_UPSTREAM_BASE=model.base_url))
    message = str(raised.value)
    assert "GATEWAY_UPSTREAM_MODEL is not set" in message and CATALOG_ID in message
    assert "It serves: llama3.2" in message
    assert f"GATEWAY_UPSTREAM_MODEL=llama3.2 GATEWAY_UPSTREAM_BASE={model.base_url} make local" in message


def test_a_model_the_upstream_does_not_serve_fails(model: ScriptedModel) -> None:
    with pytest.raises(UpstreamError, match=r"GATEWAY_UPSTREAM_MODEL=llama3\.1 is not a model it serves"):
        _check(_env(GATEWAY_UPSTREAM_BASE=model.base_url, GATEWAY_UPSTREAM_MODEL="llama3.1"))


def test_a_served_model_passes(model: ScriptedModel) -> None:
    assert _check(_env(GATEWAY_UPSTREAM_BASE=model.base_url, GATEWAY_UPSTREAM_MODEL="llama3.2")) == []


def test_an_upstream_serving_the_catalog_ids_needs_no_model() -> None:
    config = test_config("dev")
    ids = {entry.model_id for entry in config.models.entries}
    with _Server(lambda path: (200, {"data": [{"id": i} for i in sorted(ids)]})) as url:
        assert _check(_env(GATEWAY_UPSTREAM_BASE=url)) == []


def test_a_dead_upstream_fails_fast_naming_the_url() -> None:
    base = f"http://127.0.0.1:{free_port()}/v1"
    started = time.monotonic()
    with pytest.raises(
        UpstreamError, match=r"cannot reach GATEWAY_UPSTREAM_BASE=.*is the model server running"
    ):
        _check(_env(GATEWAY_UPSTREAM_BASE=base, GATEWAY_UPSTREAM_MODEL="llama3.2"))
    assert time.monotonic() - started < 5


def test_a_silent_upstream_is_bounded_by_the_timeout() -> None:
    with socket.socket() as silent:  # accepts connections (backlog) but never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        base = f"http://127.0.0.1:{silent.getsockname()[1]}/v1"
        started = time.monotonic()
        with pytest.raises(UpstreamError, match="cannot reach"):
            _check(_env(GATEWAY_UPSTREAM_BASE=base, GATEWAY_UPSTREAM_MODEL="m"), timeout=1.0)
        assert time.monotonic() - started < 3


def test_a_refused_key_names_the_key_variable_and_never_the_key() -> None:
    with _Server(lambda path: (401, {"error": "bad key"})) as url:
        environ = _env(
            GATEWAY_UPSTREAM_BASE=url,
            GATEWAY_UPSTREAM_MODEL="m",
            GATEWAY_UPSTREAM_KEY_ENV="MY_UPSTREAM_KEY",
            MY_UPSTREAM_KEY="sk-very-secret",
        )
        with pytest.raises(UpstreamError, match=r"HTTP 401.*GATEWAY_UPSTREAM_KEY_ENV") as raised:
            _check(environ)
        assert "sk-very-secret" not in str(raised.value)


def test_an_upstream_without_a_models_route_needs_an_explicit_model() -> None:
    with _Server(lambda path: (404, {"error": "no route"})) as url:
        with pytest.raises(UpstreamError, match=r"does not list its models.*set GATEWAY_UPSTREAM_MODEL"):
            _check(_env(GATEWAY_UPSTREAM_BASE=url))
        (warning,) = _check(_env(GATEWAY_UPSTREAM_BASE=url, GATEWAY_UPSTREAM_MODEL="m"))
        assert "'m' is not checked" in warning


def test_no_upstream_means_no_check() -> None:
    assert _check(_env()) == []


def _launch(env: dict[str, str], *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scripts.local", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _launcher_env(state: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "LANGFUSE_", "GATEWAY_", "TAVILY_"))
    }
    env.update(
        LOCAL_STATE_DIR=str(state),
        AWS_CONFIG_FILE=str(state / "no-aws-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(state / "no-aws-credentials"),
        AWS_EC2_METADATA_DISABLED="true",
        GATEWAY_PORT=str(free_port()),
        TOOLS_PORT=str(free_port()),
        AGENT_PORT=str(free_port()),
        **extra,
    )
    return env


def test_make_local_with_the_readme_ollama_line_exits_2_before_starting_anything(
    model: ScriptedModel, tmp_path: Path
) -> None:
    """The README's `GATEWAY_UPSTREAM_BASE=... make local` used to start and send the Bedrock id."""
    result = _launch(_launcher_env(tmp_path, GATEWAY_UPSTREAM_BASE=model.base_url), "--no-frontend")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "GATEWAY_UPSTREAM_MODEL=llama3.2" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "logs").exists() and not (tmp_path / "gateway.env").exists()


def test_make_local_with_a_dead_upstream_exits_2_before_starting_anything(tmp_path: Path) -> None:
    env = _launcher_env(
        tmp_path,
        GATEWAY_UPSTREAM_BASE=f"http://127.0.0.1:{free_port()}/v1",
        GATEWAY_UPSTREAM_MODEL="llama3.2",
    )
    result = _launch(env, "--no-frontend")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "cannot reach GATEWAY_UPSTREAM_BASE" in result.stderr
    assert not (tmp_path / "logs").exists()


# --- item 4: busy ports, one set of Streamlit flags, `make chat` next to `make local` -----------------


def test_a_busy_port_stops_make_local_before_anything_starts_naming_the_port_and_its_owner(
    model: ScriptedModel, tmp_path: Path
) -> None:
    """A second `make local` used to print "ready" for parts an earlier run answered, then die."""
    env = _launcher_env(tmp_path, GATEWAY_UPSTREAM_BASE=model.base_url, GATEWAY_UPSTREAM_MODEL="llama3.2")
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", int(env["AGENT_PORT"])))
        holder.listen(1)
        result = _launch(env, "--no-frontend")
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"port {env['AGENT_PORT']} (agent) is already in use by pid {os.getpid()}" in result.stderr
    assert "AGENT_PORT=<free port> make local" in result.stderr and "ready" not in result.stdout
    assert not (tmp_path / "logs").exists() and not (tmp_path / "gateway.env").exists()


def test_make_local_starts_the_chat_with_the_same_flags_as_make_chat(
    model: ScriptedModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from scripts import local

    monkeypatch.setattr(local, "STATE_DIR", tmp_path)
    environ = {
        "GATEWAY_UPSTREAM_BASE": model.base_url,
        "GATEWAY_UPSTREAM_MODEL": "llama3.2",
        "FRONTEND_PORT": "8599",
    }
    (chat,) = [
        c for c in local.plan(test_config("dev"), "dev", environ, frontend=True) if c.name == "frontend"
    ]
    from local_stack.components import streamlit_argv

    assert chat.argv == streamlit_argv(8599)  # the one definition `make chat` uses too
    flags = " ".join(chat.argv)
    for flag in ("--client.toolbarMode viewer", "--server.headless true", "--server.address 127.0.0.1"):
        assert flag in flags
    dry_run = subprocess.run(
        ["make", "-n", "chat", "CHAT_PORT=8599"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout
    assert "scripts.local --chat-only --chat-port 8599" in dry_run and "streamlit run" not in dry_run


class _Server(LoopbackServer):
    """A loopback HTTP server answering GET with `route(path) -> (status, json body)`; entering it gives
    its OpenAI-style base URL."""

    def __init__(self, route: Any) -> None:
        self.route = route
        super().__init__()

    def handler_class(self) -> type[LoopbackHandler]:
        route = self.route

        class Handler(LoopbackHandler):
            protocol_version = "HTTP/1.0"

            def do_GET(self) -> None:
                status, body = route(self.path)
                self.send_json(status, body)

        return Handler

    def __enter__(self) -> str:  # type: ignore[override]
        self.start()
        return f"{self.url}/v1"


def test_make_chat_next_to_a_running_chat_says_where_it_is_without_a_traceback() -> None:
    def health(path: str) -> tuple[int, Any]:
        return (200, "ok") if path == "/_stcore/health" else (404, {})

    with _Server(health) as url:
        port = url.split(":")[2].split("/")[0]
        env = {**os.environ, "CHAT_MODE": "local"}
        result = _launch(env, "--chat-only", "--chat-port", port, timeout=30)
        assert result.returncode == 0, result.stderr
        assert (
            f"a chat is already running on http://localhost:{port} (make local starts one)" in result.stdout
        )
        agentcore = _launch({**env, "CHAT_MODE": "agentcore"}, "--chat-only", "--chat-port", port, timeout=30)
        assert agentcore.returncode == 2 and "Traceback" not in agentcore.stderr


def test_make_chat_on_a_port_held_by_something_else_names_it_and_exits_2() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        port = holder.getsockname()[1]
        result = _launch({**os.environ}, "--chat-only", "--chat-port", str(port), timeout=30)
    assert result.returncode == 2
    assert f"port {port} (chat) is already in use by pid {os.getpid()}" in result.stderr
    assert "CHAT_PORT=<free port> make chat" in result.stderr and "Traceback" not in result.stderr


# --- item 10: Langfuse Cloud settings reach the agent and the chat (trace link), keys stay private ----


def test_langfuse_cloud_settings_reach_the_agent_and_the_chat_shows_the_trace_link(
    model: ScriptedModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agent.settings import Settings
    from frontend.settings import load_settings
    from scripts import local

    monkeypatch.setattr(local, "STATE_DIR", tmp_path)
    environ = {
        "GATEWAY_UPSTREAM_BASE": model.base_url,
        "GATEWAY_UPSTREAM_MODEL": "llama3.2",
        "LANGFUSE_HOST": "https://cloud.langfuse.com",
        "LANGFUSE_PUBLIC_KEY": "pk-lf-test",
        "LANGFUSE_SECRET_KEY": "sk-lf-test-secret",
    }
    by_name = {c.name: c for c in local.plan(test_config("dev"), "dev", environ, frontend=True)}
    agent = Settings.from_env(by_name["agent"].env)
    assert (agent.langfuse_host, agent.langfuse_public_key) == ("https://cloud.langfuse.com", "pk-lf-test")
    chat = load_settings(by_name["frontend"].env)
    assert chat.langfuse is not None and chat.feedback_enabled
    assert chat.langfuse.trace_url("ab" * 16) == f"https://cloud.langfuse.com/trace/{'ab' * 16}"
    for component in by_name.values():
        assert "sk-lf-test-secret" not in " ".join(component.argv)
    assert "sk-lf-test-secret" not in (tmp_path / "litellm-config.yaml").read_text(encoding="utf-8")

"""ManagedProcess and the component launches: bounded waits, the failing component named with its log,
the whole process group stopped, ports free again after a stop."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from local_stack import components
from local_stack.processes import ManagedProcess, ProcessStartError, free_port, wait_for_http
from tests.factories import test_config
from tests.local_stack.servers import argv, bindable


def test_a_healthy_process_starts_and_stops_and_frees_its_port(tmp_path: Path) -> None:
    port = free_port()
    process = ManagedProcess(
        argv("ok", port),
        name="tools",
        health_url=f"http://127.0.0.1:{port}/health",
        log_path=tmp_path / "t.log",
    )
    with process:
        assert process.is_running() and not bindable(port)
        assert "mode ok" in process.log_text()
    assert not process.is_running() and process.returncode is not None
    assert bindable(port)  # the port can be used again at once (e.g. a restarted tool server)


def test_a_process_that_exits_is_reported_by_name_with_its_log(tmp_path: Path) -> None:
    port = free_port()
    started = time.monotonic()
    with pytest.raises(ProcessStartError, match=r"^gateway exited with status 3") as raised:
        ManagedProcess(
            argv("exit", port),
            name="gateway",
            health_url=f"http://127.0.0.1:{port}/",
            log_path=tmp_path / "g.log",
        ).start()
    assert raised.value.component == "gateway"
    assert "boom: configuration error" in str(raised.value) and str(tmp_path / "g.log") in str(raised.value)
    assert time.monotonic() - started < 10  # no waiting for the timeout once it exited


def test_the_health_wait_is_bounded_and_the_process_is_stopped(tmp_path: Path) -> None:
    port = free_port()
    process = ManagedProcess(
        argv("silent", port),
        name="agent",
        health_url=f"http://127.0.0.1:{port}/ping",
        log_path=tmp_path / "a.log",
        startup_timeout=2,
    )
    started = time.monotonic()
    with pytest.raises(ProcessStartError, match=r"^agent did not answer .*/ping within 2s") as raised:
        process.start()
    assert time.monotonic() - started < 8
    assert raised.value.component == "agent"
    assert not process.is_running()  # a failed start leaves nothing behind


def test_abort_ends_the_wait_early_without_an_error(tmp_path: Path) -> None:
    port = free_port()
    process = ManagedProcess(
        argv("silent", port), name="agent", health_url=f"http://127.0.0.1:{port}/", startup_timeout=60
    ).spawn()
    try:
        started = time.monotonic()
        assert process.wait_ready(abort=lambda: time.monotonic() - started > 0.5) is False
        assert time.monotonic() - started < 5
    finally:
        process.stop()


def test_stop_kills_a_process_that_ignores_sigterm_after_the_grace_period(tmp_path: Path) -> None:
    port = free_port()
    process = ManagedProcess(
        argv("slow-stop", port),
        health_url=f"http://127.0.0.1:{port}/",
        grace_period=1,
        log_path=tmp_path / "s.log",
    ).start()
    started = time.monotonic()
    status = process.stop()
    assert status == -9 and 0.9 < time.monotonic() - started < 6
    with pytest.raises(ProcessLookupError):
        os.killpg(process.pid, 0)  # the whole group is gone


def test_wait_for_http_is_bounded() -> None:
    started = time.monotonic()
    assert wait_for_http(f"http://127.0.0.1:{free_port()}/", timeout=0.5) is False
    assert time.monotonic() - started < 3


def test_the_tool_server_command_is_the_real_server_or_the_light_one(tmp_path: Path) -> None:
    full = components.tool_server(
        8765, db=tmp_path / "t.db", environ={"TAVILY_API_KEY": "k"}, index_cache=tmp_path / "i"
    )
    assert full.argv[1:] == [
        "-m",
        "tools.server",
        "--port",
        "8765",
        "--db",
        str(tmp_path / "t.db"),
        "--index-cache",
        str(tmp_path / "i"),
    ]
    assert full.env["TAVILY_API_KEY"] == "k" and full.url == "http://127.0.0.1:8765/mcp" and full.port == 8765
    light = components.tool_server(
        9000, db=tmp_path / "t.db", environ={}, light=True, index_cache=tmp_path / "i"
    )
    assert light.argv[1:3] == ["-m", "local_stack.light_tools"] and "--index-cache" not in light.argv


def test_the_agent_launch_keeps_tunables_and_drops_other_agent_and_otel_variables(tmp_path: Path) -> None:
    launch = components.agent_server(
        test_config("dev"),
        8080,
        gateway_url="http://127.0.0.1:4000",
        gateway_key="sk-k",
        tools_url="http://127.0.0.1:8765/mcp",
        memory_path=tmp_path / "m.db",
        environ={
            "AGENT_TOOL_TIMEOUT_SECONDS": "3",
            "AGENT_MODE": "agentcore",
            "AGENT_X": "1",
            "OTEL_A": "b",
            "HOME": "/h",
        },
        environment="dev",
        extra={"LANGFUSE_HOST": "http://127.0.0.1:1"},
    )
    env = launch.env
    assert (env["AGENT_MODE"], env["AGENT_PORT"], env["AGENT_TOOL_TIMEOUT_SECONDS"]) == ("local", "8080", "3")
    assert "AGENT_X" not in env and "OTEL_A" not in env and env["HOME"] == "/h"
    assert env["LANGFUSE_HOST"] == "http://127.0.0.1:1" and "LOCAL_GUARDRAIL_POLICY" in env
    assert launch.health_url == "http://127.0.0.1:8080/ping"

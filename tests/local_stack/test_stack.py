"""LocalStack: start order in waves, bounded waits, the failing component named, everything stopped in
reverse (also after a failure), ports free again; plan() wires the parts to each other."""

from __future__ import annotations

from pathlib import Path

import pytest

from llm_gateway.config import Upstream
from local_stack.components import Launch
from local_stack.processes import free_port
from local_stack.stack import LocalStack, StackStartError, hermetic_environ, plan
from tests.factories import test_config
from tests.local_stack.servers import argv, bindable


def launch(name: str, mode: str = "ok", timeout: float = 20) -> Launch:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    return Launch(name, argv(mode, port), {}, f"{url}/health", url, timeout)


def test_components_start_in_waves_and_stop_in_reverse(tmp_path: Path) -> None:
    events: list[str] = []
    launches = [launch("agent"), launch("tools"), launch("gateway")]  # plan order does not matter
    stack = LocalStack(
        launches,
        tmp_path / "logs",
        on_spawn=lambda item, process: events.append(f"spawn {item.name}"),
        on_ready=lambda item: events.append(f"ready {item.name}"),
        on_stop=lambda name: events.append(f"stop {name}"),
    )
    with stack:
        assert all(stack[name].is_running() for name in ("gateway", "tools", "agent"))
        assert stack.exited() is None
        pids = {name: stack[name].pid for name in ("gateway", "tools", "agent")}
    # gateway and tool server are spawned together; the agent only after both are healthy
    assert events[:4] == ["spawn tools", "spawn gateway", "ready tools", "ready gateway"]
    assert events[4:6] == ["spawn agent", "ready agent"]
    assert events[6:] == ["stop agent", "stop gateway", "stop tools"]
    assert all(bindable(item.port) for item in launches)
    assert (tmp_path / "logs" / "agent.log").is_file() and len(pids) == 3


def test_a_failing_component_is_named_and_everything_started_is_stopped(tmp_path: Path) -> None:
    launches = [launch("gateway"), launch("tools", mode="exit")]
    agent = launch("agent")
    stack = LocalStack([*launches, agent], tmp_path / "logs")
    with pytest.raises(StackStartError, match=r"^tools exited with status 3") as raised:
        stack.start()
    assert raised.value.component == "tools" and "boom: configuration error" in str(raised.value)
    assert stack.processes == {}  # the gateway was stopped, the agent never started
    assert bindable(launches[0].port) and not (tmp_path / "logs" / "agent.log").exists()


def test_a_component_that_never_answers_fails_within_its_bound(tmp_path: Path) -> None:
    stack = LocalStack([launch("gateway"), launch("agent", mode="silent", timeout=2)], tmp_path / "logs")
    with pytest.raises(StackStartError, match=r"agent did not answer .* within 2s") as raised:
        stack.start()
    assert raised.value.component == "agent" and stack.processes == {}


def test_an_exited_component_is_reported_and_stop_is_idempotent(tmp_path: Path) -> None:
    stopped: list[str] = []
    stack = LocalStack([launch("tools")], tmp_path / "logs", on_stop=stopped.append)
    with stack:
        stack["tools"].stop()
        assert stack.exited() == "tools"
        assert stack.stop() == ["tools"]
    assert stopped == ["tools"]  # __exit__ after an explicit stop stops nothing twice


def test_plan_wires_gateway_tools_agent_and_chat(tmp_path: Path) -> None:
    launches = plan(
        test_config("dev"),
        state_dir=tmp_path,
        environ=hermetic_environ({"HOME": "/h", "LANGFUSE_HOST": "https://mine", "TAVILY_API_KEY": "k"}),
        upstream=Upstream(api_base="http://127.0.0.1:9/v1", model="m"),
        parts=("gateway", "tools", "agent", "frontend"),
        ports={"gateway": 14000, "tools": 18765, "agent": 18080, "frontend": 18501},
        master_key="sk-plan",
        light_tools=True,
        chat_extra={"LANGFUSE_HOST": "http://127.0.0.1:1"},
    )
    by_name = {item.name: item for item in launches}
    assert list(by_name) == ["gateway", "tools", "agent", "frontend"]
    agent, chat = by_name["agent"].env, by_name["frontend"].env
    assert agent["LLM_GATEWAY_URL"] == "http://127.0.0.1:14000" and agent["LLM_GATEWAY_KEY"] == "sk-plan"
    assert agent["TOOL_GATEWAY_URL"] == "http://127.0.0.1:18765/mcp"
    assert chat["AGENT_URL"] == "http://127.0.0.1:18080" and chat["LANGFUSE_HOST"] == "http://127.0.0.1:1"
    assert "LANGFUSE_HOST" not in agent and "TAVILY_API_KEY" not in by_name["tools"].env  # hermetic
    assert (tmp_path / "gateway" / "litellm-config.yaml").is_file()


def test_plan_rejects_unknown_parts_and_an_unwired_agent(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown stack part"):
        plan(test_config("dev"), state_dir=tmp_path, environ={}, parts=("gateway", "chat"))
    with pytest.raises(ValueError, match="needs gateway_url"):
        plan(test_config("dev"), state_dir=tmp_path, environ={}, parts=("agent",))

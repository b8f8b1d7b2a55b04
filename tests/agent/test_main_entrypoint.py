"""`python -m agent.main` in-process: the environment it reads, the server it configures, the service it
warms up in the background, and the app it serves.

Only the server loop is a stand-in (`uvicorn.Server.run` records the configuration instead of binding
a port); everything else is real: the app `main()` builds is driven through Starlette's TestClient, its
warm-up thread builds the local-mode service (`agent.bootstrap.build_service`), which talks to the
scripted OpenAI-compatible model server and a real FastMCP tool server, both on 127.0.0.1.
"""

from __future__ import annotations

import gc
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn
from mcp.server.fastmcp import FastMCP
from starlette.testclient import TestClient
from uvicorn.protocols.http.h11_impl import H11Protocol

from agent import main as entrypoint
from local_stack.scripted_model import ScriptedModel, Text, ToolCall, ToolCalls

LIMIT = 15.0  # every wait below is bounded by this
LOCAL_URL = "http://127.0.0.1:8080"
SESSION_HEADER = "X-Amzn-Bedrock-AgentCore-Runtime-Session-Id"
SESSION = "s-" + "e" * 32

tool_requests: list[dict[str, str]] = []  # headers of every request the tool server received


def _tool_server() -> Any:
    server = FastMCP("entrypoint-tools", stateless_http=True, log_level="WARNING")

    @server.tool()
    def search_knowledge_base(query: str, max_results: int = 5) -> dict[str, Any]:
        """Search the product support knowledge base."""
        return {"query": query, "results": [{"title": "Router X200", "text": "Hold RESET 10 s."}], "count": 1}

    inner = server.streamable_http_app()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            tool_requests.append({k.decode().lower(): v.decode() for k, v in scope["headers"]})
        await inner(scope, receive, send)  # FastMCP's session manager runs in the lifespan

    return app


@pytest.fixture(scope="module")
def mcp_url() -> Iterator[str]:
    app = _tool_server()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + LIMIT
    while not server.started:
        assert time.monotonic() < deadline, "the MCP test server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/mcp"
    server.should_exit = True
    thread.join(10)


@pytest.fixture(scope="module")
def llm() -> Iterator[ScriptedModel]:
    with ScriptedModel() as model:
        yield model


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, llm: ScriptedModel, mcp_url: str) -> dict[str, str]:
    """A clean local-mode environment, outside a container (so the default host is loopback)."""
    for name in list(os.environ):
        if name.startswith(("AGENT_", "LLM_GATEWAY", "TOOL_GATEWAY", "MODEL_", "LANGFUSE_", "LOCAL_")):
            monkeypatch.delenv(name)
    monkeypatch.delenv("DOCKER_CONTAINER", raising=False)
    real_exists = os.path.exists
    monkeypatch.setattr(os.path, "exists", lambda path: path != "/.dockerenv" and real_exists(path))
    values = {
        "AGENT_MODE": "local",
        "LLM_GATEWAY_URL": llm.url,
        "LLM_GATEWAY_KEY": "sk-entrypoint",
        "MODEL_ALIAS": "claude-sonnet",
        "TOOL_GATEWAY_URL": mcp_url,
        "AGENT_MAX_OUTPUT_TOKENS": "321",
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    llm.reset()
    tool_requests.clear()
    return values


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The uvicorn configurations `main()` would serve (the server loop itself is not started)."""
    configs: list[Any] = []
    monkeypatch.setattr(uvicorn.Server, "run", lambda self, sockets=None: configs.append(self.config))
    return configs


def run_main(served: list[Any]) -> Any:
    assert entrypoint.main() == 0
    assert len(served) == 1
    return served[0]


def test_main_serves_on_loopback_with_the_bounded_protocol_and_limits(env, served):
    config = run_main(served)
    assert (config.host, config.port) == ("127.0.0.1", 8080)
    assert issubclass(config.http, H11Protocol) and config.http is not H11Protocol
    assert config.h11_max_incomplete_event_size == 64 * 1024
    assert config.timeout_keep_alive == 5
    assert config.backlog == 2 * 128  # twice AGENT_MAX_CONNECTIONS (default 128)
    assert config.log_level == "warning"
    assert config.timeout_graceful_shutdown == 5
    assert config.app.state.runtime.settings.max_output_tokens == 321


def test_main_host_and_port_come_from_the_environment(env, served, monkeypatch):
    monkeypatch.setenv("AGENT_HOST", "127.0.0.2")
    monkeypatch.setenv("AGENT_PORT", "9123")
    monkeypatch.setenv("AGENT_MAX_CONNECTIONS", "40")
    config = run_main(served)
    assert (config.host, config.port, config.backlog) == ("127.0.0.2", 9123, 80)


@pytest.mark.parametrize(
    ("marker", "host"),
    [({"DOCKER_CONTAINER": "1"}, "0.0.0.0"), ({"DOCKER_CONTAINER": ""}, "127.0.0.1")],
)
def test_main_listens_on_all_interfaces_only_in_a_container(env, served, monkeypatch, marker, host):
    for name, value in marker.items():
        monkeypatch.setenv(name, value)
    assert run_main(served).host == host


def test_main_in_a_container_marked_by_dockerenv(env, served, monkeypatch):
    real_exists = os.path.exists
    monkeypatch.setattr(os.path, "exists", lambda path: path == "/.dockerenv" or real_exists(path))
    assert run_main(served).host == "0.0.0.0"


def test_main_sets_the_log_level_from_the_environment(env, served, monkeypatch):
    monkeypatch.setenv("AGENT_LOG_LEVEL", "debug")
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", [])
    monkeypatch.setattr(root, "level", root.level)
    run_main(served)
    assert root.level == logging.DEBUG
    assert len(root.handlers) == 1
    assert root.handlers[0].formatter._fmt == "%(asctime)s %(levelname)s %(name)s: %(message)s"  # type: ignore[union-attr]


def test_main_default_log_level_is_info(env, served, monkeypatch):
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", [])
    monkeypatch.setattr(root, "level", logging.WARNING)
    run_main(served)
    assert root.level == logging.INFO


def test_main_with_a_configuration_error_returns_2_and_serves_nothing(env, served, monkeypatch, caplog):
    monkeypatch.delenv("LLM_GATEWAY_URL")
    with caplog.at_level(logging.ERROR, logger="agent"):
        assert entrypoint.main() == 2
    assert served == []
    assert any("LLM_GATEWAY_URL is not set" in r.getMessage() for r in caplog.records)  # the operator's clue


def wait_for(condition: Any, what: str) -> None:
    deadline = time.monotonic() + LIMIT
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_the_served_app_warms_up_in_the_background_and_answers_over_the_gateway(env, served, llm):
    gc.unfreeze()
    config = run_main(served)
    runtime = config.app.state.runtime
    llm.enqueue(
        ToolCalls([ToolCall("search_knowledge_base", {"query": "reset router"})]),
        Text("Hold the reset button for 10 seconds."),
    )
    with TestClient(config.app, base_url=LOCAL_URL) as client:
        assert client.get("/ping").json()["status"] == "Healthy"
        # Pre-warming opens the local caller's MCP session before any turn arrives.
        wait_for(lambda: any(h.get("x-actor-id") == "local-user" for h in tool_requests), "the MCP session")
        wait_for(lambda: runtime._ready.is_set(), "the warm-up")
        assert gc.get_freeze_count() > 0  # the start-up heap is out of the collector's reach
        assert llm.requests == []  # warming up never calls the model
        response = client.post(
            "/invocations", json={"prompt": "How do I reset?"}, headers={SESSION_HEADER: SESSION}
        )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["answer"] == "Hold the reset button for 10 seconds."
    assert [t["name"] for t in body["metadata"]["tools"]] == ["search_knowledge_base"]
    first = llm.requests[0]
    assert first["model"] == "claude-sonnet" and first["max_tokens"] == 321
    assert [t["function"]["name"] for t in first["tools"]] == ["search_knowledge_base"]
    assert all(h["authorization"] == "Bearer sk-entrypoint" for h in llm.request_headers)
    assert all(h.get("x-actor-id") == "local-user" for h in tool_requests)


def test_a_service_that_cannot_be_built_answers_500_naming_no_internals(env, served, monkeypatch, llm):
    monkeypatch.setenv("LOCAL_GUARDRAIL_POLICY", '{"pii": [{"type": "SHOE_SIZE", "action": "BLOCK"}]}')
    config = run_main(served)
    with TestClient(config.app, base_url=LOCAL_URL) as client:
        wait_for(lambda: config.app.state.runtime._ready.is_set(), "the failed warm-up")
        assert client.get("/ping").json()["status"] == "Healthy"
        response = client.post("/invocations", json={"prompt": "hi"})
    assert response.status_code == 500
    error = response.json()["error"]
    assert error["code"] == "internal_error"
    assert error["message"] == "the agent is not ready: see the agent log"
    assert "SHOE_SIZE" not in response.text
    assert llm.requests == []


def test_a_failed_pre_warm_still_serves_turns(env, served, monkeypatch, llm):
    # A server that answers HTTP but speaks no MCP: opening the session fails (ToolsUnavailable),
    # which only costs the warm-up; the service is still built and answers turns.
    monkeypatch.setenv("TOOL_GATEWAY_URL", f"{llm.url}/no-mcp-here")
    config = run_main(served)
    runtime = config.app.state.runtime
    with TestClient(config.app, base_url=LOCAL_URL) as client:
        wait_for(lambda: runtime._ready.is_set(), "the warm-up")
        response = client.post("/invocations", json={"prompt": "hi"})
    assert "not ready" not in response.text
    assert response.json()["error"]["code"] == "tools_unavailable", response.text

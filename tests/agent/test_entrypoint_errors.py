"""An exception our code did not classify never reaches the caller as text.

The entrypoint's exceptions bypass the app's exception handlers: bedrock-agentcore 1.25.0
`runtime/app.py` `_handle_invocation` catches them and answers `500 {"error": str(exception)}`, which
is neither the contract's shape nor safe (it can carry internals). The entrypoint answers the
contract's `internal_error` instead (docs/agent-api.md, "Limits and errors").
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

import pytest
from starlette.testclient import TestClient

from agent.main import Runtime, create_app
from tests.agent.http_support import LOCAL, LOCAL_URL

if TYPE_CHECKING:
    from agent.service import AgentService

SECRET = "postgres://gateway:hunter2@db.internal"  # what an exception's text can carry


class FailingTurn:
    async def run_turn(self, invocation: Any, caller: Any) -> dict[str, Any]:
        raise RuntimeError(f"cannot connect to {SECRET}")


def _assert_contract_500(response: Any) -> None:
    assert response.status_code == 500
    body = response.json()
    assert body["error"]["code"] == "internal_error"
    assert body["error"]["message"] == "the agent failed; please try again"
    assert "hunter2" not in response.text


def test_a_turn_that_raises_answers_internal_error_without_its_text() -> None:
    app = create_app(LOCAL, service=cast("AgentService", FailingTurn()))
    with TestClient(app, base_url=LOCAL_URL) as client:
        _assert_contract_500(client.post("/invocations", json={"prompt": "hi"}))


def test_a_failing_set_up_answers_internal_error_without_its_text(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_caller(self: Runtime, context: Any) -> Any:
        raise KeyError(SECRET)

    monkeypatch.setattr(Runtime, "caller", broken_caller)
    app = create_app(LOCAL, service=cast("AgentService", FailingTurn()))
    with TestClient(app, base_url=LOCAL_URL) as client:
        _assert_contract_500(client.post("/invocations", json={"prompt": "hi"}))

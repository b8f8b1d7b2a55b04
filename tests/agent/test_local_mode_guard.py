"""The outermost guard of the app (`agent.main.HttpGuard`) in-process: which local-mode requests are
refused (Host, Origin, Content-Type: a page on another site must not drive the local agent) with which
exact contract error, turn admission, and the body gate's limits. The model is the scripted one and is
never called for a refused request."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from agent.main import create_app
from agent.payload import MAX_BODY_BYTES
from local_stack.scripted_strands import Say
from tests.agent.http_support import DEPLOYED, LOCAL, settings

JSON = {"Content-Type": "application/json"}
PROMPT = b'{"prompt": "hi"}'


def error(response, status: int) -> dict[str, str]:
    assert response.status_code == status, response.text
    body: dict[str, str] = response.json()["error"]
    return body


@pytest.fixture
def local(make_service):
    with TestClient(create_app(LOCAL, service=make_service()), base_url="http://127.0.0.1:8080") as client:
        yield client


def test_a_foreign_host_is_refused_naming_the_allowed_ones(local, model):
    body = error(local.post("/invocations", content=PROMPT, headers={**JSON, "Host": "Evil.Example"}), 403)
    assert body["code"] == "forbidden_host"
    assert body["message"] == (
        "Host 'evil.example' is not allowed; use one of ['127.0.0.1:8080', '[::1]:8080', 'localhost:8080']"
    )
    assert model.calls == 0


def test_a_missing_host_is_named_as_none(make_service):
    app = create_app(LOCAL, service=make_service())
    with TestClient(app, base_url="http://127.0.0.1:8080") as client:
        response = client.get("/ping", headers={"Host": ""})
    assert error(response, 403)["message"].startswith("Host '(none)' is not allowed")


def test_on_port_80_the_bare_loopback_names_are_allowed(make_service, model):
    with TestClient(create_app(LOCAL, service=make_service()), base_url="http://localhost") as client:
        assert client.get("/ping").status_code == 200
        assert client.get("/ping", headers={"Host": "127.0.0.1:80"}).status_code == 200
        assert client.get("/ping", headers={"Host": " LOCALHOST "}).status_code == 200
        model.enqueue(Say("ok"))
        assert (
            client.post(
                "/invocations", content=PROMPT, headers={**JSON, "Origin": "http://localhost"}
            ).status_code
            == 200
        )


def test_on_another_port_the_bare_names_are_refused(local):
    assert error(local.get("/ping", headers={"Host": "127.0.0.1"}), 403)["code"] == "forbidden_host"
    assert local.get("/ping", headers={"Host": "[::1]:8080"}).status_code == 200


def test_configured_hosts_are_allowed_as_well(make_service, model):
    config = settings(LOCAL, allowed_hosts=("agent.internal:8080",))
    with TestClient(
        create_app(config, service=make_service()), base_url="http://agent.internal:8080"
    ) as client:
        model.enqueue(Say("ok"))
        response = client.post(
            "/invocations", content=PROMPT, headers={**JSON, "Origin": "https://agent.internal:8080"}
        )
        assert response.status_code == 200
        assert client.get("/ping", headers={"Host": "127.0.0.1:8080"}).status_code == 200


@pytest.mark.parametrize(
    "origin",
    ["http://127.0.0.1:8080", "https://127.0.0.1:8080", "HTTP://LOCALHOST:8080", " http://[::1]:8080 "],
)
def test_loopback_origins_are_served(local, model, origin):
    model.enqueue(Say("ok"))
    assert local.post("/invocations", content=PROMPT, headers={**JSON, "Origin": origin}).status_code == 200


@pytest.mark.parametrize(
    "origin", ["http://evil.example", "null", "http://127.0.0.1:9999", "ws://127.0.0.1:8080", ""]
)
def test_other_origins_are_refused_naming_the_origin(local, model, origin):
    body = error(local.post("/invocations", content=PROMPT, headers={**JSON, "Origin": origin}), 403)
    assert body == {
        "code": "forbidden_origin",
        "message": f"cross-origin requests are refused (Origin {origin!r})",
        "trace_id": "",
    }
    assert model.calls == 0


def test_a_foreign_origin_is_refused_on_ping_too(local):
    assert (
        error(local.get("/ping", headers={"Origin": "http://evil.example"}), 403)["code"]
        == "forbidden_origin"
    )


@pytest.mark.parametrize(
    ("content_type", "named"),
    [
        ("text/plain", "'text/plain'"),
        ("Text/Plain; charset=utf-8", "'text/plain'"),
        (None, "'none'"),
        ("", "'none'"),
    ],
)
def test_a_turn_must_be_json(local, model, content_type, named):
    headers = {} if content_type is None else {"Content-Type": content_type}
    body = error(local.post("/invocations", content=PROMPT, headers=headers), 415)
    assert body["code"] == "unsupported_media_type"
    assert body["message"] == f"Content-Type must be application/json (got {named})"
    assert model.calls == 0


@pytest.mark.parametrize(
    "content_type", ["application/json", "Application/JSON; charset=utf-8", " application/json ;x=y"]
)
def test_json_content_types_are_served(local, model, content_type):
    model.enqueue(Say("ok"))
    assert (
        local.post("/invocations", content=PROMPT, headers={"Content-Type": content_type}).status_code == 200
    )


def test_only_a_turn_needs_json(local):
    # the body gate checks POST /invocations only; other paths reach the router (404/405)
    assert (
        error(local.post("/other", content=b"x", headers={"Content-Type": "text/plain"}), 404)["code"]
        == "not_found"
    )
    assert error(local.get("/invocations"), 405)["code"] == "method_not_allowed"


def test_a_websocket_from_a_foreign_page_is_closed_as_a_policy_violation(make_service):
    app = create_app(LOCAL, service=make_service())
    headers = {"Host": "127.0.0.1", "Origin": "http://evil.example"}
    with (
        TestClient(app, base_url="http://127.0.0.1:8080") as client,
        pytest.raises(WebSocketDisconnect) as closed,
        client.websocket_connect("/ws", headers=headers),
    ):
        pass
    assert closed.value.code == 1008
    assert closed.value.reason == "cross-origin requests are refused (Origin 'http://evil.example')"


def test_a_websocket_close_reason_fits_the_frame(make_service):
    # a close frame's reason must stay short (RFC 6455 section 5.5: control frames carry <= 125 bytes)
    app = create_app(LOCAL, service=make_service())
    with (
        TestClient(app, base_url="http://127.0.0.1:8080") as client,
        pytest.raises(WebSocketDisconnect) as closed,
        client.websocket_connect("/ws", headers={"Host": "evil.example"}),
    ):
        pass
    assert closed.value.code == 1008
    assert len(closed.value.reason) == 120 and closed.value.reason.startswith(
        "Host 'evil.example' is not allowed"
    )


def test_deployed_mode_checks_no_host_origin_or_content_type(make_service, model):
    from tests.agent.test_identity_claims import jwt

    app = create_app(DEPLOYED, service=make_service())
    with TestClient(app, base_url="http://10.0.0.7:8080") as runtime:
        model.enqueue(Say("ok"))
        response = runtime.post(
            "/invocations",
            content=PROMPT,
            headers={
                "Content-Type": "text/plain",
                "Origin": "http://evil.example",
                "Authorization": f"Bearer {jwt({'sub': 'u-1'})}",
            },
        )
        assert response.status_code == 200, response.text
        assert app.state.runtime.seen_request_shape is True


# --- turn admission and the body gate ------------------------------------------------------------


def test_a_turn_beyond_the_limit_is_busy_naming_the_limit(make_service):
    app = create_app(settings(LOCAL, max_concurrent_turns=3), service=make_service())
    runtime = app.state.runtime
    for _ in range(3):
        assert runtime.try_enter()
    with TestClient(app, base_url="http://127.0.0.1:8080") as client:
        response = client.post("/invocations", content=PROMPT, headers=JSON)
        ping = client.get("/ping").json()
    body = error(response, 503)
    assert body == {
        "code": "busy",
        "message": "the agent is already running 3 turns; retry shortly",
        "trace_id": "",
    }
    assert response.headers["retry-after"] == "5"
    assert ping["status"] == "HealthyBusy"
    assert runtime.turns_in_flight == 3  # a refused turn takes no slot


def test_a_finished_turn_gives_its_slot_back(local, model):
    model.enqueue(Say("one"), Say("two"))
    assert local.post("/invocations", content=PROMPT, headers=JSON).status_code == 200
    assert local.app.state.runtime.turns_in_flight == 0
    assert local.post("/invocations", content=b"{nope", headers=JSON).status_code == 400
    assert local.app.state.runtime.turns_in_flight == 0


def test_a_declared_oversized_body_is_refused_unread(local, model):
    response = local.post(
        "/invocations", content=b"{}", headers={**JSON, "Content-Length": str(MAX_BODY_BYTES + 1)}
    )
    body = error(response, 413)
    assert body["message"] == f"the body is larger than {MAX_BODY_BYTES} bytes"
    assert response.headers["connection"] == "close"


def test_a_body_of_exactly_the_limit_is_read(local, model):
    model.enqueue(Say("ok"))
    prompt = b'{"prompt": "hi", "pad": "'
    body = prompt + b"x" * (MAX_BODY_BYTES - len(prompt) - 2) + b'"}'
    assert len(body) == MAX_BODY_BYTES
    response = local.post("/invocations", content=body, headers=JSON)
    assert response.status_code != 413, response.text


def test_a_chunked_body_over_the_limit_is_refused(local):
    def chunks():
        yield b'{"prompt": "'
        for _ in range(MAX_BODY_BYTES // 1024 + 1):
            yield b"x" * 1024
        yield b'"}'

    response = local.post("/invocations", content=chunks(), headers=JSON)
    assert error(response, 413)["code"] == "payload_too_large"
    assert response.headers["connection"] == "close"

"""Issue 13, defects 1-3 and 5 (HTTP side): bad input, framework errors, browser-driven local mode,
slow clients. The real app (`agent.main.create_app`) in-process through Starlette's TestClient, and
under real uvicorn on loopback for what only the server sees (headers, connections, Content-Length)."""

from __future__ import annotations

# ruff: noqa: F811  (the fixtures of tests/agent/conftest.py are imported and used as parameters)
import json
import socket
import time

import pytest
from starlette.testclient import TestClient

from agent.main import create_app
from local_stack.scripted_strands import Say
from tests.agent.conftest import make_service, model  # noqa: F401  (fixtures)
from tests.agent.http_support import DEPLOYED, LOCAL, LOCAL_URL, raw_exchange, serve, settings

JSON = {"Content-Type": "application/json"}


@pytest.fixture
def client(make_service):
    with TestClient(create_app(LOCAL, service=make_service()), base_url=LOCAL_URL) as test_client:
        yield test_client


def contract_error(response, status: int, code: str) -> dict[str, str]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error: dict[str, str] = response.json()["error"]
    assert error["code"] == code and error["message"] and "trace_id" in error
    assert "Traceback" not in response.text
    return error


# --- defect 1: bad input is a 4xx before any model call ----------------------------------------


@pytest.mark.parametrize(
    ("body", "code", "fragment"),
    [
        (b'{"prompt": ' + b"[" * 1000 + b"]" * 1000 + b"}", "invalid_json", "nests deeper"),
        (b"[" * 100_000 + b"]" * 100_000, "payload_too_large", "larger than"),  # over 64 KiB first
        (b"[" * 30_000 + b"]" * 30_000, "invalid_json", "nests deeper"),
        (b'{"prompt": "hi", "stream": ' + b"7" * 5000 + b"}", "invalid_json", "not acceptable JSON"),
        (b'{"prompt": ' + b"1" * 4301 + b"}", "invalid_json", "not acceptable JSON"),
        (b'{"prompt": "\\"[[[[[[[[[[[[[[[[[[[[\\""}', None, None),  # brackets inside a string are text
    ],
)
def test_hostile_json_is_a_400_not_a_5xx(client, model, body, code, fragment):
    response = client.post("/invocations", content=body, headers=JSON)
    if code is None:
        assert response.status_code == 200
        return
    status = 413 if code == "payload_too_large" else 400
    assert fragment in contract_error(response, status, code)["message"]
    assert model.calls == 0


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("surrogate", ["\\ud800", "abc\\udfff", "\\udc00\\ud800"])
def test_unpaired_surrogate_in_the_prompt_is_a_422_in_both_modes(client, model, stream, surrogate):
    body = f'{{"prompt": "{surrogate}", "stream": {json.dumps(stream)}}}'.encode()
    response = client.post("/invocations", content=body, headers=JSON)
    error = contract_error(response, 422, "invalid_payload")
    assert "surrogate" in error["message"]
    assert model.calls == 0


def test_a_paired_surrogate_is_an_ordinary_character(client, model):
    model.enqueue(Say("ok"))
    response = client.post("/invocations", content=b'{"prompt": "\\ud83d\\ude00 hi"}', headers=JSON)
    assert response.status_code == 200 and model.calls == 1


# --- defect 2: errors raised below our handler carry the contract's body ----------------------


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", "/invocations", 405, "method_not_allowed"),
        ("PUT", "/invocations", 405, "method_not_allowed"),
        ("POST", "/ping", 405, "method_not_allowed"),
        ("POST", "/invocations/", 404, "not_found"),
        ("GET", "/nothing-here", 404, "not_found"),
    ],
)
def test_framework_errors_are_contract_json_and_never_redirect(client, method, path, status, code):
    response = client.request(method, path, content=b'{"prompt": "hi"}', headers=JSON, follow_redirects=False)
    contract_error(response, status, code)
    if status == 405:
        assert response.headers["allow"]


def test_ping_body_keeps_the_sdk_fields(client):
    body = client.get("/ping").json()
    assert body["status"] == "Healthy" and isinstance(body["time_of_last_update"], int)


# --- defect 3: local mode cannot be driven from a web page -------------------------------------


def test_a_browser_simple_request_from_a_foreign_page_runs_no_turn(make_service, model):
    """What a page on evil.example can make a browser send after DNS rebinding (no preflight)."""
    app = create_app(LOCAL, service=make_service())
    with TestClient(app, base_url="http://evil.example:8080") as browser:
        response = browser.post(
            "/invocations",
            content=b'{"prompt": "open a ticket for me"}',
            headers={"Content-Type": "text/plain", "Origin": "http://evil.example:8080"},
        )
    contract_error(response, 403, "forbidden_host")
    assert model.calls == 0


@pytest.mark.parametrize(
    ("headers", "status", "code"),
    [
        ({"Content-Type": "text/plain"}, 415, "unsupported_media_type"),
        ({"Content-Type": "application/x-www-form-urlencoded"}, 415, "unsupported_media_type"),
        ({"Content-Type": "multipart/form-data; boundary=x"}, 415, "unsupported_media_type"),
        ({}, 415, "unsupported_media_type"),
        ({**JSON, "Origin": "http://evil.example"}, 403, "forbidden_origin"),
        ({**JSON, "Origin": "null"}, 403, "forbidden_origin"),
        ({**JSON, "Origin": "http://127.0.0.1:9999"}, 403, "forbidden_origin"),
        ({**JSON, "Host": "evil.example"}, 403, "forbidden_host"),
        ({**JSON, "Host": "127.0.0.1.evil.example:8080"}, 403, "forbidden_host"),
        ({**JSON, "Host": "127.0.0.1:9999"}, 403, "forbidden_host"),
    ],
)
def test_local_mode_refuses_cross_site_requests(client, model, headers, status, code):
    response = client.post("/invocations", content=b'{"prompt": "hi"}', headers=headers)
    contract_error(response, status, code)
    assert model.calls == 0


@pytest.mark.parametrize(
    "headers",
    [
        {**JSON},
        {"Content-Type": "application/json; charset=utf-8"},
        {**JSON, "Origin": "http://127.0.0.1:8080"},
        {**JSON, "Origin": "http://localhost:8080", "Host": "localhost:8080"},
        {**JSON, "Host": "[::1]:8080"},
    ],
)
def test_local_mode_serves_loopback_clients(client, model, headers):
    model.enqueue(Say("ok"))
    response = client.post("/invocations", content=b'{"prompt": "hi"}', headers=headers)
    assert response.status_code == 200, response.text


def test_extra_allowed_hosts_are_a_setting(make_service, model):
    app = create_app(settings(allowed_hosts=("agent.internal:8080",)), service=make_service())
    with TestClient(app, base_url="http://agent.internal:8080") as other:
        model.enqueue(Say("ok"))
        assert other.post("/invocations", json={"prompt": "hi"}).status_code == 200


def test_deployed_mode_does_not_check_host_or_content_type(make_service, model):
    """AgentCore's Host and Content-Type towards the container are not documented; deployed requests
    are authenticated by the runtime's JWT authorizer, so the browser checks stay local-only."""
    from tests.agent.test_main import jwt

    app = create_app(DEPLOYED, service=make_service())
    with TestClient(app, base_url="http://10.0.0.7:8080") as runtime:
        model.enqueue(Say("ok"))
        response = runtime.post(
            "/invocations",
            content=b'{"prompt": "hi"}',
            headers={"Content-Type": "text/plain", "Authorization": f"Bearer {jwt({'sub': 'u-1'})}"},
        )
    assert response.status_code == 200, response.text
    with TestClient(app, base_url="http://10.0.0.7:8080") as runtime:
        assert runtime.get("/ping").status_code == 200


# --- defect 2 / 5 under real uvicorn: what the server sees -----------------------------------


@pytest.fixture
def served(make_service):
    config = settings(header_timeout_seconds=0.5, body_timeout_seconds=0.5, max_connections=20)
    with serve(config, make_service()) as running:
        yield running


def _status_and_body(raw: bytes) -> tuple[int, bytes, bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), head.lower(), body


def test_bad_content_length_is_uvicorns_plain_400(served):
    """Documented exception: h11 rejects the request before the app runs (no JSON body possible)."""
    raw = raw_exchange(
        served.port,
        b"POST /invocations HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: abc\r\n\r\n{}",
    )
    status, head, body = _status_and_body(raw)
    assert status == 400 and b"text/plain" in head and body == b"Invalid HTTP request received."


def test_headers_that_never_finish_get_a_408_and_the_connection_closes(served):
    started = time.monotonic()
    raw = raw_exchange(served.port, b"POST /invocations HTTP/1.1\r\nHost: 127.0.0.1", timeout=5)
    elapsed = time.monotonic() - started
    status, _, body = _status_and_body(raw)
    assert status == 408 and json.loads(body)["error"]["code"] == "request_timeout"
    assert elapsed < 3, f"the slow request was held {elapsed:.1f} s"


def test_a_silent_connection_is_closed_after_the_header_timeout(served):
    started = time.monotonic()
    raw = raw_exchange(served.port, b"", timeout=5)
    assert b"408" in raw.split(b"\r\n", 1)[0] and time.monotonic() - started < 3


def test_a_body_that_never_finishes_gets_a_408(served, model):
    host = f"127.0.0.1:{served.port}".encode()
    raw = raw_exchange(
        served.port,
        b"POST /invocations HTTP/1.1\r\nHost: " + host + b"\r\nContent-Type: application/json\r\n"
        b'Content-Length: 100\r\n\r\n{"prompt": ',
        timeout=5,
    )
    status, head, body = _status_and_body(raw)
    assert status == 408 and b"connection: close" in head
    assert json.loads(body)["error"]["code"] == "request_timeout"
    assert model.calls == 0


def test_connections_beyond_the_limit_are_refused_and_ping_recovers(served):
    import httpx

    held = []
    try:
        for _ in range(40):  # twice AGENT_MAX_CONNECTIONS, none of them ever sends a request
            held.append(socket.create_connection(("127.0.0.1", served.port), timeout=5))
        refused = raw_exchange(served.port, b"")  # the refusal is written on connect, before any request
        status, _, body = _status_and_body(refused)
        assert status == 503 and json.loads(body)["error"]["code"] == "busy"
    finally:
        for sock in held:
            sock.close()
    deadline = time.monotonic() + 5
    while True:  # the held connections are gone (closed by us or by the header timeout)
        try:
            if httpx.get(f"{served.url}/ping", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "/ping did not recover after the connection flood"
        time.sleep(0.1)


def test_real_server_answers_a_turn_and_keeps_ping_in_the_contract(served, model):
    import httpx

    model.enqueue(Say("Hello there."))
    response = httpx.post(f"{served.url}/invocations", json={"prompt": "hi"}, timeout=10)
    assert response.status_code == 200 and response.json()["answer"] == "Hello there."
    ping = httpx.get(f"{served.url}/ping", timeout=2).json()
    assert set(ping) == {"status", "time_of_last_update"} and ping["status"] == "Healthy"

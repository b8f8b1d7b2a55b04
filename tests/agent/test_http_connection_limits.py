"""Connection limits of the served agent (`agent.main.bounded_protocol`), under real uvicorn on loopback.

uvicorn itself bounds neither the number of connections nor the time a client may take to send its
request headers; the agent's protocol answers both with the contract's JSON error written as raw
HTTP, then closes the connection (docs/agent-api.md, "Limits and errors").
"""

from __future__ import annotations

import json
import socket
import time

import httpx

from local_stack.scripted_strands import Say
from tests.agent.http_support import LOCAL, raw_exchange, serve, settings

LIMIT = 10.0


def parse(raw: bytes) -> tuple[str, dict[str, str], dict[str, object]]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    assert int(headers["content-length"]) == len(body)
    return lines[0], {k.lower(): v for k, v in headers.items()}, json.loads(body)


def test_headers_that_never_finish_get_a_408_and_the_connection_closes(make_service):
    config = settings(LOCAL, header_timeout_seconds=0.4)
    with serve(config, make_service()) as served:
        started = time.monotonic()
        raw = raw_exchange(served.port, b"POST /invocations HTTP/1.1\r\nHost: 127.0.0.1\r\n", timeout=LIMIT)
        elapsed = time.monotonic() - started
    status, headers, body = parse(raw)
    assert status == "HTTP/1.1 408 Request Timeout"
    assert headers["content-type"] == "application/json" and headers["connection"] == "close"
    assert body == {
        "error": {
            "code": "request_timeout",
            "message": "the request headers did not arrive within 0.4 s",
            "trace_id": "",
        }
    }
    assert 0.3 <= elapsed < LIMIT - 1  # answered at the deadline, then closed (recv saw EOF)


def test_a_silent_connection_is_refused_after_the_header_timeout(make_service):
    config = settings(LOCAL, header_timeout_seconds=0.3)
    with serve(config, make_service()) as served:
        raw = raw_exchange(served.port, b"", timeout=LIMIT)
    assert parse(raw)[0] == "HTTP/1.1 408 Request Timeout"


def test_a_keep_alive_connection_gets_the_header_deadline_again_for_its_next_request(make_service, model):
    config = settings(LOCAL, header_timeout_seconds=0.5)
    with (
        serve(config, make_service()) as served,
        socket.create_connection(("127.0.0.1", served.port), timeout=LIMIT) as sock,
    ):
        sock.sendall(b"GET /ping HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n" % served.port)
        first = sock.recv(65536)
        assert first.startswith(b"HTTP/1.1 200")
        time.sleep(0.8)  # longer than the header deadline: an idle keep-alive is uvicorn's (5 s), not ours
        sock.sendall(b"GET /ping HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n" % served.port)  # unfinished
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    assert parse(b"".join(chunks))[0] == "HTTP/1.1 408 Request Timeout"


def test_a_slow_body_is_the_body_deadline_not_the_header_deadline(make_service):
    config = settings(LOCAL, header_timeout_seconds=0.3, body_timeout_seconds=0.8)
    with serve(config, make_service()) as served:
        raw = raw_exchange(
            served.port,
            b"POST /invocations HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: application/json\r\n"
            b"Content-Length: 20\r\n\r\n{" % served.port,
            timeout=LIMIT,
        )
    status, headers, body = parse(raw)
    assert status.startswith("HTTP/1.1 408")
    assert body["error"]["code"] == "request_timeout"  # type: ignore[index]
    assert body["error"]["message"] == "the body did not arrive within 0.8 s"  # type: ignore[index]
    assert headers["connection"] == "close"


def test_connections_beyond_the_limit_get_503_busy_and_ping_recovers(make_service):
    config = settings(LOCAL, max_concurrent_turns=1, max_connections=2, header_timeout_seconds=5.0)
    with serve(config, make_service()) as served:
        held = [socket.create_connection(("127.0.0.1", served.port), timeout=LIMIT)]
        try:
            time.sleep(0.2)
            at_limit = raw_exchange(
                served.port,
                b"GET /ping HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n\r\n" % served.port,
            )
            assert at_limit.startswith(b"HTTP/1.1 200"), at_limit  # the limit-th connection is still served
            held.append(socket.create_connection(("127.0.0.1", served.port), timeout=LIMIT))
            time.sleep(0.2)
            started = time.monotonic()
            raw = raw_exchange(served.port, b"", timeout=LIMIT)
            assert time.monotonic() - started < 3  # refused at once, not after a timeout
            status, headers, body = parse(raw)
            assert status == "HTTP/1.1 503 Service Unavailable"
            assert headers["retry-after"] == "5" and headers["connection"] == "close"
            assert body["error"] == {"code": "busy", "message": "too many open connections", "trace_id": ""}
        finally:
            for sock in held:
                sock.close()
        deadline = time.monotonic() + LIMIT
        while True:
            try:
                if httpx.get(f"{served.url}/ping", timeout=LIMIT).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "ping did not recover after the connections closed"
            time.sleep(0.05)


def test_a_complete_request_is_served_and_not_cut_by_the_header_deadline(make_service, model):
    model.enqueue(Say("Hello there."))
    config = settings(LOCAL, header_timeout_seconds=0.3)
    with serve(config, make_service()) as served, httpx.Client(base_url=served.url, timeout=LIMIT) as http:
        response = http.post("/invocations", json={"prompt": "hi"})
        time.sleep(0.5)  # idle on the same keep-alive connection past the header deadline
        again = http.get("/ping")
    assert response.status_code == 200 and response.json()["answer"] == "Hello there."
    assert again.status_code == 200

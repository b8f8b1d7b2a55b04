"""A recording stand-in for LiteLLM's admin API (LiteLLM's database features cannot run here).

It keeps teams and keys in memory with the status codes LiteLLM answers (`/team/info` 404 for an
unknown team, `/key/info` 404 "Key not found in database", duplicate team ids 400, virtual keys must
start with `sk-`), checks the master key on every request, records every request exactly
(method, path, query, JSON body), and can fail the next call to a route to simulate a partial failure.
It also answers `/health/readiness`. Built on the one loopback stand-in base class (local_stack/loopback.py).
"""

from __future__ import annotations

import threading
from collections import defaultdict
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from local_stack.loopback import LoopbackHandler, LoopbackServer


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    body: Any

    @property
    def route(self) -> str:
        return f"{self.method} {self.path}"


class AdminRecorder(LoopbackServer):
    """Runs on a free loopback port in a background thread (a context manager)."""

    def __init__(self, master_key: str) -> None:
        self.master_key = master_key
        self.teams: dict[str, dict[str, Any]] = {}
        self.keys: dict[str, dict[str, Any]] = {}
        self.requests: list[Recorded] = []
        self._failures: dict[str, list[list[int]]] = defaultdict(list)
        self._lock = threading.Lock()
        super().__init__()

    def fail_next(self, route: str, status: int = 500, after: int = 0) -> None:
        """Answer a request to `route` (e.g. "POST /key/generate") with `status`, after `after` normal ones."""
        with self._lock:
            self._failures[route].append([after, status])

    def routes(self) -> list[str]:
        return [r.route for r in self.requests]

    def clear_requests(self) -> None:
        with self._lock:
            self.requests.clear()

    def _handle(self, method: str, path: str, query: dict[str, str], body: Any, auth: str) -> tuple[int, Any]:
        with self._lock:
            if path != "/health/readiness":
                self.requests.append(Recorded(method, path, query, body))
            route = f"{method} {path}"
            pending = self._failures.get(route)
            if pending:
                if pending[0][0] == 0:
                    return pending.pop(0)[1], {"error": {"message": "injected failure"}}
                pending[0][0] -= 1
            if path == "/health/readiness":
                return 200, {"status": "healthy", "db": "connected"}
            if auth != f"Bearer {self.master_key}":
                return 401, {"error": {"message": "Authentication Error", "code": "401"}}
            return self._route(route, query, body)

    def _route(self, route: str, query: dict[str, str], body: Any) -> tuple[int, Any]:
        if route == "GET /team/info":
            team = self.teams.get(query.get("team_id", ""))
            if team is None:
                return 404, {
                    "detail": {"message": f"Team not found, passed team id: {query.get('team_id')}."}
                }
            return 200, {"team_id": team["team_id"], "team_info": dict(team)}
        if route == "POST /team/new":
            if body["team_id"] in self.teams:
                return 400, {"error": {"message": f"Team id = {body['team_id']} already exists."}}
            self.teams[body["team_id"]] = dict(body)
            return 200, dict(body)
        if route == "POST /team/update":
            if body["team_id"] not in self.teams:
                return 404, {"error": {"message": "team not found"}}
            self.teams[body["team_id"]].update(body)
            return 200, {"team_id": body["team_id"], "data": self.teams[body["team_id"]]}
        if route == "GET /key/info":
            key = self.keys.get(query.get("key", ""))
            if key is None:
                return 404, {"error": {"message": "Key not found in database", "type": "not_found_error"}}
            return 200, {"key": query["key"], "info": {k: v for k, v in key.items() if k != "key"}}
        if route == "POST /key/generate":
            value = body.get("key") or "sk-generated"
            if not value.startswith("sk-"):
                return 400, {"error": {"message": "LiteLLM Virtual Key must start with 'sk-'"}}
            if value in self.keys:
                return 400, {"error": {"message": "Unique constraint failed on the fields: (`token`)"}}
            if body.get("team_id") and body["team_id"] not in self.teams:
                return 400, {"error": {"message": f"Team not found for team_id={body['team_id']}"}}
            self.keys[value] = dict(body)
            return 200, {**body, "key": value}
        if route == "POST /key/update":
            if body["key"] not in self.keys:
                return 404, {"error": {"message": "Key not found"}}
            self.keys[body["key"]].update(body)
            return 200, dict(self.keys[body["key"]])
        return 404, {"detail": "Not Found"}

    def handler_class(self) -> type[LoopbackHandler]:
        recorder = self

        class Handler(LoopbackHandler):
            def _serve(self, method: str) -> None:
                parts = urlsplit(self.path)
                body = self.read_json()
                status, payload = recorder._handle(
                    method,
                    parts.path,
                    dict(parse_qsl(parts.query)),
                    body,
                    self.headers.get("Authorization", ""),
                )
                self.send_json(status, payload)

            def do_GET(self) -> None:
                self._serve("GET")

            def do_POST(self) -> None:
                self._serve("POST")

        return Handler

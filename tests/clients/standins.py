"""Loopback stand-ins for network peers that cannot run here.

- `CognitoStandIn`: Cognito managed login's OAuth endpoints (authorize, token, revoke, logout) with
  real RS256 JWTs, PKCE (S256) verification, refresh and client credentials. It stands in for AWS.
- `ReplayAgent` (local_stack/replay_agent.py, shared with benchmarks/chat_client.py): replays
  recorded, contract-conformant `/invocations` answers; `Recorded.recording(name)` reads one of the
  recordings in tests/clients/recordings/.

Both build on the one loopback stand-in base class, local_stack/loopback.py.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from local_stack import replay_agent
from local_stack.loopback import LoopbackHandler, LoopbackServer
from local_stack.replay_agent import ReplayAgent

__all__ = ["CognitoStandIn", "Recorded", "ReplayAgent"]

RECORDINGS = Path(__file__).parent / "recordings"


# --- Cognito ------------------------------------------------------------------------------------


@dataclass
class _Grant:
    client_id: str
    redirect_uri: str
    challenge: str
    scope: str
    username: str


@dataclass
class CognitoStandIn(LoopbackServer):
    """Issues tokens like Cognito's `/oauth2/token`; `access_ttl` controls expiry."""

    public_client_id: str = "browser-client"
    confidential_clients: dict[str, str] = field(default_factory=lambda: {"m2m-client": "m2m-secret"})
    redirect_uris: tuple[str, ...] = ("http://localhost:8501/",)
    access_ttl: int = 3600
    requests: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._grants: dict[str, _Grant] = {}
        self._refresh: dict[str, tuple[str, str, str]] = {}  # token -> (client, username, scope)
        self.revoked: set[str] = set()
        self._lock = threading.Lock()
        LoopbackServer.__init__(self)

    @property
    def issuer(self) -> str:
        return f"{self.url}/pool"

    def public_key(self) -> Any:
        return self._key.public_key()

    def authorize(self, params: dict[str, str], username: str = "alice") -> str:
        """What the hosted UI does after a successful sign-in: the redirect URL with code and state."""
        if params.get("client_id") != self.public_client_id:
            raise ValueError("unknown client")
        if params.get("redirect_uri") not in self.redirect_uris:
            raise ValueError("redirect_mismatch")
        if params.get("code_challenge_method") != "S256" or not params.get("code_challenge"):
            raise ValueError("PKCE required")
        code = secrets.token_urlsafe(24)
        with self._lock:
            self._grants[code] = _Grant(
                params["client_id"],
                params["redirect_uri"],
                params["code_challenge"],
                params.get("scope", ""),
                username,
            )
        return f"{params['redirect_uri']}?{urlencode({'code': code, 'state': params.get('state', '')})}"

    def expire_refresh_tokens(self) -> None:
        with self._lock:
            self._refresh.clear()

    def _tokens(self, client_id: str, username: str | None, scope: str, refresh: bool) -> dict[str, Any]:
        now = int(time.time())
        subject = username or client_id
        claims = {
            "sub": f"sub-{subject}",
            "iss": self.issuer,
            "client_id": client_id,
            "token_use": "access",
            "scope": scope,
            "iat": now,
            "exp": now + self.access_ttl,
            "jti": str(uuid.uuid4()),
        }
        body: dict[str, Any] = {
            "access_token": jwt.encode(claims, self._key, algorithm="RS256", headers={"kid": "k1"}),
            "expires_in": self.access_ttl,
            "token_type": "Bearer",
        }
        if username:
            body["id_token"] = jwt.encode(
                {**claims, "token_use": "id", "aud": client_id, "email": f"{username}@example.com"},
                self._key,
                algorithm="RS256",
                headers={"kid": "k1"},
            )
        if refresh:
            token = secrets.token_urlsafe(32)
            with self._lock:
                self._refresh[token] = (client_id, username or "", scope)
            body["refresh_token"] = token
        return body

    def handler_class(self) -> type[LoopbackHandler]:
        idp = self

        class Handler(LoopbackHandler):
            protocol_version = "HTTP/1.0"  # the redirects carry no body: the connection closes after each

            def _send(self, status: int, body: dict[str, Any]) -> None:
                self.send_json(status, body)

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                params = {k: v[0] for k, v in parse_qs(parts.query).items()}
                idp.requests.append({"path": parts.path, "params": params})
                if parts.path == "/oauth2/authorize":
                    try:
                        location = idp.authorize(params)
                    except ValueError as exc:
                        self._send(400, {"error": "invalid_request", "error_description": str(exc)})
                        return
                    self.send_response(302)
                    self.send_header("Location", location)
                    self.end_headers()
                elif parts.path == "/logout":
                    self.send_response(302)
                    self.send_header("Location", params.get("logout_uri", "/"))
                    self.end_headers()
                else:
                    self._send(404, {"error": "not_found"})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                client_id, secret = form.get("client_id"), None
                auth = self.headers.get("Authorization", "")
                if auth.startswith("Basic "):
                    client_id, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
                idp.requests.append({"path": self.path, "form": form, "client_id": client_id})
                if self.path == "/oauth2/revoke":
                    idp.revoked.add(form.get("token", ""))
                    with idp._lock:
                        idp._refresh.pop(form.get("token", ""), None)
                    self._send(200, {})
                    return
                if self.path != "/oauth2/token":
                    self._send(404, {"error": "not_found"})
                    return
                grant = form.get("grant_type")
                if grant == "authorization_code":
                    self._code(form, client_id)
                elif grant == "refresh_token":
                    with idp._lock:
                        found = idp._refresh.get(form.get("refresh_token", ""))
                    if found is None or found[0] != client_id:
                        self._send(
                            400, {"error": "invalid_grant", "error_description": "Refresh Token has expired"}
                        )
                        return
                    body = idp._tokens(found[0], found[1] or None, found[2], refresh=False)
                    self._send(200, body)
                elif grant == "client_credentials":
                    if (
                        client_id not in idp.confidential_clients
                        or idp.confidential_clients[client_id] != secret
                    ):
                        self._send(400, {"error": "invalid_client"})
                        return
                    self._send(200, idp._tokens(client_id, None, form.get("scope", ""), refresh=False))
                else:
                    self._send(400, {"error": "unsupported_grant_type"})

            def _code(self, form: dict[str, str], client_id: str | None) -> None:
                with idp._lock:
                    grant = idp._grants.pop(form.get("code", ""), None)
                if grant is None or grant.client_id != client_id:
                    self._send(400, {"error": "invalid_grant"})
                    return
                if form.get("redirect_uri") != grant.redirect_uri:
                    self._send(400, {"error": "invalid_grant", "error_description": "redirect_uri mismatch"})
                    return
                verifier = form.get("code_verifier", "")
                digest = (
                    base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
                )
                if digest != grant.challenge:
                    self._send(
                        400, {"error": "invalid_grant", "error_description": "PKCE verification failed"}
                    )
                    return
                self._send(200, idp._tokens(grant.client_id, grant.username, grant.scope, refresh=True))

        return Handler


# --- agent replay -------------------------------------------------------------------------------


class Recorded(replay_agent.Recorded):
    """local_stack's recorded answer, plus the recordings kept with these tests."""

    @classmethod
    def recording(cls, name: str, **kwargs: Any) -> Self:
        return cls.from_file(RECORDINGS / name, **kwargs)

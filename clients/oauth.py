"""OAuth 2.0 against Cognito managed login: authorization code + PKCE, refresh, revoke, client credentials.

The browser chat uses `OAuthClient.authorization_request` / `exchange_code` / `refresh` / `revoke`;
headless callers (evaluation, CLIs) use `ClientCredentialsTokenSource`, which caches a machine token
until shortly before it expires. Everything speaks the standard endpoints of a Cognito domain:
`/oauth2/authorize`, `/oauth2/token`, `/oauth2/revoke` and `/logout`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import re
import secrets
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote_plus, urlencode, urlsplit

import httpx

logger = logging.getLogger(__name__)

# RFC 7636 section 4.1: 43-128 characters from the unreserved set.
_VERIFIER = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")
DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=5.0)
# Refresh this long before the access token expires, so a request never leaves with a dying token.
REFRESH_SKEW_SECONDS = 60.0


class OAuthError(Exception):
    """The authorization server refused a request; `error` is the OAuth error code."""

    def __init__(self, error: str, description: str = "", status: int | None = None) -> None:
        self.error = error
        self.description = description
        self.status = status
        super().__init__(f"{error}: {description}" if description else error)


class LoginExpired(OAuthError):
    """The user must sign in again: the refresh token or the code is expired, used or revoked."""


class StateMismatch(OAuthError):
    """The `state` returned to the callback is not the one this client sent (forged or stale)."""


class OAuthUnavailable(OAuthError):
    """The authorization server could not be reached or answered something that is not OAuth."""


# --- PKCE (RFC 7636) and state ----------------------------------------------------------------


def generate_code_verifier(length: int = 64) -> str:
    """A random PKCE code verifier of `length` characters (43-128, RFC 7636 section 4.1)."""
    if not 43 <= length <= 128:
        raise ValueError(f"code verifier length must be between 43 and 128 (got {length})")
    verifier = secrets.token_urlsafe(length)[:length]
    return verifier


def code_challenge(verifier: str) -> str:
    """The S256 code challenge: base64url(SHA-256(verifier)) without padding.

    Raises:
        ValueError: when the verifier breaks RFC 7636 (length or characters).
    """
    if not _VERIFIER.match(verifier):
        raise ValueError("code verifier must be 43-128 characters of [A-Za-z0-9-._~]")
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def new_state() -> str:
    """An unguessable `state` value binding the callback to the request that started the login."""
    return secrets.token_urlsafe(32)


def verify_state(expected: str | None, received: str | None) -> None:
    """Compare the returned `state` with the one sent, in constant time.

    Raises:
        StateMismatch: when either is missing or they differ.
    """
    if not expected or not received or not hmac.compare_digest(expected.encode(), received.encode()):
        raise StateMismatch("state_mismatch", "the sign-in response does not belong to this sign-in attempt")


# --- tokens -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tokens:
    """Tokens from the token endpoint; `expires_at` is epoch seconds of the access token's expiry."""

    access_token: str
    expires_at: float
    token_type: str = "Bearer"  # noqa: S105 - the OAuth token type, not a secret
    id_token: str | None = None
    refresh_token: str | None = field(default=None, repr=False)
    scope: str | None = None

    def __repr__(self) -> str:  # never print token material
        return f"Tokens(expires_at={self.expires_at:.0f}, scope={self.scope!r}, refresh={self.refresh_token is not None})"

    def expires_within(self, seconds: float, now: float | None = None) -> bool:
        """True when the access token expires in less than `seconds` (or already has)."""
        return self.expires_at - (time.time() if now is None else now) < seconds

    def claims(self) -> dict[str, Any]:
        """The ID token's claims (or the access token's), for display only.

        The token came straight from the token endpoint over TLS; the agent runtime validates the
        access token's signature itself, so nothing here is used for an authorization decision.
        """
        return decode_claims(self.id_token or self.access_token)

    @classmethod
    def from_response(
        cls, body: Mapping[str, Any], now: float, previous_refresh_token: str | None = None
    ) -> Tokens:
        """Build from a token-endpoint JSON answer; a refresh answer keeps the previous refresh token."""
        access = body.get("access_token")
        if not isinstance(access, str) or not access:
            raise OAuthUnavailable("invalid_response", "the token endpoint answered without an access_token")
        try:
            expires_in = float(body.get("expires_in", 3600))
        except (TypeError, ValueError):
            raise OAuthUnavailable("invalid_response", "expires_in is not a number") from None
        return cls(
            access_token=access,
            expires_at=now + expires_in,
            token_type=str(body.get("token_type", "Bearer")),
            id_token=body.get("id_token") if isinstance(body.get("id_token"), str) else None,
            refresh_token=body.get("refresh_token") or previous_refresh_token,
            scope=body.get("scope") if isinstance(body.get("scope"), str) else None,
        )


def decode_claims(jwt_token: str) -> dict[str, Any]:
    """The payload of a JWT without verifying it (display only); `{}` when it is not a JWT."""
    parts = jwt_token.split(".")
    if len(parts) != 3:
        return {}
    try:
        padded = parts[1] + "=" * (-len(parts[1]) % 4)
        payload = json.loads(base64.urlsafe_b64decode(padded))
    except (ValueError, json.JSONDecodeError):
        return {}
    return payload if isinstance(payload, dict) else {}


# --- the client ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class OAuthClientConfig:
    """One Cognito app client: the managed-login domain URL (https://<prefix>.auth.<region>.amazoncognito.com)."""

    domain_url: str
    client_id: str
    redirect_uri: str | None = None
    scopes: tuple[str, ...] = ("openid", "email", "profile")
    client_secret: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        url = urlsplit(self.domain_url)
        local = url.hostname in ("127.0.0.1", "localhost")
        if url.scheme != "https" and not (url.scheme == "http" and local):
            raise ValueError(f"domain_url must be an https:// URL (got {self.domain_url!r})")
        if not self.client_id:
            raise ValueError("client_id is required")
        object.__setattr__(self, "domain_url", self.domain_url.rstrip("/"))

    @classmethod
    def from_token_url(
        cls, token_url: str, client_id: str, client_secret: str | None = None, scopes: Sequence[str] = ()
    ) -> OAuthClientConfig:
        """Config from a token endpoint URL such as `https://<domain>/oauth2/token`."""
        if not token_url.rstrip("/").endswith("/oauth2/token"):
            raise ValueError(f"token_url must end with /oauth2/token (got {token_url!r})")
        return cls(
            domain_url=token_url.rstrip("/").removesuffix("/oauth2/token"),
            client_id=client_id,
            client_secret=client_secret,
            scopes=tuple(scopes),
        )

    @property
    def authorize_url(self) -> str:
        return f"{self.domain_url}/oauth2/authorize"

    @property
    def token_url(self) -> str:
        return f"{self.domain_url}/oauth2/token"

    @property
    def revoke_url(self) -> str:
        return f"{self.domain_url}/oauth2/revoke"


@dataclass(frozen=True)
class AuthorizationRequest:
    """Where to send the browser, and what to keep (server-side) until the callback arrives."""

    url: str
    state: str
    code_verifier: str = field(repr=False)


class OAuthClient:
    """Talks to one app client's endpoints. Thread-safe; reuse one instance."""

    def __init__(
        self,
        config: OAuthClientConfig,
        *,
        http: httpx.Client | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self._http = http or httpx.Client(timeout=DEFAULT_TIMEOUT)
        self._clock = clock

    # browser flow

    def authorization_request(self, *, extra: Mapping[str, str] | None = None) -> AuthorizationRequest:
        """Start a code + PKCE sign-in: the authorize URL with a fresh state and S256 challenge."""
        if not self.config.redirect_uri:
            raise ValueError("redirect_uri is required for the authorization code flow")
        verifier = generate_code_verifier()
        state = new_state()
        params = {
            "response_type": "code",
            "client_id": self.config.client_id,
            "redirect_uri": self.config.redirect_uri,
            "scope": " ".join(self.config.scopes),
            "state": state,
            "code_challenge": code_challenge(verifier),
            "code_challenge_method": "S256",
            **(extra or {}),
        }
        return AuthorizationRequest(f"{self.config.authorize_url}?{urlencode(params)}", state, verifier)

    def exchange_code(self, code: str, code_verifier: str) -> Tokens:
        """Trade the callback's code (with the verifier kept since the request) for tokens."""
        if not code:
            raise OAuthError("invalid_request", "the sign-in callback carried no code")
        if not self.config.redirect_uri:
            raise ValueError("redirect_uri is required for the authorization code flow")
        return self._token_request(
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": self.config.redirect_uri,
                "code_verifier": code_verifier,
            }
        )

    def refresh(self, tokens: Tokens) -> Tokens:
        """New access/ID tokens from the refresh token; the refresh token is kept unless rotated.

        Raises:
            LoginExpired: no refresh token, or it is expired or revoked.
        """
        if not tokens.refresh_token:
            raise LoginExpired("invalid_grant", "there is no refresh token: sign in again")
        return self._token_request(
            {"grant_type": "refresh_token", "refresh_token": tokens.refresh_token},
            previous_refresh_token=tokens.refresh_token,
        )

    def ensure_fresh(self, tokens: Tokens, skew: float = REFRESH_SKEW_SECONDS) -> Tokens:
        """`tokens` if the access token lives longer than `skew` seconds, else refreshed tokens."""
        if tokens.expires_within(skew, self._clock()):
            logger.info("access token expires within %.0f s; refreshing", skew)
            return self.refresh(tokens)
        return tokens

    def revoke(self, tokens: Tokens) -> None:
        """Revoke the refresh token (and the access tokens issued from it). Best effort on sign-out."""
        if not tokens.refresh_token:
            return
        data = {"token": tokens.refresh_token, "client_id": self.config.client_id}
        response = self._post(self.config.revoke_url, data)
        if response.status_code != 200:
            raise _error_from(response)

    def logout_url(self, logout_uri: str) -> str:
        """Cognito's managed-login sign-out URL, which ends the hosted session and returns to `logout_uri`."""
        query = urlencode({"client_id": self.config.client_id, "logout_uri": logout_uri})
        return f"{self.config.domain_url}/logout?{query}"

    # machine flow

    def client_credentials(self, scopes: Sequence[str] | None = None) -> Tokens:
        """A machine token (client credentials grant); needs a confidential client."""
        if not self.config.client_secret:
            raise ValueError("client_secret is required for the client credentials grant")
        data = {"grant_type": "client_credentials"}
        wanted = list(scopes if scopes is not None else self.config.scopes)
        if wanted:
            data["scope"] = " ".join(wanted)
        return self._token_request(data)

    # plumbing

    def _token_request(self, data: dict[str, str], previous_refresh_token: str | None = None) -> Tokens:
        now = self._clock()
        response = self._post(self.config.token_url, data)
        if response.status_code != 200:
            raise _error_from(response)
        try:
            body = response.json()
        except json.JSONDecodeError:
            raise OAuthUnavailable("invalid_response", "the token endpoint did not answer JSON") from None
        if not isinstance(body, dict):
            raise OAuthUnavailable("invalid_response", "the token endpoint did not answer a JSON object")
        return Tokens.from_response(body, now, previous_refresh_token)

    def _post(self, url: str, data: dict[str, str]) -> httpx.Response:
        headers = {"Accept": "application/json"}
        if self.config.client_secret:  # confidential client: HTTP Basic (client_secret_basic)
            headers["Authorization"] = _basic(self.config.client_id, self.config.client_secret)
        else:  # public client (the browser app): the client id travels in the form
            data = {**data, "client_id": self.config.client_id}
        try:
            return self._http.post(url, data=data, headers=headers)
        except httpx.HTTPError as exc:
            raise OAuthUnavailable("unreachable", f"cannot reach {urlsplit(url).netloc}: {exc}") from None


def _basic(client_id: str, client_secret: str) -> str:
    # RFC 6749 section 2.3.1: form-encode both parts before joining them.
    pair = f"{quote_plus(client_id)}:{quote_plus(client_secret)}".encode()
    return "Basic " + base64.b64encode(pair).decode("ascii")


def _error_from(response: httpx.Response) -> OAuthError:
    try:
        body = response.json()
    except json.JSONDecodeError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    error = str(body.get("error") or f"http_{response.status_code}")
    description = str(body.get("error_description") or "")
    if error == "invalid_grant":
        return LoginExpired(error, description or "the sign-in expired or was revoked", response.status_code)
    if response.status_code >= 500 or "error" not in body:
        return OAuthUnavailable(error, description or response.reason_phrase, response.status_code)
    return OAuthError(error, description, response.status_code)


# --- machine tokens, cached ---------------------------------------------------------------------


class ClientCredentialsTokenSource:
    """A cached machine token: `token()` returns a bearer token valid for at least `min_ttl` seconds."""

    def __init__(
        self, client: OAuthClient, scopes: Sequence[str] | None = None, min_ttl: float = 60.0
    ) -> None:
        self._client = client
        self._scopes = list(scopes) if scopes is not None else None
        self._min_ttl = min_ttl
        self._tokens: Tokens | None = None
        self._lock = threading.Lock()

    def token(self) -> str:
        with self._lock:
            if self._tokens is None or self._tokens.expires_within(self._min_ttl):
                self._tokens = self._client.client_credentials(self._scopes)
            return self._tokens.access_token

    @classmethod
    def from_secret(
        cls,
        secret_arn: str,
        token_url: str,
        scopes: Sequence[str],
        *,
        region: str | None = None,
        http: httpx.Client | None = None,
    ) -> ClientCredentialsTokenSource:
        """Read `{"client_id", "client_secret"}` from Secrets Manager (the identity stack's M2M secrets)."""
        import boto3  # only headless callers need AWS

        raw = boto3.client("secretsmanager", region_name=region).get_secret_value(SecretId=secret_arn)
        try:
            values = json.loads(raw["SecretString"])
            client_id, client_secret = values["client_id"], values["client_secret"]
        except (KeyError, TypeError, json.JSONDecodeError):
            raise ValueError(f"secret {secret_arn} must hold JSON {{'client_id', 'client_secret'}}") from None
        config = OAuthClientConfig.from_token_url(token_url, client_id, client_secret, scopes)
        return cls(OAuthClient(config, http=http), scopes)

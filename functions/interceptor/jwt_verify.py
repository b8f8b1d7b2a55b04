"""Verification of Cognito access tokens (RS256 JWTs) against the user pool's JWKS, with PyJWT.

The checks are the ones Cognito documents for an access token ("Verifying a JSON Web Token",
https://docs.aws.amazon.com/cognito/latest/developerguide/amazon-cognito-user-pools-using-tokens-verifying-a-jwt.html):

1. the signature, by the JWKS key whose `kid` the header names, with RS256 only (the algorithm is
   fixed here, never taken from the token: no `none`, no HMAC-with-the-public-key confusion);
2. `exp` (and `nbf`/`iat` when present) against the clock, with a small leeway;
3. `iss` is the user pool (`https://cognito-idp.<region>.amazonaws.com/<pool id>`);
4. `token_use` is `access` (an ID token is refused);
5. `client_id` is one of the app clients allowed to act for users (access tokens carry no `aud`);
6. `scope` holds the required scopes, when any are configured.

PyJWT (`pyjwt[crypto]`, pinned in functions/interceptor/requirements.txt and bundled into the Lambda
asset for arm64 by stacks/constructs/packaging.py) does 1-3; 4-6 and `sub` are checked here. The JWKS is
downloaded with a timeout and cached; an unknown `kid` refetches it at most once a minute (key
rotation). Failures are classified by PyJWT's exception types into `TokenError` messages that never
echo the token.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

import jwt
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

logger = logging.getLogger(__name__)

ALGORITHM = "RS256"
MAX_TOKEN_CHARS = 8192
MIN_RSA_BITS = 2048
JWKS_REFRESH_SECONDS = 60.0
JWKS_TIMEOUT_SECONDS = 3.0
MAX_JWKS_BYTES = 1_000_000
# Claims PyJWT must find (it reports a missing one as MissingRequiredClaimError with `.claim`);
# `token_use` and `client_id` are checked below, so an ID token (no client_id) is named as such.
REQUIRED_CLAIMS = ("exp", "iss", "sub")
_MISSING_CLAIM_MESSAGES = {
    "exp": "token has no expiry",
    "iss": "token issuer is not the user pool",
    "sub": "token has no subject",
}
# PyJWT failure -> reason, most specific first (InvalidSignatureError is a DecodeError, and every one of
# them an InvalidTokenError).
_FAILURES: tuple[tuple[type[jwt.PyJWTError], str], ...] = (
    (jwt.ExpiredSignatureError, "token has expired"),
    (jwt.ImmatureSignatureError, "token is not valid yet: its iat or nbf is in the future"),
    (jwt.InvalidIssuerError, "token issuer is not the user pool"),
    (jwt.InvalidAlgorithmError, "unsupported token algorithm"),
    (jwt.InvalidSignatureError, "invalid token signature"),
    (jwt.DecodeError, "malformed token"),
    (jwt.InvalidTokenError, "invalid token"),
)


class TokenError(Exception):
    """The token is not acceptable; the message says why without echoing the token."""


def _reason(error: jwt.PyJWTError) -> str:
    if isinstance(error, jwt.MissingRequiredClaimError):
        return _MISSING_CLAIM_MESSAGES.get(error.claim, f"token has no {error.claim}")
    return next((reason for kind, reason in _FAILURES if isinstance(error, kind)), "invalid token")


def fetch_jwks(url: str) -> dict[str, Any]:
    """Download a JWKS document (https, or http on loopback for tests), bounded by a timeout and size."""
    parsed = urlparse(url)
    loopback = parsed.hostname in {"127.0.0.1", "localhost", "::1"}
    if parsed.scheme != "https" and not (parsed.scheme == "http" and loopback):
        raise TokenError(f"JWKS URL must use https: {url}")
    with urllib.request.urlopen(url, timeout=JWKS_TIMEOUT_SECONDS) as response:  # noqa: S310 (scheme checked)
        document = json.loads(response.read(MAX_JWKS_BYTES))
    if not isinstance(document, dict):
        raise TokenError("the JWKS document is not a JSON object")
    return document


def _signing_key(jwk: dict[str, Any]) -> RSAPublicKey | None:
    """The RSA public key of a JWK usable for RS256 signatures, or None (other type, weak, malformed)."""
    if jwk.get("kty") != "RSA" or jwk.get("use", "sig") != "sig" or jwk.get("alg", ALGORITHM) != ALGORITHM:
        return None
    try:
        key = jwt.PyJWK(jwk, algorithm=ALGORITHM).key
    except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, TypeError):
        return None
    if not isinstance(key, RSAPublicKey) or key.key_size < MIN_RSA_BITS:
        return None
    return key


@dataclass
class ActorTokenVerifier:
    """Checks a Cognito access token (see the module docstring) and returns its verified claims.

    Args:
        issuer: `https://cognito-idp.<region>.amazonaws.com/<pool id>`.
        allowed_clients: app client ids whose tokens may identify an actor.
        leeway_seconds: clock skew tolerated on `exp`, `nbf` and `iat`.
        required_scopes: scopes the token's `scope` claim must all contain (none by default).
        fetch: JWKS loader (default: HTTPS download of `<issuer>/.well-known/jwks.json`).
        clock: seconds since the epoch, for the JWKS refresh interval (PyJWT reads the system clock for
            `exp`/`nbf`/`iat`).
    """

    issuer: str
    allowed_clients: frozenset[str]
    leeway_seconds: float = 30.0
    required_scopes: frozenset[str] = frozenset()
    fetch: Callable[[str], dict[str, Any]] = fetch_jwks
    clock: Callable[[], float] = time.time
    _keys: dict[str, RSAPublicKey] = field(default_factory=dict, init=False, repr=False)
    _fetched_at: float = field(default=float("-inf"), init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    @classmethod
    def create(cls, issuer: str, allowed_clients: Iterable[str], **kwargs: Any) -> ActorTokenVerifier:
        clients = frozenset(c.strip() for c in allowed_clients if c.strip())
        if not issuer.strip():
            raise ValueError("issuer is required")
        if not clients:
            raise ValueError("at least one allowed client id is required")
        return cls(issuer=issuer.rstrip("/"), allowed_clients=clients, **kwargs)

    @property
    def jwks_url(self) -> str:
        return f"{self.issuer}/.well-known/jwks.json"

    def verify(self, token: str) -> dict[str, Any]:
        """The claims of a valid token; TokenError says what is wrong otherwise."""
        if not token or len(token) > MAX_TOKEN_CHARS:
            raise TokenError("missing or oversized token")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as error:
            raise TokenError(_reason(error)) from None
        if header.get("alg") != ALGORITHM:
            raise TokenError(f"unsupported token algorithm {str(header.get('alg'))[:20]!r}")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise TokenError("token has no key id")
        key = self._key(kid)
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                issuer=self.issuer,
                leeway=self.leeway_seconds,
                options={"require": list(REQUIRED_CLAIMS), "verify_aud": False},
            )
        except jwt.PyJWTError as error:
            raise TokenError(_reason(error)) from None
        self._check_cognito_claims(claims)
        return claims

    def _check_cognito_claims(self, claims: dict[str, Any]) -> None:
        if claims.get("token_use") != "access":
            raise TokenError("token is not an access token")
        if claims.get("client_id") not in self.allowed_clients:
            raise TokenError("token was issued to a client that may not act for users")
        sub = claims.get("sub")
        if not isinstance(sub, str) or not sub:
            raise TokenError("token has no subject")
        if self.required_scopes:
            scope = claims.get("scope")
            granted = set(scope.split()) if isinstance(scope, str) else set()
            if not self.required_scopes <= granted:
                raise TokenError("token lacks a required scope")

    def _key(self, kid: str) -> RSAPublicKey:
        with self._lock:
            if kid not in self._keys and self.clock() - self._fetched_at >= JWKS_REFRESH_SECONDS:
                self._refresh()
            key = self._keys.get(kid)
        if key is None:
            raise TokenError("token was signed by an unknown key")
        return key

    def _refresh(self) -> None:
        self._fetched_at = self.clock()
        try:
            document = self.fetch(self.jwks_url)
        except TokenError:
            raise
        except (OSError, ValueError) as exc:  # network (URLError, timeout) or JSON failure: fail closed
            logger.warning("could not load the JWKS", extra={"error": type(exc).__name__})
            raise TokenError("could not load the user pool signing keys") from exc
        keys: dict[str, RSAPublicKey] = {}
        entries = document.get("keys") if isinstance(document, dict) else None
        for jwk in entries if isinstance(entries, list) else []:
            if isinstance(jwk, dict) and isinstance(jwk.get("kid"), str):
                key = _signing_key(jwk)
                if key is not None:
                    keys[jwk["kid"]] = key
        self._keys = keys

"""Verification of Cognito access tokens (RS256 JWTs) against the user pool's JWKS, standard library only.

The Lambda runtime ships no JWT or crypto library, so the RSA PKCS#1 v1.5 check is done here: the
signature is raised to the public exponent and the result is compared byte for byte with the full
expected encoding (0x00 0x01 FF..FF 0x00 DigestInfo(SHA-256) hash). Nothing is parsed out of the
decrypted block, which rules out the classic lenient-parser forgeries. Verification uses only public
data, so timing is not a secret channel.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import threading
import time
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

logger = logging.getLogger(__name__)

_SHA256_DIGEST_INFO = bytes.fromhex("3031300d060960864801650304020105000420")
MAX_TOKEN_CHARS = 8192
JWKS_REFRESH_SECONDS = 60.0
JWKS_TIMEOUT_SECONDS = 3.0


class TokenError(Exception):
    """The token is not acceptable; the message says why without echoing the token."""


def _b64url_decode(segment: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError) as exc:
        raise TokenError("malformed token encoding") from exc


def _json_segment(segment: str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(_b64url_decode(segment))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise TokenError(f"malformed token {what}") from exc
    if not isinstance(value, dict):
        raise TokenError(f"malformed token {what}")
    return value


@dataclass(frozen=True)
class RsaPublicKey:
    """An RSA public key from a JWK (`n`, `e` base64url)."""

    modulus: int
    exponent: int

    @classmethod
    def from_jwk(cls, jwk: dict[str, Any]) -> RsaPublicKey:
        if jwk.get("kty") != "RSA":
            raise TokenError("signing key is not an RSA key")
        modulus = int.from_bytes(_b64url_decode(str(jwk.get("n", ""))), "big")
        exponent = int.from_bytes(_b64url_decode(str(jwk.get("e", ""))), "big")
        if modulus.bit_length() < 2048 or exponent < 3:
            raise TokenError("signing key is too weak")
        return cls(modulus, exponent)

    def verify_pkcs1_sha256(self, message: bytes, signature: bytes) -> bool:
        size = (self.modulus.bit_length() + 7) // 8
        if len(signature) != size:
            return False
        value = int.from_bytes(signature, "big")
        if value >= self.modulus:
            return False
        encoded = pow(value, self.exponent, self.modulus).to_bytes(size, "big")
        suffix = _SHA256_DIGEST_INFO + hashlib.sha256(message).digest()
        expected = b"\x00\x01" + b"\xff" * (size - len(suffix) - 3) + b"\x00" + suffix
        return encoded == expected


def fetch_jwks(url: str) -> dict[str, Any]:
    """Download a JWKS document (https, or http on loopback for tests)."""
    parsed = urlparse(url)
    loopback = parsed.hostname in {"127.0.0.1", "localhost", "::1"}
    if parsed.scheme != "https" and not (parsed.scheme == "http" and loopback):
        raise TokenError(f"JWKS URL must use https: {url}")
    with urllib.request.urlopen(url, timeout=JWKS_TIMEOUT_SECONDS) as response:  # noqa: S310 (scheme checked)
        document: dict[str, Any] = json.loads(response.read(1_000_000))
    return document


@dataclass
class ActorTokenVerifier:
    """Checks a Cognito access token: RS256 signature by a key of the pool's JWKS, issuer, expiry,
    not-before, `token_use == "access"` and an allowed `client_id`. Returns the verified claims.

    Args:
        issuer: `https://cognito-idp.<region>.amazonaws.com/<pool id>`.
        allowed_clients: app client ids whose tokens may identify an actor.
        leeway_seconds: clock skew tolerated on `exp`, `nbf` and `iat`.
        fetch: JWKS loader (default: HTTPS download of `<issuer>/.well-known/jwks.json`).
        clock: seconds since the epoch.
    """

    issuer: str
    allowed_clients: frozenset[str]
    leeway_seconds: float = 30.0
    fetch: Callable[[str], dict[str, Any]] = fetch_jwks
    clock: Callable[[], float] = time.time
    _keys: dict[str, RsaPublicKey] = field(default_factory=dict, init=False, repr=False)
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
        parts = token.split(".")
        if len(parts) != 3:
            raise TokenError("token is not a signed JWT")
        header = _json_segment(parts[0], "header")
        if header.get("alg") != "RS256":
            raise TokenError(f"unsupported token algorithm {str(header.get('alg'))[:20]!r}")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise TokenError("token has no key id")
        key = self._key(kid)
        signature = _b64url_decode(parts[2])
        if not key.verify_pkcs1_sha256(f"{parts[0]}.{parts[1]}".encode("ascii"), signature):
            raise TokenError("invalid token signature")
        claims = _json_segment(parts[1], "claims")
        self._check_claims(claims)
        return claims

    def _check_claims(self, claims: dict[str, Any]) -> None:
        now = self.clock()
        if claims.get("iss") != self.issuer:
            raise TokenError("token issuer is not the user pool")
        if claims.get("token_use") != "access":
            raise TokenError("token is not an access token")
        if claims.get("client_id") not in self.allowed_clients:
            raise TokenError("token was issued to a client that may not act for users")
        exp = claims.get("exp")
        if not isinstance(exp, int | float) or isinstance(exp, bool):
            raise TokenError("token has no expiry")
        if now > exp + self.leeway_seconds:
            raise TokenError("token has expired")
        for claim in ("nbf", "iat"):
            moment = claims.get(claim)
            if (
                isinstance(moment, int | float)
                and not isinstance(moment, bool)
                and moment > now + self.leeway_seconds
            ):
                raise TokenError(f"token {claim} is in the future")
        sub = claims.get("sub")
        if not isinstance(sub, str) or not sub:
            raise TokenError("token has no subject")

    def _key(self, kid: str) -> RsaPublicKey:
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
        except Exception as exc:  # network or JSON failure: fail closed, say so
            logger.warning("could not load the JWKS", extra={"error": type(exc).__name__})
            raise TokenError("could not load the user pool signing keys") from exc
        keys: dict[str, RsaPublicKey] = {}
        for jwk in document.get("keys", []):
            if isinstance(jwk, dict) and isinstance(jwk.get("kid"), str) and jwk.get("use", "sig") == "sig":
                try:
                    keys[jwk["kid"]] = RsaPublicKey.from_jwk(jwk)
                except TokenError:
                    continue
        self._keys = keys

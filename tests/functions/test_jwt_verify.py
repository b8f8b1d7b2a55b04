"""The interceptor's Cognito access-token verifier (PyJWT) on its own: the documented checks and failures.

Contract: https://docs.aws.amazon.com/cognito/latest/developerguide/amazon-cognito-user-pools-using-tokens-verifying-a-jwt.html
(signature by the JWKS key named by `kid`, RS256; `exp`; `iss` = the pool; `token_use` = access;
`client_id`; `scope`). The handler-level tests (tests/functions/test_interceptor_handler.py) cover the
same checks through the Lambda's event contract.
"""

from __future__ import annotations

import contextlib
import json
import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from functions.interceptor import jwt_verify
from functions.interceptor.jwt_verify import ActorTokenVerifier, TokenError
from local_stack.loopback import LoopbackHandler, LoopbackServer

ISSUER = "https://cognito-idp.eu-central-1.amazonaws.com/eu-central-1_pool"
CLIENT = "browserclient123"
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
WEAK_KEY = rsa.generate_private_key(public_exponent=65537, key_size=1024)


def jwk(private_key: rsa.RSAPrivateKey, kid: str, **extra: str) -> dict[str, Any]:
    public = json.loads(RSAAlgorithm.to_jwk(private_key.public_key()))
    return {**public, "kid": kid, "alg": "RS256", "use": "sig", **extra}


def token(*, key: rsa.RSAPrivateKey = KEY, kid: str = "k1", **overrides: Any) -> str:
    now = int(time.time())
    claims = {
        "sub": "user-1",
        "iss": ISSUER,
        "client_id": CLIENT,
        "token_use": "access",
        "scope": "openid agentic-foundation/agent.invoke",
        "iat": now,
        "exp": now + 3600,
    }
    claims.update(overrides)
    return jwt.encode(
        {k: v for k, v in claims.items() if v is not None}, key, algorithm="RS256", headers={"kid": kid}
    )


def verifier(keys: list[dict[str, Any]] | None = None, **kwargs: Any) -> ActorTokenVerifier:
    document = {"keys": keys if keys is not None else [jwk(KEY, "k1")]}
    return ActorTokenVerifier.create(ISSUER, [CLIENT], fetch=lambda _url: document, **kwargs)


def test_a_valid_access_token_returns_its_claims() -> None:
    assert verifier().verify(token())["sub"] == "user-1"


def test_required_scopes_must_all_be_granted() -> None:
    strict = verifier(required_scopes=frozenset({"agentic-foundation/agent.invoke"}))
    assert strict.verify(token())["client_id"] == CLIENT
    with pytest.raises(TokenError, match="lacks a required scope"):
        strict.verify(token(scope="openid"))
    with pytest.raises(TokenError, match="lacks a required scope"):
        strict.verify(token(scope=None))


def test_a_future_iat_is_refused_beyond_the_leeway() -> None:
    with pytest.raises(TokenError, match="iat or nbf is in the future"):
        verifier().verify(token(iat=int(time.time()) + 600))
    assert verifier().verify(token(iat=int(time.time()) + 5))["sub"] == "user-1"


def test_a_non_numeric_expiry_is_malformed() -> None:
    with pytest.raises(TokenError, match="malformed token"):
        verifier().verify(token(exp="tomorrow"))


def test_an_id_token_is_not_an_access_token() -> None:
    with pytest.raises(TokenError, match="not an access token"):
        verifier().verify(token(token_use="id", client_id=None, aud=CLIENT))


@pytest.mark.parametrize(
    ("keys", "why"),
    [
        ([jwk(WEAK_KEY, "k1")], "a 1024-bit key is too weak"),
        ([jwk(KEY, "k1", use="enc")], "an encryption key is not a signing key"),
        ([jwk(KEY, "k1", alg="RS512")], "a key for another algorithm"),
        ([{"kty": "oct", "kid": "k1", "k": "c2VjcmV0"}], "a symmetric key"),
        ([{"kty": "RSA", "kid": "k1", "n": "!!", "e": "AQAB"}], "a malformed key"),
    ],
)
def test_unusable_jwks_keys_are_ignored(keys: list[dict[str, Any]], why: str) -> None:
    signing = WEAK_KEY if "1024" in why else KEY
    with pytest.raises(TokenError, match="unknown key"):
        verifier(keys).verify(token(key=signing))


@pytest.mark.parametrize("document", [[], {"keys": "none"}, {"keys": [1, "x"]}])
def test_a_malformed_jwks_document_yields_no_keys(document: Any) -> None:
    bad = ActorTokenVerifier.create(ISSUER, [CLIENT], fetch=lambda _url: document)
    with pytest.raises(TokenError, match="unknown key"):
        bad.verify(token())


def test_the_none_algorithm_is_refused_before_any_key_lookup() -> None:
    calls: list[str] = []
    unsigned = jwt.encode(
        {"sub": "x", "iss": ISSUER},
        None,  # type: ignore[arg-type]  # the "none" algorithm takes no key (PyJWT NoneAlgorithm)
        algorithm="none",
        headers={"kid": "k1"},
    )

    def fetch(url: str) -> dict[str, Any]:
        calls.append(url)
        return {"keys": []}

    counting = ActorTokenVerifier.create(ISSUER, [CLIENT], fetch=fetch)
    with pytest.raises(TokenError, match="unsupported token algorithm 'none'"):
        counting.verify(unsigned)
    assert calls == []


def test_failures_are_classified_by_pyjwt_exception_type() -> None:
    # Every documented PyJWT failure has its own reason; the base class only catches the rest.
    reasons = {kind: jwt_verify._reason(kind("x")) for kind, _ in jwt_verify._FAILURES}
    assert len(set(reasons.values())) == len(reasons)
    assert jwt_verify._reason(jwt.MissingRequiredClaimError("sub")) == "token has no subject"
    assert jwt_verify._reason(jwt.InvalidSignatureError("x")) == "invalid token signature"


class SlowJwks(LoopbackServer):
    """A loopback JWKS endpoint that answers only after `delay` seconds."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        super().__init__()
        self.issuer = f"{self.url}/pool"

    def handler_class(self) -> type[LoopbackHandler]:
        slow = self

        class Handler(LoopbackHandler):
            def do_GET(self) -> None:
                time.sleep(slow.delay)
                body = json.dumps({"keys": [jwk(KEY, "k1")]}).encode()
                # the client gave up: that is the point of the test
                with contextlib.suppress(BrokenPipeError):
                    self.send_bytes(200, body)

        return Handler


def test_the_jwks_download_is_bounded_by_its_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jwt_verify, "JWKS_TIMEOUT_SECONDS", 0.3)
    with SlowJwks(delay=1.0) as server:
        slow = ActorTokenVerifier.create(server.issuer, [CLIENT])
        started = time.monotonic()
        with pytest.raises(TokenError, match="could not load the user pool signing keys"):
            slow.verify(token(iss=server.issuer))
        assert time.monotonic() - started < 1.5

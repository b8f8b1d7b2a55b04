"""The interceptor's Cognito access-token verifier (PyJWT) on its own: the documented checks and failures.

Contract: https://docs.aws.amazon.com/cognito/latest/developerguide/amazon-cognito-user-pools-using-tokens-verifying-a-jwt.html
(signature by the JWKS key named by `kid`, RS256; `exp`; `iss` = the pool; `token_use` = access;
`client_id`; `scope`). The handler-level tests (tests/functions/test_interceptor_handler.py) cover the
same checks through the Lambda's event contract.
"""

from __future__ import annotations

import contextlib
import json
import logging
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


# --- every refusal names its cause exactly (the text reaches the caller as `actor token rejected (...)`) --


def refused(check: ActorTokenVerifier, raw: str) -> str:
    with pytest.raises(TokenError) as error:
        check.verify(raw)
    return str(error.value)


def unsigned(header: dict[str, Any], claims: dict[str, Any] | None = None) -> str:
    """A compact JWT with any header (PyJWT refuses to encode some of these), signature bytes arbitrary."""
    part = lambda d: jwt.utils.base64url_encode(json.dumps(d).encode()).decode()  # noqa: E731
    return f"{part(header)}.{part(claims or {'sub': 'user-1'})}.c2lnbmF0dXJl"


def sized_token(length: int) -> tuple[str, str]:
    """A valid token of exactly `length` characters and its kid: a padding claim sets the payload's size,
    and the kid's length the header's (a base64url segment is never 4n+1 characters long)."""
    for kid in ("k1", "k12", "k123"):
        estimate = (length - len(token(kid=kid, pad=""))) * 3 // 4
        for pad in range(max(estimate - 3, 0), estimate + 4):
            candidate = token(kid=kid, pad="p" * pad)
            if len(candidate) == length:
                return candidate, kid
    raise AssertionError(f"no token of {length} characters")


def test_the_token_size_bound_is_inclusive() -> None:
    limit = jwt_verify.MAX_TOKEN_CHARS
    at_limit, kid = sized_token(limit)
    assert len(at_limit) == limit and verifier([jwk(KEY, kid)]).verify(at_limit)["sub"] == "user-1"
    assert refused(verifier(), at_limit + "x") == "missing or oversized token"
    assert refused(verifier(), "") == "missing or oversized token"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("abc", "malformed token"),
        ("e30.e30.e30", "unsupported token algorithm 'None'"),
        (unsigned({"alg": "RS256"}), "token has no key id"),
        (unsigned({"alg": "RS256", "kid": ""}), "token has no key id"),
        (unsigned({"alg": "RS256", "kid": 5}), "invalid token"),  # PyJWT: the kid header must be a string
        (unsigned({"alg": "RS256", "kid": "k9"}), "token was signed by an unknown key"),
        (unsigned({"alg": "A" * 30, "kid": "k1"}), "unsupported token algorithm 'AAAAAAAAAAAAAAAAAAAA'"),
        (unsigned({"alg": "HS256", "kid": "k1"}), "unsupported token algorithm 'HS256'"),
    ],
)
def test_header_failures_name_their_cause(raw: str, reason: str) -> None:
    assert refused(verifier(), raw) == reason


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"token_use": "id"}, "token is not an access token"),
        ({"client_id": "someotherclient"}, "token was issued to a client that may not act for users"),
        ({"sub": ""}, "token has no subject"),
        ({"sub": None}, "token has no subject"),
        ({"exp": None}, "token has no expiry"),
        (
            {"iss": "https://cognito-idp.eu-central-1.amazonaws.com/other"},
            "token issuer is not the user pool",
        ),
        ({"exp": int(time.time()) - 120}, "token has expired"),  # stays in the past, however late it runs
    ],
)
def test_claim_failures_name_their_cause(overrides: dict[str, Any], reason: str) -> None:
    assert refused(verifier(), token(**overrides)) == reason


def test_exactly_the_required_scopes_are_enough() -> None:
    strict = verifier(required_scopes=frozenset({"agentic-foundation/agent.invoke", "openid"}))
    assert strict.verify(token(scope="agentic-foundation/agent.invoke openid"))["sub"] == "user-1"
    assert refused(strict, token(scope="openid")) == "token lacks a required scope"


def test_the_reason_falls_back_for_failures_without_their_own_message() -> None:
    assert jwt_verify._reason(jwt.PyJWTError("x")) == "invalid token"  # not an InvalidTokenError
    assert jwt_verify._reason(jwt.MissingRequiredClaimError("nbf")) == "token has no nbf"


# --- the verifier's settings ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "pool", ["eu-central-1_pool", "eu-central-1_Ab3dEfGhX"]
)  # ids end in any [A-Za-z0-9]
def test_a_trailing_slash_on_the_issuer_is_dropped(pool: str) -> None:
    issuer = f"https://cognito-idp.eu-central-1.amazonaws.com/{pool}"
    document = {"keys": [jwk(KEY, "k1")]}
    urls: list[str] = []

    def fetch(url: str) -> dict[str, Any]:
        urls.append(url)
        return document

    slashed = ActorTokenVerifier.create(issuer + "//", [CLIENT], fetch=fetch)
    assert slashed.issuer == issuer  # only the slashes go
    assert slashed.verify(token(iss=issuer))["sub"] == "user-1"
    assert urls == [f"{issuer}/.well-known/jwks.json"]


@pytest.mark.parametrize(
    ("issuer", "clients", "message"),
    [
        (" ", [CLIENT], "issuer is required"),
        (ISSUER, [" ", ""], "at least one allowed client id is required"),
    ],
)
def test_missing_settings_are_named_exactly(issuer: str, clients: list[str], message: str) -> None:
    with pytest.raises(ValueError) as error:
        ActorTokenVerifier.create(issuer, clients)
    assert str(error.value) == message


# --- JWKS keys: RFC 7517 makes `use` and `alg` optional; Cognito's JWKS sets both -----------------------


def test_an_rsa_key_without_use_or_alg_is_a_signing_key() -> None:
    bare = {k: v for k, v in jwk(KEY, "k1").items() if k not in ("use", "alg")}
    assert verifier([bare]).verify(token())["sub"] == "user-1"


@pytest.mark.parametrize("document", [{"keys": 5}, {"keys": None}, {}, {"keys": {"k1": jwk(KEY, "k1")}}])
def test_a_jwks_without_a_key_list_yields_no_keys(document: dict[str, Any]) -> None:
    bare = ActorTokenVerifier.create(ISSUER, [CLIENT], fetch=lambda _url: document)
    assert refused(bare, token()) == "token was signed by an unknown key"


# --- refresh timing: an unknown kid refetches once JWKS_REFRESH_SECONDS have passed, not before ----------


def test_an_unknown_key_refetches_the_jwks_exactly_after_the_refresh_interval() -> None:
    now = [1000.0]
    documents = [{"keys": [jwk(KEY, "k1")]}, {"keys": [jwk(KEY, "k1"), jwk(KEY, "k2")]}]
    fetches: list[float] = []

    def fetch(_url: str) -> dict[str, Any]:
        fetches.append(now[0])
        return documents[min(len(fetches), len(documents)) - 1]

    rotating = ActorTokenVerifier.create(ISSUER, [CLIENT], fetch=fetch, clock=lambda: now[0])
    assert refused(rotating, token(kid="k2")) == "token was signed by an unknown key"
    now[0] += jwt_verify.JWKS_REFRESH_SECONDS - 0.001
    assert refused(rotating, token(kid="k2")) == "token was signed by an unknown key"
    assert rotating.verify(token(kid="k1"))["sub"] == "user-1"  # a known kid never refetches
    assert fetches == [1000.0]
    now[0] = 1000.0 + jwt_verify.JWKS_REFRESH_SECONDS
    assert rotating.verify(token(kid="k2"))["sub"] == "user-1"
    assert fetches == [1000.0, 1000.0 + jwt_verify.JWKS_REFRESH_SECONDS]


# --- fetch_jwks: https only (http on loopback for tests), bounded in size, a JSON object -----------------


class JwksDocument(LoopbackServer):
    """Serves `body` (bytes) at any path; counts the requests."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.requests = 0
        super().__init__()

    def handler_class(self) -> type[LoopbackHandler]:
        served = self

        class Handler(LoopbackHandler):
            def do_GET(self) -> None:
                served.requests += 1
                self.send_bytes(200, served.body)

        return Handler


DOCUMENT = json.dumps({"keys": [jwk(KEY, "k1")]}).encode()


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_plain_http_is_allowed_on_loopback(host: str) -> None:
    with JwksDocument(DOCUMENT) as server:
        assert jwt_verify.fetch_jwks(f"http://{host}:{server.port}/jwks.json") == json.loads(DOCUMENT)
        assert server.requests == 1


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1:9/pool/.well-known/jwks.json",  # https is always allowed (nothing listens)
        "http://[::1]:9/pool/.well-known/jwks.json",  # IPv6 loopback
    ],
)
def test_allowed_urls_are_requested(url: str) -> None:
    # nothing listens on port 9: the request is made and fails as a network error, not a URL refusal
    with pytest.raises(OSError):
        jwt_verify.fetch_jwks(url)


@pytest.mark.parametrize(
    "url",
    [
        "http://cognito-idp.eu-central-1.amazonaws.com/pool/.well-known/jwks.json",
        "ftp://127.0.0.1:9/jwks.json",
        "file:///etc/passwd",
    ],
)
def test_other_urls_are_refused_before_any_request(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    def no_network(*args: Any, **kwargs: Any) -> None:
        raise AssertionError(f"{url} must not be requested")

    monkeypatch.setattr("urllib.request.urlopen", no_network)
    with pytest.raises(TokenError) as error:
        jwt_verify.fetch_jwks(url)
    assert str(error.value) == f"JWKS URL must use https: {url}"


def test_a_jwks_document_that_is_not_an_object_is_named() -> None:
    with JwksDocument(b"[]") as server, pytest.raises(TokenError) as error:
        jwt_verify.fetch_jwks(f"{server.url}/jwks.json")
    assert str(error.value) == "the JWKS document is not a JSON object"
    with JwksDocument(b"[]") as server:
        assert refused(ActorTokenVerifier.create(server.url, [CLIENT]), token(iss=server.url)) == (
            "the JWKS document is not a JSON object"
        )


def test_the_jwks_download_is_bounded_in_size(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jwt_verify, "MAX_JWKS_BYTES", len(DOCUMENT) - 1)
    # the truncated document is not JSON: refused, never half-read
    with JwksDocument(DOCUMENT) as server, pytest.raises(ValueError):
        jwt_verify.fetch_jwks(f"{server.url}/jwks.json")
    monkeypatch.setattr(jwt_verify, "MAX_JWKS_BYTES", len(DOCUMENT))
    with JwksDocument(DOCUMENT) as server:
        assert jwt_verify.fetch_jwks(f"{server.url}/jwks.json") == json.loads(DOCUMENT)


# --- a JWKS that cannot be loaded fails closed and is logged with the error's type (never its text) -----

JWT_LOGGER = "functions.interceptor.jwt_verify"


def jwks_records(caplog: pytest.LogCaptureFixture) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (r.levelname, r.getMessage(), {k: getattr(r, k) for k in ("error",) if hasattr(r, k)})
        for r in caplog.records
        if r.name == JWT_LOGGER
    ]


def test_an_unreachable_jwks_is_logged_and_fails_closed(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=JWT_LOGGER)
    unreachable = ActorTokenVerifier.create("http://127.0.0.1:9/pool", [CLIENT])
    assert (
        refused(unreachable, token(iss="http://127.0.0.1:9/pool"))
        == "could not load the user pool signing keys"
    )
    assert jwks_records(caplog) == [("WARNING", "could not load the JWKS", {"error": "URLError"})]


def test_a_jwks_that_is_not_json_is_logged_and_fails_closed(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=JWT_LOGGER)
    with JwksDocument(b"<html>maintenance</html>") as server:
        broken = ActorTokenVerifier.create(server.url, [CLIENT])
        assert refused(broken, token(iss=server.url)) == "could not load the user pool signing keys"
    assert jwks_records(caplog) == [("WARNING", "could not load the JWKS", {"error": "JSONDecodeError"})]


def test_a_refused_jwks_url_is_not_logged_as_a_load_failure(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=JWT_LOGGER)
    plain = ActorTokenVerifier.create(
        "http://cognito.example.com/pool", [CLIENT], fetch=jwt_verify.fetch_jwks
    )
    assert refused(plain, token(iss="http://cognito.example.com/pool")).startswith(
        "JWKS URL must use https: "
    )
    assert jwks_records(caplog) == []

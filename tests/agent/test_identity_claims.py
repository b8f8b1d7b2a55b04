"""The caller's identity from the `Authorization` header the AgentCore runtime forwards: which headers are
accepted, and the exact 401 message for each way one can be wrong (the message is the contract: it is
shown to the caller, docs/agent-api.md)."""

from __future__ import annotations

import base64
import json

import pytest

from agent.errors import ApiError
from agent.identity import Caller, caller_from_authorization


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def jwt(claims: object, *, header: object = None) -> str:
    return f"{b64(json.dumps(header or {'alg': 'RS256'}).encode())}.{b64(json.dumps(claims).encode())}.c2ln"


def refused(header: str | None) -> str:
    with pytest.raises(ApiError) as caught:
        caller_from_authorization(header)
    assert (caught.value.status, caught.value.code) == (401, "unauthorized")
    return caught.value.message


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (None, "missing Authorization bearer token"),
        ("", "missing Authorization bearer token"),
        ("Basic dXNlcjpwYXNz", "Authorization must be 'Bearer <access token>'"),
        ("Bearer", "Authorization must be 'Bearer <access token>'"),
        ("Bearer    ", "Authorization must be 'Bearer <access token>'"),
        ("Token a.b.c", "Authorization must be 'Bearer <access token>'"),
        ("Bearer a.b", "the bearer token is not a JWT"),
        ("Bearer a.b.c.d", "the bearer token is not a JWT"),
        ("Bearer a.%%%.c", "the bearer token's claims cannot be decoded"),
        (f"Bearer x.{b64(b'not json')}.c", "the bearer token's claims cannot be decoded"),
        ("Bearer x." + b64(bytes([0xFF, 0xFE])) + ".c", "the bearer token's claims cannot be decoded"),
        ("Bearer x.\u00e9\u00e9\u00e9\u00e9.c", "the bearer token's claims cannot be decoded"),
        (f"Bearer {jwt(['a', 'list'])}", "the bearer token's claims are not an object"),
        (f"Bearer {jwt('a string')}", "the bearer token's claims are not an object"),
        (f"Bearer {jwt({'scope': 'x'})}", "the bearer token has no usable 'sub' claim"),
        (f"Bearer {jwt({'sub': 42})}", "the bearer token has no usable 'sub' claim"),
        (f"Bearer {jwt({'sub': ''})}", "the bearer token has no usable 'sub' claim"),
        (f"Bearer {jwt({'sub': '-leading-dash'})}", "the bearer token has no usable 'sub' claim"),
        (f"Bearer {jwt({'sub': 'has space'})}", "the bearer token has no usable 'sub' claim"),
        (f"Bearer {jwt({'sub': 'a' * 129})}", "the bearer token has no usable 'sub' claim"),
    ],
)
def test_each_bad_header_gets_its_own_401_message(header, message):
    assert refused(header) == message


@pytest.mark.parametrize(
    "sub",
    ["3f1c2b7e-0000-4000-8000-000000000001", "a", "A" * 128, "user@example.com", "idp:user.name_1-x"],
)
def test_a_usable_sub_is_the_actor_and_the_token_is_kept_for_the_tool_gateway(sub):
    token = jwt({"sub": sub, "token_use": "access"})
    assert caller_from_authorization(f"Bearer {token}") == Caller(actor_id=sub, token=token)


@pytest.mark.parametrize("spacing", ["bearer {t}", "BEARER {t}", "  Bearer {t}  ", "Bearer   {t}"])
def test_scheme_case_and_surrounding_spaces_do_not_matter(spacing):
    token = jwt({"sub": "user-1"})
    caller = caller_from_authorization(spacing.format(t=token))
    assert caller == Caller("user-1", token)


@pytest.mark.parametrize("extra", ["", "x", "xy", "xyz", "wxyz"])
def test_claims_of_every_length_decode_whatever_their_padding(extra):
    # base64url without padding (RFC 7515 section 2): the claims segment may be 4n, 4n+2 or 4n+3 long
    claims = {"sub": "user-1", "pad": extra}
    segment = b64(json.dumps(claims).encode())
    token = f"x.{segment}.sig"
    assert caller_from_authorization(f"Bearer {token}").actor_id == "user-1"


def test_padded_claims_are_accepted_too():
    segment = base64.urlsafe_b64encode(json.dumps({"sub": "user-1", "p": "xy"}).encode()).decode()
    assert segment.endswith("=")
    assert caller_from_authorization(f"Bearer x.{segment}.sig").actor_id == "user-1"

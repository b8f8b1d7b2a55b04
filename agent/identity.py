"""The caller's identity: the `sub` of the bearer token the runtime validated (never the body)."""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass

from agent.errors import ApiError

_SUB_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@:-]{0,127}$")


@dataclass(frozen=True)
class Caller:
    """Who is asking: the actor id, and the access token to forward to the tool gateway (deployed)."""

    actor_id: str
    token: str | None = None


def _unauthorized(message: str) -> ApiError:
    return ApiError(401, "unauthorized", message)


def caller_from_authorization(header: str | None) -> Caller:
    """Decode the JWT the AgentCore runtime already verified and return its `sub`.

    The runtime's JWT authorizer checked signature, issuer, audience and expiry before the request
    reached us; we still refuse a missing, malformed or subject-less token rather than guess.
    """
    if not header:
        raise _unauthorized("missing Authorization bearer token")
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise _unauthorized("Authorization must be 'Bearer <access token>'")
    parts = token.split(".")
    if len(parts) != 3:
        raise _unauthorized("the bearer token is not a JWT")
    try:
        padded = parts[1] + "=" * (-len(parts[1]) % 4)
        claims = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (binascii.Error, ValueError, UnicodeError) as error:
        raise _unauthorized("the bearer token's claims cannot be decoded") from error
    if not isinstance(claims, dict):
        raise _unauthorized("the bearer token's claims are not an object")
    sub = claims.get("sub")
    if not isinstance(sub, str) or not _SUB_RE.match(sub):
        raise _unauthorized("the bearer token has no usable 'sub' claim")
    return Caller(actor_id=sub, token=token)

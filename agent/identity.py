"""The caller's identity: the `sub` and Cognito groups of the bearer token the runtime validated
(never the body), and the LLM gateway team a caller's model calls are billed to.

Cognito puts a user's groups in the access token's `cognito:groups` claim (a list of group names;
absent when the user is in no group, and in client-credentials tokens):
https://docs.aws.amazon.com/cognito/latest/developerguide/amazon-cognito-user-pools-using-the-access-token.html
https://docs.aws.amazon.com/cognito/latest/developerguide/amazon-cognito-user-pools-using-tokens-with-identity-providers.html
("The access and ID tokens both include a cognito:groups claim"). That an M2M (client-credentials)
token has no such claim is not stated on either page: such a caller simply falls to the default team,
and `make verify` should check the claim on a real user token (docs/spend.md).
Our team groups are named exactly like the teams (stacks/identity.py `_create_team_groups`).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass

from agent.errors import ApiError

_SUB_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@:-]{0,127}$")
GROUPS_CLAIM = "cognito:groups"
MAX_GROUPS = 100  # Cognito's quota of groups per user pool is far larger; a user in more is refused


@dataclass(frozen=True)
class Caller:
    """Who is asking: the actor id, their Cognito groups, and the access token to forward to the tool
    gateway (deployed)."""

    actor_id: str
    token: str | None = None
    groups: tuple[str, ...] = ()


@dataclass(frozen=True)
class Teams:
    """The gateway teams the agent holds a key for, in priority order, and the default team.

    A caller's team is the first of `order` among the caller's groups (so a member of several teams is
    billed to the one listed first in `identity.teams`), else `default`; `None` when the agent has a
    single key (no team keys: an external gateway, or a secret from before team keys).
    """

    order: tuple[str, ...] = ()
    default: str | None = None

    @classmethod
    def of(cls, teams: Iterable[str], default: str | None) -> Teams:
        return cls(tuple(team for team in teams if team != default), default)

    def team_of(self, caller: Caller) -> str | None:
        groups = set(caller.groups)
        return next((team for team in self.order if team in groups), self.default)


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
    groups = claims.get(GROUPS_CLAIM, [])
    if not (
        isinstance(groups, list) and len(groups) <= MAX_GROUPS and all(isinstance(g, str) for g in groups)
    ):
        raise _unauthorized(f"the bearer token's '{GROUPS_CLAIM}' claim is not a list of group names")
    return Caller(actor_id=sub, token=token, groups=tuple(groups))

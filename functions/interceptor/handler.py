"""REQUEST interceptor of the tool gateway: turns the caller's verified token into the `_actor` argument.

For every `tools/call` the agent sends its own machine token in `Authorization` (checked by the gateway's
JWT authorizer) and the end user's access token in `X-Actor-Token`. This function verifies the actor
token against the user pool (signature, issuer, expiry, `token_use`, allowed client), removes any
`_actor` the model may have sent, and sets `_actor` to the token's `sub` for the targets that need an
identity (ACTOR_TARGETS). Without a valid actor token the call is answered here with an authorization
error and never reaches a target. Other MCP methods (initialize, tools/list, ...) pass unchanged.

Settings (environment): USER_POOL_ISSUER, ACTOR_CLIENT_IDS (comma-separated), ACTOR_TARGETS
(comma-separated target names, e.g. `tickets`).
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping
from typing import Any

from functions.common import TARGET_SEPARATOR, require_env
from functions.interceptor.jwt_verify import ActorTokenVerifier, TokenError

logger = logging.getLogger(__name__)
logger.setLevel(logging.INFO)

ACTOR_HEADER = "x-actor-token"
ACTOR_ARGUMENT = "_actor"
OUTPUT_VERSION = "1.0"

_verifier: ActorTokenVerifier | None = None


def _get_verifier() -> ActorTokenVerifier:
    global _verifier
    if _verifier is None:
        _verifier = ActorTokenVerifier.create(
            require_env("USER_POOL_ISSUER"), require_env("ACTOR_CLIENT_IDS").split(",")
        )
    return _verifier


def _actor_targets() -> frozenset[str]:
    return frozenset(t.strip() for t in require_env("ACTOR_TARGETS").split(",") if t.strip())


def _header(headers: Mapping[str, Any] | None, name: str) -> str:
    for key, value in (headers or {}).items():
        if key.lower() == name:
            return str(value).strip()
    return ""


def _forward(body: Any) -> dict[str, Any]:
    return {"interceptorOutputVersion": OUTPUT_VERSION, "mcp": {"transformedGatewayRequest": {"body": body}}}


def _refuse(body: Mapping[str, Any], reason: str) -> dict[str, Any]:
    """Answer the call here with a tool error; the target is never invoked."""
    return {
        "interceptorOutputVersion": OUTPUT_VERSION,
        "mcp": {
            "transformedGatewayResponse": {
                "statusCode": 200,
                "body": {
                    "jsonrpc": "2.0",
                    "id": body.get("id"),
                    "result": {
                        "isError": True,
                        "content": [{"type": "text", "text": f"unauthorized: {reason}"}],
                    },
                },
            }
        },
    }


def handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    """Gateway REQUEST interceptor entry point."""
    request = (event.get("mcp") or {}).get("gatewayRequest") or {}
    body = request.get("body")
    if not isinstance(body, dict) or body.get("method") != "tools/call":
        return _forward(body)

    body = copy.deepcopy(body)
    params = body.setdefault("params", {})
    if not isinstance(params, dict):
        return _refuse(body, "malformed tools/call request")
    tool = str(params.get("name", ""))
    arguments = params.get("arguments")
    if arguments is None:
        arguments = {}
    if not isinstance(arguments, dict):
        return _refuse(body, "tool arguments must be a JSON object")
    arguments.pop(ACTOR_ARGUMENT, None)

    token = _header(request.get("headers"), ACTOR_HEADER)
    if token.lower().startswith("bearer "):
        token = token[7:].strip()
    if not token:
        logger.warning("tool call without an actor token", extra={"tool": tool})
        return _refuse(body, "the request carries no X-Actor-Token")
    try:
        claims = _get_verifier().verify(token)
    except TokenError as error:
        logger.warning("actor token rejected", extra={"tool": tool, "reason": str(error)})
        return _refuse(body, f"actor token rejected ({error})")

    target = tool.split(TARGET_SEPARATOR, 1)[0] if TARGET_SEPARATOR in tool else ""
    if target in _actor_targets():
        arguments[ACTOR_ARGUMENT] = claims["sub"]
    params["arguments"] = arguments
    return _forward(body)

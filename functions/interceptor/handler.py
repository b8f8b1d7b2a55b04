"""Interceptor of the tool gateway, wired at both interception points (REQUEST and RESPONSE).

REQUEST, `tools/call`: the agent sends its own machine token in `Authorization` (checked by the gateway's
JWT authorizer) and the end user's access token in `X-Actor-Token`. This function verifies the actor token
against the user pool (signature, issuer, expiry, `token_use`, allowed client) and then ALWAYS sets the
identity argument (`tools.specs.IDENTITY_ARGUMENT`) to the token's `sub` for the targets that need an
identity (ACTOR_TARGETS); a caller-supplied value is replaced, never trusted, and the argument is removed
for every other target. The identity targets declare the argument in their gateway input schema, so the
gateway hands it to the Lambda as part of the documented event (the tool's input properties). Without a
valid actor token the call is answered here with an authorization error and never reaches a target.
Other methods (initialize, tools/list, notifications, ...) are forwarded unchanged.

RESPONSE: removes the identity argument from every tool definition in the answer (`tools/list` and each
of its pages, and the gateway's semantic-search tool result), so no client or model ever sees it. All
other responses pass unchanged.

Payload contract (interceptorInputVersion / interceptorOutputVersion "1.0"):
https://docs.aws.amazon.com/bedrock-agentcore/latest/devguide/gateway-interceptors-types.html
  input   {"interceptorInputVersion", "mcp": {"rawGatewayRequest", "gatewayRequest": {"path", "httpMethod",
          "headers" (only with passRequestHeaders), "body"}, "gatewayResponse" (RESPONSE only):
          {"statusCode", "headers", "body"}}}
  output  {"interceptorOutputVersion": "1.0", "mcp": {"transformedGatewayRequest": {"body"}}} to forward a
          request, or {"mcp": {"transformedGatewayResponse": {"statusCode", "headers"?, "body"}}} to answer
          (REQUEST: the gateway answers with it at once; RESPONSE: the answer sent to the client).
A malformed event raises InterceptorEventError naming the field: the gateway then fails that call (fail
closed) instead of forwarding something this function did not understand.

Settings (environment): USER_POOL_ISSUER, ACTOR_CLIENT_IDS (comma-separated), ACTOR_TARGETS
(comma-separated gateway target names, e.g. `tickets`).
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Callable, Mapping
from typing import Any

from functions.common import TARGET_SEPARATOR, require_env
from functions.interceptor.jwt_verify import ActorTokenVerifier, TokenError
from tools.specs import IDENTITY_ARGUMENT, public_input_schema

logger = logging.getLogger(__name__)
logger.setLevel(logging.INFO)

ACTOR_HEADER = "x-actor-token"
ACTOR_ARGUMENT = IDENTITY_ARGUMENT
INPUT_VERSION_MAJOR = "1."
OUTPUT_VERSION = "1.0"
MAX_DEPTH = 16

_verifier: ActorTokenVerifier | None = None


class InterceptorEventError(ValueError):
    """The gateway sent an event this function does not understand; the message names the field."""


def _get_verifier() -> ActorTokenVerifier:
    global _verifier
    if _verifier is None:
        _verifier = ActorTokenVerifier.create(
            require_env("USER_POOL_ISSUER"), require_env("ACTOR_CLIENT_IDS").split(",")
        )
    return _verifier


def _actor_targets() -> frozenset[str]:
    return frozenset(t.strip() for t in require_env("ACTOR_TARGETS").split(",") if t.strip())


def _header(headers: object, name: str) -> str:
    """The value of header `name` (lower case) from the gateway request's headers map ('' when absent).

    Raises:
        InterceptorEventError: when the event's headers are present but not a JSON object.
    """
    if headers is None:
        return ""
    for key, value in _object(headers, "mcp.gatewayRequest.headers").items():
        if key.lower() == name:
            return str(value).strip()
    return ""


def _object(value: object, field: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        kind = "missing" if value is None else f"a {type(value).__name__}"
        raise InterceptorEventError(f"{field}: must be a JSON object (got {kind})")
    return value


# --- REQUEST --------------------------------------------------------------------------------------


def _forward(body: Mapping[str, Any]) -> dict[str, Any]:
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


def _intercept_request(request: dict[str, Any]) -> dict[str, Any]:
    body = _object(request.get("body"), "mcp.gatewayRequest.body")
    if body.get("method") != "tools/call":
        return _forward(body)

    body = copy.deepcopy(body)
    params = body.get("params")
    if not isinstance(params, dict) or not isinstance(params.get("name"), str):
        return _refuse(body, "malformed tools/call request (params.name)")
    tool = params["name"]
    arguments = params.get("arguments")
    if arguments is None:
        arguments = {}
    if not isinstance(arguments, dict):
        return _refuse(body, "tool arguments must be a JSON object")
    if ACTOR_ARGUMENT in arguments:
        # The argument is in no schema a client sees: any value here, null included, is forged or injected.
        # It is removed (and set again below for the identity targets) and the attempt is audited.
        del arguments[ACTOR_ARGUMENT]
        logger.warning("caller-supplied identity argument replaced", extra={"tool": tool})

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


# --- RESPONSE -------------------------------------------------------------------------------------


def _strip_identity(value: Any, depth: int = 0) -> tuple[Any, int]:
    """`value` with the identity argument removed from every tool definition (an object with an
    `inputSchema`), also inside text content that holds JSON; and how many definitions changed."""
    if depth > MAX_DEPTH:
        return value, 0
    if isinstance(value, list):
        changed = 0
        items = []
        for item in value:
            new_item, count = _strip_identity(item, depth + 1)
            items.append(new_item)
            changed += count
        return (items, changed) if changed else (value, 0)
    if not isinstance(value, dict):
        return value, 0
    changed = 0
    result = dict(value)
    schema = value.get("inputSchema")
    if isinstance(schema, dict):
        public = public_input_schema(schema)
        if public is not schema:
            result["inputSchema"] = public
            changed += 1
    for key, item in value.items():
        if key == "inputSchema":
            continue
        if key == "text" and isinstance(item, str) and ACTOR_ARGUMENT in item:
            new_text, count = _strip_text(item, depth)
            result[key] = new_text
            changed += count
            continue
        new_item, count = _strip_identity(item, depth + 1)
        if count:
            result[key] = new_item
            changed += count
    return (result, changed) if changed else (value, 0)


def _strip_text(text: str, depth: int) -> tuple[str, int]:
    try:
        parsed = json.loads(text)
    except ValueError:
        return text, 0
    stripped, count = _strip_identity(parsed, depth + 1)
    return (json.dumps(stripped, separators=(",", ":")), count) if count else (text, 0)


def _intercept_response(response: dict[str, Any]) -> dict[str, Any]:
    status = response.get("statusCode")
    if isinstance(status, bool) or not isinstance(status, int):
        raise InterceptorEventError("mcp.gatewayResponse.statusCode: must be an integer HTTP status")
    body = response.get("body")
    new_body: Any
    if isinstance(body, str):
        try:
            parsed = json.loads(body)  # an empty body ("" for a 202) is not JSON either
        except ValueError:
            if ACTOR_ARGUMENT in body:
                raise InterceptorEventError(
                    "mcp.gatewayResponse.body: not JSON, so the identity argument cannot be removed"
                ) from None
            new_body, changed = body, 0  # not JSON and no identity in it: nothing to remove
        else:
            stripped, changed = _strip_identity(parsed)
            new_body = json.dumps(stripped) if changed else body
    elif isinstance(body, dict | list) or body is None:
        new_body, changed = _strip_identity(body)
    else:
        raise InterceptorEventError("mcp.gatewayResponse.body: must be a JSON object")
    if changed:
        logger.info("identity argument removed from tool definitions", extra={"tools": changed})
    transformed: dict[str, Any] = {"statusCode": status, "body": new_body}
    if isinstance(response.get("headers"), dict):
        transformed["headers"] = response["headers"]
    return {"interceptorOutputVersion": OUTPUT_VERSION, "mcp": {"transformedGatewayResponse": transformed}}


# --- entry point ----------------------------------------------------------------------------------

_POINTS: dict[str, tuple[str, Callable[[dict[str, Any]], dict[str, Any]]]] = {
    # key present in event["mcp"] -> (field name for errors, handler); RESPONSE is checked first because a
    # RESPONSE event carries gatewayRequest too, and only it has gatewayResponse (per the contract above).
    "gatewayResponse": ("mcp.gatewayResponse", _intercept_response),
    "gatewayRequest": ("mcp.gatewayRequest", _intercept_request),
}


def handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    """Gateway interceptor entry point (REQUEST and RESPONSE)."""
    if not isinstance(event, Mapping):
        raise InterceptorEventError("event: must be a JSON object")
    version = event.get("interceptorInputVersion")
    if not isinstance(version, str) or not version.startswith(INPUT_VERSION_MAJOR):
        raise InterceptorEventError(
            f"interceptorInputVersion: expected 1.x, got {version!r} (payload contract changed?)"
        )
    mcp = _object(event.get("mcp"), "mcp")
    for key, (field, intercept) in _POINTS.items():
        if key in mcp:
            return intercept(_object(mcp[key], field))
    raise InterceptorEventError("mcp: has neither gatewayRequest nor gatewayResponse")

"""The gateway interceptor at both interception points, with real RS256 tokens verified against a JWKS
served on loopback.

Events are built as the AgentCore Gateway documents them and every output is checked against the
documented output shape:
https://docs.aws.amazon.com/bedrock-agentcore/latest/devguide/gateway-interceptors-types.html
"""

from __future__ import annotations

import copy
import json
import logging
import time
from typing import Any

import boto3
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from functions.common import MissingSettingError
from functions.interceptor import handler as interceptor
from functions.interceptor.jwt_verify import ActorTokenVerifier, TokenError
from local_stack.loopback import LoopbackHandler, LoopbackServer
from stacks.tool_gateway import TARGET_NAMES
from tools import specs

BROWSER_CLIENT = "browserclient123"
EVAL_CLIENT = "evalclient456"
OTHER_CLIENT = "someotherclient789"
USER_SUB = "7c9e6679-7425-40de-944b-e07fc1f90ae7"


def new_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


SIGNING_KEY = new_key()
ROGUE_KEY = new_key()


class JwksServer(LoopbackServer):
    """A loopback HTTP server publishing `<issuer>/.well-known/jwks.json`; counts the fetches."""

    def __init__(self, keys):
        self.keys = keys
        self.fetches = 0
        super().__init__()
        self.issuer = f"{self.url}/pool"

    def handler_class(self):
        server = self

        class Handler(LoopbackHandler):
            def do_GET(self):
                server.fetches += 1
                if self.path != "/pool/.well-known/jwks.json":
                    self.send_error(404)
                    return
                self.send_json(200, {"keys": server.keys})

        return Handler


def jwk(private_key, kid):
    public = json.loads(RSAAlgorithm.to_jwk(private_key.public_key()))
    return {**public, "kid": kid, "alg": "RS256", "use": "sig"}


@pytest.fixture(scope="module")
def jwks():
    with JwksServer([jwk(SIGNING_KEY, "key-1")]) as server:
        yield server


@pytest.fixture
def configured(jwks, monkeypatch):
    monkeypatch.setenv("USER_POOL_ISSUER", jwks.issuer)
    monkeypatch.setenv("ACTOR_CLIENT_IDS", f"{BROWSER_CLIENT},{EVAL_CLIENT}")
    monkeypatch.setenv("ACTOR_TARGETS", "tickets")
    monkeypatch.setattr(interceptor, "_verifier", None)
    return jwks


def token(issuer, *, key=SIGNING_KEY, kid="key-1", algorithm="RS256", **overrides):
    now = int(time.time())
    claims = {
        "sub": USER_SUB,
        "iss": issuer,
        "client_id": BROWSER_CLIENT,
        "token_use": "access",
        "scope": "openid agentic-foundation/agent.invoke",
        "iat": now,
        "exp": now + 3600,
        "username": "alice",
    }
    claims.update(overrides)
    claims = {k: v for k, v in claims.items() if v is not None}
    return jwt.encode(claims, key, algorithm=algorithm, headers={"kid": kid})


def request_event(body, headers=None):
    """A REQUEST interceptor input as documented (headers only with passRequestHeaders: true)."""
    request = {"path": "/mcp", "httpMethod": "POST", "body": body}
    if headers is not None:
        request["headers"] = headers
    return {
        "interceptorInputVersion": "1.0",
        "mcp": {"rawGatewayRequest": {"body": json.dumps(body)}, "gatewayRequest": request},
    }


def tools_call(tool="tickets___list_tickets", arguments=None, headers=None):
    body = {
        "jsonrpc": "2.0",
        "id": 7,
        "method": "tools/call",
        "params": {"name": tool, "arguments": arguments if arguments is not None else {}},
    }
    return request_event(body, headers if headers is not None else {})


def assert_documented_output(output):
    """The documented interceptor output: version "1.0" and, under `mcp`, a transformedGatewayRequest
    ({"body": JSON-RPC object}) or a transformedGatewayResponse ({"statusCode": int, "body", "headers"?})."""
    assert set(output) == {"interceptorOutputVersion", "mcp"}
    assert output["interceptorOutputVersion"] == "1.0"
    mcp = output["mcp"]
    assert len(mcp) == 1 and set(mcp) <= {"transformedGatewayRequest", "transformedGatewayResponse"}
    if "transformedGatewayRequest" in mcp:
        request = mcp["transformedGatewayRequest"]
        assert set(request) <= {"headers", "body"} and isinstance(request["body"], dict)
        assert request["body"]["jsonrpc"] == "2.0"
    else:
        response = mcp["transformedGatewayResponse"]
        assert set(response) <= {"statusCode", "headers", "body"}
        assert isinstance(response["statusCode"], int) and "body" in response
    json.dumps(output)  # the gateway reads the Lambda's JSON answer
    return mcp


def forwarded_arguments(output):
    mcp = assert_documented_output(output)
    assert "transformedGatewayResponse" not in mcp
    return mcp["transformedGatewayRequest"]["body"]["params"]["arguments"]


def refusal(output):
    mcp = assert_documented_output(output)
    response = mcp["transformedGatewayResponse"]
    assert "transformedGatewayRequest" not in mcp
    assert response["statusCode"] == 200
    assert response["body"]["jsonrpc"] == "2.0"
    assert response["body"]["id"] == 7
    assert response["body"]["result"]["isError"] is True
    (content,) = response["body"]["result"]["content"]
    assert content["type"] == "text" and set(content) == {"type", "text"}  # an MCP TextContent item
    return content["text"]


def test_valid_token_sets_actor_to_sub(configured):
    event = tools_call(arguments={"status": "open"}, headers={"X-Actor-Token": token(configured.issuer)})
    assert forwarded_arguments(interceptor.handler(event, None)) == {"status": "open", "_actor": USER_SUB}


def test_model_supplied_actor_is_overwritten(configured):
    event = tools_call(
        arguments={"_actor": "someone-else"}, headers={"x-actor-token": token(configured.issuer)}
    )
    assert forwarded_arguments(interceptor.handler(event, None))["_actor"] == USER_SUB


def test_bearer_prefix_and_header_case_are_accepted(configured):
    event = tools_call(headers={"X-ACTOR-TOKEN": f"Bearer {token(configured.issuer)}"})
    assert forwarded_arguments(interceptor.handler(event, None))["_actor"] == USER_SUB


def test_machine_client_token_is_an_actor_too(configured):
    event = tools_call(
        headers={
            "X-Actor-Token": token(configured.issuer, client_id=EVAL_CLIENT, sub=EVAL_CLIENT, username=None)
        }
    )
    assert forwarded_arguments(interceptor.handler(event, None))["_actor"] == EVAL_CLIENT


def test_targets_without_identity_get_no_actor(configured):
    event = tools_call(
        tool="web-search___web_search",
        arguments={"query": "x", "_actor": "forged"},
        headers={"X-Actor-Token": token(configured.issuer)},
    )
    assert forwarded_arguments(interceptor.handler(event, None)) == {"query": "x"}


def test_missing_token_is_refused(configured):
    text = refusal(interceptor.handler(tools_call(arguments={"_actor": USER_SUB}), None))
    assert text == "unauthorized: the request carries no X-Actor-Token"


def test_missing_headers_are_refused(configured):
    event = tools_call()
    del event["mcp"]["gatewayRequest"]["headers"]
    assert refusal(interceptor.handler(event, None)) == "unauthorized: the request carries no X-Actor-Token"


# Claim values are computed when the test runs, never at import: mutmut forks its workers from one
# process that imported this module, possibly more than 10 minutes earlier.
@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        (lambda now: {"exp": now - 120}, "token has expired"),
        (lambda now: {"iss": "https://cognito-idp.eu-central-1.amazonaws.com/eu-central-1_other"}, "issuer"),
        (lambda now: {"client_id": OTHER_CLIENT}, "client"),
        (lambda now: {"token_use": "id"}, "not an access token"),
        (lambda now: {"exp": None}, "no expiry"),
        (lambda now: {"nbf": now + 600}, "nbf is in the future"),
        (lambda now: {"sub": None}, "no subject"),
    ],
)
def test_bad_claims_are_refused(configured, overrides, reason):
    event = tools_call(headers={"X-Actor-Token": token(configured.issuer, **overrides(int(time.time())))})
    text = refusal(interceptor.handler(event, None))
    assert text.startswith("unauthorized: actor token rejected")
    assert reason in text


def test_expiry_within_leeway_is_accepted(configured):
    event = tools_call(headers={"X-Actor-Token": token(configured.issuer, exp=int(time.time()) - 5)})
    assert forwarded_arguments(interceptor.handler(event, None))["_actor"] == USER_SUB


def test_token_signed_by_another_key_is_refused(configured):
    event = tools_call(headers={"X-Actor-Token": token(configured.issuer, key=ROGUE_KEY)})
    assert "invalid token signature" in refusal(interceptor.handler(event, None))


def test_tampered_claims_are_refused(configured):
    header, _claims, signature = token(configured.issuer).split(".")
    forged_claims = jwt.utils.base64url_encode(
        json.dumps(
            {
                "sub": "attacker",
                "iss": configured.issuer,
                "client_id": BROWSER_CLIENT,
                "token_use": "access",
                "exp": int(time.time()) + 3600,
            }
        ).encode()
    ).decode()
    event = tools_call(headers={"X-Actor-Token": f"{header}.{forged_claims}.{signature}"})
    assert "invalid token signature" in refusal(interceptor.handler(event, None))


def test_symmetric_algorithm_confusion_is_refused(configured):
    forged = jwt.encode(
        {"sub": "attacker", "iss": configured.issuer, "client_id": BROWSER_CLIENT, "token_use": "access"},
        "not-the-real-signing-key-but-32-bytes-long",
        algorithm="HS256",
        headers={"kid": "key-1"},
    )
    event = tools_call(headers={"X-Actor-Token": forged})
    assert "unsupported token algorithm" in refusal(interceptor.handler(event, None))


def test_unsigned_token_is_refused(configured):
    unsigned = token(configured.issuer).rsplit(".", 1)[0] + "."
    event = tools_call(headers={"X-Actor-Token": unsigned})
    assert "invalid token signature" in refusal(interceptor.handler(event, None))


@pytest.mark.parametrize("garbage", ["abc", "a.b.c", "x" * 9000, "....", "e30.e30.e30"])
def test_garbage_tokens_are_refused(configured, garbage):
    event = tools_call(headers={"X-Actor-Token": garbage})
    assert refusal(interceptor.handler(event, None)).startswith("unauthorized: actor token rejected")


def test_unknown_key_id_refetches_at_most_once_a_minute(configured):
    before = configured.fetches
    event = tools_call(headers={"X-Actor-Token": token(configured.issuer, kid="rotated-key")})
    assert "unknown key" in refusal(interceptor.handler(event, None))
    assert "unknown key" in refusal(interceptor.handler(event, None))
    assert configured.fetches == before + 1


def test_keys_are_cached_between_calls(configured):
    event = tools_call(headers={"X-Actor-Token": token(configured.issuer)})
    interceptor.handler(event, None)
    before = configured.fetches
    for _ in range(3):
        interceptor.handler(event, None)
    assert configured.fetches == before


@pytest.mark.parametrize(
    "body",
    [
        {"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {"cursor": "page-2"}},
        {"jsonrpc": "2.0", "id": 3, "method": "initialize", "params": {"protocolVersion": "2025-06-18"}},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 4, "method": "ping"},
    ],
)
def test_other_methods_pass_through_unchanged_without_a_token(configured, body):
    output = interceptor.handler(request_event(body, headers={}), None)
    assert_documented_output(output)
    assert output == {"interceptorOutputVersion": "1.0", "mcp": {"transformedGatewayRequest": {"body": body}}}


def test_non_object_arguments_are_refused(configured):
    event = tools_call(headers={"X-Actor-Token": token(configured.issuer)})
    event["mcp"]["gatewayRequest"]["body"]["params"]["arguments"] = ["x"]
    assert "must be a JSON object" in refusal(interceptor.handler(event, None))


def test_unreachable_jwks_fails_closed(monkeypatch):
    monkeypatch.setenv("USER_POOL_ISSUER", "http://127.0.0.1:9/pool")
    monkeypatch.setenv("ACTOR_CLIENT_IDS", BROWSER_CLIENT)
    monkeypatch.setenv("ACTOR_TARGETS", "tickets")
    monkeypatch.setattr(interceptor, "_verifier", None)
    event = tools_call(headers={"X-Actor-Token": token("http://127.0.0.1:9/pool")})
    assert "could not load the user pool signing keys" in refusal(interceptor.handler(event, None))


def test_missing_settings_name_the_variable(monkeypatch):
    monkeypatch.delenv("USER_POOL_ISSUER", raising=False)
    monkeypatch.setattr(interceptor, "_verifier", None)
    with pytest.raises(MissingSettingError, match="USER_POOL_ISSUER"):
        interceptor.handler(tools_call(headers={"X-Actor-Token": "a.b.c"}), None)


def test_plain_http_jwks_is_refused_off_loopback(monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("the JWKS must not be requested over plain http off loopback")

    monkeypatch.setattr("urllib.request.urlopen", no_network)
    verifier = ActorTokenVerifier.create("http://cognito.example.com/pool", [BROWSER_CLIENT])
    with pytest.raises(TokenError) as refused:
        verifier.verify(token("http://cognito.example.com/pool"))
    assert str(refused.value) == (
        "JWKS URL must use https: http://cognito.example.com/pool/.well-known/jwks.json"
    )


def test_verifier_needs_clients():
    with pytest.raises(ValueError, match="client"):
        ActorTokenVerifier.create("https://issuer.example.com/pool", [" ", ""])


# --- Cognito-shaped tokens: moto's cognito-idp issues real RS256 tokens with its published JWKS -------


def moto_jwks(_url: str) -> dict[str, Any]:
    import gzip
    from pathlib import Path

    import moto.cognitoidp

    path = Path(moto.cognitoidp.__file__).parent / "resources" / "jwks-public.json.gz"
    return json.loads(gzip.decompress(path.read_bytes()))  # type: ignore[no-any-return]


@pytest.fixture
def cognito(monkeypatch):
    from moto import mock_aws

    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    with mock_aws():
        client = boto3.client("cognito-idp", region_name="eu-central-1")
        pool = client.create_user_pool(PoolName="users")["UserPool"]["Id"]
        app_client = client.create_user_pool_client(
            UserPoolId=pool, ClientName="browser", ExplicitAuthFlows=["ALLOW_ADMIN_USER_PASSWORD_AUTH"]
        )["UserPoolClient"]["ClientId"]
        client.admin_create_user(UserPoolId=pool, Username="alice@example.com")
        client.admin_set_user_password(
            UserPoolId=pool, Username="alice@example.com", Password="Correct-Horse-42!", Permanent=True
        )
        auth = client.admin_initiate_auth(
            UserPoolId=pool,
            ClientId=app_client,
            AuthFlow="ADMIN_USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": "alice@example.com", "PASSWORD": "Correct-Horse-42!"},
        )["AuthenticationResult"]
        attributes = client.admin_get_user(UserPoolId=pool, Username="alice@example.com")["UserAttributes"]
        sub = next(a["Value"] for a in attributes if a["Name"] == "sub")
        issuer = f"https://cognito-idp.eu-central-1.amazonaws.com/{pool}"
        yield {"issuer": issuer, "client": app_client, "auth": auth, "sub": sub}


def test_cognito_access_token_identifies_the_user(cognito):
    verifier = ActorTokenVerifier.create(cognito["issuer"], [cognito["client"]], fetch=moto_jwks)
    claims = verifier.verify(cognito["auth"]["AccessToken"])
    assert claims["sub"] == cognito["sub"]


def test_cognito_id_token_is_not_an_actor_token(cognito):
    verifier = ActorTokenVerifier.create(cognito["issuer"], [cognito["client"]], fetch=moto_jwks)
    with pytest.raises(TokenError, match="not an access token"):
        verifier.verify(cognito["auth"]["IdToken"])


def test_cognito_token_of_another_pool_is_refused(cognito):
    verifier = ActorTokenVerifier.create(
        "https://cognito-idp.eu-central-1.amazonaws.com/eu-central-1_other",
        [cognito["client"]],
        fetch=moto_jwks,
    )
    with pytest.raises(TokenError, match="issuer"):
        verifier.verify(cognito["auth"]["AccessToken"])


# --- the identity argument is declared, always set from the token, never trusted from the caller ---------


def identity_tools():
    return [(f"{TARGET_NAMES[s.target]}___{s.name}", s) for s in specs.TOOL_SPECS if s.needs_identity]


@pytest.mark.parametrize(("tool", "spec"), identity_tools(), ids=lambda v: v if isinstance(v, str) else "")
def test_every_identity_tool_gets_the_verified_sub_and_declares_it(configured, tool, spec):
    assert specs.IDENTITY_ARGUMENT in spec.gateway_input_schema["properties"]
    event = tools_call(
        tool=tool,
        arguments={specs.IDENTITY_ARGUMENT: "forged-sub"},
        headers={"X-Actor-Token": token(configured.issuer)},
    )
    assert forwarded_arguments(interceptor.handler(event, None))[specs.IDENTITY_ARGUMENT] == USER_SUB


@pytest.mark.parametrize("forged", ["", None, 42, {"sub": "x"}, USER_SUB])
def test_any_caller_supplied_identity_value_is_replaced(configured, forged):
    event = tools_call(
        arguments={"status": "open", "_actor": forged}, headers={"X-Actor-Token": token(configured.issuer)}
    )
    assert forwarded_arguments(interceptor.handler(event, None)) == {"status": "open", "_actor": USER_SUB}


def test_caller_supplied_identity_with_a_bad_token_is_still_refused(configured):
    event = tools_call(
        arguments={"_actor": USER_SUB}, headers={"X-Actor-Token": token(configured.issuer, key=ROGUE_KEY)}
    )
    assert "invalid token signature" in refusal(interceptor.handler(event, None))


def test_the_request_event_is_not_modified_in_place(configured):
    event = tools_call(arguments={"_actor": "forged"}, headers={"X-Actor-Token": token(configured.issuer)})
    before = json.dumps(event, sort_keys=True)
    interceptor.handler(event, None)
    assert json.dumps(event, sort_keys=True) == before


@pytest.mark.parametrize("params", [None, "x", {"arguments": {}}, {"name": 5}])
def test_malformed_tools_call_params_are_refused(configured, params):
    event = tools_call(headers={"X-Actor-Token": token(configured.issuer)})
    event["mcp"]["gatewayRequest"]["body"]["params"] = params
    if params is None:
        del event["mcp"]["gatewayRequest"]["body"]["params"]
    assert refusal(interceptor.handler(event, None)).startswith("unauthorized: malformed tools/call")


# --- malformed events: a clear error naming the field, never a silent pass ---------------------------


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda e: e.pop("interceptorInputVersion"), "interceptorInputVersion"),
        (lambda e: e.update(interceptorInputVersion="2.0"), "interceptorInputVersion"),
        (lambda e: e.pop("mcp"), "mcp"),
        (lambda e: e.update(mcp=[]), "mcp"),
        (lambda e: e["mcp"].pop("gatewayRequest"), "mcp: has neither"),
        (lambda e: e["mcp"].update(gatewayRequest="x"), "mcp.gatewayRequest"),
        (lambda e: e["mcp"]["gatewayRequest"].pop("body"), "mcp.gatewayRequest.body"),
        (
            lambda e: e["mcp"]["gatewayRequest"].update(body='{"method": "tools/call"}'),
            "mcp.gatewayRequest.body",
        ),
        (
            lambda e: e["mcp"]["gatewayRequest"].update(body=[{"method": "tools/call"}]),
            "mcp.gatewayRequest.body",
        ),
        (
            lambda e: e["mcp"]["gatewayRequest"].update(headers=["X-Actor-Token"]),
            "mcp.gatewayRequest.headers",
        ),
        (
            lambda e: e["mcp"]["gatewayRequest"].update(headers="X-Actor-Token: x"),
            "mcp.gatewayRequest.headers",
        ),
        (lambda e: e["mcp"].update(gatewayResponse=None), "mcp.gatewayResponse"),
        (lambda e: e["mcp"].update(gatewayResponse={"body": {}}), "mcp.gatewayResponse.statusCode"),
        (lambda e: e["mcp"].update(gatewayResponse={"statusCode": "200", "body": {}}), "statusCode"),
        (
            lambda e: e["mcp"].update(gatewayResponse={"statusCode": 200, "body": 5}),
            "mcp.gatewayResponse.body",
        ),
    ],
)
def test_malformed_events_raise_a_clear_error(configured, mutate, field):
    event = tools_call(headers={"X-Actor-Token": token(configured.issuer)})
    mutate(event)
    with pytest.raises(interceptor.InterceptorEventError, match=field):
        interceptor.handler(event, None)


@pytest.mark.parametrize("headers", [["X-Actor-Token"], "X-Actor-Token: x", 5])
def test_headers_that_are_not_an_object_name_the_field(configured, headers):
    event = tools_call(headers={"X-Actor-Token": token(configured.issuer)})
    event["mcp"]["gatewayRequest"]["headers"] = headers
    with pytest.raises(interceptor.InterceptorEventError) as raised:
        interceptor.handler(event, None)
    kind = type(headers).__name__
    assert str(raised.value) == f"mcp.gatewayRequest.headers: must be a JSON object (got a {kind})"


def test_a_non_object_event_raises_a_clear_error():
    with pytest.raises(interceptor.InterceptorEventError, match="event"):
        interceptor.handler(["not", "an", "event"], None)  # type: ignore[arg-type]


# --- RESPONSE: the identity argument never leaves the gateway ---------------------------------------


def gateway_tool(spec):
    """A tool as the gateway lists it (target prefix, the published gateway schema)."""
    return {
        "name": f"{TARGET_NAMES[spec.target]}___{spec.name}",
        "description": spec.description,
        "inputSchema": spec.gateway_input_schema,
    }


def response_event(request_body, response_body, status=200, headers=None):
    """A RESPONSE interceptor input as documented: the request and the target's response."""
    event = request_event(request_body)
    event["mcp"]["gatewayResponse"] = {
        "statusCode": status,
        "headers": headers if headers is not None else {"Content-Type": "application/json"},
        "body": response_body,
    }
    return event


def transformed(output):
    mcp = assert_documented_output(output)
    assert "transformedGatewayRequest" not in mcp
    return mcp["transformedGatewayResponse"]


LIST_REQUEST = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}


def test_tools_list_response_loses_the_identity_argument_and_keeps_everything_else():
    tools = [gateway_tool(s) for s in specs.TOOL_SPECS]
    assert "_actor" in json.dumps(tools)  # the gateway's listing carries it ...
    body: dict[str, Any] = {"jsonrpc": "2.0", "id": 1, "result": {"tools": tools}}
    response = transformed(interceptor.handler(response_event(LIST_REQUEST, body), None))
    assert "_actor" not in json.dumps(response)  # ... the client's does not
    listed = {t["name"]: t for t in response["body"]["result"]["tools"]}
    for spec in specs.TOOL_SPECS:
        tool = listed[f"{TARGET_NAMES[spec.target]}___{spec.name}"]
        assert tool["inputSchema"] == spec.input_schema  # the public schema, exactly
        assert tool["description"] == spec.description
    assert response["statusCode"] == 200
    assert response["headers"] == {"Content-Type": "application/json"}
    assert (
        body["result"]["tools"][0]["inputSchema"] == specs.TOOL_SPECS[0].gateway_input_schema
    )  # not mutated


def test_every_page_of_a_paginated_listing_is_cleaned():
    request = {"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {"cursor": "c1"}}
    page = {
        "jsonrpc": "2.0",
        "id": 2,
        "result": {"tools": [gateway_tool(specs.spec("get_ticket"))], "nextCursor": "c2"},
    }
    response = transformed(interceptor.handler(response_event(request, page), None))
    assert response["body"]["result"]["nextCursor"] == "c2"
    assert response["body"]["result"]["tools"][0]["inputSchema"] == specs.spec("get_ticket").input_schema


def test_an_identity_argument_listed_as_required_is_removed_too():
    tool = gateway_tool(specs.spec("get_ticket"))
    tool["inputSchema"] = {**tool["inputSchema"], "required": ["ticket_id", "_actor"]}
    body = {"jsonrpc": "2.0", "id": 1, "result": {"tools": [tool]}}
    schema = transformed(interceptor.handler(response_event(LIST_REQUEST, body), None))["body"]["result"][
        "tools"
    ][0]["inputSchema"]
    assert schema["required"] == ["ticket_id"] and "_actor" not in schema["properties"]


def test_semantic_search_results_are_cleaned_in_structured_and_text_content():
    """The gateway's built-in `x_amz_bedrock_agentcore_search` tool answers a tools/call with tool
    definitions (https://docs.aws.amazon.com/bedrock-agentcore/latest/devguide/gateway-using-mcp-semantic-search.html)."""
    found = [gateway_tool(specs.spec("create_ticket"))]
    request = {
        "jsonrpc": "2.0",
        "id": 5,
        "method": "tools/call",
        "params": {"name": "x_amz_bedrock_agentcore_search", "arguments": {"query": "open a ticket"}},
    }
    body = {
        "jsonrpc": "2.0",
        "id": 5,
        "result": {
            "structuredContent": {"tools": found},
            "content": [{"type": "text", "text": json.dumps({"tools": found})}],
            "isError": False,
        },
    }
    response = transformed(interceptor.handler(response_event(request, body), None))
    assert "_actor" not in json.dumps(response)
    result = response["body"]["result"]
    assert result["structuredContent"]["tools"][0]["inputSchema"] == specs.spec("create_ticket").input_schema
    assert (
        json.loads(result["content"][0]["text"])["tools"][0]["inputSchema"]
        == specs.spec("create_ticket").input_schema
    )


def test_a_body_delivered_as_a_json_string_is_cleaned_and_stays_a_string():
    body = json.dumps(
        {"jsonrpc": "2.0", "id": 1, "result": {"tools": [gateway_tool(specs.spec("list_tickets"))]}}
    )
    response = transformed(interceptor.handler(response_event(LIST_REQUEST, body), None))
    assert isinstance(response["body"], str) and "_actor" not in response["body"]


def test_a_non_json_string_body_that_mentions_the_identity_fails_closed():
    with pytest.raises(interceptor.InterceptorEventError, match="not JSON"):
        interceptor.handler(response_event(LIST_REQUEST, 'event: message\ndata: {"_actor": 1'), None)


@pytest.mark.parametrize(
    ("request_body", "response_body", "status"),
    [
        (
            {"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": "tickets___list_tickets"}},
            {
                "jsonrpc": "2.0",
                "id": 7,
                "result": {"content": [{"type": "text", "text": '{"tickets": [], "count": 0}'}]},
            },
            200,
        ),
        (
            {"jsonrpc": "2.0", "id": 3, "method": "initialize"},
            {
                "jsonrpc": "2.0",
                "id": 3,
                "result": {"protocolVersion": "2025-06-18", "capabilities": {"tools": {}}},
            },
            200,
        ),
        (LIST_REQUEST, {"jsonrpc": "2.0", "id": 1, "error": {"code": -32603, "message": "boom"}}, 500),
        ({"jsonrpc": "2.0", "method": "notifications/initialized"}, None, 202),
        ({"jsonrpc": "2.0", "method": "notifications/initialized"}, "", 202),
    ],
)
def test_other_responses_pass_through_unchanged(request_body, response_body, status):
    headers = {"Content-Type": "application/json", "Mcp-Session-Id": "s-1"}
    response = transformed(
        interceptor.handler(response_event(request_body, response_body, status, headers), None)
    )
    assert response == {"statusCode": status, "headers": headers, "body": response_body}


def test_the_response_path_needs_no_token_or_settings(monkeypatch):
    for name in ("USER_POOL_ISSUER", "ACTOR_CLIENT_IDS", "ACTOR_TARGETS"):
        monkeypatch.delenv(name, raising=False)
    body = {"jsonrpc": "2.0", "id": 1, "result": {"tools": [gateway_tool(specs.spec("get_ticket"))]}}
    assert "_actor" not in json.dumps(
        transformed(interceptor.handler(response_event(LIST_REQUEST, body), None))
    )


# --- the audit trail: each refusal and each replaced identity is a WARNING naming the tool (and reason) ---
# An operator alerts on these records (a forged identity or a rejected token is a security event), so
# their level, message and `extra` fields are part of the contract.

HANDLER_LOGGER = "functions.interceptor.handler"
AUDIT_FIELDS = ("tool", "reason", "tools")


def audit(caplog):
    """(level, message, the audit `extra` fields) of every interceptor record, in order."""
    return [
        (r.levelname, r.getMessage(), {k: getattr(r, k) for k in AUDIT_FIELDS if hasattr(r, k)})
        for r in caplog.records
        if r.name == HANDLER_LOGGER
    ]


@pytest.fixture
def log(caplog):
    caplog.set_level(logging.INFO, logger=HANDLER_LOGGER)
    return caplog


def test_a_call_without_a_token_is_audited(configured, log):
    output = interceptor.handler(tools_call(), None)
    assert refusal(output) == "unauthorized: the request carries no X-Actor-Token"
    assert audit(log) == [("WARNING", "tool call without an actor token", {"tool": "tickets___list_tickets"})]


def test_a_rejected_token_is_audited_with_its_reason(configured, log):
    expired = token(configured.issuer, exp=int(time.time()) - 120)
    output = interceptor.handler(tools_call(headers={"X-Actor-Token": expired}), None)
    assert refusal(output) == "unauthorized: actor token rejected (token has expired)"
    assert audit(log) == [
        (
            "WARNING",
            "actor token rejected",
            {"tool": "tickets___list_tickets", "reason": "token has expired"},
        )
    ]


@pytest.mark.parametrize("forged", ["someone-else", None, ""])
def test_a_replaced_identity_is_audited_even_when_the_call_succeeds(configured, log, forged):
    event = tools_call(
        tool="tickets___get_ticket",
        arguments={"ticket_id": "T-1", "_actor": forged},
        headers={"X-Actor-Token": token(configured.issuer)},
    )
    assert forwarded_arguments(interceptor.handler(event, None)) == {"ticket_id": "T-1", "_actor": USER_SUB}
    assert audit(log) == [
        ("WARNING", "caller-supplied identity argument replaced", {"tool": "tickets___get_ticket"})
    ]


def test_a_forged_identity_without_a_token_is_audited_twice(configured, log):
    refusal(interceptor.handler(tools_call(arguments={"_actor": USER_SUB}), None))
    assert [message for _, message, _ in audit(log)] == [
        "caller-supplied identity argument replaced",
        "tool call without an actor token",
    ]


def test_an_ordinary_call_leaves_no_audit_record(configured, log):
    event = tools_call(arguments={"status": "open"}, headers={"X-Actor-Token": token(configured.issuer)})
    forwarded_arguments(interceptor.handler(event, None))
    assert audit(log) == []


# --- each refusal's text and each malformed event's error is the caller's contract -----------------


def test_the_refusals_name_their_cause_exactly(configured):
    good = {"X-Actor-Token": token(configured.issuer)}
    event = tools_call(headers=good)
    event["mcp"]["gatewayRequest"]["body"]["params"]["arguments"] = "status=open"
    assert refusal(interceptor.handler(event, None)) == "unauthorized: tool arguments must be a JSON object"
    event = tools_call(headers=good)
    del event["mcp"]["gatewayRequest"]["body"]["params"]
    assert (
        refusal(interceptor.handler(event, None))
        == "unauthorized: malformed tools/call request (params.name)"
    )
    rogue = tools_call(headers={"X-Actor-Token": token(configured.issuer, key=ROGUE_KEY)})
    assert (
        refusal(interceptor.handler(rogue, None))
        == "unauthorized: actor token rejected (invalid token signature)"
    )


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (
            lambda e: e.pop("interceptorInputVersion"),
            "interceptorInputVersion: expected 1.x, got None (payload contract changed?)",
        ),
        (
            lambda e: e.update(interceptorInputVersion="2.0"),
            "interceptorInputVersion: expected 1.x, got '2.0' (payload contract changed?)",
        ),
        (lambda e: e.pop("mcp"), "mcp: must be a JSON object (got missing)"),
        (lambda e: e.update(mcp=[]), "mcp: must be a JSON object (got a list)"),
        (lambda e: e["mcp"].pop("gatewayRequest"), "mcp: has neither gatewayRequest nor gatewayResponse"),
        (
            lambda e: e["mcp"].update(gatewayRequest="x"),
            "mcp.gatewayRequest: must be a JSON object (got a str)",
        ),
        (
            lambda e: e["mcp"]["gatewayRequest"].pop("body"),
            "mcp.gatewayRequest.body: must be a JSON object (got missing)",
        ),
        (
            lambda e: e["mcp"]["gatewayRequest"].update(body='{"method": "tools/call"}'),
            "mcp.gatewayRequest.body: must be a JSON object (got a str)",
        ),
        (
            lambda e: e["mcp"].update(gatewayResponse=None),
            "mcp.gatewayResponse: must be a JSON object (got missing)",
        ),
        (
            lambda e: e["mcp"].update(gatewayResponse={"statusCode": True, "body": {}}),
            "mcp.gatewayResponse.statusCode: must be an integer HTTP status",
        ),
        (
            lambda e: e["mcp"].update(gatewayResponse={"statusCode": 200, "body": 5}),
            "mcp.gatewayResponse.body: must be a JSON object",
        ),
        (
            lambda e: e["mcp"].update(gatewayResponse={"statusCode": 200, "body": 'data: {"_actor": 1'}),
            "mcp.gatewayResponse.body: not JSON, so the identity argument cannot be removed",
        ),
    ],
)
def test_malformed_events_name_the_field_exactly(configured, mutate, message):
    event = tools_call(headers={"X-Actor-Token": token(configured.issuer)})
    mutate(event)
    with pytest.raises(interceptor.InterceptorEventError) as error:
        interceptor.handler(event, None)
    assert str(error.value) == message


def test_a_non_object_event_is_named_exactly():
    with pytest.raises(interceptor.InterceptorEventError) as error:
        interceptor.handler("not an event", None)  # type: ignore[arg-type]
    assert str(error.value) == "event: must be a JSON object"


# --- which tools receive the identity: the `<target>___<tool>` prefix against ACTOR_TARGETS ---------


def test_every_listed_actor_target_receives_the_identity(configured, monkeypatch):
    monkeypatch.setenv("ACTOR_TARGETS", " web-search, tickets ,")
    for tool in ("web-search___web_search", "tickets___list_tickets"):
        event = tools_call(tool=tool, headers={"X-Actor-Token": token(configured.issuer)})
        assert forwarded_arguments(interceptor.handler(event, None)) == {"_actor": USER_SUB}, tool
    event = tools_call(
        tool="knowledge___search_knowledge_base", headers={"X-Actor-Token": token(configured.issuer)}
    )
    assert forwarded_arguments(interceptor.handler(event, None)) == {}


def test_the_target_is_the_part_before_the_first_separator(configured):
    event = tools_call(tool="tickets___bulk___close", headers={"X-Actor-Token": token(configured.issuer)})
    assert forwarded_arguments(interceptor.handler(event, None)) == {"_actor": USER_SUB}


@pytest.mark.parametrize("tool", ["tickets", "x_amz_bedrock_agentcore_search"])
def test_a_tool_name_without_a_target_prefix_gets_no_identity(configured, tool):
    event = tools_call(
        tool=tool, arguments={"query": "q"}, headers={"X-Actor-Token": token(configured.issuer)}
    )
    assert forwarded_arguments(interceptor.handler(event, None)) == {"query": "q"}


@pytest.mark.parametrize("arguments", ["absent", None])
@pytest.mark.parametrize(
    ("tool", "expected"),
    [("tickets___list_tickets", {"_actor": USER_SUB}), ("web-search___web_search", {})],
)
def test_a_call_without_arguments_is_forwarded_with_an_arguments_object(
    configured, arguments, tool, expected
):
    event = tools_call(tool=tool, headers={"X-Actor-Token": token(configured.issuer)})
    params = event["mcp"]["gatewayRequest"]["body"]["params"]
    if arguments == "absent":
        del params["arguments"]
    else:
        params["arguments"] = arguments
    body = assert_documented_output(interceptor.handler(event, None))["transformedGatewayRequest"]["body"]
    assert body["params"] == {"name": tool, "arguments": expected}


# --- RESPONSE: what is rewritten, what is counted, what is left byte for byte -------------------------

IDENTITY_SPECS = [s for s in specs.TOOL_SPECS if s.needs_identity]


def cleaned(body):
    """The body the client receives for a tools/list answer `body`."""
    return transformed(interceptor.handler(response_event(LIST_REQUEST, body), None))["body"]


def removal_counts(caplog):
    return [
        fields["tools"]
        for level, message, fields in audit(caplog)
        if (level, message) == ("INFO", "identity argument removed from tool definitions")
    ]


def identity_tool(name="get_ticket"):
    return gateway_tool(specs.spec(name))


def public(name="get_ticket"):
    return specs.spec(name).input_schema


def test_the_number_of_cleaned_definitions_is_logged(log):
    tools = [gateway_tool(s) for s in specs.TOOL_SPECS]
    cleaned({"jsonrpc": "2.0", "id": 1, "result": {"tools": tools}})
    assert len(IDENTITY_SPECS) >= 2 and len(IDENTITY_SPECS) < len(specs.TOOL_SPECS)
    assert removal_counts(log) == [len(IDENTITY_SPECS)]
    assert [level for level, *_ in audit(log)] == ["INFO"]


def test_a_listing_without_identity_tools_is_untouched_and_not_logged(log):
    tools = [gateway_tool(s) for s in specs.TOOL_SPECS if not s.needs_identity]
    body = {"jsonrpc": "2.0", "id": 1, "result": {"tools": tools, "nextCursor": None}}
    assert cleaned(copy.deepcopy(body)) == body
    assert audit(log) == []


def test_a_json_string_body_is_rewritten_with_the_same_content(log):
    body = {"jsonrpc": "2.0", "id": 1, "result": {"tools": [identity_tool(), identity_tool("list_tickets")]}}
    text = cleaned(json.dumps(body))
    assert isinstance(text, str)
    assert json.loads(text) == {
        "jsonrpc": "2.0",
        "id": 1,
        "result": {
            "tools": [
                {**identity_tool(), "inputSchema": public()},
                {**identity_tool("list_tickets"), "inputSchema": public("list_tickets")},
            ]
        },
    }
    assert removal_counts(log) == [2]


@pytest.mark.parametrize(
    "body",
    [
        '{ "jsonrpc": "2.0",  "id": 1, "result": { "tools": [] } }',
        "event: message\ndata: {}\n\n",
        "   ",
        '{"jsonrpc": "2.0", "id": 1, "result": {"content": [{"type": "text", "text": "_actor is set for you"}]}}',
    ],
)
def test_a_string_body_with_nothing_to_remove_is_returned_byte_for_byte(log, body):
    assert cleaned(body) == body
    assert audit(log) == []


def definition_at_depth(levels, wrap):
    value = identity_tool()
    for _ in range(levels):
        value = wrap(value)
    return value


def unwrap(value, levels, key):
    for _ in range(levels):
        value = value[key]
    return value


@pytest.mark.parametrize(("wrap", "key"), [(lambda v: [v], 0), (lambda v: {"nested": v}, "nested")])
def test_definitions_are_cleaned_down_to_max_depth_and_deeper_ones_are_left_alone(log, wrap, key):
    deepest = interceptor.MAX_DEPTH
    body = definition_at_depth(deepest, wrap)
    assert unwrap(cleaned(body), deepest, key)["inputSchema"] == public()
    assert removal_counts(log) == [1]
    log.clear()
    too_deep = definition_at_depth(deepest + 1, wrap)
    assert cleaned(copy.deepcopy(too_deep)) == too_deep  # the walk is bounded: returned as is
    assert audit(log) == []


@pytest.mark.parametrize(
    ("levels", "expect_cleaned"), [(interceptor.MAX_DEPTH - 1, True), (interceptor.MAX_DEPTH, False)]
)
def test_json_text_counts_as_one_level_of_nesting(log, levels, expect_cleaned):
    # a text item at depth d holds its definition at depth d + 1
    item: Any = {"type": "text", "text": json.dumps(identity_tool())}
    for _ in range(levels):
        item = [item]
    text = unwrap(cleaned(item), levels, 0)["text"]
    assert (json.loads(text)["inputSchema"] == public()) is expect_cleaned
    assert removal_counts(log) == ([1] if expect_cleaned else [])


def test_a_rewritten_text_is_compact_json():
    body = {"content": [{"type": "text", "text": json.dumps({"tools": [identity_tool()]}, indent=2)}]}
    text = cleaned(body)["content"][0]["text"]
    assert text == json.dumps(
        {"tools": [{**identity_tool(), "inputSchema": public()}]}, separators=(",", ":")
    )


def test_a_text_that_mentions_the_identity_but_holds_no_definition_keeps_its_bytes(log):
    note = '{"note": "_actor is set by the gateway",  "n": 1}'
    definition = {**identity_tool(), "text": note}
    result = cleaned({"result": {"tools": [definition]}})["result"]["tools"][0]
    assert result["inputSchema"] == public()
    assert result["text"] == note
    assert removal_counts(log) == [1]


def test_only_text_fields_are_parsed_as_json_and_a_structured_text_is_walked(log):
    as_string = json.dumps(identity_tool())
    body = {"description": as_string, "text": {"tools": [identity_tool("list_tickets")]}}
    result = cleaned(copy.deepcopy(body))
    assert result["description"] == as_string  # a description is prose, never rewritten
    assert result["text"]["tools"][0]["inputSchema"] == public("list_tickets")
    assert removal_counts(log) == [1]


def test_every_definition_is_cleaned_and_counted_wherever_it_sits(log):
    body = {
        "structuredContent": {"tools": [identity_tool("get_ticket")]},
        "text": json.dumps({"tools": [identity_tool("list_tickets")]}),
        "more": {"tools": [identity_tool("create_ticket")]},
        "definition": {
            "name": "tickets___update_ticket_status",
            "inputSchema": specs.spec("update_ticket_status").gateway_input_schema,
            "related": [identity_tool("get_ticket")],
        },
    }
    result = cleaned(body)
    assert "_actor" not in json.dumps(result)
    assert result["structuredContent"]["tools"][0]["inputSchema"] == public("get_ticket")
    assert json.loads(result["text"])["tools"][0]["inputSchema"] == public("list_tickets")
    assert result["more"]["tools"][0]["inputSchema"] == public("create_ticket")
    assert result["definition"]["inputSchema"] == public("update_ticket_status")
    assert result["definition"]["related"][0]["inputSchema"] == public("get_ticket")
    assert removal_counts(log) == [5]


def test_a_definition_is_replaced_by_its_public_schema_whatever_its_schema_holds():
    schema = {**specs.spec("get_ticket").gateway_input_schema, "examples": [identity_tool("list_tickets")]}
    result = cleaned({"tools": [{"name": "tickets___get_ticket", "inputSchema": schema}]})
    published = result["tools"][0]["inputSchema"]
    assert "_actor" not in published["properties"]
    assert published["properties"] == public("get_ticket")["properties"]

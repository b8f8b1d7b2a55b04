"""The gateway interceptor at both interception points, with real RS256 tokens verified against a JWKS
served on loopback.

Events are built as the AgentCore Gateway documents them and every output is checked against the
documented output shape:
https://docs.aws.amazon.com/bedrock-agentcore/latest/devguide/gateway-interceptors-types.html
"""

from __future__ import annotations

import json
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
    return response["body"]["result"]["content"][0]["text"]


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
    assert refusal(interceptor.handler(event, None)).startswith("unauthorized:")


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"exp": int(time.time()) - 120}, "token has expired"),
        ({"iss": "https://cognito-idp.eu-central-1.amazonaws.com/eu-central-1_other"}, "issuer"),
        ({"client_id": OTHER_CLIENT}, "client"),
        ({"token_use": "id"}, "not an access token"),
        ({"exp": None}, "no expiry"),
        ({"nbf": int(time.time()) + 600}, "nbf is in the future"),
        ({"sub": None}, "no subject"),
    ],
)
def test_bad_claims_are_refused(configured, overrides, reason):
    event = tools_call(headers={"X-Actor-Token": token(configured.issuer, **overrides)})
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


def test_plain_http_jwks_is_refused_off_loopback():
    verifier = ActorTokenVerifier.create("http://cognito.example.com/pool", [BROWSER_CLIENT])
    with pytest.raises(TokenError, match=r"could not load|https"):
        verifier.verify(token("http://cognito.example.com/pool"))


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

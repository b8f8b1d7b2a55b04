"""The gateway REQUEST interceptor with real RS256 tokens verified against a JWKS served on loopback."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from functions.common import MissingSettingError
from functions.interceptor import handler as interceptor
from functions.interceptor.jwt_verify import ActorTokenVerifier, TokenError

BROWSER_CLIENT = "browserclient123"
EVAL_CLIENT = "evalclient456"
OTHER_CLIENT = "someotherclient789"
USER_SUB = "7c9e6679-7425-40de-944b-e07fc1f90ae7"


def new_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


SIGNING_KEY = new_key()
ROGUE_KEY = new_key()


class JwksServer:
    """A loopback HTTP server publishing `<issuer>/.well-known/jwks.json`; counts the fetches."""

    def __init__(self, keys):
        self.keys = keys
        self.fetches = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                server.fetches += 1
                if self.path != "/pool/.well-known/jwks.json":
                    self.send_error(404)
                    return
                body = json.dumps({"keys": server.keys}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.issuer = f"http://127.0.0.1:{self.httpd.server_address[1]}/pool"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


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


def tools_call(tool="tickets___list_tickets", arguments=None, headers=None):
    return {
        "interceptorInputVersion": "1.0",
        "mcp": {
            "gatewayRequest": {
                "path": "/mcp",
                "httpMethod": "POST",
                "headers": headers if headers is not None else {},
                "body": {
                    "jsonrpc": "2.0",
                    "id": 7,
                    "method": "tools/call",
                    "params": {"name": tool, "arguments": arguments if arguments is not None else {}},
                },
            }
        },
    }


def forwarded_arguments(output):
    assert output["interceptorOutputVersion"] == "1.0"
    assert "transformedGatewayResponse" not in output["mcp"]
    return output["mcp"]["transformedGatewayRequest"]["body"]["params"]["arguments"]


def refusal(output):
    response = output["mcp"]["transformedGatewayResponse"]
    assert "transformedGatewayRequest" not in output["mcp"]
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


def test_other_methods_pass_through_unchanged(configured):
    listing = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    event = {"interceptorInputVersion": "1.0", "mcp": {"gatewayRequest": {"headers": {}, "body": listing}}}
    assert interceptor.handler(event, None) == {
        "interceptorOutputVersion": "1.0",
        "mcp": {"transformedGatewayRequest": {"body": listing}},
    }


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

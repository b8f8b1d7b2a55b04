"""clients.oauth against a loopback stand-in of Cognito's OAuth endpoints (it stands in for AWS)."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest

from clients.oauth import (
    ClientCredentialsTokenSource,
    LoginExpired,
    OAuthClient,
    OAuthClientConfig,
    OAuthError,
    OAuthUnavailable,
    StateMismatch,
    Tokens,
    code_challenge,
    decode_claims,
    generate_code_verifier,
    verify_state,
)
from tests.clients.standins import CognitoStandIn

REDIRECT = "http://localhost:8501/"


@pytest.fixture(scope="module")
def idp():
    with CognitoStandIn() as server:
        yield server


@pytest.fixture
def browser_client(idp):
    config = OAuthClientConfig(
        domain_url=idp.url,
        client_id=idp.public_client_id,
        redirect_uri=REDIRECT,
        scopes=("openid", "email", "agentic-foundation/agent.invoke"),
    )
    return OAuthClient(config)


def _sign_in(idp, client):
    request = client.authorization_request()
    params = {k: v[0] for k, v in parse_qs(urlsplit(request.url).query).items()}
    callback = idp.authorize(params)
    returned = {k: v[0] for k, v in parse_qs(urlsplit(callback).query).items()}
    return request, returned


# --- PKCE and state -----------------------------------------------------------------------------


def test_code_challenge_matches_rfc7636_appendix_b_vector():
    assert (
        code_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk")
        == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    )


@pytest.mark.parametrize("length", [43, 64, 128])
def test_generated_verifiers_follow_rfc7636(length):
    verifier = generate_code_verifier(length)
    assert len(verifier) == length
    code_challenge(verifier)  # raises on a bad verifier


def test_verifiers_are_unique():
    assert len({generate_code_verifier() for _ in range(50)}) == 50


@pytest.mark.parametrize("bad", ["short", "x" * 129, "a" * 42 + "!"])
def test_bad_verifier_is_rejected(bad):
    with pytest.raises(ValueError, match="43-128"):
        code_challenge(bad)


def test_verifier_length_outside_rfc_is_rejected():
    with pytest.raises(ValueError, match="between 43 and 128"):
        generate_code_verifier(42)


@pytest.mark.parametrize(("expected", "received"), [("abc", "abd"), ("abc", None), (None, "abc"), ("", "")])
def test_state_mismatch_is_rejected(expected, received):
    with pytest.raises(StateMismatch):
        verify_state(expected, received)


def test_matching_state_passes():
    verify_state("same-state", "same-state")


def test_authorization_url_carries_pkce_and_state(browser_client, idp):
    request = browser_client.authorization_request()
    url = urlsplit(request.url)
    params = {k: v[0] for k, v in parse_qs(url.query).items()}
    assert f"{url.scheme}://{url.netloc}{url.path}" == f"{idp.url}/oauth2/authorize"
    assert params["response_type"] == "code"
    assert params["code_challenge_method"] == "S256"
    assert params["code_challenge"] == code_challenge(request.code_verifier)
    assert params["state"] == request.state
    assert params["redirect_uri"] == REDIRECT
    assert params["scope"] == "openid email agentic-foundation/agent.invoke"


def test_domain_must_be_https():
    with pytest.raises(ValueError, match="https"):
        OAuthClientConfig(domain_url="http://example.com", client_id="x")


# --- code exchange, refresh, revoke -------------------------------------------------------------


def test_code_exchange_returns_verifiable_tokens(idp, browser_client):
    request, returned = _sign_in(idp, browser_client)
    verify_state(request.state, returned["state"])
    tokens = browser_client.exchange_code(returned["code"], request.code_verifier)
    claims = jwt.decode(tokens.access_token, idp.public_key(), algorithms=["RS256"], issuer=idp.issuer)
    assert claims["client_id"] == idp.public_client_id
    assert tokens.refresh_token
    assert tokens.claims()["email"] == "alice@example.com"
    assert not tokens.expires_within(60)


def test_code_exchange_with_wrong_verifier_fails(idp, browser_client):
    _, returned = _sign_in(idp, browser_client)
    with pytest.raises(LoginExpired, match="PKCE"):
        browser_client.exchange_code(returned["code"], generate_code_verifier())


def test_code_works_only_once(idp, browser_client):
    request, returned = _sign_in(idp, browser_client)
    browser_client.exchange_code(returned["code"], request.code_verifier)
    with pytest.raises(LoginExpired):
        browser_client.exchange_code(returned["code"], request.code_verifier)


def test_refresh_keeps_the_refresh_token_and_renews_the_access_token(idp, browser_client):
    request, returned = _sign_in(idp, browser_client)
    tokens = browser_client.exchange_code(returned["code"], request.code_verifier)
    refreshed = browser_client.refresh(tokens)
    assert refreshed.refresh_token == tokens.refresh_token
    assert refreshed.access_token != tokens.access_token


def test_ensure_fresh_refreshes_only_near_expiry(idp, browser_client):
    request, returned = _sign_in(idp, browser_client)
    tokens = browser_client.exchange_code(returned["code"], request.code_verifier)
    assert browser_client.ensure_fresh(tokens) is tokens
    dying = Tokens(tokens.access_token, time.time() + 30, refresh_token=tokens.refresh_token)
    renewed = browser_client.ensure_fresh(dying)
    assert renewed.access_token != tokens.access_token
    assert not renewed.expires_within(60)


def test_expired_refresh_token_means_sign_in_again(idp, browser_client):
    request, returned = _sign_in(idp, browser_client)
    tokens = browser_client.exchange_code(returned["code"], request.code_verifier)
    idp.expire_refresh_tokens()
    expired = Tokens(tokens.access_token, time.time() - 1, refresh_token=tokens.refresh_token)
    with pytest.raises(LoginExpired):
        browser_client.ensure_fresh(expired)


def test_refresh_without_refresh_token_means_sign_in_again(browser_client):
    with pytest.raises(LoginExpired, match="sign in again"):
        browser_client.refresh(Tokens("a.b.c", time.time() - 1))


def test_revoke_invalidates_the_refresh_token(idp, browser_client):
    request, returned = _sign_in(idp, browser_client)
    tokens = browser_client.exchange_code(returned["code"], request.code_verifier)
    browser_client.revoke(tokens)
    assert tokens.refresh_token in idp.revoked
    with pytest.raises(LoginExpired):
        browser_client.refresh(tokens)


def test_logout_url_names_client_and_return_address(browser_client, idp):
    url = urlsplit(browser_client.logout_url(REDIRECT))
    assert url.path == "/logout"
    assert parse_qs(url.query) == {"client_id": [idp.public_client_id], "logout_uri": [REDIRECT]}


def test_unreachable_endpoint_is_reported_as_unavailable():
    client = OAuthClient(
        OAuthClientConfig(domain_url="http://127.0.0.1:9", client_id="x", redirect_uri=REDIRECT)
    )
    with pytest.raises(OAuthUnavailable, match="cannot reach"):
        client.exchange_code("code", generate_code_verifier())


def test_non_json_answer_is_reported_as_unavailable():
    transport = httpx.MockTransport(lambda request: httpx.Response(502, text="<html>bad gateway</html>"))
    config = OAuthClientConfig(domain_url="https://idp.example.com", client_id="x", redirect_uri=REDIRECT)
    client = OAuthClient(config, http=httpx.Client(transport=transport))
    with pytest.raises(OAuthUnavailable):
        client.exchange_code("code", generate_code_verifier())


# --- client credentials -------------------------------------------------------------------------


def test_client_credentials_sends_basic_auth_and_scope(idp):
    config = OAuthClientConfig.from_token_url(
        f"{idp.url}/oauth2/token", "m2m-client", "m2m-secret", ["agentic-foundation/agent.invoke"]
    )
    tokens = OAuthClient(config).client_credentials()
    assert decode_claims(tokens.access_token)["scope"] == "agentic-foundation/agent.invoke"
    assert idp.requests[-1]["client_id"] == "m2m-client"
    assert "client_id" not in idp.requests[-1]["form"]  # the secret travels in the header only


def test_client_credentials_with_wrong_secret_fails(idp):
    config = OAuthClientConfig.from_token_url(f"{idp.url}/oauth2/token", "m2m-client", "wrong")
    with pytest.raises(OAuthError, match="invalid_client"):
        OAuthClient(config).client_credentials()


def test_token_source_caches_until_near_expiry(idp):
    config = OAuthClientConfig.from_token_url(f"{idp.url}/oauth2/token", "m2m-client", "m2m-secret")
    source = ClientCredentialsTokenSource(OAuthClient(config), ["agentic-foundation/eval.run"])
    before = len(idp.requests)
    first, second = source.token(), source.token()
    assert first == second
    assert len(idp.requests) == before + 1


def test_token_source_renews_short_lived_tokens():
    with CognitoStandIn(access_ttl=30) as short:
        config = OAuthClientConfig.from_token_url(f"{short.url}/oauth2/token", "m2m-client", "m2m-secret")
        source = ClientCredentialsTokenSource(OAuthClient(config), min_ttl=60)
        source.token()
        source.token()
        assert len([r for r in short.requests if r["path"] == "/oauth2/token"]) == 2


def test_token_url_must_be_the_token_endpoint():
    with pytest.raises(ValueError, match="/oauth2/token"):
        OAuthClientConfig.from_token_url("https://idp.example.com/token", "x", "y")


def test_token_source_reads_the_m2m_secret_from_secrets_manager(idp, monkeypatch):
    boto3 = pytest.importorskip("boto3")
    from moto import mock_aws

    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        arn = boto3.client("secretsmanager").create_secret(
            Name="aaf/cognito/m2m-evaluation",
            SecretString='{"client_id": "m2m-client", "client_secret": "m2m-secret"}',
        )["ARN"]
        source = ClientCredentialsTokenSource.from_secret(
            arn, f"{idp.url}/oauth2/token", ["agentic-foundation/agent.invoke"]
        )
    assert decode_claims(source.token())["client_id"] == "m2m-client"

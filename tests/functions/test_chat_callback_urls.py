"""functions/chat_callback_urls against moto's Cognito: URLs merged in and out, other settings kept."""

from __future__ import annotations

import boto3
import pytest
from moto import mock_aws

from functions.chat_callback_urls.handler import MissingPropertyError, on_event

CHAT = "https://d111111abcdef8.cloudfront.net/"
LOCAL = "http://localhost:8501/"


@pytest.fixture
def cognito(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        yield boto3.client("cognito-idp")


@pytest.fixture
def client_ids(cognito):
    pool = cognito.create_user_pool(PoolName="users")["UserPool"]["Id"]
    client = cognito.create_user_pool_client(
        UserPoolId=pool,
        ClientName="aaf-browser",
        GenerateSecret=False,
        AllowedOAuthFlows=["code"],
        AllowedOAuthScopes=["openid", "email"],
        AllowedOAuthFlowsUserPoolClient=True,
        CallbackURLs=[LOCAL],
        LogoutURLs=[LOCAL],
        SupportedIdentityProviders=["COGNITO"],
        AccessTokenValidity=60,
        TokenValidityUnits={"AccessToken": "minutes"},
        EnableTokenRevocation=True,
        PreventUserExistenceErrors="ENABLED",
    )["UserPoolClient"]["ClientId"]
    return pool, client


def _event(kind, pool, client, urls=(CHAT,), old=None):
    event = {
        "RequestType": kind,
        "ResourceProperties": {
            "UserPoolId": pool,
            "ClientId": client,
            "CallbackUrls": list(urls),
            "LogoutUrls": list(urls),
        },
    }
    if old is not None:
        event["OldResourceProperties"] = {
            **event["ResourceProperties"],
            "CallbackUrls": old,
            "LogoutUrls": old,
        }
    return event


def _client(cognito, pool, client):
    return cognito.describe_user_pool_client(UserPoolId=pool, ClientId=client)["UserPoolClient"]


def test_create_adds_the_chat_url_and_keeps_everything_else(cognito, client_ids):
    pool, client = client_ids
    before = _client(cognito, pool, client)
    result = on_event(_event("Create", pool, client), None, cognito=cognito)
    after = _client(cognito, pool, client)
    assert after["CallbackURLs"] == [LOCAL, CHAT]
    assert after["LogoutURLs"] == [LOCAL, CHAT]
    for field in (
        "AllowedOAuthFlows",
        "AllowedOAuthScopes",
        "AccessTokenValidity",
        "ClientName",
        "SupportedIdentityProviders",
    ):
        assert after[field] == before[field], field
    assert result["PhysicalResourceId"] == f"{pool}/{client}/chat-urls"


def test_create_is_idempotent(cognito, client_ids):
    pool, client = client_ids
    on_event(_event("Create", pool, client), None, cognito=cognito)
    on_event(_event("Create", pool, client), None, cognito=cognito)
    assert _client(cognito, pool, client)["CallbackURLs"] == [LOCAL, CHAT]


def test_update_replaces_the_previous_distribution_url(cognito, client_ids):
    pool, client = client_ids
    on_event(_event("Create", pool, client), None, cognito=cognito)
    new = "https://d222222abcdef8.cloudfront.net/"
    on_event(_event("Update", pool, client, urls=[new], old=[CHAT]), None, cognito=cognito)
    assert _client(cognito, pool, client)["CallbackURLs"] == [LOCAL, new]


def test_delete_removes_only_the_chat_url(cognito, client_ids):
    pool, client = client_ids
    on_event(_event("Create", pool, client), None, cognito=cognito)
    on_event(_event("Delete", pool, client), None, cognito=cognito)
    assert _client(cognito, pool, client)["CallbackURLs"] == [LOCAL]


def test_delete_after_the_client_is_gone_succeeds(cognito, client_ids):
    pool, client = client_ids
    cognito.delete_user_pool_client(UserPoolId=pool, ClientId=client)
    assert on_event(_event("Delete", pool, client), None, cognito=cognito)["PhysicalResourceId"]


def test_create_for_a_missing_client_fails(cognito, client_ids):
    pool, _ = client_ids
    with pytest.raises(cognito.exceptions.ResourceNotFoundException):
        on_event(_event("Create", pool, "nope"), None, cognito=cognito)


@pytest.mark.parametrize(
    ("props", "message"),
    [
        ({"ClientId": "c", "CallbackUrls": [], "LogoutUrls": []}, "UserPoolId"),
        (
            {"UserPoolId": "p", "ClientId": "c", "CallbackUrls": "https://x/", "LogoutUrls": []},
            "list of URLs",
        ),
        ({"UserPoolId": "p", "ClientId": "c", "CallbackUrls": ["http://x/"], "LogoutUrls": []}, "https"),
    ],
)
def test_bad_properties_are_named(cognito, props, message):
    with pytest.raises(MissingPropertyError, match=message):
        on_event({"RequestType": "Create", "ResourceProperties": props}, None, cognito=cognito)

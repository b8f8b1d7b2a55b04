"""Custom-resource handler (CDK Provider `onEvent`): add the chat's CloudFront URL to a Cognito app client.

The browser client lives in the identity stack, which is deployed before the chat's CloudFront
distribution exists, so its callback and sign-out URLs cannot name the distribution without a
circular dependency. This handler reads the client, adds (Create/Update) or removes (Delete) the
given URLs, and writes every other setting back unchanged: `UpdateUserPoolClient` resets anything it
is not given, so a read-modify-write is the only safe update.

Resource properties: `UserPoolId`, `ClientId`, `CallbackUrls`, `LogoutUrls` (lists of strings).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import boto3

logger = logging.getLogger(__name__)
logger.setLevel(logging.INFO)

# Every field UpdateUserPoolClient accepts; describe's other fields (secret, dates) are dropped.
UPDATABLE_FIELDS = (
    "UserPoolId",
    "ClientId",
    "ClientName",
    "RefreshTokenValidity",
    "AccessTokenValidity",
    "IdTokenValidity",
    "TokenValidityUnits",
    "ReadAttributes",
    "WriteAttributes",
    "ExplicitAuthFlows",
    "SupportedIdentityProviders",
    "CallbackURLs",
    "LogoutURLs",
    "DefaultRedirectURI",
    "AllowedOAuthFlows",
    "AllowedOAuthScopes",
    "AllowedOAuthFlowsUserPoolClient",
    "AnalyticsConfiguration",
    "PreventUserExistenceErrors",
    "EnableTokenRevocation",
    "EnablePropagateAdditionalUserContextData",
    "AuthSessionValidity",
    "RefreshTokenRotation",
)


class MissingPropertyError(ValueError):
    """A resource property is missing or malformed; the message names it."""


def on_event(event: dict[str, Any], context: Any, *, cognito: Any = None) -> dict[str, Any]:
    """CloudFormation custom-resource event -> merged client URLs; returns the Provider's answer."""
    request_type = event.get("RequestType")
    if request_type not in ("Create", "Update", "Delete"):
        raise ValueError(f"unknown RequestType {request_type!r}")
    props = _properties(event.get("ResourceProperties") or {})
    client = cognito or boto3.client("cognito-idp")
    physical_id = f"{props['UserPoolId']}/{props['ClientId']}/chat-urls"
    old = _properties(event["OldResourceProperties"]) if request_type == "Update" else None

    try:
        current = client.describe_user_pool_client(UserPoolId=props["UserPoolId"], ClientId=props["ClientId"])
    except client.exceptions.ResourceNotFoundException:
        if request_type == "Delete":  # the client (or its pool) is already gone: nothing to remove
            logger.info("delete: client %s no longer exists", props["ClientId"])
            return {"PhysicalResourceId": event.get("PhysicalResourceId") or physical_id}
        raise
    settings = {k: v for k, v in current["UserPoolClient"].items() if k in UPDATABLE_FIELDS}
    for field, key in (("CallbackURLs", "CallbackUrls"), ("LogoutURLs", "LogoutUrls")):
        urls = list(settings.get(field) or [])
        if old is not None:  # an Update replaces the previous distribution's URLs
            urls = [u for u in urls if u not in old[key] or u in props[key]]
        if request_type == "Delete":
            urls = [u for u in urls if u not in props[key]]
        else:
            urls += [u for u in props[key] if u not in urls]
        if urls:
            settings[field] = urls
        else:
            settings.pop(field, None)
    if not settings.get("CallbackURLs"):
        # Cognito refuses code-flow clients without a callback URL; keep the last one rather than fail.
        settings["CallbackURLs"] = list(current["UserPoolClient"].get("CallbackURLs") or [])
    client.update_user_pool_client(**settings)
    logger.info(
        "%s: client %s now has callback URLs %s",
        request_type,
        props["ClientId"],
        settings.get("CallbackURLs"),
    )
    return {"PhysicalResourceId": physical_id}


def _properties(raw: dict[str, Any]) -> dict[str, Any]:
    props: dict[str, Any] = {}
    for name in ("UserPoolId", "ClientId"):
        value = raw.get(name)
        if not isinstance(value, str) or not value:
            raise MissingPropertyError(f"resource property {name} is missing")
        props[name] = value
    for name in ("CallbackUrls", "LogoutUrls"):
        props[name] = _urls(name, raw.get(name))
    return props


def _urls(name: str, value: Any) -> list[str]:
    if not isinstance(value, Sequence) or isinstance(value, str):
        raise MissingPropertyError(f"resource property {name} must be a list of URLs")
    urls = [str(u) for u in value]
    bad = [u for u in urls if not u.startswith("https://")]
    if bad:
        raise MissingPropertyError(f"resource property {name}: {bad[0]!r} must use https://")
    return urls

"""Identity stack: password policy, MFA by profile, clients and their flows, scopes, teams, secrets."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Match, Template

from stacks.identity import MACHINE_CLIENTS, RESOURCE_SERVER_ID, IdentityStack
from tests.factories import test_config
from tests.support.cdk import build_stack, resources_of


@pytest.fixture(scope="module")
def template() -> Template:
    return build_stack(IdentityStack, test_config("dev"))[1]


@pytest.fixture(scope="module")
def prod_template() -> Template:
    return build_stack(IdentityStack, test_config("prod"))[1]


def _client(template: Template, name: str) -> dict[str, Any]:
    for resource in resources_of(template, "AWS::Cognito::UserPoolClient").values():
        if resource["Properties"]["ClientName"] == f"aaf-{name}":
            return dict(resource["Properties"])
    raise AssertionError(f"no client aaf-{name}")


def test_password_policy_is_strong(template: Template) -> None:
    template.has_resource_properties(
        "AWS::Cognito::UserPool",
        {
            "Policies": {
                "PasswordPolicy": {
                    "MinimumLength": 14,
                    "RequireLowercase": True,
                    "RequireUppercase": True,
                    "RequireNumbers": True,
                    "RequireSymbols": True,
                }
            }
        },
    )


def test_self_sign_up_is_disabled(template: Template) -> None:
    template.has_resource_properties(
        "AWS::Cognito::UserPool", {"AdminCreateUserConfig": {"AllowAdminCreateUserOnly": True}}
    )


def test_dev_mfa_is_optional(template: Template) -> None:
    template.has_resource_properties("AWS::Cognito::UserPool", {"MfaConfiguration": "OPTIONAL"})


def test_prod_mfa_is_required(prod_template: Template) -> None:
    prod_template.has_resource_properties("AWS::Cognito::UserPool", {"MfaConfiguration": "ON"})


def test_prod_has_deletion_protection(prod_template: Template) -> None:
    prod_template.has_resource_properties("AWS::Cognito::UserPool", {"DeletionProtection": "ACTIVE"})


def test_prod_user_pool_is_retained(prod_template: Template) -> None:
    prod_template.has_resource("AWS::Cognito::UserPool", {"DeletionPolicy": "Retain"})


def test_managed_login_domain_uses_new_managed_login(template: Template) -> None:
    template.has_resource_properties("AWS::Cognito::UserPoolDomain", {"ManagedLoginVersion": 2})


def test_managed_login_branding_exists(template: Template) -> None:
    template.has_resource_properties("AWS::Cognito::ManagedLoginBranding", {"UseCognitoProvidedValues": True})


def test_resource_server_defines_scopes(template: Template) -> None:
    template.has_resource_properties(
        "AWS::Cognito::UserPoolResourceServer",
        {
            "Identifier": RESOURCE_SERVER_ID,
            "Scopes": Match.array_with(
                [
                    Match.object_like({"ScopeName": "agent.invoke"}),
                    Match.object_like({"ScopeName": "tools.invoke"}),
                    Match.object_like({"ScopeName": "eval.run"}),
                ]
            ),
        },
    )


def test_browser_client_uses_code_flow_without_secret(template: Template) -> None:
    client = _client(template, "browser")
    assert (client["AllowedOAuthFlows"], client["GenerateSecret"]) == (["code"], False)


def test_browser_client_callback_urls_come_from_config(template: Template) -> None:
    assert _client(template, "browser")["CallbackURLs"] == ["http://localhost:8501/"]


def test_browser_client_scopes_include_openid_and_agent_invoke(template: Template) -> None:
    scopes = json.dumps(_client(template, "browser")["AllowedOAuthScopes"])
    assert "openid" in scopes and "agent.invoke" in scopes


@pytest.mark.parametrize("name", MACHINE_CLIENTS)
def test_machine_clients_use_client_credentials_with_secret(template: Template, name: str) -> None:
    client = _client(template, f"m2m-{name}")
    assert (client["AllowedOAuthFlows"], client["GenerateSecret"]) == (["client_credentials"], True)


def test_gateway_client_may_only_invoke_tools(template: Template) -> None:
    scopes = json.dumps(_client(template, "m2m-gateway")["AllowedOAuthScopes"])
    assert "tools.invoke" in scopes and "agent.invoke" not in scopes


def test_team_groups_from_config(template: Template) -> None:
    names = sorted(
        g["Properties"]["GroupName"] for g in resources_of(template, "AWS::Cognito::UserPoolGroup").values()
    )
    assert names == ["platform", "support"]


def test_machine_client_secrets_are_in_secrets_manager(template: Template) -> None:
    names = sorted(
        s["Properties"]["Name"] for s in resources_of(template, "AWS::SecretsManager::Secret").values()
    )
    assert names == [f"aaf/cognito/m2m-{n}" for n in sorted(MACHINE_CLIENTS)]


def test_client_secret_is_never_an_output(template: Template) -> None:
    outputs = json.dumps(template.to_json().get("Outputs", {}))
    assert "ClientSecret" not in outputs and "SecretString" not in outputs

"""Identity stack: password policy, MFA by profile, clients and their flows, scopes, teams, secrets, and the
browser client's callback and sign-out URLs owned by CloudFormation in the whole app."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Match, Template

from scripts.synth_summary import stack_templates
from stacks.compliance import read_validation_report
from stacks.identity import MACHINE_CLIENTS, RESOURCE_SERVER_ID, IdentityStack
from tests.conftest import synth_app
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


# --- the browser client's URLs in the whole app (issue 11, defect 6) -----------------------------------
# The chat's CloudFront URL used to be added to the browser client by a custom resource in the frontend
# stack, outside CloudFormation; the next CloudFormation update of the client reset its URLs to the
# template's and broke sign-in. Now the identity template itself names the edge stack's distribution.


def _app_templates(assembly: Path) -> dict[str, dict[str, Any]]:
    return {name: json.loads(path.read_text()) for name, path in stack_templates(assembly).items()}


def _browser_client_in(templates: dict[str, dict[str, Any]]) -> dict[str, Any]:
    (client,) = [
        r["Properties"]
        for r in templates["aaf-identity"]["Resources"].values()
        if r["Type"] == "AWS::Cognito::UserPoolClient" and r["Properties"]["ClientName"] == "aaf-browser"
    ]
    return dict(client)


def _export_value(templates: dict[str, dict[str, Any]], export_name: str) -> Any:
    for template in templates.values():
        for output in template.get("Outputs", {}).values():
            if output.get("Export", {}).get("Name") == export_name:
                return output["Value"]
    raise AssertionError(f"no stack exports {export_name}")


@pytest.mark.parametrize("field", ["CallbackURLs", "LogoutURLs"])
def test_browser_client_urls_name_the_chat_distribution(dev_assembly: Path, field: str) -> None:
    templates = _app_templates(dev_assembly)
    assert "aaf-edge" in templates, "the chat's entry (CloudFront) must be a stack deployed before identity"
    configured, chat = _browser_client_in(templates)[field]
    assert configured == "http://localhost:8501/"  # identity.callback_urls / logout_urls, unchanged
    prefix, domain, suffix = chat["Fn::Join"][1]
    assert (prefix, suffix) == ("https://", "/")  # Cognito requires https except for http://localhost
    export = domain["Fn::ImportValue"]
    assert export.startswith("aaf-edge:")
    (distribution,) = [
        k
        for k, r in templates["aaf-edge"]["Resources"].items()
        if r["Type"] == "AWS::CloudFront::Distribution"
    ]
    assert _export_value(templates, export) == {"Fn::GetAtt": [distribution, "DomainName"]}


def _actions(statement: dict[str, Any]) -> list[str]:
    actions = statement.get("Action", [])
    return [actions] if isinstance(actions, str) else list(actions)


def test_nothing_outside_cloudformation_edits_the_browser_client(dev_assembly: Path) -> None:
    templates = _app_templates(dev_assembly)
    (browser_id,) = [
        k
        for k, r in templates["aaf-identity"]["Resources"].items()
        if r["Type"] == "AWS::Cognito::UserPoolClient" and r["Properties"]["ClientName"] == "aaf-browser"
    ]
    clients, editors = [], []
    for stack, template in templates.items():
        for logical_id, resource in template["Resources"].items():
            kind, properties = resource["Type"], json.dumps(resource.get("Properties", {}))
            if kind == "AWS::Cognito::UserPoolClient":
                clients.append(stack)
            # a custom resource that names the browser client (by Ref or through an export of its id) or
            # that calls UpdateUserPoolClient (CDK's DescribeUserPoolClient readers of machine secrets are fine)
            if kind.startswith("Custom::") and (
                browser_id in properties or "updateuserpoolclient" in properties.lower()
            ):
                editors.append(f"{stack}/{logical_id}")
            if kind == "AWS::IAM::Policy":
                for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
                    if {"cognito-idp:UpdateUserPoolClient", "cognito-idp:*", "*"} & set(_actions(statement)):
                        editors.append(f"{stack}/{logical_id}")
    assert set(clients) == {"aaf-identity"}
    assert editors == []


def test_without_the_chat_the_browser_client_keeps_only_the_configured_urls(tmp_path: Path) -> None:
    synth_app(test_config("dev", components={"frontend": False}), tmp_path)  # every gate, like `make synth`
    assert read_validation_report(tmp_path).unacknowledged == ()
    templates = _app_templates(tmp_path)
    assert "aaf-edge" not in templates and "aaf-frontend" not in templates
    assert {"aaf-network", "aaf-identity", "aaf-agentcore", "aaf-operations"} <= set(templates)
    client = _browser_client_in(templates)
    assert client["CallbackURLs"] == client["LogoutURLs"] == ["http://localhost:8501/"]

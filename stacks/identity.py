"""Identity: the Cognito user pool, managed login, scopes, app clients and team groups."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_cognito as cognito
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from config import AppConfig
from stacks.base import FoundationStack
from stacks.compliance import acknowledge, acknowledge_all, acknowledge_cdk_helpers
from stacks.constructs.secret import acknowledge_no_rotation
from stacks.edge import ChatEdge

RESOURCE_SERVER_ID = "agentic-foundation"
MACHINE_CLIENTS = ("gateway", "ci", "evaluation")


@dataclass(frozen=True)
class MachineClient:
    """A client-credentials app client and the secret holding its id and secret."""

    client: cognito.UserPoolClient
    secret: secretsmanager.ISecret


class IdentityStack(FoundationStack):
    """Users sign in through managed login (code + PKCE); machines use client credentials."""

    component = "identity"
    description_text = "identity (Cognito users, clients, scopes, teams)"

    def __init__(
        self, scope: Construct, *, config: AppConfig, chat: ChatEdge | None = None, **kwargs: Any
    ) -> None:
        """`chat`: the deployed chat's public entry (edge stack), or None when the chat is not deployed
        (`components.frontend=false`): then the browser client has only the configured URLs."""
        super().__init__(scope, config=config, **kwargs)
        self._chat = chat
        self.user_pool = self._create_user_pool()
        self.domain = self._create_managed_login_domain()
        self.resource_server, self.scopes = self._create_resource_server()
        self.browser_client = self._create_browser_client()
        self.machine_clients = self._create_machine_clients()
        self._create_team_groups()
        self._create_outputs()
        self._acknowledge_findings()

    def _create_user_pool(self) -> cognito.UserPool:
        identity = self.config.identity
        mfa = {
            "off": cognito.Mfa.OFF,
            "optional": cognito.Mfa.OPTIONAL,
            "required": cognito.Mfa.REQUIRED,
        }[identity.mfa]
        return cognito.UserPool(
            self,
            "UserPool",
            user_pool_name=self.resource_name("users"),
            self_sign_up_enabled=identity.self_sign_up,
            sign_in_aliases=cognito.SignInAliases(email=True),
            auto_verify=cognito.AutoVerifiedAttrs(email=True),
            standard_attributes=cognito.StandardAttributes(
                email=cognito.StandardAttribute(required=True, mutable=True)
            ),
            mfa=mfa,
            mfa_second_factor=cognito.MfaSecondFactor(otp=True, sms=False)
            if mfa != cognito.Mfa.OFF
            else None,
            password_policy=cognito.PasswordPolicy(
                min_length=14,
                require_lowercase=True,
                require_uppercase=True,
                require_digits=True,
                require_symbols=True,
                temp_password_validity=cdk.Duration.days(3),
            ),
            account_recovery=cognito.AccountRecovery.EMAIL_ONLY,
            feature_plan=cognito.FeaturePlan.ESSENTIALS,
            deletion_protection=identity.deletion_protection,
            removal_policy=self.removal_policy,
            user_invitation=cognito.UserInvitationConfig(
                email_subject="Your Agentic AI Foundation account",
                email_body="Hello {username}, your temporary password is {####}. "
                "You will choose a new one at first sign-in.",
            ),
        )

    def _create_managed_login_domain(self) -> cognito.UserPoolDomain:
        prefix = self.config.identity.domain_prefix or f"{self.config.prefix}-{self.account}"
        domain = self.user_pool.add_domain(
            "ManagedLogin",
            cognito_domain=cognito.CognitoDomainOptions(domain_prefix=prefix),
            managed_login_version=cognito.ManagedLoginVersion.NEWER_MANAGED_LOGIN,
        )
        return domain

    def _create_resource_server(
        self,
    ) -> tuple[cognito.UserPoolResourceServer, dict[str, cognito.OAuthScope]]:
        scope_names = {
            "agent.invoke": "Invoke the agent runtime",
            "tools.invoke": "Call tools on the AgentCore tool gateway",
            "eval.run": "Run evaluations against the agent",
        }
        resource_scopes = [
            cognito.ResourceServerScope(scope_name=n, scope_description=d) for n, d in scope_names.items()
        ]
        server = self.user_pool.add_resource_server(
            "ResourceServer",
            identifier=RESOURCE_SERVER_ID,
            user_pool_resource_server_name=self.resource_name("api"),
            scopes=resource_scopes,
        )
        scopes = {s.scope_name: cognito.OAuthScope.resource_server(server, s) for s in resource_scopes}
        return server, scopes

    @property
    def browser_callback_urls(self) -> list[str]:
        """The browser client's callback URLs: the configured ones, then the deployed chat's.

        CloudFormation owns all of them: the chat's CloudFront URL is a reference to the edge stack's
        distribution, so an update of this stack can never drop it (nothing outside CloudFormation edits
        the client). Cognito accepts only https URLs, or http://localhost for testing
        (https://docs.aws.amazon.com/cognito-user-identity-pools/latest/APIReference/API_CreateUserPoolClient.html);
        the config validates ours and the chat's is https by construction.
        """
        urls = list(self.config.identity.callback_urls)
        if self._chat is not None:
            urls.append(self._chat.url)
        return urls

    @property
    def browser_logout_urls(self) -> list[str]:
        """The browser client's sign-out URLs: the configured ones, then the deployed chat's. Cognito's
        `/logout` redirects to `logout_uri` only if it is one of them
        (https://docs.aws.amazon.com/cognito/latest/developerguide/logout-endpoint.html)."""
        urls = list(self.config.identity.logout_urls)
        if self._chat is not None:
            urls.append(self._chat.url)
        return urls

    def _create_browser_client(self) -> cognito.UserPoolClient:
        identity = self.config.identity
        client = self.user_pool.add_client(
            "BrowserClient",
            user_pool_client_name=self.resource_name("browser"),
            generate_secret=False,
            auth_flows=cognito.AuthFlow(user_srp=True),
            o_auth=cognito.OAuthSettings(
                flows=cognito.OAuthFlows(authorization_code_grant=True),
                scopes=[
                    cognito.OAuthScope.OPENID,
                    cognito.OAuthScope.EMAIL,
                    cognito.OAuthScope.PROFILE,
                    self.scopes["agent.invoke"],
                ],
                callback_urls=self.browser_callback_urls,
                logout_urls=self.browser_logout_urls,
            ),
            supported_identity_providers=[cognito.UserPoolClientIdentityProvider.COGNITO],
            prevent_user_existence_errors=True,
            enable_token_revocation=True,
            access_token_validity=cdk.Duration.minutes(identity.access_token_minutes),
            id_token_validity=cdk.Duration.minutes(identity.access_token_minutes),
            refresh_token_validity=cdk.Duration.days(identity.refresh_token_days),
        )
        cognito.CfnManagedLoginBranding(
            self,
            "ManagedLoginBranding",
            user_pool_id=self.user_pool.user_pool_id,
            client_id=client.user_pool_client_id,
            use_cognito_provided_values=True,
        )
        return client

    def _create_machine_clients(self) -> dict[str, MachineClient]:
        scopes_by_client = {
            "gateway": [self.scopes["tools.invoke"]],
            "ci": [self.scopes["agent.invoke"], self.scopes["eval.run"]],
            "evaluation": [self.scopes["agent.invoke"], self.scopes["eval.run"]],
        }
        clients: dict[str, MachineClient] = {}
        for name in MACHINE_CLIENTS:
            client = self.user_pool.add_client(
                f"{name.capitalize()}MachineClient",
                user_pool_client_name=self.resource_name(f"m2m-{name}"),
                generate_secret=True,
                o_auth=cognito.OAuthSettings(
                    flows=cognito.OAuthFlows(client_credentials=True), scopes=scopes_by_client[name]
                ),
                access_token_validity=cdk.Duration.minutes(60),
                enable_token_revocation=True,
                prevent_user_existence_errors=True,
            )
            # The client secret is read by CloudFormation at deploy time and stored only in Secrets Manager.
            secret = secretsmanager.Secret(
                self,
                f"{name.capitalize()}MachineClientSecret",
                secret_name=f"{self.config.prefix}/cognito/m2m-{name}",
                description=f"Client credentials of the {name} machine client",
                secret_object_value={
                    "client_id": cdk.SecretValue.unsafe_plain_text(client.user_pool_client_id),
                    "client_secret": client.user_pool_client_secret,
                },
                removal_policy=cdk.RemovalPolicy.DESTROY,
            )
            clients[name] = MachineClient(client=client, secret=secret)
        return clients

    def _create_team_groups(self) -> None:
        for precedence, team in enumerate(self.config.identity.teams):
            cognito.CfnUserPoolGroup(
                self,
                f"Team{team.title().replace('-', '')}",
                user_pool_id=self.user_pool.user_pool_id,
                group_name=team,
                description=f"Members of the {team} team (cost attribution in the LLM gateway)",
                precedence=precedence,
            )

    def _create_outputs(self) -> None:
        cdk.CfnOutput(self, "UserPoolId", value=self.user_pool.user_pool_id)
        cdk.CfnOutput(self, "BrowserClientId", value=self.browser_client.user_pool_client_id)
        cdk.CfnOutput(self, "ManagedLoginUrl", value=self.domain.base_url())

    @property
    def discovery_url(self) -> str:
        """The OIDC discovery URL JWT authorizers validate tokens against."""
        return (
            f"https://cognito-idp.{self.region}.amazonaws.com/{self.user_pool.user_pool_id}"
            "/.well-known/openid-configuration"
        )

    @property
    def token_endpoint(self) -> str:
        """The OAuth token endpoint of the managed login domain."""
        return f"{self.domain.base_url()}/oauth2/token"

    def _acknowledge_findings(self) -> None:
        acknowledge_cdk_helpers(self)
        acknowledge_all(
            self.user_pool,
            {
                "AwsSolutions-COG3": "Threat protection (advanced security) requires the Cognito Plus plan; "
                "it is a per-account cost decision documented in the README and off by default.",
                "AwsSolutions-COG8": "The Plus feature plan costs per monthly active user; Essentials covers "
                "managed login, MFA and client credentials, which is all this foundation uses.",
            },
        )
        if self.config.identity.mfa != "required":
            acknowledge(
                self.user_pool,
                "AwsSolutions-COG2",
                "MFA is optional in the dev profile so throwaway test users can sign in; the prod profile "
                "requires it.",
            )
        for machine in self.machine_clients.values():
            acknowledge_no_rotation(
                None,
                machine.secret,
                "The secret mirrors a Cognito client secret, which Cognito cannot rotate in place; rotation is "
                "a new client plus a redeploy (documented in the README).",
            )
            acknowledge(
                machine.secret,
                "NIST.800.53.R5-SecretsManagerUsingKMSKey",
                "The AWS managed key is enough for a client secret that is read only by roles in this account.",
            )

"""Guardrails: the Bedrock guardrail applied to agent input and output, and its published version.

Consumers (LLM gateway, agent runtime) reference `published_version`, never DRAFT. The version's
description embeds a hash of the policy, so a policy change replaces the version resource and
CloudFormation publishes a new immutable version in the same deployment that updates the DRAFT.
"""

from __future__ import annotations

import hashlib
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_bedrock as bedrock
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from config import AppConfig
from config.foundation import GuardrailConfig
from stacks.base import FoundationStack

# Prompt attacks only make sense on input: Bedrock requires the output strength to be NONE.
INPUT_ONLY_FILTERS = frozenset({"PROMPT_ATTACK"})

GUARDRAIL_KMS_DOC = "https://docs.aws.amazon.com/bedrock/latest/userguide/guardrails-permissions-kms.html"
"""Bedrock user guide, "(Optional) Create a customer managed key for your guardrail": a role that uses an
encrypted guardrail "during model inference or while invoking an agent" needs `kms:Decrypt` on the key."""
BEDROCK_VIA_SERVICE_DOC = "https://docs.aws.amazon.com/bedrock/latest/userguide/sessions-encryption.html"
"""Bedrock pages that scope a customer key to Bedrock write `kms:ViaService` as
`bedrock.<region>.amazonaws.com` (also encryption-flows.html). The guardrail page shows no condition:
the condition is our least-privilege choice, checked live by `make verify` (ApplyGuardrail as each role)."""
APPLY_GUARDRAIL_SID = "ApplyGuardrail"
DECRYPT_GUARDRAIL_SID = "DecryptGuardrailThroughBedrock"


def grant_apply_guardrail(grantee: iam.IGrantable, guardrail: bedrock.CfnGuardrail) -> None:
    """Let `grantee` apply `guardrail`: ApplyGuardrail, or Converse/InvokeModel with a guardrail config.

    The one grant every consumer uses (agent runtime, LLM gateway task role, anything that evaluates
    prompts or answers with the guardrail). It writes, into the grantee's own policy only:

    - `bedrock:ApplyGuardrail` on the guardrail ARN (Bedrock user guide, guardrails-permissions.html);
    - when the guardrail is encrypted with a customer-managed key, `kms:Decrypt` on that key
      (GUARDRAIL_KMS_DOC), limited to calls made through Bedrock in the grantee's region.

    The key is read from the guardrail itself (`kms_key_arn`), so the grant can never name a different
    key than the one the guardrail is encrypted with. The key policy delegates to IAM (account root), so
    nothing is added to the guardrails stack.

    Args:
        grantee: the role (or grantable) of the service that calls Bedrock with the guardrail.
        guardrail: `GuardrailsStack.guardrail` (any stack: its ARN and key ARN are imported).
    """
    grantee.grant_principal.add_to_principal_policy(
        iam.PolicyStatement(
            sid=APPLY_GUARDRAIL_SID,
            actions=["bedrock:ApplyGuardrail"],
            resources=[guardrail.attr_guardrail_arn],
        )
    )
    if guardrail.kms_key_arn is None:
        return  # an AWS-owned key: nothing for the caller to decrypt
    grantee.grant_principal.add_to_principal_policy(
        iam.PolicyStatement(
            sid=DECRYPT_GUARDRAIL_SID,
            actions=["kms:Decrypt"],
            resources=[guardrail.kms_key_arn],
            conditions={"StringEquals": {"kms:ViaService": f"bedrock.{cdk.Aws.REGION}.amazonaws.com"}},
        )
    )


def policy_hash(policy: GuardrailConfig) -> str:
    """A short, stable fingerprint of the whole guardrail policy (changes whenever any setting does)."""
    return hashlib.sha256(policy.model_dump_json().encode("utf-8")).hexdigest()[:16]


def publish_in(
    scope: Construct,
    guardrail: bedrock.CfnGuardrail,
    version: bedrock.CfnGuardrailVersion,
    construct_id: str = "GuardrailVersion",
) -> bedrock.CfnGuardrailVersion:
    """Publish, inside a consumer stack, the same policy version that `version` publishes.

    Use this in any stack other than the guardrails stack that needs a version number: CloudFormation
    cannot change an exported value while another stack imports it, so importing `version.attr_version`
    would make the next policy change fail ("export ... in use"). The copy takes the guardrail id (which
    never changes) across stacks and the policy-hash description as a literal, so it is replaced exactly
    when the policy changes.

    Args:
        scope: the consumer stack (deployed after the guardrails stack).
        guardrail: `GuardrailsStack.guardrail`.
        version: `GuardrailsStack.guardrail_version` (its description carries the policy hash).
        construct_id: the construct id within `scope`.
    """
    return bedrock.CfnGuardrailVersion(
        scope, construct_id, guardrail_identifier=guardrail.attr_guardrail_id, description=version.description
    )


class GuardrailsStack(FoundationStack):
    """One guardrail (content, topic, PII, word and grounding policies) and its published version."""

    component = "guardrails"
    description_text = "guardrails (Bedrock guardrail and its published version)"

    def __init__(self, scope: Construct, *, config: AppConfig, **kwargs: Any) -> None:
        super().__init__(scope, config=config, **kwargs)
        self.policy_hash = policy_hash(config.guardrail)
        self.key = self._create_key()
        self.guardrail = self._create_guardrail()
        self.guardrail_version = self._publish_version()
        self._create_outputs()

    @property
    def guardrail_id(self) -> str:
        return self.guardrail.attr_guardrail_id

    @property
    def guardrail_arn(self) -> str:
        return self.guardrail.attr_guardrail_arn

    @property
    def published_version(self) -> str:
        """The version number consumers pass with the guardrail id (a token resolving to e.g. "3")."""
        return self.guardrail_version.attr_version

    def grant_apply(self, grantee: iam.IGrantable) -> None:
        """Let `grantee` apply this guardrail: see `grant_apply_guardrail`."""
        grant_apply_guardrail(grantee, self.guardrail)

    def _create_key(self) -> kms.Key:
        return kms.Key(
            self,
            "GuardrailKey",
            description=f"{self.config.prefix} Bedrock guardrail policy",
            enable_key_rotation=True,
            removal_policy=self.removal_policy,
            pending_window=cdk.Duration.days(7),
        )

    def _create_guardrail(self) -> bedrock.CfnGuardrail:
        policy = self.config.guardrail
        return bedrock.CfnGuardrail(
            self,
            "Guardrail",
            name=self.resource_name("guardrail"),
            description="Support agent guardrail: harmful content, prompt attacks, off-topic advice, PII, "
            "ungrounded answers",
            blocked_input_messaging=policy.blocked_input_message,
            blocked_outputs_messaging=policy.blocked_output_message,
            kms_key_arn=self.key.key_arn,
            content_policy_config=self._content_policy(policy),
            topic_policy_config=self._topic_policy(policy),
            sensitive_information_policy_config=self._pii_policy(policy),
            word_policy_config=self._word_policy(policy),
            contextual_grounding_policy_config=self._grounding_policy(policy),
        )

    @staticmethod
    def _content_policy(policy: GuardrailConfig) -> bedrock.CfnGuardrail.ContentPolicyConfigProperty:
        filters = [
            bedrock.CfnGuardrail.ContentFilterConfigProperty(
                type=category,
                input_strength=strength,
                output_strength="NONE" if category in INPUT_ONLY_FILTERS else strength,
            )
            for category, strength in sorted(policy.content_filters.items())
            if strength != "NONE"
        ]
        return bedrock.CfnGuardrail.ContentPolicyConfigProperty(filters_config=filters)

    @staticmethod
    def _topic_policy(policy: GuardrailConfig) -> bedrock.CfnGuardrail.TopicPolicyConfigProperty | None:
        if not policy.denied_topics:
            return None
        return bedrock.CfnGuardrail.TopicPolicyConfigProperty(
            topics_config=[
                bedrock.CfnGuardrail.TopicConfigProperty(
                    name=topic.name,
                    definition=topic.definition,
                    examples=list(topic.examples) or None,
                    type="DENY",
                )
                for topic in policy.denied_topics
            ]
        )

    @staticmethod
    def _pii_policy(
        policy: GuardrailConfig,
    ) -> bedrock.CfnGuardrail.SensitiveInformationPolicyConfigProperty | None:
        if not policy.pii:
            return None
        return bedrock.CfnGuardrail.SensitiveInformationPolicyConfigProperty(
            pii_entities_config=[
                bedrock.CfnGuardrail.PiiEntityConfigProperty(
                    type=rule.type,
                    action=rule.action,
                    input_action=rule.action,
                    input_enabled=True,
                    output_action=rule.effective_output_action,
                    output_enabled=rule.effective_output_action != "NONE",
                )
                for rule in policy.pii
            ]
        )

    @staticmethod
    def _word_policy(policy: GuardrailConfig) -> bedrock.CfnGuardrail.WordPolicyConfigProperty | None:
        if not policy.blocked_words and not policy.profanity_filter:
            return None
        return bedrock.CfnGuardrail.WordPolicyConfigProperty(
            words_config=[bedrock.CfnGuardrail.WordConfigProperty(text=word) for word in policy.blocked_words]
            or None,
            managed_word_lists_config=[bedrock.CfnGuardrail.ManagedWordsConfigProperty(type="PROFANITY")]
            if policy.profanity_filter
            else None,
        )

    @staticmethod
    def _grounding_policy(
        policy: GuardrailConfig,
    ) -> bedrock.CfnGuardrail.ContextualGroundingPolicyConfigProperty | None:
        # A threshold of 0 switches that check off (it would never block anything).
        thresholds = {"GROUNDING": policy.grounding_threshold, "RELEVANCE": policy.relevance_threshold}
        filters = [
            bedrock.CfnGuardrail.ContextualGroundingFilterConfigProperty(type=kind, threshold=threshold)
            for kind, threshold in thresholds.items()
            if threshold > 0
        ]
        if not filters:
            return None
        return bedrock.CfnGuardrail.ContextualGroundingPolicyConfigProperty(filters_config=filters)

    def publish_version(
        self, scope: Construct, construct_id: str = "GuardrailVersion"
    ) -> bedrock.CfnGuardrailVersion:
        """Publish the current policy as an immutable guardrail version inside `scope`.

        Description (a create-only property) carries the policy hash, so a changed policy replaces the
        resource: CloudFormation publishes a new version, repoints every reference, then deletes the
        superseded version. Consumers in other stacks call this (or `publish_in`) with their own stack as
        `scope`: a version number exported across stacks could not change while another stack imports
        it, but the guardrail id (which never changes) can be imported freely.

        Args:
            scope: where the version resource lives (this stack, or a consumer stack deployed after it).
            construct_id: the construct id within `scope`.
        """
        return bedrock.CfnGuardrailVersion(
            scope,
            construct_id,
            guardrail_identifier=self.guardrail.attr_guardrail_id,
            description=f"policy {self.policy_hash} published by {self.config.prefix}",
        )

    def _publish_version(self) -> bedrock.CfnGuardrailVersion:
        return self.publish_version(self)

    def _create_outputs(self) -> None:
        cdk.CfnOutput(self, "GuardrailId", value=self.guardrail_id, description="Bedrock guardrail id")
        cdk.CfnOutput(
            self,
            "PublishedGuardrailVersion",
            value=self.published_version,
            description="Published guardrail version that consumers use (never DRAFT)",
        )

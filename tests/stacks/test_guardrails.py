"""Guardrails stack: content, topic, PII, word and grounding policies; KMS; the published version."""

from __future__ import annotations

import json
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_bedrock as bedrock
from aws_cdk import aws_iam as iam
from aws_cdk.assertions import Match, Template

from config import AppConfig
from stacks.compliance import apply_cost_tags
from stacks.guardrails import GuardrailsStack, grant_apply_guardrail, policy_hash, publish_in
from tests.factories import test_config
from tests.support.cdk import resources_of


def _synth(config: AppConfig) -> tuple[GuardrailsStack, Template]:
    app = cdk.App()
    stack = GuardrailsStack(app, config=config)
    apply_cost_tags(app, config)
    return stack, Template.from_stack(stack)


@pytest.fixture(scope="module")
def template() -> Template:
    return _synth(test_config("dev"))[1]


@pytest.fixture(scope="module")
def custom_template() -> Template:
    """A policy different in every section from the defaults."""
    return _synth(
        test_config(
            "dev",
            guardrail={
                "content_filters": {"INSULTS": "HIGH", "SEXUAL": "NONE", "PROMPT_ATTACK": "MEDIUM"},
                "blocked_words": ["Project Stratus", "internal build"],
                "profanity_filter": False,
                "grounding_threshold": 0,
                "relevance_threshold": 0.6,
            },
        )
    )[1]


def _guardrail(template: Template) -> dict[str, Any]:
    (guardrail,) = resources_of(template, "AWS::Bedrock::Guardrail").values()
    return dict(guardrail["Properties"])


def _filters(template: Template) -> dict[str, tuple[str, str]]:
    filters = _guardrail(template)["ContentPolicyConfig"]["FiltersConfig"]
    return {f["Type"]: (f["InputStrength"], f["OutputStrength"]) for f in filters}


def test_content_filters_follow_config(template: Template) -> None:
    assert _filters(template) == {
        "SEXUAL": ("HIGH", "HIGH"),
        "VIOLENCE": ("HIGH", "HIGH"),
        "HATE": ("HIGH", "HIGH"),
        "INSULTS": ("MEDIUM", "MEDIUM"),
        "MISCONDUCT": ("HIGH", "HIGH"),
        "PROMPT_ATTACK": ("HIGH", "NONE"),
    }


def test_prompt_attack_filter_applies_to_input_only(template: Template) -> None:
    assert _filters(template)["PROMPT_ATTACK"] == ("HIGH", "NONE")


def test_changed_content_filters_are_applied_and_none_is_left_out(custom_template: Template) -> None:
    filters = _filters(custom_template)
    assert filters["INSULTS"] == ("HIGH", "HIGH") and "SEXUAL" not in filters


def test_investment_advice_is_a_denied_topic(template: Template) -> None:
    (topic,) = _guardrail(template)["TopicPolicyConfig"]["TopicsConfig"]
    assert topic["Name"] == "Investment advice" and topic["Type"] == "DENY"
    assert "Which stocks should I buy?" in topic["Examples"]


def test_pii_entities_are_blocked_or_anonymised_per_config(template: Template) -> None:
    entities = _guardrail(template)["SensitiveInformationPolicyConfig"]["PiiEntitiesConfig"]
    assert {e["Type"]: e["Action"] for e in entities} == {
        "CREDIT_DEBIT_CARD_NUMBER": "BLOCK",
        "US_SOCIAL_SECURITY_NUMBER": "BLOCK",
        "PASSWORD": "BLOCK",
        "AWS_SECRET_KEY": "BLOCK",
        "PHONE": "ANONYMIZE",
    }


def test_pii_output_action_can_differ_from_input(template: Template) -> None:
    entities = _guardrail(template)["SensitiveInformationPolicyConfig"]["PiiEntitiesConfig"]
    phone = next(e for e in entities if e["Type"] == "PHONE")
    assert (phone["InputAction"], phone["OutputAction"], phone["OutputEnabled"]) == (
        "ANONYMIZE",
        "NONE",
        False,
    )


def test_pii_output_action_defaults_to_input_action(template: Template) -> None:
    entities = _guardrail(template)["SensitiveInformationPolicyConfig"]["PiiEntitiesConfig"]
    card = next(e for e in entities if e["Type"] == "CREDIT_DEBIT_CARD_NUMBER")
    assert (card["InputAction"], card["OutputAction"], card["OutputEnabled"]) == ("BLOCK", "BLOCK", True)


def test_managed_profanity_list_is_on(template: Template) -> None:
    words = _guardrail(template)["WordPolicyConfig"]
    assert words["ManagedWordListsConfig"] == [{"Type": "PROFANITY"}]


def test_blocked_words_come_from_config(custom_template: Template) -> None:
    words = _guardrail(custom_template)["WordPolicyConfig"]
    assert words["WordsConfig"] == [{"Text": "Project Stratus"}, {"Text": "internal build"}]
    assert "ManagedWordListsConfig" not in words


def test_no_word_policy_without_words_or_profanity_filter() -> None:
    template = _synth(test_config("dev", guardrail={"blocked_words": [], "profanity_filter": False}))[1]
    assert "WordPolicyConfig" not in _guardrail(template)


def test_contextual_grounding_and_relevance_thresholds_follow_config(template: Template) -> None:
    filters = _guardrail(template)["ContextualGroundingPolicyConfig"]["FiltersConfig"]
    assert {f["Type"]: f["Threshold"] for f in filters} == {"GROUNDING": 0.75, "RELEVANCE": 0.5}


def test_zero_threshold_switches_that_grounding_check_off(custom_template: Template) -> None:
    filters = _guardrail(custom_template)["ContextualGroundingPolicyConfig"]["FiltersConfig"]
    assert filters == [{"Type": "RELEVANCE", "Threshold": 0.6}]


def test_blocked_messages_come_from_config(template: Template) -> None:
    guardrail = _guardrail(template)
    config = test_config("dev").guardrail
    assert guardrail["BlockedInputMessaging"] == config.blocked_input_message
    assert guardrail["BlockedOutputsMessaging"] == config.blocked_output_message


def test_guardrail_is_encrypted_with_a_rotating_customer_key(template: Template) -> None:
    (key_id,) = resources_of(template, "AWS::KMS::Key")
    assert _guardrail(template)["KmsKeyArn"] == {"Fn::GetAtt": [key_id, "Arn"]}
    template.has_resource_properties("AWS::KMS::Key", {"EnableKeyRotation": True})


def test_a_version_of_the_guardrail_is_published(template: Template) -> None:
    template.has_resource_properties(
        "AWS::Bedrock::GuardrailVersion",
        {"GuardrailIdentifier": {"Fn::GetAtt": ["Guardrail", "GuardrailId"]}},
    )


def test_version_description_carries_the_policy_hash(template: Template) -> None:
    expected = policy_hash(test_config("dev").guardrail)
    template.has_resource_properties(
        "AWS::Bedrock::GuardrailVersion", {"Description": Match.string_like_regexp(f"policy {expected} ")}
    )


def test_policy_change_publishes_a_new_version(template: Template, custom_template: Template) -> None:
    # Description is create-only: a different description makes CloudFormation publish a new version.
    def description(t: Template) -> str:
        (version,) = resources_of(t, "AWS::Bedrock::GuardrailVersion").values()
        return str(version["Properties"]["Description"])

    assert description(template) != description(custom_template)


def test_unchanged_policy_keeps_the_same_version() -> None:
    assert policy_hash(test_config("dev").guardrail) == policy_hash(test_config("prod").guardrail)


def test_consumers_get_the_published_version_never_draft() -> None:
    stack, _ = _synth(test_config("dev"))
    assert stack.resolve(stack.published_version) == {"Fn::GetAtt": ["GuardrailVersion", "Version"]}


def test_output_reports_the_published_version(template: Template) -> None:
    outputs = template.to_json()["Outputs"]
    assert outputs["PublishedGuardrailVersion"]["Value"] == {"Fn::GetAtt": ["GuardrailVersion", "Version"]}
    assert "DRAFT" not in json.dumps([o["Value"] for o in outputs.values()])


def test_consumer_stack_can_publish_its_own_version_of_the_same_policy() -> None:
    app = cdk.App()
    config = test_config("dev")
    guardrails = GuardrailsStack(app, config=config)
    consumer = cdk.Stack(app, "consumer")
    guardrails.publish_version(consumer)
    version = Template.from_stack(consumer).to_json()["Resources"]["GuardrailVersion"]["Properties"]
    assert version["Description"].startswith(f"policy {guardrails.policy_hash} ")
    assert "Fn::ImportValue" in json.dumps(version["GuardrailIdentifier"])


def _mentions(value: Any, marker: str) -> bool:
    return marker in json.dumps(value)


def assert_may_apply_guardrail(statements: list[dict[str, Any]], *, guardrail_arn: str, key_arn: str) -> None:
    """The documented contract for a caller of an encrypted guardrail, over one role's statements.

    Bedrock user guide: ApplyGuardrail on the guardrail (guardrails-permissions.html) AND kms:Decrypt on
    the guardrail's customer-managed key (guardrails-permissions-kms.html). `guardrail_arn` and `key_arn`
    are markers the rendered Resource must contain (a logical id, or an export name across stacks); a
    Decrypt condition may only narrow the call to Bedrock in this region.
    """
    allowed = [s for s in statements if s.get("Effect", "Allow") == "Allow"]
    apply = [
        s
        for s in allowed
        if "bedrock:ApplyGuardrail" in _as_list(s["Action"]) and _mentions(s["Resource"], guardrail_arn)
    ]
    assert apply, f"no statement allows bedrock:ApplyGuardrail on the guardrail ({guardrail_arn})"
    decrypt = [
        s for s in allowed if "kms:Decrypt" in _as_list(s["Action"]) and _mentions(s["Resource"], key_arn)
    ]
    assert decrypt, f"no statement allows kms:Decrypt on the guardrail's key ({key_arn})"
    for statement in decrypt:
        conditions = statement.get("Condition", {})
        assert set(conditions) <= {"StringEquals"}, conditions
        assert set(conditions.get("StringEquals", {})) <= {"kms:ViaService"}, conditions
        if conditions:
            via = json.dumps(conditions["StringEquals"]["kms:ViaService"])
            assert '"bedrock."' in via and "AWS::Region" in via and ".amazonaws.com" in via, via


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _consumer_statements(template: Template) -> list[dict[str, Any]]:
    statements: list[dict[str, Any]] = []
    for policy in template.find_resources("AWS::IAM::Policy").values():
        statements.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    return statements


def test_grant_apply_allows_apply_guardrail_and_decrypt_via_bedrock_only() -> None:
    app = cdk.App()
    guardrails = GuardrailsStack(app, config=test_config("dev"))
    role = iam.Role(guardrails, "Consumer", assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com"))
    guardrails.grant_apply(role)
    statements = _consumer_statements(Template.from_stack(guardrails))
    apply, decrypt = statements
    assert apply["Action"] == "bedrock:ApplyGuardrail"
    assert apply["Resource"] == {"Fn::GetAtt": ["Guardrail", "GuardrailArn"]}
    assert decrypt["Action"] == "kms:Decrypt"
    assert decrypt["Resource"]["Fn::GetAtt"][0].startswith("GuardrailKey")  # the guardrail's own key
    assert_may_apply_guardrail(statements, guardrail_arn="GuardrailArn", key_arn="GuardrailKey")


def test_grant_in_a_consumer_stack_imports_the_guardrail_and_its_key() -> None:
    app = cdk.App()
    guardrails = GuardrailsStack(app, config=test_config("dev"))
    consumer = cdk.Stack(app, "Consumer")
    role = iam.Role(consumer, "Role", assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com"))
    grant_apply_guardrail(role, guardrails.guardrail)
    consumer_template = Template.from_stack(consumer)
    statements = _consumer_statements(consumer_template)
    assert_may_apply_guardrail(statements, guardrail_arn="GuardrailGuardrailArn", key_arn="GuardrailKey")
    # Only the consumer's policy changes: the guardrails stack gains exports, never a policy.
    assert not Template.from_stack(guardrails).find_resources("AWS::IAM::Policy")


def test_grant_on_an_unencrypted_guardrail_has_no_decrypt() -> None:
    stack = cdk.Stack(cdk.App(), "Plain")
    guardrail = bedrock.CfnGuardrail(
        stack, "Guardrail", name="g", blocked_input_messaging="b", blocked_outputs_messaging="b"
    )
    role = iam.Role(stack, "Role", assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com"))
    grant_apply_guardrail(role, guardrail)
    statements = _consumer_statements(Template.from_stack(stack))
    assert [s["Action"] for s in statements] == ["bedrock:ApplyGuardrail"]


def test_contract_check_rejects_a_grant_without_decrypt() -> None:
    """The helper itself: ApplyGuardrail alone (the defect of issue 11) must fail it."""
    only_apply: list[dict[str, Any]] = [
        {"Effect": "Allow", "Action": "bedrock:ApplyGuardrail", "Resource": "x:GuardrailArn"}
    ]
    with pytest.raises(AssertionError, match="kms:Decrypt"):
        assert_may_apply_guardrail(only_apply, guardrail_arn="GuardrailArn", key_arn="GuardrailKey")
    wrong_service: list[dict[str, Any]] = [
        *only_apply,
        {
            "Effect": "Allow",
            "Action": "kms:Decrypt",
            "Resource": "x:GuardrailKey",
            "Condition": {"StringEquals": {"kms:ViaService": "secretsmanager.us-east-1.amazonaws.com"}},
        },
    ]
    with pytest.raises(AssertionError):
        assert_may_apply_guardrail(wrong_service, guardrail_arn="GuardrailArn", key_arn="GuardrailKey")


def test_cost_allocation_tags_are_present(template: Template) -> None:
    keys = {t["Key"] for t in _guardrail(template)["Tags"]}
    assert keys >= {"project", "component", "profile"}


def test_dev_key_is_deleted_with_the_stack(template: Template) -> None:
    (key,) = template.find_resources("AWS::KMS::Key").values()
    assert key["DeletionPolicy"] == "Delete"


def test_prod_key_is_retained() -> None:
    _, template = _synth(test_config("prod"))
    (key,) = template.find_resources("AWS::KMS::Key").values()
    assert key["DeletionPolicy"] == "Retain"


def test_blocked_words_from_the_checked_in_config_are_filtered(template: Template) -> None:
    words = _guardrail(template)["WordPolicyConfig"]["WordsConfig"]
    assert {"Text": "Project Stratus"} in words


def test_publish_in_copies_the_version_from_the_constructs_consumers_receive() -> None:
    app = cdk.App()
    guardrails = GuardrailsStack(app, config=test_config("dev"))
    consumer = cdk.Stack(app, "consumer")
    local = publish_in(consumer, guardrails.guardrail, guardrails.guardrail_version)
    assert local.description == guardrails.guardrail_version.description
    resources = Template.from_stack(consumer).to_json()["Resources"]
    assert "Fn::ImportValue" in json.dumps(resources["GuardrailVersion"]["Properties"]["GuardrailIdentifier"])
    assert "Version" not in json.dumps(
        Template.from_stack(guardrails).to_json().get("Outputs", {}).get("Export")
    )

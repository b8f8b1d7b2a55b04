"""Guardrails: the local policy's decisions, and the exact Bedrock ApplyGuardrail requests (Stubber)."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.stub import Stubber

from agent.guardrails import BedrockGuardrail, DeniedTopic, LocalPolicy


@pytest.mark.parametrize(
    "text",
    [
        "Which stocks should I buy?",
        "Is it a good time to invest in bitcoin?",
        "Should I put my money in an index fund?",
    ],
)
def test_investment_advice_is_blocked(text: str) -> None:
    verdict = LocalPolicy().check(text, "input")
    assert verdict.action == "BLOCKED" and verdict.reasons == ("topic:Investment advice",)
    assert verdict.as_metadata() == {"action": "BLOCKED", "stage": "input", "message": verdict.text}


@pytest.mark.parametrize(
    "text",
    [
        "How do I reset my router?",
        "Can I get a refund for my annual Care+ plan?",
        "My stock router firmware is old",
    ],
)
def test_support_questions_pass(text: str) -> None:
    assert LocalPolicy().check(text, "input").action == "NONE"


def test_card_numbers_are_blocked_only_when_luhn_valid() -> None:
    assert LocalPolicy().check("my card is 4111 1111 1111 1111", "input").reasons == (
        "pii:CREDIT_DEBIT_CARD_NUMBER",
    )
    assert LocalPolicy().check("serial NX2 1234 5678 9012 3456", "input").action == "NONE"


def test_phone_numbers_are_anonymized() -> None:
    verdict = LocalPolicy().check("call me on 415-555-0142 or (212) 555-0199", "output")
    assert verdict.action == "ANONYMIZED"
    assert verdict.text == "call me on {PHONE} or {PHONE}"
    assert verdict.as_metadata() == {"action": "ANONYMIZED", "stage": "output", "message": None}


def test_emails_pass_by_default_so_tickets_can_be_opened() -> None:
    assert LocalPolicy().check("my email is jane@example.com", "input").action == "NONE"


def test_policy_from_config_json() -> None:
    policy = LocalPolicy.from_json(
        json.dumps(
            {
                "denied_topics": [
                    {"name": "Competitors", "examples": ["Is Acme's router better than yours?"]}
                ],
                "pii": [{"type": "EMAIL", "action": "ANONYMIZE"}],
                "blocked_input_message": "Not here.",
                "blocked_output_message": "Not that.",
            }
        )
    )
    assert policy.check("is the acme router better?", "input").text == "Not here."
    assert policy.check("Which stocks should I buy?", "input").action == "NONE"  # topic not configured
    assert policy.check("write to a@b.io", "output").text == "write to {EMAIL}"


def test_bad_policy_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown PII types"):
        LocalPolicy(pii={"SHOE_SIZE": "BLOCK"})
    with pytest.raises(ValueError, match="BLOCK or ANONYMIZE"):
        LocalPolicy(pii={"EMAIL": "MASK"})
    assert (
        LocalPolicy(denied_topics=(DeniedTopic("x", ("alpha beta",)),))
        .check("alpha beta gamma", "input")
        .blocked
    )


USAGE = {
    "topicPolicyUnits": 1,
    "contentPolicyUnits": 1,
    "wordPolicyUnits": 1,
    "sensitiveInformationPolicyUnits": 1,
    "sensitiveInformationPolicyFreeUnits": 0,
    "contextualGroundingPolicyUnits": 0,
}


@pytest.fixture
def bedrock():
    client = boto3.client(
        "bedrock-runtime", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y"
    )
    with Stubber(client) as stubber:
        yield client, stubber


def test_bedrock_guardrail_sends_the_published_version(bedrock) -> None:
    client, stubber = bedrock
    stubber.add_response(
        "apply_guardrail",
        {"usage": USAGE, "action": "NONE", "outputs": [], "assessments": []},
        {
            "guardrailIdentifier": "gr-123",
            "guardrailVersion": "3",
            "source": "INPUT",
            "content": [{"text": {"text": "How do I reset my router?"}}],
        },
    )
    verdict = BedrockGuardrail("gr-123", "3", "us-east-1", client=client).check(
        "How do I reset my router?", "input"
    )
    assert verdict.action == "NONE"
    stubber.assert_no_pending_responses()


def test_bedrock_block_and_anonymize(bedrock) -> None:
    client, stubber = bedrock
    guardrail = BedrockGuardrail("gr-123", "3", "us-east-1", client=client)
    stubber.add_response(
        "apply_guardrail",
        {
            "usage": USAGE,
            "action": "GUARDRAIL_INTERVENED",
            "outputs": [{"text": "Sorry, I can't help with that."}],
            "assessments": [
                {
                    "topicPolicy": {
                        "topics": [{"name": "Investment advice", "type": "DENY", "action": "BLOCKED"}]
                    }
                }
            ],
        },
        {
            "guardrailIdentifier": "gr-123",
            "guardrailVersion": "3",
            "source": "OUTPUT",
            "content": [{"text": {"text": "buy stocks"}}],
        },
    )
    blocked = guardrail.check("buy stocks", "output")
    assert (blocked.action, blocked.text, blocked.reasons) == (
        "BLOCKED",
        "Sorry, I can't help with that.",
        ("topic:Investment advice",),
    )
    stubber.add_response(
        "apply_guardrail",
        {
            "usage": USAGE,
            "action": "GUARDRAIL_INTERVENED",
            "outputs": [{"text": "call {PHONE}"}],
            "assessments": [
                {
                    "sensitiveInformationPolicy": {
                        "piiEntities": [{"match": "415-555-0142", "type": "PHONE", "action": "ANONYMIZED"}],
                        "regexes": [],
                    }
                }
            ],
        },
    )
    anonymized = guardrail.check("call 415-555-0142", "output")
    assert (anonymized.action, anonymized.text) == ("ANONYMIZED", "call {PHONE}")


def test_draft_version_is_refused() -> None:
    with pytest.raises(ValueError, match="published version"):
        BedrockGuardrail("gr-1", "DRAFT", "us-east-1", client=object())

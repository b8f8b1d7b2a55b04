"""Guardrail decisions in detail: every ApplyGuardrail assessment kind becomes a reason, and the local
policy's card-number (Luhn), topic and configuration rules.

Bedrock side: `ApplyGuardrail` through a real boto3 client with botocore's Stubber, which validates both
the request and the response against the service model (botocore's bedrock-runtime
`ApplyGuardrail`; https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_ApplyGuardrail.html
and the assessment shape https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_GuardrailAssessment.html).
"""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from agent.guardrails import (
    DEFAULT_BLOCKED_INPUT,
    DEFAULT_BLOCKED_OUTPUT,
    BedrockGuardrail,
    DeniedTopic,
    LocalPolicy,
    Verdict,
)

USAGE = {
    "topicPolicyUnits": 1,
    "contentPolicyUnits": 1,
    "wordPolicyUnits": 1,
    "sensitiveInformationPolicyUnits": 1,
    "sensitiveInformationPolicyFreeUnits": 0,
    "contextualGroundingPolicyUnits": 0,
}

EVERY_POLICY: dict[str, Any] = {
    "topicPolicy": {"topics": [{"name": "Investment advice", "type": "DENY", "action": "BLOCKED"}]},
    "contentPolicy": {"filters": [{"type": "INSULTS", "confidence": "HIGH", "action": "BLOCKED"}]},
    "wordPolicy": {
        "customWords": [{"match": "frobnicate", "action": "BLOCKED"}],
        "managedWordLists": [{"match": "darn", "type": "PROFANITY", "action": "BLOCKED"}],
    },
    "sensitiveInformationPolicy": {
        "piiEntities": [{"match": "415-555-0142", "type": "PHONE", "action": "ANONYMIZED"}],
        "regexes": [{"name": "order-id", "match": "ORD-1", "regex": "ORD-\\d", "action": "ANONYMIZED"}],
    },
    "contextualGroundingPolicy": {
        "filters": [{"type": "GROUNDING", "threshold": 0.7, "score": 0.2, "action": "BLOCKED"}]
    },
}


@pytest.fixture
def bedrock():
    client = boto3.client(
        "bedrock-runtime", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y"
    )
    with Stubber(client) as stubber:
        yield BedrockGuardrail("gr-9", "7", "us-east-1", client=client), stubber
        stubber.assert_no_pending_responses()


def intervened(
    assessments: list[dict[str, Any]], outputs: list[dict[str, str]] | None = None
) -> dict[str, Any]:
    return {
        "usage": USAGE,
        "action": "GUARDRAIL_INTERVENED",
        "outputs": outputs or [],
        "assessments": assessments,
    }


def test_every_assessment_kind_becomes_a_reason_in_order(bedrock) -> None:
    guardrail, stubber = bedrock
    stubber.add_response(
        "apply_guardrail",
        intervened([EVERY_POLICY], [{"text": "Blocked."}]),
        {
            "guardrailIdentifier": "gr-9",
            "guardrailVersion": "7",
            "source": "INPUT",
            "content": [{"text": {"text": "anything"}}],
        },
    )
    verdict = guardrail.check("anything", "input")
    assert verdict == Verdict(
        "BLOCKED",
        "Blocked.",
        "input",
        (
            "topic:Investment advice",
            "content:INSULTS",
            "pii:PHONE",
            "regex:order-id",
            "word:custom",
            "word:PROFANITY",
            "grounding:GROUNDING",
        ),
    )


@pytest.mark.parametrize(
    ("policy", "reason"),
    [
        ({"topicPolicy": EVERY_POLICY["topicPolicy"]}, "topic:Investment advice"),
        ({"contentPolicy": EVERY_POLICY["contentPolicy"]}, "content:INSULTS"),
        (
            {
                "wordPolicy": {
                    "customWords": EVERY_POLICY["wordPolicy"]["customWords"],
                    "managedWordLists": [],
                }
            },
            "word:custom",
        ),
        (
            {
                "wordPolicy": {
                    "customWords": [],
                    "managedWordLists": EVERY_POLICY["wordPolicy"]["managedWordLists"],
                }
            },
            "word:PROFANITY",
        ),
        (
            {
                "sensitiveInformationPolicy": {
                    "piiEntities": [],
                    "regexes": [
                        dict(EVERY_POLICY["sensitiveInformationPolicy"]["regexes"][0], action="BLOCKED")
                    ],
                }
            },
            "regex:order-id",
        ),
        (
            {
                "sensitiveInformationPolicy": {
                    "piiEntities": [{"match": "x", "type": "EMAIL", "action": "BLOCKED"}],
                    "regexes": [],
                }
            },
            "pii:EMAIL",
        ),
        ({"contextualGroundingPolicy": EVERY_POLICY["contextualGroundingPolicy"]}, "grounding:GROUNDING"),
    ],
)
def test_a_blocking_assessment_of_each_kind_blocks_on_output(bedrock, policy, reason) -> None:
    guardrail, stubber = bedrock
    stubber.add_response("apply_guardrail", intervened([policy], [{"text": "No."}]))
    verdict = guardrail.check("the answer", "output")
    assert (verdict.action, verdict.text, verdict.stage, verdict.reasons) == (
        "BLOCKED",
        "No.",
        "output",
        (reason,),
    )
    assert verdict.as_metadata() == {"action": "BLOCKED", "stage": "output", "message": "No."}


@pytest.mark.parametrize(
    ("policy", "reason"),
    [
        (
            {
                "sensitiveInformationPolicy": {
                    "piiEntities": [],
                    "regexes": EVERY_POLICY["sensitiveInformationPolicy"]["regexes"],
                }
            },
            "regex:order-id",
        ),
        (
            {"wordPolicy": {"customWords": [{"match": "x", "action": "NONE"}], "managedWordLists": []}},
            "word:custom",
        ),
        (
            {
                "wordPolicy": {
                    "customWords": [],
                    "managedWordLists": [{"match": "x", "type": "PROFANITY", "action": "NONE"}],
                }
            },
            "word:PROFANITY",
        ),
        (
            {
                "contextualGroundingPolicy": {
                    "filters": [{"type": "RELEVANCE", "threshold": 0.5, "score": 0.9, "action": "NONE"}]
                }
            },
            "grounding:RELEVANCE",
        ),
        (
            {"contentPolicy": {"filters": [{"type": "HATE", "confidence": "LOW", "action": "NONE"}]}},
            "content:HATE",
        ),
    ],
)
def test_non_blocking_assessments_anonymize_with_the_guardrail_output(bedrock, policy, reason) -> None:
    guardrail, stubber = bedrock
    stubber.add_response("apply_guardrail", intervened([policy], [{"text": "order {ORDER}"}, {"text": "."}]))
    verdict = guardrail.check("order ORD-1.", "output")
    assert (verdict.action, verdict.text, verdict.reasons) == ("ANONYMIZED", "order {ORDER}.", (reason,))


def test_an_intervention_without_outputs_keeps_the_text_and_several_assessments_are_read(bedrock) -> None:
    guardrail, stubber = bedrock
    stubber.add_response(
        "apply_guardrail",
        intervened(
            [
                {
                    "sensitiveInformationPolicy": {
                        "piiEntities": [{"match": "a", "type": "PHONE", "action": "ANONYMIZED"}],
                        "regexes": [],
                    }
                },
                {"topicPolicy": {"topics": [{"name": "Legal", "type": "DENY", "action": "BLOCKED"}]}},
            ]
        ),
    )
    verdict = guardrail.check("original", "input")
    assert (verdict.action, verdict.text, verdict.reasons) == (
        "BLOCKED",
        "original",
        ("pii:PHONE", "topic:Legal"),
    )


def test_no_intervention_is_none_whatever_the_assessments_say(bedrock) -> None:
    guardrail, stubber = bedrock
    stubber.add_response(
        "apply_guardrail",
        {"usage": USAGE, "action": "NONE", "outputs": [{"text": "other"}], "assessments": [EVERY_POLICY]},
    )
    verdict = guardrail.check("fine text", "output")
    assert verdict == Verdict("NONE", "fine text", "output")
    assert verdict.as_metadata() == {"action": "NONE", "stage": None, "message": None}


def test_draft_is_refused_in_any_case_and_a_client_is_made_for_the_region(monkeypatch) -> None:
    with pytest.raises(ValueError, match=r"^GUARDRAIL_VERSION must be a published version, not DRAFT$"):
        BedrockGuardrail("gr-1", "draft", "us-east-1", client=object())
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "y")
    guardrail = BedrockGuardrail("gr-1", "2", "eu-west-1")
    assert guardrail._client.meta.service_model.service_name == "bedrock-runtime"
    assert guardrail._client.meta.region_name == "eu-west-1"
    assert (guardrail.guardrail_id, guardrail.version, guardrail.name) == ("gr-1", "2", "bedrock-guardrail")


# --- local policy -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "number",
    [
        "4111 1111 1111 1111",  # Visa test number
        "5555-5555-5555-4444",  # Mastercard: doubled 5s give 10 -> 1
        "4012888888881881",  # doubled 8s give 16 -> 7
        "378282246310005",  # 15-digit Amex
        "4222222222222",  # 13 digits, the shortest card number
        "6011000990139424",  # Discover
        "4000000000000000006",  # 19 digits, the longest
    ],
)
def test_luhn_valid_card_numbers_are_blocked(number: str) -> None:
    verdict = LocalPolicy().check(f"my card is {number} thanks", "input")
    assert verdict.action == "BLOCKED" and verdict.reasons == ("pii:CREDIT_DEBIT_CARD_NUMBER",)
    assert verdict.text == DEFAULT_BLOCKED_INPUT


@pytest.mark.parametrize(
    "number",
    [
        "4111 1111 1111 1112",
        "5555-5555-5555-4445",
        "4012888888881882",
        "378282246310006",
        "4222222222223",
        "1234567890123456",
        "4000000000000000007",
    ],
)
def test_luhn_invalid_digit_runs_pass(number: str) -> None:
    assert LocalPolicy().check(f"serial {number}", "input").action == "NONE"


def test_a_card_number_is_blocked_on_output_with_the_output_message() -> None:
    verdict = LocalPolicy().check("the card 4111111111111111 is on file", "output")
    assert (verdict.action, verdict.text, verdict.stage) == ("BLOCKED", DEFAULT_BLOCKED_OUTPUT, "output")


def test_blocking_wins_over_anonymizing_and_reasons_are_sorted_and_unique() -> None:
    text = "password: hunter2, ssn 123-45-6789 and 987-65-4321, call 415-555-0142"
    verdict = LocalPolicy().check(text, "input")
    assert verdict.action == "BLOCKED"
    assert verdict.reasons == ("pii:PASSWORD", "pii:US_SOCIAL_SECURITY_NUMBER")


def test_several_kinds_are_anonymized_in_place_from_the_end() -> None:
    policy = LocalPolicy(pii={"EMAIL": "ANONYMIZE", "PHONE": "ANONYMIZE", "IP_ADDRESS": "ANONYMIZE"})
    verdict = policy.check("mail a@b.io from 10.0.0.1 or call 415-555-0142 or jo@x.org", "output")
    assert verdict.action == "ANONYMIZED"
    assert verdict.text == "mail {EMAIL} from {IP_ADDRESS} or call {PHONE} or {EMAIL}"
    assert verdict.reasons == ("pii:EMAIL", "pii:IP_ADDRESS", "pii:PHONE")


def test_example_topics_need_two_shared_words_or_all_of_a_short_example() -> None:
    policy = LocalPolicy(
        denied_topics=(
            DeniedTopic("Competitors", ("Is the Acme router better than yours?",)),
            DeniedTopic("Weather", ("forecast",)),
        ),
        pii={},
    )
    assert policy.check("acme router please", "input").reasons == ("topic:Competitors",)
    assert policy.check("acme", "input").action == "NONE"  # one shared word of a longer example
    assert policy.check("what is the forecast", "input").reasons == ("topic:Weather",)
    assert policy.check("which would have good time", "input").action == "NONE"  # stopwords only
    assert policy.check("ACME ROUTER", "output").text == DEFAULT_BLOCKED_OUTPUT


def test_a_topic_with_only_stopword_examples_never_matches() -> None:
    policy = LocalPolicy(denied_topics=(DeniedTopic("Empty", ("what about that",)),), pii={})
    assert policy.check("what about that", "input").action == "NONE"


def test_investment_rule_needs_both_a_subject_and_an_intent() -> None:
    policy = LocalPolicy()
    assert policy.check("stocks", "input").action == "NONE"
    assert policy.check("should i", "input").action == "NONE"
    assert policy.check("should I buy ETFs", "input").blocked
    assert LocalPolicy(denied_topics=(DeniedTopic("INVESTMENT ADVICE"),)).check(
        "buy bitcoin", "input"
    ).reasons == ("topic:INVESTMENT ADVICE",)


def test_default_policy_blocks_secrets_and_anonymizes_phones_only() -> None:
    policy = LocalPolicy()
    assert policy.check("pwd = s3cret", "input").reasons == ("pii:PASSWORD",)
    assert policy.check("key wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "input").reasons == (
        "pii:AWS_SECRET_KEY",
    )
    assert policy.check("ip 10.1.2.3 and AKIAIOSFODNN7EXAMPLE", "input").action == "NONE"
    assert (policy.name, policy.guardrail_id, policy.version) == ("local-policy", "local", "local")


def test_from_json_without_a_policy_is_the_default() -> None:
    for raw in (None, ""):
        policy = LocalPolicy.from_json(raw)
        assert policy == LocalPolicy()


def test_from_json_reads_topics_pii_and_messages_and_defaults_what_is_missing() -> None:
    policy = LocalPolicy.from_json(
        json.dumps(
            {
                "denied_topics": [
                    {"name": "Legal", "examples": ["Can I sue the landlord?"]},
                    {"name": "Investment advice"},
                ],
                "pii": [{"type": "EMAIL", "action": "BLOCK"}, {"type": "PHONE", "action": "ANONYMIZE"}],
            }
        )
    )
    assert policy.denied_topics == (
        DeniedTopic("Legal", ("Can I sue the landlord?",)),
        DeniedTopic("Investment advice", ()),
    )
    assert policy.pii == {"EMAIL": "BLOCK", "PHONE": "ANONYMIZE"}
    assert policy.blocked_input_message == DEFAULT_BLOCKED_INPUT
    assert policy.blocked_output_message == DEFAULT_BLOCKED_OUTPUT
    empty = LocalPolicy.from_json(json.dumps({"blocked_input_message": "", "blocked_output_message": None}))
    assert (empty.denied_topics, empty.pii) == ((), {})
    assert (empty.blocked_input_message, empty.blocked_output_message) == (
        DEFAULT_BLOCKED_INPUT,
        DEFAULT_BLOCKED_OUTPUT,
    )
    configured = LocalPolicy.from_json(
        json.dumps({"blocked_input_message": "In.", "blocked_output_message": "Out."})
    )
    assert (configured.blocked_input_message, configured.blocked_output_message) == ("In.", "Out.")


def test_bad_policies_name_what_is_wrong() -> None:
    with pytest.raises(ValueError, match=r"unknown PII types \['SHOE_SIZE'\]; known: \['AWS_ACCESS_KEY'"):
        LocalPolicy(pii={"SHOE_SIZE": "BLOCK", "EMAIL": "BLOCK"})
    with pytest.raises(ValueError, match=r"PII actions must be BLOCK or ANONYMIZE, got \{'EMAIL': 'MASK'\}"):
        LocalPolicy(pii={"EMAIL": "MASK", "PHONE": "BLOCK"})


def test_an_output_part_without_text_adds_nothing(bedrock) -> None:
    # GuardrailOutputContent.text is optional in the bedrock-runtime model
    guardrail, stubber = bedrock
    pii = {
        "sensitiveInformationPolicy": {
            "piiEntities": [{"match": "x", "type": "PHONE", "action": "ANONYMIZED"}],
            "regexes": [],
        }
    }
    stubber.add_response("apply_guardrail", intervened([pii], [{}, {"text": "call {PHONE}"}, {}]))
    assert guardrail.check("call 415-555-0142", "output").text == "call {PHONE}"
    stubber.add_response("apply_guardrail", intervened([pii], [{}]))
    assert guardrail.check("kept as is", "output").text == "kept as is"

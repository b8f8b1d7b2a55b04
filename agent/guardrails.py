"""Input and output guardrails behind one interface.

Deployed: Bedrock `ApplyGuardrail` with the published guardrail version (the same policy the
knowledge-base stack configures). Local: `LocalPolicy`, a deterministic stand-in with denied topics
and PII patterns, configured from the same `guardrail` section of config/foundation.yaml.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

logger = logging.getLogger(__name__)

Stage = Literal["input", "output"]
Action = Literal["NONE", "BLOCKED", "ANONYMIZED"]

DEFAULT_BLOCKED_INPUT = (
    "Sorry, I can't help with that request. I can help with our products, orders and support tickets."
)
DEFAULT_BLOCKED_OUTPUT = (
    "Sorry, I can't share that answer. Please rephrase your question or open a support ticket."
)


@dataclass(frozen=True)
class Verdict:
    """What a guardrail decided: the action, the text to use (policy message or anonymized text)."""

    action: Action
    text: str
    stage: Stage
    reasons: tuple[str, ...] = ()

    @property
    def blocked(self) -> bool:
        return self.action == "BLOCKED"

    def as_metadata(self) -> dict[str, Any]:
        if self.action == "NONE":
            return {"action": "NONE", "stage": None, "message": None}
        return {
            "action": self.action,
            "stage": self.stage,
            "message": self.text if self.action == "BLOCKED" else None,
        }


class Guardrail(Protocol):
    """Checks a text at one stage; never raises for content, only for infrastructure failures."""

    name: str
    guardrail_id: str
    version: str

    def check(self, text: str, stage: Stage) -> Verdict: ...


# --- local policy -------------------------------------------------------------------------------

# Patterns for the PII types of the guardrail config (config/foundation.py PiiRule).
PII_PATTERNS: dict[str, re.Pattern[str]] = {
    "EMAIL": re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b"),
    "PHONE": re.compile(
        r"(?<![\w-])(?:\+?\d{1,3}[\s.-]?)?(?:\(\d{3}\)|\d{3})[\s.-]\d{3}[\s.-]\d{4}(?![\w-])"
    ),
    "CREDIT_DEBIT_CARD_NUMBER": re.compile(r"(?<!\d)(?:\d[ -]?){12,18}\d(?!\d)"),
    "CREDIT_DEBIT_CARD_CVV": re.compile(r"\b(?:cvv|cvc|security code)\s*[:#]?\s*\d{3,4}\b", re.IGNORECASE),
    "US_SOCIAL_SECURITY_NUMBER": re.compile(r"\b\d{3}-\d{2}-\d{4}\b"),
    "PASSWORD": re.compile(r"\b(?:password|passwd|pwd)\s*(?:is|:|=)\s*\S+", re.IGNORECASE),
    "AWS_ACCESS_KEY": re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    "AWS_SECRET_KEY": re.compile(r"(?<![A-Za-z0-9/+])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+])"),
    "IP_ADDRESS": re.compile(r"\b(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)\b"),
    "US_BANK_ACCOUNT_NUMBER": re.compile(
        r"\b(?:account|acct)\s*(?:number|no\.?|#)?\s*[:#]?\s*\d{8,17}\b", re.IGNORECASE
    ),
}

# Keyword rules for denied topics by (lower-cased) topic name; other topics match their examples.
_TOPIC_RULES: dict[str, tuple[re.Pattern[str], re.Pattern[str]]] = {
    "investment advice": (
        re.compile(
            r"\b(stocks?|shares|equit(y|ies)|bonds?|etfs?|index funds?|mutual funds?|bitcoin|btc|ethereum|"
            r"crypto\w*|securities|portfolio|invest\w*|retirement savings|401k|forex|options trading)\b",
            re.IGNORECASE,
        ),
        re.compile(
            r"\b(buy|sell|invest\w*|should i|recommend\w*|advice|advise|good time|worth|put my money|"
            r"returns?|profit\w*|trade|trading|hold)\b",
            re.IGNORECASE,
        ),
    ),
}

_WORD_RE = re.compile(r"[a-z]{4,}")
_STOPWORDS = frozenset(
    {
        "what",
        "which",
        "should",
        "would",
        "could",
        "with",
        "about",
        "that",
        "this",
        "there",
        "good",
        "time",
        "have",
    }
)


def _luhn_ok(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


@dataclass(frozen=True)
class DeniedTopic:
    name: str
    examples: tuple[str, ...] = ()


@dataclass
class LocalPolicy:
    """The local stand-in for the Bedrock guardrail: denied topics and PII rules, deterministic."""

    denied_topics: Sequence[DeniedTopic] = (DeniedTopic("Investment advice"),)
    pii: dict[str, str] = field(
        default_factory=lambda: {
            "CREDIT_DEBIT_CARD_NUMBER": "BLOCK",
            "US_SOCIAL_SECURITY_NUMBER": "BLOCK",
            "PASSWORD": "BLOCK",
            "AWS_SECRET_KEY": "BLOCK",
            "PHONE": "ANONYMIZE",
        }
    )
    blocked_input_message: str = DEFAULT_BLOCKED_INPUT
    blocked_output_message: str = DEFAULT_BLOCKED_OUTPUT
    name: str = "local-policy"
    guardrail_id: str = "local"
    version: str = "local"

    def __post_init__(self) -> None:
        unknown = sorted(set(self.pii) - set(PII_PATTERNS))
        if unknown:
            raise ValueError(f"unknown PII types {unknown}; known: {sorted(PII_PATTERNS)}")
        bad = {k: v for k, v in self.pii.items() if v not in ("BLOCK", "ANONYMIZE")}
        if bad:
            raise ValueError(f"PII actions must be BLOCK or ANONYMIZE, got {bad}")

    @classmethod
    def from_json(cls, raw: str | None) -> LocalPolicy:
        """Build from the JSON `make local` derives from the `guardrail` config section (None: defaults)."""
        if not raw:
            return cls()
        data = json.loads(raw)
        topics = tuple(
            DeniedTopic(name=str(t["name"]), examples=tuple(str(e) for e in t.get("examples", ())))
            for t in data.get("denied_topics", ())
        )
        return cls(
            denied_topics=topics,
            pii={str(r["type"]): str(r["action"]) for r in data.get("pii", ())},
            blocked_input_message=str(data.get("blocked_input_message") or DEFAULT_BLOCKED_INPUT),
            blocked_output_message=str(data.get("blocked_output_message") or DEFAULT_BLOCKED_OUTPUT),
        )

    def _topic_hit(self, text: str) -> str | None:
        for topic in self.denied_topics:
            rule = _TOPIC_RULES.get(topic.name.lower())
            if rule is not None:
                subject, intent = rule
                if subject.search(text) and intent.search(text):
                    return topic.name
                continue
            words = set(_WORD_RE.findall(text.lower())) - _STOPWORDS
            for example in topic.examples:
                example_words = set(_WORD_RE.findall(example.lower())) - _STOPWORDS
                if example_words and len(words & example_words) >= min(2, len(example_words)):
                    return topic.name
        return None

    def _pii_hits(self, text: str) -> list[tuple[str, str, re.Match[str]]]:
        hits = []
        for pii_type, action in self.pii.items():
            for match in PII_PATTERNS[pii_type].finditer(text):
                if pii_type == "CREDIT_DEBIT_CARD_NUMBER":
                    digits = re.sub(r"\D", "", match.group())
                    if not (13 <= len(digits) <= 19 and _luhn_ok(digits)):
                        continue
                hits.append((pii_type, action, match))
        return hits

    def check(self, text: str, stage: Stage) -> Verdict:
        blocked_message = self.blocked_input_message if stage == "input" else self.blocked_output_message
        topic = self._topic_hit(text)
        if topic is not None:
            return Verdict("BLOCKED", blocked_message, stage, (f"topic:{topic}",))
        hits = self._pii_hits(text)
        blocking = [pii_type for pii_type, action, _ in hits if action == "BLOCK"]
        if blocking:
            return Verdict(
                "BLOCKED", blocked_message, stage, tuple(f"pii:{t}" for t in sorted(set(blocking)))
            )
        if hits:
            anonymized = text
            for pii_type, _, match in sorted(hits, key=lambda h: h[2].start(), reverse=True):
                anonymized = anonymized[: match.start()] + "{" + pii_type + "}" + anonymized[match.end() :]
            return Verdict(
                "ANONYMIZED", anonymized, stage, tuple(f"pii:{t}" for t in sorted({h[0] for h in hits}))
            )
        return Verdict("NONE", text, stage)


# --- Bedrock ------------------------------------------------------------------------------------


class BedrockGuardrail:
    """Bedrock `ApplyGuardrail` against a published guardrail version."""

    name = "bedrock-guardrail"

    def __init__(self, guardrail_id: str, version: str, region: str | None, client: Any = None) -> None:
        if version.upper() == "DRAFT":
            raise ValueError("GUARDRAIL_VERSION must be a published version, not DRAFT")
        self.guardrail_id = guardrail_id
        self.version = version
        if client is None:
            import boto3  # deferred: deployed mode only

            client = boto3.client("bedrock-runtime", region_name=region)
        self._client = client

    def check(self, text: str, stage: Stage) -> Verdict:
        response = self._client.apply_guardrail(
            guardrailIdentifier=self.guardrail_id,
            guardrailVersion=self.version,
            source="INPUT" if stage == "input" else "OUTPUT",
            content=[{"text": {"text": text}}],
        )
        if response.get("action") != "GUARDRAIL_INTERVENED":
            return Verdict("NONE", text, stage)
        output = "".join(part.get("text", "") for part in response.get("outputs", []))
        reasons = _assessment_reasons(response.get("assessments", []))
        blocked = any(action == "BLOCKED" for _, action in reasons)
        return Verdict(
            "BLOCKED" if blocked else "ANONYMIZED",
            output or text,
            stage,
            tuple(reason for reason, _ in reasons),
        )


def _assessment_reasons(assessments: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(reason, action) pairs from ApplyGuardrail assessments, e.g. ('topic:Investment advice', 'BLOCKED')."""
    reasons: list[tuple[str, str]] = []
    for assessment in assessments:
        for topic in assessment.get("topicPolicy", {}).get("topics", []):
            reasons.append((f"topic:{topic.get('name')}", str(topic.get("action"))))
        for item in assessment.get("contentPolicy", {}).get("filters", []):
            reasons.append((f"content:{item.get('type')}", str(item.get("action"))))
        for item in assessment.get("sensitiveInformationPolicy", {}).get("piiEntities", []):
            reasons.append((f"pii:{item.get('type')}", str(item.get("action"))))
        for item in assessment.get("sensitiveInformationPolicy", {}).get("regexes", []):
            reasons.append((f"regex:{item.get('name')}", str(item.get("action"))))
        for item in assessment.get("wordPolicy", {}).get("customWords", []):
            reasons.append(("word:custom", str(item.get("action"))))
        for item in assessment.get("wordPolicy", {}).get("managedWordLists", []):
            reasons.append((f"word:{item.get('type')}", str(item.get("action"))))
        for item in assessment.get("contextualGroundingPolicy", {}).get("filters", []):
            reasons.append((f"grounding:{item.get('type')}", str(item.get("action"))))
    return reasons

"""A scripted model that plays the golden dataset, for `make eval` and the pipeline tests.

It stands in for the LLM only (everything else is real: LiteLLM, the agent, the MCP tool server, the
embedded index, the guardrail). For an agent request it finds the golden turn whose input is the last
user message and calls that turn's expected tools with plausible arguments, then answers from the
reference answer, citing the first passage the knowledge tool really returned. For a judge request
(system prompt `# Rubric: <metric>`) it returns a verdict computed from word overlap: the answer's words
found in the retrieved passages (faithfulness), the reference's words found in the answer (correctness).

So the scores of such a run measure the pipeline (retrieval, tool plumbing, guardrail, metadata,
scoring, reporting), never the quality of a model.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from eval.dataset import GoldenCase, Turn
from local_stack.scripted_model import Reply, Text, ToolCall, ToolCalls, echo_last_user_message
from tools.specs import spec

TICKET_ID = re.compile(r"TCK-[0-9A-F]{8}")
WORD = re.compile(r"[a-z0-9][a-z0-9.+$-]{2,}")
STOPWORDS = frozenset(
    [
        "the",
        "and",
        "for",
        "you",
        "your",
        "with",
        "that",
        "this",
        "from",
        "are",
        "can",
        "not",
        "has",
        "have",
        "was",
        "will",
        "its",
        "into",
        "when",
        "then",
        "than",
        "they",
        "them",
        "what",
        "which",
        "how",
        "does",
        "also",
        "only",
        "one",
        "use",
        "using",
        "about",
        "after",
        "before",
        "more",
        "most",
        "any",
        "all",
    ]
)


def _content(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, list):
        return " ".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return str(content or "")


def _words(text: str) -> set[str]:
    return {w.strip(".-") for w in WORD.findall(text.lower())} - STOPWORDS


def _overlap_score(needles: str, haystack: str) -> tuple[int, float]:
    wanted = _words(needles)
    if not wanted:
        return 3, 0.0
    share = len(wanted & _words(haystack)) / len(wanted)
    return 1 + round(share * 4), share


class GoldenModel:
    """The responder (`ScriptedModel(responder=GoldenModel(cases))`)."""

    def __init__(self, cases: Sequence[GoldenCase]) -> None:
        self.turns: list[Turn] = [turn for case in cases for turn in case.turns]

    def __call__(self, request: dict[str, Any]) -> Reply:
        messages = request.get("messages") or []
        if (
            messages
            and messages[0].get("role") == "system"
            and _content(messages[0]).startswith("# Rubric: ")
        ):
            return self._verdict(messages)
        user = next((m for m in reversed(messages) if m.get("role") == "user"), None)
        turn = self._turn(_content(user)) if user else None
        if turn is None:
            return echo_last_user_message(request)
        last = messages[-1]
        if last.get("role") == "tool" or not turn.expected_tools:
            return Text(self._answer(turn, messages))
        return ToolCalls(
            [
                ToolCall(tool.name, self._arguments(tool.name, tool.arguments, turn, messages))
                for tool in turn.expected_tools
            ]
        )

    def _turn(self, text: str) -> Turn | None:
        matches = [turn for turn in self.turns if turn.input.strip() and turn.input.strip() in text]
        return max(matches, key=lambda t: len(t.input), default=None)

    def _arguments(
        self, name: str, expected: dict[str, Any], turn: Turn, messages: list[dict[str, Any]]
    ) -> dict[str, Any]:
        schema = spec(name).input_schema
        properties: dict[str, Any] = schema.get("properties", {})
        arguments: dict[str, Any] = {}
        for key in set(expected) | set(schema.get("required", [])):
            prop = properties.get(key, {})
            want = expected.get(key)
            option = want["any_of"][0] if isinstance(want, dict) and "any_of" in want else want
            if "pattern" in prop or (isinstance(want, dict) and "pattern" in want):
                found = TICKET_ID.findall(" ".join(_content(m) for m in messages))
                arguments[key] = found[-1] if found else "TCK-00000000"
            elif key == "subject" and option is None:
                arguments[key] = turn.input[:80]
            elif "enum" in prop or key == "email" or (option is not None and not isinstance(option, str)):
                arguments[key] = option if option is not None else prop["enum"][0]
            else:  # free text: the user's words, led by the key term when the user did not say it
                prefix = "" if option is None or option.casefold() in turn.input.casefold() else f"{option} "
                arguments[key] = f"{prefix}{turn.input}"[: prop.get("maxLength", 1000)]
        return arguments

    def _answer(self, turn: Turn, messages: list[dict[str, Any]]) -> str:
        answer = turn.reference_answer or "I can help with Nimbus products, orders and support tickets."
        results = [_content(m) for m in messages if m.get("role") == "tool"]
        tail = ""
        for result in reversed(results):
            tickets = TICKET_ID.findall(result)
            if tickets:
                tail = f" Your ticket is {tickets[-1]}."
                break
            hit = _first_hit(result)
            if hit:
                page = f", p. {hit['page']}" if hit.get("page") else ""
                tail = f" [{hit.get('title', 'source')}{page}]"
                break
        return answer + tail

    def _verdict(self, messages: list[dict[str, Any]]) -> Reply:
        metric = _content(messages[0]).split("\n", 1)[0].removeprefix("# Rubric: ").strip()
        sections = _sections(_content(messages[1]))
        answer = re.sub(r"\[[^\]]*\]", "", sections.get("Agent answer", ""))
        if metric == "faithfulness":
            score, share = _overlap_score(answer, sections.get("Retrieved passages", ""))
            reason = f"{share:.0%} of the answer's words appear in the retrieved passages (scripted judge)"
        elif metric == "correctness":
            score, share = _overlap_score(sections.get("Reference answer", ""), answer)
            reason = f"{share:.0%} of the reference's words appear in the answer (scripted judge)"
        else:
            score = 5 if len(answer.strip()) >= 20 else 2
            reason = (
                "answer is substantive (scripted judge)"
                if score == 5
                else "answer is very short (scripted judge)"
            )
        return Text(json.dumps({"score": score, "reason": reason}))


def _sections(text: str) -> dict[str, str]:
    """The judge message's tagged parts: `<agent_answer>...</agent_answer>` -> {"Agent answer": ...}."""
    found = re.findall(r"<([a-z_]+)>\n(.*?)\n</\1>", text, flags=re.DOTALL)
    return {name.replace("_", " ").capitalize(): body for name, body in found}


def _first_hit(result: str) -> dict[str, Any] | None:
    for candidate in _json_candidates(result):
        if (
            isinstance(candidate, dict)
            and isinstance(candidate.get("results"), list)
            and candidate["results"]
        ):
            first = candidate["results"][0]
            return first if isinstance(first, dict) else None
    return None


def _json_candidates(text: str) -> list[Any]:
    try:
        value = json.loads(text)
    except (TypeError, ValueError):
        return []
    found = [value]
    if isinstance(value, list):
        for block in value:
            if isinstance(block, dict) and isinstance(block.get("text"), str):
                found.extend(_json_candidates(block["text"]))
    return found

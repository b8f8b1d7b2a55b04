"""LLM-as-judge through the LLM gateway (OpenAI-compatible), with rubric prompts kept as files.

The judge must answer a JSON object `{"score": 1-5, "reason": "..."}`. A reply that is not exactly that is
sent back with the validation error and retried; when the retries are spent the verdict is recorded as an
error (value None), never as a zero.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from eval.scores import Score

logger = logging.getLogger(__name__)

RUBRICS_DIR = Path(__file__).resolve().parent / "rubrics"
JudgeMetric = Literal["faithfulness", "correctness", "helpfulness"]
JUDGE_METRICS: tuple[JudgeMetric, ...] = ("faithfulness", "correctness", "helpfulness")
MAX_PASSAGE_CHARS = 4000
MAX_BACKOFF = 30.0

VERDICT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "score": {"type": "integer", "minimum": 1, "maximum": 5},
        "reason": {"type": "string", "minLength": 1},
    },
    "required": ["score", "reason"],
    "additionalProperties": False,
}


class Verdict(BaseModel):
    """The judge's structured output."""

    model_config = ConfigDict(extra="forbid")

    score: int = Field(ge=1, le=5, strict=True)
    reason: str = Field(min_length=1, max_length=2000)

    @property
    def normalized(self) -> float:
        """The 1-5 score mapped onto 0..1."""
        return (self.score - 1) / 4


class MalformedVerdict(ValueError):
    """The judge's reply is not a valid verdict."""


@dataclass(frozen=True)
class Passage:
    """A retrieved passage, as returned by a knowledge tool."""

    text: str
    title: str = ""
    page: int | None = None


def parse_verdict(content: str | None) -> Verdict:
    """Validate a judge reply: one JSON object (optionally in a ```json fence) with score and reason."""
    if not content or not content.strip():
        raise MalformedVerdict("the reply is empty")
    text = content.strip()
    fenced = re.fullmatch(r"```(?:json)?\s*(.*?)\s*```", text, flags=re.DOTALL)
    if fenced:
        text = fenced.group(1)
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as exc:
        raise MalformedVerdict(f"the reply is not JSON ({exc.msg})") from None
    if not isinstance(payload, dict):
        raise MalformedVerdict("the reply must be a JSON object")
    try:
        return Verdict.model_validate(payload)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "reply"
        raise MalformedVerdict(f"{where}: {first['msg']}") from None


def load_rubric(metric: str, rubrics_dir: Path = RUBRICS_DIR) -> str:
    path = rubrics_dir / f"{metric}.md"
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FileNotFoundError(f"rubric for {metric!r} missing: {path}") from None


def build_user_message(
    metric: JudgeMetric,
    *,
    question: str,
    answer: str,
    passages: Sequence[Passage] = (),
    reference: str | None = None,
    conversation: Sequence[tuple[str, str]] = (),
) -> str:
    """The material the judge reads, each part in its own tag (passages often contain markdown headings,
    so headings cannot delimit the parts)."""
    parts: list[str] = []
    if conversation:
        history = "\n".join(f"{role}: {_escape(text)}" for role, text in conversation)
        parts.append(f"<earlier_conversation>\n{history}\n</earlier_conversation>")
    parts.append(f"<user_question>\n{_escape(question)}\n</user_question>")
    if metric == "faithfulness":
        rendered = "\n".join(_passage(i, p) for i, p in enumerate(passages, start=1))
        parts.append(f"<retrieved_passages>\n{rendered}\n</retrieved_passages>")
    if metric == "correctness":
        parts.append(f"<reference_answer>\n{_escape(reference or '')}\n</reference_answer>")
    parts.append(f"<agent_answer>\n{_escape(answer)}\n</agent_answer>")
    return "\n\n".join(parts)


def _passage(index: int, passage: Passage) -> str:
    page = f' page="{passage.page}"' if passage.page is not None else ""
    body = _escape(passage.text[:MAX_PASSAGE_CHARS])
    return f'<passage index="{index}" title="{_escape(passage.title)}"{page}>\n{body}\n</passage>'


def _escape(text: str) -> str:
    """Keep the material from closing or opening our tags."""
    return text.replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;") if text else ""


class Judge:
    """Scores answers with rubric prompts through an OpenAI-compatible gateway.

    Args:
        base_url: gateway base URL without `/v1` (the `LLM_GATEWAY_URL` convention).
        api_key: the gateway key of the evaluation consumer.
        model: the judge alias from the model catalog (`models.judge_alias`).
        retries: extra attempts after a malformed reply or a transient gateway error.
        timeout: seconds per request.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        model: str,
        *,
        retries: int = 2,
        timeout: float = 60.0,
        rubrics_dir: Path = RUBRICS_DIR,
    ) -> None:
        if not base_url:
            raise ValueError("the judge needs the gateway URL (setting LLM_GATEWAY_URL)")
        if not model:
            raise ValueError("the judge needs a model alias (setting EVAL_JUDGE_MODEL or models.judge_alias)")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.retries = retries
        self.rubrics = {metric: load_rubric(metric, rubrics_dir) for metric in JUDGE_METRICS}
        self._client = httpx.Client(timeout=timeout, headers={"Authorization": f"Bearer {api_key}"})

    def close(self) -> None:
        self._client.close()

    def score(
        self,
        metric: JudgeMetric,
        *,
        question: str,
        answer: str,
        passages: Sequence[Passage] = (),
        reference: str | None = None,
        conversation: Sequence[tuple[str, str]] = (),
    ) -> Score:
        """One verdict as a Score on 0..1 (or an error Score when the judge never answered properly)."""
        messages: list[dict[str, str]] = [
            {"role": "system", "content": self.rubrics[metric]},
            {
                "role": "user",
                "content": build_user_message(
                    metric,
                    question=question,
                    answer=answer,
                    passages=passages,
                    reference=reference,
                    conversation=conversation,
                ),
            },
        ]
        problems: list[str] = []
        for attempt in range(self.retries + 1):
            try:
                content = self._complete(messages)
            except _TransientError as exc:
                problems.append(str(exc))
                if attempt < self.retries:
                    time.sleep(
                        exc.retry_after if exc.retry_after is not None else min(MAX_BACKOFF, 0.5 * 4**attempt)
                    )
                continue
            except _PermanentError as exc:
                return Score(name=metric, value=None, kind="judge", error=str(exc))
            try:
                verdict = parse_verdict(content)
            except MalformedVerdict as exc:
                problems.append(f"malformed verdict: {exc}")
                logger.info("judge %s attempt %d malformed: %s", metric, attempt + 1, exc)
                messages = [
                    *messages[:2],
                    {"role": "assistant", "content": content or ""},
                    {
                        "role": "user",
                        "content": f"That reply was not valid ({exc}). Answer with only a JSON object "
                        'like {"score": 4, "reason": "..."} with an integer score from 1 to 5.',
                    },
                ]
                continue
            return Score(
                name=metric,
                value=verdict.normalized,
                reason=f"{verdict.score}/5: {verdict.reason}",
                kind="judge",
            )
        return Score(
            name=metric,
            value=None,
            kind="judge",
            error=f"no valid verdict after {self.retries + 1} attempts: {problems[-1] if problems else 'unknown'}",
        )

    def _complete(self, messages: list[dict[str, str]]) -> str | None:
        body = {
            "model": self.model,
            "messages": messages,
            "temperature": 0,
            "max_tokens": 400,
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "verdict", "schema": VERDICT_SCHEMA, "strict": True},
            },
        }
        try:
            response = self._client.post(f"{self.base_url}/v1/chat/completions", json=body)
        except httpx.TransportError as exc:
            raise _TransientError(f"gateway unreachable: {exc}") from None
        if response.status_code in (408, 429) or response.status_code >= 500:
            raise _TransientError(
                f"gateway answered HTTP {response.status_code}: {response.text[:200]}",
                retry_after=_retry_after(response.headers.get("retry-after")),
            )
        if response.status_code >= 300:
            raise _PermanentError(f"gateway answered HTTP {response.status_code}: {response.text[:300]}")
        try:
            choice = response.json()["choices"][0]["message"]
        except (ValueError, KeyError, IndexError, TypeError):
            raise _TransientError("gateway reply has no choices[0].message") from None
        content = choice.get("content")
        return content if isinstance(content, str) else None


class _TransientError(RuntimeError):
    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (rate limits), capped so a run never stalls for long."""
    try:
        return min(MAX_BACKOFF, max(0.0, float(value))) if value else None
    except ValueError:
        return None


class _PermanentError(RuntimeError):
    pass

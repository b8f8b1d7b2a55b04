"""The output guardrail over a streamed answer (docs/agent.md, "A turn", step 6).

Model text is held back until a flush point (`flush_point`), then that chunk is checked and, if it
passes, released to the stream. A blocked chunk ends the answer: nothing more is released and the
turn stops the model. When the model is done, the held-back rest is checked and released (`finish`);
then, when the answer went out in more than one chunk, the whole answer is checked once more
(`check_whole`): context across chunks can change the verdict (a denied topic whose subject and intent
fall in different sentences). A whole-answer block cannot unsend the chunks already streamed (each was
checked and allowed on its own); the turn's answer (`done.answer`, the JSON `answer`, memory, trace)
is then the policy message, and `metadata.guardrail` says `BLOCKED` at stage `output`.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

from agent.guardrails import Verdict

SENTENCE_END = re.compile(r"[.!?:\n](?:\s|$)")
FORCE_FLUSH_FACTOR = 4  # past this many times flush_chars, text is released even without a sentence end

CheckText = Callable[[str], Awaitable[Verdict]]


def flush_point(pending: str, flush_chars: int) -> int:
    """How much of the pending text to check and release now (0: keep holding it back).

    Text is released at the last sentence end once at least `flush_chars` are pending (or all of it
    past FORCE_FLUSH_FACTOR times that), so the guardrail sees whole sentences.
    """
    if len(pending) < flush_chars:
        return 0
    ends = [match.end() for match in SENTENCE_END.finditer(pending)]
    if ends:
        return ends[-1]
    return len(pending) if len(pending) >= FORCE_FLUSH_FACTOR * flush_chars else 0


class OutputGuard:
    """Checks one answer chunk by chunk as it streams, then as a whole; decides the final answer."""

    def __init__(self, check: CheckText, flush_chars: int) -> None:
        self._check = check
        self._flush_chars = flush_chars
        self._pending = ""
        self._parts: list[str] = []
        self._whole: str | None = None  # the whole answer as the final check anonymized it
        self._anonymized = False
        self.blocked: Verdict | None = None

    async def feed(self, delta: str) -> str:
        """Add model text; the checked text to stream now ("" while held back, and after a block)."""
        if self.blocked is not None:
            return ""
        self._pending += delta
        cut = flush_point(self._pending, self._flush_chars)
        if not cut:
            return ""
        chunk, self._pending = self._pending[:cut], self._pending[cut:]
        return await self._release(chunk)

    async def finish(self) -> str:
        """Check and release the held-back rest (the model is done)."""
        if self.blocked is not None or not self._pending:
            return ""
        rest, self._pending = self._pending, ""
        return await self._release(rest)

    async def check_whole(self) -> None:
        """Check the whole answer when it was released in more than one chunk."""
        answer = self._joined()
        if self.blocked is not None or len(self._parts) < 2 or not answer:
            return
        verdict = await self._check(answer)
        if verdict.blocked:
            self.blocked = verdict
        elif verdict.action == "ANONYMIZED":
            self._whole, self._anonymized = verdict.text, True

    def outcome(self, input_verdict: Verdict) -> tuple[str, Verdict]:
        """The turn's answer and guardrail verdict: a block (its policy message) over an anonymized
        output, over an anonymized input, over none."""
        if self.blocked is not None:
            return self.blocked.text, self.blocked
        answer = self._whole if self._whole is not None else self._joined()
        if self._anonymized:
            return answer, Verdict("ANONYMIZED", answer, "output")
        if input_verdict.action == "ANONYMIZED":
            return answer, input_verdict
        return answer, Verdict("NONE", answer, "output")

    def _joined(self) -> str:
        return "".join(self._parts).strip()

    async def _release(self, text: str) -> str:
        verdict = await self._check(text)
        if verdict.blocked:
            self.blocked = verdict
            return ""
        self._anonymized |= verdict.action == "ANONYMIZED"
        self._parts.append(verdict.text)
        return verdict.text

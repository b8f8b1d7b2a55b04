"""Run golden cases against a target, k times each, and score every turn.

Execution (`execute_case`) and scoring (`CaseScorer.score_case`) are separate steps so the Langfuse
experiment API can run them as its task and its evaluator; `run_local` runs both in a thread pool when
Langfuse is not configured.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass

from eval.agent import AgentCallError, AgentReply, AgentTarget, new_session_id
from eval.dataset import GoldenCase, Turn
from eval.evaluators import PriceTable, code_scores
from eval.judge import Judge, JudgeMetric, Passage
from eval.results import KNOWLEDGE_TOOLS, CaseResult, Repetition, TurnResult
from eval.scores import Score

logger = logging.getLogger(__name__)

MAX_BACKOFF_SECONDS = 8.0

# (reply) -> (passages or None when unavailable, where they came from)
ContextSource = Callable[[AgentReply], tuple[list[Passage] | None, str | None]]


@dataclass(frozen=True)
class RunSettings:
    concurrency: int = 4
    retries: int = 2
    k: int = 1
    pass_threshold: float = 0.75

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if self.retries < 0:
            raise ValueError("retries cannot be negative")
        if not 1 <= self.k <= 20:
            raise ValueError("k must be between 1 and 20")
        if not 0.0 <= self.pass_threshold <= 1.0:
            raise ValueError("pass threshold must be between 0 and 1")


def metadata_passages(reply: AgentReply) -> tuple[list[Passage] | None, str | None]:
    """Passages from the reply's citations, when the agent includes their text (`citations[].text`)."""
    passages = [Passage(text=c.text, title=c.title, page=c.page) for c in reply.metadata.citations if c.text]
    return (passages, "metadata") if passages else (None, None)


def call_with_retries(
    target: AgentTarget, prompt: str, session_id: str, retries: int
) -> tuple[AgentReply, int]:
    """Invoke the target, retrying transient failures with exponential backoff; returns (reply, attempts)."""
    attempt = 0
    while True:
        attempt += 1
        try:
            return target.invoke(prompt, session_id), attempt
        except AgentCallError as exc:
            if not exc.retryable or attempt > retries:
                raise
            delay = min(MAX_BACKOFF_SECONDS, 0.5 * 2 ** (attempt - 1))
            logger.info("turn failed (%s); retry %d/%d in %.1fs", exc, attempt, retries, delay)
            time.sleep(delay)


def execute_case(case: GoldenCase, target: AgentTarget, settings: RunSettings) -> CaseResult:
    """Send every turn of the case, k times, each repetition in a fresh session."""
    result = CaseResult(case_id=case.id, category=case.category, tags=list(case.tags), turns=len(case.turns))
    for number in range(1, settings.k + 1):
        rep = Repetition(number=number, session_id=new_session_id())
        failed = False
        for index, turn in enumerate(case.turns):
            if failed:
                rep.turns.append(
                    TurnResult(
                        index=index, input=turn.input, error="skipped: an earlier turn failed", attempts=0
                    )
                )
                continue
            try:
                reply, attempts = call_with_retries(target, turn.input, rep.session_id, settings.retries)
                rep.turns.append(TurnResult(index=index, input=turn.input, reply=reply, attempts=attempts))
            except AgentCallError as exc:
                failed = True
                rep.turns.append(
                    TurnResult(index=index, input=turn.input, error=str(exc), attempts=settings.retries + 1)
                )
        result.repetitions.append(rep)
    return result


class CaseScorer:
    """Scores executed cases with the code evaluators and (when configured) the LLM judge."""

    def __init__(
        self,
        *,
        judge: Judge | None,
        prices: PriceTable,
        pass_threshold: float = 0.75,
        context: ContextSource = metadata_passages,
    ) -> None:
        self.judge = judge
        self.prices = prices
        self.pass_threshold = pass_threshold
        self.context = context

    def score_case(self, case: GoldenCase, result: CaseResult) -> CaseResult:
        for rep in result.repetitions:
            history: list[tuple[str, str]] = []
            for expected, turn in zip(case.turns, rep.turns, strict=True):
                if turn.reply is not None:
                    turn.scores = code_scores(expected, turn.reply, self.prices)
                    turn.scores.extend(self._judge_turn(expected, turn, history))
                    history.extend([("user", turn.input), ("assistant", turn.reply.answer)])
            rep.failures = self._failures(rep)
            rep.passed = not rep.failures
        return result

    def _judge_turn(
        self, expected: Turn, turn: TurnResult, history: Sequence[tuple[str, str]]
    ) -> list[Score]:
        reply = turn.reply
        if self.judge is None or reply is None or reply.metadata.guardrail.action == "BLOCKED":
            return []
        scores: list[Score] = []
        common = {"question": turn.input, "answer": reply.answer, "conversation": tuple(history)}
        retrieved = any(t.name in KNOWLEDGE_TOOLS for t in reply.metadata.tools) or bool(
            reply.metadata.citations
        )
        if retrieved:
            passages, source = self.context(reply)
            turn.passage_source = source
            if passages is None:
                scores.append(
                    Score(
                        name="faithfulness",
                        value=None,
                        kind="judge",
                        error="the text of the retrieved passages is unavailable (the reply's citations carry no "
                        "`text`)",
                    )
                )
            else:
                scores.append(self._verdict("faithfulness", passages=passages, **common))
        if expected.reference_answer:
            scores.append(self._verdict("correctness", reference=expected.reference_answer, **common))
        scores.append(self._verdict("helpfulness", **common))
        return scores

    def _verdict(self, metric: JudgeMetric, **kwargs: object) -> Score:
        assert self.judge is not None
        try:
            return self.judge.score(metric, **kwargs)  # type: ignore[arg-type]
        except Exception as exc:  # a judge bug must not sink the run; it is recorded as an error
            logger.exception("judge %s failed", metric)
            return Score(name=metric, value=None, kind="judge", error=f"judge failed: {exc}")

    def _failures(self, rep: Repetition) -> list[str]:
        failures: list[str] = []
        for turn in rep.turns:
            where = f"turn {turn.index + 1}"
            if turn.error:
                failures.append(f"{where}: {turn.error}")
                continue
            if turn.reply is not None:
                failures.extend(
                    f"{where}: tool {tool.name} failed: {tool.error}"
                    for tool in turn.reply.metadata.tools
                    if tool.status == "error"
                )
            for score in turn.scores:
                if score.value is None:
                    continue
                if score.name in (
                    "guardrail_correct",
                    "tool_recall",
                    "tool_arguments",
                    "retrieval_hit_rate",
                    "answer_contains",
                ):
                    if score.value < 1.0:
                        failures.append(f"{where}: {score.name} {score.value:.2f} ({score.reason})")
                elif score.kind == "judge" and score.value < self.pass_threshold:
                    failures.append(f"{where}: {score.name} {score.value:.2f} < {self.pass_threshold}")
        return failures


ProgressCallback = Callable[[CaseResult], None]


def run_local(
    cases: Sequence[GoldenCase],
    target: AgentTarget,
    scorer: CaseScorer,
    settings: RunSettings,
    on_case_done: ProgressCallback | None = None,
) -> list[CaseResult]:
    """Execute and score every case with `settings.concurrency` workers; results keep the dataset order."""
    results: dict[str, CaseResult] = {}
    lock = threading.Lock()

    def work(case: GoldenCase) -> CaseResult:
        return scorer.score_case(case, execute_case(case, target, settings))

    with ThreadPoolExecutor(max_workers=settings.concurrency, thread_name_prefix="eval") as pool:
        futures = {pool.submit(work, case): case for case in cases}
        for future in as_completed(futures):
            result = future.result()
            with lock:
                results[result.case_id] = result
            if on_case_done:
                on_case_done(result)
    return [results[case.id] for case in cases]

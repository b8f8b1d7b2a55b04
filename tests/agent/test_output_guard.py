"""The output guardrail over a streamed answer (agent/output_guard.py, docs/agent.md step 6).

Unit tests drive `OutputGuard` with a recording check; the turn tests run the real service with the
real `LocalPolicy` and show the documented behaviour: chunks that pass on their own are streamed, and
when the whole answer fails (a denied topic whose subject and intent fall in different sentences) the
turn's answer is the policy message, already-streamed text stays sent, and memory keeps the message.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from agent.guardrails import DEFAULT_BLOCKED_OUTPUT, LocalPolicy, Verdict
from agent.identity import Caller
from agent.output_guard import FORCE_FLUSH_FACTOR, OutputGuard, flush_point
from agent.payload import Invocation
from local_stack.scripted_strands import Say

SESSION = "s-" + "g" * 32
SUBJECT = "Many customers ask us about stocks these days."  # a denied-topic subject, no intent
INTENT = "This firmware update is worth it, so buy the new router now."  # intent words, no subject


class Recorder:
    """A guardrail check that blocks or anonymizes the texts it is told to, and records every call."""

    def __init__(self, block: set[str] | None = None, anonymize: dict[str, str] | None = None) -> None:
        self.block = block or set()
        self.anonymize = anonymize or {}
        self.calls: list[str] = []

    async def __call__(self, text: str) -> Verdict:
        self.calls.append(text)
        if text in self.block:
            return Verdict("BLOCKED", "POLICY", "output", ("topic:x",))
        if text in self.anonymize:
            return Verdict("ANONYMIZED", self.anonymize[text], "output", ("pii:PHONE",))
        return Verdict("NONE", text, "output")


def run(coro: Any) -> Any:
    return asyncio.run(coro)


@pytest.mark.parametrize(
    ("pending", "flush", "cut"),
    [
        ("Short. ", 20, 0),  # under flush_chars: hold back
        ("One sentence. Another one that runs", 20, len("One sentence. ")),  # the last sentence end
        ("A. B! C? D: tail words here", 10, len("A. B! C? D: ")),
        ("Ends with a stop.", 10, len("Ends with a stop.")),  # a sentence end at the very end
        ("line one\n\nline two", 5, len("line one\n\n")),  # a line end followed by whitespace
        ("version 1.5 of the firmware", 10, 0),  # a dot inside a number is no sentence end
        ("x" * 39, 10, 0),  # no sentence end, under FORCE_FLUSH_FACTOR * flush: hold back
        ("x" * 40, 10, 40),  # at it: release everything
        ("x" * 20, 20, 0),
        ("Exactly twenty char.", 20, 20),  # exactly flush_chars pending is enough
    ],
)
def test_flush_point(pending, flush, cut):
    assert flush_point(pending, flush) == cut
    assert FORCE_FLUSH_FACTOR == 4


def test_chunks_are_checked_before_release_and_the_whole_answer_after():
    check = Recorder()
    guard = OutputGuard(check, 10)

    async def scenario() -> list[str]:
        released = [
            await guard.feed("First sentence here. Sec"),
            await guard.feed("ond one"),
            await guard.finish(),
        ]
        await guard.check_whole()
        return released

    assert run(scenario()) == ["First sentence here. ", "", "Second one"]
    assert check.calls == ["First sentence here. ", "Second one", "First sentence here. Second one"]
    answer, verdict = guard.outcome(Verdict("NONE", "q", "input"))
    assert answer == "First sentence here. Second one"
    assert verdict == Verdict("NONE", answer, "output")


def test_parts_that_pass_but_whose_whole_fails_block_the_answer():
    whole = "Part one is fine. Part two is fine."
    check = Recorder(block={whole})
    guard = OutputGuard(check, 5)

    async def scenario() -> list[str]:
        released = [await guard.feed("Part one is fine. "), await guard.feed("Part two is fine.")]
        released.append(await guard.finish())
        await guard.check_whole()
        return released

    assert run(scenario()) == ["Part one is fine. ", "Part two is fine.", ""]
    assert guard.blocked is not None
    answer, verdict = guard.outcome(Verdict("ANONYMIZED", "q", "input"))
    assert (answer, verdict.action, verdict.stage) == ("POLICY", "BLOCKED", "output")


def test_a_single_chunk_answer_is_checked_once():
    check = Recorder()
    guard = OutputGuard(check, 80)

    async def scenario() -> None:
        assert await guard.feed("Short answer.") == ""
        assert await guard.finish() == "Short answer."
        await guard.check_whole()

    run(scenario())
    assert check.calls == ["Short answer."]


def test_a_blocked_chunk_releases_nothing_more():
    check = Recorder(block={"Bad sentence. "})
    guard = OutputGuard(check, 5)

    async def scenario() -> list[str]:
        released = [await guard.feed("Good sentence. "), await guard.feed("Bad sentence. ")]
        released += [await guard.feed("More text. "), await guard.finish()]
        await guard.check_whole()
        return released

    assert run(scenario()) == ["Good sentence. ", "", "", ""]
    assert check.calls == ["Good sentence. ", "Bad sentence. "]
    assert guard.outcome(Verdict("NONE", "q", "input"))[0] == "POLICY"


def test_anonymized_chunks_and_whole_answer():
    check = Recorder(anonymize={"Call 555 0142 now. ": "Call {PHONE} now. "})
    guard = OutputGuard(check, 5)

    async def scenario() -> None:
        assert await guard.feed("Call 555 0142 now. ") == "Call {PHONE} now. "
        await guard.finish()
        await guard.check_whole()

    run(scenario())
    assert guard.outcome(Verdict("NONE", "q", "input")) == (
        "Call {PHONE} now.",
        Verdict("ANONYMIZED", "Call {PHONE} now.", "output"),
    )

    whole = Recorder(anonymize={"One. Two.": "One. {X}."})
    guard = OutputGuard(whole, 2)

    async def two_parts() -> None:
        await guard.feed("One. ")
        await guard.feed("Two.")
        await guard.finish()
        await guard.check_whole()

    run(two_parts())
    assert guard.outcome(Verdict("NONE", "q", "input")) == (
        "One. {X}.",
        Verdict("ANONYMIZED", "One. {X}.", "output"),
    )


def test_an_anonymized_chunk_keeps_the_answer_anonymized_after_clean_chunks():
    check = Recorder(anonymize={"Call 555 0142. ": "Call {PHONE}. "})
    guard = OutputGuard(check, 5)

    async def scenario() -> None:
        await guard.feed("Call 555 0142. ")
        await guard.feed("Then wait. ")
        assert await guard.finish() == ""
        await guard.check_whole()

    run(scenario())
    assert guard.outcome(Verdict("NONE", "q", "input")) == (
        "Call {PHONE}. Then wait.",
        Verdict("ANONYMIZED", "Call {PHONE}. Then wait.", "output"),
    )


def test_finish_releases_the_rest_once():
    guard = OutputGuard(Recorder(), 80)

    async def scenario() -> list[str]:
        await guard.feed("tail")
        return [await guard.finish(), await guard.finish()]

    assert run(scenario()) == ["tail", ""]


def test_an_anonymized_input_is_the_turns_verdict_when_the_output_was_clean():
    guard = OutputGuard(Recorder(), 5)
    run(guard.feed("Fine. "))
    run(guard.finish())
    input_verdict = Verdict("ANONYMIZED", "call me at {PHONE}", "input", ("pii:PHONE",))
    assert guard.outcome(input_verdict) == ("Fine.", input_verdict)


def test_nothing_but_whitespace_is_an_empty_answer_and_not_rechecked():
    check = Recorder()
    guard = OutputGuard(check, 1)
    run(guard.feed(" \n"))
    run(guard.feed(" \n"))
    run(guard.check_whole())
    assert guard.outcome(Verdict("NONE", "q", "input"))[0] == ""
    assert len(check.calls) == 2


# --- the real turn -----------------------------------------------------------------------------------


def test_local_policy_passes_each_part_but_blocks_the_whole():
    policy = LocalPolicy()
    assert policy.check(SUBJECT, "output").action == "NONE"
    assert policy.check(INTENT, "output").action == "NONE"
    assert policy.check(f"{SUBJECT} {INTENT}", "output").blocked


def stream(service: Any, prompt: str) -> list[dict[str, Any]]:
    async def collect() -> list[dict[str, Any]]:
        return [e async for e in service.stream_turn(Invocation(prompt, SESSION, True), Caller("alice"))]

    return asyncio.run(collect())


def test_a_streamed_answer_whose_whole_fails_the_guardrail_ends_with_the_policy_message(make_service, model):
    service = make_service(stream_flush_chars=20)
    model.enqueue(Say(f"{SUBJECT} {INTENT}", chunk_chars=6))
    events = stream(service, "Tell me about the new router")
    texts = [e["delta"] for e in events if e["type"] == "text"]
    assert texts == [f"{SUBJECT} ", INTENT]  # each part passed on its own and was streamed
    done = events[-1]
    assert done["type"] == "done"
    assert done["answer"] == DEFAULT_BLOCKED_OUTPUT
    assert done["metadata"]["guardrail"] == {
        "action": "BLOCKED",
        "stage": "output",
        "message": DEFAULT_BLOCKED_OUTPUT,
    }
    remembered = service.memory.history("alice", SESSION, 5)
    assert [t.text for t in remembered] == ["Tell me about the new router", DEFAULT_BLOCKED_OUTPUT]


def test_the_json_answer_whose_whole_fails_is_the_policy_message(make_service, model):
    service = make_service(stream_flush_chars=20)
    model.enqueue(Say(f"{SUBJECT} {INTENT}"))
    result = asyncio.run(service.run_turn(Invocation("router?", SESSION, False), Caller("alice")))
    assert result["answer"] == DEFAULT_BLOCKED_OUTPUT
    assert result["metadata"]["guardrail"]["action"] == "BLOCKED"


def test_a_blocked_chunk_stops_the_stream_and_the_model(make_service, model):
    service = make_service(stream_flush_chars=20)
    model.enqueue(
        Say("Here is what I think. You should buy bitcoin and stocks now. And more text follows here.")
    )
    events = stream(service, "weather?")
    # the first sentence passed and went out; the blocked one and everything after it never did
    assert [e["delta"] for e in events if e["type"] == "text"] == ["Here is what I think. "]
    assert events[-1]["answer"] == DEFAULT_BLOCKED_OUTPUT
    assert events[-1]["metadata"]["guardrail"]["stage"] == "output"
    assert model.calls == 1

"""Credit every test with the code its shared (module- or session-scoped) fixtures ran, under mutmut.

mutmut (3.8.1, pinned in requirements-dev.txt) first runs the tests once in "stats" mode and records,
per test, the functions of the mutated package that ran between the test's start and its teardown
(`mutmut/runners/harness.py`, `StatsCollector.pytest_runtest_teardown`); afterwards a mutant runs only
the tests recorded for its function. A module-scoped fixture (every file here synthesizes one small
stack once per module: synthesis is slow) runs inside the FIRST test that uses it, so without this
plugin only that test is recorded and every assertion in the module's other tests never runs against a
mutant: a mutated distribution comment or health-check path "survives" although a test pins it.

In stats mode only (`MUTANT_UNDER_TEST=stats`, set by mutmut's `run_stats_collection`), this plugin
keeps the functions each shared fixture reached while it was set up and adds them to the record of every
test that uses the fixture's value, so a mutant of the construct runs every test that reads its
template. Outside mutmut it does nothing. It reads mutmut's `state()._stats` (the set
`stats.record_trampoline_hit` adds to); if a mutmut upgrade removes it, the stats run fails naming this
file instead of silently recording too few tests.
"""

from __future__ import annotations

import os
from collections.abc import Generator
from typing import Any

import pytest

STATS_MODE = "stats"
# Values that can be shared by unrelated fixtures: identity says nothing about who built them.
_UNTRACKED = (type(None), bool, int, float, str, bytes)


class _Attribution:
    """The functions each shared fixture value's setup reached: id(value) -> (value, names)."""

    def __init__(self, recorder: Any) -> None:
        self.recorder = recorder
        self.reached: dict[int, tuple[object, frozenset[str]]] = {}


def _mutmut_state() -> Any | None:
    """mutmut's state while it collects stats, else None."""
    if os.environ.get("MUTANT_UNDER_TEST") != STATS_MODE:
        return None
    from mutmut.state import state  # only importable (and only needed) under mutmut

    recorder = state()
    if not isinstance(getattr(recorder, "_stats", None), set):
        raise RuntimeError(
            "mutmut's state()._stats is gone (mutmut upgraded?): update the attribution plugin in "
            "tests/stacks/constructs/conftest.py, or mutants here run only the first test of each module"
        )
    return recorder


_ATTRIBUTION: list[_Attribution] = []


def _attribution() -> _Attribution | None:
    if not _ATTRIBUTION:
        recorder = _mutmut_state()
        if recorder is None:
            return None
        _ATTRIBUTION.append(_Attribution(recorder))
    return _ATTRIBUTION[0]


@pytest.hookimpl(hookwrapper=True)
def pytest_fixture_setup(fixturedef: pytest.FixtureDef[Any]) -> Generator[None, Any, None]:
    attribution = _attribution() if fixturedef.scope != "function" else None
    if attribution is None:
        yield
        return
    outer: set[str] = attribution.recorder._stats
    attribution.recorder._stats = set()
    outcome = yield
    reached: set[str] = attribution.recorder._stats
    attribution.recorder._stats = outer | reached  # the test that set the fixture up reached them too
    value = outcome.get_result() if outcome.exception is None else None
    if reached and not isinstance(value, _UNTRACKED):
        attribution.reached[id(value)] = (value, frozenset(reached))


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_call(item: pytest.Item) -> None:
    attribution = _attribution()
    if attribution is None or not isinstance(item, pytest.Function):
        return
    for value in item.funcargs.values():
        entry = attribution.reached.get(id(value))
        if entry is not None and entry[0] is value:
            attribution.recorder._stats |= entry[1]

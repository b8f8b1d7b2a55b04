"""Reliability suite: property-based fuzzing (fast, in `make test`) and fault injection against real
processes (marked slow). `FUZZ_EXAMPLES` raises the number of hypothesis examples per property."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from local_stack import components
from local_stack.processes import ManagedProcess, free_port

REPO = Path(__file__).resolve().parents[2]

settings.register_profile(
    "reliability",
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "25")),
    deadline=None,  # real processes on a loaded 2-core machine: latency is measured elsewhere
    database=None,  # never write .hypothesis/ into the working tree
    derandomize=os.environ.get("FUZZ_RANDOM", "") == "",  # reproducible in CI; FUZZ_RANDOM=1 explores
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    print_blob=True,
)
settings.load_profile("reliability")


def store_state(db: Path) -> str:
    """Everything in a SQLite ticket store, as SQL text (to prove a rejected call wrote nothing)."""
    with sqlite3.connect(db) as connection:
        return "\n".join(connection.iterdump())


def light_tool_server(db: Path, log: Path, port: int | None = None) -> ManagedProcess:
    """The real tool server app with the keyword knowledge backend (local_stack/light_tools.py)."""
    launch = components.tool_server(port or free_port(), db=db, environ={}, light=True, startup_timeout=60)
    return launch.process(log, grace_period=3)


@pytest.fixture(scope="module")
def tool_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path, ManagedProcess]]:
    state = tmp_path_factory.mktemp("tools")
    db = state / "tickets.db"
    with light_tool_server(db, state / "tools.log") as process:
        url = process.health_url.rsplit("/", 1)[0] + "/mcp"  # type: ignore[union-attr]
        yield url, db, process

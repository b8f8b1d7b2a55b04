"""Run every component under the recorder and check its calls: shared by the tests and the table."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from tests.permissions.checker import Checker, Report
from tests.permissions.components import COMPONENTS, Component
from tests.permissions.platform import platform_calls
from tests.permissions.recorder import Call, offline_aws, recording
from tests.permissions.resolver import REGION


@dataclass(frozen=True)
class Run:
    component: Component
    calls: tuple[Call, ...]
    report: Report


def run_component(checker: Checker, component: Component, tmp: Path | None = None) -> Run:
    located = component.locate(checker)
    with offline_aws(REGION), recording() as recorder:
        component.drive(located, checker, recorder, tmp or Path(tempfile.mkdtemp(prefix="perm-")))
    return Run(component, tuple(recorder.calls), checker.check(component.name, located.role, recorder.calls))


def run_all(checker: Checker) -> tuple[list[Run], list[Report]]:
    runs = [run_component(checker, component) for component in COMPONENTS]
    platform = [checker.check(p.name, p.role, p.calls) for p in platform_calls(checker)]
    return runs, platform

"""Fixtures: the dev assembly (synthesized once per session by tests/conftest.py) as a Checker.

`PERMISSIONS_ASSEMBLY=<cdk.out>` checks an already synthesized assembly instead, e.g. one synthesized
from an older commit in a `git worktree` to show that a test fails before a fix.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.permissions.checker import Checker
from tests.permissions.resolver import Assembly


@pytest.fixture(scope="session")
def checker(request: pytest.FixtureRequest) -> Checker:
    override = os.environ.get("PERMISSIONS_ASSEMBLY")
    directory = Path(override) if override else request.getfixturevalue("dev_assembly")
    return Checker(Assembly.load(directory))

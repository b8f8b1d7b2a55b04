"""The attribution plugin (conftest.py here) under the real, pinned mutmut: a toy package whose one function
only a module-scoped fixture calls, and three tests of which only the last two pin its result.

Without the plugin mutmut records only the test that set the fixture up, so every mutant survives; with
it, every test using the fixture runs against each mutant and kills it. Slow (it runs mutmut twice in
subprocesses, ~10 s each), so never run against mutants itself (`-m "not slow"` in scripts/mutation.py).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

PLUGIN = Path(__file__).with_name("conftest.py")
MUTMUT = Path(sys.executable).with_name("mutmut")

TOY_TESTS = """
import pytest
from toy import build


@pytest.fixture(scope="module")
def built():
    return build()


def test_sets_the_fixture_up(built):
    assert built


def test_a(built):
    assert built["a"] == 1


def test_b(built):
    assert built["b"] == "two"
"""


def _run_toy(root: Path, *, plugin: bool) -> tuple[dict[str, list[str]], dict[str, int]]:
    """mutmut over the toy in `root`: (tests recorded per function, exit code per mutant)."""
    (root / "toy").mkdir()
    (root / "toy" / "__init__.py").write_text('def build():\n    return {"a": 1, "b": "two"}\n')
    (root / "tests").mkdir()
    (root / "tests" / "__init__.py").write_text("")
    (root / "tests" / "test_toy.py").write_text(TOY_TESTS)
    if plugin:
        shutil.copy(PLUGIN, root / "tests" / "conftest.py")
    (root / "pyproject.toml").write_text(
        '[tool.mutmut]\nsource_paths = ["toy"]\nalso_copy = ["tests"]\n'
        'pytest_add_cli_args_test_selection = ["tests"]\nprocess_isolation = "fork"\n'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MUTANT_UNDER_TEST", "PYTEST_"))}
    subprocess.run(  # a fixed argv: the pinned mutmut of this venv
        [str(MUTMUT), "run", "--max-children", "1"],
        cwd=root,
        env=env,
        capture_output=True,
        timeout=300,
        check=True,
    )
    stats = json.loads((root / "mutants" / "mutmut-stats.json").read_text())
    meta = json.loads((root / "mutants" / "toy" / "__init__.py.meta").read_text())
    return stats["tests_by_mangled_function_name"], meta["exit_code_by_key"]


@pytest.mark.skipif(not MUTMUT.is_file(), reason="mutmut (requirements-dev.txt) is not installed")
@pytest.mark.parametrize("plugin", [False, True], ids=["without-plugin", "with-plugin"])
def test_every_test_using_a_shared_fixture_runs_against_its_mutants(tmp_path: Path, plugin: bool) -> None:
    recorded, exit_codes = _run_toy(tmp_path, plugin=plugin)
    tests = sorted(name.rsplit("::", 1)[1] for name in recorded["toy.x_build"])
    assert exit_codes and None not in exit_codes.values()
    if plugin:
        assert tests == ["test_a", "test_b", "test_sets_the_fixture_up"]
        assert set(exit_codes.values()) == {1}, exit_codes  # every mutant killed
    else:  # what mutmut 3.8.1 does alone: the reason the plugin exists
        assert tests == ["test_sets_the_fixture_up"]
        assert set(exit_codes.values()) == {0}, exit_codes  # every mutant survived

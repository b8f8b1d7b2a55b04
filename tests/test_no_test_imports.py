"""Shipped code never imports `tests` (issue 12): every top-level package but tests/, and app.py.

Also catches a test module started as a subprocess (`python -m tests.x`), which the import graph misses.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TEST_MODULE = re.compile(r"^tests(\.[A-Za-z_][A-Za-z0-9_]*)*$")


def shipped_files() -> list[Path]:
    packages = [
        path
        for path in REPO.iterdir()
        if path.is_dir() and path.name != "tests" and (path / "__init__.py").is_file()
    ]
    files = [REPO / "app.py"]
    for package in packages:
        files += [p for p in package.rglob("*.py") if "__pycache__" not in p.parts]
    return files


def find_test_references(tree: ast.AST) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names if TEST_MODULE.match(alias.name)]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if TEST_MODULE.match(node.module):
                found.append((node.lineno, node.module))
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and "." in node.value  # a dotted module name, e.g. [sys.executable, "-m", "tests.x.y"]
            and TEST_MODULE.match(node.value)
        ):
            found.append((node.lineno, node.value))
    return found


def test_the_scan_sees_the_shipped_packages_and_an_offending_line() -> None:
    names = {path.relative_to(REPO).parts[0] for path in shipped_files()}
    assert {"local_stack", "scripts", "benchmarks", "eval", "agent", "tools", "app.py"} <= names
    assert "tests" not in names
    offending = ast.parse(
        "import tests.support.cdk\nfrom tests.factories import x\nargv = ['-m', 'tests.reliability.x']\n"
        "from local_stack.processes import free_port\nname = 'tests'\n"
    )
    assert [line for line, _ in find_test_references(offending)] == [1, 2, 3]  # not a plain word "tests"


def test_no_shipped_module_imports_or_launches_tests() -> None:
    offenders = [
        f"{path.relative_to(REPO)}:{line}: {name}"
        for path in shipped_files()
        for line, name in find_test_references(ast.parse(path.read_text(encoding="utf-8"), str(path)))
    ]
    assert offenders == [], (
        "shipped code must not use tests/ (move the helper to local_stack/):\n" + "\n".join(offenders)
    )


def test_no_make_target_runs_a_test_module_as_a_program() -> None:
    """`make eval` used to run `python -m tests.eval.pipeline_stack` (now scripts.eval_pipeline)."""
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    assert re.findall(r"-m tests\.[\w.]+", makefile) == []

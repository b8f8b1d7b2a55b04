"""scripts/mutation.py: the package table, mutmut's results read back, the kill rate, the reports, and
one real mutmut run over a tiny fixture package (slow: it starts mutmut)."""

from __future__ import annotations

import json
import re
import textwrap
import tomllib
from importlib.metadata import version
from pathlib import Path

import pytest

from scripts import mutation
from scripts.mutation import Mutant, Package, PackageResult

REPO = Path(__file__).resolve().parents[2]


# --- the package table ------------------------------------------------------------------------------


def test_the_table_names_the_four_packages_of_issue_12() -> None:
    assert set(mutation.PACKAGES) == {"tools", "agent", "functions/interceptor", "stacks/constructs"}


@pytest.mark.parametrize("package", mutation.PACKAGES.values(), ids=lambda p: p.name)
def test_every_package_and_its_tests_exist(package: Package) -> None:
    assert (REPO / package.source / "__init__.py").is_file(), package.source
    for pattern in package.tests:
        assert list(REPO.glob(pattern)), f"{package.name}: no test matches {pattern}"
    selected = mutation.test_selection(REPO, package)
    assert all(path.startswith("tests/") for path in selected)


def test_an_empty_test_selection_is_an_error_naming_the_package(tmp_path: Path) -> None:
    with pytest.raises(mutation.MutationError, match=r"pkg: no tests match tests/nothing\*"):
        mutation.test_selection(tmp_path, Package("pkg", "pkg", ("tests/nothing*",)))


def test_every_accepted_equivalent_is_named_in_docs_testing_md() -> None:
    docs = (REPO / "docs" / "testing.md").read_text(encoding="utf-8")
    for name, reason in mutation.EQUIVALENT_MUTANTS.items():
        assert name in docs, name
        assert reason.strip(), name


def test_mutmut_is_pinned_at_the_version_whose_files_we_read() -> None:
    pins = dict(
        line.split("==", 1)
        for line in (REPO / "requirements-dev.txt").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    )
    assert pins["mutmut"].split()[0] == version("mutmut")


def test_make_mutation_exists_and_is_not_part_of_make_test() -> None:
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    assert re.search(r"^mutation: .*## Mutation testing", makefile, re.MULTILINE)
    test_recipe = re.search(r"^test: .*\n((?:\t.*\n)+)", makefile, re.MULTILINE)
    assert test_recipe and "mutation" not in test_recipe.group(1)


def test_repository_settings_do_not_silently_drop_uncovered_code() -> None:
    settings = mutation.base_settings(REPO / "pyproject.toml")
    assert settings["mutate_only_covered_lines"] is False  # uncovered code stays, as "no tests"
    assert "source_paths" not in settings  # set per package, in the package's copy


# --- statuses and the kill rate ---------------------------------------------------------------------


def test_mutmut_exit_codes_map_to_statuses_and_unknown_codes_are_suspicious() -> None:
    table = mutation.mutmut_status_table()
    got = mutation.classify({"a": 1, "b": 0, "c": 33, "d": -24, "e": None, "f": 99, "g": 3}, table)
    assert got == {
        "a": "killed",
        "b": "survived",
        "c": "no tests",
        "d": "timeout",
        "e": "not checked",
        "f": "suspicious",
        "g": "killed",
    }


def _result(*statuses: str, accepted: dict[int, str] | None = None) -> PackageResult:
    accepted = accepted or {}
    mutants = [
        Mutant(f"pkg.mod.x_f__mutmut_{i}", status, "pkg/mod.py", accepted=accepted.get(i))
        for i, status in enumerate(statuses)
    ]
    return PackageResult(package="pkg", mutants=mutants)


def test_kill_rate_counts_no_tests_suspicious_and_survived_as_not_killed() -> None:
    result = _result("killed", "killed", "killed", "timeout", "survived", "no tests", "suspicious")
    assert result.kill_rate() == pytest.approx(100 * 4 / 7)
    assert [m.status for m in result.not_killed()] == ["survived", "no tests", "suspicious"]
    counts = result.counts()
    assert (counts["total"], counts["killed"], counts["timeout"], counts["no_tests"]) == (7, 3, 1, 1)


def test_only_an_accepted_equivalent_leaves_the_denominator() -> None:
    result = _result("killed", "killed", "killed", "survived", accepted={3: "same value either way"})
    assert result.kill_rate() == 100.0
    assert result.counts()["accepted_equivalent"] == 1
    assert result.passes(85)


@pytest.mark.parametrize(
    ("status", "reason"),
    [("survived", "same value either way"), ("no tests", None), ("suspicious", None), ("killed", None)],
)
def test_a_listed_mutant_is_accepted_only_while_it_survives(status: str, reason: str | None) -> None:
    table = {"pkg.mod.x_f__mutmut_1": "same value either way"}
    assert mutation.acceptance("pkg.mod.x_f__mutmut_1", status, table) == reason
    assert mutation.acceptance("pkg.mod.x_f__mutmut_2", status, table) is None


@pytest.mark.parametrize(
    ("statuses", "fail_under", "passes"),
    [
        (("killed",) * 17 + ("survived",) * 3, 85, True),  # exactly 85 %
        (("killed",) * 16 + ("survived",) * 4, 85, False),  # 80 %
        (("killed", "not checked"), 0, False),  # an incomplete run never passes
        ((), 0, False),  # nothing to rate is not a pass
    ],
)
def test_the_gate(statuses: tuple[str, ...], fail_under: float, passes: bool) -> None:
    assert _result(*statuses).passes(fail_under) is passes


def test_a_partial_run_is_reported_but_not_gated_and_an_error_always_fails() -> None:
    partial = _result("survived", "not checked")
    partial.partial = True
    assert partial.kill_rate() == 0.0 and partial.passes(85)
    failed = PackageResult(package="pkg", error="mutmut run exited 1")
    assert not failed.passes(0)
    assert mutation.rate_text(failed) == "error"


def test_a_timed_out_run_reports_what_it_checked_and_fails() -> None:
    result = _result("killed", "killed", "survived", "not checked")
    result.error = "mutmut run exceeded 60 min"
    assert result.kill_rate() == pytest.approx(200 / 3)
    assert mutation.rate_text(result) == "66.7 % (incomplete: 1 not checked)"
    assert not result.passes(0)


# --- where a mutant is --------------------------------------------------------------------------------

SOURCE = textwrap.dedent(
    """\
    import os


    def label(n: int) -> str:
        # sign of n
        if n < 0:
            return "negative"
        return "non-negative"
    """
)

DIFF = textwrap.dedent(
    """\
    --- pkg/mod.py
    +++ pkg/mod.py
    @@ -1,5 +1,5 @@
     def label(n: int) -> str:
         # sign of n
    -    if n < 0:
    +    if n <= 0:
             return "negative"
         return "non-negative\""""
)


def test_a_mutants_file_line_is_found_from_its_diff() -> None:
    offset = mutation.first_changed_line(DIFF)
    assert offset == 3
    function = mutation.original_function_text(DIFF)
    assert function.splitlines()[2].strip() == "if n < 0:"
    line = mutation.source_line(SOURCE, function, offset)
    assert line == 6 and SOURCE.splitlines()[line - 1].strip() == "if n < 0:"


def test_a_diff_without_a_hunk_has_no_line() -> None:
    assert mutation.first_changed_line("") is None
    assert mutation.source_line(SOURCE, "", None) is None


# --- the work copy's configuration ------------------------------------------------------------------


def test_write_config_replaces_only_the_mutmut_section(tmp_path: Path) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(
        '[tool.ruff]\nline-length = 110\n\n[tool.mutmut]\nsource_paths = ["old"]\ndebug = true\n\n'
        '[tool.pytest.ini_options]\ntestpaths = ["tests"]\n'
    )
    mutation.write_config(pyproject, {"source_paths": ["tools"], "timeout_constant": 2.0, "debug": False})
    data = tomllib.loads(pyproject.read_text())
    assert data["tool"]["mutmut"] == {"source_paths": ["tools"], "timeout_constant": 2.0, "debug": False}
    assert data["tool"]["ruff"] == {"line-length": 110}
    assert data["tool"]["pytest"]["ini_options"] == {"testpaths": ["tests"]}


def test_a_nested_package_copies_its_siblings_but_not_itself(tmp_path: Path) -> None:
    for rel in (
        "functions/__init__.py",
        "functions/common.py",
        "functions/interceptor/handler.py",
        "functions/tickets/handler.py",
        "config/__init__.py",
        "app.py",
        "pyproject.toml",
    ):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("")
    (tmp_path / "mutants").mkdir()
    copied = mutation.also_copy(tmp_path, "functions/interceptor")
    assert sorted(copied) == [
        "app.py",
        "config",
        "functions/__init__.py",
        "functions/common.py",
        "functions/tickets",
    ]


def test_package_settings_add_the_fast_test_filter_to_the_shared_ones() -> None:
    package = mutation.PACKAGES["functions/interceptor"]
    settings = mutation.package_settings(REPO, package, {"pytest_add_cli_args": ["-p", "no:warnings"]})
    assert settings["source_paths"] == ["functions/interceptor"]
    assert settings["pytest_add_cli_args"] == ["-p", "no:warnings", "-m", "not slow"]
    assert settings["use_git_change_detection"] is False
    selection = settings["pytest_add_cli_args_test_selection"]
    assert isinstance(selection, list) and "tests/functions/test_interceptor_handler.py" in selection


def test_the_run_environment_has_only_fake_aws_credentials() -> None:
    env = mutation.test_environment(
        {"PATH": "/bin", "AWS_PROFILE": "prod", "AWS_ACCESS_KEY_ID": "AKIAREAL", "AWS_REGION": "eu-west-1"}
    )
    assert env["PATH"] == "/bin"
    assert "AWS_PROFILE" not in env and "AWS_REGION" not in env
    assert env["AWS_ACCESS_KEY_ID"] == "testing"
    assert env["AWS_EC2_METADATA_DISABLED"] == "true"
    assert env["LITELLM_LOCAL_MODEL_COST_MAP"] == "True"


def test_a_second_run_of_the_same_package_is_refused(tmp_path: Path) -> None:
    with mutation.package_lock(tmp_path, "functions/interceptor"):
        with (
            pytest.raises(mutation.MutationError, match="another mutation run of this package"),
            mutation.package_lock(tmp_path, "functions/interceptor"),
        ):
            pass
        with mutation.package_lock(tmp_path, "tools"):  # another package runs alongside
            pass


def test_unknown_package_and_bad_max_children_are_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        mutation.parse_args(["nope"])
    assert exit_info.value.code == 2
    assert "unknown package(s) nope" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        mutation.parse_args(["tools", "--max-children", "0"])


def test_reports_list_every_not_killed_mutant_with_its_place(tmp_path: Path) -> None:
    result = PackageResult(
        package="functions/interceptor",
        mutants=[
            Mutant(
                "functions.interceptor.handler.x_f__mutmut_1", "killed", "functions/interceptor/handler.py"
            ),
            Mutant(
                "functions.interceptor.handler.x_f__mutmut_2",
                "survived",
                "functions/interceptor/handler.py",
                12,
                "-a\n+b",
            ),
        ],
        seconds=90,
    )
    mutation.write_reports([result], tmp_path / "summary.md", 85)
    per_package = json.loads((tmp_path / "functions-interceptor.json").read_text())
    assert per_package["kill_rate"] == 50.0
    assert per_package["not_killed_by_module"] == {"functions/interceptor/handler.py": 1}
    assert per_package["not_killed"][0]["line"] == 12
    markdown = (tmp_path / "functions-interceptor.md").read_text()
    assert (
        "## functions/interceptor/handler.py:12 `functions.interceptor.handler.x_f__mutmut_2` (survived)"
        in markdown
    )
    summary = (tmp_path / "summary.md").read_text()
    assert "| functions/interceptor | 2 | 1 | 0 | 1 | 0 | 0 | 0 | 50.0 % | 1.5 min |" in summary
    assert json.loads((tmp_path / "summary.json").read_text())["packages"][0]["kill_rate"] == 50.0


# --- one real run -------------------------------------------------------------------------------------

FIXTURE_SOURCE = """\
def is_adult(age: int) -> bool:
    return age >= 18


def sign(n: int) -> str:
    if n < 0:
        return "negative"
    return "non-negative"


def never_called(n: int) -> int:
    return n + 1
"""

FIXTURE_TESTS = """\
from calc import is_adult, sign


def test_is_adult_at_the_boundary():
    assert is_adult(18) is True
    assert is_adult(17) is False


def test_sign_of_a_negative_number_only():
    assert sign(-5) == "negative"
"""


@pytest.mark.slow
def test_a_real_mutmut_run_kills_the_tested_function_and_reports_the_survivors(tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "calc").mkdir(parents=True)
    (project / "tests").mkdir()
    (project / "calc" / "__init__.py").write_text(FIXTURE_SOURCE)
    (project / "tests" / "__init__.py").write_text("")
    (project / "tests" / "test_calc.py").write_text(FIXTURE_TESTS)
    (project / "pyproject.toml").write_text("[tool.mutmut]\ntimeout_constant = 2.0\n")
    package = Package("calc", "calc", ("tests/test_calc.py",))

    result = mutation.run_package(
        package, repo=project, work_root=tmp_path / "work", max_children=1, only=(), rev=None, timeout_s=300
    )

    assert not any(m.status == "not checked" for m in result.mutants)
    by_function: dict[str, set[str]] = {}
    for m in result.mutants:
        by_function.setdefault(m.name.split("__mutmut_")[0], set()).add(m.status)
    assert by_function["calc.x_is_adult"] == {"killed"}  # every mutant of the tested function dies
    assert "survived" in by_function["calc.x_sign"]  # n <= 0 and the other return are never checked
    assert by_function["calc.x_never_called"] == {"no tests"}  # counted, as not killed
    survivor = next(m for m in result.not_killed() if "n <= 0" in m.diff)
    assert (survivor.path, survivor.line) == ("calc/__init__.py", 6)
    assert result.kill_rate() is not None and result.kill_rate() < 85  # type: ignore[operator]
    assert not result.passes(85)
    assert not (project / "mutants").exists()  # mutmut wrote only into the work copy

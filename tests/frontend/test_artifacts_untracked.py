"""`make test` leaves `git status` clean: the tests that take screenshots write only under ignored
folders (test-artifacts/); only `make screenshots` rewrites the README's tracked pictures."""

from __future__ import annotations

import subprocess
from pathlib import Path
from types import ModuleType

import pytest

import scripts.screenshot_report as screenshot_report
import tests.frontend.test_browser as test_browser
import tests.frontend.test_browser_login as test_browser_login
from eval.report import write_reports
from tests.eval.test_report import OUTCOMES, cases_report

REPO = Path(__file__).resolve().parents[2]
WRITERS = (test_browser, test_browser_login, screenshot_report)


def ignored(path: Path) -> bool:
    """True when git ignores `path` (it need not exist; a path without a suffix is a folder, checked
    through a file inside it, since `folder/` patterns match only what git knows is a folder)."""
    probe = path if path.suffix else path / "probe.png"
    done = subprocess.run(
        ["git", "check-ignore", "-q", "--no-index", str(probe)], cwd=REPO, capture_output=True, timeout=30
    )
    assert done.returncode in (0, 1), done.stderr
    return done.returncode == 0


def tracked_status(*paths: str) -> str:
    done = subprocess.run(
        ["git", "status", "--porcelain", "--", *paths], cwd=REPO, capture_output=True, text=True, timeout=30
    )
    return done.stdout


def output_paths(module: ModuleType) -> dict[str, Path]:
    """The module's path constants inside the repository (where its screenshots go)."""
    return {
        name: value
        for name, value in vars(module).items()
        if isinstance(value, Path) and value != REPO and value.is_relative_to(REPO) and name.isupper()
    }


def test_the_check_tells_ignored_from_tracked() -> None:
    assert ignored(REPO / "test-artifacts" / "x.png")
    assert not ignored(REPO / "docs" / "images" / "chat.png")


@pytest.mark.parametrize("module", WRITERS, ids=lambda m: m.__name__)
def test_screenshot_writers_target_only_ignored_paths(module: ModuleType) -> None:
    paths = output_paths(module)
    assert paths, f"{module.__name__} declares no output path"
    tracked = {name: str(path.relative_to(REPO)) for name, path in paths.items() if not ignored(path)}
    assert not tracked, f"{module.__name__} would write tracked files: {tracked}"


@pytest.mark.slow
def test_the_report_screenshot_default_output_is_ignored_and_docs_stay_untouched(
    tmp_path: Path, chromium: str
) -> None:
    before = tracked_status("docs")
    _, html = write_reports(cases_report(OUTCOMES), tmp_path)
    written = screenshot_report.screenshot(html)  # the default output, as a test or a user would run it
    assert written.is_file() and written.stat().st_size > 10_000
    assert ignored(written), written
    assert tracked_status("docs") == before

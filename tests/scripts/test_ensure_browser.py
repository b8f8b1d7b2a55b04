"""scripts/ensure_browser.py: what `make test` does about Chromium on each kind of machine (nothing is
installed here: the runner is a recorder), and the pytest session's fail-fast check."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from scripts.ensure_browser import (
    APT_PACKAGES,
    BrowserMissing,
    Machine,
    Step,
    ensure,
    install_command,
    main,
    plan,
    system_chromium,
)

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
ROOT = Machine(is_root=True, has_apt=True)
USER = Machine(is_root=False, has_apt=True)
NO_APT = Machine(is_root=False, has_apt=False)


class Recorder:
    """Stands in for subprocess: records each command; `installs` says which one makes the browser appear."""

    def __init__(self, fail: Sequence[str] = (), installs: str | None = None) -> None:
        self.commands: list[list[str]] = []
        self.envs: list[Mapping[str, str]] = []
        self.fail = fail
        self.installs = installs
        self.browser: Path | None = None

    def run(self, argv: Sequence[str], env: Mapping[str, str], timeout: float) -> tuple[int, str]:
        self.commands.append(list(argv))
        self.envs.append(env)
        assert 0 < timeout <= 900  # every install is bounded
        line = " ".join(argv)
        if any(word in line for word in self.fail):
            return 100, "E: Unable to locate package chromium\nE: the last line"
        if self.installs and self.installs in line:
            self.browser = CHROMIUM
        return 0, ""

    def find(self) -> Path | None:
        return self.browser


def test_a_present_browser_installs_nothing() -> None:
    recorder = Recorder()
    recorder.browser = CHROMIUM
    assert plan(CHROMIUM, ROOT) == []
    assert ensure(find=recorder.find, machine=ROOT, run=recorder.run) == CHROMIUM
    assert recorder.commands == []


def test_root_with_apt_installs_debians_chromium_like_ci() -> None:
    recorder = Recorder(installs="apt-get install")
    assert plan(None, ROOT) == [Step.APT, Step.PLAYWRIGHT]
    assert ensure(find=recorder.find, machine=ROOT, run=recorder.run) == CHROMIUM
    assert recorder.commands == [
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", "chromium", "chromium-driver"],
    ]
    assert recorder.envs[-1]["DEBIAN_FRONTEND"] == "noninteractive"


def test_root_falls_back_to_playwrights_download_when_apt_fails() -> None:
    recorder = Recorder(fail=("apt-get install",), installs="playwright install")
    assert ensure(find=recorder.find, machine=ROOT, run=recorder.run) == CHROMIUM
    assert recorder.commands[-1] == [sys.executable, "-m", "playwright", "install", "chromium"]


def test_not_root_never_runs_apt_and_tries_playwright() -> None:
    recorder = Recorder(installs="playwright install")
    assert plan(None, USER) == [Step.PLAYWRIGHT]
    assert ensure(find=recorder.find, machine=USER, run=recorder.run) == CHROMIUM
    assert not any(argv[0] == "apt-get" for argv in recorder.commands)


def test_not_root_without_download_stops_naming_sudo_apt_get() -> None:
    recorder = Recorder(fail=("playwright",))
    with pytest.raises(BrowserMissing) as caught:
        ensure(find=recorder.find, machine=USER, run=recorder.run)
    message = str(caught.value)
    assert message.endswith("Install it with: sudo apt-get install -y chromium chromium-driver")
    assert "playwright install chromium` failed: E: the last line" in message  # why the automatic try failed


def test_root_where_everything_fails_names_apt_get_without_sudo() -> None:
    recorder = Recorder(fail=("apt-get update", "playwright"))
    with pytest.raises(
        BrowserMissing, match=r"Install it with: apt-get install -y chromium chromium-driver$"
    ):
        ensure(find=recorder.find, machine=ROOT, run=recorder.run)
    assert recorder.commands[0] == ["apt-get", "update", "-qq"] and len(recorder.commands) == 2


def test_without_apt_the_command_is_playwrights_install() -> None:
    assert install_command(NO_APT) == f"{sys.executable} -m playwright install chromium"
    assert plan(None, Machine(is_root=True, has_apt=False)) == [Step.PLAYWRIGHT]


def test_an_install_that_leaves_no_browser_is_reported() -> None:
    recorder = Recorder()  # every command "succeeds" but nothing appears
    with pytest.raises(BrowserMissing, match="install finished but no Chromium was found"):
        ensure(find=recorder.find, machine=ROOT, run=recorder.run)


def test_check_mode_installs_nothing() -> None:
    recorder = Recorder(installs="apt-get install")
    with pytest.raises(BrowserMissing):
        ensure(find=recorder.find, machine=ROOT, run=recorder.run, install=False)
    assert recorder.commands == []


def test_chromium_path_overrides_the_search(tmp_path: Path) -> None:
    fake = tmp_path / "chrome"
    fake.write_text("")
    assert system_chromium({"CHROMIUM_PATH": str(fake)}) == fake
    assert system_chromium({"CHROMIUM_PATH": str(tmp_path / "missing")}) is None


def test_apt_packages_match_ci() -> None:
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    assert f"apt_packages+=({' '.join(APT_PACKAGES)})" in ci


def test_cli_check_without_a_browser_exits_2_naming_the_command(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setenv("CHROMIUM_PATH", str(tmp_path / "missing"))
    monkeypatch.setattr("scripts.ensure_browser.playwright_chromium", lambda: None)
    assert main(["--check"]) == 2
    assert "Install it with: " in capsys.readouterr().err


def test_make_test_runs_the_browser_step_before_lint() -> None:
    done = subprocess.run(
        ["make", "-n", "--no-print-directory", "test"], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    lines = done.stdout.splitlines()
    first = next(i for i, line in enumerate(lines) if "scripts.ensure_browser" in line)
    assert first < next(i for i, line in enumerate(lines) if "ruff check" in line)
    assert first < next(i for i, line in enumerate(lines) if "-m pytest" in line)


def test_the_pytest_session_stops_before_any_test_when_the_browser_is_missing(tmp_path: Path) -> None:
    # a browser test selected, no Chromium: the session ends at collection (exit 4), no test runs
    env = {**os.environ, "CHROMIUM_PATH": str(tmp_path / "missing"), "HOME": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "tests/frontend/test_browser_login.py", "-q", "-p", "no:randomly"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 4, output[-2000:]
    assert "Chromium is required for the browser tests and is not installed. Install it with:" in output
    assert "passed" not in output and "failed" not in output


class FakeItem:
    def __init__(self, *fixturenames: str) -> None:
        self.fixturenames = fixturenames


def test_the_session_check_demands_a_browser_only_for_tests_that_use_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tests import conftest

    monkeypatch.setattr("scripts.ensure_browser.find_chromium", lambda: None)
    hook = conftest.pytest_collection_modifyitems
    hook(None, None, [FakeItem("tmp_path"), FakeItem()])  # type: ignore[arg-type,list-item]  # no browser test: fine
    with pytest.raises(pytest.UsageError, match="Install it with: "):
        hook(None, None, [FakeItem("tmp_path"), FakeItem("chromium", "tmp_path")])  # type: ignore[arg-type,list-item]
    monkeypatch.setattr("scripts.ensure_browser.find_chromium", lambda: CHROMIUM)
    hook(None, None, [FakeItem("chromium")])  # type: ignore[arg-type,list-item]

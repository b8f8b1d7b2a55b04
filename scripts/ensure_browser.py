"""Find or install the Chromium the browser tests drive (`make test` runs this before anything else).

    python -m scripts.ensure_browser          # exit 0 and print the browser's path, or exit 2 naming
                                             # the one command that installs it
    python -m scripts.ensure_browser --check  # only look; install nothing

Where the browser comes from, in order:
1. already there: `CHROMIUM_PATH`, then `chromium` / `chromium-browser` on PATH, then Playwright's own
   downloaded browser (`python -m playwright install chromium`);
2. root with apt-get (CI, containers): Debian's `chromium` + `chromium-driver`, as `.ci/run` does
   (about 25 s);
3. otherwise Playwright's own browser download, where the machine can reach its download host.
If none works the command stops before any test runs and names the command to run.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

logger = logging.getLogger(__name__)

APT_PACKAGES = ("chromium", "chromium-driver")
SYSTEM_NAMES = ("chromium", "chromium-browser")
APT_TIMEOUT_S = 900
PLAYWRIGHT_TIMEOUT_S = 600


class BrowserMissing(RuntimeError):
    """No Chromium could be found or installed; the message names the command that installs it."""


class Step(Enum):
    APT = "apt"  # apt-get install Debian's chromium (root only)
    PLAYWRIGHT = "playwright"  # Playwright's own browser download


@dataclass(frozen=True)
class Machine:
    """What the decision depends on (injected in tests)."""

    is_root: bool
    has_apt: bool


Runner = Callable[[Sequence[str], Mapping[str, str], float], tuple[int, str]]


def plan(found: Path | None, machine: Machine) -> list[Step]:
    """The install steps to try, in order; none when a browser is already there."""
    if found is not None:
        return []
    steps = [Step.APT] if machine.is_root and machine.has_apt else []
    return [*steps, Step.PLAYWRIGHT]


def install_command(machine: Machine) -> str:
    """The one command a person runs to install the browser on this machine."""
    if machine.has_apt:
        sudo = "" if machine.is_root else "sudo "
        return f"{sudo}apt-get install -y {' '.join(APT_PACKAGES)}"
    return f"{sys.executable} -m playwright install chromium"


def commands(step: Step) -> list[list[str]]:
    if step is Step.APT:
        return [["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", *APT_PACKAGES]]
    return [[sys.executable, "-m", "playwright", "install", "chromium"]]


def system_chromium(env: Mapping[str, str] | None = None) -> Path | None:
    env = os.environ if env is None else env
    explicit = env.get("CHROMIUM_PATH", "").strip()
    if explicit:
        return Path(explicit) if Path(explicit).is_file() else None
    for name in SYSTEM_NAMES:
        path = shutil.which(name)
        if path:
            return Path(path)
    return None


def playwright_chromium() -> Path | None:
    """Playwright's own downloaded Chromium, when it is there."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None
    with sync_playwright() as playwright:
        path = Path(playwright.chromium.executable_path)
    return path if path.is_file() else None


def find_chromium(env: Mapping[str, str] | None = None) -> Path | None:
    """The browser the tests launch (`executable_path`), or None."""
    return system_chromium(env) or playwright_chromium()


def this_machine() -> Machine:
    return Machine(is_root=os.geteuid() == 0, has_apt=shutil.which("apt-get") is not None)


def _run(argv: Sequence[str], env: Mapping[str, str], timeout: float) -> tuple[int, str]:
    try:
        done = subprocess.run(  # noqa: S603 - fixed argv from commands(): apt-get or this interpreter
            list(argv), env=dict(env), capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        return 124, f"timed out after {timeout:.0f} s"
    except OSError as exc:
        return 127, str(exc)
    return done.returncode, (done.stderr or done.stdout).strip()


def ensure(
    *,
    find: Callable[[], Path | None] = find_chromium,
    machine: Machine | None = None,
    run: Runner = _run,
    install: bool = True,
) -> Path:
    """A usable Chromium, installing it where this machine allows.

    Raises:
        BrowserMissing: naming the command that installs it (and why the automatic install failed).
    """
    found = find()
    if found is not None:
        return found
    machine = machine or this_machine()
    command = install_command(machine)
    problems: list[str] = []
    for step in plan(found, machine) if install else []:
        timeout = APT_TIMEOUT_S if step is Step.APT else PLAYWRIGHT_TIMEOUT_S
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for argv in commands(step):
            logger.info("installing the browser: %s", " ".join(argv))
            code, output = run(argv, env, timeout)
            if code != 0:
                last = output.splitlines()[-1] if output else f"exit {code}"
                problems.append(f"`{' '.join(argv)}` failed: {last}")
                break
        else:
            found = find()
            if found is not None:
                return found
            problems.append(f"{step.value} install finished but no Chromium was found")
    why = f" ({'; '.join(problems)})" if problems else ""
    raise BrowserMissing(
        f"Chromium is required for the browser tests and is not installed{why}. Install it with: {command}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--check", action="store_true", help="only look for the browser; install nothing")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        path = ensure(install=not args.check)
    except BrowserMissing as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"browser: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Shared fixtures: the whole app synthesized once per session (gates), with nag enabled."""

from __future__ import annotations

import os
from pathlib import Path

import aws_cdk as cdk
import pytest

import app as foundation_app
from config import AppConfig
from stacks.compliance import apply_cost_tags, enable_compliance_checks
from tests.factories import test_config

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


def synth_app(config: AppConfig, outdir: Path) -> cdk.cx_api.CloudAssembly:
    """Build and synthesize the whole app exactly as app.py does, into `outdir`."""
    app = cdk.App(outdir=str(outdir))
    foundation_app.build(app, config)
    apply_cost_tags(app, config)
    enable_compliance_checks(app)
    return app.synth()


@pytest.fixture(scope="session")
def dev_assembly(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The dev profile synthesized with every gate; the directory holds templates and the nag report."""
    outdir = tmp_path_factory.mktemp("cdk-dev")
    synth_app(test_config("dev"), outdir)
    return outdir


@pytest.fixture(scope="session")
def prod_assembly(tmp_path_factory: pytest.TempPathFactory) -> Path:
    outdir = tmp_path_factory.mktemp("cdk-prod")
    synth_app(test_config("prod"), outdir)
    return outdir


# --- the browser tests' Chromium: found before any test runs, or the run stops naming the install ---


@pytest.hookimpl(trylast=True)  # after -k/-m deselection: only the browser tests that will run count
def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    """Fail fast: when a selected test needs the `chromium` fixture and no Chromium is installed, stop
    the session before the first test (exit 4) naming the command that installs it, instead of failing
    minutes later in the middle of the run. `make test` installs it first (scripts/ensure_browser.py)."""
    if not any("chromium" in getattr(item, "fixturenames", ()) for item in items):
        return
    from scripts.ensure_browser import find_chromium, install_command, this_machine

    if find_chromium() is None:
        raise pytest.UsageError(
            "Chromium is required for the browser tests and is not installed. Install it with: "
            f"{install_command(this_machine())} (or run `make test`, which installs it where it can)"
        )


@pytest.fixture(scope="session")
def chromium() -> str:
    """The Chromium executable for Playwright's `executable_path` (system or Playwright's own)."""
    from scripts.ensure_browser import find_chromium

    path = find_chromium()
    assert path is not None  # guaranteed by pytest_collection_modifyitems above
    return str(path)

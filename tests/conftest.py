"""Shared fixtures: the whole app synthesized once per session (gates), with nag enabled."""

from __future__ import annotations

import os
from pathlib import Path

import aws_cdk as cdk
import pytest

import app as foundation_app
from stacks.compliance import apply_cost_tags, enable_compliance_checks
from stacks.config import AppConfig
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

"""Offline AWS settings for the operator commands' tests (preflight, deploy, verify)."""

from __future__ import annotations

from pathlib import Path

import pytest


def offline_aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, region: str) -> None:
    """Fake credentials, no metadata service, no profile files: nothing can reach a real endpoint."""
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_REGION", region)

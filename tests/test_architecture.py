"""The import contracts in pyproject.toml hold, and docs/architecture.md draws the same layers."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _importlinter() -> dict[str, Any]:
    settings: dict[str, Any] = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    return dict(settings["tool"]["importlinter"])


def _contract(contract_id: str) -> dict[str, Any]:
    return next(c for c in _importlinter()["contracts"] if c["id"] == contract_id)


def test_import_contracts_are_kept() -> None:
    result = subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=REPO, capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "BROKEN" not in result.stdout


def test_the_documented_layers_are_the_contract() -> None:
    table = (REPO / "docs" / "architecture.md").read_text(encoding="utf-8")
    documented = [
        " | ".join(p.strip() for p in m.group(1).split("|"))
        for m in re.finditer(r"^\s+\d\s{2,}(\S.*?)\s{2,}\S", table, flags=re.MULTILINE)
    ]
    assert documented == [
        " | ".join(p.strip() for p in layer.split("|")) for layer in _contract("layers")["layers"]
    ]


def test_every_package_of_ours_is_in_a_layer() -> None:
    """A new top-level package must be placed in a layer, or it escapes every contract."""
    packages = {path.parent.name for path in REPO.glob("*/__init__.py")} - {"tests"}
    layered = {p.strip() for layer in _contract("layers")["layers"] for p in layer.split("|")}
    assert packages == layered
    assert set(_importlinter()["root_packages"]) == packages | {"tests"}
    assert set(_contract("no-tests")["source_modules"]) == packages

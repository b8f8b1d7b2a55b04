"""`make eval` itself, as CI and the README run it: the full golden dataset through the real local stack
with the scripted model, the report, and the gate."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_make_eval_runs_the_golden_dataset_and_passes_its_gate(tmp_path: Path) -> None:
    result = subprocess.run(
        ["make", "--no-print-directory", "eval", f"EVAL_REPORT_DIR={tmp_path}"],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    golden = (REPO_ROOT / "eval" / "datasets" / "golden.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(report["cases"]) == sum(1 for line in golden if line.strip()) >= 30
    assert (tmp_path / "report.html").is_file()

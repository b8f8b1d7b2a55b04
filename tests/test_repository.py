"""Facts about the repository itself that a clean clone relies on."""

from __future__ import annotations

import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_no_tracked_file_points_at_notes_a_clone_does_not_have() -> None:
    """The developers' shared notes live outside the repository: a clone must explain itself."""
    found = subprocess.run(
        [
            "git",
            "grep",
            "-n",
            "-I",
            "--fixed-strings",
            "-e",
            "PLATFORM_NOTES",
            "-e",
            "../shared",
            "--",
            ".",
            ":!tests/test_repository.py",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert found.returncode in (0, 1), found.stderr  # 1: no match
    assert found.stdout == ""

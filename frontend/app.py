"""Streamlit entry point: `streamlit run frontend/app.py` (the repository root must be importable)."""

from __future__ import annotations

import sys
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parents[1])
if _ROOT not in sys.path:  # `streamlit run` puts only this file's directory on the path
    sys.path.insert(0, _ROOT)

from frontend.ui import main  # noqa: E402

main()

"""Screenshot an evaluation report with headless Chromium.

    python -m scripts.screenshot_report eval-reports/pipeline/report.html [OUTPUT]

OUTPUT defaults to test-artifacts/eval-report.png (ignored by git); `make screenshots` passes
docs/images/eval-report.png, the README's picture. Nothing else writes a tracked file.
"""

from __future__ import annotations

import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

from scripts.ensure_browser import BrowserMissing, find_chromium

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUTPUT = REPO / "test-artifacts" / "eval-report.png"
FLAGS = ["--no-sandbox", "--disable-background-networking", "--disable-component-update"]


def screenshot(report: Path, output: Path = DEFAULT_OUTPUT, width: int = 1300, height: int = 2000) -> Path:
    chromium = find_chromium()
    if chromium is None:
        raise BrowserMissing("Chromium is not installed: run `python -m scripts.ensure_browser`")
    output.parent.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium), args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.goto(report.resolve().as_uri())
            page.wait_for_selector("table")
            page.screenshot(path=str(output), full_page=False)
        finally:
            browser.close()
    return output


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    output = Path(sys.argv[2]) if len(sys.argv) == 3 else DEFAULT_OUTPUT
    print(screenshot(Path(sys.argv[1]), output))

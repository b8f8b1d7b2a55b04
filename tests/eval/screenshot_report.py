"""Screenshot an evaluation report with headless Chromium (for docs/images/eval-report.png).

python -m tests.eval.screenshot_report eval-reports/pipeline/report.html docs/images/eval-report.png
"""

from __future__ import annotations

import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-background-networking", "--disable-component-update"]


def screenshot(report: Path, output: Path, width: int = 1300, height: int = 2000) -> None:
    output.parent.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.goto(report.resolve().as_uri())
            page.wait_for_selector("table")
            page.screenshot(path=str(output), full_page=False)
        finally:
            browser.close()


if __name__ == "__main__":
    screenshot(Path(sys.argv[1]), Path(sys.argv[2]))

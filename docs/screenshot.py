"""Re-take the README's leaderboard screenshots from a real results store.

Usage, from the repository root: ``python -m docs.screenshot RESULTS [OUT_DIR]`` (default ``docs``; run as a module
so that it imports the browser helpers it shares with the browser test, ``tests/leaderboard/browser.py``). Serves
``msbench leaderboard`` on a free port, drives Debian's ``/usr/bin/chromium`` with Playwright (no browser download),
waits until Streamlit has drawn the table (and each page's figure) and writes ``leaderboard.png`` and
``statistics.png``.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

from tests.leaderboard.browser import CHROMIUM, CHROMIUM_FLAGS, free_port, listening


def main(results: Path, out_dir: Path) -> None:
    port = free_port()
    msbench = Path(sys.executable).with_name("msbench")
    server = subprocess.Popen([str(msbench), "leaderboard", "--results", str(results), "--port", str(port)])
    try:
        deadline = time.monotonic() + 60
        while not listening(port):
            if time.monotonic() > deadline:
                raise SystemExit(f"msbench leaderboard did not listen on port {port} within 60 s")
            time.sleep(0.5)
        with tempfile.TemporaryDirectory() as profile, sync_playwright() as playwright:
            browser = playwright.chromium.launch_persistent_context(
                profile, executable_path=CHROMIUM, args=list(CHROMIUM_FLAGS), headless=True,
                viewport={"width": 1500, "height": 1100},
            )  # fmt: skip
            page = browser.new_page()
            page.goto(f"http://127.0.0.1:{port}", wait_until="domcontentloaded")
            page.wait_for_selector('[data-testid="stDataFrame"]', timeout=120_000)
            page.wait_for_timeout(1500)  # the data grid paints its cells after it is attached
            page.screenshot(path=str(out_dir / "leaderboard.png"), full_page=True)
            page.get_by_text("Statistics", exact=True).click()
            # The rank-stability plot, or on a store too small for any test the page's message instead of it.
            page.wait_for_selector('[data-testid="stImage"] img, [data-testid="stAlert"]', timeout=120_000)
            page.wait_for_timeout(1500)
            page.screenshot(path=str(out_dir / "statistics.png"), full_page=True)
            browser.close()
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2] if len(sys.argv) > 2 else "docs"))

"""Headless Chromium for the console tests: Debian's own build, driven by Playwright.

No browser is downloaded: Playwright is pointed at ``/usr/bin/chromium`` (installed by
``make setup`` through scripts/browser_setup.sh where it is missing). When it truly cannot be
installed the tests are skipped and say why.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("ANTIFRAUD_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def chromium_or_skip() -> str:
    """The browser's path; skips the test, visibly, when there is none."""
    found = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
    if not found:
        pytest.skip(
            f"no Chromium at {CHROMIUM} (apt-get install chromium; scripts/browser_setup.sh)"
        )
    return found

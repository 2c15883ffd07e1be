"""Headless Chromium for the map tests: one way to start it, shared by every browser test."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest

CHROMEDRIVER = Path("/usr/bin/chromedriver")

_ARGUMENTS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1400,1000",
)


def chromium_binary() -> str | None:
    """The Chromium (or Chrome) executable on the path, if any."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def skip_or_fail(message: str) -> None:
    """Skip a browser test on a developer machine; fail it under CI (``CI=true``)."""
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


@contextmanager
def headless_chromium(
    *, logs: Sequence[str] = ("browser",), scripts: Sequence[str] = ()
) -> Iterator[object]:
    """A selenium driver of headless Chromium through /usr/bin/chromedriver.

    Parameters
    ----------
    logs : sequence of str
        Chrome log types to keep (``browser``, ``performance`` for network requests).
    scripts : sequence of str
        JavaScript run in every new document before the page's own scripts.

    Yields
    ------
    selenium.webdriver.Chrome
    """
    binary = chromium_binary()
    if binary is None or not CHROMEDRIVER.exists():
        skip_or_fail("the browser tests need chromium and /usr/bin/chromedriver")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for argument in _ARGUMENTS:
        options.add_argument(argument)
    profile = tempfile.mkdtemp(prefix="geo-crime-chrome-")
    options.add_argument(f"--user-data-dir={profile}")
    options.set_capability("goog:loggingPrefs", {kind: "ALL" for kind in logs})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        if "performance" in logs:
            driver.execute_cdp_cmd("Network.enable", {})
        for source in scripts:
            driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": source})
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)

"""Headless Chromium for the map tests: one way to start it, shared by every browser test."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest

CHROMEDRIVER = Path("/usr/bin/chromedriver")

#: Records, from the first script on, when the number of drawn paths last changed.
WATCH_PATHS = """
window.__gcPaths = [];
(function poll() {
    var n = document.querySelectorAll('.leaflet-pane path').length, c = window.__gcPaths;
    if (!c.length || c[c.length - 1][1] !== n) { c.push([performance.now(), n]); }
    setTimeout(poll, 10);
})();
"""

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


def open_map(driver, path: Path, *, quiet: float = 0.6, timeout: float = 30.0) -> tuple[float, int]:
    """Open a map and wait until no path is added for ``quiet`` seconds.

    Returns the open time (navigation start to the last path drawn, seconds) and the paths.
    """
    driver.get("about:blank")
    driver.get_log("performance")  # forget earlier requests
    driver.get(path.as_uri())
    start, last, since = time.monotonic(), None, time.monotonic()
    while time.monotonic() - start < timeout:
        changes = driver.execute_script("return window.__gcPaths")
        if changes != last:
            last, since = changes, time.monotonic()
        elif changes and changes[-1][1] > 0 and time.monotonic() - since > quiet:
            return changes[-1][0] / 1000.0, int(changes[-1][1])
        time.sleep(0.05)
    raise AssertionError(f"{path.name}: the paths kept changing for {timeout} s")

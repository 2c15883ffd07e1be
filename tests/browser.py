"""Moved to :mod:`tests.fakes.browser`; kept only for ``benchmarks/map_open.py``, which imports it
from here (tests import :mod:`tests.fakes.browser`). Remove once the benchmark imports the new
place."""

from tests.fakes.browser import WATCH_PATHS, headless_chromium, open_map

__all__ = ["WATCH_PATHS", "headless_chromium", "open_map"]

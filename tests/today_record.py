"""Moved to :mod:`tests.fakes.today_record`; kept only for ``benchmarks/today_run.py``, which
imports it from here (tests import :mod:`tests.fakes.today_record`). Remove once the benchmark
imports the new place."""

from tests.fakes.today_record import write_today

__all__ = ["write_today"]

"""Moved to :mod:`tests.fakes.forecast_cubes`; kept only for ``benchmarks/bench_forecast.py``,
which imports it from here (tests import :mod:`tests.fakes.forecast_cubes`). Remove once the
benchmark imports the new place."""

from tests.fakes.forecast_cubes import synthetic_cube

__all__ = ["synthetic_cube"]

"""Test fixtures built from scratch, shared by the test modules (which never import each other).

* :mod:`tests.fakes.portal` — the one loopback Socrata-like open-data portal (:class:`FakePortal`,
  :func:`running_portal`; :class:`LapdApi` and :func:`running_server` for the single legacy
  LAPD resource), with its network, paging and hostile faults.
* :mod:`tests.fakes.api_rows` — real LAPD rows as the API serves them, and what a download
  through the fake portal leaves behind.
* :mod:`tests.fakes.shared_data` — locating the real LAPD data (skip on a laptop, fail under CI).
* :mod:`tests.fakes.h3_units` — H3 cells as a units table.
* :mod:`tests.fakes.lattice` — a bundled lattice with known Moran's I, local Moran and Gi*.
* :mod:`tests.fakes.forecast_cubes` — synthetic forecast cubes with a learnable signal.
* :mod:`tests.fakes.dask_cubes` — a Dask cluster of its own and the cube comparison.
* :mod:`tests.fakes.nibrs_fixtures`, :mod:`tests.fakes.twin_records`,
  :mod:`tests.fakes.today_record` — NIBRS-form records, legacy/NIBRS twins and the generated
  today record.
* :mod:`tests.fakes.browser`, :mod:`tests.fakes.cli_errors` — headless Chromium and the command
  line's error output.

Test helpers, not part of the package: production code and its doctests never import them.
"""

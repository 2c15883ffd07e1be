"""What was recorded, and where recording changed: coverage, tallies and the 2024 break.

- :mod:`~geo_crime.record.coverage`: which periods each source recorded completely;
- :mod:`~geo_crime.record.tallies`: the run's counts over the rows (by division, week, system);
- :mod:`~geo_crime.record.breaks`: the categories comparable across the 2024 break and its
  level shift.
"""

"""Wire the stages together: one call (or ``geo-crime run``) produces every output of a run.

The pipeline only calls stage functions in order and writes their results under
``outputs/<run-name>/``; it holds no analysis of its own::

    ingest -> coverage -> (per study) units -> cube -> statistics -> forecast -> maps, exports,
    figures -> report

A run covers one or more *studies*: a slice of the incidents (divisions, dates) analysed on
some unit types at one period length. Without configured studies a run chooses them from the
data's completely recorded weeks (:mod:`geo_crime.study_windows`): city-wide over the latest
complete weeks (at most 52), and a division on its own where it holds a longer complete run
before that. On the shared real slices these are ``citywide_2024`` (all 21 divisions, the
complete weeks of early 2024) and ``westla_2020_21`` (West LA, its complete 2020-21 run); on
today's full record the city-wide study is the last year to the last complete week.

The incident rows are read through an engine (:mod:`geo_crime.engines`): in this process, or,
for a dataset folder with ``--engine dask``, on a Dask cluster, where every stage that reads
rows (the tallies behind the report's tables and the trend figures, the division check, the
coverage counts, the cubes) runs per partition and only small tables come back.

Settings come from defaults, then an optional TOML file (``[run]`` table and ``[[study]]``
tables), then command-line flags (later wins).

The package reads in the order of a run: :mod:`~geo_crime.pipeline.run` (the run folder, the
stages before and after the studies, the report), :mod:`~geo_crime.pipeline.studies` (each
study and each of its unit sets: units, cube, statistics, public outputs) and
:mod:`~geo_crime.pipeline.forecasting` (a unit set's backtest and next-period forecast).
"""

from geo_crime.pipeline.run import RunResult, run_pipeline

__all__ = ["RunResult", "run_pipeline"]

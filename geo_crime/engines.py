"""Where a run's incidents are read: in this process, or on a Dask cluster.

:func:`geo_crime.pipeline.run_pipeline` reads the incident rows only through one of the two
engines here, which answer the same questions:

* the report's tally of all rows and the division check (:mod:`geo_crime.record.tallies`);
* the coverage check at a period length;
* the data the units are made from;
* per study: its tally (rows, divisions, trend and hour x weekday counts, last day) and its
  cubes, plain or in the harmonised categories of the records-system break.

:class:`MemoryIncidents` holds the cleaned frame and computes each answer from it.
:class:`ClusterIncidents` holds a dataset's partitions on a ``distributed`` cluster
(:func:`geo_crime.cube.dask_incidents.load_distributed`): every answer is computed per
partition there and summed there, and only small tables (tallies, coverage counts per source x
division x day, cubes, the incidents per distinct point that derived reporting districts are
drawn from) reach this process, so a run needs no more memory here than its cubes do. The
tallies are finished by the same code in both engines, so their numbers are the same.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd

from geo_crime.core.errors import ConfigError
from geo_crime.core.options import EngineKind, word_parser
from geo_crime.core.periods import Freq
from geo_crime.cube.dask import dask_cube
from geo_crime.cube.dask_cluster import ClusterOptions
from geo_crime.cube.dask_incidents import cube_columns, dataset_columns, load_distributed
from geo_crime.cube.panel import Cube, make_cube
from geo_crime.ingest import read_incidents_parquet
from geo_crime.ingest.store import is_incident_dataset, read_incident_dataset
from geo_crime.publish.places import place_rows, study_place_rows
from geo_crime.record.breaks import harmonised_rows
from geo_crime.record.coverage import CoverageResult, check_coverage
from geo_crime.record.tallies import RunTally, StudyTally
from geo_crime.settings import StudySettings
from geo_crime.units import covered_divisions, division_units, incidents_outside_division
from geo_crime.units.assign import DivisionCheck


def engine_choice(
    engine: EngineKind | str = EngineKind.MEMORY,
    scheduler: str = "local",
    workers: int | None = None,
    worker_memory: str | None = None,
) -> ClusterOptions | None:
    """The one memory-or-cluster choice, made at the edge: the Dask cluster a command or run
    uses (``None``: in this process), or one :class:`~geo_crime.core.errors.ConfigError`.

    >>> engine_choice("memory") is None
    True
    >>> engine_choice("dask", workers=2).workers
    2
    """
    kind = word_parser(EngineKind, "--engine")(str(engine))
    if kind is EngineKind.MEMORY:
        if scheduler != "local" or workers is not None or worker_memory is not None:
            raise ConfigError(
                "--scheduler, --workers and --worker-memory apply to --engine dask only"
            )
        return None
    return ClusterOptions(scheduler, workers, worker_memory)


@contextlib.contextmanager
def engine_client(cluster: ClusterOptions | None) -> Iterator[Any]:
    """The cluster's ``distributed`` client for the block (``None`` in memory); a local cluster
    is started for the block and closed after it."""
    if cluster is None:
        yield None
        return
    from geo_crime.cube.dask_cluster import cluster_client  # dask: loaded for a cluster only

    with cluster_client(cluster.scheduler, cluster.workers, cluster.worker_memory) as client:
        yield client


def incidents_for_units(path: Path, client: Any, unit: str) -> MemoryIncidents | ClusterIncidents:
    """The incidents of an ingested file or dataset folder, as a cube of ``unit`` units reads
    them: in memory (only the columns a cube reads) or held on the cluster of ``client`` (a
    dataset folder only)."""

    if client is not None:
        if not is_incident_dataset(path):
            raise ConfigError(
                f"{path}: --engine dask reads a dataset folder written by "
                "'geo-crime ingest ... --dataset DIR'"
            )
        return ClusterIncidents(load_distributed(path, client, columns=cube_columns(unit)))
    if is_incident_dataset(path):  # only the columns a cube reads
        frame, _ = read_incident_dataset(path, columns=dataset_columns(unit))
    else:
        frame = read_incidents_parquet(path)
    return MemoryIncidents(frame)


@dataclass(frozen=True)
class StudyRows:
    """The rows of one study: :meth:`StudySettings.select`, and when ``harmonised`` only the
    categories comparable across the records-system break
    (:func:`geo_crime.record.breaks.harmonised_rows`).

    A plain picklable callable, so a cluster applies it to each partition.
    """

    settings: StudySettings
    harmonised: bool = False

    def __call__(self, incidents: pd.DataFrame) -> pd.DataFrame:

        rows = self.settings.select(incidents)
        return harmonised_rows(rows) if self.harmonised else rows


class MemoryIncidents:
    """A run's cleaned incidents in this process.

    Parameters
    ----------
    incidents
        The cleaned, scored incidents (:func:`geo_crime.ingest.load_incidents`).
    """

    engine = "memory"

    def __init__(self, incidents: pd.DataFrame) -> None:
        self.incidents = incidents

    def run_tally(self) -> RunTally:
        """The report's tally of every row."""
        return RunTally.of_rows(self.incidents)

    def division_check(self, divisions: gpd.GeoDataFrame | None = None) -> DivisionCheck:
        """Incidents whose coordinates lie outside their stated division."""

        return incidents_outside_division(self.incidents, divisions)

    def coverage(self, freq: str, threshold: float) -> CoverageResult:
        """The coverage check of every row at ``freq``."""
        return check_coverage(self.incidents, freq=freq, threshold=threshold)

    def unit_input(self, spec: str) -> pd.DataFrame:
        """What :func:`~geo_crime.units.make_units` reads for ``spec`` units: the rows."""
        return self.incidents

    def study(self, settings: StudySettings) -> MemoryStudy:
        """One study's rows."""
        return MemoryStudy(settings.select(self.incidents), settings)

    def cube(self, units: gpd.GeoDataFrame, *, freq: Freq | str, complete_only: bool) -> Cube:
        """The cube of every row; with ``complete_only`` thin (area, period) cells are marked
        incomplete (:func:`~geo_crime.record.coverage.check_coverage`)."""
        coverage = check_coverage(self.incidents, freq=freq) if complete_only else None
        return make_cube(self.incidents, units, freq=freq, coverage=coverage)

    def release(self) -> None:
        """Nothing to release in memory."""


class MemoryStudy:
    """One study's rows in this process."""

    def __init__(self, rows: pd.DataFrame, settings: StudySettings) -> None:
        self.rows, self.settings = rows, settings
        self.tally = StudyTally.of_rows(rows)

    def covered(self) -> list[int]:
        """The divisions the study's rows cover (:func:`~geo_crime.units.covered_divisions`)."""

        return covered_divisions(self.rows)

    def unit_input(self) -> pd.DataFrame:
        """What :func:`~geo_crime.units.make_units` reads of the study: its rows."""
        return self.rows

    def cube(self, units: gpd.GeoDataFrame, *, harmonised: bool = False, **options: Any) -> Cube:
        """The study's cube (``make_cube`` ``options``: freq, coverage, start, end)."""

        rows = harmonised_rows(self.rows) if harmonised else self.rows
        return make_cube(rows, units, **options)

    def place_rows(self, units: gpd.GeoDataFrame, keep: list[str], periods, freq: str):
        """The rows of the units ``keep`` in ``periods`` (:func:`geo_crime.publish.places.
        place_rows`)."""

        return place_rows(self.rows, units, keep, periods, freq)


class ClusterIncidents:
    """A run's incidents held on a Dask cluster
    (:class:`geo_crime.cube.dask_incidents.DistributedIncidents`).

    Parameters
    ----------
    held
        The dataset's deduplicated partitions on the cluster.
    """

    engine = "dask"

    def __init__(self, held: Any) -> None:
        self.held = held
        self._tally: RunTally | None = None

    def run_tally(self) -> RunTally:
        """The report's tally, summed on the cluster (once)."""
        if self._tally is None:
            self._tally = self.held.run_tally()
        return self._tally

    def division_check(self, divisions: gpd.GeoDataFrame | None = None) -> DivisionCheck:
        """The division check, per partition on the cluster, summed there."""

        return self.held.division_check(division_units() if divisions is None else divisions)

    def coverage(self, freq: str, threshold: float) -> CoverageResult:
        """The coverage check of the counts per source x division x day taken on the cluster."""
        return check_coverage(self.held.coverage_rows(), freq=freq, threshold=threshold)

    def unit_input(self, spec: str) -> pd.DataFrame:
        """Incidents per division, or per distinct point for derived reporting districts."""
        return self.held.unit_input(spec)

    def study(self, settings: StudySettings) -> ClusterStudy:
        """One study: its tally summed on the cluster."""
        return ClusterStudy(self.held, settings)

    def cube(self, units: gpd.GeoDataFrame, *, freq: Freq | str, complete_only: bool) -> Cube:
        """The cube of every row, built on the cluster (:func:`geo_crime.cube.dask.dask_cube`)."""

        return dask_cube(self.held, units, freq=freq, coverage=True if complete_only else None)

    def release(self) -> None:
        """Free the partitions held on the cluster."""
        self.held.release()


class ClusterStudy:
    """One study of a dataset on a cluster: its rows are selected per partition there."""

    def __init__(self, held: Any, settings: StudySettings) -> None:
        self.held, self.settings = held, settings
        self.tally = held.study_tally(StudyRows(settings))

    def covered(self) -> list[int]:
        """The divisions the study covers, judged on its incidents per division."""

        return covered_divisions(self.tally.areas)

    def unit_input(self) -> pd.DataFrame:
        """The study's incidents per division (what H3 units are judged against)."""
        return self.tally.areas

    def cube(self, units: gpd.GeoDataFrame, *, harmonised: bool = False, **options: Any) -> Cube:
        """The study's cube, built on the cluster (:func:`geo_crime.cube.dask.dask_cube`)."""

        return dask_cube(self.held, units, select=StudyRows(self.settings, harmonised), **options)

    def place_rows(self, units: gpd.GeoDataFrame, keep: list[str], periods, freq: str):
        """The rows of the units ``keep`` in ``periods``, cut on the cluster (a few thousand
        rows of a few columns reach this process)."""

        chosen = units[units["unit_id"].astype(str).isin(set(keep))]
        return self.held.gathered(
            study_place_rows, StudyRows(self.settings), chosen, keep, periods, freq
        )


#: What a run's stages take: either engine.
RunIncidents = MemoryIncidents | ClusterIncidents
StudyIncidents = MemoryStudy | ClusterStudy

__all__ = [
    "ClusterIncidents",
    "ClusterStudy",
    "MemoryIncidents",
    "MemoryStudy",
    "RunIncidents",
    "StudyIncidents",
    "StudyRows",
    "engine_choice",
    "engine_client",
    "incidents_for_units",
]

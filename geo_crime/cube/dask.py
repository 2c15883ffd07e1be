"""The space-time cube on a Dask cluster: the data-sized stage of the pipeline, past one machine.

Everything after the cube is small; building it is not. :func:`dask_cube` reads a partitioned
incident dataset (:mod:`geo_crime.ingest.store`, ``geo-crime ingest ... --dataset DIR``) on a
``distributed`` cluster and gives the cube :func:`~geo_crime.cube.panel.make_cube` gives for the
same incidents: same units, periods, values, coverage mask and assignment counts. It needs the
optional extra ``pip install geo_crime[dask]``.

How it runs
-----------
1. Each part of the dataset (one batch x source x month) is one partition, read by the reader
   of the in-memory path (:func:`~geo_crime.ingest.store.read_part`), so dtypes are the same.
2. Records found in two batches are removed with a shuffle on their key (legacy
   ``incident_id`` where not synthetic, NIBRS ``offense_id``;
   :func:`~geo_crime.ingest.store.duplicate_keys`): each shuffled partition holds every copy
   of its keys and :func:`~geo_crime.ingest.store.drop_batch_duplicates` keeps the earliest, as
   the in-memory reader does. Rows without a key are never deduplicated and are not shuffled.
   Then legacy records that NIBRS holds too are removed, as in memory
   (:func:`~geo_crime.ingest.systems.join_records_systems`): each partition sends the client its
   rows of the window both systems recorded (from the switch to the legacy set's last day, the
   match's columns only), the client finds the pairs, and each partition drops its legacy
   twins.
3. The units are broadcast to every worker once; each partition is assigned to units
   (:func:`~geo_crime.units.assign_units`) and binned by :func:`~geo_crime.cube.panel.build_cube`
   over its own periods: the binning rules are those of the in-memory cube, chunk by chunk.
4. The partial cubes are summed in a tree on the cluster, and the sum is placed on the periods
   the in-memory cube has (from the first to the last period holding an assigned incident, or
   ``start`` .. ``end``).
5. Coverage is counted on the cluster: each deduplicated partition gives its rows per (source
   columns, division, day), a table of thousands of rows whatever the data's size, and
   :func:`~geo_crime.record.coverage.check_coverage` judges the sum of those tables on the client as
   it judges the rows themselves (:data:`~geo_crime.core.schema.ROW_COUNT`). The coverage mask is
   then that of :func:`~geo_crime.cube.panel.build_cube`.

6. A whole run (``geo-crime run DATASET --engine dask``, :mod:`geo_crime.engines`) asks the
   held partitions for more than cubes: the report's tally of every row
   (:meth:`DistributedIncidents.run_tally`), the division check, and each study's tally and
   cubes of the rows its :meth:`~geo_crime.settings.StudySettings.select` keeps per partition
   (``select`` of :func:`dask_cube`). Each is a task per partition whose results are added in
   a tree on the cluster (:mod:`geo_crime.record.tallies`); the run keeps :data:`RUN_COLUMNS`.

Memory. Only the columns a cube needs are read and kept (:func:`cube_columns`; ids are
dropped once each row has its dedup key); the client holds the units (chosen from the
incidents per division of the coverage counts, or, when reporting districts are derived,
from the incidents per distinct point, counted on the cluster:
:meth:`DistributedIncidents.unit_input`), the coverage table and the cube. A worker's kept
partitions spill to its local disk past Dask's memory thresholds (``--worker-memory``).

A worker lost mid-job is replaced by the scheduler, which recomputes what it held from the
dataset (every task is a pure function of the parts); when that is not possible (the cluster has
no worker left, or a task keeps killing its worker) the job fails with one
:class:`~geo_crime.core.errors.DataError` saying so, never with a short cube.

Long because the cluster's lifetime, the dataset's reading and deduplication, the partial
cubes and their tree sum, the coverage counts and the run's tallies are one engine whose steps
share the partition layout; split across modules each would have to re-derive it.
"""

from __future__ import annotations

import operator
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from geo_crime.core.errors import ConfigError, DataError
from geo_crime.core.schema import ROW_COUNT
from geo_crime.cube.panel import (
    _PERIOD_CODES,
    Cube,
    _check_freq,
    _coverage_mask,
    build_cube,
    unit_meta,
)
from geo_crime.ingest import store
from geo_crime.ingest.systems import MATCH_COLUMNS, cross_system_pairs, match_window
from geo_crime.record.tallies import RunTally, StudyTally, tally_of
from geo_crime.units.assign import DivisionCheck

#: Columns the cube is built from (unit assignment and binning; see :func:`cube_columns`).
CUBE_COLUMNS: tuple[str, ...] = (
    "occurred_at",
    "area",
    "lat",
    "lon",
    "spatial_valid",
    "severity",
    "harm",
    "crime_category",
)

#: Columns the coverage check reads (it is judged on the cluster, as counts per source, area and
#: day: :meth:`DistributedIncidents.coverage_rows`).
COVERAGE_COLUMNS: tuple[str, ...] = (
    "occurred_at",
    "area",
    "source",
    "source_file",
    "source_system",
    "also_in_sources",
    "also_in_files",
)

#: Columns the units need from the data, per unit kind: the divisions the data covers (every
#: kind), and the points of each reporting district when the districts are derived.
UNIT_COLUMNS: dict[str, tuple[str, ...]] = {
    "default": ("area",),
    "rd": ("area", "rpt_dist", "lat", "lon", "spatial_valid"),
}


#: Columns a whole run reads on the cluster (``geo-crime run DATASET --engine dask``): the
#: cubes', the report's tallies (:mod:`geo_crime.record.tallies`) and the division check's.
RUN_COLUMNS: tuple[str, ...] = (
    *CUBE_COLUMNS,
    "rpt_dist",
    "area_name",
    "source",
    "source_system",
    "time_known",
    "time_class",
    "crm_cd_desc",
    "premis_desc",
)


@dataclass
class ClusterOptions:
    """Where a run's Dask work goes (:func:`cluster_client`'s arguments).

    Attributes
    ----------
    scheduler
        A scheduler address (``tcp://host:8786``) or ``"local"``.
    workers
        Worker processes of a local cluster.
    worker_memory
        Memory limit of each local worker (``"4GB"``).
    """

    scheduler: str = "local"
    workers: int | None = None
    worker_memory: str | None = None


def unit_columns(spec: str) -> tuple[str, ...]:
    """The incident columns :func:`~geo_crime.units.make_units` reads for the unit ``spec``."""
    kind = spec.partition(":")[0].strip().lower()
    return UNIT_COLUMNS["rd" if kind in ("rd", "rds") else "default"]


def cube_columns(spec: str | None = None) -> tuple[str, ...]:
    """The columns a Dask cube (and the units of ``spec``) need: what the cluster reads."""
    extra = unit_columns(spec) if spec else UNIT_COLUMNS["rd"]
    return tuple(dict.fromkeys((*CUBE_COLUMNS, *extra)))


def dataset_columns(spec: str | None = None) -> tuple[str, ...]:
    """The columns of a dataset a cube of ``spec`` units reads, with its coverage check."""
    return tuple(dict.fromkeys((*cube_columns(spec), *COVERAGE_COLUMNS)))


def _require_dask() -> None:
    try:
        import dask.dataframe  # noqa: F401
        import distributed  # noqa: F401
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ConfigError(
            f"the dask engine needs the optional extra: pip install 'geo_crime[dask]' ({exc})"
        ) from None


@contextmanager
def cluster_client(
    scheduler: str | None = "local",
    workers: int | None = None,
    worker_memory: str | None = None,
) -> Iterator[Any]:
    """A ``distributed.Client``: to the scheduler at ``scheduler``, or on a local cluster.

    Parameters
    ----------
    scheduler
        A scheduler address (``tcp://host:8786``) or ``"local"``/``None`` for a
        ``LocalCluster`` started here and closed on exit.
    workers
        Worker processes of the local cluster (default: one per core, at most 4).
    worker_memory
        Memory limit of each local worker (``"4GB"``; default: Dask's, the machine's memory
        shared among the workers). A worker spills what it holds to its local disk past 60% of
        it and is restarted past 95%.
    """
    _require_dask()
    from distributed import Client, LocalCluster

    if scheduler in (None, "", "local"):
        n = int(workers or min(4, os.cpu_count() or 1))
        if n < 1:
            raise ConfigError(f"--workers must be at least 1, got {n}")
        limit = "auto" if worker_memory in (None, "") else _memory_size(worker_memory)
        cluster = LocalCluster(
            n_workers=n,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",
            memory_limit=limit,
        )
        with (
            cluster,
            Client(cluster) as client,
        ):
            yield client
        return
    if workers is not None or worker_memory is not None:
        raise ConfigError(
            "--workers and --worker-memory apply to a local cluster only (--scheduler local)"
        )
    try:
        client = Client(scheduler, timeout="20s")
    except OSError as exc:
        raise ConfigError(f"cannot reach the Dask scheduler at {scheduler} ({exc})") from None
    with client:
        yield client


def _memory_size(text: str) -> int:
    """Bytes of a size such as ``4GB`` or ``512MiB`` (one clear error otherwise)."""
    from dask.utils import parse_bytes

    try:
        size = int(parse_bytes(text))
    except (ValueError, TypeError):
        size = 0
    if size <= 0:
        raise ConfigError(f"--worker-memory: {text!r} is not a memory size (use e.g. 4GB)")
    return size


def dataset_frame(path: str | os.PathLike, columns: Sequence[str] | None = None):
    """The dataset as a ``dask.dataframe`` with one partition per part (no deduplication).

    Parameters
    ----------
    path
        A partitioned incident dataset.
    columns
        Only these columns (``_batch`` and ``_row`` are always there).
    """
    _require_dask()
    import dask
    import dask.dataframe as dd

    parts, info = store.dataset_parts(path)
    meta = store.read_part(parts[0], info, columns).iloc[:0]
    with dask.config.set({"dataframe.convert-string": False}):
        return dd.from_map(
            _read_part,
            [str(p) for p in parts],
            info=info,
            wanted=None if columns is None else list(columns),
            meta=meta,
            label="read-incidents",
            enforce_metadata=False,
        )


def _read_part(path: str, info: dict, wanted: list[str] | None) -> pd.DataFrame:
    """:func:`store.read_part` under a name Dask does not push column projections into.

    A ``columns`` argument would let Dask narrow the read to the columns one branch of the
    graph needs, while a part always carries its order columns; the columns are chosen here.
    """
    return store.read_part(path, info, wanted)


def _with_keys(part: pd.DataFrame, drop: Sequence[str]) -> pd.DataFrame:
    """The part with its dedup key (Arrow strings: compact in a shuffle), id columns dropped."""
    keys = store.duplicate_keys(part).astype("string[pyarrow]")
    return part.assign(_key=keys).drop(columns=[c for c in drop if c in part])


def _coverage_counts(part: pd.DataFrame) -> pd.DataFrame:
    """Rows per (source columns, division, day): all the coverage check needs of a part."""
    by = [c for c in COVERAGE_COLUMNS if c in part and c != "occurred_at"]
    days = part["occurred_at"].dt.normalize()
    frame = part[by].assign(occurred_at=days).dropna(subset=["occurred_at"])
    return _point_counts(frame, [*by, "occurred_at"])


def _dedup(
    part: pd.DataFrame, deduplicate: bool = True
) -> tuple[pd.DataFrame, dict[str, int], pd.DataFrame]:
    """Kept rows, duplicate counts, and the rows a cross-system match may concern."""
    if deduplicate:
        kept, counts = store.drop_batch_duplicates(part.drop(columns="_key"), part["_key"])
    else:
        kept = part.drop(columns="_key")
        counts = {"duplicates_dropped": 0, "duplicate_offenses_dropped": 0}
    inside = match_window(kept["occurred_at"])
    columns = [c for c in (*MATCH_COLUMNS, *store.ORDER_COLUMNS) if c in kept]
    return kept, counts, kept.loc[inside, columns]


def _finish(
    part: pd.DataFrame, twins: pd.DataFrame, keep: Sequence[str] | None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A partition without the legacy rows NIBRS recorded too (the kept NIBRS row notes the
    legacy source, as in memory), its coverage counts, and only ``keep`` columns when given."""
    if len(twins):
        order = list(store.ORDER_COLUMNS)
        at = pd.MultiIndex.from_frame(part[order])
        drop = at.isin(pd.MultiIndex.from_frame(twins[["legacy_batch", "legacy_row"]]))
        noted = pd.Series(
            twins["legacy_source"].to_numpy(),
            index=pd.MultiIndex.from_frame(twins[["nibrs_batch", "nibrs_row"]]),
        )
        extra = noted.reindex(at)
        if extra.notna().any() and "also_in_sources" in part:
            part = part.copy()
            old = part["also_in_sources"].astype("string").to_numpy(dtype=object, na_value=None)
            for i in np.flatnonzero(extra.notna().to_numpy()):
                have = old[i].split(",") if old[i] else []
                old[i] = ",".join(sorted({extra.iat[i], *have}))
            part["also_in_sources"] = pd.array(old, dtype=part["also_in_sources"].dtype)
        part = part.loc[~drop].reset_index(drop=True)
    coverage = _coverage_counts(part)
    if keep is not None:
        part = part[[c for c in (*keep, *store.ORDER_COLUMNS) if c in part]]
    return part, coverage


def _twins(candidates: pd.DataFrame) -> tuple[pd.DataFrame, int, int]:
    """The legacy rows NIBRS recorded too, by the rule of
    :func:`geo_crime.ingest.systems.join_records_systems`, over all partitions' candidates (in load
    order, so ties fall as in memory): their and their NIBRS rows' (batch, row), the legacy
    source, and the counts ``legacy_matchable`` and pairs."""
    order = list(store.ORDER_COLUMNS)
    candidates = candidates.sort_values(order, kind="stable").reset_index(drop=True)
    pairs, matchable = cross_system_pairs(candidates)
    legacy = candidates.iloc[pairs["legacy"].to_numpy()]
    nibrs = candidates.iloc[pairs["nibrs"].to_numpy()]
    twins = pd.DataFrame(
        {
            "legacy_batch": legacy["_batch"].to_numpy(),
            "legacy_row": legacy["_row"].to_numpy(),
            "legacy_source": legacy["source"].astype(str).to_numpy()
            if "source" in legacy
            else np.full(len(legacy), "", dtype=object),
            "nibrs_batch": nibrs["_batch"].to_numpy(),
            "nibrs_row": nibrs["_row"].to_numpy(),
        }
    )
    return twins, matchable, len(pairs)


def _concat(parts: list[pd.DataFrame]) -> pd.DataFrame:
    """The partitions' candidate rows as one frame."""
    present = [p for p in parts if len(p)]
    return pd.concat(present, ignore_index=True) if present else parts[0]


def _sum_counts(counts: list[dict[str, int]]) -> dict[str, int]:
    total = {"duplicates_dropped": 0, "duplicate_offenses_dropped": 0}
    for item in counts:
        for key, value in item.items():
            total[key] += int(value)
    return total


def _add_counts(*tables: pd.DataFrame) -> pd.DataFrame:
    """The sum of coverage count tables: one row per distinct (source columns, division, day)."""
    table = pd.concat(tables, ignore_index=True)
    by = [c for c in table.columns if c != ROW_COUNT]
    return table.groupby(by, dropna=False, sort=False)[ROW_COUNT].sum().reset_index()


def _tree_sum(client: Any, layer: list[Any], combine: Any) -> Any:
    """Combine futures pairwise on the cluster until one is left; its future."""
    while len(layer) > 1:
        nxt = [client.submit(combine, layer[i], layer[i + 1]) for i in range(0, len(layer) - 1, 2)]
        if len(layer) % 2:
            nxt.append(layer[-1])
        layer = nxt
    return layer[0]


def _point_counts(part: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """Rows of a partition per distinct value set of ``columns`` (``ROW_COUNT``).

    The keys are plain values (parts' categories differ, the sum is over all parts): text in
    Arrow strings, ``area`` in nullable integers; summed and sent between workers many times
    faster than Python objects.
    """
    frame = part[[c for c in columns if c in part]]
    counts = frame.groupby(list(frame.columns), dropna=False, observed=True, sort=False).size()
    table = counts.rename(ROW_COUNT).reset_index()
    for col in frame.columns:
        kind = table[col].dtype
        if col == "area":
            table[col] = table[col].astype("Int64")
        elif not (
            pd.api.types.is_numeric_dtype(kind)
            or pd.api.types.is_bool_dtype(kind)
            or pd.api.types.is_datetime64_any_dtype(kind)
        ):
            table[col] = table[col].astype("string[pyarrow]")
    return table


@dataclass
class DistributedIncidents:
    """The incidents of a dataset held on a cluster, deduplicated across batches.

    Attributes
    ----------
    client
        The ``distributed.Client``.
    frames
        One future per partition (a pandas frame of kept rows; only the columns asked for).
    duplicates
        Records removed as found in an earlier batch (``duplicates_dropped``,
        ``duplicate_offenses_dropped``), and legacy records removed as NIBRS holds them too
        (``cross_system_duplicates``, of ``legacy_matchable``: the join of the records systems
        over all batches, :func:`geo_crime.ingest.systems.join_records_systems`).
    source
        The dataset folder.
    coverage_parts
        One future per partition: its rows per (source columns, division, day).
    """

    client: Any
    frames: list[Any]
    duplicates: dict[str, int]
    source: str
    coverage_parts: list[Any] = field(default_factory=list, repr=False)
    _coverage: pd.DataFrame | None = field(default=None, repr=False)

    def unit_input(self, spec: str) -> pd.DataFrame:
        """What :func:`~geo_crime.units.make_units` needs of the data for ``spec`` units.

        Derived reporting districts need the points of the rows: their distinct values of
        :func:`unit_columns` with the incidents at each (:data:`~geo_crime.core.schema.ROW_COUNT`),
        counted on the cluster and summed there (the LAPD's hundred-block coordinates repeat: the
        shared data's 128k rows hold 35k distinct points). Other units only need the
        divisions the data covers, judged on the incidents per division taken from the coverage
        counts. Rows that state no division at all are placed by their coordinates, as in
        memory.
        """
        if unit_columns(spec) != UNIT_COLUMNS["default"]:
            return self.point_counts(unit_columns(spec))
        rows = self.coverage_rows()
        if not rows["area"].notna().any():
            return self.point_counts(("area", "lat", "lon", "spatial_valid"))
        return rows.groupby("area", dropna=False)[ROW_COUNT].sum().reset_index()

    def point_counts(self, columns: Sequence[str]) -> pd.DataFrame:
        """Incidents per distinct value set of ``columns`` (points), summed on the cluster."""
        parts = [self.client.submit(_point_counts, f, tuple(columns)) for f in self.frames]
        table = _gather(self.client, _tree_sum(self.client, parts, _add_counts))
        return table.sort_values([c for c in columns if c in table]).reset_index(drop=True)

    def coverage_rows(self) -> pd.DataFrame:
        """Rows per (source columns, division, day) over the whole dataset (collected once).

        ``occurred_at`` holds the day (midnight).

        The input :func:`~geo_crime.record.coverage.check_coverage` judges exactly as it judges the
        incidents themselves: one row per distinct value set, its number of incidents in
        :data:`~geo_crime.core.schema.ROW_COUNT`.
        """
        if self._coverage is None:
            # summed pairwise on the cluster: every shuffled partition spans all days, so the
            # parts' tables together are many times the size of their sum
            # (each part's table has one row per distinct value set already)
            out = _gather(self.client, _tree_sum(self.client, self.coverage_parts, _add_counts))
            text = [c for c in out.columns if c not in (ROW_COUNT, "occurred_at", "area")]
            out[text] = out[text].astype(object).where(out[text].notna(), None)
            out["occurred_at"] = pd.to_datetime(out["occurred_at"])
            if "area" in out:
                out["area"] = out["area"].astype("Int64")
            self._coverage = out
        return self._coverage

    def _summed(self, task: Any, *args: Any) -> Any:
        """``task(partition, *args)`` on every partition, the results added pairwise there."""
        parts = [self.client.submit(task, f, *args, pure=False) for f in self.frames]
        return _gather(self.client, _tree_sum(self.client, parts, operator.add))

    def gathered(self, task: Any, *args: Any) -> pd.DataFrame:
        """``task(partition, *args)`` on every partition, the (small) frames concatenated here."""
        parts = [self.client.submit(task, f, *args, pure=False) for f in self.frames]
        return _concat(_gather(self.client, parts))

    def run_tally(self) -> RunTally:
        """The report's tally of every kept row (:class:`geo_crime.record.tallies.RunTally`)."""
        return self._summed(RunTally.of_rows)

    def study_tally(self, select: Callable[[pd.DataFrame], pd.DataFrame] | None) -> StudyTally:
        """The tally of the rows ``select`` keeps of each partition (a study's rows)."""
        return self._summed(tally_of, select)

    def division_check(self, divisions: gpd.GeoDataFrame) -> DivisionCheck:
        """:func:`~geo_crime.units.incidents_outside_division` of every kept row (its counts
        summed, its flagged rows gathered: a few per cent of the rows, no victim field)."""
        from geo_crime.units import incidents_outside_division

        shared = self.client.scatter(divisions, broadcast=True, hash=False)
        return self._summed(incidents_outside_division, shared)

    def release(self) -> None:
        """Free the partitions on the cluster."""
        for future in (*self.frames, *self.coverage_parts):
            future.release()


def _gather(client: Any, futures: Any) -> Any:
    """``client.gather`` with the cluster's own failures turned into one clear error."""
    from distributed.client import FutureCancelledError
    from distributed.scheduler import KilledWorker

    try:
        return client.gather(futures)
    except KilledWorker as exc:
        raise DataError(
            f"the Dask cluster lost the workers running {exc.task!r} too many times; "
            "no cube was built (see the worker logs)"
        ) from exc
    except FutureCancelledError as exc:
        raise DataError(f"the Dask job was cancelled ({exc}); no cube was built") from exc
    except (OSError, TimeoutError) as exc:
        raise DataError(f"the Dask cluster failed ({exc}); no cube was built") from exc


#: Rows of one partition after the dedup shuffle, at the most (when there are enough parts): a
#: task holds a few times its partition, so this bounds a worker's memory whatever the data's size.
ROWS_PER_SHUFFLED_PARTITION = 1_000_000


def _shuffled_partitions(path: str | os.PathLike, n_parts: int, threads: int) -> int:
    """Partitions of the dedup shuffle: two per thread, more for large data (row counts from
    the parts' Parquet footers), never more than the parts."""
    import math

    import pyarrow.parquet as pq

    parts, _ = store.dataset_parts(path)
    rows = sum(pq.read_metadata(p).num_rows for p in parts)
    wanted = max(2 * max(threads, 1), math.ceil(rows / ROWS_PER_SHUFFLED_PARTITION))
    return max(1, min(n_parts, wanted))


#: Id columns used only to find duplicates: dropped once each row has its key.
_ID_COLUMNS: tuple[str, ...] = ("incident_id", "incident_id_synthetic", "offense_id")


def load_distributed(
    path: str | os.PathLike,
    client: Any,
    *,
    columns: Sequence[str] | None = None,
    shuffle_method: str = "tasks",
) -> DistributedIncidents:
    """Read a dataset on the cluster and remove records found in two batches (a shuffle).

    Parameters
    ----------
    path
        A partitioned incident dataset.
    client
        A ``distributed.Client``.
    columns
        Keep only these columns on the cluster (default: all). The cluster reads them, the
        columns deduplication and the coverage check need, and nothing else; the coverage
        counts are taken before the extra columns are dropped. :func:`cube_columns` gives what
        a cube needs.
    shuffle_method
        ``"tasks"`` (default: recomputed like any task when a worker is lost) or ``"p2p"``
        (less memory on large data; a lost worker fails the shuffle).

    Returns
    -------
    DistributedIncidents
    """
    import dask

    read = None
    keep = None
    if columns is not None:
        keep = list(dict.fromkeys(columns))
        read = list(dict.fromkeys([*keep, *store.DEDUP_COLUMNS, *COVERAGE_COLUMNS, *MATCH_COLUMNS]))
    frame = dataset_frame(path, read)
    drop = [c for c in _ID_COLUMNS if keep is not None and c not in keep]
    n_out = _shuffled_partitions(path, frame.npartitions, sum(client.nthreads().values()))
    meta = frame._meta.drop(columns=[c for c in drop if c in frame._meta])
    meta = meta.assign(_key=pd.Series([], dtype="string[pyarrow]"))
    with dask.config.set({"dataframe.convert-string": False}):
        keyed_all = frame.map_partitions(_with_keys, drop, meta=meta)
        keyed = keyed_all[~keyed_all["_key"].isna()]
        keyed = keyed.shuffle(on="_key", npartitions=n_out, shuffle_method=shuffle_method)
        free = keyed_all[keyed_all["_key"].isna()]
        jobs = [dask.delayed(_dedup)(p) for p in keyed.to_delayed()]
        jobs += [dask.delayed(_dedup)(p, False) for p in free.to_delayed()]
    results = client.compute(jobs)
    counts = _gather(
        client, client.submit(_sum_counts, [client.submit(operator.getitem, r, 1) for r in results])
    )
    # legacy and NIBRS rows of different batches: only the rows of the window where both
    # systems recorded come to the client, to find the records NIBRS holds too
    candidates = [client.submit(operator.getitem, r, 2) for r in results]
    twins, matchable, pairs = _twins(_gather(client, client.submit(_concat, candidates)))
    counts.update(cross_system_duplicates=pairs, legacy_matchable=matchable)
    shared = client.scatter(twins, broadcast=True, hash=False)
    finished = [
        client.submit(_finish, client.submit(operator.getitem, r, 0), shared, keep) for r in results
    ]
    frames = [client.submit(operator.getitem, f, 0) for f in finished]
    coverage = [client.submit(operator.getitem, f, 1) for f in finished]
    del results, candidates, finished
    return DistributedIncidents(
        client=client,
        frames=frames,
        duplicates=counts,
        source=str(path),
        coverage_parts=coverage,
    )


def _partial(
    part: pd.DataFrame,
    units: gpd.GeoDataFrame,
    freq: str,
    start: pd.Timestamp | None,
    end: pd.Timestamp | None,
    need_areas: bool,
    select: Callable[[pd.DataFrame], pd.DataFrame] | None = None,
) -> dict[str, Any]:
    """One partition (its ``select`` rows) assigned and binned by the in-memory code, over the
    partition's periods."""
    from geo_crime.cube.panel import period_start
    from geo_crime.units import assign_units

    if select is not None:
        part = select(part)
    unit_ids, report = assign_units(part, units)
    out: dict[str, Any] = {"assignment": report.to_dict(), "total": len(part)}
    if not len(part):
        out.update(periods=pd.DatetimeIndex([]), cube=None, pairs=None)
        return out
    stamps = period_start(part["occurred_at"], freq)
    lo, hi = stamps.min(), stamps.max()
    lo = max(lo, pd.Timestamp(start)) if start is not None else lo
    hi = min(hi, pd.Timestamp(end)) if end is not None else hi
    cube = build_cube(part, units, unit_ids, freq=freq, start=lo, end=hi)
    out.update(periods=cube.periods, cube=cube, pairs=None)
    if need_areas:
        row = pd.Index(units["unit_id"].astype(str)).get_indexer(
            unit_ids.astype("string").fillna("\0")
        )
        use = row >= 0
        areas = part["area"].astype("Int64").to_numpy(dtype=np.int64, na_value=-1)
        pairs = pd.DataFrame({"row": row[use], "area": areas[use]})
        pairs = pairs[pairs["area"] > 0]
        out["pairs"] = pairs.groupby(["row", "area"]).size()
    return out


def _span(partial: dict[str, Any]) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
    """First and last period holding an assigned incident in a partial."""
    cube = partial["cube"]
    if cube is None:
        return None, None
    used = np.flatnonzero(cube.counts.sum(axis=0) > 0)
    if not len(used):
        return None, None
    return cube.periods[used[0]], cube.periods[used[-1]]


def _place(arrays: dict[str, np.ndarray], periods: pd.DatetimeIndex, on: pd.DatetimeIndex):
    """Arrays over ``periods`` put on the periods ``on`` (zeros elsewhere)."""
    col = on.get_indexer(periods)
    inside = col >= 0
    placed = {}
    for name, arr in arrays.items():
        if arr[:, ~inside].any():
            raise DataError(f"internal: incidents outside the cube's periods in {name!r}")
        grid = np.zeros((arr.shape[0], len(on)), dtype=arr.dtype)
        grid[:, col[inside]] = arr[:, inside]
        placed[name] = grid
    return placed


def _arrays(cube: Cube) -> dict[str, np.ndarray]:
    arrays = {"counts": cube.counts, "severity": cube.severity, "harm": cube.harm}
    arrays.update({f"cat:{k}": v for k, v in cube.categories.items()})
    return arrays


def _as_sum(partial: dict[str, Any], freq: str) -> dict[str, Any]:
    """A partial reduced to what the sum keeps: arrays over its periods, counts, area pairs."""
    cube = partial["cube"]
    meta_keys = (
        "incidents_in_cube",
        "incidents_outside_units",
        "incidents_outside_periods",
    )
    return {
        "periods": partial["periods"],
        "arrays": {} if cube is None else _arrays(cube),
        "meta": {k: (0 if cube is None else int(cube.meta[k])) for k in meta_keys},
        "total": int(partial["total"]),
        "assignment": partial["assignment"],
        "pairs": partial["pairs"],
        "freq": freq,
    }


def _add(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """The sum of two partial cubes (over the union of their periods)."""
    if not len(a["periods"]):
        a, b = b, a
    if not len(b["periods"]):
        periods, arrays = a["periods"], a["arrays"]
    else:
        code = _PERIOD_CODES[a["freq"]]
        first = min(a["periods"][0], b["periods"][0])
        last = max(a["periods"][-1], b["periods"][-1])
        periods = pd.DatetimeIndex(pd.period_range(first, last, freq=code).start_time)
        pa_ = _place(a["arrays"], a["periods"], periods)
        pb = _place(b["arrays"], b["periods"], periods)
        if pa_.keys() != pb.keys():
            raise DataError("internal: partitions with different crime categories")
        arrays = {k: pa_[k] + pb[k] for k in pa_}
    assignment = dict(a["assignment"])
    for key, value in b["assignment"].items():
        if isinstance(value, int) and not isinstance(value, bool):
            assignment[key] = assignment.get(key, 0) + value
        elif isinstance(value, list):
            assignment[key] = sorted(set(assignment.get(key, [])) | set(value))
    pairs = [p for p in (a["pairs"], b["pairs"]) if p is not None]
    return {
        "periods": periods,
        "arrays": arrays,
        "meta": {k: a["meta"][k] + b["meta"][k] for k in a["meta"]},
        "total": a["total"] + b["total"],
        "assignment": assignment,
        "pairs": pairs[0].add(pairs[1], fill_value=0)
        if len(pairs) == 2
        else (pairs[0] if pairs else None),
        "freq": a["freq"],
    }


def _majority_areas(pairs: pd.Series | None, n_units: int) -> np.ndarray:
    """Each unit's most common division among its incidents (-1 for none; ties: lowest)."""
    unit_area = np.full(n_units, -1, dtype=np.int64)
    if pairs is None or not len(pairs):
        return unit_area
    table = (
        pairs.rename("n")
        .reset_index()
        .sort_values(["row", "n", "area"], ascending=[True, False, True])
    )
    best = table.drop_duplicates("row")
    unit_area[best["row"].to_numpy()] = best["area"].to_numpy()
    return unit_area


def dask_cube(
    dataset: str | os.PathLike | DistributedIncidents,
    units: gpd.GeoDataFrame,
    *,
    freq: str = "W",
    coverage: Any = None,
    start: str | pd.Timestamp | None = None,
    end: str | pd.Timestamp | None = None,
    client: Any = None,
    select: Callable[[pd.DataFrame], pd.DataFrame] | None = None,
) -> Cube:
    """The cube of a partitioned incident dataset, built on a Dask cluster.

    Equal to ``make_cube(read_incident_dataset(dataset)[0], units, ...)`` (units, periods,
    values, coverage mask, assignment counts).

    Parameters
    ----------
    dataset
        A dataset folder, or incidents already on the cluster (:func:`load_distributed`).
    units
        The units (:mod:`geo_crime.units`), broadcast to every worker once.
    freq
        ``D``, ``W`` or ``M``.
    coverage
        ``None`` (every cell complete), ``True`` (judged here with
        :func:`~geo_crime.record.coverage.check_coverage` defaults at ``freq``) or a
        :class:`~geo_crime.record.coverage.CoverageResult` (one at another period length is judged
        again at ``freq`` with its settings, as :func:`~geo_crime.cube.panel.make_cube` does).
    start, end
        Period range (inclusive).
    client
        A ``distributed.Client``; default: the current one, else a local cluster for this call.
    select
        Rows of each partition to bin (a study's, :meth:`~geo_crime.settings.StudySettings.select`;
        default all): the cube is that of the selected rows, as ``make_cube`` of them gives it.

    Returns
    -------
    Cube
        ``meta`` as :func:`~geo_crime.cube.panel.make_cube` gives it, plus ``engine`` ("dask"),
        ``partitions`` and ``duplicates_across_batches`` (records removed by the shuffle).

    Raises
    ------
    DataError
        No incident falls inside the units, or the cluster failed (one error, no cube).
    """
    _require_dask()
    freq = _check_freq(freq)
    if client is None and not isinstance(dataset, DistributedIncidents):
        from distributed import default_client

        try:
            client = default_client()
        except ValueError:
            with cluster_client("local", workers=min(2, os.cpu_count() or 1)) as local:
                return dask_cube(
                    dataset,
                    units,
                    freq=freq,
                    coverage=coverage,
                    start=start,
                    end=end,
                    client=local,
                    select=select,
                )
    held = dataset if isinstance(dataset, DistributedIncidents) else None
    if held is None:
        held = load_distributed(dataset, client, columns=CUBE_COLUMNS)
    client = held.client
    try:
        return _cube_on_cluster(held, units, freq, coverage, start, end, select)
    finally:
        if not isinstance(dataset, DistributedIncidents):
            held.release()


def _cube_on_cluster(held, units, freq, coverage, start, end, select=None) -> Cube:
    client = held.client
    units = units.reset_index(drop=True)
    need_areas = coverage is not None and not ("area" in units and units["area"].notna().all())
    start = None if start is None else pd.Timestamp(start)
    end = None if end is None else pd.Timestamp(end)
    shared = client.scatter(units, broadcast=True, hash=False)
    partials = [
        client.submit(_partial, f, shared, freq, start, end, need_areas, select, pure=False)
        for f in held.frames
    ]
    spans = _gather(client, [client.submit(_span, p) for p in partials])
    total = _gather(
        client, _tree_sum(client, [client.submit(_as_sum, p, freq) for p in partials], _add)
    )
    firsts = [s[0] for s in spans if s[0] is not None]
    lasts = [s[1] for s in spans if s[1] is not None]
    if start is None and end is None and not firsts:
        raise DataError("no incident falls inside the units: cannot build a cube")
    code = _PERIOD_CODES[freq]
    first = _period_of(start, code) if start is not None else min(firsts)
    last = _period_of(end, code) if end is not None else max(lasts)
    periods = pd.DatetimeIndex(pd.period_range(first, last, freq=code).start_time)
    arrays = _place(total["arrays"], total["periods"], periods) if total["arrays"] else {}
    shape = (len(units), len(periods))
    categories = {k[4:]: v for k, v in arrays.items() if k.startswith("cat:")}
    complete = None
    if coverage is not None:
        rows = held.coverage_rows()
        coverage = _coverage_at(coverage, rows, freq)
        mask_units = units
        if need_areas:
            mask_units = units.assign(area=_majority_areas(total["pairs"], len(units)))
        complete = _coverage_mask(rows, mask_units, None, None, periods, freq, coverage)
    meta = {
        **unit_meta(units),
        "incidents_total": int(total["total"]),
        **total["meta"],
        "assignment": total["assignment"],
        "engine": "dask",
        "partitions": len(held.frames),
        "duplicates_across_batches": dict(held.duplicates),
    }
    return Cube(
        units=units,
        periods=periods,
        freq=freq,
        counts=arrays.get("counts", np.zeros(shape, dtype=np.int64)),
        severity=arrays.get("severity", np.zeros(shape)),
        harm=arrays.get("harm", np.zeros(shape)),
        categories=categories,
        complete=complete,
        meta=meta,
    )


def _period_of(stamp: pd.Timestamp, code: str) -> pd.Timestamp:
    return pd.Period(stamp, freq=code).start_time


def _coverage_at(coverage: Any, rows: pd.DataFrame, freq: str):
    """The coverage result to mark the cube with, judged at the cube's period length."""
    from geo_crime.record.coverage import check_coverage

    if coverage is True:
        return check_coverage(rows, freq=freq)
    if coverage.freq != freq:
        return check_coverage(
            rows,
            freq=freq,
            threshold=coverage.threshold,
            by=coverage.by,
        )
    return coverage

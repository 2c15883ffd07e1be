"""A partitioned incident dataset held on a Dask cluster, deduplicated as in memory.

:func:`load_distributed` reads a dataset (:mod:`geo_crime.ingest.store`) on the cluster, one
partition per part, removes the records found in two batches (a shuffle on their key) and the
legacy records NIBRS holds too, and keeps only the columns asked for
(:func:`cube_columns`, :data:`~geo_crime.core.schema.RUN_COLUMNS`). The
:class:`DistributedIncidents` it gives answer per partition on the cluster, the answers added in
a tree there: coverage counts, points per unit input, the report's tallies and the division
check. :mod:`geo_crime.cube.dask` builds the cube from them; the steps are described there.
"""

from __future__ import annotations

import math
import operator
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from geo_crime.core.schema import COVERAGE_COLUMNS, CUBE_COLUMNS, ROW_COUNT, UNIT_COLUMNS
from geo_crime.cube.dask_cluster import gather, require_dask, tree_sum
from geo_crime.ingest import store
from geo_crime.ingest.systems import MATCH_COLUMNS, cross_system_pairs, match_window
from geo_crime.record.tallies import RunTally, StudyTally, tally_of
from geo_crime.units.assign import DivisionCheck, incidents_outside_division


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


def dataset_frame(path: str | os.PathLike, columns: Sequence[str] | None = None):
    """The dataset as a ``dask.dataframe`` with one partition per part (no deduplication).

    Parameters
    ----------
    path
        A partitioned incident dataset.
    columns
        Only these columns (``_batch`` and ``_row`` are always there).
    """
    require_dask()
    # optional heavy dependency (dask extra)
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
        table = gather(self.client, tree_sum(self.client, parts, _add_counts))
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
            out = gather(self.client, tree_sum(self.client, self.coverage_parts, _add_counts))
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
        return gather(self.client, tree_sum(self.client, parts, operator.add))

    def gathered(self, task: Any, *args: Any) -> pd.DataFrame:
        """``task(partition, *args)`` on every partition, the (small) frames concatenated here."""
        parts = [self.client.submit(task, f, *args, pure=False) for f in self.frames]
        return _concat(gather(self.client, parts))

    def run_tally(self) -> RunTally:
        """The report's tally of every kept row (:class:`geo_crime.record.tallies.RunTally`)."""
        return self._summed(RunTally.of_rows)

    def study_tally(self, select: Callable[[pd.DataFrame], pd.DataFrame] | None) -> StudyTally:
        """The tally of the rows ``select`` keeps of each partition (a study's rows)."""
        return self._summed(tally_of, select)

    def division_check(self, divisions: gpd.GeoDataFrame) -> DivisionCheck:
        """:func:`~geo_crime.units.incidents_outside_division` of every kept row (its counts
        summed, its flagged rows gathered: a few per cent of the rows, no victim field)."""
        shared = self.client.scatter(divisions, broadcast=True, hash=False)
        return self._summed(incidents_outside_division, shared)

    def release(self) -> None:
        """Free the partitions on the cluster."""
        for future in (*self.frames, *self.coverage_parts):
            future.release()


#: Rows of one partition after the dedup shuffle, at the most (when there are enough parts): a
#: task holds a few times its partition, so this bounds a worker's memory whatever the data's size.
ROWS_PER_SHUFFLED_PARTITION = 1_000_000


def _shuffled_partitions(path: str | os.PathLike, n_parts: int, threads: int) -> int:
    """Partitions of the dedup shuffle: two per thread, more for large data (row counts from
    the parts' Parquet footers), never more than the parts."""
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
    import dask  # optional heavy dependency (dask extra)

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
    counts = gather(
        client, client.submit(_sum_counts, [client.submit(operator.getitem, r, 1) for r in results])
    )
    # legacy and NIBRS rows of different batches: only the rows of the window where both
    # systems recorded come to the client, to find the records NIBRS holds too
    candidates = [client.submit(operator.getitem, r, 2) for r in results]
    twins, matchable, pairs = _twins(gather(client, client.submit(_concat, candidates)))
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

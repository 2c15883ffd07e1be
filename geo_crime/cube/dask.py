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
   (:meth:`~geo_crime.cube.dask_incidents.DistributedIncidents.run_tally`), the division
   check, and each study's tally and cubes of the rows its
   :meth:`~geo_crime.settings.StudySettings.select` keeps per partition (``select`` of
   :func:`dask_cube`). Each is a task per partition whose results are added in a tree on the
   cluster (:mod:`geo_crime.record.tallies`); the run keeps
   :data:`~geo_crime.core.schema.RUN_COLUMNS`.

Memory. Only the columns a cube needs are read and kept
(:func:`~geo_crime.cube.dask_incidents.cube_columns`; ids are dropped once each row has its
dedup key); the client holds the units (chosen from the incidents per division of the coverage
counts, or, when reporting districts are derived, from the incidents per distinct point,
counted on the cluster: :meth:`~geo_crime.cube.dask_incidents.DistributedIncidents.unit_input`),
the coverage table and the cube. A worker's kept partitions spill to its local disk past
Dask's memory thresholds (``--worker-memory``).

A worker lost mid-job is replaced by the scheduler, which recomputes what it held from the
dataset (every task is a pure function of the parts); when that is not possible (the cluster has
no worker left, or a task keeps killing its worker) the job fails with one
:class:`~geo_crime.core.errors.DataError` saying so, never with a short cube.

Modules: :mod:`geo_crime.cube.dask_cluster` (the client, collecting results),
:mod:`geo_crime.cube.dask_incidents` (steps 1, 2, 5 and 6: the incidents held on the cluster,
:func:`~geo_crime.cube.dask_incidents.load_distributed`) and this one (steps 3 and 4, the cube);
the columns each step reads are in :mod:`geo_crime.core.schema`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from geo_crime.core.errors import DataError
from geo_crime.core.periods import Freq
from geo_crime.core.schema import CUBE_COLUMNS
from geo_crime.cube.dask_cluster import cluster_client, gather, require_dask, tree_sum
from geo_crime.cube.dask_incidents import DistributedIncidents, load_distributed
from geo_crime.cube.panel import Cube, _coverage_mask, build_cube, unit_meta
from geo_crime.record.coverage import check_coverage
from geo_crime.units.assign import assign_units


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
    if select is not None:
        part = select(part)
    unit_ids, report = assign_units(part, units)
    out: dict[str, Any] = {"assignment": report.to_dict(), "total": len(part)}
    if not len(part):
        out.update(periods=pd.DatetimeIndex([]), cube=None, pairs=None)
        return out
    stamps = Freq.parse(freq).start(part["occurred_at"])
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
        first = min(a["periods"][0], b["periods"][0])
        last = max(a["periods"][-1], b["periods"][-1])
        periods = pd.DatetimeIndex(Freq.parse(a["freq"]).range(first, last))
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
    require_dask()
    freq = Freq.parse(freq)
    if client is None and not isinstance(dataset, DistributedIncidents):
        from distributed import default_client  # optional heavy dependency (dask extra)

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
    spans = gather(client, [client.submit(_span, p) for p in partials])
    total = gather(
        client, tree_sum(client, [client.submit(_as_sum, p, freq) for p in partials], _add)
    )
    firsts = [s[0] for s in spans if s[0] is not None]
    lasts = [s[1] for s in spans if s[1] is not None]
    if start is None and end is None and not firsts:
        raise DataError("no incident falls inside the units: cannot build a cube")
    freq = Freq.parse(freq)
    first = _period_of(start, freq) if start is not None else min(firsts)
    last = _period_of(end, freq) if end is not None else max(lasts)
    periods = pd.DatetimeIndex(freq.range(first, last))
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


def _period_of(stamp: pd.Timestamp, freq: Freq) -> pd.Timestamp:
    return pd.Period(stamp, freq=freq.pandas_code).start_time


def _coverage_at(coverage: Any, rows: pd.DataFrame, freq: str):
    """The coverage result to mark the cube with, judged at the cube's period length."""
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

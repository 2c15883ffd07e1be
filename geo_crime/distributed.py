"""The space-time cube on a Dask cluster: the data-sized stage of the pipeline, past one machine.

Everything after the cube is small; building it is not. :func:`dask_cube` reads a partitioned
incident dataset (:mod:`geo_crime.ingest.store`, ``geo-crime ingest ... --dataset DIR``) on a
``distributed`` cluster and gives the cube :func:`~geo_crime.cube.make_cube` gives for the same
incidents: same units, periods, values, coverage mask and assignment counts. It needs the
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
3. The units are broadcast to every worker once; each partition is assigned to units
   (:func:`~geo_crime.units.assign_units`) and binned by :func:`~geo_crime.cube.build_cube` over
   its own periods: the binning rules are those of the in-memory cube, chunk by chunk.
4. The partial cubes are summed in a tree on the cluster, and the sum is placed on the periods
   the in-memory cube has (from the first to the last period holding an assigned incident, or
   ``start`` .. ``end``).
5. Coverage is judged on the client from a few narrow columns of every row (``area``,
   ``occurred_at``, the source columns): :func:`~geo_crime.coverage.check_coverage` needs each
   source's own rows. The coverage mask is then that of :func:`~geo_crime.cube.build_cube`.

A worker lost mid-job is replaced by the scheduler, which recomputes what it held from the
dataset (every task is a pure function of the parts); when that is not possible (the cluster has
no worker left, or a task keeps killing its worker) the job fails with one
:class:`~geo_crime.errors.DataError` saying so, never with a short cube.
"""

from __future__ import annotations

import operator
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from geo_crime.cube import (
    _PERIOD_CODES,
    Cube,
    _check_freq,
    _coverage_mask,
    build_cube,
    unit_meta,
)
from geo_crime.errors import ConfigError, DataError
from geo_crime.ingest import store

#: Columns collected on the client for the coverage check and for units derived from the data
#: (the study area's divisions, approximate reporting districts).
SUMMARY_COLUMNS: tuple[str, ...] = (
    "occurred_at",
    "area",
    "rpt_dist",
    "lat",
    "lon",
    "spatial_valid",
    "source",
    "source_file",
    "source_system",
    "also_in_sources",
    "also_in_files",
)


def _require_dask() -> None:
    try:
        import dask.dataframe  # noqa: F401
        import distributed  # noqa: F401
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ConfigError(
            f"the dask engine needs the optional extra: pip install 'geo_crime[dask]' ({exc})"
        ) from None


@contextmanager
def cluster_client(scheduler: str | None = "local", workers: int | None = None) -> Iterator[Any]:
    """A ``distributed.Client``: to the scheduler at ``scheduler``, or on a local cluster.

    Parameters
    ----------
    scheduler
        A scheduler address (``tcp://host:8786``) or ``"local"``/``None`` for a
        ``LocalCluster`` started here and closed on exit.
    workers
        Worker processes of the local cluster (default: one per core, at most 4).
    """
    _require_dask()
    from distributed import Client, LocalCluster

    if scheduler in (None, "", "local"):
        n = int(workers or min(4, os.cpu_count() or 1))
        if n < 1:
            raise ConfigError(f"--workers must be at least 1, got {n}")
        with (
            LocalCluster(
                n_workers=n, threads_per_worker=1, processes=True, dashboard_address=":0"
            ) as cluster,
            Client(cluster) as client,
        ):
            yield client
        return
    if workers is not None:
        raise ConfigError("--workers applies to a local cluster only (--scheduler local)")
    try:
        client = Client(scheduler, timeout="20s")
    except OSError as exc:
        raise ConfigError(f"cannot reach the Dask scheduler at {scheduler} ({exc})") from None
    with client:
        yield client


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
            store.read_part,
            [str(p) for p in parts],
            info=info,
            columns=None if columns is None else list(columns),
            meta=meta,
            label="read-incidents",
            enforce_metadata=False,
        )


def _with_keys(part: pd.DataFrame) -> pd.DataFrame:
    return part.assign(_key=store.duplicate_keys(part))


def _dedup(part: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, int]]:
    keys = part["_key"]
    kept, counts = store.drop_batch_duplicates(part.drop(columns="_key"), keys)
    return kept, counts


def _no_dedup(part: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, int]]:
    return part.drop(columns="_key"), {"duplicates_dropped": 0, "duplicate_offenses_dropped": 0}


def _sum_counts(counts: list[dict[str, int]]) -> dict[str, int]:
    total = {"duplicates_dropped": 0, "duplicate_offenses_dropped": 0}
    for item in counts:
        for key, value in item.items():
            total[key] += int(value)
    return total


def _summary(part: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    return part[[c for c in (*columns, *store.ORDER_COLUMNS) if c in part]]


@dataclass
class DistributedIncidents:
    """The incidents of a dataset held on a cluster, deduplicated across batches.

    Attributes
    ----------
    client
        The ``distributed.Client``.
    frames
        One future per partition (a pandas frame of kept rows).
    duplicates
        Records removed as found in an earlier batch (``duplicates_dropped``,
        ``duplicate_offenses_dropped``).
    source
        The dataset folder.
    """

    client: Any
    frames: list[Any]
    duplicates: dict[str, int]
    source: str
    _summary: pd.DataFrame | None = field(default=None, repr=False)

    def summary(self) -> pd.DataFrame:
        """The :data:`SUMMARY_COLUMNS` of every row, in load order (collected once)."""
        if self._summary is None:
            pieces = _gather(
                self.client,
                [self.client.submit(_summary, f, SUMMARY_COLUMNS) for f in self.frames],
            )
            frame = pd.concat(pieces, ignore_index=True)
            order = np.lexsort((frame["_row"].to_numpy(), frame["_batch"].to_numpy()))
            frame = frame.iloc[order].reset_index(drop=True)
            self._summary = frame.drop(columns=list(store.ORDER_COLUMNS))
        return self._summary

    def release(self) -> None:
        """Free the partitions on the cluster."""
        for future in self.frames:
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


def load_distributed(
    path: str | os.PathLike, client: Any, *, shuffle_method: str = "tasks"
) -> DistributedIncidents:
    """Read a dataset on the cluster and remove records found in two batches (a shuffle).

    Parameters
    ----------
    path
        A partitioned incident dataset.
    client
        A ``distributed.Client``.
    shuffle_method
        ``"tasks"`` (default: recomputed like any task when a worker is lost) or ``"p2p"``
        (less memory on large data; a lost worker fails the shuffle).

    Returns
    -------
    DistributedIncidents
    """
    import dask

    frame = dataset_frame(path)
    threads = sum(client.nthreads().values()) or 1
    n_out = max(1, min(frame.npartitions, 2 * threads))
    meta = frame._meta.assign(_key=pd.Series([], dtype="string"))
    with dask.config.set({"dataframe.convert-string": False}):
        keyed_all = frame.map_partitions(_with_keys, meta=meta)
        keyed = keyed_all[~keyed_all["_key"].isna()]
        keyed = keyed.shuffle(on="_key", npartitions=n_out, shuffle_method=shuffle_method)
        free = keyed_all[keyed_all["_key"].isna()]
        jobs = [dask.delayed(_dedup)(p) for p in keyed.to_delayed()]
        jobs += [dask.delayed(_no_dedup)(p) for p in free.to_delayed()]
    results = client.compute(jobs)
    frames = [client.submit(operator.getitem, r, 0) for r in results]
    counts = _gather(
        client, client.submit(_sum_counts, [client.submit(operator.getitem, r, 1) for r in results])
    )
    return DistributedIncidents(client=client, frames=frames, duplicates=counts, source=str(path))


def _partial(
    part: pd.DataFrame,
    units: gpd.GeoDataFrame,
    freq: str,
    start: pd.Timestamp | None,
    end: pd.Timestamp | None,
    need_areas: bool,
) -> dict[str, Any]:
    """One partition assigned and binned by the in-memory code, over the partition's periods."""
    from geo_crime.cube import period_start
    from geo_crime.units import assign_units

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
        :func:`~geo_crime.coverage.check_coverage` defaults at ``freq``) or a
        :class:`~geo_crime.coverage.CoverageResult` (one at another period length is judged
        again at ``freq`` with its settings, as :func:`~geo_crime.cube.make_cube` does).
    start, end
        Period range (inclusive).
    client
        A ``distributed.Client``; default: the current one, else a local cluster for this call.

    Returns
    -------
    Cube
        ``meta`` as :func:`~geo_crime.cube.make_cube` gives it, plus ``engine`` ("dask"),
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
                )
    held = dataset if isinstance(dataset, DistributedIncidents) else None
    if held is None:
        held = load_distributed(dataset, client)
    client = held.client
    try:
        return _cube_on_cluster(held, units, freq, coverage, start, end)
    finally:
        if not isinstance(dataset, DistributedIncidents):
            held.release()


def _cube_on_cluster(held, units, freq, coverage, start, end) -> Cube:
    client = held.client
    units = units.reset_index(drop=True)
    need_areas = coverage is not None and not ("area" in units and units["area"].notna().all())
    start = None if start is None else pd.Timestamp(start)
    end = None if end is None else pd.Timestamp(end)
    shared = client.scatter(units, broadcast=True, hash=False)
    partials = [
        client.submit(_partial, f, shared, freq, start, end, need_areas, pure=False)
        for f in held.frames
    ]
    spans = _gather(client, [client.submit(_span, p) for p in partials])
    layer = [client.submit(_as_sum, p, freq) for p in partials]
    while len(layer) > 1:
        nxt = [client.submit(_add, layer[i], layer[i + 1]) for i in range(0, len(layer) - 1, 2)]
        if len(layer) % 2:
            nxt.append(layer[-1])
        layer = nxt
    total = _gather(client, layer[0])
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
        summary = held.summary()
        coverage = _coverage_at(coverage, summary, freq)
        mask_units = units
        if need_areas:
            mask_units = units.assign(area=_majority_areas(total["pairs"], len(units)))
        complete = _coverage_mask(summary, mask_units, None, None, periods, freq, coverage)
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


def _coverage_at(coverage: Any, summary: pd.DataFrame, freq: str):
    """The coverage result to mark the cube with, judged at the cube's period length."""
    from geo_crime.coverage import check_coverage

    if coverage is True:
        return check_coverage(summary, freq=freq)
    if coverage.freq != freq:
        return check_coverage(
            summary,
            freq=freq,
            threshold=coverage.threshold,
            min_history=coverage.min_history,
            by=coverage.by,
        )
    return coverage

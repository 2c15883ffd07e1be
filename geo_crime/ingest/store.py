"""The partitioned incident store: cleaned, scored incidents as a Hive-partitioned Parquet folder.

``geo-crime ingest ... --dataset DIR`` writes the frame of :func:`~geo_crime.ingest.load_incidents`
as one Parquet file per (source, year-month of occurrence), under ``source=<source>/month=<YYYY-
MM>/``, so a cluster can read, bin and reduce it partition by partition
(:mod:`geo_crime.cube.dask`). The whole folder is written beside its destination under a
temporary name and renamed into place, so a reader never sees half a dataset.

Batches. Each ingest run is one *batch* (numbered from 0); ``append=True`` adds a batch to an
existing dataset (for instance a newer export that overlaps the older one). A batch is exactly
the frame its run loaded, deduplicated within itself by cleaning; records found in two batches
are removed when the dataset is read, by the rule of cleaning (legacy ``incident_id`` where it
is not synthetic, compared as a number; NIBRS ``offense_id``): the copy in the earliest batch
is kept, the others are counted and their sources noted on it (``also_in_sources``,
``also_in_files``), as :func:`~geo_crime.ingest.cleaning.clean_incidents` does for files loaded
together. Every row carries its batch and its position in the batch (``_batch``, ``_row``), so
the frame read back is in the order it was loaded.

Layout::

    DIR/_geo_crime/dataset.json      format, column order, categories of category columns
    DIR/_geo_crime/batch-000.json    inputs, row count and cleaning report of batch 0
    DIR/source=official/month=2020-01/part-000.parquet

Folders starting with ``_`` are skipped by Parquet dataset readers (pyarrow, Dask, Spark), so
the folder also opens as a plain Hive dataset. :func:`read_incident_dataset` reads it back to
the frame :func:`~geo_crime.ingest.load_incidents` returned, dtypes included (the Parquet
round trip of :mod:`geo_crime.ingest.cache`, with category columns restored to their full
categories).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from geo_crime.core.errors import InputError
from geo_crime.ingest.cache import STRING_TYPES, restore_empty_categories
from geo_crime.ingest.cleaning import (
    CleaningReport,
    _nibrs_rows,
    _record_numbers,
    _record_other_sources,
)
from geo_crime.ingest.systems import MATCH_COLUMNS, join_records_systems

#: Version of the dataset layout, written to ``_geo_crime/dataset.json``.
DATASET_FORMAT_VERSION = 1

#: The folder of the dataset's own metadata (skipped by Parquet dataset readers).
META_DIR = "_geo_crime"

#: Hive partition keys: the reader that produced a row and the year-month it occurred in.
PARTITION_KEYS: tuple[str, ...] = ("source", "month")

#: Bookkeeping columns stored in every part: batch number and position in the batch.
ORDER_COLUMNS: tuple[str, ...] = ("_batch", "_row")

#: Month label of rows without an occurrence time (cleaning leaves none; kept for safety).
NO_MONTH = "none"


def is_incident_dataset(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a folder written by :func:`write_incident_dataset`."""
    return (Path(path) / META_DIR / "dataset.json").is_file()


def _month_labels(occurred: pd.Series) -> np.ndarray:
    labels = occurred.dt.strftime("%Y-%m").astype(object).to_numpy()
    labels[pd.isna(labels)] = NO_MONTH
    return labels


def _category_schema(frame: pd.DataFrame) -> dict[str, list]:
    """The categories of every category column (restored on read: Parquet keeps only those used)."""
    return {
        col: [c.item() if hasattr(c, "item") else c for c in frame[col].cat.categories]
        for col in frame.columns
        if isinstance(frame[col].dtype, pd.CategoricalDtype)
    }


def write_incident_dataset(
    frame: pd.DataFrame,
    report: CleaningReport,
    path: str | os.PathLike,
    *,
    inputs: Sequence[str | os.PathLike] = (),
    append: bool = False,
) -> Path:
    """Write (or add a batch to) a partitioned incident dataset, atomically.

    Parameters
    ----------
    frame
        Cleaned, scored incidents (:func:`~geo_crime.ingest.load_incidents`).
    report
        Their cleaning report, stored with the batch.
    path
        The dataset folder. Without ``append`` an existing dataset there is replaced.
    inputs
        The files the batch was read from (recorded in its metadata).
    append
        Add the frame as a new batch of the existing dataset at ``path`` (which must have the
        same columns); a missing folder is created.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    InputError
        ``path`` exists but is not an incident dataset (a file, or a folder of something else),
        or an appended batch has other columns than the dataset.
    """

    final = Path(path)
    exists = final.exists()
    if exists and not is_incident_dataset(final):
        what = "a file" if not final.is_dir() else "a folder that is not an incident dataset"
        if final.is_dir() and not any(final.iterdir()):
            exists = False
        else:
            raise InputError(f"{final}: is {what}; give a new folder for the dataset")
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
    try:
        info = {
            "format": DATASET_FORMAT_VERSION,
            "partitioning": list(PARTITION_KEYS),
            "columns": [str(c) for c in frame.columns],
            "categories": _category_schema(frame),
            "batches": 0,
        }
        if append and exists:
            old = _dataset_info(final)
            if old["columns"] != info["columns"]:
                raise InputError(
                    f"{final}: the new batch has other columns than the dataset "
                    f"({sorted(set(info['columns']) ^ set(old['columns']))[:5]} differ)"
                )
            info["categories"] = _merged_categories(old["categories"], info["categories"])
            info["batches"] = old["batches"]
            _link_tree(final, tmp)
        batch = int(info["batches"])
        work = frame.copy(deep=False)
        work["_batch"] = np.int32(batch)
        work["_row"] = np.arange(len(work), dtype=np.int64)
        months = _month_labels(work["occurred_at"])
        sources = work["source"].astype(str).to_numpy()
        keys = pd.DataFrame({"source": sources, "month": months})
        stored = work.drop(columns=["source"])
        for (source, month), rows in keys.groupby(["source", "month"], sort=True).groups.items():
            folder = tmp / f"source={source}" / f"month={month}"
            folder.mkdir(parents=True, exist_ok=True)
            part = stored.iloc[np.sort(np.asarray(rows))]
            table = pa.Table.from_pandas(part, preserve_index=False)
            pq.write_table(
                table,
                folder / f"part-{batch:03d}.parquet",
                compression="zstd",
                write_page_checksum=True,
            )
        info["batches"] = batch + 1
        meta = tmp / META_DIR
        meta.mkdir(exist_ok=True)
        (meta / f"batch-{batch:03d}.json").write_text(
            json.dumps(
                {
                    "batch": batch,
                    "inputs": [str(p) for p in inputs],
                    "rows": len(frame),
                    "report": report.to_dict(),
                },
                indent=2,
                default=str,
            ),
            encoding="utf-8",
        )
        # a new file, never a write through the hard link to the live dataset's metadata:
        # until the swap, readers of ``final`` (and any hard-linked copy) see the old dataset
        fresh = meta / "dataset.json.new"
        fresh.write_text(json.dumps(info, indent=2), encoding="utf-8")
        os.replace(fresh, meta / "dataset.json")
        _swap_into_place(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def _merged_categories(old: dict[str, list], new: dict[str, list]) -> dict[str, list]:
    merged = {}
    for col in old.keys() | new.keys():
        values = list(old.get(col, []))
        values += [v for v in new.get(col, []) if v not in set(values)]
        merged[col] = values
    return merged


def _link_tree(source: Path, target: Path) -> None:
    """Hard-link (or copy, across file systems) every file of ``source`` into ``target``."""
    for item in source.rglob("*"):
        dest = target / item.relative_to(source)
        if item.is_dir():
            dest.mkdir(parents=True, exist_ok=True)
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(item, dest)
        except OSError:
            shutil.copy2(item, dest)


def _swap_into_place(tmp: Path, final: Path) -> None:
    """Rename the finished folder onto ``final`` (an older one is moved aside, then removed)."""
    if not final.exists():
        os.replace(tmp, final)
        return
    if final.is_dir() and not any(final.iterdir()):
        final.rmdir()
        os.replace(tmp, final)
        return
    aside = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".old", dir=final.parent))
    aside.rmdir()
    os.replace(final, aside)
    os.replace(tmp, final)
    shutil.rmtree(aside, ignore_errors=True)


def _dataset_info(path: Path) -> dict:
    file = path / META_DIR / "dataset.json"
    try:
        info = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path}: not an incident dataset (no {META_DIR}/dataset.json)") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"{file}: unreadable dataset metadata ({exc})") from None
    if info.get("format") != DATASET_FORMAT_VERSION:
        raise InputError(
            f"{file}: dataset format {info.get('format')!r}, this version reads "
            f"{DATASET_FORMAT_VERSION}; ingest the files again"
        )
    return info


def dataset_parts(path: str | os.PathLike) -> tuple[list[Path], dict]:
    """The Parquet parts of a dataset (sorted) and its metadata.

    Raises
    ------
    InputError
        ``path`` is not an incident dataset, or holds no part.
    """
    path = Path(path)
    if not path.is_dir():
        raise InputError(f"{path}: no such incident dataset folder")
    info = _dataset_info(path)
    parts = sorted(p for p in path.glob("source=*/month=*/*.parquet") if p.is_file())
    if not parts:
        raise InputError(f"{path}: the incident dataset holds no Parquet part")
    return parts, info


def dataset_reports(path: str | os.PathLike) -> list[CleaningReport]:
    """The cleaning report of each batch, in batch order."""
    path = Path(path)
    info = _dataset_info(path)
    reports = []
    for batch in range(int(info["batches"])):
        file = path / META_DIR / f"batch-{batch:03d}.json"
        try:
            reports.append(CleaningReport.from_dict(json.loads(file.read_text())["report"]))
        except (OSError, json.JSONDecodeError, KeyError, TypeError) as exc:
            raise InputError(f"{file}: unreadable batch metadata ({exc})") from None
    return reports


def read_part(
    path: str | os.PathLike, info: dict, columns: Sequence[str] | None = None
) -> pd.DataFrame:
    """One part as a canonical frame (``_batch`` and ``_row`` kept), dtypes restored.

    Parameters
    ----------
    path
        A part file ``.../source=<s>/month=<m>/part-NNN.parquet``.
    info
        The dataset metadata (:func:`dataset_parts`).
    columns
        Only these columns (the order columns are always read).

    Raises
    ------
    InputError
        The part is not a readable Parquet file (the message names it).
    """

    path = Path(path)
    source = path.parent.parent.name.partition("=")[2]
    wanted = None
    if columns is not None:
        wanted = [c for c in info["columns"] if c in set(columns) and c != "source"]
        wanted += [c for c in ORDER_COLUMNS if c not in wanted]
    try:
        table = pq.read_table(path, columns=wanted, page_checksum_verification=True)
        frame = table.to_pandas(types_mapper=STRING_TYPES.get)
    except (pa.ArrowException, OSError) as exc:
        reason = str(exc).split("\n")[0][:200]
        raise InputError(f"{path}: not a readable incident dataset part ({reason})") from None
    if columns is None or "source" in set(columns):
        frame["source"] = source
    order = [c for c in info["columns"] if c in frame] + list(ORDER_COLUMNS)
    frame = frame[order]
    return restore_categories(frame, info)


def restore_categories(frame: pd.DataFrame, info: dict) -> pd.DataFrame:
    """Give category columns the dataset's full categories (a part holds only those it uses)."""
    frame = restore_empty_categories(frame)
    for col, cats in info["categories"].items():
        if col not in frame:
            continue
        values = frame[col]
        if isinstance(values.dtype, pd.CategoricalDtype):
            values = values.astype(object)
        frame[col] = pd.Categorical(values, categories=cats)
    return frame


# --- duplicates across batches --------------------------------------------------------------


def duplicate_keys(frame: pd.DataFrame) -> pd.Series:
    """The key records are deduplicated on (NA where never deduplicated), as text.

    Legacy rows: ``L`` + the record number as an integer, unless the id is synthetic or not a
    number; NIBRS rows: ``N`` + the offence id. The rule is that of
    :func:`~geo_crime.ingest.cleaning.clean_incidents`, with keys that mean the same in every
    partition.
    """
    numbers = _record_numbers(frame["incident_id"])
    has_id = numbers >= 0
    if "incident_id_synthetic" in frame:
        has_id &= ~frame["incident_id_synthetic"].to_numpy(dtype=bool)
    keys = np.full(len(frame), None, dtype=object)
    keys[has_id] = np.char.add("L", numbers[has_id].astype(str)).astype(object)
    nibrs = _nibrs_rows(frame)
    if nibrs.any():
        offense = frame["offense_id"].astype("string").to_numpy(dtype=object, na_value=None)
        keys[nibrs] = [None if o is None else f"N{o}" for o in offense[nibrs]]
    return pd.Series(keys, index=frame.index, dtype="string", name="_key")


def drop_batch_duplicates(
    frame: pd.DataFrame, keys: pd.Series | None = None
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Remove records already found in an earlier batch (or earlier in the same order).

    Rows are put in load order (``_batch``, ``_row``); of the rows sharing a key the first is
    kept and the sources and files of the others are added to its ``also_in_sources`` and
    ``also_in_files``. Used on the whole frame by :func:`read_incident_dataset` and on each
    partition of a shuffle on the key by :mod:`geo_crime.cube.dask`: both give the same rows.

    Returns
    -------
    (pandas.DataFrame, dict)
        The kept rows in load order, and the counts ``duplicates_dropped`` (legacy) and
        ``duplicate_offenses_dropped`` (NIBRS).
    """
    if keys is None:
        keys = duplicate_keys(frame)
    order = np.lexsort((frame["_row"].to_numpy(), frame["_batch"].to_numpy()))
    frame = frame.iloc[order].reset_index(drop=True)
    key = keys.to_numpy(dtype=object, na_value=None)[order]
    has_id = pd.notna(key)
    dup = has_id & pd.Series(key).duplicated(keep="first").to_numpy()
    nibrs = _nibrs_rows(frame)
    counts = {
        "duplicates_dropped": int((dup & ~nibrs).sum()),
        "duplicate_offenses_dropped": int((dup & nibrs).sum()),
    }
    if not dup.any():
        return frame, counts
    codes, _ = pd.factorize(pd.Series(key).fillna(""), use_na_sentinel=True)
    before = {c: frame[c].copy() for c in ("also_in_sources", "also_in_files") if c in frame}
    _record_other_sources(frame, codes.astype(np.int64), has_id, dup)
    for col, old in before.items():
        frame[col] = _join_lists(old, frame[col])
    return frame.loc[~dup].reset_index(drop=True), counts


def _join_lists(old: pd.Series, new: pd.Series) -> pd.Series:
    """Union of two comma-separated columns (NA where both are NA), sorted like cleaning's."""
    both = old.notna() & new.notna()
    out = old.where(old.notna(), new)
    if both.any():
        joined = [
            ",".join(sorted(set(a.split(",")) | set(b.split(","))))
            for a, b in zip(old[both], new[both], strict=True)
        ]
        out = out.copy()
        out[both] = joined
    return out.astype(old.dtype)


def read_incident_dataset(
    path: str | os.PathLike, *, columns: Sequence[str] | None = None
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Read a partitioned incident dataset back into one frame, in load order.

    Parameters
    ----------
    path
        The dataset folder (``geo-crime ingest ... --dataset DIR``).
    columns
        Only these columns (the dedup and order columns are read in any case).

    Returns
    -------
    (pandas.DataFrame, dict)
        The incidents, with the dtypes :func:`~geo_crime.ingest.load_incidents` gave them (for
        a one-batch dataset the very frame it returned), and the records removed as found in an
        earlier batch (``duplicates_dropped``, ``duplicate_offenses_dropped``).

    Raises
    ------
    InputError
        The folder is not an incident dataset, or a part cannot be read (the message names it).
    """
    parts, info = dataset_parts(path)
    if columns is not None:
        columns = list(dict.fromkeys([*columns, *DEDUP_COLUMNS, *MATCH_COLUMNS]))
    frames = [read_part(p, info, columns) for p in parts]
    # every part has its categories restored to the dataset's full sets: concat keeps them
    frame = pd.concat([f for f in frames if len(f)] or frames[:1], ignore_index=True)
    frame, counts = drop_batch_duplicates(frame)
    # legacy and NIBRS rows of different batches: the records NIBRS holds too, on evidence
    frame, joined = join_records_systems(frame)
    counts["cross_system_duplicates"] = joined["cross_system_duplicates"]
    counts["legacy_matchable"] = joined["legacy_matchable"]
    return frame.drop(columns=list(ORDER_COLUMNS)), counts


def load_incident_dataset(
    path: str | os.PathLike, *, columns: Sequence[str] | None = None
) -> tuple[pd.DataFrame, CleaningReport]:
    """Read a dataset back with one cleaning report for all of it (what ``load_incidents`` gives).

    Parameters
    ----------
    path
        The dataset folder (``geo-crime ingest ... --dataset DIR``).
    columns
        Only these columns (see :func:`read_incident_dataset`).

    Returns
    -------
    (pandas.DataFrame, CleaningReport)
        The incidents of every batch, records found in an earlier batch removed, and the
        batches' reports combined (:meth:`~geo_crime.ingest.cleaning.CleaningReport.combined`) with
        those removals counted as duplicates, so the rows dropped by reason and the rows kept
        still add up to the rows read.

    Raises
    ------
    InputError
        The folder is not an incident dataset, or a part or a batch's metadata cannot be read.
    """
    frame, counts = read_incident_dataset(path, columns=columns)
    valid = int(frame["spatial_valid"].sum()) if "spatial_valid" in frame else None
    return frame, dataset_report(path, counts, rows_out=len(frame), spatially_valid=valid)


def dataset_report(
    path: str | os.PathLike,
    duplicates: dict[str, int],
    *,
    rows_out: int,
    spatially_valid: int | None = None,
) -> CleaningReport:
    """One cleaning report for a whole dataset: its batches' reports combined, with the records
    removed as found in an earlier batch counted as duplicates.

    Parameters
    ----------
    path
        The dataset folder.
    duplicates
        ``duplicates_dropped`` and ``duplicate_offenses_dropped`` across batches, and
        ``cross_system_duplicates`` and ``legacy_matchable`` of the records systems' join over
        all batches (:func:`geo_crime.ingest.systems.join_records_systems`).
    rows_out
        Rows kept (after those removals).
    spatially_valid
        Kept rows with usable coordinates (``None``: the batches' own count is kept).

    Returns
    -------
    CleaningReport
        Rows dropped by reason and rows kept add up to the rows read.
    """
    report = CleaningReport.combined(dataset_reports(path))
    report.duplicates_dropped += duplicates["duplicates_dropped"]
    report.duplicate_offenses_dropped += duplicates["duplicate_offenses_dropped"]
    # matched over all batches: the batches' own figures saw one system at a time at most
    report.cross_system_duplicates_dropped += duplicates.get("cross_system_duplicates", 0)
    if "legacy_matchable" in duplicates:
        report.legacy_matchable = duplicates["legacy_matchable"]
    report.rows_out = rows_out
    if spatially_valid is not None:
        report.spatially_valid = spatially_valid
    return report


#: Columns the cross-batch deduplication needs.
DEDUP_COLUMNS: tuple[str, ...] = (
    "incident_id",
    "incident_id_synthetic",
    "source_system",
    "offense_id",
    "source",
    "source_file",
    "also_in_sources",
    "also_in_files",
)

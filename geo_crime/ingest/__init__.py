"""Read LAPD crime exports, in every form they exist in the wild, into canonical incidents.

The LAPD "Crime Data from 2020 to Present" set circulates in several shapes: the official
28-column CSV (with two date formats mixed in one column after a spreadsheet re-save), spreadsheet
modified copies (extra columns, leading zeros stripped, ``M/D/YYYY H:MM``), the open-data API's
snake_case CSV and JSON (ISO timestamps, every value a string, null keys omitted) and reduced
derived files such as the per-area 2024 JSON. Since LAPD moved to NIBRS on 2024-03-07 its new
records are published as the "LAPD NIBRS Offenses" set (``k7nn-b2ep``): the same API conventions,
other keys (``caseno``, ``uniquenibrno``, ``nibr_code``, ``hndrdth_lat`` ...; see
:data:`geo_crime.core.schema.NIBRS_COLUMNS`), as JSON, NDJSON or CSV, gzipped or not, and one row
per
**offence** rather than per report. Each file's schema is detected from its header (``official``,
``modified``, ``api``, ``reduced_2024``, ``nibrs``); a user mapping handles anything else. Every
row says which records system it comes from (``source_system``: ``legacy`` or ``nibrs``).

Incidents, not offences
-----------------------
By default (``count="incidents"``) :func:`load_incidents` collapses the NIBRS offence rows of a
case (``case_id``, from ``caseno``) to one row, after scoring
(:func:`~geo_crime.ingest.cases.collapse_offenses_to_cases`): the case takes its most serious
offence (highest ``severity``; ties: group ``A`` before ``B``, then the lowest ``offense_id``)
for its code, description, category, severity and every other column, ``offense_count`` says how
many offence rows it had, and its victim facts are those of all its offences (largest victim
count; a flag True when any offence has it). A row is then one incident in both records systems
(a legacy row is one report: ``offense_count`` 1), so counts, rates, hot spots and forecasts
count incidents alike across the 2024 change, and a case with three offences weighs as one
incident of its worst offence rather than three. The rows folded away are counted in the cleaning
report (``offenses_merged_into_cases``) and in ``rows_dropped_by_reason``. ``count="offenses"``
keeps every offence row (``offense_count`` 1 each, ``incident_id`` shared by the offences of a
case, ``offense_id`` unique): counts are then of offences, higher than incident counts for
NIBRS rows and not comparable with legacy rows. The sum of ``offense_count`` is the number of
offence rows either way.

One series across the switch
----------------------------
When legacy and NIBRS rows are loaded together, :func:`load_incidents` keeps both: through
2024 the two systems split LAPD's reports between them, so neither is cut at the switch to NIBRS
(7 March 2024). A legacy row is removed only when a NIBRS row records the same incident (same
day and time, reporting district, crosswalked offence, within 150 m:
:func:`geo_crime.ingest.systems.join_records_systems`); those are counted
(``cross_system_duplicates_dropped``), as are the legacy rows kept after the switch
(``legacy_after_switch``).

Reading is vectorised with pyarrow: every column is read as text, then converted with
``pyarrow.compute`` (explicit date formats tried in order, no per-row Python). Values that cannot
be parsed do not crash the load: the row is listed with its file, line and column in the
:class:`~geo_crime.ingest.cleaning.CleaningReport` and left out (or, with ``on_bad_rows="raise"``,
the first one raises). File-level problems (missing, empty, corrupt gzip, unknown schema, a column
that is text throughout, a FIFO or device, a Parquet, ZIP or GeoJSON file, a JSON key holding an
object, an array, a boolean or both numbers and strings) raise one
:class:`~geo_crime.core.errors.InputError` naming the file and, where known, the line and column.

:func:`load_incidents` is the entry point: read, clean, score, with a Parquet cache keyed by the
content of the inputs. One module a step, in the order a file goes through them:

1. :mod:`geo_crime.ingest.detect`: is the input a regular file, which format is it (gzip looked
   through; Parquet, ZIP and GeoJSON refused) and which schema does its header belong to;
2. :mod:`geo_crime.ingest.readers`: one CSV or JSON file as text columns keyed by canonical
   fields (a :class:`~geo_crime.ingest.readers.RawRead`);
3. :mod:`geo_crime.ingest.convert`: those text columns typed into the canonical columns, bad
   values listed and left out, synthetic ids for records without a ``DR_NO``; each text column
   is typed by the converter of :mod:`geo_crime.ingest.columns`, dates are parsed by
   :mod:`geo_crime.ingest.dates`;
4. this module: the files joined (:func:`read_incidents`), then cleaned
   (:func:`~geo_crime.ingest.cleaning.clean_incidents`), scored
   (:func:`~geo_crime.ingest.severity.score_incidents`) and NIBRS offences collapsed to cases
   (:mod:`geo_crime.ingest.cases`) by :func:`load_incidents`, through the cache of
   :mod:`geo_crime.ingest.cache`.

Every name used from this package is importable from ``geo_crime.ingest`` itself.
"""

from __future__ import annotations

import glob
import os
import warnings
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from geo_crime.core import progress as run_progress
from geo_crime.core import schema
from geo_crime.core.errors import ConfigError, InputError
from geo_crime.core.options import CountUnit
from geo_crime.ingest import cache as incident_cache
from geo_crime.ingest.cache import CACHE_FORMAT_VERSION, STRING_TYPES, content_key
from geo_crime.ingest.cases import collapse_offenses_to_cases
from geo_crime.ingest.cleaning import (
    MIN_OCCURRED_DATE,
    CleaningReport,
    clean_incidents,
    parse_min_occurred_date,
)
from geo_crime.ingest.convert import convert_raw, finalize_dtypes
from geo_crime.ingest.dates import DATETIME_FORMATS, parse_datetimes
from geo_crime.ingest.detect import (
    PARQUET_MAGIC,
    data_suffix,
    detect_schema,
    head_bytes,
    require_regular_file,
)
from geo_crime.ingest.ids import (
    SYNTHETIC_ID_HEX_DIGITS,
    SYNTHETIC_ID_PREFIX,
    synthetic_incident_ids,
)
from geo_crime.ingest.readers import RawRead, read_csv_file, read_json_file, read_raw
from geo_crime.ingest.severity import score_incidents
from geo_crime.ingest.store import (
    is_incident_dataset,
    load_incident_dataset,
    read_incident_dataset,
    write_incident_dataset,
)
from geo_crime.ingest.systems import join_records_systems

__all__ = [
    "CACHE_FORMAT_VERSION",
    "DATETIME_FORMATS",
    "SYNTHETIC_ID_HEX_DIGITS",
    "SYNTHETIC_ID_PREFIX",
    "RawRead",
    "collapse_offenses_to_cases",
    "content_key",
    "convert_raw",
    "detect_schema",
    "expand_inputs",
    "finalize_dtypes",
    "input_folders",
    "load_incidents",
    "parse_datetimes",
    "read_csv_file",
    "load_incident_dataset",
    "read_incident_dataset",
    "read_incidents",
    "read_incidents_parquet",
    "read_json_file",
    "read_raw",
    "require_regular_file",
    "synthetic_incident_ids",
    "write_incident_dataset",
]


def expand_inputs(inputs: str | os.PathLike | Iterable[str | os.PathLike]) -> list[Path]:
    """Expand files, directories and glob patterns into a sorted list of files.

    Parameters
    ----------
    inputs
        One path or many. A directory contributes every ``.csv``, ``.json`` and ``.ndjson`` file
        in it (compressed or not, recursively), except an incident dataset folder
        (``geo-crime ingest ... --dataset DIR``), which is listed itself; a pattern with ``*``,
        ``?`` or ``[`` is globbed, unless a file or folder of that very name exists (a file named
        ``lapd[1].csv`` is read as itself, not as ``lapd1.csv``).

    Returns
    -------
    list of pathlib.Path
        Existing files, without repeats, in input order.

    Raises
    ------
    InputError
        A path does not exist, or a directory or pattern matches no file.
    """
    if isinstance(inputs, str | os.PathLike):
        inputs = [inputs]
    files: list[Path] = []
    for item in inputs:
        text = str(item)
        if any(ch in text for ch in "*?[") and not os.path.lexists(text):
            matches = sorted(Path(p) for p in glob.glob(text, recursive=True))
            if not matches:
                raise InputError(f"{text}: the pattern matches no file")
            regular = [m for m in matches if m.is_file()]
            if not regular:
                for match in matches:
                    if not match.is_dir():
                        require_regular_file(match)
                raise InputError(f"{text}: the pattern matches folders only, no file")
            files.extend(regular)
            continue
        path = Path(text)
        if is_incident_dataset(path):  # read as one input by load_incidents
            files.append(path)
            continue
        if path.is_dir():
            found = sorted(
                p
                for p in path.rglob("*")
                if p.is_file() and data_suffix(p) in {".csv", ".json", ".ndjson"}
            )
            if not found:
                raise InputError(f"{path}: the directory holds no .csv or .json crime file")
            files.extend(found)
        else:
            require_regular_file(path)
            files.append(path)
    seen: set[Path] = set()
    unique = []
    for f in files:
        key = f.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(f)
    return unique


def input_folders(inputs: str | os.PathLike | Iterable[str | os.PathLike]) -> list[Path]:
    """The folders named among ``inputs`` (as given, not globbed): inputs of a command as much
    as the files :func:`expand_inputs` finds in them, which no output may lie inside."""
    if isinstance(inputs, str | os.PathLike):
        inputs = [inputs]
    return [Path(item) for item in inputs if Path(item).is_dir()]


def read_incidents(
    inputs: str | os.PathLike | Iterable[str | os.PathLike],
    *,
    mapping: Mapping[str, str] | None = None,
    on_bad_rows: str = "report",
    report: CleaningReport | None = None,
    progress: Callable[[Path], None] | None = None,
) -> tuple[pd.DataFrame, CleaningReport]:
    """Read files of any supported form into one canonical frame (before cleaning).

    Parameters
    ----------
    inputs
        Files, directories or glob patterns; formats may be mixed.
    mapping
        A user mapping ``{source column: canonical field}`` applied to every file, for exports
        with other headers. Canonical fields are those of
        :data:`geo_crime.core.schema.OFFICIAL_COLUMNS` values (``incident_id``, ``occurred_date``,
        ``occurred_time``, ``crm_cd``, ``lat`` ...).
    on_bad_rows
        ``"report"`` (default) or ``"raise"``.
    report
        A report to add to; a new one by default.
    progress
        Called with each file before it is read.

    Returns
    -------
    (pandas.DataFrame, CleaningReport)

    Examples
    --------
    A spreadsheet export with its own headers, mapped onto the canonical fields:

    >>> mapping = {"Case": "incident_id", "When": "occurred_date", "Offense": "crm_cd_desc",
    ...            "Y": "lat", "X": "lon"}
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "custom.csv"
    >>> _ = p.write_text("Case,When,Offense,Y,X\\n1,2024-03-01,ROBBERY,34.05,-118.25\\n")
    >>> frame, rep = read_incidents(p, mapping=mapping)
    >>> int(frame.loc[0, "crm_cd"]), frame.loc[0, "incident_id"]
    (210, '000000001')
    """
    if on_bad_rows not in {"report", "raise"}:
        raise ConfigError(f"on_bad_rows must be 'report' or 'raise', got {on_bad_rows!r}")
    report = report or CleaningReport()
    frames = []
    first_path_by_name: dict[str, Path] = {}
    for path in expand_inputs(inputs):
        if is_incident_dataset(path):
            raise InputError(
                f"{path}: an incident dataset holds cleaned incidents, not a crime export: "
                "read it with load_incidents or read_incident_dataset"
            )
        if progress:
            progress(path)
        raw = read_raw(path, mapping=mapping)
        frame = convert_raw(raw, report, on_bad_rows=on_bad_rows)
        frames.append(frame)
        _warn_on_shared_synthetic_ids(path, frame, first_path_by_name)
    if len(frames) == 1:
        return frames[0], report
    frames = [f for f in frames if len(f)]
    with warnings.catch_warnings():  # all-null columns (e.g. 2024 weapon_desc) are expected
        warnings.simplefilter("ignore", FutureWarning)
        frame = pd.concat(frames, ignore_index=True)
    for col, dtype in schema.CANONICAL_DTYPES.items():
        if dtype == "category" and frame[col].dtype != "category":
            frame[col] = frame[col].astype("category")
    return frame, report


def _warn_on_shared_synthetic_ids(
    path: Path, frame: pd.DataFrame, first_path_by_name: dict[str, Path]
) -> None:
    """Warn when a file given synthetic ids has the name of an earlier input (their ids clash)."""
    if not frame["incident_id_synthetic"].any():
        return
    earlier = first_path_by_name.setdefault(path.name, path)
    if earlier != path:
        warnings.warn(
            f"{path} and {earlier} have the same name, so their records without a DR_NO get the "
            "same synthetic incident ids; rename one to keep ids unique",
            UserWarning,
            stacklevel=3,
        )


def load_incidents(
    inputs: str | os.PathLike | Iterable[str | os.PathLike],
    *,
    mapping: Mapping[str, str] | None = None,
    negative_age: str = "null",
    harm_log: bool = False,
    on_bad_rows: str = "report",
    as_of: pd.Timestamp | None = None,
    min_occurred_date: str | pd.Timestamp | None = MIN_OCCURRED_DATE,
    cache: bool | str | os.PathLike = True,
    progress: Callable[[Path], None] | None = None,
    count: str = "incidents",
) -> tuple[pd.DataFrame, CleaningReport]:
    """Read, clean and score incidents: the cleaned, typed, scored frame every stage starts from.

    Parameters
    ----------
    inputs
        Files, directories or glob patterns, formats mixed (see :func:`read_incidents`).
    mapping
        Optional user column mapping.
    negative_age
        Policy for negative victim ages: ``"null"`` (default: treat as unknown) or ``"abs"``
        (the original study's absolute value).
    harm_log
        Store ``log1p`` of the custody days in ``harm`` (see
        :func:`geo_crime.ingest.severity.score_incidents`).
    on_bad_rows
        ``"report"`` or ``"raise"``.
    as_of
        Dates after this are "in the future" (default: now).
    min_occurred_date
        Occurrences before this date are data errors, left out and counted (default
        :data:`~geo_crime.ingest.cleaning.MIN_OCCURRED_DATE`, 2010-01-01; ``None`` keeps every
        date).
    cache
        ``True`` uses the default cache folder, a path uses that folder, ``False`` neither reads
        nor writes any cache. The key is the content of the inputs plus these options (see
        :func:`content_key`). A cached file that lacks a canonical column is rebuilt; one that
        cannot be read (truncated, corrupt) or does not match its key (its recorded input
        digest, row count or schema) is removed and rebuilt with a warning. An input that
        changes while it is read is read again (see :mod:`geo_crime.ingest.cache`). When the
        cache cannot be written (read-only or full disk) a warning is given and the load goes
        on.
    progress
        Called with each file before it is read.
    count
        ``"incidents"`` (default): the offence rows of each NIBRS case are collapsed to one row,
        its most serious offence (see the module docstring); ``"offenses"``: every offence row
        is kept. Legacy rows are the same either way.

    Returns
    -------
    (pandas.DataFrame, CleaningReport)
        Canonical columns plus ``spatial_valid``, ``date_suspect``, ``crime_category``,
        ``severity`` and ``harm``.

    Raises
    ------
    InputError
        An input is missing, unreadable or corrupt, or (with a cache) kept changing while it was
        read (the message names the file).
    ConfigError
        ``min_occurred_date`` is not a date, or ``count`` is neither ``"incidents"`` nor
        ``"offenses"``.
    """
    if count not in tuple(CountUnit):
        raise ConfigError(f"count must be 'incidents' or 'offenses', got {count!r}")
    dataset = _dataset_input(inputs)
    if dataset is not None:
        if mapping:
            raise ConfigError(
                f"{dataset}: a column mapping applies to crime exports; this incident dataset "
                "was cleaned when it was ingested"
            )
        frame, report = load_incident_dataset(dataset)
        if count == "offenses" and report.offenses_merged_into_cases:
            raise ConfigError(
                f"{dataset}: this dataset was ingested with NIBRS offences collapsed to cases "
                f"({report.offenses_merged_into_cases:,} offence rows merged); ingest it again "
                "with --count offenses to count offences"
            )
        return frame, report
    paths = expand_inputs(inputs)
    options = {
        "mapping": dict(mapping or {}),
        "negative_age": negative_age,
        "harm_log": harm_log,
        "on_bad_rows": on_bad_rows,
        "as_of": None if as_of is None else str(pd.Timestamp(as_of).date()),
        "min_occurred_date": _date_option(min_occurred_date),
        "count": count,
    }
    if cache:  # the same load without the cache, run when the cache has no sound entry
        return incident_cache.cached_or_built(
            cache,
            paths,
            options,
            lambda: load_incidents(
                paths,
                mapping=mapping,
                negative_age=negative_age,
                harm_log=harm_log,
                on_bad_rows=on_bad_rows,
                as_of=as_of,
                min_occurred_date=min_occurred_date,
                cache=False,
                progress=progress,
                count=count,
            ),
        )

    n_steps = len(paths) + 2  # each file, then cleaning, then scoring
    read_so_far = [0]

    def on_file(path: Path) -> None:
        run_progress.step(read_so_far[0], n_steps, f"read {Path(path).name}", "steps")
        read_so_far[0] += 1
        if progress:
            progress(path)

    frame, report = read_incidents(
        paths, mapping=mapping, on_bad_rows=on_bad_rows, progress=on_file
    )
    run_progress.step(len(paths), n_steps, "clean", "steps")
    frame = finalize_dtypes(frame)
    frame = clean_incidents(
        frame,
        report,
        negative_age=negative_age,
        as_of=as_of,
        min_occurred_date=min_occurred_date,
    )
    run_progress.step(len(paths) + 1, n_steps, "score severity", "steps")
    frame = score_incidents(frame, report=report, harm_log=harm_log)
    if count == "incidents":
        frame = collapse_offenses_to_cases(frame, report)
    frame, joined = join_records_systems(frame)
    report.legacy_after_switch += joined["legacy_after_switch"]
    report.legacy_matchable += joined["legacy_matchable"]
    report.cross_system_duplicates_dropped += joined["cross_system_duplicates"]
    report.rows_out = len(frame)
    run_progress.step(n_steps, n_steps, "", "steps")
    return frame, report


def _dataset_input(inputs: str | os.PathLike | Iterable[str | os.PathLike]) -> Path | None:
    """The incident dataset folder given as the only input, else ``None``.

    Raises
    ------
    InputError
        A dataset folder is given together with other inputs.
    """
    items = [inputs] if isinstance(inputs, str | os.PathLike) else list(inputs)
    datasets = [Path(i) for i in items if is_incident_dataset(i)]
    if not datasets:
        return None
    if len(items) > 1:
        raise InputError(
            f"{datasets[0]}: an incident dataset is read on its own; add more files to it with "
            f"'geo-crime ingest FILES... --dataset {datasets[0]} --append'"
        )
    return datasets[0]


def _date_option(value: str | pd.Timestamp | None) -> str | None:
    """A date option as ISO text for the cache key (``None`` stays ``None``)."""
    floor = parse_min_occurred_date(value)
    return None if floor is None else str(floor.date())


def read_incidents_parquet(path: str | os.PathLike) -> pd.DataFrame:
    """Read an incidents Parquet file written by ``geo-crime ingest`` (canonical dtypes kept).

    Parameters
    ----------
    path
        The Parquet file, or a dataset folder (``geo-crime ingest ... --dataset DIR``: read
        with :func:`~geo_crime.ingest.store.read_incident_dataset`).

    Returns
    -------
    pandas.DataFrame
        The incidents, with the dtypes they were written with.

    Raises
    ------
    InputError
        The path is no regular file, or not a readable Parquet file (a crime export given here
        is named as such: it must go through ``geo-crime ingest`` first).
    """

    path = Path(path)
    if is_incident_dataset(path):
        return read_incident_dataset(path)[0]
    require_regular_file(path)
    head = head_bytes(path)
    if head[:4] != PARQUET_MAGIC:
        if head and all(32 <= byte < 127 or byte in b"\t\r\n" for byte in head):
            raise InputError(
                f"{path}: this is a text file (a crime export?), not an incidents Parquet file: "
                "run 'geo-crime ingest' on crime exports first"
            )
        raise InputError(f"{path}: not a Parquet file (no PAR1 signature)")
    try:
        frame = pq.read_table(path).to_pandas(types_mapper=STRING_TYPES.get)
    except (pa.ArrowException, OSError) as exc:
        raise InputError(f"{path}: not a readable Parquet file ({exc})") from None
    return incident_cache.restore_empty_categories(frame)

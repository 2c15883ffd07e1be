"""Build large benchmark inputs (1M, 5M rows) by resampling the real LAPD rows.

Each synthetic row joins two real rows drawn with replacement:

* a *place* row from all ~128k real rows (2020 slices and the city-wide 2024 record), giving the
  coordinates, area, reporting district, crime code and description, so the rows spread over the
  whole city as the real record does (the 2020 slices alone are half West LA);
* an *attribute* row from the ~22k original-schema rows, giving the dates and time of day (in
  their real mixed formats), premise, weapon, status, victim fields, MO codes and address.

Rows get new unique record numbers, are spread over 2020-2024 by whole-year shifts (day of year
and time of day kept, so seasonality survives), and are jittered by up to ~50 m so that repeated
rows do not stack on one point (the reporting districts' median width is ~800 m, so the jittered
point nearly always stays in its district). The output is the official 28-column CSV (and
optionally Parquet), written outside the repository.

Usage::

    python benchmarks/make_data.py --rows 1000000 --out /tmp/geo_crime_bench/lapd_1m.csv
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from geo_crime.core import schema  # noqa: E402
from geo_crime.core.config import data_dir  # noqa: E402

#: Jitter half-width in degrees (about 50 m in latitude).
JITTER_DEGREES = 0.00045


def real_official_rows() -> pd.DataFrame:
    """The real original-schema rows, as text, in the official 28 columns (DR_NO unique)."""
    folder = data_dir() / "lapd_crime"
    frames = []
    for path in sorted(folder.glob("*.csv.gz")):
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        frames.append(frame[list(schema.OFFICIAL_COLUMNS)])
    rows = pd.concat(frames, ignore_index=True).drop_duplicates("DR_NO")
    return rows.reset_index(drop=True)


def _shift_year(text: pd.Series, years: np.ndarray) -> pd.Series:
    """Replace the 4-digit year in ``MM/DD/YYYY ...`` text by year + shift (Feb 29 kept valid)."""
    parts = text.str.extract(r"^(?P<m>\d{1,2})/(?P<d>\d{1,2})/(?P<y>\d{4})(?P<rest>.*)$")
    year = parts["y"].astype(int).to_numpy() + years
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    day = parts["d"].astype(int).to_numpy()
    month = parts["m"].astype(int).to_numpy()
    day = np.where((month == 2) & (day == 29) & ~leap, 28, day)
    width = parts["d"].str.len().to_numpy()
    day_text = np.where(width == 2, pd.Series(day).map("{:02d}".format), pd.Series(day).astype(str))
    return (
        parts["m"]
        + "/"
        + pd.Series(day_text, index=text.index)
        + "/"
        + pd.Series(year, index=text.index).astype(str)
        + parts["rest"]
    )


def real_place_rows() -> pd.DataFrame:
    """Coordinates, area, district and crime of every real row (2020 slices and 2024 record)."""
    import gzip
    import json

    from geo_crime.ingest.severity import crime_code_lookup

    official = real_official_rows()
    places = official[
        ["AREA", "AREA NAME", "Rpt Dist No", "Crm Cd", "Crm Cd Desc", "Part 1-2", "LAT", "LON"]
    ]
    records = []
    for path in sorted((data_dir() / "lapd_crime" / "kyleW145_2024_by_area").glob("*.json.gz")):
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            records.extend(json.load(fh))
    reduced = pd.DataFrame.from_records(records)
    lookup = crime_code_lookup()
    code = reduced["Crime_Description"].map(lookup.code_by_desc)
    rd = reduced["Report_District"].astype(str).str.zfill(4)
    area = rd.str[:2].astype(int)
    from geo_crime.core.schema import AREA_NAMES

    converted = pd.DataFrame(
        {
            "AREA": area.map("{:02d}".format),
            "AREA NAME": area.map(AREA_NAMES),
            "Rpt Dist No": rd,
            "Crm Cd": code.astype("Int64").astype(str),
            "Crm Cd Desc": reduced["Crime_Description"],
            "Part 1-2": code.map(lookup.part_by_code).astype("Int64").astype(str),
            "LAT": reduced["Latitude"].astype(str),
            "LON": reduced["Longitude"].astype(str),
        }
    )
    return pd.concat([places, converted], ignore_index=True)


def make_rows(
    n_rows: int,
    *,
    seed: int = 0,
    first_id: int = 300_000_000,
    attributes: pd.DataFrame | None = None,
    places: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Resample ``n_rows`` official-schema rows from the real ones.

    Parameters
    ----------
    n_rows
        Rows to produce.
    seed
        Random seed; the same seed gives the same file.
    first_id
        Record number (``DR_NO``) of the first row; the rows are numbered on from it, so files
        made with disjoint ranges (``--first-id``) hold no record twice.
    attributes, places
        The rows to sample from (default: :func:`real_official_rows` and
        :func:`real_place_rows`).

    Returns
    -------
    pandas.DataFrame
        Text columns in the official order.
    """
    rng = np.random.default_rng(seed)
    attributes = real_official_rows() if attributes is None else attributes
    places = real_place_rows() if places is None else places
    rows = attributes.iloc[rng.integers(0, len(attributes), size=n_rows)].reset_index(drop=True)
    where = places.iloc[rng.integers(0, len(places), size=n_rows)].reset_index(drop=True)
    for column in where.columns:
        rows[column] = where[column].to_numpy()
    rows["Crm Cd 1"] = rows["Crm Cd"]
    # spread over 2020-2024, keeping reported on/after occurred
    occurred_year = rows["DATE OCC"].str.extract(r"/(\d{4})")[0].astype(int).to_numpy()
    target = rng.integers(2020, 2025, size=n_rows)
    shift = target - occurred_year
    rows["DATE OCC"] = _shift_year(rows["DATE OCC"], shift)
    rows["Date Rptd"] = _shift_year(rows["Date Rptd"], shift)
    rows["DR_NO"] = pd.Series(np.arange(n_rows) + first_id).astype(str).str.zfill(9)
    for col in ("LAT", "LON"):
        values = pd.to_numeric(rows[col])
        jitter = rng.uniform(-JITTER_DEGREES, JITTER_DEGREES, size=n_rows)
        moved = np.where(values != 0, values + jitter, 0.0)
        rows[col] = pd.Series(np.round(moved, 4)).map("{:.4f}".format)
    return rows


def write_csv(rows: pd.DataFrame, path: Path) -> Path:
    """Write rows as the official CSV (pyarrow writer, strings quoted as needed), atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    table = pa.Table.from_pandas(rows, preserve_index=False)
    pacsv.write_csv(table, tmp, write_options=pacsv.WriteOptions(quoting_style="needed"))
    os.replace(tmp, path)
    return path


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--first-id", type=int, default=300_000_000, help="record number of the first row"
    )
    parser.add_argument("--out", type=Path, default=Path("/tmp/geo_crime_bench/lapd_1m.csv"))
    parser.add_argument("--parquet", action="store_true", help="also write a Parquet copy")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    rows = make_rows(args.rows, seed=args.seed, first_id=args.first_id)
    write_csv(rows, args.out)
    if args.parquet:
        pq.write_table(
            pa.Table.from_pandas(rows, preserve_index=False), args.out.with_suffix(".parquet")
        )
    size = args.out.stat().st_size / 1e6
    print(
        f"wrote {args.rows:,} rows to {args.out} ({size:.0f} MB) "
        f"in {time.perf_counter() - start:.1f} s"
    )


if __name__ == "__main__":
    main()

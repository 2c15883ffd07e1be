"""Real LAPD rows as the open-data API serves them, and what a download through the fake portal
(:class:`tests.fakes.portal.LapdApi`) leaves behind."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pandas as pd

from geo_crime.core import schema
from geo_crime.net.fetch import fetch_incidents
from geo_crime.net.spans import months_path
from tests.fakes.shared_data import IVANCO, crime_file

#: Rows the legacy fetch tests serve, and the page size they download them in.
N_ROWS = 2_500
PAGE = 500


def api_records(raw: pd.DataFrame) -> list[dict]:
    """Official rows as the open-data API serves them: snake_case, ISO dates, strings, no nulls."""
    api_name = {field: column for column, field in schema.API_COLUMNS.items()}
    frame = raw[list(schema.OFFICIAL_COLUMNS)].copy()
    for column in ("DATE OCC", "Date Rptd"):
        frame[column] = pd.to_datetime(frame[column], format="mixed").dt.strftime(
            "%Y-%m-%dT%H:%M:%S.000"
        )
    frame = frame.rename(columns={c: api_name[f] for c, f in schema.OFFICIAL_COLUMNS.items()})
    return [
        {key: value for key, value in row.items() if isinstance(value, str)}
        for row in frame.to_dict("records")
    ]


def real_records(rows: int) -> list[dict]:
    """The first ``rows`` rows of the real official export, as the API serves them."""
    raw = pd.read_csv(
        crime_file(IVANCO), dtype=str, nrows=rows, keep_default_na=False, na_values=[""]
    )
    return api_records(raw)


def by_id(records: list[dict]) -> list[dict]:
    """Records in ``dr_no`` order, as the client pages and writes them."""
    return sorted(records, key=lambda r: r["dr_no"])


def download_files(*names: str) -> list[str]:
    """The files a finished download of each file name leaves: it and its months table."""
    return sorted([*names, *(months_path(name).name for name in names)])


def read_ndjson(path: Path) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def fetch(server, dest, opener, sleeps, **options):
    """``fetch_incidents`` from the fake ``server``'s resource in pages of :data:`PAGE`, no jitter,
    a 5 s time-out, the given opener, and backoff delays appended to ``sleeps``."""
    options = {
        "base_url": server.api_url,
        "page_size": PAGE,
        "jitter": 0.0,
        "timeout": 5.0,
        "opener": opener,
        "sleep": sleeps.append,
        **options,
    }
    return fetch_incidents(dest, **options)

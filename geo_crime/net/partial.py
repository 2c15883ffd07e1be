"""The saved pages of an unfinished download, the state that vouches for them, and the final file.

:func:`~geo_crime.net.fetch.fetch_incidents` keeps what it has downloaded so far, so that an
interrupted run resumes instead of starting over:

* the new rows of each page are saved as they arrive in a folder beside the destination
  (:func:`partial_dir`: ``.<name>.partial/page_000000.json`` ...) with a small ``state.json``
  recording each page's row count and first and last key (``_save_page``). A new run reuses the
  saved pages that are complete JSON, hold the recorded rows and keys and continue the chain of
  keys (``_reuse_saved_pages``); the first page failing that, and every page after it, is
  downloaded again, starting after the last trusted key. A change of page size, filter, URL or
  key field, or of the server's count since the interrupted run, starts over (``_open_state``).
  Each data set has its own destination, hence its own partial folder;
* the final file is assembled from the saved pages into a temporary name beside the destination
  (checking once more that the keys strictly increase) and renamed onto it (``_assemble``), so the
  destination is whole or absent: it never holds a partial download. The caller then removes the
  partial folder.

A page is only trusted with the state that says which cursor produced it: the keyset paging that
writes them is :mod:`geo_crime.net.paging`, the key checks :mod:`geo_crime.net.soda`.
"""

from __future__ import annotations

import gzip
import itertools
import json
import os
import shutil
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from geo_crime.core.errors import FetchError
from geo_crime.core.io_utils import atomic_path, atomic_write_bytes, atomic_write_text
from geo_crime.net.http import BadBodyError
from geo_crime.net.soda import _record_ids, parse_records

__all__ = ["partial_dir"]

_STATE_NAME = "state.json"
_STATE_FORMAT = 2
_PAGE_PATTERN = "page_{:06d}.json"


def partial_dir(dest: str | os.PathLike) -> Path:
    """The folder holding the pages of an unfinished download of ``dest``.

    Parameters
    ----------
    dest
        The final file of :func:`~geo_crime.net.fetch.fetch_incidents`.

    Returns
    -------
    pathlib.Path
        ``<dest folder>/.<dest name>.partial``.
    """
    dest = Path(dest)
    return dest.parent / f".{dest.name}.partial"


def _read_state(folder: Path) -> dict | None:
    try:
        state = json.loads((folder / _STATE_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(state, dict) or not isinstance(state.get("pages"), list):
        return None
    return state


def _write_state(folder: Path, state: Mapping[str, Any]) -> None:
    atomic_write_text(folder / _STATE_NAME, json.dumps(state, indent=1) + "\n")


def _open_state(
    folder: Path, identity: Mapping[str, Any], expected: int | None, *, resume: bool
) -> dict:
    """The saved state of the same download with the same server count, or a fresh one."""
    state = _read_state(folder) if resume else None
    if (
        state is None
        or state.get("format") != _STATE_FORMAT
        or any(state.get(k) != v for k, v in identity.items())
        or state.get("expected_rows") != expected
    ):
        # nothing to resume, other options, or the data set changed since: start over
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        state = {
            "format": _STATE_FORMAT,
            **identity,
            "expected_rows": expected,
            "started": datetime.now(UTC).isoformat(timespec="seconds"),
            "pages": [],
        }
        _write_state(folder, state)
    return state


def _saved_page_ok(
    path: Path, meta: Any, cursor: str | None, page_size: int, *, id_field: str
) -> bool:
    """Whether a saved page is whole and continues the chain of ids after ``cursor``."""
    if not isinstance(meta, dict) or not path.is_file():
        return False
    try:
        records = parse_records(path.read_bytes())
        ids = _record_ids(records, str(path), id_field=id_field)
    except (OSError, BadBodyError, FetchError):
        return False
    return (
        0 < len(ids) == meta.get("rows") <= page_size
        and ids[0] == meta.get("first")
        and ids[-1] == meta.get("last")
        and (cursor is None or ids[0] > cursor)
        and all(a < b for a, b in itertools.pairwise(ids))
    )


def _reuse_saved_pages(
    folder: Path,
    state: dict,
    *,
    page_size: int,
    id_field: str,
    on_trusted: Callable[[int, dict], None],
) -> tuple[str | None, int]:
    """Hand each trusted saved page to ``on_trusted``; forget the first other one and all after.

    Returns the cursor to page on after (the last trusted key, ``None`` when no page is trusted)
    and the index of the next page.
    """
    pages: list = state["pages"]
    cursor: str | None = None
    trusted = 0
    for index, meta in enumerate(pages):
        page = folder / _PAGE_PATTERN.format(index)
        if not _saved_page_ok(page, meta, cursor, page_size, id_field=id_field):
            break
        cursor = meta["last"]
        trusted += 1
        on_trusted(index, meta)
    if trusted < len(pages):  # a damaged page and every page after it are downloaded again
        del pages[trusted:]
        _write_state(folder, state)
    for path in folder.glob("page_*.json"):
        if path.name >= _PAGE_PATTERN.format(trusted):
            path.unlink(missing_ok=True)
    return cursor, trusted


def _save_page(
    folder: Path, state: dict, index: int, new: list[dict], new_ids: list[str], *, duplicates: int
) -> None:
    """Save the new rows of page ``index``, then record them in the state."""
    atomic_write_bytes(
        folder / _PAGE_PATTERN.format(index),
        json.dumps(new, separators=(",", ":")).encode("ascii"),
    )
    state["pages"].append(
        {
            "rows": len(new),
            "first": new_ids[0],
            "last": new_ids[-1],
            "duplicates": duplicates,
        }
    )
    _write_state(folder, state)


def _assemble(folder: Path, pages: list[dict], dest: Path, *, rows: int, id_field: str) -> None:
    """Write the saved pages, in order, as one NDJSON gzip file (atomically), checking the ids.

    Every key (``id_field``) must come after the one before it, so the file holds each key once.
    Records are written with ASCII escapes so that no record holds a Unicode line separator (which
    a line splitter would break on), and the gzip header carries no time stamp, so the same rows
    always give the same bytes.
    """
    written = 0
    last: str | None = None
    with atomic_path(dest) as tmp:
        with (
            open(tmp, "wb") as raw,
            gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as out,
        ):
            for index in range(len(pages)):
                page = folder / _PAGE_PATTERN.format(index)
                try:
                    records = parse_records(page.read_bytes())
                except (OSError, BadBodyError) as exc:
                    raise FetchError(f"{page}: saved page unreadable ({exc})") from None
                for value in _record_ids(records, str(page), id_field=id_field):
                    if last is not None and value <= last:
                        raise FetchError(
                            f"{page}: {id_field} {value!r} does not come after {last!r}; "
                            f"{dest} was not written"
                        )
                    last = value
                lines = "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in records)
                out.write(lines.encode("ascii"))
                written += len(records)
        if written != rows:  # a page file changed under us: dest stays as it was
            raise FetchError(f"{folder}: the pages hold {written} rows, {rows} were downloaded")

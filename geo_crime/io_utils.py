"""Atomic file writing: every output appears whole or not at all.

Writers produce into a temporary file in the destination folder, then ``os.replace`` it onto the
final name, so a crash or an error never leaves a half-written file behind.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is renamed onto ``path``.

    Parameters
    ----------
    path
        The final destination. Parent folders are created.
    suffix
        Suffix of the temporary file (defaults to that of ``path``, which some writers need to
        pick a format).

    Yields
    ------
    pathlib.Path
        Where to write. It is removed if the block raises.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{final.name}.",
        suffix=suffix if suffix is not None else final.suffix,
        dir=final.parent,
    )
    os.close(fd)
    tmp = Path(tmp_name)
    tmp.unlink()
    try:
        yield tmp
        os.replace(tmp, final)
    except OSError as exc:
        if exc.errno is not None and (exc.filename is None or str(exc.filename) == str(tmp)):
            exc.filename = str(final)  # errors name the output, not its temporary file
        raise
    finally:
        if tmp.exists():
            if tmp.is_dir():
                import shutil

                shutil.rmtree(tmp)
            else:
                tmp.unlink()


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically and return the path."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically and return the path."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def describe_os_error(exc: OSError) -> str:
    """One line for an operating-system error a user can cause, naming the path.

    Parameters
    ----------
    exc : OSError
        The error (disk full, read-only, permission, a folder where a file was expected...).

    Returns
    -------
    str
        ``"<path>: <what went wrong>"``.
    """
    import errno

    reasons = {
        errno.ENOSPC: "no space left on the device",
        errno.EROFS: "the file system is read-only",
        errno.EACCES: "permission denied",
        errno.EPERM: "operation not permitted",
        errno.EISDIR: "is a folder, not a file",
        errno.ENOTDIR: "a part of the path is not a folder",
        errno.ENOENT: "no such file or folder",
        errno.EEXIST: "already exists",
        errno.ENAMETOOLONG: "the name is too long",
        errno.EDQUOT: "disk quota exceeded",
    }
    reason = reasons.get(exc.errno or -1, exc.strerror or type(exc).__name__)
    where = exc.filename if exc.filename is not None else "while writing"
    return f"{where}: {reason}"


def check_output_path(
    path: str | os.PathLike,
    *,
    inputs: Iterable[str | os.PathLike] = (),
    folder: bool = False,
) -> Path:
    """Refuse an output path that would destroy an input or cannot be written, before any work.

    Parameters
    ----------
    path : path-like
        Where a command will write (a file, or a folder with ``folder=True``).
    inputs : iterable of path-like
        The command's input files: an output resolving to any of them is refused.
    folder : bool, default False
        The output is a folder (it may exist); otherwise an existing folder is refused.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    geo_crime.errors.ConfigError
        The output is an input, lies inside the shared data folder, is a folder where a file is
        expected (or the reverse), is a device or FIFO, or its nearest existing folder cannot be
        written to.
    """
    from geo_crime.config import data_dir
    from geo_crime.errors import ConfigError

    out = Path(path).expanduser()
    target = out.resolve()
    for source in inputs:
        if Path(source).expanduser().resolve() == target:
            raise ConfigError(f"{out}: the output would overwrite an input file; choose another")
    data = data_dir(must_exist=False).resolve()
    if target == data or data in target.parents:
        raise ConfigError(f"{out}: outputs never go into the data folder {data}")
    if out.exists():
        if folder and not out.is_dir():
            raise ConfigError(f"{out}: is a file, not a folder")
        if not folder and out.is_dir():
            raise ConfigError(f"{out}: is a folder, not a file")
        if not folder and not out.is_file():
            raise ConfigError(f"{out}: is not a regular file (a device, FIFO or socket)")
    existing = target if folder and out.is_dir() else target.parent
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise ConfigError(f"{out}: {existing} is not a folder")
    try:  # the one reliable test (permissions, read-only mounts, even as root)
        fd, probe = tempfile.mkstemp(prefix=".geo-crime-write-test.", dir=existing)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise ConfigError(
            f"{out}: cannot write into {existing} ({describe_os_error(exc)})"
        ) from None
    return out


def write_table(table, path: str | os.PathLike) -> Path:
    """Write a table atomically, in the format its extension names.

    The one table writer of the package: statistics, forecasts, coverage and cube summaries all
    go through it.

    Parameters
    ----------
    table : pandas.DataFrame or geopandas.GeoDataFrame
        The rows to write. ``.geojson`` and ``.gpkg`` need a geometry; ``.csv`` drops it.
    path
        ``.geojson`` (written in EPSG:4326), ``.gpkg``, ``.parquet`` or ``.csv``.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    geo_crime.errors.OutputError
        For an unknown extension.
    """
    import pandas as pd

    from geo_crime.errors import OutputError

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".geojson", ".json", ".gpkg", ".parquet", ".csv"):
        raise OutputError(f"{path}: unknown output format (use .geojson, .gpkg, .parquet, .csv)")
    with atomic_path(path) as tmp:
        if suffix in (".geojson", ".json"):
            table.to_crs(4326).to_file(tmp, driver="GeoJSON", engine="pyogrio")
        elif suffix == ".gpkg":
            table.to_file(tmp, driver="GPKG", engine="pyogrio")
        elif suffix == ".parquet":
            table.to_parquet(tmp, index=False)
        else:
            plain = table.drop(columns="geometry") if "geometry" in table.columns else table
            pd.DataFrame(plain).to_csv(tmp, index=False)
    return path

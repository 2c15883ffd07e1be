"""Safe outputs: every output appears whole or not at all, and never destroys an input.

Writers produce into a temporary file in the destination folder, then ``os.replace`` it onto the
final name, so a crash or an error never leaves a half-written file behind. A folder written
whole (a run, a model) is staged beside its final name (:func:`staged_folder`) and carries
:data:`OWNED_MARKER`: a folder without it is never replaced, and staging folders left by runs
that died are removed by :func:`clean_stale_staging`. :func:`check_output_path` is the one check
of every command's outputs, before any work: an output that is, holds or lies inside an input
(by path after links, or by device and inode) is refused.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import socket
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from geo_crime.core.config import data_dir
from geo_crime.core.errors import ConfigError, OutputError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: What a table output may be (:func:`write_table`).
TABLE_FORMATS = (".geojson", ".json", ".gpkg", ".parquet", ".csv")

#: The file in every folder geo-crime writes whole (a run, a model): only such a folder (or an
#: empty one) is ever replaced by a later run of the same name.
OWNED_MARKER = ".geo_crime_run"

#: The file in a staging folder while it is written (removed just before it is renamed).
INCOMPLETE = "INCOMPLETE"

#: A staging folder untouched this long is stale even if a process of its id is alive (ids are
#: reused).
STALE_AFTER_HOURS = 24.0

_STAGING_NAME = re.compile(r"\.(?P<name>.+)\.(?P<kind>incomplete|replaced)-(?P<pid>[0-9]+)")


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


def save_figure(
    fig: Figure, path: str | os.PathLike, dpi: int, *, description: str | None = None
) -> Path:
    """Write a matplotlib figure as a PNG, atomically, and return the path.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure (cropped to its content: ``bbox_inches="tight"``).
    path : path-like
        The PNG to write.
    dpi : int
        Resolution.
    description : str, optional
        Written into the PNG's ``Description`` metadata (e.g. the figure's alt text).
    """
    metadata = {"Description": description} if description else None
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, metadata=metadata, bbox_inches="tight")
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
    replaces: bool = False,
    formats: Sequence[str] | None = None,
) -> Path:
    """Refuse an output that would destroy an input or cannot be written, before any work.

    The one check of every command's outputs.

    Parameters
    ----------
    path : path-like
        Where a command will write (a file, or a folder with ``folder=True``).
    inputs : iterable of path-like
        Everything the command reads: incident files and the folders named as inputs, polygon
        unit layers, cubes, models, configs, mappings. An output that is one of them, holds one
        (a folder) or lies inside one (a folder input) is refused; paths are compared after
        following links, and by device and inode (hard links, bind mounts).
    folder : bool, default False
        The output is a folder (it may exist); otherwise an existing folder is refused.
    replaces : bool, default False
        The folder is replaced whole (see :func:`staged_folder`): an existing one that is not
        empty must carry :data:`OWNED_MARKER`.
    formats : sequence of str, optional
        The file extensions the output may have (``(".parquet",)``).

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    geo_crime.core.errors.ConfigError
        The output is, holds or lies inside an input, lies inside the shared data folder, has
        another extension than ``formats``, is a folder where a file is expected (or the
        reverse), is a device or FIFO, is a folder geo-crime did not make (``replaces``), or its
        nearest existing folder cannot be written to.
    """

    out = Path(path).expanduser()
    clash = _input_clash(out, inputs)
    if clash:
        raise ConfigError(f"{out}: {clash}; choose another output")
    target = out.resolve()
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
    if formats is not None and not folder and _format_error(out, formats):
        raise ConfigError(f"{out}: {_format_error(out, formats)}")
    if replaces:
        _check_replaceable(out)
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


def _lineage(path: Path) -> list[tuple[Path, tuple[int, int] | None]]:
    """``path`` after links, then each folder above it, with its (device, inode) when it exists."""
    resolved = path.resolve()
    lineage = []
    for place in (resolved, *resolved.parents):
        try:
            info = place.stat()
        except OSError:
            lineage.append((place, None))
        else:
            lineage.append((place, (info.st_dev, info.st_ino)))
    return lineage


def _same(a: tuple[Path, tuple[int, int] | None], b: tuple[Path, tuple[int, int] | None]) -> bool:
    return a[0] == b[0] or (a[1] is not None and a[1] == b[1])


def _input_clash(out: Path, inputs: Iterable[str | os.PathLike]) -> str | None:
    """How the output ``out`` would destroy one of ``inputs`` (None: it would not)."""
    target = _lineage(out)
    for source in inputs:
        given = Path(source).expanduser()
        lineage = _lineage(given)
        if _same(target[0], lineage[0]):
            return f"the output would overwrite an input file ({given})"
        if any(_same(target[0], above) for above in lineage[1:]):
            return f"the output folder holds the input {given}"
        if any(_same(above, lineage[0]) for above in target[1:]):
            return f"the output lies inside the input folder {given}"
    return None


def _format_error(path: Path, formats: Sequence[str]) -> str | None:
    """Why ``path`` is not one of ``formats`` (file extensions), or None."""
    suffix = path.suffix.lower()
    if suffix in formats:
        return None
    named = f"'{suffix}'" if suffix else "(no extension)"
    return f"unknown output format {named} (use {', '.join(formats)})"


def _check_replaceable(folder: Path) -> None:
    """Refuse to replace ``folder`` unless it is missing, empty or marked as geo-crime's."""

    if folder.is_symlink() or not folder.exists():
        return  # a link is replaced itself, never what it points to
    if not folder.is_dir():
        raise ConfigError(f"{folder}: is a file, not a folder")
    if not (folder / OWNED_MARKER).is_file() and any(folder.iterdir()):
        raise ConfigError(
            f"{folder}: a folder geo-crime did not make (no {OWNED_MARKER} in it) and not "
            "empty; it is never replaced: choose another name or output, or remove it yourself"
        )


def _owner_lines() -> str:
    return f"host: {socket.gethostname()}\npid: {os.getpid()}\n"


@contextlib.contextmanager
def staged_folder(final: str | os.PathLike) -> Iterator[Path]:
    """Yield a new staging folder beside ``final``; on success it replaces ``final`` whole.

    The staging folder is ``.<name>.incomplete-<pid>`` and holds :data:`INCOMPLETE` while it is
    written; on success the marker gives way to :data:`OWNED_MARKER` and the folder is renamed
    onto ``final`` (an older one moved aside as ``.<name>.replaced-<pid>``, then removed). On an
    error the staging folder is removed; a killed process leaves it, clearly named, for
    :func:`clean_stale_staging`.

    Raises
    ------
    geo_crime.core.errors.ConfigError
        ``final`` is a folder geo-crime did not make and not empty (checked again at the end,
        so a folder that appeared meanwhile is not replaced either).
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = final.parent / f".{final.name}.incomplete-{os.getpid()}"
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir()
    (staging / INCOMPLETE).write_text(
        "This run did not finish: its outputs are incomplete and must not be used.\n"
        + _owner_lines(),
        encoding="utf-8",
    )
    try:
        yield staging
        (staging / INCOMPLETE).unlink()
        (staging / OWNED_MARKER).write_text(
            "geo-crime made this folder: a later run writing here may replace it whole.\n"
            + _owner_lines(),
            encoding="utf-8",
        )
        _check_replaceable(final)
        old = final.parent / f".{final.name}.replaced-{os.getpid()}"
        moved = final.is_symlink() or final.exists()
        if moved:
            os.replace(final, old)
        try:
            os.replace(staging, final)
        except OSError:
            if moved:
                os.replace(old, final)
            raise
        if old.is_symlink():
            old.unlink()
        elif old.exists():
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def clean_stale_staging(
    parent: str | os.PathLike, *, stale_after_hours: float = STALE_AFTER_HOURS
) -> list[Path]:
    """Remove the staging folders in ``parent`` that processes which died left behind.

    Only folders named as :func:`staged_folder` names them and holding its marker are touched
    (:data:`INCOMPLETE`, or :data:`OWNED_MARKER` for an older folder moved aside). One is stale
    when no process of its id runs on this host, or when nothing in it changed for
    ``stale_after_hours`` (process ids are reused; a folder of another host is judged so only).

    Returns
    -------
    list of pathlib.Path
        The folders removed, sorted.
    """
    parent = Path(parent)
    if not parent.is_dir():
        return []
    removed = []
    for folder in sorted(parent.iterdir()):
        match = _STAGING_NAME.fullmatch(folder.name)
        if match is None or folder.is_symlink() or not folder.is_dir():
            continue
        marker = folder / (INCOMPLETE if match["kind"] == "incomplete" else OWNED_MARKER)
        if not marker.is_file():
            continue  # named alike, but not a folder geo-crime staged
        if _writer_alive(marker, int(match["pid"])) and not _untouched(folder, stale_after_hours):
            continue
        shutil.rmtree(folder, ignore_errors=True)
        if not folder.exists():
            removed.append(folder)
    return removed


def describe_cleaned(folders: Sequence[Path]) -> str:
    """One line saying which stale staging folders :func:`clean_stale_staging` removed."""
    plural = "s" if len(folders) != 1 else ""
    names = ", ".join(p.name for p in folders)
    return f"removed {len(folders)} stale staging folder{plural} of runs that died: {names}"


def _writer_alive(marker: Path, pid: int) -> bool:
    """Whether the process that wrote ``marker`` may still run (False: surely gone)."""
    try:
        text = marker.read_text(encoding="utf-8", errors="replace")
    except OSError:
        text = ""
    host = re.search(r"^host: (.*)$", text, flags=re.MULTILINE)
    if host and host.group(1) != socket.gethostname():
        return True  # another machine's process: only its age tells
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's live process
    return True


def _untouched(folder: Path, hours: float) -> bool:
    """Whether nothing in ``folder`` (itself included) changed for ``hours``."""
    newest = folder.lstat().st_mtime
    for root, dirs, files in os.walk(folder):
        for name in (*dirs, *files):
            with contextlib.suppress(OSError):
                newest = max(newest, os.lstat(os.path.join(root, name)).st_mtime)
    return time.time() - newest > hours * 3600


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
    geo_crime.core.errors.OutputError
        For an unknown extension.
    """

    path = Path(path)
    suffix = path.suffix.lower()
    if _format_error(path, TABLE_FORMATS):
        raise OutputError(f"{path}: {_format_error(path, TABLE_FORMATS)}")
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

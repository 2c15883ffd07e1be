"""Official boundary layers: the manifest of downloadable layers and their checksummed cache.

``boundaries/manifest.json`` lists the official layers (URL, file name, optional pinned
SHA-256). :func:`fetch_boundary` downloads one once into the cache folder (``<cache_dir>/
boundaries`` by default), following ArcGIS result pages, and checks it: a pinned checksum must
match, otherwise the first download's checksum is recorded in ``manifest.lock.json`` beside the
files (trust on first use, :class:`geo_crime.net.http.ChecksumLock`) and every later use must match
it. :func:`geo_crime.units.rd_units` uses a cached layer after the same check, and never
downloads unless asked to.
"""

from __future__ import annotations

import functools
import hashlib
import json
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from geo_crime.core.config import REPO_ROOT, cache_dir
from geo_crime.core.errors import ConfigError, FetchError
from geo_crime.core.io_utils import atomic_write_bytes
from geo_crime.net.bounds import DEFAULT_TIMEOUT
from geo_crime.net.http import ChecksumLock, get_bytes

#: The list of downloadable official boundary layers.
MANIFEST_FILE: Path = REPO_ROOT / "boundaries" / "manifest.json"


def load_manifest(path: str | Path | None = None) -> dict[str, Any]:
    """Read the boundary manifest (``boundaries/manifest.json``): downloadable official layers.

    Parameters
    ----------
    path
        Another manifest file (default :data:`MANIFEST_FILE`).

    Returns
    -------
    dict
        The parsed manifest; ``manifest["layers"][name]`` has at least ``url`` and ``filename``.
    """
    path = Path(path) if path is not None else MANIFEST_FILE
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"boundary manifest {path} not found") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"boundary manifest {path} is not valid JSON ({exc})") from None
    layers = manifest.get("layers")
    if not isinstance(layers, dict):
        raise ConfigError(f"boundary manifest {path} has no 'layers' object")
    for name, entry in layers.items():
        if not isinstance(entry, dict) or not entry.get("url") or not entry.get("filename"):
            raise ConfigError(f"boundary manifest {path}: layer {name!r} needs url and filename")
    return manifest


def _cache_folder(cache: bool | str | Path) -> Path | None:
    """The boundary cache folder: ``True`` = ``<cache_dir>/boundaries``, ``False`` = none."""
    if cache is False:
        return None
    if cache is True:
        return cache_dir() / "boundaries"
    return Path(cache).expanduser()


def _verified_cached(name: str, folder: Path) -> tuple[Path, str] | None:
    """``(path, sha256)`` of a cached layer whose checksum matches, None when not cached."""
    try:
        entry = load_manifest()["layers"].get(name)
    except ConfigError:
        return None
    if entry is None:
        return None
    path = folder / entry["filename"]
    if not path.is_file():
        return None
    lock = ChecksumLock(folder)
    expected = lock.expected(name, entry["url"], pinned=entry.get("sha256"))
    return path, lock.check_cached(name, entry["url"], path, expected)


# --- downloading ----------------------------------------------------------------------------------


def _parse_feature_collection(data: bytes, url: str) -> dict[str, Any]:
    try:
        doc = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise FetchError(f"{url}: the response is not JSON ({exc})") from None
    if isinstance(doc, dict) and "error" in doc:
        raise FetchError(f"{url}: the server answered with an error: {doc['error']}")
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection":
        raise FetchError(f"{url}: the response is not a GeoJSON FeatureCollection")
    return doc


def _exceeded(doc: dict[str, Any]) -> bool:
    props = doc.get("properties") or {}
    return bool(doc.get("exceededTransferLimit") or props.get("exceededTransferLimit"))


def _with_offset(url: str, offset: int) -> str:
    parts = urllib.parse.urlsplit(url)
    query = [(k, v) for k, v in urllib.parse.parse_qsl(parts.query) if k != "resultOffset"]
    query.append(("resultOffset", str(offset)))
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


def _download_layer(url: str, *, arcgis_paging: bool, get: Callable[[str], bytes]) -> bytes:
    """The layer's GeoJSON: the answer as sent, or its ArcGIS pages joined in one collection.

    Raises
    ------
    FetchError
        An answer is not a GeoJSON FeatureCollection, or the layer has no features.
    """
    data = get(url)
    doc = _parse_feature_collection(data, url)
    features = doc.get("features")
    if arcgis_paging and _exceeded(doc):
        features = list(features or [])
        while _exceeded(doc):
            page_url = _with_offset(url, len(features))
            doc = _parse_feature_collection(get(page_url), page_url)
            page = doc.get("features") or []
            if not page:
                break
            features.extend(page)
        data = json.dumps({"type": "FeatureCollection", "features": features}).encode()
    if not features:
        raise FetchError(f"{url}: the layer has no features")
    return data


def fetch_boundary(
    name: str,
    *,
    url: str | None = None,
    cache_dir: str | Path | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    retries: int = 2,
    manifest: str | Path | None = None,
) -> Path:
    """Download an official boundary layer listed in the manifest once, into the cache.

    The file is written atomically. Its SHA-256 is checked against the manifest's ``sha256``
    when one is pinned there; otherwise the checksum of the first download is recorded in
    ``<cache_dir>/manifest.lock.json`` (trust on first use) and every later use or download must
    match it, so an upstream change or a corrupted cache is noticed instead of silently changing
    results. ArcGIS query URLs that page their results (``exceededTransferLimit``) are followed
    page by page with ``resultOffset`` when the manifest entry says ``"paging": "arcgis"``.

    Parameters
    ----------
    name
        Layer name in the manifest (e.g. ``"lapd_reporting_districts"``).
    url
        Download from here instead of the manifest URL (the checksum is recorded per URL).
    cache_dir
        Folder for the file (default ``<cache_dir>/boundaries``).
    timeout
        Seconds one request may take in all, body included (a redirect to another origin is
        refused, and a body over 256 MiB too: see :mod:`geo_crime.net.bounds`).
    retries
        Extra attempts after a network error or an HTTP 5xx answer.
    manifest
        Another manifest file.

    Returns
    -------
    pathlib.Path
        The cached file.

    Raises
    ------
    ConfigError
        Unknown layer name.
    FetchError
        The download failed, is not a GeoJSON FeatureCollection, or its checksum differs from the
        recorded one.
    DataError
        The cached file no longer matches its recorded checksum.
    """
    layers = load_manifest(manifest)["layers"]
    if name not in layers:
        raise ConfigError(f"unknown boundary layer {name!r}; the manifest has {sorted(layers)}")
    entry = layers[name]
    source_url = url or entry["url"]
    folder = _cache_folder(True) if cache_dir is None else Path(cache_dir).expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / entry["filename"]
    lock = ChecksumLock(folder)
    expected = lock.expected(name, source_url, pinned=entry.get("sha256"))
    if target.is_file():
        lock.check_cached(name, source_url, target, expected)
        return target

    get = functools.partial(get_bytes, timeout=timeout, max_retries=retries, backoff=2.0)
    data = _download_layer(source_url, arcgis_paging=entry.get("paging") == "arcgis", get=get)
    actual = hashlib.sha256(data).hexdigest()
    if expected is not None and actual != expected:
        raise FetchError(
            f"{source_url}: downloaded sha256 {actual} differs from the recorded {expected} "
            f"(the layer changed upstream or the download was altered); remove the entry in "
            f"{lock.path} to trust the new version"
        )
    atomic_write_bytes(target, data)
    if expected is None:
        lock.record(name, source_url, actual, target)
    return target

"""The two LAPD data sets on the city's Socrata portal: names, ids, keys, URLs and file names.

LAPD publishes two data sets on the City of Los Angeles Socrata portal, both read through the
SODA API (``https://data.lacity.org/resource/<id>.json``). They are named, with their Socrata id,
key field and default file name, in one place, :data:`DATASETS`:

* ``legacy``: "Crime Data from 2020 to 2024" (``2nrs-mtv8``), LAPD's legacy records system;
  frozen: 1,004,894 rows, occurrences from 2020-01-01 to 2024-12-30. One row per incident, keyed
  by the record number ``dr_no``. Its file (``lapd_crime_2nrs-mtv8.ndjson.gz``) is what
  :func:`geo_crime.ingest.read_incidents` reads as the ``api`` schema;
* ``nibrs``: "LAPD NIBRS Offenses" (``k7nn-b2ep``), every NIBRS record from the move of
  2024-03-07 to about two weeks ago (refreshed about every two weeks); one row per offence, keyed
  by ``uniquenibrno`` (``<caseno>_<nibr_code>_<sequence>``, e.g. ``25245851_290_0``). One case
  (``caseno``) has as many rows as offences: they are all kept, since only ``uniquenibrno`` is
  unique. Its file is ``lapd_nibrs_k7nn-b2ep.ndjson.gz``, records as the API serves them.

Through 2024 the two sets split LAPD's reports between them, so a 2024 series needs both.

* :func:`dataset_names`: the data sets a name (or ``"all"``) stands for, checked;
* :func:`dataset_url`: a data set's endpoint, on the city's portal or on another server (an
  endpoint for one data set, a template with ``{id}`` or a portal root ending in ``/``);
* :func:`default_downloads_dir` and :func:`default_incidents_path`: where the files go by default.

The download itself is :mod:`geo_crime.net.fetch`; this module sends no request.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from geo_crime.core.config import cache_dir
from geo_crime.core.errors import ConfigError

__all__ = [
    "ALL_DATASETS",
    "DATASETS",
    "ID_PLACEHOLDER",
    "PORTAL_URL",
    "Dataset",
    "dataset_names",
    "dataset_url",
    "default_downloads_dir",
    "default_incidents_path",
]

#: The SODA resources of the city's open-data portal: a data set is ``<PORTAL_URL><id>.json``.
PORTAL_URL = "https://data.lacity.org/resource/"


@dataclass(frozen=True)
class Dataset:
    """One LAPD data set on the city's Socrata portal, and the key it is paged on.

    Attributes
    ----------
    name
        The name :func:`~geo_crime.net.fetch.fetch_incidents` and ``geo-crime fetch --dataset``
        know it by.
    socrata_id
        The Socrata id (``xxxx-xxxx``) of the data set.
    id_field
        Its unique text key: pages are ordered, resumed and de-duplicated on it.
    file_name
        Its file in the download folder (:func:`default_incidents_path`).
    title
        What it holds, for progress bars and messages.
    """

    name: str
    socrata_id: str
    id_field: str
    file_name: str
    title: str

    @property
    def url(self) -> str:
        """The SODA resource endpoint on the city's portal (``<PORTAL_URL><id>.json``)."""
        return f"{PORTAL_URL}{self.socrata_id}.json"


#: Every data set :func:`~geo_crime.net.fetch.fetch_incidents` can download, by name: the one
#: place their Socrata ids, key fields and file names are set. ``legacy`` is the frozen legacy
#: records system, 2020-01-01 to 2024-12-30 (one row per incident); ``nibrs`` is every NIBRS record
#: from 2024-03-07 on (one row per offence, several per case number ``caseno``). Spans:
#: :data:`geo_crime.net.spans.SPANS`.
DATASETS: Mapping[str, Dataset] = MappingProxyType(
    {
        "legacy": Dataset(
            name="legacy",
            socrata_id="2nrs-mtv8",
            id_field="dr_no",
            file_name="lapd_crime_2nrs-mtv8.ndjson.gz",
            title="LAPD crime rows",
        ),
        "nibrs": Dataset(
            name="nibrs",
            socrata_id="k7nn-b2ep",
            id_field="uniquenibrno",
            file_name="lapd_nibrs_k7nn-b2ep.ndjson.gz",
            title="LAPD NIBRS offence rows",
        ),
    }
)

#: The name that stands for every data set of :data:`DATASETS` (``geo-crime fetch --dataset all``).
ALL_DATASETS = "all"

#: Placeholder of a base URL template, replaced by a data set's Socrata id (:func:`dataset_url`).
ID_PLACEHOLDER = "{id}"


def dataset_names(dataset: str | Iterable[str]) -> list[str]:
    """The data set names ``dataset`` stands for, checked: ``"all"`` is every one.

    Parameters
    ----------
    dataset
        A key of :data:`DATASETS`, :data:`ALL_DATASETS`, or several keys.

    Returns
    -------
    list of str
        Keys of :data:`DATASETS`, each once, in the order given (``"all"``: the order of
        :data:`DATASETS`).

    Raises
    ------
    ConfigError
        A name is not a key of :data:`DATASETS` (nor ``"all"``), or none is given.

    Examples
    --------
    >>> dataset_names("all")
    ['legacy', 'nibrs']
    >>> dataset_names(["nibrs", "legacy", "nibrs"])
    ['nibrs', 'legacy']
    """
    names = [dataset] if isinstance(dataset, str) else list(dataset)
    known = [*DATASETS, ALL_DATASETS]
    chosen: list[str] = []
    for name in names:
        if name not in known:
            choices = ", ".join(known[:-1]) + f" or {known[-1]}"
            raise ConfigError(f"unknown data set {name!r}: choose {choices}")
        for one in DATASETS if name == ALL_DATASETS else [name]:
            if one not in chosen:
                chosen.append(one)
    if not chosen:
        raise ConfigError("no data set given: choose " + ", ".join(known))
    return chosen


def _dataset(name: str) -> Dataset:
    """The :class:`Dataset` called ``name`` (a :class:`ConfigError` for any other name)."""
    if name not in DATASETS:
        choices = ", ".join(DATASETS)
        raise ConfigError(f"unknown data set {name!r}: choose one of {choices}")
    return DATASETS[name]


def dataset_url(dataset: str, base_url: str | None = None) -> str:
    """The SODA resource endpoint of a data set, on the city's portal or on ``base_url``.

    Parameters
    ----------
    dataset
        A key of :data:`DATASETS`.
    base_url
        ``None``: the city's portal (:attr:`Dataset.url`). A URL containing ``{id}``: a
        template, ``{id}`` replaced by the data set's Socrata id. A URL ending in ``/``: a portal
        root (like :data:`PORTAL_URL`), to which ``<id>.json`` is added. Any other URL: the
        endpoint itself, used as it is (it can serve one data set only).

    Returns
    -------
    str
        The URL the pages and counts are asked of.

    Raises
    ------
    ConfigError
        ``dataset`` is unknown.

    Examples
    --------
    >>> dataset_url("nibrs")
    'https://data.lacity.org/resource/k7nn-b2ep.json'
    >>> dataset_url("legacy", "http://127.0.0.1:8080/resource/{id}.json")
    'http://127.0.0.1:8080/resource/2nrs-mtv8.json'
    >>> dataset_url("nibrs", "http://127.0.0.1:8080/resource/")
    'http://127.0.0.1:8080/resource/k7nn-b2ep.json'
    """
    chosen = _dataset(dataset)
    if base_url is None:
        return chosen.url
    socrata_id = chosen.socrata_id
    if ID_PLACEHOLDER in base_url:
        return base_url.replace(ID_PLACEHOLDER, socrata_id)
    if base_url.endswith("/"):
        return f"{base_url}{socrata_id}.json"
    return base_url


def _serves_every_dataset(base_url: str | None) -> bool:
    """Whether ``base_url`` gives each data set its own endpoint (see :func:`dataset_url`)."""
    return base_url is None or ID_PLACEHOLDER in base_url or base_url.endswith("/")


def default_downloads_dir() -> Path:
    """The folder the data sets are downloaded into by default: ``<cache>/downloads``.

    Returns
    -------
    pathlib.Path
        ``cache_dir() / "downloads"`` (not created here).
    """

    return cache_dir() / "downloads"


def default_incidents_path(dataset: str = "legacy") -> Path:
    """Default destination of :func:`~geo_crime.net.fetch.fetch_incidents`: the download folder.

    That is ``<cache>/downloads/<file name>``.

    Parameters
    ----------
    dataset
        A key of :data:`DATASETS`.

    Returns
    -------
    pathlib.Path
        ``cache_dir() / "downloads" / DATASETS[dataset].file_name``, i.e.
        ``lapd_crime_2nrs-mtv8.ndjson.gz`` (legacy) or ``lapd_nibrs_k7nn-b2ep.ndjson.gz``
        (nibrs).

    Raises
    ------
    ConfigError
        ``dataset`` is unknown.
    """
    return default_downloads_dir() / _dataset(dataset).file_name

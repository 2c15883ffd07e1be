"""Settings of a run: the ``[run]`` and ``[[study]]`` tables of a TOML file, typed and checked.

Settings come from defaults, then an optional TOML file (``[run]`` table and ``[[study]]``
tables), then command-line flags (later wins). Every key is checked against
:data:`RUN_SCHEMA` / :data:`STUDY_SCHEMA` and a wrong one is refused with one error naming the
file, the table and the key. Run and study names become folders, so they may only use letters,
digits, ``_`` and ``-``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import re
import stat
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from geo_crime.core.config import DEFAULT_K
from geo_crime.core.errors import ConfigError
from geo_crime.core.options import CountUnit, Tiles
from geo_crime.core.periods import Freq
from geo_crime.core.schema import DIVISIONS
from geo_crime.forecast import DEFAULT_CONFIG, FAST_CONFIG
from geo_crime.forecast.registry import forecaster_class, known_names
from geo_crime.ingest.severity import nibrs_severity_table, severity_table
from geo_crime.publish.privacy import suppression_off
from geo_crime.units import unit_files
from geo_crime.units.spec import UnitSpec

if TYPE_CHECKING:
    from geo_crime.forecast.network import ForecastConfig


@dataclass
class StudySettings:
    """One study of a run.

    Attributes
    ----------
    name
        Folder name under the run folder.
    areas
        LAPD divisions (1-21) to keep; empty = all.
    start, end
        Occurrence date range (inclusive start, exclusive end), ISO dates; empty = all.
    units
        Unit specifications (``h3:8``, ``rd``, ``division`` or a polygon file).
    freq
        Period length: ``D``, ``W`` or ``M``.
    measure
        Cube measure the statistics and forecasts use (``severity``, ``count``, ``harm``).
    statistics
        Which of ``moran``, ``lisa``, ``gi``, ``emerging`` to run.
    forecast
        Backtest the forecasters and predict the next period.
    forecast_config
        Keras configuration: ``fast`` (the default, a few seconds per fit) or ``default``.
    lags
        Periods of history the models see (0: the configuration's own).
    forecast_models
        Forecasters to backtest, by registry name (``keras``, ``gbm``, ``ma8``...; empty: the
        default list of :func:`geo_crime.forecast.evaluate`).
    forecast_origins, refit_every
        Rolling origins of the backtest, and how often the models are refitted. The defaults
        (0 and 0) score every usable origin (61 weekly origins in West LA 2020-21), so that
        paired intervals over origins can tell models apart, and refit each model at most six
        times (:data:`geo_crime.forecast.evaluate.MAX_FITS`; every 11 origins of 61), each Keras
        fit warm-started from the previous one; the final model warm-starts from the last
        backtest network.
    tune_trials, tune_seconds
        Keras tuning budget on the periods before the first origin (0 trials: no tuning).
    reproduce_study
        Also run the original student study's Conv1D protocol (for division x day panels).
    window_share
        The analysis window of each unit set: the periods completely recorded for at least this
        share of its units (1.0, the default: for every unit). Below 1, a unit's statistics
        read the window's periods complete for that unit only, as means per complete period,
        and the report says so.
    why
        Why the study has its window: set by
        :func:`geo_crime.study_windows.studies_from_coverage` for a study chosen from the data,
        optional for a configured one; the report prints it under the study's heading.
    """

    name: str
    areas: list[int] = field(default_factory=list)
    start: str = ""
    end: str = ""
    units: list[str] = field(default_factory=lambda: ["h3:8", "rd"])
    freq: str = "W"
    measure: str = "severity"
    statistics: list[str] = field(default_factory=lambda: ["moran", "lisa", "gi", "emerging"])
    forecast: bool = True
    forecast_config: str = "fast"
    lags: int = 0
    forecast_models: list[str] = field(default_factory=list)
    forecast_origins: int = 0
    refit_every: int = 0
    tune_trials: int = 0
    tune_seconds: float = 0.0
    reproduce_study: bool = False
    window_share: float = 1.0
    why: str = ""

    def __post_init__(self) -> None:
        """Every setting checked as a config file's are, with the same one-line errors; the
        period length parsed once into a :class:`~geo_crime.core.periods.Freq`."""
        check_name(self.name, "study name")
        fields = {key: getattr(self, key) for key in STUDY_SCHEMA}
        _checked(fields, STUDY_SCHEMA, f"study {self.name}")
        self.freq = Freq.parse(self.freq)

    def select(self, incidents: pd.DataFrame) -> pd.DataFrame:
        """The incidents of this study (its divisions and date range)."""
        keep = pd.Series(True, index=incidents.index)
        if self.areas:
            keep &= incidents["area"].isin(self.areas)
        if self.start:
            keep &= incidents["occurred_at"] >= pd.Timestamp(self.start)
        if self.end:
            keep &= incidents["occurred_at"] < pd.Timestamp(self.end)
        return incidents.loc[keep]

    def window_words(self) -> str:
        """What the study selects, in words: ``divisions 8, from 2020-03-01 to before
        2020-09-01`` (for messages)."""
        areas = "divisions " + ", ".join(map(str, self.areas)) if self.areas else "all divisions"
        start = self.start or "the first incident"
        end = f"before {self.end}" if self.end else "the last incident"
        return f"{areas}, from {start} to {end}"

    def keras_config(self) -> ForecastConfig:
        """The Keras configuration this study's forecasts use (target: severity)."""

        base = FAST_CONFIG if self.forecast_config == "fast" else DEFAULT_CONFIG
        changes: dict[str, object] = {"target": "severity"}
        if self.lags:
            changes["lags"] = self.lags
        return dataclasses.replace(base, **changes)

    def tuning(self) -> dict[str, float] | None:
        """The keras-tuner budget of the backtest, or None when the study does not tune."""
        if not self.tune_trials:
            return None
        return {"max_trials": self.tune_trials, "max_seconds": self.tune_seconds or 180.0}


@dataclass
class RunSettings:
    """Settings of one pipeline run (``[run]`` table of the TOML file; studies in ``[[study]]``).

    Attributes
    ----------
    name
        Run name: outputs go to ``outputs/<name>/`` (default: ``run-YYYYmmdd-HHMMSS``).
    inputs
        Crime files, folders or globs (default: the real data in ``GEO_CRIME_DATA``).
    outputs
        The outputs folder.
    negative_age
        Negative victim age policy (``null`` or ``abs``).
    coverage_threshold
        Share of the baseline below which an (area, month) is incomplete.
    permutations, seed
        Permutation inference for the statistics; seed for everything random.
    k_anonymity
        Units with fewer incidents have their counts suppressed in public exports.
    offline_map
        Inline Leaflet and all assets into the HTML maps.
    map_tiles
        Web tiles under the maps' vector base map: ``"osm"`` (the default: OpenStreetMap street
        tiles when the page is online; offline, or when the tile server fails, the map falls
        back to its vector base map), ``"carto"`` or ``"none"`` (a page that requests nothing
        from any server: no tiles, and no viewer's address sent to a tile server).
    cache
        Reuse the content-keyed cache of cleaned incidents (``--no-cache`` turns it off).
    min_date
        Occurrences before this ISO date are dropped and counted as suspicious ("" keeps all).
    count
        What a row of the incidents is: ``incidents`` (the default: the offence rows of each
        NIBRS case collapsed to one, its most serious offence) or ``offenses`` (every NIBRS
        offence row kept); see :func:`geo_crime.ingest.load_incidents`.
    studies
        The studies (default: none given, so the run chooses them from the data's complete
        weeks: :func:`geo_crime.study_windows.studies_from_coverage`).
    config_file
        The TOML file the settings were read from (set by :meth:`from_sources`; not a setting).
    """

    name: str = ""
    inputs: list[str] = field(default_factory=list)
    outputs: Path = Path("outputs")
    negative_age: str = "null"
    coverage_threshold: float = 0.6
    permutations: int = 999
    seed: int = 0
    k_anonymity: int = DEFAULT_K
    offline_map: bool = True
    map_tiles: str = "osm"
    cache: bool = True
    min_date: str = "2010-01-01"
    count: str = "incidents"
    studies: list[StudySettings] = field(default_factory=list)
    config_file: Path | None = None

    def __post_init__(self) -> None:
        """Every setting checked as a config file's are, with the same one-line errors (the
        name may stay empty here: :meth:`from_sources` names the run by its time)."""
        _check_run(self)

    def setting_files(self) -> list[Path]:
        """The files the settings name: the config file and the studies' polygon unit layers
        (inputs of the run, which it must never overwrite)."""

        config = [Path(self.config_file)] if self.config_file is not None else []
        return config + unit_files(*(u for study in self.studies for u in study.units))

    @classmethod
    def from_sources(
        cls,
        *,
        config_file: Path | None = None,
        **overrides: object,
    ) -> RunSettings:
        """Build settings from defaults, a TOML file and explicit overrides.

        Parameters
        ----------
        config_file
            Optional TOML file with a ``[run]`` table and ``[[study]]`` tables.
        **overrides
            Values that win over the file; ``None`` values are ignored.

        Returns
        -------
        RunSettings
        """
        values: dict[str, object] = {}
        if config_file is not None:
            try:
                data = tomllib.loads(read_settings_text(Path(config_file), "config file"))
            except tomllib.TOMLDecodeError as exc:
                raise ConfigError(f"{config_file}: invalid TOML ({exc})") from None
            unexpected = sorted(set(data) - {"run", "study"})
            if unexpected:
                raise ConfigError(
                    f"{config_file}: unknown table(s) {unexpected}; use [run] and [[study]]"
                )
            section = data.get("run", {})
            if not isinstance(section, dict):
                raise ConfigError(f"{config_file}: [run] must be a table")
            values.update(_checked(section, RUN_SCHEMA, f"{config_file}: [run]"))
            if "study" in data:
                entries = data["study"]
                if not isinstance(entries, list):
                    raise ConfigError(f"{config_file}: use [[study]] tables for studies")
                studies = []
                for number, entry in enumerate(entries, start=1):
                    where = f"{config_file}: [[study]] {number}"
                    if not isinstance(entry, dict):
                        raise ConfigError(f"{where} must be a table")
                    if "name" not in entry:
                        raise ConfigError(f"{where} needs a name")
                    studies.append(StudySettings(**_checked(entry, STUDY_SCHEMA, where)))
                values["studies"] = studies
        given = {k: v for k, v in overrides.items() if v is not None}
        values.update(_checked(given, RUN_SCHEMA, "command line"))
        settings = cls(**values)
        settings.outputs = Path(settings.outputs)
        settings.config_file = Path(config_file) if config_file is not None else None
        if not settings.name:
            settings.name = dt.datetime.now().strftime("run-%Y%m%d-%H%M%S")
        check_settings(settings)
        return settings

    def suppression_off(self) -> str:
        """What the public outputs show because ``k_anonymity`` is below 2, in words (empty when
        small counts are suppressed): see :func:`suppression_off`."""
        return suppression_off(self.k_anonymity)


def check_settings(settings: RunSettings) -> RunSettings:
    """Check every setting of a run and its studies against the schemas, before any work.

    Settings built in Python (not read by :meth:`RunSettings.from_sources`) get the same checks
    and the same one-line errors as a config file.

    Parameters
    ----------
    settings
        The run settings.

    Returns
    -------
    RunSettings
        ``settings``, unchanged.

    Raises
    ------
    ConfigError
        A setting is of the wrong type or out of range, a name is not a folder name, or two
        studies share a name.
    """
    _check_run(settings)
    check_name(settings.name, "run name")
    for study in settings.studies:
        check_name(study.name, "study name")
        fields = {key: getattr(study, key) for key in STUDY_SCHEMA}
        _checked(fields, STUDY_SCHEMA, f"study {study.name}")
    return settings


def _check_run(settings: RunSettings) -> None:
    """The run's own settings and its studies' names (unique); an empty name is not checked."""
    run = {key: getattr(settings, key) for key in RUN_SCHEMA}
    _checked({key: value for key, value in run.items() if value != ""}, RUN_SCHEMA, "run")
    names = [s.name for s in settings.studies]
    if len(set(names)) != len(names):
        raise ConfigError(f"study names must be unique: {names}")


#: The largest settings file read (a config of many studies is a few kilobytes): a bigger one is
#: not a settings file, and reading it whole could exhaust the memory.
MAX_SETTINGS_BYTES = 1_000_000


def read_settings_text(path: Path, what: str) -> str:
    """The text of a small settings file (a TOML config, a JSON column mapping), read safely.

    The file is opened without blocking and checked before it is read: a folder, a device
    (``/dev/zero`` would be read for ever), a named pipe or a socket is refused, so is a file
    over :data:`MAX_SETTINGS_BYTES` (only that much is ever read) and one that is not UTF-8
    text (a UTF-8 byte-order mark is allowed).

    Parameters
    ----------
    path
        The file.
    what
        What the file is, for messages (``"config file"``).

    Returns
    -------
    str

    Raises
    ------
    ConfigError
        One line naming the file and what is wrong with it.
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such {what}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the {what} ({exc.strerror or exc})") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        if stat.S_ISDIR(mode):
            raise ConfigError(f"{path}: is a folder, not a {what}")
        raise ConfigError(
            f"{path}: not a regular file (a device, named pipe or socket); a {what} must be a "
            "text file"
        )
    with os.fdopen(fd, "rb") as handle:
        try:
            data = handle.read(MAX_SETTINGS_BYTES + 1)
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read the {what} ({exc.strerror or exc})") from None
    if len(data) > MAX_SETTINGS_BYTES:
        raise ConfigError(
            f"{path}: larger than {MAX_SETTINGS_BYTES:,} bytes, too large for a {what}"
        )
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raise ConfigError(
            f"{path}: the {what} is UTF-16 text (it starts with the bytes "
            f"{data[0]:02X} {data[1]:02X}); save it as UTF-8"
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ConfigError(
            f"{path}: line {line} of the {what} is not UTF-8 text (byte 0x{data[exc.start]:02x} "
            f"at byte {exc.start}); save it as UTF-8"
        ) from None


def check_name(name: str, what: str) -> str:
    """A name used as a folder: letters, digits, ``_`` and ``-`` only (no path, no dots)."""
    if not SAFE_NAME.fullmatch(name):
        raise ConfigError(
            f"{what} {name!r} may only use letters, digits, '_' and '-' (it names a folder)"
        )
    return name


#: What a run or study name may be: it becomes a folder under the outputs folder.
SAFE_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


#: The dates a setting may name (``start``, ``end``, ``min_date``): LAPD's records start in
#: 2010 at the earliest; pandas cannot hold a date before 1677 at all.
DATE_RANGE = (dt.date(1900, 1, 1), dt.date(2100, 12, 31))


def _is_iso_date(value: object) -> bool:
    if not isinstance(value, str):
        return False
    if value == "":
        return True
    try:
        day = dt.date.fromisoformat(value)
    except ValueError:
        return False
    return DATE_RANGE[0] <= day <= DATE_RANGE[1]


#: How the date settings are described in errors.
_DATE_WORDS = f"from {DATE_RANGE[0]} to {DATE_RANGE[1]}"


def _forecaster_names() -> list[str]:

    return list(known_names())


def _is_forecaster_name(value: object) -> bool:

    if not isinstance(value, str):
        return False
    try:
        forecaster_class(value)
    except ConfigError:
        return False
    return True


_MEASURES = ("severity", "count", "harm", "rate")

#: The statistics a study can run.
STATISTICS = ("moran", "lisa", "gi", "emerging")


def _crime_categories() -> list[str]:
    """The crime categories a ``cat:<category>`` measure can name (those of the severity tables)."""

    names = set(severity_table()["category"]) | set(nibrs_severity_table()["category"])
    return sorted(names | {"other"})


def _is_measure(value: object) -> bool:
    if not isinstance(value, str):
        return False
    if value.startswith("cat:"):
        return value[4:] in _crime_categories()
    return value in _MEASURES


def _is_statistics(value: object) -> bool:
    return (
        isinstance(value, list)
        and all(isinstance(s, str) and s in STATISTICS for s in value)
        and len(set(value)) == len(value)
    )


#: (test, expected type in words) of every setting; the words go into the error message (a
#: callable gives them only when needed, e.g. the forecaster names, which import the registry).
RUN_SCHEMA: dict[str, tuple] = {
    "name": (lambda v: isinstance(v, str), "a name of letters, digits, '_' and '-'"),
    "inputs": (
        lambda v: isinstance(v, list) and all(isinstance(x, str | os.PathLike) for x in v),
        "a list of file, folder or glob strings",
    ),
    "outputs": (lambda v: isinstance(v, str | Path), "a folder path string"),
    "negative_age": (lambda v: v in ("null", "abs"), "'null' or 'abs'"),
    "coverage_threshold": (
        lambda v: isinstance(v, int | float) and not isinstance(v, bool) and 0 < v < 1,
        "a number between 0 and 1",
    ),
    "permutations": (lambda v: _is_int(v) and 1 <= v <= 99_999, "an integer from 1 to 99999"),
    "seed": (_is_int, "an integer"),
    "k_anonymity": (lambda v: _is_int(v) and 0 <= v <= 1_000, "an integer from 0 to 1000"),
    "offline_map": (lambda v: isinstance(v, bool), "true or false"),
    "map_tiles": (lambda v: v in tuple(Tiles), "'none', 'carto' or 'osm'"),
    "cache": (lambda v: isinstance(v, bool), "true or false"),
    "min_date": (
        _is_iso_date,
        f'an ISO date such as "2010-01-01" ({_DATE_WORDS}), or "" for none',
    ),
    "count": (lambda v: v in tuple(CountUnit), "'incidents' or 'offenses'"),
}

STUDY_SCHEMA: dict[str, tuple] = {
    "name": (lambda v: isinstance(v, str), "a name of letters, digits, '_' and '-'"),
    "areas": (
        lambda v: isinstance(v, list) and all(_is_int(a) and a in DIVISIONS for a in v),
        "a list of LAPD division numbers 1-21, e.g. [8]",
    ),
    "start": (_is_iso_date, f'an ISO date such as "2024-01-01" ({_DATE_WORDS})'),
    "end": (_is_iso_date, f'an ISO date such as "2024-10-01" ({_DATE_WORDS})'),
    "units": (
        lambda v: isinstance(v, list) and len(v) > 0 and all(UnitSpec.is_valid(u) for u in v),
        "a list of unit specs: h3:5 .. h3:10, rd, division or an existing polygon file",
    ),
    "freq": (lambda v: v in tuple(Freq), "'D', 'W' or 'M'"),
    "measure": (
        _is_measure,
        lambda: (
            "'severity', 'count', 'harm', 'rate' or 'cat:<category>' of a crime category: "
            + ", ".join(_crime_categories())
        ),
    ),
    "statistics": (_is_statistics, "a list of 'moran', 'lisa', 'gi', 'emerging', each once"),
    "forecast": (lambda v: isinstance(v, bool), "true or false"),
    "forecast_config": (lambda v: v in ("fast", "default"), "'fast' or 'default'"),
    "lags": (lambda v: _is_int(v) and 0 <= v <= 60, "an integer from 0 to 60"),
    "forecast_models": (
        lambda v: isinstance(v, list) and all(_is_forecaster_name(m) for m in v),
        lambda: "a list of forecaster names: " + ", ".join(_forecaster_names()),
    ),
    "forecast_origins": (
        lambda v: _is_int(v) and 0 <= v <= 1_000,
        "an integer from 0 (every usable origin) to 1000",
    ),
    "refit_every": (
        lambda v: _is_int(v) and 0 <= v <= 100,
        "an integer from 0 (at most six fits per model) to 100",
    ),
    "tune_trials": (lambda v: _is_int(v) and 0 <= v <= 100, "an integer from 0 to 100"),
    "tune_seconds": (
        lambda v: isinstance(v, int | float) and not isinstance(v, bool) and 0 <= v <= 86_400,
        "a number of seconds from 0 to 86400",
    ),
    "reproduce_study": (lambda v: isinstance(v, bool), "true or false"),
    "window_share": (
        lambda v: isinstance(v, int | float) and not isinstance(v, bool) and 0.5 <= v <= 1,
        "a share of the units from 0.5 to 1",
    ),
    "why": (lambda v: isinstance(v, str), "a sentence saying why the study has its window"),
}


def _checked(section: dict, schema: dict[str, tuple], where: str) -> dict:
    """``section`` after checking each key against ``schema``: one error naming the problem."""
    unknown = sorted(set(section) - set(schema))
    if unknown:
        raise ConfigError(f"{where}: unknown setting(s) {unknown}; known: {sorted(schema)}")
    for key, value in section.items():
        test, expected = schema[key]
        if not test(value):
            expected = expected() if callable(expected) else expected  # worded when needed
            raise ConfigError(
                f"{where}: {key} must be {expected}, got {value!r} ({type(value).__name__})"
            )
        if key == "name":
            check_name(value, "study name" if "study" in where else "run name")
    if section.get("start") and section.get("end") and section["start"] >= section["end"]:
        raise ConfigError(f"{where}: start {section['start']} is not before end {section['end']}")
    return dict(section)

"""Wire the stages together: one call (or ``geo-crime run``) produces every output of a run.

The pipeline only calls stage functions in order and writes their results under
``outputs/<run-name>/``; it holds no analysis of its own::

    ingest -> coverage -> (per study) units -> cube -> statistics -> forecast -> maps, exports,
    figures -> report

A run covers one or more *studies*: a slice of the incidents (divisions, dates) analysed on
some unit types at one period length. The default run has two, matching the real data:

``citywide_2024``
    All 21 divisions, January-September 2024 (the near-complete record before and around the
    records-system change), H3 resolution-8 cells and reporting districts, weekly.
``westla_2020_21``
    West LA (division 8), March 2020 - July 2021 (the complete West LA slice), reporting
    districts and H3 resolution-9 cells, weekly: 60+ complete weeks, enough for emerging hot
    spot trends.

Settings come from defaults, then an optional TOML file (``[run]`` table and ``[[study]]``
tables), then command-line flags (later wins).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import string
import time
import tomllib
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from rich.console import Console

from geo_crime.cube import FREQUENCIES
from geo_crime.privacy import hidden_mask
from geo_crime.errors import ConfigError, DataError
from geo_crime.report import md_code, md_text

ANALYSIS_NOTE = """\
Files in this folder are for analysis, not for publication: incidents.parquet holds victim-level
fields (age, sex, descent) and the cubes and statistic tables hold exact small counts. Publish
only what is under public/ (maps, GIS layers with small counts suppressed, figures) and the
report.
"""


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
        Train the fast forecast configuration and predict the next period.
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


def default_studies() -> list[StudySettings]:
    """The two studies the real data supports (see the module docstring)."""
    return [
        StudySettings(
            name="citywide_2024", start="2024-01-01", end="2024-10-01", units=["h3:8", "rd"]
        ),
        StudySettings(
            name="westla_2020_21",
            areas=[8],
            start="2020-03-01",
            end="2021-08-01",
            units=["rd", "h3:9"],
        ),
    ]


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
    cache
        Reuse the content-keyed cache of cleaned incidents (``--no-cache`` turns it off).
    min_date
        Occurrences before this ISO date are dropped and counted as suspicious ("" keeps all).
    studies
        The studies (default: :func:`default_studies`).
    """

    name: str = ""
    inputs: list[str] = field(default_factory=list)
    outputs: Path = Path("outputs")
    negative_age: str = "null"
    coverage_threshold: float = 0.6
    permutations: int = 999
    seed: int = 0
    k_anonymity: int = 3
    offline_map: bool = True
    cache: bool = True
    min_date: str = "2010-01-01"
    studies: list[StudySettings] = field(default_factory=default_studies)

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
                data = tomllib.loads(Path(config_file).read_text(encoding="utf-8"))
            except FileNotFoundError:
                raise ConfigError(f"{config_file}: no such config file") from None
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
                    if "name" not in entry:
                        raise ConfigError(f"{where} needs a name")
                    studies.append(StudySettings(**_checked(entry, STUDY_SCHEMA, where)))
                values["studies"] = studies
        given = {k: v for k, v in overrides.items() if v is not None}
        values.update(_checked(given, RUN_SCHEMA, "command line"))
        settings = cls(**values)
        settings.outputs = Path(settings.outputs)
        if not settings.name:
            settings.name = dt.datetime.now().strftime("run-%Y%m%d-%H%M%S")
        _check_name(settings.name, "run name")
        names = [s.name for s in settings.studies]
        if len(set(names)) != len(names):
            raise ConfigError(f"study names must be unique: {names}")
        return settings


def unit_label(spec: str) -> str:
    """A file-name label for a unit specification: ``h3:8`` -> ``h38``, a polygon file -> its
    stem; only letters, digits, ``_`` and ``-`` (a label never names a path)."""
    kind = spec.partition(":")[0].lower()
    text = (
        spec.replace(":", "")
        if kind in ("h3", "rd", "rds", "division", "divisions")
        else Path(spec).stem
    )
    return re.sub(r"[^A-Za-z0-9_-]", "_", text)[:64] or "units"


def _check_name(name: str, what: str) -> str:
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


def _is_iso_date(value: object) -> bool:
    if not isinstance(value, str):
        return False
    if value == "":
        return True
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        return False
    return True


def _is_unit_spec(value: object) -> bool:
    if not isinstance(value, str):
        return False
    kind, _, arg = value.partition(":")
    if kind == "h3":
        return arg == "" or (arg.isdigit() and 5 <= int(arg) <= 10)
    return value in ("rd", "division") or Path(value).expanduser().is_file()


_MEASURES = ("severity", "count", "harm", "rate")

#: (test, expected type in words) of every setting; the words go into the error message.
RUN_SCHEMA: dict[str, tuple] = {
    "name": (lambda v: isinstance(v, str), "a name of letters, digits, '_' and '-'"),
    "inputs": (
        lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
        "a list of file, folder or glob strings",
    ),
    "outputs": (lambda v: isinstance(v, str | Path), "a folder path string"),
    "negative_age": (lambda v: v in ("null", "abs"), "'null' or 'abs'"),
    "coverage_threshold": (
        lambda v: isinstance(v, int | float) and not isinstance(v, bool) and 0 < v < 1,
        "a number between 0 and 1",
    ),
    "permutations": (lambda v: _is_int(v) and 0 <= v <= 99_999, "an integer from 0 to 99999"),
    "seed": (_is_int, "an integer"),
    "k_anonymity": (lambda v: _is_int(v) and 0 <= v <= 1_000, "an integer from 0 to 1000"),
    "offline_map": (lambda v: isinstance(v, bool), "true or false"),
    "cache": (lambda v: isinstance(v, bool), "true or false"),
    "min_date": (_is_iso_date, 'an ISO date such as "2010-01-01", or "" for none'),
}

STUDY_SCHEMA: dict[str, tuple] = {
    "name": (lambda v: isinstance(v, str), "a name of letters, digits, '_' and '-'"),
    "areas": (
        lambda v: isinstance(v, list) and all(_is_int(a) and 1 <= a <= 21 for a in v),
        "a list of LAPD division numbers 1-21, e.g. [8]",
    ),
    "start": (_is_iso_date, 'an ISO date such as "2024-01-01"'),
    "end": (_is_iso_date, 'an ISO date such as "2024-10-01"'),
    "units": (
        lambda v: isinstance(v, list) and len(v) > 0 and all(_is_unit_spec(u) for u in v),
        "a list of unit specs: h3:5 .. h3:10, rd, division or an existing polygon file",
    ),
    "freq": (lambda v: v in ("D", "W", "M"), "'D', 'W' or 'M'"),
    "measure": (
        lambda v: isinstance(v, str) and (v in _MEASURES or v.startswith("cat:")),
        "'severity', 'count', 'harm', 'rate' or 'cat:<category>'",
    ),
    "statistics": (
        lambda v: isinstance(v, list) and all(s in ("moran", "lisa", "gi", "emerging") for s in v),
        "a list of 'moran', 'lisa', 'gi', 'emerging'",
    ),
    "forecast": (lambda v: isinstance(v, bool), "true or false"),
}


def _checked(section: dict, schema: dict[str, tuple], where: str) -> dict:
    """``section`` after checking each key against ``schema``: one error naming the problem."""
    unknown = sorted(set(section) - set(schema))
    if unknown:
        raise ConfigError(f"{where}: unknown setting(s) {unknown}; known: {sorted(schema)}")
    for key, value in section.items():
        test, expected = schema[key]
        if not test(value):
            raise ConfigError(
                f"{where}: {key} must be {expected}, got {value!r} ({type(value).__name__})"
            )
        if key == "name":
            _check_name(value, "study name" if "study" in where else "run name")
    if section.get("start") and section.get("end") and section["start"] >= section["end"]:
        raise ConfigError(f"{where}: start {section['start']} is not before end {section['end']}")
    return dict(section)


@dataclass
class RunResult:
    """What a run produced."""

    folder: Path
    files: list[Path] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    summaries: dict[str, dict] = field(default_factory=dict)


def select_incidents(incidents: pd.DataFrame, study: StudySettings) -> pd.DataFrame:
    """The incidents of one study (divisions and date range)."""
    keep = pd.Series(True, index=incidents.index)
    if study.areas:
        keep &= incidents["area"].isin(study.areas)
    if study.start:
        keep &= incidents["occurred_at"] >= pd.Timestamp(study.start)
    if study.end:
        keep &= incidents["occurred_at"] < pd.Timestamp(study.end)
    return incidents.loc[keep]


def run_pipeline(settings: RunSettings, *, console: Console | None = None) -> RunResult:
    """Run every stage for ``settings`` and write the outputs.

    The run writes into a staging folder beside its final one
    (``outputs/.<name>.incomplete-<pid>/``, holding an ``INCOMPLETE`` marker) and renames it to
    ``outputs/<name>/`` only when every stage has finished, replacing an older run of the same
    name then. A failed or killed run therefore never leaves ``outputs/<name>/`` half-written;
    its staging folder is removed on failure (a killed run leaves it, clearly named).

    Parameters
    ----------
    settings
        The run settings.
    console
        Where progress goes (stderr by default).

    Returns
    -------
    RunResult
        The output folder, the files written and per-stage timings.

    Raises
    ------
    ConfigError
        The outputs folder is inside the data folder, holds an input, or cannot be written.
    """
    import os
    import shutil

    from geo_crime.config import default_crime_inputs
    from geo_crime.ingest import expand_inputs
    from geo_crime.io_utils import check_output_path

    console = console or Console(stderr=True)
    _check_name(settings.name, "run name")
    for study in settings.studies:
        _check_name(study.name, "study name")
    inputs = settings.inputs or [str(p) for p in default_crime_inputs()]
    files = expand_inputs(inputs)
    outputs = check_output_path(settings.outputs, inputs=files, folder=True)
    final = outputs / settings.name
    check_output_path(final, inputs=files, folder=True)
    outputs.mkdir(parents=True, exist_ok=True)
    staging = outputs / f".{settings.name}.incomplete-{os.getpid()}"
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir()
    (staging / "INCOMPLETE").write_text(
        "This run did not finish: its outputs are incomplete and must not be used.\n",
        encoding="utf-8",
    )
    try:
        result = _run_stages(settings, files, staging, console)
        (staging / "INCOMPLETE").unlink()
        old = outputs / f".{settings.name}.replaced-{os.getpid()}"
        if final.exists():
            os.replace(final, old)
        os.replace(staging, final)
        if old.exists():
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    result.folder = final
    result.files = [final / p.relative_to(staging) for p in result.files]
    return result


def _run_stages(settings: RunSettings, files: list[Path], folder: Path, console) -> RunResult:
    """Every stage of a run, writing into ``folder`` (the staging folder)."""
    from geo_crime.coverage import check_coverage
    from geo_crime.ingest import load_incidents
    from geo_crime.io_utils import atomic_path, atomic_write_text
    from geo_crime.report import build_report

    result = RunResult(folder)

    def stage(label: str) -> _Stage:
        return _Stage(label, result, console)

    with stage("ingest"):
        incidents, cleaning = load_incidents(
            files,
            negative_age=settings.negative_age,
            cache=settings.cache,
            min_occurred_date=settings.min_date or None,
        )
        path = folder / "analysis" / "incidents.parquet"
        with atomic_path(path) as tmp:
            incidents.to_parquet(tmp, index=False)
        result.files.append(path)
        result.files.append(cleaning.write_json(folder / "cleaning_report.json"))
        # victim-level rows stay in analysis/; only aggregated layers go to public/
        atomic_write_text(folder / "analysis" / "README.txt", ANALYSIS_NOTE)

    with stage("division check"):
        from geo_crime.units import incidents_outside_division

        division_check = incidents_outside_division(incidents)
        result.summaries["division_check"] = division_check.to_dict()

    with stage("coverage"):
        coverage = check_coverage(incidents, freq="M", threshold=settings.coverage_threshold)
        coverage_by_freq = {"M": coverage}
        for freq in sorted({s.freq.upper()[:1] for s in settings.studies} - {"M"}):
            coverage_by_freq[freq] = check_coverage(
                incidents, freq=freq, threshold=settings.coverage_threshold
            )
        for freq, judged in coverage_by_freq.items():
            path = folder / ("coverage.csv" if freq == "M" else f"coverage_{freq}.csv")
            with atomic_path(path) as tmp:
                judged.table.to_csv(tmp, index=False)
            result.files.append(path)

    shared = _SharedLayers(incidents)
    sections = []
    for study in settings.studies:
        study_coverage = coverage_by_freq[study.freq.upper()[:1]]
        study_result = _run_study(study, incidents, study_coverage, settings, folder, stage, shared)
        result.files.extend(study_result.files)
        result.summaries[study.name] = study_result.summary
        sections.append(study_result.markdown)

    with stage("report"):
        from geo_crime.report import markdown_to_html

        text = build_report(
            incidents=incidents,
            cleaning=cleaning,
            coverage=coverage,
            inputs=files,
            sections=sections,
            division_check=division_check,
        )
        result.files.append(atomic_write_text(folder / "report.md", text))
        result.files.append(
            atomic_write_text(
                folder / "summary.json", json.dumps(result.summaries, indent=2, default=str)
            )
        )
        # only the figures this run wrote are embedded, whatever a path in the text says
        figures = {p for p in result.files if p.suffix == ".png"}
        html = markdown_to_html(
            text, base=folder, title=f"geo_crime run {settings.name}", images=figures
        )
        result.files.append(atomic_write_text(folder / "report.html", html))
    result.files = list(dict.fromkeys(result.files))
    return result


class _SharedLayers:
    """Layers every study of a run uses, built once: divisions and reporting districts.

    The reporting districts come from all incidents (derived when no official layer is cached)
    and carry population; each study keeps the districts of its own divisions.
    """

    def __init__(self, incidents: pd.DataFrame) -> None:
        self.incidents = incidents
        self._divisions = None
        self._rds = None

    @property
    def divisions(self):
        if self._divisions is None:
            from geo_crime.units import division_units

            self._divisions = division_units()
        return self._divisions

    def rds(self, areas: list[int]):
        """Reporting districts (of ``areas`` when given)."""
        if self._rds is None:
            from geo_crime.units import make_units

            self._rds = make_units("rd", self.incidents)
        return _in_areas(self._rds, areas)


def _in_areas(units, areas: list[int]):
    """Units of the given divisions (all when ``areas`` is empty), attrs kept."""
    if not areas or "area" not in units:
        return units
    kept = units[units["area"].isin(areas)].reset_index(drop=True)
    kept.attrs.update(units.attrs)
    return kept


@dataclass
class _StudyResult:
    summary: dict
    markdown: str
    files: list[Path] = field(default_factory=list)


def _run_study(study, incidents, coverage, settings, folder, stage, shared) -> _StudyResult:
    """Units, cube, statistics (and forecasts, maps, exports) for one study."""
    from geo_crime.cube import build_cube
    from geo_crime.privacy import cube_disclosure
    from geo_crime.io_utils import write_table
    from geo_crime.stats import run_statistic
    from geo_crime.units import assign_units, covered_divisions, footprint_note, make_units

    study_folder = folder / "analysis" / study.name
    public_folder = folder / "public" / study.name
    study_folder.mkdir(parents=True, exist_ok=True)
    public_folder.mkdir(parents=True, exist_ok=True)
    chosen = select_incidents(incidents, study)
    # the study area is where the data is: the divisions asked for, else those the rows cover
    covered = covered_divisions(chosen)
    areas = list(study.areas) or covered
    all_divisions = sorted(areas) == list(range(1, 22))
    summary: dict = {
        "settings": asdict(study),
        "incidents": int(len(chosen)),
        "divisions": areas,
        "units": {},
    }
    written: list[Path] = []
    lines = [f"## Study {md_code(study.name)}", ""]
    where = (
        "all 21 LAPD divisions"
        if all_divisions
        else f"LAPD division(s) {', '.join(map(str, areas))}"
        + ("" if study.areas else " (the divisions the data covers)")
    )
    lines.append(
        f"{len(chosen):,} incidents in {where}"
        + (f", {study.start} to {study.end}" if study.start or study.end else "")
        + f"; periods: {FREQUENCIES.get(study.freq, study.freq)}s; measure: {study.measure}."
    )
    lines.append("")
    outlines = _in_areas(shared.divisions, areas)
    area_polygon = "city" if all_divisions else outlines.union_all()
    rd_outlines = shared.rds(areas)
    for spec in study.units:
        label = unit_label(spec)
        with stage(f"{study.name}: units {spec}"):
            if spec.startswith("h3"):
                units = make_units(spec, chosen, study_area=area_polygon)
            elif spec.startswith("rd"):
                units = rd_outlines
            else:
                units = _in_areas(make_units(spec, incidents, study_area="city"), areas)
            units.attrs["study_area"] = where
            places = division_of_units(units, shared.divisions)
            unit_ids, assignment = assign_units(chosen, units)
            # make_units has judged H3 cells against the study's rows already
            footprint = (
                units.attrs.get("footprint_note")
                if spec.startswith("h3")
                else footprint_note(units, chosen, covered=covered)
            )
        with stage(f"{study.name}: cube {spec}"):
            cube = build_cube(
                chosen,
                units,
                unit_ids,
                freq=study.freq,
                coverage=coverage,
                start=study.start or None,
                end=(pd.Timestamp(study.end) - pd.Timedelta(days=1)) if study.end else None,
            )
            cube.meta["assignment"] = assignment.to_dict()
            written.append(cube.save(study_folder / f"cube_{label}.parquet"))
        # who is suppressed in public outputs: decided once, used by every public artefact
        summary_table, suppressed = cube_disclosure(cube, settings.k_anonymity)
        unit_summary: dict = {
            "suppressed_units": int(suppressed.sum()),
            "footprint_note": footprint,
            "units": int(len(units)),
            "periods": int(len(cube.periods)),
            "complete_periods": int((cube.period_complete_share() == 1).sum()),
            "assignment": assignment.to_dict(),
            "approximate": bool(units.attrs.get("approximate", False)),
            "statistics": {},
        }
        tables = {}
        with stage(f"{study.name}: statistics {spec}"):
            from geo_crime.weights import build_weights

            weights = build_weights(units)
            for stat in study.statistics:
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    try:
                        outcome = run_statistic(
                            cube,
                            stat,
                            measure=study.measure,
                            permutations=settings.permutations,
                            seed=settings.seed,
                            weights=weights,
                        )
                    except DataError as exc:  # too little complete data: say so, go on
                        unit_summary["statistics"][stat] = {"not_computed": str(exc)}
                        continue
                tables[stat] = outcome
                stat_summary = dict(outcome.summary)
                stat_summary["warnings"] = [str(w.message) for w in caught]
                unit_summary["statistics"][stat] = stat_summary
                path = study_folder / f"{stat}_{label}.parquet"
                write_table(outcome.table, path)
                written.append(path)
        forecast_table = None
        lines_forecast: list[str] = []
        if study.forecast:
            with stage(f"{study.name}: forecast {spec}"):
                try:
                    result_forecast = _forecast(
                        cube,
                        label,
                        public_folder,
                        study_folder,
                        settings,
                        chosen["occurred_at"].max(),
                        suppressed,
                    )
                except DataError as exc:
                    unit_summary["forecast"] = {"not_computed": str(exc)}
                    lines_forecast = [
                        f"#### Forecast and recommendations ({md_code(spec)})",
                        "",
                        f"No forecast: {exc}.",
                        "",
                    ]
                else:
                    forecast_table, backtest, files = result_forecast
                    written.extend(files)
                    unit_summary["forecast"] = backtest
                    lines_forecast = _forecast_markdown(
                        spec, cube, units, forecast_table, backtest, label, divisions=places
                    )
        with stage(f"{study.name}: maps, exports, figures {spec}"):
            public = _publish(
                spec,
                label,
                cube,
                units,
                tables,
                outlines,
                rd_outlines,
                public_folder,
                settings,
                forecast=forecast_table,
                summary_table=summary_table,
                suppressed=suppressed,
            )
            written.extend(public)
            unit_summary["public_files"] = [p.relative_to(folder).as_posix() for p in public]
        summary["units"][spec] = unit_summary
        lines.extend(
            _statistics_markdown(
                spec,
                cube,
                units,
                unit_summary,
                tables,
                settings.k_anonymity,
                suppressed,
                divisions=places,
            )
        )
        lines.extend(lines_forecast)
        figures = [Path(p) for p in unit_summary.get("public_files", []) if p.endswith(".png")]
        if figures:
            lines.append(f"Figures ({md_code(spec)}):")
            lines.append("")
            for figure in figures:
                lines.append(f"![{figure.stem.replace('_', ' ')}]({figure.as_posix()})")
            lines.append("")
    return _StudyResult(summary, "\n".join(lines), written)


def _forecast(cube, label, folder, analysis_folder, settings, data_end, suppressed):
    """Backtest (fast configuration) and a dated next-period forecast for one cube.

    The full forecast table goes to ``analysis_folder``; the public one (in ``folder``) has no
    prediction for suppressed units. The returned table is the public one.
    """
    import dataclasses

    from geo_crime.privacy import public_tables
    from geo_crime.forecast import FAST_CONFIG, evaluate, predict_next, train, write_forecast_report

    config = dataclasses.replace(FAST_CONFIG, target="severity")
    result = evaluate(
        cube, n_origins=8, refit_every=4, config=config, seed=settings.seed, name=label
    )
    files = write_forecast_report(result, folder / f"forecast_{label}")
    origin = forecast_origin(cube, data_end=data_end)
    recent = cube.select_periods(slice(0, origin.index + 1))
    model = train(recent, config=config, seed=settings.seed)
    table = predict_next(model, recent)
    table.insert(2, "last_complete_period", str(origin.period.date()))
    table.insert(3, "data_end", str(pd.Timestamp(data_end).date()))
    from geo_crime.io_utils import atomic_path

    public = public_tables({"forecast": table}, suppressed)["forecast"]
    for frame, path in (
        (table, analysis_folder / f"next_period_forecast_{label}.csv"),
        (public, folder / f"forecast_{label}" / "next_period_forecast.csv"),
    ):
        with atomic_path(path) as tmp:
            frame.to_csv(tmp, index=False)
        files.append(path)
    table = public
    metrics = result.metrics
    summary = {
        "origins": [str(o.date()) for o in result.origins],
        "metrics": metrics.astype(float).round(4).to_dict(orient="index"),
        "scope": result.scope,
        "verdicts": result.verdicts(),
        "notes": result.notes,
        "next_period": str(pd.Timestamp(table["period"].iloc[0]).date()) if len(table) else "",
        "last_complete_period": str(origin.period.date()),
        "complete_share_at_origin": round(origin.share, 4),
        "data_end": str(pd.Timestamp(data_end).date()),
        "why_not_data_end": origin.reason,
    }
    return table, summary, files


@dataclass
class ForecastOrigin:
    """The period a next-period forecast starts from, and why it is not the last one."""

    index: int
    period: pd.Timestamp
    share: float
    reason: str


def forecast_origin(cube, *, min_share: float = 0.5, data_end=None) -> ForecastOrigin:
    """The last period complete for most units: where a trustworthy forecast can start.

    Parameters
    ----------
    cube : geo_crime.cube.Cube
        The study's cube (with its coverage mask).
    min_share : float, default 0.5
        Share of the units that must be completely recorded in the origin period (the same
        rule as the backtest's origins); when no period reaches it, the most complete one.
    data_end : timestamp, optional
        The last occurrence date of the study's data, to tell a period cut off by the end of
        the data from one recorded too thinly.

    Returns
    -------
    ForecastOrigin
        Its column, start, complete share and, when later periods exist, why they were not used.
    """
    share = cube.period_complete_share()
    if not len(share):
        raise ConfigError("the cube has no period to forecast from")
    good = np.flatnonzero(share >= min_share)
    index = int(good[-1]) if len(good) else int(np.flatnonzero(share >= share.max())[-1])
    word = FREQUENCIES.get(cube.freq, "period")
    later = len(share) - 1 - index
    reasons = []
    last_start = cube.periods[-1]
    cut_off = data_end is not None and pd.Timestamp(data_end) < _period_end(last_start, cube.freq)
    thin = later - (1 if cut_off else 0)
    if thin > 0:
        reasons.append(
            f"{'the' if thin > 1 else 'the one'} {thin} {word}{'s' if thin > 1 else ''} after "
            f"it {'are' if thin > 1 else 'is'} completely recorded for fewer than "
            f"{min_share:.0%} of the units (a recording break, such as the March 2024 "
            "records-system change, would read as a crime drop)"
        )
    if cut_off:
        reasons.append(
            f"the {word} starting {last_start.date()} is cut off by the end of the data "
            f"({pd.Timestamp(data_end).date()}), so it is not a whole {word}"
        )
    reason = "; and ".join(reasons)
    return ForecastOrigin(index, cube.periods[index], float(share[index]), reason)


def _period_end(start: pd.Timestamp, freq: str) -> pd.Timestamp:
    """The last day of the period starting at ``start``."""
    days = {"D": 0, "W": 6}.get(freq)
    if days is not None:
        return start + pd.Timedelta(days=days)
    return start + pd.offsets.MonthEnd(0)


#: Units with fewer residents are left out of the rate ranking of the report.
RANKING_MIN_RESIDENTS = 100

#: Classes of the severity rate on maps and figures (the rate is heavily skewed: quintiles).
RATE_SCHEME = "quantiles"


def _fmt_metric(value) -> str:
    """A metric for a report table: two decimals, or 'n/r' where it is not reported."""
    return "n/r" if value is None or pd.isna(value) else f"{float(value):.2f}"


def _scope_lines(backtest: dict, units) -> list[str]:
    """What a backtest scored, in words, for the line under its metric table."""
    scope = backtest.get("scope") or {}
    per_origin = scope.get("scored_units_per_origin") or []
    if not per_origin:
        return []
    n_units = scope.get("n_units", len(units))
    low, high = min(per_origin), max(per_origin)
    span = f"{low:,}" if low == high else f"{low:,}-{high:,}"
    share_low = low / n_units if n_units else 0.0
    scored = scope.get("scored_divisions") or []
    study = scope.get("study_divisions") or []
    divisions = (
        f" in {len(scored)} of the study's {len(study)} divisions"
        + (f" ({', '.join(map(str, scored))})" if 0 < len(scored) <= 6 else "")
        if study
        else ""
    )
    lines = [
        f"**Scored:** {span} of the {n_units:,} units per origin ({share_low:.0%} at the "
        f"fewest){divisions}, over {len(per_origin)} origins "
        f"({backtest['origins'][0]} to {backtest['origins'][-1]}); only units whose target and "
        "history are completely recorded are scored, the same cells for every model.",
        "",
    ]
    if not scope.get("covers_study_area", False):
        area = "city-wide" if len(study) == 21 else "study-area-wide"
        lines += [
            f"**This backtest is not {area}:** fewer than 50% of the study's units could be "
            "scored at some origin, so its errors and PAI describe the scored units only.",
            "",
        ]
    not_reported = [k for k in (1, 5, 10) if k / 100 not in scope.get("pai_reported", [])]
    if not_reported:
        lines += [
            "PAI@" + "%, PAI@".join(map(str, not_reported)) + "% not reported (n/r): that "
            "share of the scored area holds fewer than 5 units.",
            "",
        ]
    return lines


def division_of_units(units, divisions) -> pd.Series:
    """Each unit's LAPD division by name (``"West Los Angeles"``), indexed by ``unit_id``.

    Parameters
    ----------
    units : geopandas.GeoDataFrame
        Units with an ``area`` (division number) column.
    divisions : geopandas.GeoDataFrame
        :func:`geo_crime.units.division_units` (``area``, ``name`` in capitals).

    Returns
    -------
    pandas.Series
        Title-case names; empty where a unit has no division.
    """
    names = {
        int(a): string.capwords(str(n).lower())
        for a, n in zip(divisions["area"], divisions["name"], strict=True)
    }
    areas = units["area"] if "area" in units else pd.Series(pd.NA, index=units.index)
    labels = [names.get(int(a), "") if pd.notna(a) else "" for a in areas]
    return pd.Series(labels, index=units["unit_id"].astype(str).to_numpy())


def _place(divisions: pd.Series | None, unit_id: object) -> str:
    """The division cell of a report table row."""
    return md_text(divisions.get(str(unit_id), "")) if divisions is not None else ""


def _forecast_markdown(
    spec, cube, units, table, backtest, label, divisions: pd.Series | None = None
) -> list[str]:
    """Forecast accuracy and resource-allocation recommendations for one unit type."""
    metrics = pd.DataFrame(backtest["metrics"]).T
    lines = [f"#### Forecast and recommendations ({md_code(spec)})", ""]
    if metrics.empty or "keras" not in metrics.index:
        return [*lines, "Too few complete periods for a backtest.", ""]
    word = FREQUENCIES.get(cube.freq, "period")
    lines.append(
        f"Backtest of next-{word} severity (severity points per unit per {word}) over "
        f"{len(backtest['origins'])} rolling origins (expanding window, fast configuration, "
        "incomplete periods excluded); lower MAE is better. PAI@k is the share of next-period "
        "severity in the top k% of the scored area chosen by the model, divided by k%. "
        "Coverage 80% is the share of actual values inside the model's 80% interval (0.80 is "
        "right; lower means the intervals are too narrow)."
    )
    lines.append("")
    lines.append("| model | MAE | RMSE | Poisson dev. | PAI@1% | PAI@5% | PAI@10% | coverage 80% |")
    lines.append("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, row in metrics.sort_values("mae").iterrows():
        lines.append(
            f"| {name} | {row['mae']:.2f} | {row['rmse']:.2f} | {row['poisson_deviance']:.2f} | "
            f"{_fmt_metric(row.get('pai_1'))} | {_fmt_metric(row.get('pai_5'))} | "
            f"{_fmt_metric(row.get('pai_10'))} | {_fmt_metric(row.get('coverage_80'))} |"
        )
    lines.append("")
    lines.extend(_scope_lines(backtest, units))
    for verdict in backtest.get("verdicts", []):
        lines.append(f"- {verdict}")
    lines.append(
        "- Where a simple baseline does as well, prefer it: it is cheaper and easier to explain."
    )
    lines.append("")
    keras = metrics.loc["keras"]
    reported = [k for k in (1, 5, 10) if pd.notna(keras.get(f"pai_{k}"))]
    if reported:
        shares = ", ".join(
            f"top {k}% of the scored area holds {keras[f'pai_{k}'] * k:.0f}% of next-{word} "
            "severity"
            for k in reported
        )
        lines.append(
            f"Harm captured by targeting with the Keras forecast (backtest, scored units only): "
            f"{shares}."
        )
        lines.append("")
    # ranked units for the next period, overall and by division
    ranked = table.merge(
        units[["unit_id", "area"]] if "area" in units else units[["unit_id"]],
        on="unit_id",
        how="left",
    ).sort_values("prediction", ascending=False)
    period = backtest.get("next_period", "")
    last = backtest.get("last_complete_period", "")
    data_end = backtest.get("data_end", "")
    lines.append(
        f"**Forecast period: the {word} starting {period}**, forecast from data up to the "
        f"{word} starting {last} (the last {word} completely recorded for "
        f"{backtest.get('complete_share_at_origin', 0):.0%} of the units). The data runs to "
        f"{data_end}."
        + (
            " The forecast does not start from the end of the data because "
            f"{backtest['why_not_data_end']}."
            if backtest.get("why_not_data_end")
            else ""
        )
        + f" So this is a forecast of what would have been recorded in that {word}, not of "
        "today."
    )
    lines.append("")
    lines.append(
        f"Units with the highest forecast severity (severity points in the {word} starting "
        f"{period}; 80% interval in brackets):"
    )
    lines.append("")
    lines.append("| rank | unit | division | forecast | interval |")
    lines.append("| --- | --- | --- | --- | --- |")
    for rank, row in enumerate(ranked.head(10).itertuples(index=False), start=1):
        division = "" if "area" not in ranked or pd.isna(row.area) else int(row.area)
        if divisions is not None and division != "":
            division = f"{_place(divisions, row.unit_id)} ({division})"
        lower = getattr(row, "lower", float("nan"))
        upper = getattr(row, "upper", float("nan"))
        interval = "" if pd.isna(lower) else f"{lower:.0f}-{upper:.0f}"
        lines.append(
            f"| {rank} | {md_text(row.unit_id)} | {division} | {row.prediction:.0f} | {interval} |"
        )
    lines.append("")
    n_forecast = int(ranked["prediction"].notna().sum())
    hidden = int(ranked["suppressed"].sum()) if "suppressed" in ranked else 0
    if n_forecast < len(ranked):
        lines.append(
            f"{n_forecast:,} of the {len(ranked):,} units have a published forecast; "
            f"{hidden:,} are suppressed (fewer than the threshold of incidents), and the other "
            f"{len(ranked) - n_forecast - hidden:,} lie in divisions whose recent {word}s are not "
            "completely recorded, so no model can be trusted there."
        )
        lines.append("")
    ranked = ranked.dropna(subset=["prediction"])
    if "area" in ranked and ranked["area"].notna().any():
        by_division = ranked.dropna(subset=["area"]).groupby("area")
        lines.append(
            "By division: the units to prioritise first (the top 10% of each "
            "division's units by forecast) and the share of the division's forecast "
            f"severity for the {word} starting {period} they hold:"
        )
        lines.append("")
        lines.append(
            "| division | units with a forecast | top units | share of forecast severity |"
        )
        lines.append("| --- | --- | --- | --- |")
        for area, group in by_division:
            k = max(1, int(np.ceil(0.1 * len(group))))
            top = group.head(k)
            total = group["prediction"].sum()
            share = top["prediction"].sum() / total if total > 0 else float("nan")
            names = ", ".join(md_text(u) for u in top["unit_id"].head(3))
            names += " ..." if k > 3 else ""
            name = _place(divisions, group["unit_id"].iloc[0])
            division = f"{name} ({int(area)})" if name else str(int(area))
            lines.append(f"| {division} | {len(group)} | {names} | {share:.0%} |")
        lines.append("")
    lines.append(
        "Recommendation: direct prevention resources (street lighting, outreach, victim services, "
        "problem-oriented projects) as well as patrol time to the ranked units, review the list "
        "each period, and weigh it against where residents ask for help: forecasts built from "
        "recorded crime follow where police already look."
    )
    lines.append("")
    return lines


def _publish(
    spec,
    label,
    cube,
    units,
    tables,
    outlines,
    rd_outlines,
    folder,
    settings,
    *,
    forecast,
    summary_table,
    suppressed,
) -> list[Path]:
    """The public outputs of one unit type: map, GIS layers, figures (aggregates only).

    Every table passes :func:`geo_crime.privacy.public_tables` first: suppressed units are
    blank everywhere, and statistics are published as classes, not as solvable numbers.
    """
    from geo_crime.privacy import publishable
    from geo_crime.export import export_layers
    from geo_crime.figures import write_figures
    from geo_crime.maps import MapLayers, write_map

    # one rate (the summary's severity_rate) for the map, tooltips, figure, GIS layers, report
    public = publishable(
        summary_table,
        suppressed,
        statistics={stat: outcome.table for stat, outcome in tables.items()},
        forecast=forecast,
    )
    forecast_label = ""
    if forecast is not None and len(forecast):
        forecast_label = (
            f"{FREQUENCIES.get(cube.freq, 'period')} starting "
            f"{pd.Timestamp(forecast['period'].iloc[0]).date()}"
        )
    layers = MapLayers.from_cube(
        cube,
        gi=public.get("gi"),
        lisa=public.get("lisa"),
        emerging=public.get("emerging"),
        forecast=public.get("forecast"),
        divisions=outlines,
        rds=rd_outlines,
        forecast_period=forecast_label,
    )
    layers.units["suppressed"] = hidden_mask(suppressed, layers.units["unit_id"])
    files = [
        write_map(
            layers,
            folder / f"map_{label}.html",
            offline=settings.offline_map,
            k_anonymity=settings.k_anonymity,
            scheme=RATE_SCHEME,
        )
    ]
    export = {f"{label}_{kind}": table for kind, table in public.items()}
    files += export_layers(
        export,
        folder / "gis",
        k_anonymity=settings.k_anonymity,
        counts=summary_table.set_index("unit_id")["count"],
        gpkg_name=f"geo_crime_{label}.gpkg",
    )
    moran = tables["moran"].result if "moran" in tables else None
    files += write_figures(
        folder / f"figures_{label}",
        units=public["summary"],
        gi=public.get("gi"),
        lisa=public.get("lisa"),
        moran=moran,
        outlines=outlines,
        severity_column="severity_rate",
        severity_label=summary_table.attrs["severity_rate"],
        scheme=RATE_SCHEME,
        k_anonymity=settings.k_anonymity,
        public=True,
    )
    return files


def _top_rate_lines(
    cube, units, k: int = 10, k_anonymity: int = 3, suppressed=None, divisions=None
) -> list[str]:
    """Top units by the one severity rate (see :func:`geo_crime.rates.severity_rate`)."""
    from geo_crime.rates import severity_rate

    rate = severity_rate(cube, units)
    if rate.basis != "per 1,000 residents":
        return []
    complete = np.asarray(cube.complete, dtype=bool)
    counts = np.where(complete, cube.counts, 0).sum(axis=1)
    population = units["population"].to_numpy(dtype=float)
    table = pd.DataFrame(
        {
            "unit": units["unit_id"].to_numpy(),
            "residents": population,
            "incidents": counts,
            "raw": rate.raw,
            "smoothed": rate.values,
        }
    )
    undefined = int(np.isnan(rate.values).sum())
    # no rate where nobody lives; no unit below the suppression threshold; a ranking "per 1,000
    # residents" of places where a handful of people live would rank car parks and malls
    few = int((np.isfinite(table["smoothed"]) & (table["residents"] < RANKING_MIN_RESIDENTS)).sum())
    shown = (
        ~hidden_mask(suppressed, units["unit_id"])
        if suppressed is not None
        else np.ones(len(units), dtype=bool)
    )
    table = table[
        np.isfinite(table["smoothed"])
        & (table["incidents"] >= k_anonymity)
        & shown
        & (table["residents"] >= RANKING_MIN_RESIDENTS)
    ]
    top = table.sort_values("smoothed", ascending=False).head(k)
    word = FREQUENCIES.get(cube.freq, "period")
    lines = [
        f"Top units by {rate.label[0].lower()}{rate.label[1:]}: the severity of incidents in "
        f"the unit's completely recorded {word}s, divided by the number of those {word}s and by "
        "its residents, then Empirical Bayes smoothed so that units with few residents do not "
        f"top the list by chance. {undefined:,} of {len(units):,} units have no residents (or "
        f"no complete period) and no rate; {few:,} units with fewer than "
        f"{RANKING_MIN_RESIDENTS} residents (they keep their rate on the map) and suppressed "
        f"units (fewer than {k_anonymity} incidents) are left out of this ranking. This is the "
        "rate the "
        "maps, figures and GIS "
        "layers show. Residents are not the people exposed: places with many visitors and few "
        "residents (the airport, downtown, parks) rank high on any residential rate.",
        "",
        f"| unit |{' division |' if divisions is not None else ''} residents | "
        f"incidents (complete {word}s) | raw rate | EB-smoothed rate |",
        "| --- |" + (" --- |" if divisions is not None else "") + " --- | --- | --- | --- |",
    ]
    for row in top.itertuples(index=False):
        place = f" {_place(divisions, row.unit)} |" if divisions is not None else ""
        lines.append(
            f"| {md_text(row.unit)} |{place} {row.residents:,.0f} | {row.incidents:,} | "
            f"{row.raw:.2f} | {row.smoothed:.2f} |"
        )
    lines.append("")
    return lines


def _statistics_markdown(
    spec, cube, units, unit_summary, tables, k_anonymity, suppressed=None, divisions=None
) -> list[str]:
    """Report lines for one unit type of a study."""
    lines = [f"### Units {md_code(spec)}", ""]
    approx = (
        " (approximate boundaries derived from incident points)"
        if unit_summary["approximate"]
        else ""
    )
    word = FREQUENCIES.get(cube.freq, "period")
    covered = units.attrs.get("study_area", "")
    lines.append(
        f"{unit_summary['units']:,} units{approx}"
        + (f" covering {covered}" if covered else "")
        + f"; {unit_summary['periods']} {word}s, {unit_summary['complete_periods']} of them "
        f"completely recorded for every unit (the hot spot statistics use those {word}s only). "
        f"Incidents outside the units: {unit_summary['assignment']['outside']:,}."
    )
    lines.append("")
    if unit_summary.get("footprint_note"):
        lines.append(f"**Caution:** {unit_summary['footprint_note']}.")
        lines.append("")
    stats = {k: v for k, v in unit_summary["statistics"].items() if "not_computed" not in v}
    names = {"moran": "Moran's I", "lisa": "LISA", "gi": "Gi*", "emerging": "Emerging hot spots"}
    for stat, value in unit_summary["statistics"].items():
        if "not_computed" in value:
            lines.append(f"- {names.get(stat, stat)}: not computed ({value['not_computed']}).")
    if "moran" in stats:
        m = stats["moran"]
        lines.append(
            f"- Global Moran's I = {m['I']:.3f} (z = {m['z_norm']:.1f}, permutation p = "
            f"{m['p_sim']:.3f}): harm {'clusters' if m['I'] > 0 else 'disperses'} in space."
        )
    if "gi" in stats:
        bins = stats["gi"]["bins"]
        hot = sum(v for k, v in bins.items() if k.startswith("Hot"))
        cold = sum(v for k, v in bins.items() if k.startswith("Cold"))
        lines.append(
            f"- Getis-Ord Gi*: {hot} hot-spot units and {cold} cold-spot units at 90% "
            "confidence or more."
            + (
                " No cold spot does not mean no quiet area: where most units record "
                "little or nothing, a neighbourhood cannot fall significantly below the mean "
                "(Gi* is asymmetric on skewed counts)."
                if hot and not cold
                else ""
            )
        )
    if "lisa" in stats:
        clusters = stats["lisa"]["clusters"]
        lines.append("- LISA clusters: " + ", ".join(f"{k} {v}" for k, v in clusters.items()))
    if "emerging" in stats:
        e = stats["emerging"]
        cats = ", ".join(f"{k} {v}" for k, v in e["categories"].items())
        lines.append(
            f"- Emerging hot spots over {e['periods']} complete periods "
            f"({e['first_period']} to {e['last_period']}): {cats}."
        )
        for w in e.get("warnings", []):
            lines.append(f"  - Caution: {w}.")
    lines.append("")
    lines.extend(
        _top_rate_lines(
            cube, units, k_anonymity=k_anonymity, suppressed=suppressed, divisions=divisions
        )
    )
    if "gi" in tables:
        gi = tables["gi"].table
        if suppressed is not None:
            gi = gi[~hidden_mask(suppressed, gi["unit_id"])]
        top = gi.sort_values("gi_z", ascending=False).head(10)
        lines.append(
            "Top units by Gi* z-score (suppressed units left out; z to one decimal, as "
            "exact z-scores of many units could be solved for suppressed values):"
        )
        lines.append("")
        lines.append("| unit | division | Gi* z | class |")
        lines.append("| --- | --- | --- | --- |")
        for row in top.itertuples():
            lines.append(
                f"| {md_text(row.unit_id)} | {_place(divisions, row.unit_id)} | {row.gi_z:.1f} | "
                f"{row.gi_label} |"
            )
        lines.append("")
    return lines


class _Stage:
    """Times a stage and prints one progress line for it."""

    def __init__(self, label: str, result: RunResult, console: Console) -> None:
        self.label, self.result, self.console = label, result, console

    def __enter__(self) -> _Stage:
        self.start = time.perf_counter()
        self.console.print(f"[bold]{self.label}[/bold] ...")
        return self

    def __exit__(self, *exc: object) -> None:
        elapsed = time.perf_counter() - self.start
        self.result.timings[self.label] = elapsed
        if exc[0] is None:
            self.console.print(f"  done in {elapsed:.1f} s")

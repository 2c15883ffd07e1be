"""Each study of a run, and each of its unit sets: units, cube, statistics, public outputs.

:func:`run_study` selects the study's rows and draws its trend figures; :func:`run_units` takes
one unit type through units -> cube -> analysis window -> statistics -> forecast
(:mod:`geo_crime.pipeline.forecasting`) -> public outputs (:mod:`geo_crime.publish.outputs`)
-> report lines and findings.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from geo_crime.core import progress
from geo_crime.core.errors import DataError
from geo_crime.core.io_utils import write_table
from geo_crime.core.lapd import spans_break
from geo_crime.core.periods import Freq
from geo_crime.core.schema import DIVISIONS
from geo_crime.cube.rates import attach_population
from geo_crime.pipeline.forecasting import forecast_units
from geo_crime.publish.figures.trends import study_figures
from geo_crime.publish.outputs import (
    RATE_SCHEME,
    public_cube,
    write_public_figures,
    write_public_layers,
    write_public_map,
)
from geo_crime.publish.places import profile_places, top_places
from geo_crime.publish.privacy import cube_disclosure
from geo_crime.record.breaks import HARMONISED_CATEGORIES
from geo_crime.report import study as report_study
from geo_crime.report.findings import unit_findings
from geo_crime.report.places import place_lines, profile_record
from geo_crime.settings import RunSettings, StudySettings
from geo_crime.stats.run import run_statistic
from geo_crime.stats.weights import build_weights
from geo_crime.units import (
    division_names,
    division_units,
    footprint_note,
    make_units,
    restrict_to_divisions,
)
from geo_crime.units.places import named_units
from geo_crime.units.spec import UnitKind, UnitSpec

if TYPE_CHECKING:
    import geopandas as gpd

    from geo_crime.cube.panel import Cube
    from geo_crime.engines import RunIncidents, StudyIncidents
    from geo_crime.pipeline.run import Stage
    from geo_crime.record.coverage import CoverageResult
    from geo_crime.stats.run import StatisticResult


class SharedLayers:
    """Layers every study of a run uses, built once: divisions and reporting districts.

    The reporting districts come from all incidents (derived when no official layer is cached)
    and carry population; each study keeps the districts of its own divisions.
    """

    def __init__(self, incidents: RunIncidents) -> None:
        self.incidents = incidents
        self._divisions = None
        self._rds = None

    @property
    def divisions(self) -> gpd.GeoDataFrame:
        if self._divisions is None:
            self._divisions = division_units()
        return self._divisions

    def rds(self, areas: list[int]) -> gpd.GeoDataFrame:
        """Reporting districts (of ``areas`` when given)."""
        if self._rds is None:
            self._rds = attach_population(make_units("rd", self.incidents.unit_input("rd")))
        return in_areas(self._rds, areas)


def in_areas(units: gpd.GeoDataFrame, areas: list[int]) -> gpd.GeoDataFrame:
    """Units of the given divisions (all when ``areas`` is empty), attrs kept."""

    return restrict_to_divisions(units, areas) if areas else units


@dataclass
class Run:
    """What every study of a run shares: its settings, staging folder, stage timer and layers."""

    settings: RunSettings
    folder: Path
    stage: Callable[[str], Stage]
    layers: SharedLayers
    data_end: str = ""  # the last occurrence day of all the run's rows


@dataclass
class Study:
    """One study being run: its settings, rows, coverage and where it sits."""

    settings: StudySettings
    incidents: StudyIncidents
    coverage: CoverageResult
    covered: list[int]
    areas: list[int]
    where: str
    analysis_folder: Path
    public_folder: Path
    outlines: gpd.GeoDataFrame  # the study's divisions
    rd_outlines: gpd.GeoDataFrame  # the study's reporting districts


@dataclass
class StudyResult:
    summary: dict
    markdown: str
    files: list[Path] = field(default_factory=list)


def run_study(
    study: StudySettings, incidents: RunIncidents, coverage: CoverageResult, run: Run
) -> StudyResult:
    """Units, cube, statistics (and forecasts, maps, exports) for one study."""
    chosen = incidents.study(study)
    if not chosen.tally.total:
        raise _empty_study(study, incidents)
    # the study area is where the data is: the divisions asked for, else those the rows cover
    covered = chosen.covered()
    areas = list(study.areas) or covered
    where = report_study.study_area_words(areas, chosen_by_data=not study.areas)
    current = Study(
        study,
        chosen,
        coverage,
        covered,
        areas,
        where,
        run.folder / "analysis" / study.name,
        run.folder / "public" / study.name,
        in_areas(run.layers.divisions, areas),
        run.layers.rds(areas),
    )
    current.analysis_folder.mkdir(parents=True, exist_ok=True)
    current.public_folder.mkdir(parents=True, exist_ok=True)
    summary: dict = {
        "settings": asdict(study),
        "incidents": int(chosen.tally.total),
        "divisions": areas,
        "units": {},
    }

    folder, divisions = current.public_folder / "figures", run.layers.divisions
    k = run.settings.k_anonymity
    written = study_figures(
        chosen.tally, coverage, folder, freq=study.freq, divisions=divisions, k_anonymity=k
    )
    lines = report_study.study_header(study, chosen.tally.total, where, k)
    lines += report_study.figure_lines(
        study.name, [p.relative_to(run.folder) for p in written], title="Trends and times"
    )
    for spec in study.units:
        unit_summary, unit_lines, files = run_units(spec, current, run)
        summary["units"][spec] = unit_summary
        lines.extend(unit_lines)
        written.extend(files)
    return StudyResult(summary, "\n".join(lines), written)


def _empty_study(study: StudySettings, incidents: RunIncidents) -> DataError:
    """The error for a study that selects no incident: its name, its window and the dates the
    run's incidents span (counted only for this message)."""
    sources = incidents.run_tally().sources
    span = "the run has no incidents"
    if len(sources):
        first, last = sources["first"].min().date(), sources["last"].max().date()
        span = f"the run's incidents occur from {first} to {last}"
    return DataError(
        f"study {study.name}: no incident falls in its window ({study.window_words()}); {span}"
    )


def run_units(spec: str, study: Study, run: Run) -> tuple[dict, list[str], list[Path]]:
    """One unit type of a study: units -> cube -> statistics -> forecast -> public outputs.

    Returns the unit type's summary, its report lines and the files written.
    """

    unit = UnitSpec.parse(spec)
    units, places, labels, footprint = _units(unit, study, run)
    with run.stage(f"{study.settings.name}: cube {spec}"):
        cube = _cube(units, study)
        written = [cube.save(study.analysis_folder / f"cube_{unit.label}.parquet")]
    # the analysis window: the periods completely recorded for every unit. Every statistic,
    # ranking, share, rate, map and figure of this unit set uses it; the forecasts alone read
    # each unit's own complete history (and say so)
    window = cube.complete_periods(min_share=study.settings.window_share)
    # who is suppressed in public outputs: decided once, on the window's counts (never fewer
    # units than on the whole cube), used by every public artefact
    summary_table, suppressed = cube_disclosure(window, run.settings.k_anonymity)
    unit_summary: dict = {
        "suppressed_units": int(suppressed.sum()),
        "footprint_note": footprint,
        "units": int(len(units)),
        "periods": int(len(cube.periods)),
        "complete_periods": int(len(window.periods)),
        "window": {**window.span(), "share": study.settings.window_share},
        "assignment": cube.meta["assignment"],
        "approximate": bool(units.attrs.get("approximate", False)),
        "statistics": {},
    }
    with run.stage(f"{study.settings.name}: statistics {spec}"):
        tables, files = _statistics(unit, cube, window, units, study, run, unit_summary)
        written += files
        unit_summary["places"] = _top_place_records(study, run, units, window, suppressed, labels)
    forecast_table, lines_forecast, files = _forecast_stage(
        unit,
        cube,
        units,
        study,
        run,
        unit_summary,
        places=places,
        labels=labels,
        suppressed=suppressed,
    )
    written += files
    with run.stage(f"{study.settings.name}: maps, exports, figures {spec}"):
        public = _publish(
            unit.label,
            window,
            tables,
            study.public_folder,
            run.settings,
            outlines=study.outlines,
            rd_outlines=study.rd_outlines,
            forecast=forecast_table,
            summary_table=summary_table,
            suppressed=suppressed,
        )
        written.extend(public)
        unit_summary["public_files"] = [p.relative_to(run.folder).as_posix() for p in public]
    lines = _unit_lines(
        spec, window, units, unit_summary, tables, study, run, suppressed, places, labels
    )
    lines.extend(lines_forecast)
    figures = [Path(p) for p in unit_summary["public_files"] if p.endswith(".png")]
    lines.extend(report_study.figure_lines(spec, figures))
    unit_summary["findings"] = _findings(
        spec, window, labels, suppressed, tables, forecast_table, unit_summary, study, run
    )
    return unit_summary, lines, written


def _units(unit: UnitSpec, study: Study, run: Run) -> tuple[gpd.GeoDataFrame, Any, Any, Any]:
    """The study's units of one type, named, with their division names, labels and footprint
    note (units where the study's rows are not)."""

    spec = unit.text
    with run.stage(f"{study.settings.name}: units {spec}"):
        if unit.kind is UnitKind.H3:
            all_divisions = sorted(study.areas) == list(DIVISIONS)
            area_polygon = "city" if all_divisions else study.outlines.union_all()
            units = attach_population(
                make_units(unit, study.incidents.unit_input(), study_area=area_polygon)
            )
        elif unit.kind is UnitKind.RD:
            units = study.rd_outlines
        else:
            units = in_areas(
                attach_population(
                    make_units(unit, run.layers.incidents.unit_input(spec), study_area="city")
                ),
                study.areas,
            )
        units.attrs["study_area"] = study.where
        places = division_names(units, run.layers.divisions)
        units, labels = named_units(units, places)
        # make_units has judged H3 cells against the study's rows already
        footprint = (
            units.attrs.get("footprint_note")
            if unit.kind is UnitKind.H3
            else footprint_note(units, study.incidents.unit_input(), covered=study.covered)
        )
    return units, places, labels, footprint


def _cube(units: gpd.GeoDataFrame, study: Study) -> Cube:
    """The study's cube on ``units``: its period length, coverage and dates."""
    settings = study.settings
    return study.incidents.cube(
        units,
        freq=settings.freq,
        coverage=study.coverage,
        start=settings.start or None,
        end=(pd.Timestamp(settings.end) - pd.Timedelta(days=1)) if settings.end else None,
    )


def _statistics(
    unit: UnitSpec, cube: Cube, window: Cube, units, study: Study, run: Run, unit_summary: dict
) -> tuple[dict[str, StatisticResult], list[Path]]:
    """The study's statistics on the window (emerging hot spots on the trend cube), each table
    written to the analysis folder and its summary, warnings or reason for not running kept in
    ``unit_summary``."""

    settings, tables, written = study.settings, {}, []
    weights = build_weights(units) if settings.statistics else None
    trend_cube = _trend_cube(cube, study, units, settings)
    for stat in progress.steps(settings.statistics, "statistics"):
        if stat != "emerging" and not len(window.periods):
            word = Freq.parse(cube.freq).word
            unit_summary["statistics"][stat] = {
                "not_computed": f"no {word} is completely recorded for every unit"
            }
            continue
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                outcome = run_statistic(
                    trend_cube if stat == "emerging" else window,
                    stat,
                    measure=settings.measure,
                    permutations=run.settings.permutations,
                    seed=run.settings.seed,
                    weights=weights,
                )
            except DataError as exc:  # too little complete data: say so, go on
                unit_summary["statistics"][stat] = {"not_computed": str(exc)}
                continue
        tables[stat] = outcome
        stat_summary = dict(outcome.summary)
        if stat == "emerging" and trend_cube is not cube:
            stat_summary["crime_categories"] = list(trend_cube.meta["harmonised_categories"])
        stat_summary["warnings"] = [str(w.message) for w in caught]
        unit_summary["statistics"][stat] = stat_summary
        path = study.analysis_folder / f"{stat}_{unit.label}.parquet"
        write_table(outcome.table, path)
        written.append(path)
    return tables, written


def _forecast_stage(
    unit: UnitSpec,
    cube: Cube,
    units,
    study: Study,
    run: Run,
    unit_summary: dict,
    *,
    places,
    labels,
    suppressed: pd.Series,
) -> tuple[pd.DataFrame | None, list[str], list[Path]]:
    """The unit set's forecast when the study asks for one: the public table, the report's
    forecast section (or why there is none) and the files written."""
    if not study.settings.forecast:
        return None, [], []
    spec = unit.text
    with (
        run.stage(f"{study.settings.name}: forecast {spec}"),
        progress.BarReporter(f"forecast {spec}") as bar,
        progress.reporting(bar),
    ):
        try:
            table, backtest, files = forecast_units(
                cube, unit.label, study, run, suppressed=suppressed
            )
        except DataError as exc:
            unit_summary["forecast"] = {"not_computed": str(exc)}
            return None, report_study.no_forecast_section(spec, exc), []
    unit_summary["forecast"] = backtest
    lines = report_study.forecast_section(
        spec, cube, units, table, backtest, unit.label, divisions=places, labels=labels
    )
    return table, lines, files


def _unit_lines(
    spec: str,
    window: Cube,
    units,
    unit_summary: dict,
    tables,
    study,
    run,
    suppressed,
    places,
    labels,
) -> list[str]:
    """The report's statistics and places sections of a unit set."""

    k = run.settings.k_anonymity
    lines = report_study.statistics_section(
        spec, window, units, unit_summary, tables, k, suppressed, divisions=places, labels=labels
    )
    scope = _window_scope(window, study.where)
    lines.extend(place_lines(spec, unit_summary["places"], scope, k))
    return lines


def _findings(
    spec: str,
    window: Cube,
    labels,
    suppressed,
    tables,
    forecast_table,
    unit_summary: dict,
    study: Study,
    run: Run,
) -> dict:
    """The unit set's findings for the report's summary (:func:`geo_crime.report.findings.
    unit_findings`), with the window's share."""

    forecast_summary = unit_summary.get("forecast")
    findings = unit_findings(
        study=study.settings.name,
        spec=spec,
        cube=window,
        labels=labels,
        suppressed=suppressed,
        tables=tables,
        backtest=forecast_summary if isinstance(forecast_summary, dict) else None,
        approximate=unit_summary["approximate"],
        forecast=forecast_table,
        where=study.where,
        data_end=run.data_end,
        places=unit_summary["places"],
    )
    findings["window"]["share"] = study.settings.window_share
    return findings


def _top_place_records(study: Study, run: Run, units, window: Cube, suppressed, labels):
    """The crime mix of the unit set's top places over the window, with what to try there
    (:mod:`geo_crime.publish.places`), as the summary keeps them."""

    keep = top_places(window, suppressed)
    rows = study.incidents.place_rows(units, keep, window.periods, window.freq)
    profiles = profile_places(rows, keep, run.settings.k_anonymity)
    return [profile_record(p, str(labels.get(p.unit_id, p.unit_id))) for p in profiles]


def _window_scope(window: Cube, where: str) -> str:
    """``the 9 completely recorded weeks 2024-01-01 to 2024-02-26 in all 21 LAPD divisions``."""
    span = window.span()
    word = Freq.parse(window.freq).word
    if not span["periods"]:
        return f"no completely recorded {word} in {where}"
    return (
        f"the {span['periods']} completely recorded {word}s {span['first']} to {span['last']} "
        f"in {where}"
    )


def _figure_context(study: str, label: str, window: Cube) -> str:
    """The study, unit set and window a figure's title names."""
    span = window.span()
    word = Freq.parse(window.freq).word
    when = (
        f"{span['periods']} {word}s completely recorded, {span['first']} to {span['last']}"
        if span.get("periods")
        else f"no {word} completely recorded"
    )
    return f"study {study}, units {label}, {when}"


def _trend_cube(cube: Cube, study: Study, units, settings) -> Cube:
    """The cube trend statistics use: harmonised categories only when the study spans the
    March 2024 records-system break (see :mod:`geo_crime.record.breaks`), else the study's cube."""

    if "emerging" not in settings.statistics or not spans_break(study.incidents.tally):
        return cube
    trend = study.incidents.cube(
        units,
        harmonised=True,
        freq=settings.freq,
        coverage=study.coverage,
        start=str(pd.Timestamp(cube.periods[0]).date()),
        end=str(pd.Timestamp(cube.periods[-1]).date()),
    )
    trend.meta["harmonised_categories"] = HARMONISED_CATEGORIES
    return trend


def _publish(
    label: str,
    cube: Cube,
    tables: dict[str, StatisticResult],
    folder: Path,
    settings: RunSettings,
    *,
    outlines: gpd.GeoDataFrame,
    rd_outlines: gpd.GeoDataFrame,
    forecast: pd.DataFrame | None,
    summary_table: pd.DataFrame,
    suppressed: pd.Series,
) -> list[Path]:
    """The public outputs of one unit type: map, GIS layers, figures (aggregates only), composed
    by :mod:`geo_crime.publish.outputs` as ``geo-crime map`` and ``export`` compose them.

    Every table passes :func:`geo_crime.publish.privacy.publishable` first: suppressed units are
    blank everywhere, and statistics are published as classes, not as solvable numbers.
    """

    # one rate (the summary's severity_rate) for the map, tooltips, figure, GIS layers, report
    public = public_cube(
        cube,
        {stat: outcome.table for stat, outcome in tables.items()},
        forecast=forecast,
        disclosure=(summary_table, suppressed),
    )
    forecast_label = ""
    if forecast is not None and len(forecast):
        forecast_label = (
            f"{Freq.parse(cube.freq).word} starting "
            f"{pd.Timestamp(forecast['period'].iloc[0]).date()}"
        )
    k = settings.k_anonymity
    progress.step(0, 3, "map", "outputs")
    files = [
        write_public_map(
            public,
            folder / f"map_{label}.html",
            divisions=outlines,
            rds=rd_outlines,
            forecast_period=forecast_label,
            offline=settings.offline_map,
            k_anonymity=k,
            tiles=settings.map_tiles,
            scheme=RATE_SCHEME,
        )
    ]
    progress.step(1, 3, "GIS layers", "outputs")
    files += write_public_layers(
        public,
        folder / "gis",
        k_anonymity=k,
        prefix=f"{label}_",
        gpkg_name=f"geo_crime_{label}.gpkg",
    )
    # the scatterplot of Moran's I, else of the LISA run (binned in public: no unit's values)
    scatter = tables.get("moran") or tables.get("lisa")
    progress.step(2, 3, "figures", "outputs")
    files += write_public_figures(
        public,
        folder / f"figures_{label}",
        outlines=outlines,
        moran=scatter.result if scatter is not None else None,
        severity_label=summary_table.attrs["severity_rate"],
        k_anonymity=k,
        context=_figure_context(folder.name, label, cube),
    )
    progress.step(3, 3, "", "outputs")
    return files

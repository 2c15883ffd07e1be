"""Wire the stages together: one call (or ``geo-crime run``) produces every output of a run.

The pipeline only calls stage functions in order and writes their results under
``outputs/<run-name>/``; it holds no analysis of its own::

    ingest -> coverage -> (per study) units -> cube -> statistics -> forecast -> maps, exports,
    figures -> report

A run covers one or more *studies*: a slice of the incidents (divisions, dates) analysed on
some unit types at one period length. Without configured studies a run chooses them from the
data's completely recorded weeks (:mod:`geo_crime.study_windows`): city-wide over the latest
complete weeks (at most 52), and a division on its own where it holds a longer complete run
before that. On the shared real slices these are ``citywide_2024`` (all 21 divisions, the
complete weeks of early 2024) and ``westla_2020_21`` (West LA, its complete 2020-21 run); on
today's full record the city-wide study is the last year to the last complete week.

The incident rows are read through an engine (:mod:`geo_crime.engines`): in this process, or,
for a dataset folder with ``--engine dask``, on a Dask cluster, where every stage that reads
rows (the tallies behind the report's tables and the trend figures, the division check, the
coverage counts, the cubes) runs per partition and only small tables come back.

Settings come from defaults, then an optional TOML file (``[run]`` table and ``[[study]]``
tables), then command-line flags (later wins).

Long because the order of the stages, what each one hands the next and which of its outputs
are public is easiest to check when it reads top to bottom in one file.
"""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from rich.console import Console

from geo_crime import report
from geo_crime.core import progress
from geo_crime.core.config import DEFAULT_K
from geo_crime.core.errors import ConfigError, DataError
from geo_crime.core.schema import DIVISIONS
from geo_crime.cube.panel import FREQUENCIES
from geo_crime.publish.privacy import check_study_overlap, hidden_mask
from geo_crime.report import study as report_study
from geo_crime.settings import RunSettings, StudySettings, check_settings, unit_label

if TYPE_CHECKING:
    import geopandas as gpd

    from geo_crime.cube.dask_cluster import ClusterOptions
    from geo_crime.cube.panel import Cube
    from geo_crime.engines import RunIncidents, StudyIncidents
    from geo_crime.record.coverage import CoverageResult
    from geo_crime.record.tallies import RunTally
    from geo_crime.stats.run import StatisticResult


@dataclass
class RunResult:
    """What a run produced."""

    folder: Path
    files: list[Path] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    summaries: dict[str, dict] = field(default_factory=dict)
    cleaned: list[Path] = field(default_factory=list)


def run_pipeline(
    settings: RunSettings,
    *,
    console: Console | None = None,
    quiet: bool = False,
    cluster: ClusterOptions | None = None,
) -> RunResult:
    """Run every stage for ``settings`` and write the outputs.

    The run writes into a staging folder beside its final one
    (``outputs/.<name>.incomplete-<pid>/``, holding an ``INCOMPLETE`` marker) and renames it to
    ``outputs/<name>/`` only when every stage has finished, replacing an older run of the same
    name then (see :func:`geo_crime.core.io_utils.staged_folder`). A failed or killed run therefore
    never leaves ``outputs/<name>/`` half-written; its staging folder is removed on failure (a
    killed run leaves it, clearly named, and the next run in the outputs folder removes it and
    says so). A folder the run did not make (no ``.geo_crime_run`` in it) is never replaced,
    and ``outputs/<name>/`` may not be, hold or lie inside any input: the incident files and
    folders, the config file, the studies' polygon unit layers.

    Parameters
    ----------
    settings
        The run settings.
    console
        Where progress goes (stderr by default): a live display of the stages on a terminal,
        two plain lines per stage otherwise (see :class:`geo_crime.core.progress.RunDisplay`).
    quiet
        Show no progress at all (errors are raised as usual).
    cluster
        Run on a Dask cluster (:class:`geo_crime.cube.dask_cluster.ClusterOptions`: a scheduler
        address or a local cluster); the input must then be one incident dataset folder
        (``geo-crime ingest ... --dataset DIR``). Default: in this process.

    Returns
    -------
    RunResult
        The output folder, the files written and per-stage timings.

    Raises
    ------
    ConfigError
        The run folder is inside the data folder, is, holds or lies inside an input, is a
        folder the run did not make, or cannot be written.
    """
    from geo_crime.core.config import default_crime_inputs
    from geo_crime.core.io_utils import (
        check_output_path,
        clean_stale_staging,
        describe_cleaned,
        staged_folder,
    )
    from geo_crime.ingest import expand_inputs, input_folders

    console = console or Console(stderr=True)
    check_settings(settings)
    if settings.suppression_off():  # said before any work, and in the report and summary
        warnings.warn(
            f"{settings.suppression_off()}: the public outputs are not protected against "
            f"re-identification (k_anonymity = {DEFAULT_K}, the default, suppresses small counts)",
            UserWarning,
            stacklevel=2,
        )
    check_study_overlap(settings.studies, settings.k_anonymity)  # before any work
    inputs = settings.inputs or [str(p) for p in default_crime_inputs()]
    files = expand_inputs(inputs)
    if cluster is not None:
        from geo_crime.ingest.store import is_incident_dataset

        if len(files) != 1 or not is_incident_dataset(files[0]):
            raise ConfigError(
                "--engine dask reads one dataset folder written by "
                f"'geo-crime ingest ... --dataset DIR', got {', '.join(map(str, inputs))}"
            )
    outputs = check_output_path(settings.outputs, folder=True)
    final = outputs / settings.name
    protected = [*files, *input_folders(inputs), *settings.setting_files()]
    check_output_path(final, inputs=protected, folder=True, replaces=True)
    cleaned = clean_stale_staging(outputs)
    if cleaned and not quiet:
        console.print(describe_cleaned(cleaned), markup=False, highlight=False, soft_wrap=True)
    display = progress.RunDisplay(
        console,
        title=f"run {settings.name}",
        stages=_Stage.expected(settings),
        mode="quiet" if quiet else None,
    )
    with staged_folder(final) as staging, display:
        result = _run_stages(settings, files, staging, console, cluster)
    result.folder = final
    result.files = [final / p.relative_to(staging) for p in result.files]
    result.cleaned = cleaned
    return result


def _run_stages(
    settings: RunSettings,
    files: list[Path],
    folder: Path,
    console,
    cluster: ClusterOptions | None = None,
) -> RunResult:
    """Every stage of a run, writing into ``folder`` (the staging folder); on a Dask cluster
    for the whole run when ``cluster`` is given."""
    if cluster is None:
        return _stages(settings, files, folder, console, None)
    from geo_crime.cube.dask_cluster import cluster_client

    with cluster_client(cluster.scheduler, cluster.workers, cluster.worker_memory) as client:
        return _stages(settings, files, folder, console, client)


def _stages(settings: RunSettings, files: list[Path], folder: Path, console, client) -> RunResult:
    from geo_crime.core.io_utils import atomic_write_text, write_table

    result = RunResult(folder)
    result.summaries["privacy"] = {
        "k_anonymity": settings.k_anonymity,
        "small_counts_suppressed": not settings.suppression_off(),
        "note": settings.suppression_off(),
    }

    def stage(label: str) -> _Stage:
        return _Stage(label, result, console)

    with stage("ingest"):
        incidents, cleaning = _read_incidents(settings, files, client)
        if incidents.engine == "memory":
            path = folder / "analysis" / "incidents.parquet"
            result.files.append(write_table(incidents.incidents, path))
        # unreadable rows by line and reason; their raw values (an incident) in analysis/ only
        result.files.append(cleaning.write_json(folder / "cleaning_report.json", raw_values=False))
        result.files.append(cleaning.write_json(folder / "analysis" / "cleaning_report.json"))
        # victim-level rows stay in analysis/ (or in the dataset); only aggregates go to public/
        note = (
            report.ANALYSIS_NOTE if incidents.engine == "memory" else report.dataset_note(files[0])
        )
        atomic_write_text(folder / "analysis" / "README.txt", note)
        tally = incidents.run_tally()

    with stage("division check"):
        division_check = incidents.division_check()
        result.summaries["division_check"] = division_check.to_dict()

    with stage("coverage"):
        threshold = settings.coverage_threshold
        coverage = incidents.coverage("M", threshold)
        coverage_by_freq = {"M": coverage}
        if not settings.studies:  # chosen from the data's complete weeks
            from geo_crime.study_windows import studies_from_coverage

            coverage_by_freq["W"] = incidents.coverage("W", threshold)
            chosen = studies_from_coverage(coverage_by_freq["W"])
            settings = replace(settings, studies=chosen.studies)
            check_study_overlap(settings.studies, settings.k_anonymity)  # disjoint by design
            result.summaries["studies_from_data"] = chosen.summary
        for freq in sorted({s.freq.upper()[:1] for s in settings.studies} - set(coverage_by_freq)):
            coverage_by_freq[freq] = incidents.coverage(freq, threshold)
        for freq, judged in coverage_by_freq.items():
            path = folder / ("coverage.csv" if freq == "M" else f"coverage_{freq}.csv")
            result.files.append(write_table(judged.table, path))
        break_lines = _records_system_break(tally, cleaning, folder, result)

    last = tally.sources["last"].max() if len(tally.sources) else None
    data_end = "" if last is None or pd.isna(last) else str(pd.Timestamp(last).date())
    run = _Run(settings, folder, stage, _SharedLayers(incidents), data_end)
    sections = []
    for study in settings.studies:
        study_coverage = coverage_by_freq[study.freq.upper()[:1]]
        study_result = _run_study(study, incidents, study_coverage, run)
        result.files.extend(study_result.files)
        result.summaries[study.name] = study_result.summary
        sections.append(study_result.markdown)
    from geo_crime.report.disclosure import disclosure_lines

    sections.append("\n".join(disclosure_lines(settings.k_anonymity)))

    with stage("report"):
        findings = [
            unit["findings"]
            for study in settings.studies
            for unit in result.summaries[study.name]["units"].values()
            if "findings" in unit
        ]
        text = report.build_report(
            incidents=tally,
            cleaning=cleaning,
            coverage=coverage,
            inputs=files,
            sections=sections,
            division_check=division_check,
            findings=findings,
            outputs=result.files,
            folder=folder,
            break_lines=break_lines,
            engine=_engine_line(incidents, client),
            briefing=_briefing(settings, result, coverage_by_freq.get("W"), tally),
            k_anonymity=settings.k_anonymity,
        )
        result.files.append(atomic_write_text(folder / "report.md", text))
        result.files.append(
            atomic_write_text(
                folder / "summary.json", json.dumps(result.summaries, indent=2, default=str)
            )
        )
        # only the figures this run wrote are embedded, whatever a path in the text says
        figures = {p for p in result.files if p.suffix == ".png"}
        html = report.markdown_to_html(
            text, base=folder, title=f"geo_crime run {settings.name}", images=figures
        )
        result.files.append(atomic_write_text(folder / "report.html", html))
    result.files = list(dict.fromkeys(result.files))
    return result


def _read_incidents(settings: RunSettings, files: list[Path], client) -> tuple[RunIncidents, Any]:
    """The run's incidents (in memory, or on the cluster of ``client``) and cleaning report."""
    from geo_crime.engines import ClusterIncidents, MemoryIncidents
    from geo_crime.ingest import load_incidents

    if client is None:
        incidents, cleaning = load_incidents(
            files,
            negative_age=settings.negative_age,
            cache=settings.cache,
            min_occurred_date=settings.min_date or None,
            count=settings.count,
        )
        return MemoryIncidents(incidents), cleaning
    from geo_crime.core.schema import RUN_COLUMNS
    from geo_crime.cube.dask_incidents import load_distributed
    from geo_crime.ingest.store import dataset_report

    held = load_distributed(files[0], client, columns=RUN_COLUMNS)
    on_cluster = ClusterIncidents(held)
    tally = on_cluster.run_tally()
    cleaning = dataset_report(
        files[0], held.duplicates, rows_out=tally.total, spatially_valid=tally.spatially_valid
    )
    if settings.count == "offenses" and cleaning.offenses_merged_into_cases:
        raise ConfigError(
            f"{files[0]}: this dataset was ingested with NIBRS offences collapsed to cases "
            f"({cleaning.offenses_merged_into_cases:,} offence rows merged); ingest it again "
            "with --count offenses to count offences"
        )
    return on_cluster, cleaning


def _engine_line(incidents: RunIncidents, client) -> str:
    """The report's sentence on where the rows were read (empty in memory)."""
    if client is None:
        return ""
    workers = len(client.scheduler_info().get("workers", {}))
    return (
        f"Engine: a Dask cluster of {workers} worker(s) read the dataset "
        f"`{Path(incidents.held.source).name}`; the tables, figures and cubes below were "
        "computed there partition by partition and summed, and equal those of one process."
    )


def _records_system_break(tally: RunTally, cleaning, folder: Path, result: RunResult) -> list[str]:
    """The report's section on the March 2024 break and its figure, when both systems are in."""
    from geo_crime.core.lapd import spans_break
    from geo_crime.record.breaks import level_shift, level_shift_figure
    from geo_crime.report.series import break_lines

    if not spans_break(tally):
        return []
    shift = level_shift(tally)
    figure = level_shift_figure(shift, folder / "public" / "figures" / "break_level_shift.png")
    result.files.append(figure)
    joined = {
        "legacy_after_switch": cleaning.legacy_after_switch,
        "legacy_matchable": cleaning.legacy_matchable,
        "cross_system_duplicates": cleaning.cross_system_duplicates_dropped,
    }
    months = tally.system_months()
    result.summaries["records_system_break"] = {
        **joined,
        "level_shift": shift.round(3).reset_index().to_dict(orient="records"),
        "incidents_per_month": {
            str(month.date())[:7]: {str(k): int(v) for k, v in row.items()}
            for month, row in months.iterrows()
        },
    }
    return break_lines(shift, joined, months=months, figure=figure, folder=folder)


class _SharedLayers:
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
            from geo_crime.units import division_units

            self._divisions = division_units()
        return self._divisions

    def rds(self, areas: list[int]) -> gpd.GeoDataFrame:
        """Reporting districts (of ``areas`` when given)."""
        if self._rds is None:
            from geo_crime.cube.rates import attach_population
            from geo_crime.units import make_units

            self._rds = attach_population(make_units("rd", self.incidents.unit_input("rd")))
        return _in_areas(self._rds, areas)


def _in_areas(units: gpd.GeoDataFrame, areas: list[int]) -> gpd.GeoDataFrame:
    """Units of the given divisions (all when ``areas`` is empty), attrs kept."""
    from geo_crime.units import restrict_to_divisions

    return restrict_to_divisions(units, areas) if areas else units


@dataclass
class _Run:
    """What every study of a run shares: its settings, staging folder, stage timer and layers."""

    settings: RunSettings
    folder: Path
    stage: Callable[[str], _Stage]
    layers: _SharedLayers
    data_end: str = ""  # the last occurrence day of all the run's rows


@dataclass
class _Study:
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
class _StudyResult:
    summary: dict
    markdown: str
    files: list[Path] = field(default_factory=list)


def _run_study(
    study: StudySettings, incidents: RunIncidents, coverage: CoverageResult, run: _Run
) -> _StudyResult:
    """Units, cube, statistics (and forecasts, maps, exports) for one study."""
    chosen = incidents.study(study)
    if not chosen.tally.total:
        raise _empty_study(study, incidents)
    # the study area is where the data is: the divisions asked for, else those the rows cover
    covered = chosen.covered()
    areas = list(study.areas) or covered
    where = report_study.study_area_words(areas, chosen_by_data=not study.areas)
    current = _Study(
        study,
        chosen,
        coverage,
        covered,
        areas,
        where,
        run.folder / "analysis" / study.name,
        run.folder / "public" / study.name,
        _in_areas(run.layers.divisions, areas),
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
    from geo_crime.publish.figures.trends import study_figures

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
        unit_summary, unit_lines, files = _run_units(spec, current, run)
        summary["units"][spec] = unit_summary
        lines.extend(unit_lines)
        written.extend(files)
    return _StudyResult(summary, "\n".join(lines), written)


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


def _run_units(spec: str, study: _Study, run: _Run) -> tuple[dict, list[str], list[Path]]:
    """One unit type of a study: units -> cube -> statistics -> forecast -> public outputs.

    Returns the unit type's summary, its report lines and the files written.
    """
    from geo_crime.core.io_utils import write_table
    from geo_crime.cube.rates import attach_population
    from geo_crime.publish.privacy import cube_disclosure
    from geo_crime.report.places import place_lines
    from geo_crime.stats.run import run_statistic
    from geo_crime.units import division_names, footprint_note, make_units
    from geo_crime.units.places import named_units

    settings, stage, name = study.settings, run.stage, study.settings.name
    label = unit_label(spec)
    outlines, rd_outlines = study.outlines, study.rd_outlines
    written: list[Path] = []
    with stage(f"{name}: units {spec}"):
        if spec.startswith("h3"):
            all_divisions = sorted(study.areas) == list(DIVISIONS)
            area_polygon = "city" if all_divisions else outlines.union_all()
            units = attach_population(
                make_units(spec, study.incidents.unit_input(), study_area=area_polygon)
            )
        elif spec.startswith("rd"):
            units = rd_outlines
        else:
            units = _in_areas(
                attach_population(
                    make_units(spec, run.layers.incidents.unit_input(spec), study_area="city")
                ),
                study.areas,
            )
        units.attrs["study_area"] = study.where
        places = division_names(units, run.layers.divisions)
        units, labels = named_units(units, places)
        # make_units has judged H3 cells against the study's rows already
        footprint = (
            units.attrs.get("footprint_note")
            if spec.startswith("h3")
            else footprint_note(units, study.incidents.unit_input(), covered=study.covered)
        )
    with stage(f"{name}: cube {spec}"):
        cube = study.incidents.cube(
            units,
            freq=settings.freq,
            coverage=study.coverage,
            start=settings.start or None,
            end=(pd.Timestamp(settings.end) - pd.Timedelta(days=1)) if settings.end else None,
        )
        written.append(cube.save(study.analysis_folder / f"cube_{label}.parquet"))
    # the analysis window: the periods completely recorded for every unit. Every statistic,
    # ranking, share, rate, map and figure of this unit set uses it; the forecasts alone read
    # each unit's own complete history (and say so)
    window = cube.complete_periods(min_share=settings.window_share)
    # who is suppressed in public outputs: decided once, on the window's counts (never fewer
    # units than on the whole cube), used by every public artefact
    summary_table, suppressed = cube_disclosure(window, run.settings.k_anonymity)
    unit_summary: dict = {
        "suppressed_units": int(suppressed.sum()),
        "footprint_note": footprint,
        "units": int(len(units)),
        "periods": int(len(cube.periods)),
        "complete_periods": int(len(window.periods)),
        "window": {**window.span(), "share": settings.window_share},
        "assignment": cube.meta["assignment"],
        "approximate": bool(units.attrs.get("approximate", False)),
        "statistics": {},
    }
    tables = {}
    with stage(f"{name}: statistics {spec}"):
        from geo_crime.stats.weights import build_weights

        weights = build_weights(units) if settings.statistics else None
        trend_cube = _trend_cube(cube, study, units, settings)
        for stat in progress.steps(settings.statistics, "statistics"):
            if stat != "emerging" and not len(window.periods):
                word = FREQUENCIES.get(cube.freq, "period")
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
            path = study.analysis_folder / f"{stat}_{label}.parquet"
            write_table(outcome.table, path)
            written.append(path)
        unit_summary["places"] = _top_place_records(study, run, units, window, suppressed, labels)
    forecast_table = None
    lines_forecast: list[str] = []
    if settings.forecast:
        with (
            stage(f"{name}: forecast {spec}"),
            progress.BarReporter(f"forecast {spec}") as bar,
            progress.reporting(bar),
        ):
            try:
                forecast_table, backtest, files = _forecast(
                    cube, label, study, run, suppressed=suppressed
                )
            except DataError as exc:
                unit_summary["forecast"] = {"not_computed": str(exc)}
                lines_forecast = report_study.no_forecast_section(spec, exc)
            else:
                written.extend(files)
                unit_summary["forecast"] = backtest
                lines_forecast = report_study.forecast_section(
                    spec,
                    cube,
                    units,
                    forecast_table,
                    backtest,
                    label,
                    divisions=places,
                    labels=labels,
                )
    with stage(f"{name}: maps, exports, figures {spec}"):
        public = _publish(
            label,
            window,
            tables,
            study.public_folder,
            run.settings,
            outlines=outlines,
            rd_outlines=rd_outlines,
            forecast=forecast_table,
            summary_table=summary_table,
            suppressed=suppressed,
        )
        written.extend(public)
        unit_summary["public_files"] = [p.relative_to(run.folder).as_posix() for p in public]
    lines = report_study.statistics_section(
        spec,
        window,
        units,
        unit_summary,
        tables,
        run.settings.k_anonymity,
        suppressed,
        divisions=places,
        labels=labels,
    )
    lines.extend(
        place_lines(
            spec,
            unit_summary["places"],
            _window_scope(window, study.where),
            run.settings.k_anonymity,
        )
    )
    lines.extend(lines_forecast)
    figures = [Path(p) for p in unit_summary["public_files"] if p.endswith(".png")]
    lines.extend(report_study.figure_lines(spec, figures))
    from geo_crime.report.findings import unit_findings

    forecast_summary = unit_summary.get("forecast")
    unit_summary["findings"] = unit_findings(
        study=name,
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
    unit_summary["findings"]["window"]["share"] = settings.window_share
    return unit_summary, lines, written


def _top_place_records(study: _Study, run: _Run, units, window: Cube, suppressed, labels):
    """The crime mix of the unit set's top places over the window, with what to try there
    (:mod:`geo_crime.publish.places`), as the summary keeps them."""
    from geo_crime.publish.places import profile_places, top_places
    from geo_crime.report.places import profile_record

    keep = top_places(window, suppressed)
    rows = study.incidents.place_rows(units, keep, window.periods, window.freq)
    profiles = profile_places(rows, keep, run.settings.k_anonymity)
    return [profile_record(p, str(labels.get(p.unit_id, p.unit_id))) for p in profiles]


def _window_scope(window: Cube, where: str) -> str:
    """``the 9 completely recorded weeks 2024-01-01 to 2024-02-26 in all 21 LAPD divisions``."""
    span = window.span()
    word = FREQUENCIES.get(window.freq, "period")
    if not span["periods"]:
        return f"no completely recorded {word} in {where}"
    return (
        f"the {span['periods']} completely recorded {word}s {span['first']} to {span['last']} "
        f"in {where}"
    )


def _briefing(settings: RunSettings, result: RunResult, weekly, tally: RunTally) -> list[str]:
    """The report's briefing, on the first weekly city-wide study's analysis window."""
    from geo_crime.report.briefing import briefing_lines

    for study in settings.studies:
        if study.areas or study.freq.upper()[:1] != "W":
            continue
        for spec, unit in result.summaries.get(study.name, {}).get("units", {}).items():
            if unit.get("window", {}).get("periods"):
                return briefing_lines(
                    study=study.name,
                    window=unit["window"],
                    weekly=weekly,
                    weeks=tally.weeks,
                    k_anonymity=settings.k_anonymity,
                    hot_spots=unit.get("findings", {}).get("hot_spots"),
                    places=unit.get("places"),
                    units=spec,
                    hours=tally.hours,
                    division_weeks=tally.division_weeks,
                )
    return []


def _figure_context(study: str, label: str, window: Cube) -> str:
    """The study, unit set and window a figure's title names."""
    span = window.span()
    word = FREQUENCIES.get(window.freq, "period")
    when = (
        f"{span['periods']} {word}s completely recorded, {span['first']} to {span['last']}"
        if span.get("periods")
        else f"no {word} completely recorded"
    )
    return f"study {study}, units {label}, {when}"


def _trend_cube(cube: Cube, study: _Study, units, settings) -> Cube:
    """The cube trend statistics use: harmonised categories only when the study spans the
    March 2024 records-system break (see :mod:`geo_crime.record.breaks`), else the study's cube."""
    from geo_crime.core.lapd import spans_break
    from geo_crime.record.breaks import HARMONISED_CATEGORIES

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


def _forecast(
    cube: Cube, label: str, study: _Study, run: _Run, *, suppressed: pd.Series
) -> tuple[pd.DataFrame, dict, list[Path]]:
    """Backtest and a dated next-period forecast for one cube, as the study's settings ask.

    The full forecast table goes to the study's analysis folder; the public one has no
    prediction for suppressed units. The returned table is the public one.
    """
    from geo_crime.core.io_utils import write_table
    from geo_crime.forecast import KerasForecaster, evaluate, predict_next
    from geo_crime.forecast.incidents import expected_incidents, points_per_incident
    from geo_crime.forecast.origin import forecast_origin
    from geo_crime.publish.privacy import public_tables, study_groups
    from geo_crime.report.forecast import write_forecast_report

    settings, seed = study.settings, run.settings.seed
    config = settings.keras_config()
    data_end = study.incidents.tally.last_occurred
    result = evaluate(
        cube,
        models=settings.forecast_models or None,
        n_origins=settings.forecast_origins or None,  # 0: every usable origin
        refit_every=settings.refit_every or None,  # 0: scaled to at most MAX_FITS fits
        config=config,
        tune=settings.tuning(),
        seed=seed,
        name=label,
    )
    if settings.reproduce_study:
        from geo_crime.forecast import reproduce_study

        original = reproduce_study(
            cube,
            seed=seed,
            epochs=30 if settings.forecast_config == "fast" else 50,
            ours={"keras": KerasForecaster(config, seed=seed)},
        )
        result.extra[report_study.original_study_title(original.info)] = (
            original.metrics.reset_index()
        )
        result.config["study"] = original.info
    folder = study.public_folder
    files = write_forecast_report(
        result, folder / f"forecast_{label}", k_anonymity=run.settings.k_anonymity
    )
    origin = forecast_origin(cube, data_end=data_end)
    recent = cube.select_periods(slice(0, origin.index + 1))
    # the final model starts from the last backtest network (when the configuration warm-starts)
    warm = result.last_fits.get("keras") if config.warm_start else None
    model = KerasForecaster(config, seed=seed).fit(recent, warm_start=warm)
    table = expected_incidents(predict_next(model, recent), recent)
    table.insert(2, "last_complete_period", str(origin.period.date()))
    table.insert(3, "data_end", str(pd.Timestamp(data_end).date()))
    if "name" in cube.units:  # the unit's place (see units.places.named_units)
        names = cube.units.set_index(cube.units["unit_id"].astype(str))["name"]
        table.insert(1, "place", names.reindex(table["unit_id"].astype(str)).to_numpy())
    # public: every unit at its division's crime mix (its own would give its counts away)
    shown = expected_incidents(
        table, recent, groups=study_groups(cube.units), k_anonymity=run.settings.k_anonymity
    )
    public = public_tables({"forecast": shown}, suppressed)["forecast"]
    files.append(write_table(table, study.analysis_folder / f"next_period_forecast_{label}.csv"))
    files.append(write_table(public, folder / f"forecast_{label}" / "next_period_forecast.csv"))
    ranking = _recommended_ranking(
        result, recent, config, seed, suppressed, folder / f"forecast_{label}"
    )
    if ranking is not None:
        files.append(ranking)
    summary = {
        "origins": [str(o.date()) for o in result.origins],
        "metrics": result.metrics.astype(float).round(4).to_dict(orient="index"),
        "scope": result.scope,
        "judgements": result.judgements(),
        "verdicts": result.verdicts(),
        "keras_point": "median" if config.point_loss == "median" else "mean",
        "notes": result.notes,
        "next_period": str(pd.Timestamp(public["period"].iloc[0]).date()) if len(public) else "",
        "last_complete_period": str(origin.period.date()),
        "complete_share_at_origin": round(origin.share, 4),
        "data_end": str(pd.Timestamp(data_end).date()),
        "why_not_data_end": origin.reason,
        "points_per_incident": round(points_per_incident(recent), 3),
        "ranking_file": ranking.relative_to(run.folder).as_posix() if ranking else "",
    }
    return public, summary, files


def _recommended_ranking(result, recent: Cube, config, seed: int, suppressed, folder: Path):
    """The ranking of the model the backtest recommends to choose where to act (PAI@5%), when
    it is not the published Keras forecast: that model fitted on the same history, its units
    ranked for the next period. Ranks only, no values (a value per unit would be a second
    solvable forecast); suppressed units are listed blank, as in every public table. None when
    Keras is the one to use."""
    from geo_crime.core.io_utils import write_table
    from geo_crime.forecast import make_model
    from geo_crime.forecast.references import is_reference

    judged = (result.judgements().get("metrics") or {}).get("pai_5") or {}
    use = str(judged.get("use") or "")
    if not use or use == "keras" or is_reference(use):
        return None
    model = make_model(use, config=config, seed=seed).fit(recent)
    prediction = np.asarray(model.predict(recent), dtype=float)
    ids = recent.unit_ids.astype(str)
    hidden = hidden_mask(suppressed, ids)
    keep = np.isfinite(prediction) & ~hidden
    rank = pd.Series(pd.NA, index=ids, dtype="Int64")  # blank: suppressed or not forecast
    order = ids[keep][np.argsort(-prediction[keep], kind="stable")]
    rank[order] = np.arange(1, len(order) + 1)
    table = pd.DataFrame({"unit_id": ids})
    if "name" in recent.units:
        table["place"] = recent.units["name"].to_numpy()
    table["suppressed"] = hidden
    table["rank"] = rank.to_numpy()
    top = max(1, int(np.ceil(0.1 * len(order))))
    table["top_10_percent"] = pd.array(
        [pd.NA if pd.isna(r) else bool(r <= top) for r in table["rank"]], dtype="boolean"
    )
    table = table.sort_values("rank", na_position="last", kind="stable")
    return write_table(table, folder / f"next_period_ranking_{use}.csv")


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
    """The public outputs of one unit type: map, GIS layers, figures (aggregates only).

    Every table passes :func:`geo_crime.publish.privacy.public_tables` first: suppressed units are
    blank everywhere, and statistics are published as classes, not as solvable numbers.
    """
    from geo_crime.publish.export import export_layers
    from geo_crime.publish.figures.core import write_figures
    from geo_crime.publish.maps import MapLayers, write_map
    from geo_crime.publish.privacy import publishable

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
    n_steps = 4 if "emerging" in public else 3
    progress.step(0, n_steps, "map", "outputs")
    files = [
        write_map(
            layers,
            folder / f"map_{label}.html",
            offline=settings.offline_map,
            k_anonymity=settings.k_anonymity,
            scheme=RATE_SCHEME,
            tiles=None if settings.map_tiles == "none" else settings.map_tiles,
        )
    ]
    progress.step(1, n_steps, "GIS layers", "outputs")
    export = {f"{label}_{kind}": table for kind, table in public.items()}
    files += export_layers(
        export,
        folder / "gis",
        k_anonymity=settings.k_anonymity,
        counts=summary_table.set_index("unit_id")["count"],
        gpkg_name=f"geo_crime_{label}.gpkg",
    )
    if "emerging" in public:
        from geo_crime.publish.figures.trends import emerging_hotspot_figure

        progress.step(2, n_steps, "emerging hot spot figure", "outputs")
        files.append(
            emerging_hotspot_figure(
                public["summary"],
                public["emerging"],
                folder / f"figures_{label}" / "emerging_hot_spots.png",
                suppressed=suppressed,
                outlines=outlines,
            )
        )
    # the scatterplot of Moran's I, else of the LISA run (binned in public: no unit's values)
    scatter = tables.get("moran") or tables.get("lisa")
    moran = scatter.result if scatter is not None else None
    progress.step(n_steps - 1, n_steps, "figures", "outputs")
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
        context=_figure_context(folder.name, label, cube),
    )
    progress.step(n_steps, n_steps, "", "outputs")
    return files


#: Classes of the severity rate on maps and figures (the rate is heavily skewed: quintiles).
RATE_SCHEME = "quantiles"


class _Stage:
    """Times a stage and shows it in the run's display
    (:class:`geo_crime.core.progress.RunDisplay`).

    Without a display in effect (a stage used outside :func:`run_pipeline`) it prints the plain
    lines ``<stage> ...`` and ``  done in 3.2 s`` on ``console``.
    """

    def __init__(self, label: str, result: RunResult, console: Console) -> None:
        self.label, self.result, self.console = label, result, console

    def __enter__(self) -> _Stage:
        self.display = progress.current_display() or progress.RunDisplay(self.console, mode="plain")
        self.display.begin(self.label)
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        elapsed = time.perf_counter() - self.start
        self.result.timings[self.label] = elapsed
        self.display.end(self.label, elapsed, failed=exc[0] is not None)

    @staticmethod
    def expected(settings: RunSettings) -> int:
        """How many stages a run of ``settings`` has (for the run's bar; a hint, not a rule)."""
        per_unit = [5 if study.forecast else 4 for study in settings.studies for _ in study.units]
        if not settings.studies:  # chosen from the data: usually two studies of two unit types
            per_unit = [5] * 4
        return 3 + sum(per_unit) + 1  # ingest, division check, coverage ... report

"""A run end to end: its staged folder, the stages before and after the studies, the report.

:func:`run_pipeline` checks the settings and the run folder, reads the incidents through an
engine (:mod:`geo_crime.engines`), judges coverage, runs each study
(:func:`geo_crime.pipeline.studies.run_study`) and writes the report, all into a staging folder
renamed into place only when every stage has finished.
"""

from __future__ import annotations

import json
import time
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
from rich.console import Console

from geo_crime import report
from geo_crime.core import progress
from geo_crime.core.config import DEFAULT_K, default_crime_inputs
from geo_crime.core.errors import ConfigError
from geo_crime.core.io_utils import (
    atomic_write_text,
    check_output_path,
    clean_stale_staging,
    describe_cleaned,
    staged_folder,
    write_table,
)
from geo_crime.core.lapd import spans_break
from geo_crime.core.periods import Freq
from geo_crime.core.schema import RUN_COLUMNS
from geo_crime.cube.dask_incidents import load_distributed
from geo_crime.engines import ClusterIncidents, MemoryIncidents, engine_client
from geo_crime.ingest import expand_inputs, input_folders, load_incidents
from geo_crime.ingest.store import dataset_report, is_incident_dataset
from geo_crime.pipeline.studies import Run, SharedLayers, run_study
from geo_crime.publish.privacy import check_study_overlap
from geo_crime.record.breaks import level_shift, level_shift_figure
from geo_crime.report.briefing import briefing_lines
from geo_crime.report.disclosure import disclosure_lines
from geo_crime.report.series import break_lines
from geo_crime.settings import RunSettings, check_settings
from geo_crime.study_windows import studies_from_coverage

if TYPE_CHECKING:
    from geo_crime.cube.dask_cluster import ClusterOptions
    from geo_crime.engines import RunIncidents
    from geo_crime.record.coverage import CoverageResult
    from geo_crime.record.tallies import RunTally


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
    if cluster is not None and (len(files) != 1 or not is_incident_dataset(files[0])):
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
        stages=Stage.expected(settings),
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
    for the whole run when ``cluster`` is given (:func:`geo_crime.engines.engine_client`)."""

    with engine_client(cluster) as client:
        return _stages(settings, files, folder, console, client)


def _stages(settings: RunSettings, files: list[Path], folder: Path, console, client) -> RunResult:
    """The stages of a run in order: ingest, division check, coverage, the studies, report."""
    result = RunResult(folder)
    result.summaries["privacy"] = {
        "k_anonymity": settings.k_anonymity,
        "small_counts_suppressed": not settings.suppression_off(),
        "note": settings.suppression_off(),
    }

    def stage(label: str) -> Stage:
        return Stage(label, result, console)

    with stage("ingest"):
        incidents, cleaning = _ingest(settings, files, folder, client, result)
        tally = incidents.run_tally()
    with stage("division check"):
        division_check = incidents.division_check()
        result.summaries["division_check"] = division_check.to_dict()
    with stage("coverage"):
        settings, coverage_by_freq = _coverage(settings, incidents, folder, result)
        break_lines = _records_system_break(tally, cleaning, folder, result)
    last = tally.sources["last"].max() if len(tally.sources) else None
    data_end = "" if last is None or pd.isna(last) else str(pd.Timestamp(last).date())
    run = Run(settings, folder, stage, SharedLayers(incidents), data_end)
    sections = []
    for study in settings.studies:
        study_coverage = coverage_by_freq[study.freq]
        study_result = run_study(study, incidents, study_coverage, run)
        result.files.extend(study_result.files)
        result.summaries[study.name] = study_result.summary
        sections.append(study_result.markdown)
    sections.append("\n".join(disclosure_lines(settings.k_anonymity)))
    with stage("report"):
        text = report.build_report(
            incidents=tally,
            cleaning=cleaning,
            coverage=coverage_by_freq["M"],
            inputs=files,
            sections=sections,
            division_check=division_check,
            findings=_findings(settings, result),
            outputs=result.files,
            folder=folder,
            break_lines=break_lines,
            engine=_engine_line(incidents, client),
            briefing=_briefing(settings, result, coverage_by_freq.get("W"), tally),
            k_anonymity=settings.k_anonymity,
        )
        _write_report(text, settings, folder, result)
    result.files = list(dict.fromkeys(result.files))
    return result


def _ingest(
    settings: RunSettings, files: list[Path], folder: Path, client, result: RunResult
) -> tuple[RunIncidents, Any]:
    """The run's incidents and cleaning report; the rows (in memory) and the cleaning report
    go to ``analysis/``, the report without raw values to the run folder."""
    incidents, cleaning = _read_incidents(settings, files, client)
    if incidents.engine == "memory":
        path = folder / "analysis" / "incidents.parquet"
        result.files.append(write_table(incidents.incidents, path))
    # unreadable rows by line and reason; their raw values (an incident) in analysis/ only
    result.files.append(cleaning.write_json(folder / "cleaning_report.json", raw_values=False))
    result.files.append(cleaning.write_json(folder / "analysis" / "cleaning_report.json"))
    # victim-level rows stay in analysis/ (or in the dataset); only aggregates go to public/
    note = report.ANALYSIS_NOTE if incidents.engine == "memory" else report.dataset_note(files[0])
    atomic_write_text(folder / "analysis" / "README.txt", note)
    return incidents, cleaning


def _coverage(
    settings: RunSettings, incidents: RunIncidents, folder: Path, result: RunResult
) -> tuple[RunSettings, dict[str, CoverageResult]]:
    """The coverage check at every period length the studies use (and monthly, for the
    report), each table written; without configured studies, the studies chosen from the data's
    complete weeks (the settings returned hold them)."""
    threshold = settings.coverage_threshold
    coverage_by_freq = {"M": incidents.coverage("M", threshold)}
    if not settings.studies:  # chosen from the data's complete weeks
        coverage_by_freq["W"] = incidents.coverage("W", threshold)
        chosen = studies_from_coverage(coverage_by_freq["W"])
        settings = replace(settings, studies=chosen.studies)
        check_study_overlap(settings.studies, settings.k_anonymity)  # disjoint by design
        result.summaries["studies_from_data"] = chosen.summary
    for freq in sorted({s.freq for s in settings.studies} - set(coverage_by_freq)):
        coverage_by_freq[freq] = incidents.coverage(freq, threshold)
    for freq, judged in coverage_by_freq.items():
        path = folder / ("coverage.csv" if freq == "M" else f"coverage_{freq}.csv")
        result.files.append(write_table(judged.table, path))
    return settings, coverage_by_freq


def _findings(settings: RunSettings, result: RunResult) -> list[dict]:
    """Every unit set's findings, study by study, for the report's summary."""
    return [
        unit["findings"]
        for study in settings.studies
        for unit in result.summaries[study.name]["units"].values()
        if "findings" in unit
    ]


def _write_report(text: str, settings: RunSettings, folder: Path, result: RunResult) -> None:
    """``report.md``, ``summary.json`` and ``report.html`` (embedding only this run's
    figures)."""
    result.files.append(atomic_write_text(folder / "report.md", text))
    summary = json.dumps(result.summaries, indent=2, default=str)
    result.files.append(atomic_write_text(folder / "summary.json", summary))
    # only the figures this run wrote are embedded, whatever a path in the text says
    figures = {p for p in result.files if p.suffix == ".png"}
    html = report.markdown_to_html(
        text, base=folder, title=f"geo_crime run {settings.name}", images=figures
    )
    result.files.append(atomic_write_text(folder / "report.html", html))


def _read_incidents(settings: RunSettings, files: list[Path], client) -> tuple[RunIncidents, Any]:
    """The run's incidents (in memory, or on the cluster of ``client``) and cleaning report."""

    if client is None:
        incidents, cleaning = load_incidents(
            files,
            negative_age=settings.negative_age,
            cache=settings.cache,
            min_occurred_date=settings.min_date or None,
            count=settings.count,
        )
        return MemoryIncidents(incidents), cleaning

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


def _briefing(settings: RunSettings, result: RunResult, weekly, tally: RunTally) -> list[str]:
    """The report's briefing, on the first weekly city-wide study's analysis window."""

    for study in settings.studies:
        if study.areas or study.freq is not Freq.WEEK:
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


class Stage:
    """Times a stage and shows it in the run's display
    (:class:`geo_crime.core.progress.RunDisplay`).

    Without a display in effect (a stage used outside :func:`run_pipeline`) it prints the plain
    lines ``<stage> ...`` and ``  done in 3.2 s`` on ``console``.
    """

    def __init__(self, label: str, result: RunResult, console: Console) -> None:
        self.label, self.result, self.console = label, result, console

    def __enter__(self) -> Stage:
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

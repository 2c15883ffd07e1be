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
import time
import tomllib
import warnings
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import pandas as pd
from rich.console import Console

from geo_crime.errors import ConfigError

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
            section = dict(data.get("run", {}))
            known = {f.name for f in fields(cls)} - {"studies"}
            unknown = sorted(set(section) - known)
            if unknown:
                raise ConfigError(
                    f"{config_file}: unknown setting(s) {unknown} in [run]; known: {sorted(known)}"
                )
            values.update(section)
            if "study" in data:
                study_fields = {f.name for f in fields(StudySettings)}
                studies = []
                for entry in data["study"]:
                    bad = sorted(set(entry) - study_fields)
                    if bad or "name" not in entry:
                        raise ConfigError(
                            f"{config_file}: a [[study]] needs a name and knows only "
                            f"{sorted(study_fields)} (got {sorted(entry)})"
                        )
                    studies.append(StudySettings(**entry))
                values["studies"] = studies
        values.update({k: v for k, v in overrides.items() if v is not None})
        settings = cls(**values)
        settings.outputs = Path(settings.outputs)
        if not settings.name:
            settings.name = dt.datetime.now().strftime("run-%Y%m%d-%H%M%S")
        if settings.negative_age not in {"null", "abs"}:
            raise ConfigError("negative_age must be 'null' or 'abs'")
        names = [s.name for s in settings.studies]
        if len(set(names)) != len(names):
            raise ConfigError(f"study names must be unique: {names}")
        return settings


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
    """
    from geo_crime.config import default_crime_inputs
    from geo_crime.coverage import check_coverage
    from geo_crime.ingest import expand_inputs, load_incidents
    from geo_crime.io_utils import atomic_path, atomic_write_text
    from geo_crime.report import build_report

    console = console or Console(stderr=True)
    folder = settings.outputs / settings.name
    folder.mkdir(parents=True, exist_ok=True)
    result = RunResult(folder)

    def stage(label: str) -> _Stage:
        return _Stage(label, result, console)

    with stage("ingest"):
        inputs = settings.inputs or [str(p) for p in default_crime_inputs()]
        files = expand_inputs(inputs)
        incidents, cleaning = load_incidents(files, negative_age=settings.negative_age)
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
        coverage = check_coverage(incidents, threshold=settings.coverage_threshold)
        path = folder / "coverage.csv"
        with atomic_path(path) as tmp:
            coverage.table.to_csv(tmp, index=False)
        result.files.append(path)

    shared = _SharedLayers(incidents)
    sections = []
    for study in settings.studies:
        study_result = _run_study(study, incidents, coverage, settings, folder, stage, shared)
        result.files.extend(study_result.files)
        result.summaries[study.name] = study_result.summary
        sections.append(study_result.markdown)

    with stage("report"):
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
        try:
            from geo_crime.report import markdown_to_html

            html = markdown_to_html(text, base=folder, title=f"geo_crime run {settings.name}")
            result.files.append(atomic_write_text(folder / "report.html", html))
        except ImportError:  # pragma: no cover - optional renderer
            pass
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
    from geo_crime.stats import run_statistic, write_table
    from geo_crime.units import assign_units, make_units

    study_folder = folder / "analysis" / study.name
    public_folder = folder / "public" / study.name
    study_folder.mkdir(parents=True, exist_ok=True)
    public_folder.mkdir(parents=True, exist_ok=True)
    chosen = select_incidents(incidents, study)
    summary: dict = {"settings": asdict(study), "incidents": int(len(chosen)), "units": {}}
    written: list[Path] = []
    lines = [f"## Study `{study.name}`", ""]
    lines.append(
        f"{len(chosen):,} incidents"
        + (f" in division(s) {', '.join(map(str, study.areas))}" if study.areas else "")
        + (f", {study.start} to {study.end}" if study.start or study.end else "")
        + f"; periods: {study.freq}; measure: {study.measure}."
    )
    lines.append("")
    outlines = _in_areas(shared.divisions, study.areas)
    area_polygon = outlines.union_all() if study.areas else None
    rd_outlines = shared.rds(study.areas)
    for spec in study.units:
        label = spec.replace(":", "")
        with stage(f"{study.name}: units {spec}"):
            if spec.startswith("h3"):
                units = make_units(spec, chosen, study_area=area_polygon or "city")
            elif spec.startswith("rd"):
                units = rd_outlines
            else:
                units = _in_areas(make_units(spec, incidents), study.areas)
            unit_ids, assignment = assign_units(chosen, units)
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
        unit_summary: dict = {
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
                    outcome = run_statistic(
                        cube,
                        stat,
                        measure=study.measure,
                        permutations=settings.permutations,
                        seed=settings.seed,
                        weights=weights,
                    )
                tables[stat] = outcome
                stat_summary = dict(outcome.summary)
                stat_summary["warnings"] = [str(w.message) for w in caught]
                unit_summary["statistics"][stat] = stat_summary
                path = study_folder / f"{stat}_{label}.parquet"
                write_table(outcome.table, path)
                written.append(path)
        forecast_table = None
        if study.forecast:
            with stage(f"{study.name}: forecast {spec}"):
                forecast_table, backtest, files = _forecast(cube, label, public_folder, settings)
                written.extend(files)
                unit_summary["forecast"] = backtest
                lines_forecast = _forecast_markdown(
                    spec, cube, units, forecast_table, backtest, label
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
            )
            written.extend(public)
            unit_summary["public_files"] = [str(p) for p in public]
        summary["units"][spec] = unit_summary
        lines.extend(_statistics_markdown(spec, cube, units, unit_summary, tables))
        if forecast_table is not None:
            lines.extend(lines_forecast)
        figures = [Path(p) for p in unit_summary.get("public_files", []) if str(p).endswith(".png")]
        if figures:
            lines.append(f"Figures (`{spec}`):")
            lines.append("")
            for figure in figures:
                relative = figure.relative_to(folder).as_posix()
                lines.append(f"![{figure.stem.replace('_', ' ')}]({relative})")
            lines.append("")
    return _StudyResult(summary, "\n".join(lines), written)


def _forecast(cube, label, folder, settings):
    """Backtest (fast configuration) and a next-period forecast for one cube."""
    import dataclasses

    from geo_crime.forecast import FAST_CONFIG, evaluate, predict_next, train, write_forecast_report

    config = dataclasses.replace(FAST_CONFIG, target="severity")
    result = evaluate(
        cube, n_origins=8, refit_every=4, config=config, seed=settings.seed, name=label
    )
    files = write_forecast_report(result, folder / f"forecast_{label}")
    # forecast from the last period whose history is trustworthy for every unit (the data may
    # end in a thin or partial period, e.g. after the 2024 records-system change)
    share = cube.period_complete_share()
    last = int(np.flatnonzero(share >= share.max())[-1]) if len(share) else 0
    recent = cube.select_periods(slice(0, last + 1))
    model = train(recent, config=config, seed=settings.seed)
    table = predict_next(model, recent)
    path = folder / f"forecast_{label}" / "next_period_forecast.csv"
    from geo_crime.io_utils import atomic_path

    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False)
    files.append(path)
    metrics = result.metrics
    summary = {
        "origins": [str(o.date()) for o in result.origins],
        "metrics": metrics.astype(float).round(4).to_dict(orient="index"),
        "next_period": str(pd.Timestamp(table["period"].iloc[0]).date()) if len(table) else "",
    }
    return table, summary, files


def _forecast_markdown(spec, cube, units, table, backtest, label) -> list[str]:
    """Forecast accuracy and resource-allocation recommendations for one unit type."""
    metrics = pd.DataFrame(backtest["metrics"]).T
    lines = [f"#### Forecast and recommendations (`{spec}`)", ""]
    if metrics.empty or "keras" not in metrics.index:
        return [*lines, "Too few complete periods for a backtest.", ""]
    lines.append(
        f"Backtest over {len(backtest['origins'])} rolling origins (expanding window, fast "
        "configuration, incomplete periods excluded); lower MAE is better, PAI@k is the share of "
        "next-period severity in the top k% of area chosen by the model, over k%."
    )
    lines.append("")
    lines.append("| model | MAE | RMSE | Poisson dev. | PAI@1% | PAI@5% | PAI@10% |")
    lines.append("| --- | --- | --- | --- | --- | --- | --- |")
    for name, row in metrics.sort_values("mae").iterrows():
        lines.append(
            f"| {name} | {row['mae']:.2f} | {row['rmse']:.2f} | {row['poisson_deviance']:.2f} | "
            f"{row['pai_1']:.2f} | {row['pai_5']:.2f} | {row['pai_10']:.2f} |"
        )
    lines.append("")
    best_mae = metrics["mae"].idxmin()
    best_pai = metrics["pai_5"].idxmax()
    keras = metrics.loc["keras"]
    verdict_mae = (
        "has the lowest MAE"
        if best_mae == "keras"
        else f"does **not** beat `{best_mae}` on MAE ({keras['mae']:.2f} vs "
        f"{metrics.loc[best_mae, 'mae']:.2f})"
    )
    verdict_pai = (
        "has the highest PAI@5%"
        if best_pai == "keras"
        else f"does **not** beat `{best_pai}` on PAI@5% ({keras['pai_5']:.2f} vs "
        f"{metrics.loc[best_pai, 'pai_5']:.2f})"
    )
    lines.append(
        f"The Keras model {verdict_mae} and {verdict_pai}. Where a simple baseline "
        "does as well, prefer it: it is cheaper and easier to explain."
    )
    lines.append("")
    shares = ", ".join(
        f"top {k}% of area holds {keras[f'pai_{k}'] * k:.0f}% of next-period severity"
        for k in (1, 5, 10)
    )
    lines.append(f"Harm captured by targeting with the Keras forecast (backtest): {shares}.")
    lines.append("")
    # ranked units for the next period, overall and by division
    ranked = table.merge(
        units[["unit_id", "area"]] if "area" in units else units[["unit_id"]],
        on="unit_id",
        how="left",
    ).sort_values("prediction", ascending=False)
    period = backtest.get("next_period", "")
    lines.append(
        f"Units with the highest forecast severity for the period starting {period} "
        "(80% interval in brackets):"
    )
    lines.append("")
    lines.append("| rank | unit | division | forecast | interval |")
    lines.append("| --- | --- | --- | --- | --- |")
    for rank, row in enumerate(ranked.head(10).itertuples(index=False), start=1):
        division = "" if "area" not in ranked or pd.isna(row.area) else int(row.area)
        lower = getattr(row, "lower", float("nan"))
        upper = getattr(row, "upper", float("nan"))
        interval = "" if pd.isna(lower) else f"{lower:.0f}-{upper:.0f}"
        lines.append(f"| {rank} | {row.unit_id} | {division} | {row.prediction:.0f} | {interval} |")
    lines.append("")
    if "area" in ranked and ranked["area"].notna().any():
        by_division = ranked.dropna(subset=["area"]).groupby("area")
        lines.append(
            "By division: the units to prioritise first (the top 10% of each "
            "division's units by forecast) and the share of the division's forecast "
            "severity they hold:"
        )
        lines.append("")
        lines.append("| division | units | top units | share of forecast severity |")
        lines.append("| --- | --- | --- | --- |")
        for area, group in by_division:
            k = max(1, int(np.ceil(0.1 * len(group))))
            top = group.head(k)
            total = group["prediction"].sum()
            share = top["prediction"].sum() / total if total > 0 else float("nan")
            names = ", ".join(top["unit_id"].head(3).astype(str)) + (" ..." if k > 3 else "")
            lines.append(f"| {int(area)} | {len(group)} | {names} | {share:.0%} |")
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
    spec, label, cube, units, tables, outlines, rd_outlines, folder, settings, *, forecast
) -> list[Path]:
    """The public outputs of one unit type: map, GIS layers, figures (aggregates only)."""
    from geo_crime.export import export_layers
    from geo_crime.figures import write_figures
    from geo_crime.maps import MapLayers, write_map
    from geo_crime.query import unit_results
    from geo_crime.stats import unit_values

    per_period, _ = unit_values(cube, "severity")
    summary_table = unit_results(
        units,
        measures={
            "count": cube.total("count").astype(int),
            "severity": cube.total("severity"),
            "harm": cube.total("harm"),
            "severity_per_complete_period": per_period,
        },
    )
    layers = MapLayers.from_cube(
        cube,
        gi=tables["gi"].table if "gi" in tables else None,
        lisa=tables["lisa"].table if "lisa" in tables else None,
        emerging=tables["emerging"].table if "emerging" in tables else None,
        forecast=forecast,
        divisions=outlines,
        rds=rd_outlines,
    )
    if "population" in units and units["population"].fillna(0).sum() > 0:
        # raw rates explode where almost nobody lives (the airport, parks): map the Empirical
        # Bayes smoothed rate, undefined where no one lives
        from geo_crime.rates import eb_smooth

        smoothed, _ = eb_smooth(
            layers.units["severity"].to_numpy(dtype=float),
            units["population"].to_numpy(dtype=float),
        )
        layers.units["severity_rate"] = np.asarray(smoothed, dtype=float)
        layers.measure_label = "Severity per 1,000 residents (Empirical Bayes smoothed)"
    files = [
        write_map(
            layers,
            folder / f"map_{label}.html",
            offline=settings.offline_map,
            k_anonymity=settings.k_anonymity,
            scheme="quantiles",  # rates are heavily skewed: quintiles read better than breaks
        )
    ]
    export = {f"{label}_summary": summary_table}
    for stat in ("gi", "lisa", "emerging"):
        if stat in tables:
            export[f"{label}_{stat}"] = tables[stat].table
    if forecast is not None:
        export[f"{label}_forecast"] = units[["unit_id", "geometry"]].merge(forecast, on="unit_id")
    counts = summary_table.set_index("unit_id")["count"]
    files += export_layers(
        export,
        folder / "gis",
        k_anonymity=settings.k_anonymity,
        counts=counts,
        gpkg_name=f"geo_crime_{label}.gpkg",
    )
    moran = tables["moran"].result if "moran" in tables else None
    files += write_figures(
        folder / f"figures_{label}",
        units=summary_table,
        gi=tables["gi"].table if "gi" in tables else None,
        lisa=tables["lisa"].table if "lisa" in tables else None,
        moran=moran,
        outlines=outlines,
        k_anonymity=settings.k_anonymity,
    )
    return files


def _top_rate_lines(cube, units, k: int = 10) -> list[str]:
    """Top units by severity per 1,000 residents (Empirical Bayes smoothed), for the report."""
    from geo_crime.rates import eb_smooth, rate_per_1000

    if "population" not in units or units["population"].fillna(0).sum() <= 0:
        return []
    complete = cube.complete
    weeks = np.maximum(complete.sum(axis=1), 1)
    severity = np.where(complete, cube.severity, 0).sum(axis=1)
    counts = np.where(complete, cube.counts, 0).sum(axis=1)
    population = units["population"].to_numpy(dtype=float)
    raw, _ = rate_per_1000(severity / weeks, population)
    smoothed, _ = eb_smooth(severity / weeks, population)
    table = pd.DataFrame(
        {
            "unit": units["unit_id"].to_numpy(),
            "residents": population.round(0),
            "incidents": counts,
            "severity per 1,000 residents per period": np.asarray(raw, dtype=float),
            "EB-smoothed": np.asarray(smoothed, dtype=float),
        }
    )
    table = table[table["incidents"] >= 3]  # the report shows no unit below k = 3 incidents
    top = table.sort_values("EB-smoothed", ascending=False).head(k)
    lines = [
        "Top units by severity rate (per 1,000 residents per complete period, Empirical Bayes "
        "smoothed so that units with few residents do not top the list by chance; units with "
        "fewer than 3 incidents are not shown). Residents are not the people exposed: places "
        "with many visitors and few residents (the airport, downtown, parks) rank high on any "
        "residential rate.",
        "",
        "| unit | residents | incidents | raw rate | EB-smoothed |",
        "| --- | --- | --- | --- | --- |",
    ]
    for row in top.itertuples(index=False):
        lines.append(f"| {row[0]} | {row[1]:,.0f} | {row[2]:,} | {row[3]:.2f} | {row[4]:.2f} |")
    lines.append("")
    return lines


def _statistics_markdown(spec, cube, units, unit_summary, tables) -> list[str]:
    """Report lines for one unit type of a study."""
    lines = [f"### Units `{spec}`", ""]
    approx = (
        " (approximate boundaries derived from incident points)"
        if unit_summary["approximate"]
        else ""
    )
    lines.append(
        f"{unit_summary['units']:,} units{approx}; {unit_summary['periods']} periods, "
        f"{unit_summary['complete_periods']} complete for every unit. Incidents outside the "
        f"units: {unit_summary['assignment']['outside']:,}."
    )
    lines.append("")
    stats = unit_summary["statistics"]
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
    lines.extend(_top_rate_lines(cube, units))
    if "gi" in tables:
        gi = tables["gi"].table
        top = gi.sort_values("gi_z", ascending=False).head(10)
        lines.append("Top units by Gi* z-score:")
        lines.append("")
        lines.append("| unit | Gi* z | class |")
        lines.append("| --- | --- | --- |")
        for row in top.itertuples():
            lines.append(f"| {row.unit_id} | {row.gi_z:.2f} | {row.gi_label} |")
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

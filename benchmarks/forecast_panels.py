"""Every forecaster, the field's methods and the references on the five real panels, judged.

    python benchmarks/forecast_panels.py                 # writes benchmarks/forecast.md (+ .json)
    python benchmarks/forecast_panels.py --seeds 0 --panels westla_2020_21_weekly:rd --out /tmp/f.md
    python benchmarks/forecast_panels.py --render        # the Markdown again, from the saved JSON

The panels are those of ``examples/forecast_panels.toml`` (West LA 2020-21 weekly RD and H3-9;
city-wide 2024 weekly H3-8 and RD, coverage-masked; the 21 divisions daily, the original study's
task), built from the real rows in the data folder by the pipeline itself (units, coverage,
cube), so the cubes are exactly those of ``geo-crime run``. Each panel is backtested with that
file's models, origins and refits (rolling origins, expanding window, every model scored on the
same cells; :func:`geo_crime.forecast.evaluate`) once per seed; the stochastic models (``keras``,
``gbm``, ``study_conv1d``) change with the seed, the others do not. Every model of
:data:`geo_crime.forecast.DEFAULT_MODELS` (or of the panel's ``forecast_models``) is scored,
the field's methods ``kde``, ``prospective`` and ``sepp`` included, beside the references
``zero`` and ``clairvoyant``. The daily panel also runs the original study's own protocol
(:func:`geo_crime.forecast.reproduce_study`: its Conv1D, the naive forecasts, the field's
methods and our Keras model on its 80/20 split of the complete days).

Verdicts (per panel). The backtest's per-origin scores are averaged over the seeds (each model's
error sums and PAI at each origin), and models are compared on them with the paired bootstrap
of :mod:`geo_crime.forecast.verdicts` (origins resampled, 95% interval of the difference): on
Poisson deviance (the level of next-period severity), harm-weighted PAI@5% (where to act) and
PAI@1% where it is reported. A model **wins** only where its interval against every other model
excludes zero; otherwise the models tie, and the simplest of the tied ones
(:func:`geo_crime.forecast.verdicts.simplicity`) is the one to use. Each seed's own judgements
are stored in the JSON too. Keras hyperparameters are not tuned here (``--config`` picks the fast
or the default settings); tuning is the panel file's job.

The Markdown is written by :func:`benchmarks.forecast_report.write_markdown` (imported here),
which takes further Markdown lines appended after the panels (``extra``, in :func:`main`): the
hook of later sections built by other functions (e.g. "Daily per-crime-group panels").
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from benchmarks import group_panels  # noqa: E402
from benchmarks.forecast_report import (  # noqa: E402
    VERDICT_METRICS,
    metric_verdict,
    network_lines,
    write_markdown,
)
from geo_crime.core.io_utils import atomic_write_text  # noqa: E402
from geo_crime.cube.panel import Cube  # noqa: E402
from geo_crime.forecast.verdicts import JUDGED, judgements  # noqa: E402
from geo_crime.settings import RunSettings  # noqa: E402
from geo_crime.units.spec import unit_label  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PANELS_FILE = ROOT / "examples" / "forecast_panels.toml"
COMMAND = "python benchmarks/forecast_panels.py"

#: Metrics judged on the seed-averaged per-origin scores (PAI@1% only where reported).
JUDGED_HERE = (*JUDGED, "pai_1")
#: Columns averaged over seeds in the per-panel tables.
TABLE_METRICS = ("mae", "rmse", "poisson_deviance", "pai_5", "pai_1", "coverage_80", "fit_seconds")


def build_cubes(
    config_file: Path = PANELS_FILE, studies: Sequence[str] | None = None
) -> tuple[dict[str, Cube], dict[str, object]]:
    """Run the pipeline without forecasts to build the panels' cubes from the real rows.

    Parameters
    ----------
    config_file : Path
        The panels file.
    studies : sequence of str, optional
        Build only these studies' cubes (default: every study of the file).

    Returns
    -------
    (dict, dict)
        Cubes and study settings, both keyed by ``<study>:<unit spec>``.
    """
    from geo_crime.pipeline import run_pipeline

    settings = RunSettings.from_sources(config_file=config_file)
    if studies:
        settings.studies = [s for s in settings.studies if s.name in set(studies)]
    folder = Path(tempfile.mkdtemp(prefix="geo_crime_panels_"))
    settings.outputs = folder
    for study in settings.studies:
        study.forecast = False
        study.statistics = []
    run_pipeline(settings)
    cubes, chosen = {}, {}
    for study in settings.studies:
        for spec in study.units:
            key = f"{study.name}:{spec}"
            path = (
                folder
                / settings.name
                / "analysis"
                / study.name
                / f"cube_{unit_label(spec)}.parquet"
            )
            cubes[key] = Cube.load(path)
            chosen[key] = study
    return cubes, chosen


def backtest_panel(
    cube: Cube, study, seed: int, config_name: str, models: Sequence[str] | None = None
) -> tuple[dict, pd.DataFrame]:
    """One seed's backtest (and, for a daily panel, the study's protocol) of one panel.

    Parameters
    ----------
    cube : Cube
        The panel.
    study : StudySettings
        Its study (origins, refits, models, whether to reproduce the original study).
    seed : int
        Seed of the stochastic models.
    config_name : {"fast", "default"}
        Keras settings.
    models : sequence of str, optional
        Overrides the study's ``forecast_models`` (default: the study's, else every default).

    Returns
    -------
    (dict, pandas.DataFrame)
        The run's JSON record (metrics, fit timings, judgements, notes ...) and the backtest's
        per-origin scores (pooled over seeds by :func:`pooled_judgements`).
    """
    from geo_crime.forecast import KerasForecaster, evaluate, reproduce_study

    study.forecast_config = config_name
    config = study.keras_config()
    start = time.perf_counter()
    result = evaluate(
        cube,
        models=list(models or study.forecast_models or []) or None,
        n_origins=study.forecast_origins,
        refit_every=study.refit_every,
        config=config,
        seed=seed,
    )
    out = {
        "seed": seed,
        "seconds": round(time.perf_counter() - start, 1),
        "freq": cube.freq,
        "metrics": result.metrics.astype(float).round(6).to_dict(orient="index"),
        "timings": result.timings,
        "judgements": result.judgements(),
        "origins": [str(result.origins[0].date()), str(result.origins[-1].date())],
        "n_origins": len(result.origins),
        "refit_every": result.config["refit_every"],
        "scored_cells": int(result.metrics["n"].max()),
        "scored_units_per_origin": result.scope.get("scored_units_per_origin", []),
        "keras_config": config.to_dict(),
        "notes": result.notes,
    }
    if study.reproduce_study:
        original = reproduce_study(
            cube,
            seed=seed,
            epochs=30 if config_name == "fast" else 50,
            ours={"keras": KerasForecaster(config, seed=seed)},
        )
        out["study"] = {
            "info": original.info,
            "metrics": original.metrics.astype(float).round(6).to_dict(orient="index"),
        }
    return out, result.origin_scores


def pooled_judgements(scores: Sequence[pd.DataFrame]) -> dict:
    """Paired bootstrap judgements of the per-origin scores averaged over the seeds.

    Parameters
    ----------
    scores : sequence of pandas.DataFrame
        Each seed's per-origin scores (``BacktestResult.origin_scores``), same origins and cells.

    Returns
    -------
    dict
        :func:`geo_crime.forecast.verdicts.judgements` on :data:`JUDGED_HERE`, with
        ``n_seeds``.
    """
    frame = pd.concat(list(scores), ignore_index=True)
    numeric = [c for c in frame.columns if c not in ("model", "origin")]
    mean = frame.groupby(["model", "origin"], sort=False)[numeric].mean().reset_index()
    return {**judgements(mean, JUDGED_HERE), "n_seeds": len(scores)}


def summarise(runs: list[dict]) -> pd.DataFrame:
    """Mean, minimum and maximum over seeds of each model's scores (:data:`TABLE_METRICS`).

    Returns
    -------
    pandas.DataFrame
        One row per model (first run's order), ``seeds`` and ``<metric>``, ``<metric>_min``,
        ``<metric>_max`` columns (NaN where no seed has the metric).
    """
    rows = []
    for model in runs[0]["metrics"]:
        values = pd.DataFrame([r["metrics"][model] for r in runs if model in r["metrics"]])
        row: dict[str, Any] = {"model": model, "seeds": len(values)}
        for metric in TABLE_METRICS:
            col = pd.to_numeric(values[metric], errors="coerce") if metric in values else None
            has = col is not None and col.notna().any()
            row[metric] = col.mean() if has else np.nan
            row[f"{metric}_min"] = col.min() if has else np.nan
            row[f"{metric}_max"] = col.max() if has else np.nan
        rows.append(row)
    return pd.DataFrame(rows).set_index("model")


def panel_record(runs: list[dict]) -> dict:
    """A panel's record from its seeds' runs: the runs, the table over seeds, cells and time."""
    return {
        "runs": runs,
        "table": summarise(runs),
        "scored_cells": runs[0]["scored_cells"],
        "seconds": round(sum(r["seconds"] for r in runs), 1),
    }


def _with_verdicts(record: dict, judged: dict | None) -> dict:
    """The record with its judgements and the verdicts read from them (none without)."""
    if judged is not None:
        record["judgements"] = judged
        record["verdicts"] = {m: metric_verdict(judged, m) for m in VERDICT_METRICS}
    return record


def _saved_groups() -> dict:
    """The saved group panels (empty when they were never run)."""
    if not group_panels.OUT.exists():
        return {}
    return json.loads(group_panels.OUT.read_text(encoding="utf-8"))


def _group_lines() -> list[str]:
    """The saved group panels' section (none when they were never run)."""
    saved = _saved_groups()
    return group_panels.markdown_lines(saved) if saved else []


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--config", choices=("fast", "default"), default="fast")
    parser.add_argument("--panels", nargs="*", help="<study>:<unit spec> keys (default all)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "forecast.md")
    parser.add_argument(
        "--render", action="store_true", help="rewrite the Markdown from the saved JSON only"
    )
    parser.add_argument(
        "--no-groups",
        action="store_true",
        help="skip the daily per-crime-group panels (benchmarks/group_panels.py); their saved "
        "results are still rendered",
    )
    args = parser.parse_args(argv)
    # the daily per-crime-group panels, appended at the end
    extra = _group_lines()
    if args.render:
        saved = json.loads(args.out.with_suffix(".json").read_text(encoding="utf-8"))
        results = {
            key: _with_verdicts(panel_record(r["runs"]), r.get("judgements"))
            for key, r in saved.items()
        }
        write_markdown(results, args.out, COMMAND, extra, network_lines(results, _saved_groups()))
        print(f"wrote {args.out}")
        return 0
    if not args.no_groups:
        group_panels.main([])
        extra = _group_lines()
    keys = args.panels or None
    cubes, studies = build_cubes(studies=sorted({k.split(":")[0] for k in keys}) if keys else None)
    missing = sorted(set(keys or []) - set(cubes))
    if missing:
        parser.error(f"unknown panel(s) {', '.join(missing)}; known: {', '.join(cubes)}")
    results = {}
    for key in keys or list(cubes):
        runs, scores = [], []
        for seed in args.seeds:
            run, origin_scores = backtest_panel(cubes[key], studies[key], seed, args.config)
            print(f"{key} seed {seed}: {run['seconds']} s", flush=True)
            runs.append(run)
            scores.append(origin_scores)
        results[key] = _with_verdicts(panel_record(runs), pooled_judgements(scores))
        shown = ["mae", "poisson_deviance", "pai_5", "fit_seconds"]
        print(results[key]["table"][shown].round(3).to_string(), flush=True)
    command = COMMAND + (f" --config {args.config}" if args.config != "fast" else "")
    write_markdown(results, args.out, command, extra, network_lines(results, _saved_groups()))
    payload = {
        k: {x: r[x] for x in ("runs", "judgements", "verdicts", "scored_cells", "seconds")}
        for k, r in results.items()
    }
    atomic_write_text(args.out.with_suffix(".json"), json.dumps(payload, indent=2, default=str))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

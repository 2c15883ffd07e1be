"""The forecast bar, measured: every model on the five real panels, three seeds, one command.

    python benchmarks/forecast_panels.py                 # writes benchmarks/forecast.md (+ .json)
    python benchmarks/forecast_panels.py --seeds 0 --panels westla_2020_21_weekly:rd

The panels are those of ``examples/forecast_panels.toml`` (West LA 2020-21 weekly RD and H3-9;
city-wide 2024 weekly H3-8 and RD, coverage-masked; the 21 divisions daily, the original study's
task), built from the real rows in the data folder by the pipeline itself (units, coverage,
cube), so the cubes are exactly those of ``geo-crime run``. Each panel is backtested with that
file's origins and refits (rolling origins, expanding window, every model scored on the same
cells; :func:`geo_crime.forecast.evaluate`) once per seed; the stochastic models (``keras``,
``gbm``, ``study_conv1d``) change with the seed, the others do not. The daily panel also runs the
original study's own protocol (:func:`geo_crime.forecast.reproduce_study`: its Conv1D, the 7-day
mean and our Keras model on its 80/20 split of the complete days).

The bar (per panel): the Keras model's MAE at most 0.97 x the best other model's, and its
harm-weighted PAI@5% at least the best other model's, both on the mean over seeds; intervals with
75-85% empirical coverage. The file says per panel whether it passes and, where it does not,
which model to use instead. Keras hyperparameters are not tuned here (``--config`` picks the
fast or the default settings); tuning is the panel file's job.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from geo_crime.cube import Cube  # noqa: E402
from geo_crime.io_utils import atomic_write_text  # noqa: E402
from geo_crime.settings import RunSettings, unit_label  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PANELS_FILE = ROOT / "examples" / "forecast_panels.toml"
#: The bar of the forecasting issue.
MAE_RATIO_BAR = 0.97
COVERAGE_BAND = (0.75, 0.85)


def build_cubes(config_file: Path = PANELS_FILE) -> tuple[dict[str, Cube], dict[str, object]]:
    """Run the pipeline without forecasts to build every panel's cube from the real rows.

    Returns
    -------
    (dict, dict)
        Cubes and study settings, both keyed by ``<study>:<unit spec>``.
    """
    from geo_crime.pipeline import run_pipeline

    settings = RunSettings.from_sources(config_file=config_file)
    folder = Path(tempfile.mkdtemp(prefix="geo_crime_panels_"))
    settings.outputs = folder
    for study in settings.studies:
        study.forecast = False
        study.statistics = []
    run_pipeline(settings)
    cubes, studies = {}, {}
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
            studies[key] = study
    return cubes, studies


def backtest_panel(cube: Cube, study, seed: int, config_name: str) -> dict:
    """One seed's backtest (and, for a daily panel, the study's protocol) of one panel."""
    from geo_crime.forecast import KerasForecaster, evaluate, reproduce_study

    study.forecast_config = config_name
    config = study.keras_config()
    start = time.perf_counter()
    result = evaluate(
        cube,
        models=study.forecast_models or None,
        n_origins=study.forecast_origins,
        refit_every=study.refit_every,
        config=config,
        seed=seed,
    )
    out = {
        "seed": seed,
        "seconds": round(time.perf_counter() - start, 1),
        "metrics": result.metrics.astype(float).round(6).to_dict(orient="index"),
        "origins": [str(result.origins[0].date()), str(result.origins[-1].date())],
        "n_origins": len(result.origins),
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
    return out


def summarise(runs: list[dict]) -> pd.DataFrame:
    """Mean and range over seeds of each model's MAE, PAI@5% and interval coverage."""
    rows = []
    models = list(runs[0]["metrics"])
    for model in models:
        values = pd.DataFrame([r["metrics"][model] for r in runs if model in r["metrics"]])
        row = {"model": model, "seeds": len(values)}
        for metric in ("mae", "pai_5", "coverage_80"):
            col = pd.to_numeric(values.get(metric), errors="coerce")
            row[metric] = col.mean() if col is not None and col.notna().any() else np.nan
            row[f"{metric}_min"] = col.min() if col is not None else np.nan
            row[f"{metric}_max"] = col.max() if col is not None else np.nan
        rows.append(row)
    return pd.DataFrame(rows).set_index("model")


def verdict(table: pd.DataFrame) -> dict:
    """Whether Keras clears the bar on a panel, and the model to use where it does not."""
    others = table.drop(index="keras")
    best_mae = others["mae"].idxmin()
    pai = others["pai_5"].dropna()
    best_pai = pai.idxmax() if len(pai) else None
    k = table.loc["keras"]
    ratio = float(k["mae"] / others.at[best_mae, "mae"])
    pai_ok = best_pai is None or bool(k["pai_5"] >= others.at[best_pai, "pai_5"])
    coverage = float(k["coverage_80"])
    coverage_ok = COVERAGE_BAND[0] <= coverage <= COVERAGE_BAND[1]
    return {
        "best_baseline_mae": best_mae,
        "mae_ratio": round(ratio, 4),
        "mae_ok": ratio <= MAE_RATIO_BAR,
        "best_baseline_pai_5": best_pai,
        "pai_5_ratio": round(float(k["pai_5"] / others.at[best_pai, "pai_5"]), 4)
        if best_pai
        else None,
        "pai_ok": pai_ok,
        "coverage_80": round(coverage, 4),
        "coverage_ok": coverage_ok,
        "passes": ratio <= MAE_RATIO_BAR and pai_ok and coverage_ok,
        # what to use: the level forecast (MAE) and the ranking of places (PAI@5%), by name
        "use_for_levels": "keras" if ratio <= MAE_RATIO_BAR else best_mae,
        "use_for_ranking": "n/r" if best_pai is None else "keras" if pai_ok else best_pai,
    }


def _fmt(value: float, low: float, high: float, digits: int) -> str:
    if pd.isna(value):
        return ""
    text = f"{value:.{digits}f}"
    if pd.notna(low) and pd.notna(high) and high - low > 10 ** (-digits) / 2:
        text += f" ({low:.{digits}f}-{high:.{digits}f})"
    return text


def write_markdown(results: dict[str, dict], path: Path, command: str) -> Path:
    """The per-panel tables and verdicts as Markdown."""
    lines = [
        "# Forecast backtests on the real panels",
        "",
        f"Regenerate with `{command}` (about {sum(r['seconds'] for r in results.values()) / 60:.0f}"
        " minutes on 2 cores). Written by `benchmarks/forecast_panels.py`; the protocol is in its "
        "docstring and in `geo_crime/forecast/evaluate.py`.",
        "",
        "Every number is a mean over the seeds, with the range over seeds in brackets where the "
        "seeds differ. MAE is in severity points per unit and period (week or day) over the scored "
        "cells; PAI@5% is harm-weighted (share of next-period severity in the 5% of the scored "
        "area ranked highest, divided by 5%); coverage is the share of scored cells inside the 80% "
        "interval. The Keras model is the correction model: at each refit it takes the best of "
        "`last`, `ma4`, `ma8`, `ma13` and `hist_mean` on its validation block as its base and "
        "learns a multiplicative correction, kept only where it beats the base there. Its point "
        "forecast is a **median** (it is trained on the absolute error, the loss MAE scores); the "
        "baselines are means. In zero-heavy panels (small hexagons, most weeks empty) most of its "
        "MAE advantage comes from forecasting the median, which for a quiet cell is zero; PAI, "
        "which only ranks, is unaffected by that choice.",
        "",
        f"The bar: Keras MAE <= {MAE_RATIO_BAR} x the best other model's, and PAI@5% >= the best "
        f"other model's; intervals with {COVERAGE_BAND[0]:.0%}-{COVERAGE_BAND[1]:.0%} coverage.",
        "",
    ]
    passed = [k for k, r in results.items() if r["verdict"]["passes"]]
    lines += [
        f"**Keras clears the bar on {len(passed)} of {len(results)} panels**"
        + (f" ({', '.join(passed)})." if passed else "."),
        "",
        "| panel | cells scored | Keras MAE / best other's | Keras PAI@5% / best other's | "
        "80% coverage | bar | use for levels | use for ranking places |",
        "| --- | ---: | ---: | ---: | ---: | --- | --- | --- |",
    ]
    for key, r in results.items():
        v = r["verdict"]
        pai = (
            f"{v['pai_5_ratio']:.3f} ({v['best_baseline_pai_5']})"
            if v["best_baseline_pai_5"]
            else "n/r (too few units)"
        )
        failed = [
            what
            for what, ok in (
                ("MAE", v["mae_ok"]),
                ("PAI", v["pai_ok"]),
                ("coverage", v["coverage_ok"]),
            )
            if not ok
        ]
        lines.append(
            f"| {key} | {r['scored_cells']:,} | {v['mae_ratio']:.3f} ({v['best_baseline_mae']}) | "
            f"{pai} | {v['coverage_80']:.1%} | "
            f"{'passes' if v['passes'] else 'fails: ' + ', '.join(failed)} | "
            f"{v['use_for_levels']} | {v['use_for_ranking']} |"
        )
    mae_passes = sum(r["verdict"]["mae_ok"] for r in results.values())
    pai_ratios = [
        r["verdict"]["pai_5_ratio"] for r in results.values() if r["verdict"]["pai_5_ratio"]
    ]
    gap = f"{1 - min(pai_ratios):.1%}" if pai_ratios else "n/r"
    lines += [
        "",
        f"MAE: Keras clears the 0.97 bar on {mae_passes} of {len(results)} panels. PAI@5%: the bar "
        "is the highest of seven or eight other models on each panel, a maximum over noisy "
        f"scores; Keras is at most {gap} below it where PAI is reported. Coverage of the 80% "
        "interval: in zero-heavy panels (West LA H3-9, most cell-weeks empty) every interval "
        "that contains zero covers all the empty weeks, so coverage cannot come down to 80% "
        "there.",
        "",
    ]
    for key, r in results.items():
        table = r["table"]
        first = r["runs"][0]
        seeds = ", ".join(str(x["seed"]) for x in r["runs"])
        lines += [
            f"## {key}",
            "",
            f"{first['n_origins']} origins ({first['origins'][0]} to {first['origins'][1]}), "
            f"{r['scored_cells']:,} scored cells; seeds {seeds}; "
            f"Keras settings: lags {first['keras_config']['lags']}, "
            f"{first['keras_config']['units']} units x {first['keras_config']['layers']} layer(s), "
            f"batch {first['keras_config']['batch_size']}, "
            f"up to {first['keras_config']['max_epochs']} epochs; "
            f"{r['seconds']:.0f} s for all seeds.",
            "",
            "| model | MAE | PAI@5% | 80% coverage |",
            "| --- | ---: | ---: | ---: |",
        ]
        for model, row in table.sort_values("mae").iterrows():
            lines.append(
                f"| {model} | {_fmt(row['mae'], row['mae_min'], row['mae_max'], 3)} | "
                f"{_fmt(row['pai_5'], row['pai_5_min'], row['pai_5_max'], 3)} | "
                f"{_fmt(row['coverage_80'], row['coverage_80_min'], row['coverage_80_max'], 3)} |"
            )
        lines.append("")
        v = r["verdict"]
        pai_words = (
            f"PAI@5% {v['pai_5_ratio']:.3f} x {v['best_baseline_pai_5']}'s"
            if v["best_baseline_pai_5"]
            else "PAI not reported (too few units)"
        )
        lines.append(
            f"Keras {'clears' if v['passes'] else 'does not clear'} the bar here: MAE "
            f"{v['mae_ratio']:.3f} x {v['best_baseline_mae']}'s, {pai_words}, 80% coverage "
            f"{v['coverage_80']:.1%}. Use **{v['use_for_levels']}** for the level of next "
            f"period's severity"
            + (
                f" and **{v['use_for_ranking']}** to rank places."
                if v["best_baseline_pai_5"]
                else "."
            )
        )
        lines.append("")
        for note in first["notes"]:
            lines.append(f"- {note}")
        if first["notes"]:
            lines.append("")
        studies = [x["study"] for x in r["runs"] if "study" in x]
        if studies:
            info = studies[0]["info"]
            lines += [
                "### The original study's own protocol",
                "",
                f"Daily severity of the {info['n_units']} divisions, {info['window']}-day windows, "
                f"trained on {info['training_days'][0]} to {info['training_days'][1]}, tested on "
                f"{info['test_days'][0]} to {info['test_days'][1]} ({info['test_forecasts']:,} "
                "division-days), the study's 80/20 split of the longest run of complete days. "
                "`study_conv1d` is its network (divisions as channels); `mean_7d` and `last_day` "
                "the naive forecasts it lacked; `keras` ours, trained on the same days.",
                "",
                "| model | MAE | RMSE | MAE / range (the study's scale) |",
                "| --- | ---: | ---: | ---: |",
            ]
            for model in studies[0]["metrics"]:
                vals = pd.DataFrame([s["metrics"][model] for s in studies])
                cells = [
                    _fmt(vals[m].mean(), vals[m].min(), vals[m].max(), digits)
                    for m, digits in (("mae", 1), ("rmse", 1), ("mae_minmax", 4))
                ]
                lines.append(f"| {model} | " + " | ".join(cells) + " |")
            lines.append("")
    return atomic_write_text(path, "\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--config", choices=("fast", "default"), default="fast")
    parser.add_argument("--panels", nargs="*", help="<study>:<unit spec> keys (default all)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "forecast.md")
    parser.add_argument(
        "--render", action="store_true", help="rewrite the Markdown from the saved JSON only"
    )
    args = parser.parse_args(argv)
    if args.render:
        saved = json.loads(args.out.with_suffix(".json").read_text(encoding="utf-8"))
        results = {}
        for key, r in saved.items():
            table = summarise(r["runs"])
            results[key] = {**r, "table": table, "verdict": verdict(table)}
        write_markdown(results, args.out, "python benchmarks/forecast_panels.py")
        print(f"wrote {args.out}")
        return 0
    cubes, studies = build_cubes()
    keys = args.panels or list(cubes)
    results = {}
    for key in keys:
        runs = []
        for seed in args.seeds:
            run = backtest_panel(cubes[key], studies[key], seed, args.config)
            print(f"{key} seed {seed}: {run['seconds']} s", flush=True)
            runs.append(run)
        table = summarise(runs)
        results[key] = {
            "runs": runs,
            "table": table,
            "verdict": verdict(table),
            "scored_cells": runs[0]["scored_cells"],
            "seconds": sum(r["seconds"] for r in runs),
        }
        print(table[["mae", "pai_5", "coverage_80"]].round(3).to_string(), flush=True)
    command = "python benchmarks/forecast_panels.py" + (
        f" --config {args.config}" if args.config != "fast" else ""
    )
    write_markdown(results, args.out, command)
    payload = {
        k: {**{x: r[x] for x in ("runs", "verdict", "scored_cells", "seconds")}}
        for k, r in results.items()
    }
    atomic_write_text(args.out.with_suffix(".json"), json.dumps(payload, indent=2, default=str))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

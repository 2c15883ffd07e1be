"""Daily crime-group panels: the pooled group network against the field's best and their stack.

    python benchmarks/group_panels.py                  # both panels; writes forecast_groups.json
    python benchmarks/group_panels.py --panels westla_2020_21_daily_groups --seeds 0

Two panels of tomorrow's incidents per H3 resolution-9 cell (about 0.1 km², 175 m edges) and crime
group (burglary, vehicle crime, robbery, assault; :mod:`geo_crime.forecast.groups`), built from
the real rows in the data folder:

* ``westla_2020_21_daily_groups``: West LA (division 8), 2020-03-15 to 2021-07-31, 1,430 cells;
* ``citywide_2024_daily_groups``: the 21 divisions, 2024-01-01 to 2024-09-30, every cell with
  an incident; the daily coverage mask (all crime, per division) leaves the days up to late
  April 2024 usable (the legacy records thin out after the records-system change).

Each group is backtested at every usable origin (:func:`geo_crime.forecast.group_backtest.
evaluate_groups`): ``hist_mean``, ``gbm`` (the backtest's features, at most 100 boosting
iterations: a daily H3-9 panel gives it half a million training rows per fit), ``kde``, ``sepp``,
``prospective``, their online stacked ensemble ``stack`` and the pooled network ``groupnet``,
beside the references. The goal
of the network: PAI@1% (share of the group's incidents in the top 1% of the area, over 1%) at
least 1.10 x the best of ``hist_mean``, ``gbm``, ``kde``, ``sepp`` and ``stack``, with a paired
95% interval over origins excluding 1, per group and pooled over the groups.

Run it alone, or with ``OMP_NUM_THREADS=1`` when other work shares the two cores: the thread
pools of scikit-learn and TensorFlow oversubscribe them otherwise (gbm's fits took ten times as
long beside another benchmark).

:func:`markdown_lines` renders the saved results for ``benchmarks/forecast.md``
(``benchmarks/forecast_panels.py`` appends them).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from geo_crime.core.config import data_dir  # noqa: E402
from geo_crime.core.io_utils import atomic_write_text  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "forecast_groups.json"

PANELS = {
    "westla_2020_21_daily_groups": {
        "label": "West LA, 2020-03-15 to 2021-07-31, daily, H3-9",
        "files": [
            "Crime_Data_from_2020_to_Present__bigdataforsocialjustice_WestLA2020_modified.csv.gz"
        ],
        "start": "2020-03-15",
        "end": "2021-07-31",
        "min_train_periods": 91,
    },
    "citywide_2024_daily_groups": {
        "label": "the 21 divisions, 2024-01-01 to 2024-09-30, daily, H3-9",
        "files": ["kyleW145_2024_by_area"],
        "start": "2024-01-01",
        "end": "2024-09-30",
        "min_train_periods": 56,
    },
}


def build_panel(key: str, cache: Path | None = None):
    """The group cubes of one panel from the real rows (units, coverage, cubes)."""
    from geo_crime.forecast.groups import group_counts, group_panel
    from geo_crime.ingest import load_incidents

    spec = PANELS[key]
    files: list[Path] = []
    for name in spec["files"]:
        path = data_dir() / "lapd_crime" / name
        files += sorted(path.glob("*.json.gz")) if path.is_dir() else [path]
    frame, _ = load_incidents(files, cache=cache)
    cubes = group_panel(frame, start=spec["start"], end=spec["end"])
    return cubes, group_counts(frame)


def run_panel(key: str, seed: int = 0, progress=print) -> dict:
    """Backtest one panel; the JSON-ready summary with its wall time."""
    from geo_crime.forecast.group_backtest import evaluate_groups

    t0 = time.perf_counter()
    cubes, counts = build_panel(key)
    from geo_crime.forecast.evaluate import make_model
    from geo_crime.forecast.group_backtest import GROUP_MODELS

    # gbm as every backtest builds it, with at most 100 boosting iterations (300 by default): a
    # daily H3-9 panel gives it half a million training rows per fit
    gbm = make_model("gbm", seed=seed, target="count")
    gbm.max_iter = 100
    models = [gbm if m == "gbm" else m for m in GROUP_MODELS]
    result = evaluate_groups(
        cubes,
        models=models,
        name=PANELS[key]["label"],
        seed=seed,
        min_train_periods=PANELS[key]["min_train_periods"],
        progress=progress,
    )
    out = result.to_dict()
    out["seed"] = seed
    out["rows_per_group"] = counts
    out["seconds"] = round(time.perf_counter() - t0, 1)
    return out


def _num(value, digits: int = 3) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def _goal_words(goal: dict) -> str:
    if goal.get("best") is None:
        return "not measured (PAI@1% not reported)"
    interval = (
        f"95% interval {goal['low']:.2f}-{goal['high']:.2f}"
        if goal.get("low") is not None
        else "no interval"
    )
    verdict = "**met**" if goal["met"] else "not met"
    ceiling = (
        f"; the clairvoyant reference reaches {goal['ceiling']:.3f} x"
        if goal.get("ceiling") is not None
        else ""
    )
    return (
        f"{goal['ratio']:.3f} x {goal['best']} ({interval}, {goal['n_origins']} origins): "
        f"{verdict}{ceiling}"
    )


def markdown_lines(results: dict[str, dict]) -> list[str]:
    """The "Daily per-crime-group panels" section of ``benchmarks/forecast.md``."""
    lines = [
        "## Daily per-crime-group panels: where a network could add information",
        "",
        "Tomorrow's incidents of each crime group per H3-9 cell (about 0.1 km²), scored at every "
        "usable daily origin. `groupnet` is the pooled network of "
        "`geo_crime/forecast/deep.py` (decayed rates of every group, first- and second-ring "
        "neighbour means, the fitted KDE surface and SEPP excitation as inputs; one Poisson head "
        "per group plus a listwise ranking term). `stack` is the online non-negative "
        "least-squares stack of hist_mean, gbm, kde and sepp (weights from earlier origins "
        "only). PAI here is count-weighted: the share of the group's next-day incidents in the "
        "top k% of the area, over k%. Poisson deviance is in incidents per cell-day. The goal: "
        "groupnet's PAI@1% at least 1.10 x the best of hist_mean, gbm, kde, sepp and stack (the "
        "best chosen on the test origins themselves, which favours the candidates), with the "
        "paired 95% interval of the ratio over origins excluding 1. "
        f"Regenerate with `python benchmarks/group_panels.py` "
        f"(about {sum(r['seconds'] for r in results.values()) / 60:.0f} minutes on 2 cores).",
        "",
        "| panel | group | origins | cells scored | groupnet PAI@1% / best candidate's |",
        "| --- | --- | ---: | ---: | --- |",
    ]
    for key, r in results.items():
        for group, goal in r["goal"].items():
            info = r["info"].get(group, {})
            lines.append(
                f"| {key} | {group} | {info.get('n_origins', '')} | "
                f"{info.get('scored_cells', ''):,} | {_goal_words(goal)} |"
                if info
                else f"| {key} | {group} (mean over groups per origin) | | | {_goal_words(goal)} |"
            )
    met = [(k, g) for k, r in results.items() for g, goal in r["goal"].items() if goal["met"]]
    lines += [
        "",
        f"The goal is met on {len(met)} of "
        f"{sum(len(r['goal']) for r in results.values())} panel-groups"
        + (": " + ", ".join(f"{k} {g}" for k, g in met) + "." if met else "."),
        "",
    ]
    for key, r in results.items():
        lines += [f"### {key}", "", f"{r['name']}; seed {r['seed']}; {r['seconds']:.0f} s.", ""]
        for group, table in r["metrics"].items():
            info = r["info"][group]
            lines += [
                f"**{group}**: {info['incidents']:,} incidents in the cube, {info['n_units']:,} "
                f"cells, {info['n_origins']} origins ({info['origins'][0]} to "
                f"{info['origins'][1]}), {info['scored_cells']:,} scored cell-days.",
                "",
                "| model | Poisson deviance | MAE | PAI@1% | PAI@5% | fit s (fits) |",
                "| --- | ---: | ---: | ---: | ---: | ---: |",
            ]
            timing = r["timings"].get(group, {})
            for model, row in sorted(table.items(), key=lambda kv: -(kv[1].get("pai_1") or 0.0)):
                t = timing.get(model)
                fit = f"{t['fit_seconds']:.1f} ({t['fits']})" if t else ""
                label = f"{model} (reference)" if model in ("zero", "clairvoyant") else model
                lines.append(
                    f"| {label} | {_num(row.get('poisson_deviance'), 4)} | "
                    f"{_num(row.get('mae'), 4)} | {_num(row.get('pai_1'), 2)} | "
                    f"{_num(row.get('pai_5'), 2)} | {fit} |"
                )
            judged = r["judgements"].get(group) or {}
            for metric in ("poisson_deviance", "pai_1", "pai_5"):
                j = judged.get(metric)
                if not j:
                    continue
                tied = j["tied"]
                words = (
                    f"**{j['best']}** wins"
                    if len(tied) == 1
                    else f"tie of {len(tied)} ({', '.join(tied)}): use **{j['use']}**"
                )
                lines.append(f"- {j['label']}: {words}.")
            lines.append("")
        for note in r["notes"]:
            lines.append(f"- {note}")
        lines.append("")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--panels", nargs="*", choices=list(PANELS), default=list(PANELS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    results = {}
    for key in args.panels:
        for seed in args.seeds:
            run = run_panel(key, seed, progress=lambda line: print(f"  {line}", flush=True))
            name = key if len(args.seeds) == 1 else f"{key}_seed{seed}"
            results[name] = run
            print(f"{name}: {run['seconds']} s; goal {run['goal']['pooled']}", flush=True)
    atomic_write_text(args.out, json.dumps(results, indent=2, default=str))
    print("\n".join(markdown_lines(results)))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

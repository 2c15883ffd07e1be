"""Benchmark every stage side by side on large resampled LAPD files.

Each stage runs in its own fresh Python process (so peak memory is that stage's own, measured as
the child's maximum resident set size), several times; the table shows the median, and ratios
are computed between stages measured in the same run. Results are printed and saved as JSON.

Usage::

    python benchmarks/run.py                       # 1M rows, 3 repetitions
    python benchmarks/run.py --rows 5000000 --repeat 1 --stages ingest_cold,pyarrow_read_csv

The input files are built once by ``benchmarks/make_data.py`` (resampled real rows) and kept in
``--workdir`` (default ``/tmp/geo_crime_bench``), outside the repository. The ``cube_dask_*``
and ``run_dask_*`` stages read a partitioned dataset of ``--rows`` rows instead, built in 5M-row
batches by ``benchmarks/make_dataset.py`` (no process ever holds the whole set)::

    python benchmarks/run.py --rows 30000000 --repeat 1 \
        --stages cube_dask_in_memory,cube_dask_1_worker,cube_dask_2_workers

The ``run_dask_*`` stages run a whole city-wide study (``geo-crime run DIR``) on the same
dataset, in one process and on two Dask workers, and compare the reports' digests::

    python benchmarks/run.py --rows 10000000 --repeat 1 \
        --stages run_dask_in_memory,run_dask_2_workers

A stage whose processes together hold more than ``--memory-cap-gb`` (default 20) is stopped and
reported as out of memory.

Long because every stage is registered here, next to the child-process runner and the tables,
so that one file shows what is measured and how.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.dask_cube_bench import peak_rss_mb, status_mb  # noqa: E402
from benchmarks.make_dataset import BATCH_ROWS, ensure_dataset  # noqa: E402

STAGES: dict[str, Callable[[dict, dict], None]] = {}
PREPARE: dict[str, Callable[[dict], dict]] = {}


def stage(name: str, *, prepare: Callable[[dict], dict] | None = None):
    """Register a stage: ``func(ctx, state)`` is timed; ``prepare(ctx)`` builds ``state``."""

    def register(func: Callable[[dict, dict], None]) -> Callable[[dict, dict], None]:
        STAGES[name] = func
        if prepare is not None:
            PREPARE[name] = prepare
        return func

    return register


# --- stages -----------------------------------------------------------------------------------
#
# Each stage is (prepare, timed). ``prepare`` runs untimed in the same child process and returns
# the state the timed part needs (so loading a cached frame is not charged to, say, the cube).


def _incidents(ctx: dict):
    from geo_crime.ingest import load_incidents

    return load_incidents(ctx["csv"], cache=ctx["cache"])[0]


def _h3_units():
    from geo_crime.units import h3_units

    return h3_units(8)


def _import_readers(ctx: dict) -> dict:
    """Import the modules both readers need, so that import time is not charged to either."""
    import pyarrow.csv  # noqa: F401

    import geo_crime.ingest  # noqa: F401
    from geo_crime.ingest.severity import severity_table, weapon_table

    severity_table(), weapon_table()
    return {}


@stage("pyarrow_read_csv", prepare=_import_readers)
def _pyarrow_read(ctx: dict, state: dict) -> None:
    import pyarrow.csv as pacsv

    pacsv.read_csv(ctx["csv"])


@stage("ingest_cold", prepare=_import_readers)
def _ingest_cold(ctx: dict, state: dict) -> None:
    from geo_crime.ingest import load_incidents

    load_incidents(ctx["csv"], cache=False)


@stage("ingest_cached", prepare=lambda ctx: {"warm": _incidents(ctx)})
def _ingest_cached(ctx: dict, state: dict) -> None:
    from geo_crime.ingest import load_incidents

    load_incidents(ctx["csv"], cache=ctx["cache"])


def _points(ctx: dict) -> dict:
    frame = _incidents(ctx)
    valid = frame[frame["spatial_valid"]]
    return {"lat": valid["lat"].to_numpy(), "lon": valid["lon"].to_numpy(), "frame": frame}


@stage("h3_binning", prepare=_points)
def _h3_binning(ctx: dict, state: dict) -> None:
    from geo_crime.units import h3_cells

    h3_cells(state["lat"], state["lon"], 8)


def _points_and_hexes(ctx: dict) -> dict:
    state = _points(ctx)
    state["units"] = _h3_units()
    return state


@stage("h3_geopandas_sjoin", prepare=_points_and_hexes)
def _h3_sjoin(ctx: dict, state: dict) -> None:
    import geopandas as gpd

    points = gpd.GeoDataFrame(geometry=gpd.points_from_xy(state["lon"], state["lat"]), crs=4326)
    gpd.sjoin(points, state["units"][["unit_id", "geometry"]], predicate="within", how="left")


def _frame_and_tracts(ctx: dict) -> dict:
    from geo_crime.core.config import data_dir
    from geo_crime.cube.rates import TRACTS_FILE
    from geo_crime.units import polygon_units

    return {"frame": _incidents(ctx), "units": polygon_units(data_dir() / TRACTS_FILE)}


@stage("tract_join_2495", prepare=_frame_and_tracts)
def _tract_join(ctx: dict, state: dict) -> None:
    from geo_crime.units import assign_units

    assign_units(state["frame"], state["units"])


def _frame_and_rds(ctx: dict) -> dict:
    from geo_crime.units import rd_units

    frame = _incidents(ctx)
    return {"frame": frame, "units": rd_units(frame)}


@stage("rd_join", prepare=_frame_and_rds)
def _rd_join(ctx: dict, state: dict) -> None:
    from geo_crime.units import assign_units

    assign_units(state["frame"], state["units"])


def _cube_inputs(ctx: dict) -> dict:
    from geo_crime.record.coverage import check_coverage
    from geo_crime.units import assign_units

    frame = _incidents(ctx)
    units = _h3_units()
    ids, _ = assign_units(frame, units)
    return {"frame": frame, "units": units, "ids": ids, "coverage": check_coverage(frame)}


@stage("coverage_check", prepare=lambda ctx: {"frame": _incidents(ctx)})
def _coverage(ctx: dict, state: dict) -> None:
    from geo_crime.record.coverage import check_coverage

    check_coverage(state["frame"])


@stage("cube_h3_8_weekly", prepare=_cube_inputs)
def _cube(ctx: dict, state: dict) -> None:
    from geo_crime.cube.panel import build_cube

    build_cube(state["frame"], state["units"], state["ids"], freq="W", coverage=state["coverage"])


def _cube_ready(ctx: dict) -> dict:
    from geo_crime.cube.panel import build_cube
    from geo_crime.stats.weights import build_weights

    state = _cube_inputs(ctx)
    cube = build_cube(
        state["frame"], state["units"], state["ids"], freq="W", coverage=state["coverage"]
    )
    return {"cube": cube, "weights": build_weights(cube.units)}


@stage("moran_lisa_gi_999", prepare=_cube_ready)
def _moran_lisa_gi(ctx: dict, state: dict) -> None:
    from geo_crime.stats.run import run_statistic

    for stat in ("moran", "lisa", "gi"):
        run_statistic(state["cube"], stat, weights=state["weights"], permutations=999)


@stage("emerging_hotspots", prepare=_cube_ready)
def _emerging(ctx: dict, state: dict) -> None:
    from geo_crime.stats.run import run_statistic

    run_statistic(state["cube"], "emerging", weights=state["weights"])


def _outputs_ready(ctx: dict) -> dict:
    import tempfile

    from geo_crime.stats.run import run_statistic
    from geo_crime.units import division_units

    state = _cube_ready(ctx)
    state["tables"] = {
        s: run_statistic(state["cube"], s, weights=state["weights"], permutations=99).table
        for s in ("gi", "lisa", "emerging")
    }
    state["divisions"] = division_units()
    state["out"] = tempfile.mkdtemp(dir=ctx["workdir"])
    return state


@stage("map_and_exports", prepare=_outputs_ready)
def _map_exports(ctx: dict, state: dict) -> None:
    from pathlib import Path

    from geo_crime.cube.summary import unit_results
    from geo_crime.publish.export import export_layers
    from geo_crime.publish.maps import MapLayers, write_map

    cube, tables = state["cube"], state["tables"]
    layers = MapLayers.from_cube(
        cube,
        gi=tables["gi"],
        lisa=tables["lisa"],
        emerging=tables["emerging"],
        divisions=state["divisions"],
    )
    out = Path(state["out"])
    write_map(layers, out / "map.html", offline=True)
    summary = unit_results(
        cube.units,
        measures={"count": cube.total("count").astype(int), "severity": cube.total("severity")},
    )
    counts = summary.set_index("unit_id")["count"]
    export_layers({"summary": summary, **tables}, out / "gis", counts=counts)


@stage("end_to_end_no_training")
def _end_to_end(ctx: dict, state: dict) -> None:
    """Cold ingest -> coverage -> H3 + RD units -> cubes -> 4 statistics -> maps and exports."""
    import tempfile
    from pathlib import Path

    from geo_crime.cube.panel import build_cube
    from geo_crime.cube.rates import attach_population
    from geo_crime.cube.summary import unit_results
    from geo_crime.ingest import load_incidents
    from geo_crime.publish.export import export_layers
    from geo_crime.publish.maps import MapLayers, write_map
    from geo_crime.record.coverage import check_coverage
    from geo_crime.stats.run import run_statistic
    from geo_crime.stats.weights import build_weights
    from geo_crime.units import assign_units, division_units, make_units

    out = Path(tempfile.mkdtemp(dir=ctx["workdir"]))
    frame, _ = load_incidents(ctx["csv"], cache=False)
    coverage = check_coverage(frame)
    divisions = division_units()
    for spec in ("h3:8", "rd"):
        units = attach_population(make_units(spec, frame))
        ids, _ = assign_units(frame, units)
        cube = build_cube(frame, units, ids, freq="W", coverage=coverage)
        weights = build_weights(units)
        tables = {
            s: run_statistic(cube, s, weights=weights, permutations=999).table
            for s in ("moran", "lisa", "gi", "emerging")
        }
        layers = MapLayers.from_cube(
            cube,
            gi=tables["gi"],
            lisa=tables["lisa"],
            emerging=tables["emerging"],
            divisions=divisions,
        )
        label = spec.replace(":", "")
        write_map(layers, out / f"map_{label}.html", offline=True)
        summary = unit_results(
            units,
            measures={"count": cube.total("count").astype(int), "severity": cube.total("severity")},
        )
        export_layers(
            {f"{label}_summary": summary, f"{label}_gi": tables["gi"]},
            out / "gis",
            counts=summary.set_index("unit_id")["count"],
            gpkg_name=f"{label}.gpkg",
        )


@stage("original_study_style")
def _original_style(ctx: dict, state: dict) -> None:
    """The student study's processing: per-element date parsing and row-wise scoring in pandas."""
    import pandas as pd
    from dateutil import parser as date_parser

    from geo_crime.ingest.severity import severity_table, weapon_table

    frame = pd.read_csv(ctx["csv"])
    frame["DATE OCC"] = frame["DATE OCC"].apply(date_parser.parse)
    frame["Date Rptd"] = frame["Date Rptd"].apply(date_parser.parse)
    base = dict(zip(severity_table()["crm_cd"], severity_table()["base_score"], strict=True))
    bonus = dict(zip(weapon_table()["weapon_cd"], weapon_table()["bonus"], strict=True))

    def score(row) -> float:
        value = base.get(row["Crm Cd"], 20)
        age = abs(row["Vict Age"])
        if age < 18 or age > 65:
            value += 10
        if row["Weapon Used Cd"] == row["Weapon Used Cd"]:  # not NaN
            value += bonus.get(int(row["Weapon Used Cd"]), 5)
        return min(value, 100)

    frame["severity"] = frame.apply(score, axis=1)
    frame.groupby(["AREA", frame["DATE OCC"].dt.date])["severity"].sum()


def _query_index(ctx: dict) -> dict:
    from geo_crime.cube.summary import unit_results
    from geo_crime.query import CrimeIndex

    state = _outputs_ready(ctx)
    cube = state["cube"]
    table = unit_results(
        cube.units, measures={"severity": cube.total("severity")}, tables=[state["tables"]["gi"]]
    )
    return {
        "index": CrimeIndex(
            state["cube_frame"] if "cube_frame" in state else _incidents(ctx), units={"h3": table}
        )
    }


@stage("query_index_build", prepare=lambda ctx: {"frame": _incidents(ctx)})
def _index_build(ctx: dict, state: dict) -> None:
    from geo_crime.query import CrimeIndex

    CrimeIndex(state["frame"])


QUERY_POINTS = [
    (34.0522, -118.2437),
    (34.0635, -118.4455),
    (33.9425, -118.2551),
    (34.1870, -118.4487),
    (34.0928, -118.3287),
]


def _time_queries(state: dict) -> dict:
    import shapely

    index = state["index"]
    timings: dict[str, list[float]] = {}

    def timed(name, func):
        for lat, lon in QUERY_POINTS:
            start = time.perf_counter()
            func(lat, lon)
            timings.setdefault(name, []).append(time.perf_counter() - start)

    timed("radius_500m", lambda lat, lon: index.within_radius(lat, lon, 500))
    timed(
        "radius_1km_filtered",
        lambda lat, lon: index.within_radius(
            lat, lon, 1000, start="2023-01-01", end="2024-01-01", category="theft"
        ),
    )
    timed(
        "polygon_1km2",
        lambda lat, lon: index.within_polygon(
            shapely.box(lon - 0.005, lat - 0.0045, lon + 0.005, lat + 0.0045)
        ),
    )
    timed("unit_at_point", lambda lat, lon: index.unit_at(lat, lon))
    timed("top_10_units", lambda lat, lon: index.top_units(10, by="severity"))
    timed("nearest_hotspot", lambda lat, lon: index.nearest_hotspot(lat, lon))
    return {k: statistics.median(v) for k, v in timings.items()}


@stage("queries", prepare=_query_index)
def _queries(ctx: dict, state: dict) -> None:
    state["result"] = _time_queries(state)


@stage("hotspots_synthetic_1800x250")
def _hotspots_synthetic(ctx: dict, state: dict) -> None:
    """LISA + Gi* (999 permutations) and emerging hot spots on 1,800 cells x 250 weeks."""
    from benchmarks.bench_hotspots import run

    state["result"] = run(n_units=1800, n_periods=250, seed=ctx["seed"])


@stage("forecast_train_predict_1800x150")
def _forecast_bench(ctx: dict, state: dict) -> None:
    """Keras training (default configuration) and prediction, 1,800 cells x 150 weeks."""
    from benchmarks.bench_forecast import run

    state["result"] = run(n_units=1800, n_periods=150, seed=ctx["seed"])


@stage("make_run")
def _make_run(ctx: dict, state: dict) -> None:
    """What ``make run`` does: every stage of the default run on the real data (not the
    resampled file), with the fast forecast configuration; the forecast stages' share is kept."""
    from rich.console import Console

    from geo_crime.pipeline import run_pipeline
    from geo_crime.settings import RunSettings

    settings = RunSettings.from_sources(
        name="benchmark-make-run", outputs=str(Path(ctx["workdir"]) / "outputs")
    )
    result = run_pipeline(settings, console=Console(stderr=True, quiet=True))
    total = sum(result.timings.values())
    forecast = sum(v for k, v in result.timings.items() if ": forecast " in k)
    state["result"] = {
        "stages_s": total,
        "forecast_s": forecast,
        "forecast_share": forecast / total if total else 0.0,
    }


# --- the cube past one machine: a partitioned dataset, in memory vs on Dask -----------------------


@stage("cube_dask_in_memory")
def _cube_dataset_in_memory(ctx: dict, state: dict) -> None:
    """``geo-crime cube DIR --engine memory``: the dataset's cube columns in one process."""
    from benchmarks.dask_cube_bench import in_memory_cube

    state["result"] = in_memory_cube(Path(ctx["dataset"]))


@stage("cube_dask_1_worker")
def _cube_dask_1(ctx: dict, state: dict) -> None:
    """``geo-crime cube DIR --engine dask --workers 1 --worker-memory 4GB``."""
    from benchmarks.dask_cube_bench import dask_cube_run

    state["result"] = dask_cube_run(Path(ctx["dataset"]), 1)


@stage("cube_dask_2_workers")
def _cube_dask_2(ctx: dict, state: dict) -> None:
    """``geo-crime cube DIR --engine dask --workers 2 --worker-memory 4GB``."""
    from benchmarks.dask_cube_bench import dask_cube_run

    state["result"] = dask_cube_run(Path(ctx["dataset"]), 2)


@stage("cube_dask_2_workers_own_scheduler")
def _cube_dask_own(ctx: dict, state: dict) -> None:
    """``geo-crime cube DIR --engine dask --scheduler tcp://...``: scheduler and workers apart."""
    from benchmarks.dask_cube_bench import dask_cube_on_own_cluster

    state["result"] = dask_cube_on_own_cluster(Path(ctx["dataset"]), 2, Path(ctx["workdir"]))


@stage("run_dask_in_memory")
def _run_dataset_in_memory(ctx: dict, state: dict) -> None:
    """``geo-crime run DIR``: a city-wide study of the dataset in one process."""
    from benchmarks.dask_cube_bench import dataset_run

    state["result"] = dataset_run(Path(ctx["dataset"]), Path(ctx["workdir"]), None)


@stage("run_dask_2_workers")
def _run_dataset_dask_2(ctx: dict, state: dict) -> None:
    """``geo-crime run DIR --engine dask --workers 2 --worker-memory 4GB``."""
    from benchmarks.dask_cube_bench import dataset_run

    state["result"] = dataset_run(Path(ctx["dataset"]), Path(ctx["workdir"]), 2)


#: Stages that read the partitioned dataset of ``--rows`` rows (built in batches of 5M rows).
DATASET_STAGES = (
    "cube_dask_in_memory",
    "cube_dask_1_worker",
    "cube_dask_2_workers",
    "cube_dask_2_workers_own_scheduler",
    "run_dask_in_memory",
    "run_dask_2_workers",
)

#: The stages of whole runs on the dataset (compared by their report and summary digests).
RUN_STAGES = ("run_dask_in_memory", "run_dask_2_workers")

#: What is compared between the engines' runs (see ``dask_cube_bench.run_fingerprint``).
RUN_FINGERPRINT_KEYS = ("incidents", "report_digest", "summary_digest")

#: What is compared between the engines' cubes (see ``dask_cube_bench.cube_fingerprint``).
FINGERPRINT_KEYS = (
    "incidents",
    "assigned",
    "cells",
    "counts_digest",
    "complete_digest",
    "severity_total",
)


#: (label, numerator stage, denominator stage, target) ratios printed after the table.
RATIOS = [
    ("ingest / pyarrow.csv.read_csv", "ingest_cold", "pyarrow_read_csv", 2.0),
    ("H3 binning / geopandas sjoin on hexagons", "h3_binning", "h3_geopandas_sjoin", 1.0),
    (
        "geo_crime end-to-end / original study style",
        "end_to_end_no_training",
        "original_study_style",
        1.0,
    ),
]


# --- child process ------------------------------------------------------------------------------


def _child(name: str, ctx: dict) -> None:
    """Run one stage once (after its untimed preparation) and print the timing as JSON."""
    import gc

    state = PREPARE[name](ctx) if name in PREPARE else {}
    gc.collect()
    start = time.perf_counter()
    STAGES[name](ctx, state)
    elapsed = time.perf_counter() - start
    print(
        json.dumps(
            {"seconds": elapsed, "peak_mb": peak_rss_mb(), "detail": state.get("result")},
            default=float,
        )
    )


def _tree_rss_mb(pid: int) -> float:
    """Resident memory of a process and all its descendants, in MB."""
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        try:
            held = status_mb(current, "VmRSS")  # nan for a process that has just ended
            total += held if held == held else 0.0
            with open(f"/proc/{current}/task/{current}/children", encoding="ascii") as fh:
                todo.extend(int(c) for c in fh.read().split())
        except OSError:
            continue
    return total


def _run_capped(command: list[str], cap_mb: float) -> tuple[int, str, str, dict | None]:
    """Run a child; kill it (and what it started) once together they hold more than ``cap_mb``.

    Returns the exit code, stdout, stderr, and when killed what it held and when.
    """
    import signal
    import tempfile

    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(command, stdout=out, stderr=err, text=True, start_new_session=True)
        killed = None
        while proc.poll() is None:
            held = _tree_rss_mb(proc.pid)
            if held > cap_mb:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                killed = {"held_mb": held, "after_s": time.perf_counter() - start}
                break
            time.sleep(0.2)
        out.seek(0)
        err.seek(0)
        return proc.returncode, out.read(), err.read(), killed


def _measure(name: str, ctx: dict, repeat: int) -> dict:
    times, peaks, details = [], [], []
    for _ in range(repeat):
        code, stdout, stderr, killed = _run_capped(
            [sys.executable, __file__, "--child", name, "--context", json.dumps(ctx)],
            ctx["memory_cap_mb"],
        )
        if killed:
            print(
                f"  {name}: out of memory (held {killed['held_mb']:,.0f} MB, over the "
                f"{ctx['memory_cap_mb']:,.0f} MB cap, after {killed['after_s']:.0f} s)",
                file=sys.stderr,
            )
            return {
                "out_of_memory": killed,
                "median_s": float("nan"),
                "min_s": float("nan"),
                "runs_s": [],
                "peak_mb": killed["held_mb"],
            }
        if code != 0:
            # one failed stage is a figure too (e.g. a cluster that lost its workers): it is
            # reported in the table, and the other stages still run
            reason = (stderr.strip().splitlines() or [f"exit code {code}"])[-1]
            print(f"  {name} failed:\n{stderr[-3000:]}", file=sys.stderr)
            return {
                "failed": reason[:300],
                "median_s": float("nan"),
                "min_s": float("nan"),
                "runs_s": [],
                "peak_mb": float("nan"),
            }
        result = json.loads(stdout.strip().splitlines()[-1])
        times.append(result["seconds"])
        peaks.append(result["peak_mb"])
        if result.get("detail"):
            details.append(result["detail"])
    out = {
        "median_s": statistics.median(times),
        "min_s": min(times),
        "runs_s": times,
        "peak_mb": max(peaks),
    }
    if details:
        out["detail"] = {k: _typical([d[k] for d in details]) for k in details[0]}
    return out


def _typical(values: list) -> object:
    """The median of numbers; a text value (a digest) if every run gave it, else "differs"."""
    if all(isinstance(v, int | float) for v in values):
        return statistics.median(values)
    return values[0] if len(set(values)) == 1 else "differs"


def _ensure_data(rows: int, workdir: Path, seed: int) -> Path:
    path = (
        workdir / f"lapd_{rows // 1_000_000}m.csv"
        if rows % 1_000_000 == 0
        else (workdir / f"lapd_{rows}.csv")
    )
    if not path.exists():
        start = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                str(ROOT / "benchmarks" / "make_data.py"),
                "--rows",
                str(rows),
                "--seed",
                str(seed),
                "--out",
                str(path),
            ],
            check=True,
        )
        print(
            f"built {path} ({rows:,} rows) in {time.perf_counter() - start:.0f} s", file=sys.stderr
        )
    return path


def _print_dataset_table(rows: int, names: list[str], results: dict, build: dict) -> None:
    """Wall time and the peak of every process, per engine, for the partitioned dataset."""
    ingest = [b["ingest"] for b in build["batches"]]
    print(
        f"\n{rows:,} rows as a dataset of {len(ingest)} batch(es): each ingested by its own "
        f"process, peak {max(i['peak_mb'] for i in ingest):,.0f} MB, "
        f"{sum(i['seconds'] for i in ingest):,.0f} s in all"
    )
    cubes = [n for n in names if n in DATASET_STAGES and n not in RUN_STAGES]
    runs = [n for n in names if n in RUN_STAGES]
    for title, shown, keys, what in (
        ("cube (H3 r8, weekly)", cubes, FINGERPRINT_KEYS, "cubes"),
        ("run (city, H3 r8 + RD, weekly)", runs, RUN_FINGERPRINT_KEYS, "runs"),
    ):
        if shown:
            _print_engines(title, shown, results)
            _print_same(what, shown, results, keys)


def _print_engines(title: str, shown: list[str], results: dict) -> None:
    """One line per stage: wall time, client, scheduler, worker and largest process peaks."""
    width = max(len(n) for n in [*shown, title])
    print(
        f"{title:<{width}} {'wall s':>8} {'client MB':>10} "
        f"{'scheduler MB':>12} {'worker MB':>10} {'max process MB':>15}"
    )
    for name in shown:
        r = results[name]
        if "out_of_memory" in r:
            after = r["out_of_memory"]["after_s"]
            print(f"{name:<{width}} out of memory (over the cap after {after:.0f} s)")
            continue
        if "failed" in r:
            print(f"{name:<{width}} failed: {r['failed']}")
            continue
        d = r.get("detail", {})
        worker = d.get("worker_peak_mb", float("nan"))
        # a local cluster runs its scheduler (and nannies) in the client's process
        client = d.get("client_scheduler_nannies_peak_mb", d.get("client_peak_mb", r["peak_mb"]))
        scheduler = d.get("scheduler_peak_mb")
        top = max(x for x in (client, worker, scheduler or 0.0) if x == x)
        verdict = "meets" if top < 4096 else "MISSES"
        if scheduler is not None:
            in_scheduler = f"{scheduler:>12,.0f}"
        elif "worker_peak_mb" in d:
            in_scheduler = f"{'in client':>12}"
        else:
            in_scheduler = f"{'':>12}"
        print(
            f"{name:<{width}} {r['median_s']:>8.1f} {client:>10,.0f} {in_scheduler} "
            f"{worker:>10,.0f} {top:>15,.0f}  (goal: every process < 4,096 MB: {verdict})"
        )


def _print_same(what: str, shown: list[str], results: dict, keys: tuple[str, ...]) -> None:
    """Whether the stages built the same thing (their fingerprints), and the fingerprint."""
    built = {
        name: {k: v for k, v in results[name]["detail"].items() if k in keys}
        for name in shown
        if results[name].get("detail")
    }
    if len(built) > 1:
        first = next(iter(built.values()))
        same = all(f == first for f in built.values())
        shown_keys = ", ".join(f"{k} {first.get(k)}" for k in keys)
        print(f"{what} of {', '.join(built)}: {'identical' if same else 'DIFFER'} ({shown_keys})")


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark and print the table; returns the results dict."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--stages", default="all")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/geo_crime_bench"))
    parser.add_argument("--out", type=Path, default=None, help="JSON results file")
    parser.add_argument(
        "--memory-cap-gb",
        type=float,
        default=20.0,
        help="a stage holding more than this (with its children) is stopped: out of memory",
    )
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--context", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(args.child, json.loads(args.context))
        return {}
    args.workdir.mkdir(parents=True, exist_ok=True)
    names = list(STAGES) if args.stages == "all" else args.stages.split(",")
    unknown = sorted(set(names) - set(STAGES))
    if unknown:
        parser.error(f"unknown stages {', '.join(unknown)} (known: {', '.join(STAGES)})")
    ctx = {
        "rows": args.rows,
        "cache": str(args.workdir / "cache"),
        "workdir": str(args.workdir),
        "seed": args.seed,
        "memory_cap_mb": args.memory_cap_gb * 1024,
    }
    # the whole file of --rows rows is made only for stages that read it (not past 5M rows for
    # the dataset stages alone: the dataset is built in batches)
    only_dataset = all(n in DATASET_STAGES for n in names)
    if not only_dataset or args.rows < BATCH_ROWS:
        ctx["csv"] = str(_ensure_data(args.rows, args.workdir, args.seed))
    dataset_build = None
    if any(n in DATASET_STAGES for n in names):
        dataset = ensure_dataset(
            args.rows, args.workdir, Path(ctx["csv"]) if args.rows < BATCH_ROWS else None
        )
        ctx["dataset"] = str(dataset)
        dataset_build = json.loads(dataset.with_name(dataset.name + ".build.json").read_text())
    results: dict[str, dict] = {}
    for name in names:
        print(f"  {name} ...", file=sys.stderr, flush=True)
        results[name] = _measure(name, ctx, args.repeat)
    width = max(len(n) for n in names)
    print(f"\n{'stage':<{width}}  {'median s':>9}  {'min s':>7}  {'peak MB':>8}")
    for name in names:
        r = results[name]
        if "out_of_memory" in r:
            held = r["out_of_memory"]
            print(
                f"{name:<{width}}  out of memory: over {args.memory_cap_gb} GB after "
                f"{held['after_s']:.0f} s"
            )
            continue
        if "failed" in r:
            print(f"{name:<{width}}  failed: {r['failed']}")
            continue
        print(f"{name:<{width}}  {r['median_s']:>9.3f}  {r['min_s']:>7.3f}  {r['peak_mb']:>8.0f}")
    if dataset_build:
        _print_dataset_table(args.rows, names, results, dataset_build)
    for name in ("hotspots_synthetic_1800x250", "forecast_train_predict_1800x150", "make_run"):
        if name in results and results[name].get("detail"):
            details = ", ".join(
                f"{k} {v:.2f}"
                for k, v in results[name]["detail"].items()
                if isinstance(v, int | float)
            )
            print(f"\n{name} (s): {details}")
    if "queries" in results:
        print("\nquery (median over 5 points x runs)   ms   target <= 50 ms")
        for name, seconds in results["queries"].get("detail", {}).items():
            verdict = "meets" if seconds * 1000 <= 50 else "MISSES"
            print(f"  {name:<34} {seconds * 1000:7.1f}  {verdict}")
    ratios = {}
    print()
    for label, num, den, target in RATIOS:
        if num in results and den in results:
            value = results[num]["median_s"] / results[den]["median_s"]
            ratios[label] = {"ratio": value, "target": target}
            verdict = "meets" if target is None or value <= target else "MISSES"
            print(f"{label:<40} {value:6.2f}  (target <= {target}: {verdict})")
    payload = {
        "rows": args.rows,
        "dataset_build": dataset_build,
        "repeat": args.repeat,
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
        },
        "stages": results,
        "ratios": ratios,
    }
    out = args.out or args.workdir / f"results_{args.rows}.json"
    out.write_text(json.dumps(payload, indent=2))
    print(f"\nsaved {out}")
    return payload


if __name__ == "__main__":
    main()

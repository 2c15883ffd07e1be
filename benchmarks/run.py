"""Benchmark every stage side by side on large resampled LAPD files.

Each stage runs in its own fresh Python process (so peak memory is that stage's own, measured as
the child's maximum resident set size), several times; the table shows the median, and ratios
are computed between stages measured in the same run. Results are printed and saved as JSON.

Usage::

    python benchmarks/run.py                       # 1M rows, 3 repetitions
    python benchmarks/run.py --rows 5000000 --repeat 1 --stages ingest_cold,pyarrow_read_csv

The input files are built once by ``benchmarks/make_data.py`` (resampled real rows) and kept in
``--workdir`` (default ``/tmp/geo_crime_bench``), outside the repository.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

STAGES: dict[str, Callable[[dict], None]] = {}


def stage(name: str):
    """Register a stage: a function of the context dict, timed around its whole body."""

    def register(func: Callable[[dict], None]) -> Callable[[dict], None]:
        STAGES[name] = func
        return func

    return register


# --- stages -----------------------------------------------------------------------------------


@stage("pyarrow_read_csv")
def _pyarrow_read(ctx: dict) -> None:
    import pyarrow.csv as pacsv

    pacsv.read_csv(ctx["csv"])


@stage("ingest_cold")
def _ingest_cold(ctx: dict) -> None:
    from geo_crime.ingest import load_incidents

    load_incidents(ctx["csv"], cache=False)


@stage("ingest_cached")
def _ingest_cached(ctx: dict) -> None:
    from geo_crime.ingest import load_incidents

    load_incidents(ctx["csv"], cache=ctx["cache"])


def _prepare_cache(ctx: dict) -> None:
    from geo_crime.ingest import load_incidents

    load_incidents(ctx["csv"], cache=ctx["cache"])


PREPARE: dict[str, Callable[[dict], None]] = {"ingest_cached": _prepare_cache}

#: (label, numerator stage, denominator stage, target) ratios printed after the table.
RATIOS = [
    ("ingest / pyarrow.csv.read_csv", "ingest_cold", "pyarrow_read_csv", 2.0),
]


# --- child process ------------------------------------------------------------------------------


def _child(name: str, ctx: dict) -> None:
    """Run one stage once (after its untimed preparation) and print the timing as JSON."""
    if name in PREPARE:
        PREPARE[name](ctx)
    import gc

    gc.collect()
    start = time.perf_counter()
    STAGES[name](ctx)
    elapsed = time.perf_counter() - start
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"seconds": elapsed, "peak_mb": peak_kb / 1024}))


def _measure(name: str, ctx: dict, repeat: int) -> dict:
    times, peaks = [], []
    for _ in range(repeat):
        proc = subprocess.run(
            [sys.executable, __file__, "--child", name, "--context", json.dumps(ctx)],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"stage {name} failed:\n{proc.stderr[-3000:]}")
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        times.append(result["seconds"])
        peaks.append(result["peak_mb"])
    return {
        "median_s": statistics.median(times),
        "min_s": min(times),
        "runs_s": times,
        "peak_mb": max(peaks),
    }


def _ensure_data(rows: int, workdir: Path, seed: int) -> Path:
    path = (
        workdir / f"lapd_{rows // 1_000_000}m.csv"
        if rows % 1_000_000 == 0
        else (workdir / f"lapd_{rows}.csv")
    )
    if not path.exists():
        from benchmarks.make_data import make_rows, write_csv

        start = time.perf_counter()
        write_csv(make_rows(rows, seed=seed), path)
        print(
            f"built {path} ({rows:,} rows) in {time.perf_counter() - start:.0f} s", file=sys.stderr
        )
    return path


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark and print the table; returns the results dict."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--stages", default="all")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/geo_crime_bench"))
    parser.add_argument("--out", type=Path, default=None, help="JSON results file")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--context", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(args.child, json.loads(args.context))
        return {}
    args.workdir.mkdir(parents=True, exist_ok=True)
    csv_path = _ensure_data(args.rows, args.workdir, args.seed)
    ctx = {
        "csv": str(csv_path),
        "rows": args.rows,
        "cache": str(args.workdir / "cache"),
        "workdir": str(args.workdir),
        "seed": args.seed,
    }
    names = list(STAGES) if args.stages == "all" else args.stages.split(",")
    results: dict[str, dict] = {}
    for name in names:
        print(f"  {name} ...", file=sys.stderr, flush=True)
        results[name] = _measure(name, ctx, args.repeat)
    width = max(len(n) for n in names)
    print(f"\n{'stage':<{width}}  {'median s':>9}  {'min s':>7}  {'peak MB':>8}")
    for name in names:
        r = results[name]
        print(f"{name:<{width}}  {r['median_s']:>9.3f}  {r['min_s']:>7.3f}  {r['peak_mb']:>8.0f}")
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

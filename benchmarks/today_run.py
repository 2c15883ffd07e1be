"""``geo-crime run`` on the generated today record, in memory and on Dask: wall time and memory.

The record is ``tests/fakes/today_record.py``'s generated data (for tests and benchmarks only, never
findings): at ``--scale 1`` about 1.0M legacy rows (2020-2024) and 0.49M NIBRS offence rows
(2024-03-07 to November 2026), written as ``geo-crime fetch --dataset all`` writes them. Each
stage runs as its own command-line process, as a person would run it:

* ``memory``: ``geo-crime run DOWNLOADS`` (the default studies, forecasts included);
* ``ingest``: ``geo-crime ingest DOWNLOADS --dataset DIR`` (the dataset the Dask run reads);
* ``dask``: ``geo-crime run DIR --engine dask --workers 2 --worker-memory 4GB`` (the same studies;
  a local cluster whose workers are processes of their own).

The wall time of each stage is measured around its process; the peak resident memory of every
process of its tree (the command and, on Dask, each worker) is read from ``/proc`` while it
runs (``VmHWM``, the kernel's own peak). The table sets them against the goals: at most 5
minutes and at most 4 GB per process, on 2 cores.

Usage::

    python benchmarks/today_run.py --scale 0.05          # a quick try
    python benchmarks/today_run.py                       # full size (scale 1.0)
    python benchmarks/today_run.py --folder /tmp/today --keep
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.dask_cube_bench import status_mb  # noqa: E402

#: Goals of a run on the full today record (2 cores).
GOAL_SECONDS = 300.0
GOAL_MB = 4096.0


def _peaks_of(process: psutil.Process, peaks: dict[int, tuple[str, float]]) -> None:
    """Record the peak memory (MB) of a process and of all its descendants."""
    try:
        family = [process, *process.children(recursive=True)]
    except psutil.NoSuchProcess:
        return
    for member in family:
        try:
            name = " ".join(member.cmdline()[1:4])[:60] or member.name()
            peak = status_mb(member.pid)
        except (psutil.NoSuchProcess, psutil.AccessDenied, OSError):
            continue
        if peak == peak:  # not NaN
            peaks[member.pid] = (name, max(peak, peaks.get(member.pid, ("", 0.0))[1]))


def measured(args: list[str], label: str, poll: float = 0.2) -> dict:
    """Run one command, polling its process tree's memory; its wall time and peaks."""
    start = time.monotonic()
    process = psutil.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peaks: dict[int, tuple[str, float]] = {}
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            _peaks_of(process, peaks)
            done.wait(poll)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    stdout, stderr = process.communicate()
    done.set()
    watcher.join()
    wall = time.monotonic() - start
    if process.returncode != 0:
        raise SystemExit(f"{label} failed ({process.returncode}):\n{stderr[-3000:]}")
    largest = max((peak for _, peak in peaks.values()), default=float("nan"))
    return {
        "stage": label,
        "seconds": round(wall, 1),
        "processes": len(peaks),
        "largest_process_mb": round(largest, 0),
        "peaks_mb": {f"{pid} {name}": round(peak, 0) for pid, (name, peak) in peaks.items()},
        "stdout_tail": stdout.strip().splitlines()[-1:] if stdout.strip() else [],
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="volume scale (1.0: full size)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--folder", type=Path, help="work folder (default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    parser.add_argument("--stages", default="memory,ingest,dask", help="comma-separated stages")
    parser.add_argument("--json", type=Path, help="also write the results here")
    options = parser.parse_args(argv)

    folder = options.folder or Path(tempfile.mkdtemp(prefix="geo_crime_today_"))
    folder.mkdir(parents=True, exist_ok=True)
    downloads, dataset, outputs = folder / "downloads", folder / "dataset", folder / "outputs"
    from tests.fakes.today_record import write_today

    start = time.monotonic()
    record, counts = write_today(downloads, scale=options.scale, seed=options.seed)
    written = time.monotonic() - start
    print(
        f"today record at scale {options.scale}: {len(record.legacy):,} legacy rows, "
        f"{len(record.nibrs):,} NIBRS offence rows ({counts['nibrs_cases'].sum():,} cases, "
        f"{record.twins} planted twins), written in {written:.1f} s to {downloads}",
        flush=True,
    )
    cli = [sys.executable, "-m", "geo_crime"]
    common = ["--outputs", str(outputs), "--no-cache", "--quiet"]
    commands = {
        "memory": [*cli, "run", str(downloads), "--name", "memory", *common],
        "ingest": [*cli, "ingest", str(downloads), "--dataset", str(dataset), "--no-cache"],
        "dask": [
            *cli, "run", str(dataset), "--name", "dask", *common,
            "--engine", "dask", "--workers", "2", "--worker-memory", "4GB",
        ],
    }  # fmt: skip
    results = []
    for stage in options.stages.split(","):
        if stage == "ingest":
            shutil.rmtree(dataset, ignore_errors=True)
        print(f"running {stage} ...", flush=True)
        results.append(measured(commands[stage], stage))

    print()
    print(
        f"| stage | wall s | goal s | largest process MB | goal MB | processes | "
        f"scale {options.scale} |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | --- |")
    for row in results:
        within = row["seconds"] <= GOAL_SECONDS and row["largest_process_mb"] <= GOAL_MB
        print(
            f"| {row['stage']} | {row['seconds']:.1f} | {GOAL_SECONDS:.0f} | "
            f"{row['largest_process_mb']:,.0f} | {GOAL_MB:,.0f} | {row['processes']} | "
            f"{'within the goals' if within else 'OVER a goal'} |"
        )
    if options.json:
        options.json.write_text(json.dumps(results, indent=1), encoding="utf-8")
    if not options.keep and options.folder is None:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()

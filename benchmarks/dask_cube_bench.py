"""The cube of a large partitioned dataset, in memory and on a local Dask cluster (the benchmark).

Both paths build the weekly H3 resolution-8 cube of the same dataset, coverage checked, as the
command line does (``geo-crime cube DIR --unit h3:8 --freq W --no-population``, with
``--engine memory`` or ``--engine dask --workers N --worker-memory 4GB``). The Dask path
reports the peak resident memory of every process it ran: this one (the client, and the
scheduler and the workers' nannies, which a local cluster runs in the process that starts it)
and each worker process.
"""

from __future__ import annotations

import resource
from pathlib import Path

#: Unit and period of the benchmarked cube.
UNIT, FREQ = "h3:8", "W"

#: Memory limit of each Dask worker (it spills to disk past 60% of it).
WORKER_MEMORY = "4GB"


def status_mb(pid: int | str = "self", field: str = "VmHWM") -> float:
    """A memory field of a process's ``/proc/<pid>/status`` in MB (its peak by default)."""
    with open(f"/proc/{pid}/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def peak_rss_mb() -> float:
    """This process's peak resident memory in MB (``VmHWM``)."""
    try:
        return status_mb()
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cube_fingerprint(cube) -> dict:
    """What shows two engines built the same cube: sizes, exact digests, the severity total.

    The digests cover the counts and the coverage mask in unit and period order (equal digests
    mean equal arrays); the severity total is rounded to 1e-6 (sums in another order differ in
    the last bits).
    """
    import hashlib

    import numpy as np

    def digest(array) -> str:
        return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()[:16]

    return {
        "incidents": cube.meta["incidents_total"],
        "assigned": cube.meta["assignment"]["assigned"],
        "cells": int(cube.counts.size),
        "counts_digest": digest(cube.counts.astype("int64")),
        "complete_digest": digest(cube.complete.astype("bool")),
        "severity_total": round(float(cube.severity.sum()), 6),
    }


def in_memory_cube(dataset: Path) -> dict:
    """The cube by the in-memory engine: the whole dataset's cube columns in this process."""
    from geo_crime.cube.dask_incidents import dataset_columns
    from geo_crime.cube.panel import make_cube
    from geo_crime.ingest import read_incident_dataset
    from geo_crime.record.coverage import check_coverage
    from geo_crime.units import make_units

    frame, _ = read_incident_dataset(dataset, columns=dataset_columns(UNIT))
    units = make_units(UNIT, frame)
    cube = make_cube(frame, units, freq=FREQ, coverage=check_coverage(frame, freq=FREQ))
    return cube_fingerprint(cube)


def _cube_on(client, dataset: Path) -> tuple[dict, dict[str, float]]:
    """The cube's fingerprint, built on ``client``'s cluster, and each worker's peak (MB)."""
    from geo_crime.cube.dask import dask_cube
    from geo_crime.cube.dask_incidents import cube_columns, load_distributed
    from geo_crime.units import make_units

    held = load_distributed(dataset, client, columns=cube_columns(UNIT))
    units = make_units(UNIT, held.unit_input(UNIT))
    cube = dask_cube(held, units, freq=FREQ, coverage=True)
    held.release()
    return cube_fingerprint(cube), client.run(peak_rss_mb)


def dask_cube_run(dataset: Path, workers: int) -> dict:
    """The cube on a local cluster of ``workers`` worker processes, and every process's peak."""
    import os

    from geo_crime.cube.dask_cluster import cluster_client

    with cluster_client("local", workers, WORKER_MEMORY) as client:
        pids = client.run(os.getpid)
        fingerprint, worker_peaks = _cube_on(client, dataset)
        restarted = sum(1 for addr, pid in client.run(os.getpid).items() if pids.get(addr) != pid)
        restarted += max(0, workers - len(worker_peaks))
    return {
        **fingerprint,
        "client_scheduler_nannies_peak_mb": peak_rss_mb(),
        "worker_peak_mb": max(worker_peaks.values()),
        "workers_restarted": restarted,
    }


def dask_cube_on_own_cluster(dataset: Path, workers: int, workdir: Path) -> dict:
    """The cube on a cluster of its own processes, as ``--scheduler tcp://...`` reaches one.

    A ``dask scheduler`` and a ``dask worker`` (``workers`` worker processes with their
    nannies) are started as separate processes on 127.0.0.1; this process is only the client,
    as ``geo-crime cube DIR --engine dask --scheduler ADDRESS`` is. Reports the peak of the
    client, the scheduler and the largest worker, each measured apart.
    """
    import json
    import os
    import shutil
    import subprocess
    import sys
    import time

    from geo_crime.cube.dask_cluster import cluster_client

    dask_cli = [sys.executable, "-m", "distributed.cli.dask_scheduler"]
    worker_cli = [sys.executable, "-m", "distributed.cli.dask_worker"]
    folder = workdir / "own_cluster"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    address_file = folder / "scheduler.json"
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    scheduler = subprocess.Popen(
        [
            *dask_cli,
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--no-dashboard",
            "--scheduler-file",
            str(address_file),
        ],
        **quiet,
    )
    started = []
    try:
        deadline = time.monotonic() + 60
        while not address_file.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        address = json.loads(address_file.read_text())["address"]
        started.append(
            subprocess.Popen(
                [
                    *worker_cli,
                    address,
                    "--nworkers",
                    str(workers),
                    "--nthreads",
                    "1",
                    "--memory-limit",
                    WORKER_MEMORY,
                    "--no-dashboard",
                    "--local-directory",
                    str(folder / "spill"),
                ],
                **quiet,
            )
        )
        with cluster_client(address) as client:
            client.wait_for_workers(workers, timeout=120)
            fingerprint, worker_peaks = _cube_on(client, dataset)
            scheduler_peak = status_mb(scheduler.pid)
    finally:
        for proc in (*started, scheduler):
            proc.terminate()
        for proc in (*started, scheduler):
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, 9)
        shutil.rmtree(folder, ignore_errors=True)
    return {
        **fingerprint,
        "client_peak_mb": peak_rss_mb(),
        "scheduler_peak_mb": scheduler_peak,
        "worker_peak_mb": max(worker_peaks.values()),
    }


# --- a whole run on the dataset (``geo-crime run DIR [--engine dask]``) ---------------------

#: The benchmarked run: one city-wide study over every date, H3 r8 cells and reporting districts,
#: weekly, global and local statistics (no forecast and no emerging hot spots: their cost does
#: not grow with the rows, only with the cells and weeks).
RUN_STUDY = {
    "name": "city",
    "units": ["h3:8", "rd"],
    "freq": "W",
    "forecast": False,
    "statistics": ["moran", "gi"],
}


def run_fingerprint(folder: Path) -> dict:
    """What shows two engines wrote the same run: digests of the report (without the engine
    sentence) and of the summary, and the incidents the report counts."""
    import hashlib
    import json

    lines = (folder / "report.md").read_text(encoding="utf-8").splitlines()
    kept = "\n".join(line for line in lines if not line.startswith("Engine: a Dask cluster"))
    summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    return {
        "incidents": summary["city"]["incidents"],
        "report_digest": hashlib.sha256(kept.encode()).hexdigest()[:16],
        "summary_digest": hashlib.sha256(json.dumps(summary, sort_keys=True).encode()).hexdigest()[
            :16
        ],
    }


def dataset_run(dataset: Path, workdir: Path, workers: int | None) -> dict:
    """The run of :data:`RUN_STUDY` on the dataset: in this process (``workers`` ``None``) or
    on a local cluster of ``workers`` worker processes; every process's peak."""
    import os
    import shutil

    from rich.console import Console

    from geo_crime.cube.dask_cluster import ClusterOptions, cluster_client
    from geo_crime.pipeline import run_pipeline
    from geo_crime.settings import RunSettings, StudySettings

    outputs = workdir / "bench_runs"
    name = "memory" if workers is None else f"dask_{workers}"
    settings = RunSettings(
        inputs=[str(dataset)],
        outputs=outputs,
        name=name,
        permutations=99,
        cache=False,
        studies=[StudySettings(**RUN_STUDY)],
    )
    quiet = Console(stderr=True, quiet=True)
    if workers is None:
        folder = run_pipeline(settings, console=quiet, quiet=True).folder
        result = {**run_fingerprint(folder), "client_peak_mb": peak_rss_mb()}
    else:
        with cluster_client("local", workers, WORKER_MEMORY) as client:
            pids = client.run(os.getpid)
            cluster = ClusterOptions(scheduler=client.scheduler.address)
            folder = run_pipeline(settings, console=quiet, quiet=True, cluster=cluster).folder
            worker_peaks = client.run(peak_rss_mb)
            restarted = sum(1 for a, p in client.run(os.getpid).items() if pids.get(a) != p)
        result = {
            **run_fingerprint(folder),
            "client_scheduler_nannies_peak_mb": peak_rss_mb(),
            "worker_peak_mb": max(worker_peaks.values()),
            "workers_restarted": restarted,
        }
    shutil.rmtree(folder, ignore_errors=True)
    return result

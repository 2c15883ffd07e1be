"""Build large partitioned incident datasets (1M, 10M, 30M rows) for the Dask benchmark.

No single process ever holds the whole set: the rows are resampled from the real LAPD rows
(:mod:`benchmarks.make_data`) in batches of at most 5M, each batch written as its own CSV with
its own seed and a disjoint range of record numbers, then ingested by the tool itself
(``geo-crime ingest CSV --dataset DIR --append``) as one batch of the partitioned store. Each
step runs in its own process; the peak memory of every ingest is printed and saved, so the
benchmark can show that the store of 30M rows was written by processes under 4 GB.

The 10M dataset is the first two 5M batches; the 30M dataset is a hard-linked copy of it plus
four more. Everything is written under ``--workdir`` (default ``/tmp/geo_crime_bench``),
outside the repository.

Usage::

    python benchmarks/make_dataset.py --rows 30000000
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: Rows of one batch (one resampled CSV, one ingest process).
BATCH_ROWS = 5_000_000

#: Record number of the first resampled row (the 1M file of ``run.py`` uses 300M .. 301M).
FIRST_ID = 400_000_000


def _run_measured(command: list[str]) -> dict:
    """Run a command; its wall time and its own peak resident memory (from ``wait4``)."""
    start = time.perf_counter()
    proc = subprocess.Popen(command)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"failed ({proc.returncode}): {' '.join(command)}")
    return {"seconds": time.perf_counter() - start, "peak_mb": usage.ru_maxrss / 1024}


def batch_csv(workdir: Path, index: int, rows: int) -> tuple[Path, dict | None]:
    """The resampled CSV of batch ``index`` (made when missing) and how it was made."""
    path = workdir / "batches" / f"lapd_batch{index}_{rows}.csv"
    if path.exists():
        return path, None
    made = _run_measured(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "make_data.py"),
            "--rows",
            str(rows),
            "--seed",
            str(1000 + index),
            "--first-id",
            str(FIRST_ID + index * BATCH_ROWS),
            "--out",
            str(path),
        ]
    )
    return path, made


def _ingest(csv: Path, dataset: Path) -> dict:
    command = [sys.executable, "-m", "geo_crime", "ingest", str(csv), "--dataset"]
    command += [str(dataset), "--append", "--no-cache"]
    return _run_measured(command)


def ensure_dataset(rows: int, workdir: Path, source_csv: Path | None = None) -> Path:
    """The partitioned dataset of ``rows`` resampled rows under ``workdir`` (built when missing).

    Parameters
    ----------
    rows
        Rows of the dataset: up to 5M in one batch, or a multiple of 5M in batches of 5M.
    workdir
        Folder of the benchmark's files.
    source_csv
        For ``rows`` < 5M: the resampled CSV to ingest (the run's own file) instead of a batch.

    Returns
    -------
    pathlib.Path
        The dataset folder; ``<folder>.build.json`` records each batch's ingest time and peak.
    """
    dataset = workdir / f"dataset_{rows}"
    log_file = dataset.with_name(dataset.name + ".build.json")
    if (dataset / "_geo_crime" / "dataset.json").exists() and log_file.exists():
        return dataset
    if rows % BATCH_ROWS and rows > BATCH_ROWS:
        raise SystemExit(f"--rows above {BATCH_ROWS:,} must be a multiple of it")
    batches = max(1, rows // BATCH_ROWS)
    log: dict = {"rows": rows, "batches": []}
    # reuse the largest smaller dataset of whole batches (hard links: no copy of the data)
    start_batch = 0
    if rows > BATCH_ROWS:
        for smaller in sorted(workdir.glob("dataset_*.build.json"), reverse=True):
            info = json.loads(smaller.read_text())
            if info["rows"] % BATCH_ROWS == 0 and BATCH_ROWS <= info["rows"] < rows:
                shutil.rmtree(dataset, ignore_errors=True)
                subprocess.run(
                    ["cp", "-al", str(workdir / f"dataset_{info['rows']}"), str(dataset)],
                    check=True,
                )
                log["batches"] = list(info["batches"])
                start_batch = info["rows"] // BATCH_ROWS
                break
    if start_batch == 0:
        shutil.rmtree(dataset, ignore_errors=True)
    for index in range(start_batch, batches):
        if rows < BATCH_ROWS and source_csv is not None:
            csv, made = source_csv, None
        else:
            csv, made = batch_csv(workdir, index, min(rows, BATCH_ROWS))
        ingest = _ingest(csv, dataset)
        log["batches"].append({"csv": str(csv), "made": made, "ingest": ingest})
        print(
            f"batch {index}: {csv.name} ingested in {ingest['seconds']:.0f} s, "
            f"peak {ingest['peak_mb']:,.0f} MB",
            file=sys.stderr,
        )
    log_file.write_text(json.dumps(log, indent=2))
    return dataset


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=BATCH_ROWS)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/geo_crime_bench"))
    args = parser.parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    path = ensure_dataset(args.rows, args.workdir)
    print(path)


if __name__ == "__main__":
    main()

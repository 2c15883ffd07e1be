"""Map size and open time in headless Chromium, before and after a change, side by side.

Builds the default run's maps (``geo-crime run``, every study and layer) twice: with the package
as it was at ``--before`` (a git revision, checked out into a temporary worktree) and with the
working tree, then opens every map ``--repeat`` times, each in a fresh (cold) headless Chromium,
and measures navigation start to the last SVG path drawn (no path added for 0.6 s). Prints a
table with both figures and their ratio and saves it as JSON.

Usage::

    python benchmarks/map_open.py --before b7d01bb            # about 6 minutes on 2 cores
    python benchmarks/map_open.py --before b7d01bb --reuse    # open the maps built last time

Needs ``chromium`` and ``/usr/bin/chromedriver`` (``make system-deps``) and the shared data.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fakes.browser import WATCH_PATHS, headless_chromium, open_map  # noqa: E402


def build_maps(source: Path, outputs: Path, name: str) -> list[Path]:
    """Run the default pipeline with the package in ``source``; return its maps."""
    from geo_crime.core.config import data_dir

    # the package of ``source`` comes first (``-m`` puts the working folder first on the path);
    # the data folder is named outright: its default is relative to the package checkout
    env = {**os.environ, "PYTHONPATH": str(source), "GEO_CRIME_DATA": str(data_dir())}
    subprocess.run(
        [
            sys.executable,
            "-m",
            "geo_crime",
            "run",
            "--quiet",
            "--name",
            name,
            "--outputs",
            str(outputs),
        ],
        check=True,
        env=env,
        cwd=source,
    )
    return sorted((outputs / name / "public").glob("*/map_*.html"))


def open_times(path: Path, repeat: int) -> list[float]:
    """Seconds from navigation start to the last path drawn, one cold browser per open."""
    times = []
    for _ in range(repeat):
        with headless_chromium(logs=("browser", "performance"), scripts=[WATCH_PATHS]) as driver:
            seconds, _ = open_map(driver, path, timeout=120.0)
        times.append(seconds)
    return times


def main() -> None:
    """Build both sets of maps, open them, print and save the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", required=True, help="git revision of the 'before' maps")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "map_bench")
    parser.add_argument("--reuse", action="store_true", help="open the maps built last time")
    args = parser.parse_args()
    work = args.workdir
    work.mkdir(parents=True, exist_ok=True)
    maps: dict[str, list[Path]] = {}
    for tag in ("before", "after"):
        found = sorted((work / "outputs" / tag / "public").glob("*/map_*.html"))
        if args.reuse and found:
            maps[tag] = found
            continue
        if tag == "before":
            tree = work / "before-tree"
            if tree.exists():
                subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT)
            subprocess.run(
                ["git", "worktree", "add", "--detach", str(tree), args.before],
                check=True,
                cwd=ROOT,
            )
            source = tree
        else:
            source = ROOT
        maps[tag] = build_maps(source, work / "outputs", tag)
    rows = []
    for after in maps["after"]:
        key = f"{after.parent.name}/{after.name}"
        before = next((p for p in maps["before"] if f"{p.parent.name}/{p.name}" == key), None)
        row = {"map": key}
        for tag, path in (("before", before), ("after", after)):
            if path is None:
                continue
            times = open_times(path, args.repeat)
            row[f"{tag}_mb"] = round(path.stat().st_size / 1e6, 2)
            row[f"{tag}_s"] = round(statistics.median(times), 3)
        rows.append(row)
    print(f"\nmaps of the default run, median of {args.repeat} cold opens (before = {args.before})")
    print(
        f"{'map':40} {'MB before':>10} {'MB after':>9} {'ratio':>6} "
        f"{'s before':>9} {'s after':>8} {'ratio':>6}"
    )
    for row in rows:
        b_mb, a_mb = row.get("before_mb", float("nan")), row["after_mb"]
        b_s, a_s = row.get("before_s", float("nan")), row["after_s"]
        print(
            f"{row['map']:40} {b_mb:10.2f} {a_mb:9.2f} {a_mb / b_mb:6.2f} "
            f"{b_s:9.2f} {a_s:8.2f} {a_s / b_s:6.2f}"
        )
    out = work / "map_open.json"
    out.write_text(json.dumps({"before": args.before, "repeat": args.repeat, "maps": rows}))
    print(f"saved {out}")


if __name__ == "__main__":
    main()

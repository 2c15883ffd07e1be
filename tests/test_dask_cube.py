"""The partitioned incident store and the cube on Dask, against the in-memory path, on real data.

Each cluster (two workers, threads then processes) is started once for the module; every cube
built on it is compared with :func:`geo_crime.cube.panel.make_cube` on the same incidents: units,
periods, every measure, the coverage mask and the assignment counts.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import warnings

import pandas as pd
import pytest
from distributed import Client, LocalCluster
from typer.testing import CliRunner

from geo_crime.cli import app
from geo_crime.core.errors import DataError, InputError
from geo_crime.cube.dask import dask_cube
from geo_crime.cube.dask_incidents import cube_columns, load_distributed
from geo_crime.cube.panel import Cube, make_cube
from geo_crime.ingest import (
    load_incident_dataset,
    load_incidents,
    read_incident_dataset,
    read_incidents,
    write_incident_dataset,
)
from geo_crime.pipeline import run_pipeline
from geo_crime.record.coverage import check_coverage
from geo_crime.settings import RunSettings
from geo_crime.units import covered_divisions, make_units
from tests.fakes.dask_cubes import assert_same_cube, separate_cluster
from tests.fakes.shared_data import (
    IVANCO,
    REDUCED_DIR,
    WESTLA,
    crime_file,
    westla_rd_study,
)
from tests.fakes.twin_records import timed_twin_files

#: Records the Ivanco and West LA 2020 slices share (see the cleaning policies).
SHARED_DR_NOS = 464


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    """The 2024 reduced files and West LA 2020 as one batch, with their in-memory frame."""
    inputs = [crime_file(REDUCED_DIR), crime_file(WESTLA)]
    frame, report = load_incidents(inputs, cache=False)
    path = tmp_path_factory.mktemp("store") / "incidents"
    write_incident_dataset(frame, report, path, inputs=inputs)
    return path, frame


@pytest.fixture(scope="module")
def overlapping(tmp_path_factory):
    """Ivanco then West LA (464 shared DR_NOs) as two batches, through the command line."""
    path = tmp_path_factory.mktemp("store") / "overlap"
    runner = CliRunner()
    for extra, name in (([], IVANCO), (["--append"], WESTLA)):
        result = runner.invoke(
            app, ["ingest", str(crime_file(name)), "--dataset", str(path), "--no-cache", *extra]
        )
        assert result.exit_code == 0, result.output
    joint, report = load_incidents([crime_file(IVANCO), crime_file(WESTLA)], cache=False)
    return path, joint, report


@pytest.fixture(scope="module", params=["threads", "processes"])
def client(request):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cluster = LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=request.param == "processes",
            dashboard_address=None,
        )
    with cluster, Client(cluster) as c:
        yield c


def test_dataset_reads_back_the_loaded_frame(single):
    path, frame = single
    back, dropped = read_incident_dataset(path)
    pd.testing.assert_frame_equal(back, frame)  # same rows, order, values and dtypes
    assert dropped == {
        "duplicates_dropped": 0,
        "duplicate_offenses_dropped": 0,
        "cross_system_duplicates": 0,  # one records system
        "legacy_matchable": 0,
    }
    parts = sorted(p.relative_to(path).parts[:2] for p in path.rglob("*.parquet"))
    assert ("source=reduced_2024", "month=2024-01") in parts
    assert ("source=modified", "month=2020-03") in parts


def test_append_leaves_the_live_dataset_and_its_linked_copies_alone(tmp_path, single):
    """An append builds the new dataset beside the old one from hard links: until it is swapped
    in, the old one (and any hard-linked copy of it) must read as before, metadata included."""
    from geo_crime.ingest import store
    from geo_crime.ingest.cleaning import CleaningReport

    _, frame = single
    first, second = frame.iloc[:4_000], frame.iloc[4_000:6_000]
    original, copy = tmp_path / "original", tmp_path / "copy"
    write_incident_dataset(first, CleaningReport(), original)
    store._link_tree(original, copy)  # as a copy made with hard links (cp -al) would be
    write_incident_dataset(second, CleaningReport(), copy, append=True)
    back, _ = read_incident_dataset(original)
    assert len(back) == 4_000
    assert json.loads((original / "_geo_crime" / "dataset.json").read_text())["batches"] == 1
    grown, _ = read_incident_dataset(copy)
    assert len(grown) == 6_000


def test_dataset_errors_name_the_path(tmp_path, single):
    with pytest.raises(InputError, match=str(tmp_path / "missing")):
        read_incident_dataset(tmp_path / "missing")
    (tmp_path / "file.txt").write_text("x")
    path, frame = single
    with pytest.raises(InputError, match="file.txt"):
        write_incident_dataset(frame.iloc[:5], None, tmp_path / "file.txt")
    part = next(path.rglob("*.parquet"))
    broken = tmp_path / "broken"
    import shutil

    shutil.copytree(path, broken)
    (broken / part.relative_to(path)).write_bytes(b"PAR1 not really")
    with pytest.raises(InputError, match="not a readable incident dataset part"):
        read_incident_dataset(broken)


@pytest.mark.parametrize("spec", ["h3:8", "rd"])
def test_dask_cube_equals_in_memory(client, single, spec):
    path, frame = single
    units = make_units(spec, frame)
    want = make_cube(frame, units, freq="W", coverage=check_coverage(frame, freq="W"))
    got = dask_cube(path, units, freq="W", coverage=True, client=client)
    assert_same_cube(got, want)
    assert got.meta["incidents_total"] == len(frame) == 118_704
    assert got.meta["assignment"]["assigned"] == want.meta["assignment"]["assigned"] > 100_000
    assert got.complete.sum() == want.complete.sum() > 0
    assert not got.complete.all()  # the March 2024 records-system change is marked


def test_duplicates_across_batches_removed_and_counted(client, overlapping):
    path, joint, report = overlapping
    assert report.duplicates_dropped == SHARED_DR_NOS
    frame, dropped = read_incident_dataset(path)
    assert dropped["duplicates_dropped"] == SHARED_DR_NOS
    pd.testing.assert_frame_equal(frame, joint, check_categorical=False)
    units = make_units("h3:8", joint)
    held = load_distributed(path, client)
    try:
        assert held.duplicates == {
            "duplicates_dropped": SHARED_DR_NOS,
            "duplicate_offenses_dropped": 0,
            "cross_system_duplicates": 0,  # 2020 rows: no NIBRS system yet
            "legacy_matchable": 0,
        }
        got = dask_cube(held, units, freq="M", coverage=True)
    finally:
        held.release()
    want = make_cube(joint, units, freq="M", coverage=check_coverage(joint, freq="M"))
    assert_same_cube(got, want)
    assert got.meta["incidents_total"] == len(joint) == report.rows_out


def test_cross_system_twins_in_separate_batches_removed_on_both_engines(client, tmp_path):
    """Legacy rows (batch 0) and NIBRS records of some of them (batch 1, appended): the
    records NIBRS holds too are removed when the dataset is read, in memory and on the cluster
    alike, and counted once."""
    twins = timed_twin_files(tmp_path)
    path = tmp_path / "store"
    for i, file in enumerate((twins.legacy_file, twins.nibrs_file)):
        frame, report = load_incidents([file], cache=False)
        assert report.cross_system_duplicates_dropped == 0  # one system per batch
        write_incident_dataset(frame, report, path, inputs=[file], append=bool(i))
    frame, report = load_incident_dataset(path)
    assert report.cross_system_duplicates_dropped == 40
    assert report.legacy_matchable == len(twins.legacy)
    assert not set(frame["incident_id"]) & twins.twin_ids
    assert len(frame) == len(twins.legacy) - 40 + 70
    held = load_distributed(path, client)
    try:
        assert held.duplicates["cross_system_duplicates"] == 40
        assert held.duplicates["legacy_matchable"] == len(twins.legacy)
        got = pd.concat(client.gather(held.frames), ignore_index=True)
        rows = held.coverage_rows()
    finally:
        held.release()
    got = got.sort_values(["_batch", "_row"]).drop(columns=["_batch", "_row"])
    pd.testing.assert_frame_equal(
        got.reset_index(drop=True)[frame.columns], frame, check_categorical=False
    )
    assert int(rows["_rows"].sum()) == len(frame)
    # the kept NIBRS twins note the legacy source, for the per-source coverage diagnostic
    noted = rows.loc[rows["also_in_sources"].astype("string").eq("api"), "_rows"].sum()
    assert int(noted) == 40


@pytest.fixture()
def killable():
    """Two worker processes of their own (one of them is killed)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cluster = LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        )
    with cluster, Client(cluster) as c:
        yield c


def test_worker_killed_mid_job(killable, single):
    client = killable
    path, frame = single
    units = make_units("rd", frame)
    want = make_cube(frame, units, freq="W")
    outcome: dict = {}

    def job() -> None:
        try:
            outcome["cube"] = dask_cube(path, units, freq="W", client=client)
        except DataError as exc:
            outcome["error"] = exc

    worker = threading.Thread(target=job)
    worker.start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not any(client.processing().values()):
        time.sleep(0.02)
    busy = [addr for addr, tasks in client.processing().items() if tasks]
    assert busy, "the job never started"
    pid = client.run(os.getpid, workers=busy[:1])[busy[0]]
    os.kill(pid, signal.SIGKILL)
    worker.join(timeout=120)
    assert not worker.is_alive()
    if "error" in outcome:  # a loud failure is allowed, a short cube never
        assert "no cube was built" in str(outcome["error"])
    else:
        assert_same_cube(outcome["cube"], want)
        assert int(outcome["cube"].counts.sum()) == int(want.counts.sum()) > 100_000


def test_cli_cube_dask_engine_equals_memory(tmp_path, overlapping):
    path, joint, _ = overlapping
    runner = CliRunner()
    outs = {}
    for engine in ("memory", "dask"):
        out = tmp_path / f"{engine}.parquet"
        args = ["cube", str(path), "-o", str(out), "--unit", "h3:8", "--freq", "M"]
        args += ["--no-population", "--engine", engine]
        if engine == "dask":
            args += ["--workers", "2"]
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
        outs[engine] = Cube.load(out)
    assert_same_cube(outs["dask"], outs["memory"])
    assert int(outs["dask"].counts.sum()) == outs["memory"].meta["assignment"]["assigned"]
    bad = runner.invoke(
        app,
        ["cube", str(crime_file(IVANCO)), "-o", str(tmp_path / "x.parquet"), "--engine", "dask"],
    )
    assert bad.exit_code != 0 and "dataset folder" in bad.output
    cube_args = ["cube", str(path), "-o", str(tmp_path / "y.parquet"), "--engine"]
    bad = runner.invoke(app, [*cube_args, "dask", "--workers", "1", "--worker-memory", "lots"])
    assert bad.exit_code != 0 and "'lots' is not a memory size" in bad.output
    bad = runner.invoke(app, [*cube_args, "memory", "--worker-memory", "4GB"])
    assert bad.exit_code != 0 and "apply to --engine dask only" in bad.output
    assert not (tmp_path / "y.parquet").exists()


def test_coverage_counts_judge_like_the_rows(client, tmp_path):
    """The per-day counts the cluster sends are judged exactly as the incidents they count.

    Ivanco and West LA 2020 loaded together share 464 record numbers, kept once and noted in
    ``also_in_sources``: the counts must carry that note (each source is judged on all it held).
    """
    inputs = [crime_file(IVANCO), crime_file(WESTLA)]
    frame, report = load_incidents(inputs, cache=False)
    assert int(frame["also_in_sources"].notna().sum()) == SHARED_DR_NOS
    path = tmp_path / "joint"
    write_incident_dataset(frame, report, path, inputs=inputs)
    held = load_distributed(path, client, columns=cube_columns("h3:8"))
    try:
        rows = held.coverage_rows()
        divisions = held.unit_input("h3:8")
    finally:
        held.release()
    # the units' input is the incidents per division (21 rows), judged as the incidents are
    assert len(divisions) == frame["area"].nunique() == 21
    assert int(divisions["_rows"].sum()) == len(frame)
    by_area = frame["area"].astype(int).value_counts()
    assert divisions.set_index("area")["_rows"].to_dict() == by_area.to_dict()
    assert covered_divisions(divisions) == covered_divisions(frame)
    # a division under 0.1% of the counted incidents is not covered, as for rows
    assert covered_divisions(pd.DataFrame({"area": [1, 2], "_rows": [10_000, 9]})) == [1]
    assert covered_divisions(pd.DataFrame({"area": [1, 2], "_rows": [10_000, 11]})) == [1, 2]
    assert int(rows["_rows"].sum()) == len(frame)
    assert len(rows) < len(frame) / 5  # one row per (source, division, day), not per incident
    for freq in ("D", "W", "M"):
        want, got = check_coverage(frame, freq=freq), check_coverage(rows, freq=freq)
        pd.testing.assert_frame_equal(got.spans, want.spans)
        pd.testing.assert_frame_equal(got.table, want.table)
    # the 464 shared records count for both sources: 12,954 West LA rows, 10,000 Ivanco rows
    assert got.spans.set_index("source")["rows"].to_dict() == {
        "modified": 12_954,
        "official": 10_000,
    }
    assert len(frame) == 12_954 + 10_000 - SHARED_DR_NOS


def test_dataset_loads_as_the_files_do(overlapping):
    """Two batches read back are the frame and the cleaning report of the two files loaded."""
    path, joint, joint_report = overlapping
    frame, report = load_incidents(path)
    # same rows, order and values; a category column's categories are the union of the
    # batches', in the order the batches met them
    pd.testing.assert_frame_equal(frame, joint, check_categorical=False)
    for column in joint.select_dtypes("category"):
        assert set(frame[column].cat.categories) == set(joint[column].cat.categories), column
    assert report.rows_read == joint_report.rows_read == 12_954 + 10_000
    assert report.duplicates_dropped == joint_report.duplicates_dropped >= SHARED_DR_NOS
    assert report.rows_out == len(frame) == joint_report.rows_out
    assert report.rows_out + sum(report.rows_dropped_by_reason.values()) == report.rows_read
    assert report.spatially_valid == joint_report.spatially_valid
    assert report.files == joint_report.files
    with pytest.raises(InputError, match="read on its own"):
        load_incidents([path, crime_file(WESTLA)])
    with pytest.raises(InputError, match="holds cleaned incidents"):
        read_incidents(path)


def test_coverage_and_run_accept_a_dataset(overlapping, tmp_path):
    """`geo-crime coverage DIR` and a run on DIR give what they give for the same files."""
    path, joint, _ = overlapping
    flat = tmp_path / "joint.parquet"
    joint.to_parquet(flat, index=False)
    runner = CliRunner()
    printed = {}
    for name, source in (("dataset", path), ("file", flat)):
        result = runner.invoke(app, ["coverage", str(source), "--freq", "W"])
        assert result.exit_code == 0, result.output
        printed[name] = result.output
    assert printed["dataset"] == printed["file"]
    assert "source official: 10,000 rows" in printed["dataset"]

    def small_run(inputs: list[str], name: str):
        settings = RunSettings(
            inputs=inputs,
            outputs=str(tmp_path / "runs"),
            name=name,
            permutations=9,
            cache=False,
            studies=[westla_rd_study(["moran", "gi"])],
        )
        folder = run_pipeline(settings, quiet=True).folder
        return folder, Cube.load(folder / "analysis" / "westla" / "cube_rd.parquet")

    from_dataset, cube_dataset = small_run([str(path)], "from_dataset")
    _, cube_files = small_run([str(crime_file(IVANCO)), str(crime_file(WESTLA))], "from_files")
    assert_same_cube(cube_dataset, cube_files)
    assert int(cube_dataset.counts.sum()) > 1_000
    cleaning = json.loads((from_dataset / "cleaning_report.json").read_text())
    assert cleaning["rows_read"] == 12_954 + 10_000
    assert cleaning["duplicates_dropped"] >= SHARED_DR_NOS


def test_cli_cube_on_an_existing_scheduler(tmp_path, single):
    """`--scheduler tcp://...` sends the job to a cluster started elsewhere (here on 127.0.0.1)."""
    path, frame = single
    runner = CliRunner()
    memory_out, dask_out = tmp_path / "memory.parquet", tmp_path / "dask.parquet"
    args = ["cube", str(path), "--unit", "rd", "--freq", "W", "--no-population"]
    result = runner.invoke(app, [*args, "-o", str(memory_out)])
    assert result.exit_code == 0, result.output
    with separate_cluster() as cluster:
        address = cluster.scheduler_address
        assert address.startswith("tcp://127.0.0.1:")
        result = runner.invoke(
            app, [*args, "-o", str(dask_out), "--engine", "dask", "--scheduler", address]
        )
        assert result.exit_code == 0, result.output
        with Client(address) as probe:  # a cluster of its own: still up, both workers, after
            assert len(probe.scheduler_info()["workers"]) == 2
        bad = runner.invoke(
            app,
            [
                *args,
                "-o",
                str(dask_out),
                "--engine",
                "dask",
                "--scheduler",
                address,
                "--workers",
                "2",
            ],
        )
        assert bad.exit_code != 0 and "apply to a local cluster only" in bad.output
    got, want = Cube.load(dask_out), Cube.load(memory_out)
    assert_same_cube(got, want)
    assignment = got.meta["assignment"]
    placed = assignment["assigned"] + assignment["outside"] + assignment["not_spatially_valid"]
    assert placed == len(frame)
    assert int(got.counts.sum()) == assignment["assigned"] > 10_000
    unreachable = runner.invoke(
        app,
        [
            *args,
            "-o",
            str(tmp_path / "none.parquet"),
            "--engine",
            "dask",
            "--scheduler",
            "tcp://127.0.0.1:9",
        ],
    )
    assert unreachable.exit_code != 0
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in unreachable.output
    assert not (tmp_path / "none.parquet").exists()

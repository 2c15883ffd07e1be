"""The generated today record (``tests/fakes/today_record.py``), and the whole tool run on it.

The record is generated data for tests and benchmarks, never findings. The generator tests check
its volumes against the real monthly figures times the scale, its forms against the published
NIBRS forms, that every place is a real place and every id unique. The end-to-end test serves
it on 127.0.0.1, runs ``geo-crime fetch --dataset all`` and ``geo-crime run`` on the download
and checks what an analyst would: nothing lost, a 2024 at its usual level, a city-wide study over
the latest 52 complete weeks.
"""

from __future__ import annotations

import gzip
import json
import re

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from geo_crime.cli import app
from geo_crime.net.catalogue import DATASETS
from tests.fakes.today_record import (
    LEGACY_2024,
    LEGACY_LAST,
    NIBRS_PER_DAY_FROM_2025,
    NIBRS_START,
    PENAL_CODES,
    RECORD_LAST,
    STATUSES,
    UNION_PER_DAY_2024,
    _crosswalked,
    counts_by_month,
    monthly_volumes,
    real_rows,
    serve_today,
    today_records,
    write_today,
)

SCALE = 0.02
E2E_SCALE = 0.01


@pytest.fixture(scope="module")
def record():
    return today_records(SCALE, seed=0)


@pytest.fixture(scope="module")
def counts(record):
    return counts_by_month(record)


# --- volumes --------------------------------------------------------------------------------------


def test_full_size_volumes_are_the_real_ones():
    volumes = monthly_volumes(1.0)
    legacy = volumes["legacy"]
    assert legacy["2024"].tolist() == list(LEGACY_2024)
    assert legacy.sum() == 1_004_894  # the frozen set
    yearly = legacy.groupby(legacy.index.year).sum()
    assert [int(yearly[y]) for y in (2020, 2021, 2022)] == [199_365, 209_288, 234_060]
    assert legacy[:"2023-12"].between(15_500, 20_000).all()  # about 16-20k a month
    assert (legacy["2025":] == 0).all()
    nibrs = volumes["nibrs"]
    assert (nibrs[:"2024-02"] == 0).all()
    union = (legacy + nibrs)["2024-03":"2024-12"]
    days = union.index.days_in_month
    assert (union.to_numpy() == UNION_PER_DAY_2024 * days).all()  # ~19k a month
    assert (nibrs["2025":] == NIBRS_PER_DAY_FROM_2025 * nibrs["2025":].index.days_in_month).all()
    assert nibrs.index[-1] == pd.Period("2026-11", "M")
    offence_rows = int(nibrs.sum()) * 1.11
    assert 480_000 < offence_rows < 500_000


def test_volumes_per_system_and_month_are_the_real_ones_times_the_scale(record, counts):
    expected = monthly_volumes(SCALE)
    assert counts["legacy"]["2024"].tolist() == [round(v * SCALE) for v in LEGACY_2024]
    assert (counts["legacy"] == expected["legacy"]).all()
    assert (counts["nibrs_cases"] - counts["twins"] == expected["nibrs"]).all()
    after_switch = (record.legacy["date_occ"] >= "2024-03-07").sum()
    assert record.twins == round(0.0025 * after_switch) == counts["twins"].sum() >= 1
    assert counts["twins"][:"2024-02"].sum() == 0 and counts["twins"]["2025":].sum() == 0
    offences_per_case = counts["nibrs_offences"].sum() / counts["nibrs_cases"].sum()
    assert 1.08 < offences_per_case < 1.14
    legacy_days = pd.to_datetime(record.legacy["date_occ"])
    nibrs_days = pd.to_datetime(record.nibrs["date_occ"])
    assert legacy_days.min() == pd.Timestamp("2020-01-01") and legacy_days.max() <= LEGACY_LAST
    assert nibrs_days.min() >= NIBRS_START and nibrs_days.max() <= RECORD_LAST
    assert nibrs_days.max() >= RECORD_LAST - pd.Timedelta(days=3)


def test_the_record_is_deterministic_for_a_seed(record):
    again = today_records(SCALE, seed=0)
    pd.testing.assert_frame_equal(again.legacy, record.legacy)
    pd.testing.assert_frame_equal(again.nibrs, record.nibrs)
    assert again.twin_of == record.twin_of
    other = today_records(SCALE, seed=1)
    assert not other.nibrs["uniquenibrno"].equals(record.nibrs["uniquenibrno"])


# --- forms ----------------------------------------------------------------------------------------


def test_legacy_rows_have_the_api_form_and_new_record_numbers(record):
    legacy = record.legacy
    assert legacy["dr_no"].is_unique and legacy["dr_no"].is_monotonic_increasing
    assert legacy["dr_no"].str.fullmatch(r"\d{9}").all()
    assert (legacy["dr_no"].str[2:4] == legacy["area"]).all()
    assert (legacy["dr_no"].str[:2] == legacy["date_rptd"].str[2:4]).all()
    assert legacy["area"].str.fullmatch(r"(0[1-9]|1\d|2[01])").all()
    assert legacy["rpt_dist_no"].str.fullmatch(r"\d{4}").all()
    assert (legacy["rpt_dist_no"].str[:2] == legacy["area"]).mean() > 0.95
    timestamp = r"20(2[0-4])-\d\d-\d\dT00:00:00\.000"
    assert legacy["date_occ"].str.fullmatch(timestamp).all()
    assert legacy["date_rptd"].str.fullmatch(timestamp).all()
    assert (legacy["date_rptd"] >= legacy["date_occ"]).all()
    assert legacy["time_occ"].str.fullmatch(r"([01]\d|2[0-3])[0-5]\d").all()
    assert legacy["crm_cd"].notna().all() and legacy["lat"].notna().all()


def test_nibrs_rows_have_the_published_forms(record):
    nibrs = record.nibrs
    assert nibrs["uniquenibrno"].is_unique and nibrs["uniquenibrno"].is_monotonic_increasing
    assert nibrs["caseno"].str.fullmatch(r"2[4-6]\d{6}").all()
    assert (nibrs["caseno"].str[:2] == nibrs["date_rptd"].str[2:4]).all()
    sequence = nibrs["uniquenibrno"].str.rsplit("_", n=1).str[1]
    code = nibrs["nibr_code"].fillna("")
    assert (nibrs["uniquenibrno"] == nibrs["caseno"] + "_" + code + "_" + sequence).all()
    numbers = sequence.astype(int).groupby(nibrs["caseno"]).agg(sorted)
    assert all(n == list(range(len(n))) for n in numbers)  # 0, 1, ... in each case
    sizes = nibrs.groupby("caseno")["caseno"].transform("size").astype(str)
    assert (nibrs["totaloffensecount"] == sizes).all()
    statuses = {code: description for code, description, _ in STATUSES}
    assert statuses["14"] == "Cleared by Arrest - CA Filed"
    assert statuses["40"] == "Investigation Continued"
    assert (nibrs["status_desc"] == nibrs["status"].map(statuses)).all()
    assert nibrs["status"].str.fullmatch(r"\d\d").all()
    times = nibrs["time_occ"]
    assert times.str.fullmatch(r"([01]\d|2[0-3])[0-5]\d").all()
    assert 0.022 < (times == "0000").mean() < 0.032
    assert 0.018 < (times == "1200").mean() < 0.028
    assert nibrs["area"].str.fullmatch(r"[1-9]|1\d|2[01]").all()
    assert nibrs["rpt_dist_no"].str.fullmatch(r"[1-9]\d{2,3}").all()
    for column in ("hndrdth_lat", "hndrdth_lon"):
        assert nibrs[column].str.fullmatch(r"-?\d+\.\d{4}").all()
    assert ((nibrs["hndrdth_lat"] == "0.0000") & (nibrs["hndrdth_lon"] == "0.0000")).any()
    coded = nibrs.dropna(subset=["nibr_code"])
    assert len(nibrs) - len(coded) <= 0.002 * len(nibrs)
    assert all(
        description.endswith(f" - {code}") and description[: -len(code) - 3] in PENAL_CODES[code]
        for description, code in zip(coded["nibr_description"], coded["nibr_code"], strict=True)
    )
    assert coded["nibr_description"].str.fullmatch(r"\S+ - (PC|VC|HS) - [FM] - .+ - \w{3}").all()
    premises = nibrs.dropna(subset=["premis_cd"]).drop_duplicates("premis_cd")
    by_code = dict(zip(premises["premis_cd"], premises["premis_desc"], strict=True))
    assert by_code["RA"] == "Single Family Home"
    assert by_code["32"] == "Parking Lot / Garage / Drop Lot"
    assert all(re.fullmatch(r"[0-9A-Z]{2}", code) for code in by_code)
    assert set(nibrs["group"].dropna()) == {"A", "B"}
    assert all(isinstance(v, str) for row in nibrs.itertuples(index=False) for v in row if v)


def test_every_place_is_a_real_place_and_twins_are_recorded_twice(record):
    real = real_rows()
    places = set(zip(real["area"], real["rpt_dist_no"], real["lat"], real["lon"], strict=True))
    legacy = record.legacy
    columns = ["area", "rpt_dist_no", "lat", "lon"]
    assert set(legacy[columns].itertuples(index=False, name=None)) <= places
    four = {
        (int(a), int(rd), f"{float(lat):.4f}", f"{float(lon):.4f}") for a, rd, lat, lon in places
    }
    nibrs = record.nibrs[~record.nibrs["caseno"].isin(list(record.twin_of))]
    nibrs = nibrs.astype({"area": int, "rpt_dist_no": int})
    columns = ["area", "rpt_dist_no", "hndrdth_lat", "hndrdth_lon"]
    assert set(nibrs[columns].itertuples(index=False, name=None)) <= four
    # each twin: same day, time and district, the crosswalked offence, within 30 m, its own case
    assert record.twins >= 1
    twins = record.nibrs.set_index("caseno").loc[list(record.twin_of)]
    pairs = legacy.set_index("dr_no").loc[list(record.twin_of.values())]
    assert (twins["date_occ"].to_numpy() == pairs["date_occ"].to_numpy()).all()
    assert (twins["time_occ"].to_numpy() == pairs["time_occ"].to_numpy()).all()
    assert (twins["rpt_dist_no"].astype(int).to_numpy() == pairs["rpt_dist_no"].astype(int)).all()
    assert (twins["nibr_code"].to_numpy() == _crosswalked(pairs["crm_cd"]).to_numpy()).all()
    north = (twins["hndrdth_lat"].astype(float).to_numpy() - pairs["lat"].astype(float)) * 111_000
    east = (twins["hndrdth_lon"].astype(float).to_numpy() - pairs["lon"].astype(float)) * 92_000
    assert (np.hypot(north, east) < 30).all()


def test_written_files_are_what_fetch_writes(tmp_path):
    record, counts = write_today(tmp_path, scale=0.002, seed=3)
    for name, frame, key in (
        ("legacy", record.legacy, "dr_no"),
        ("nibrs", record.nibrs, "uniquenibrno"),
    ):
        lines = gzip.decompress((tmp_path / DATASETS[name].file_name).read_bytes()).splitlines()
        rows = [json.loads(line) for line in lines]
        assert [r[key] for r in rows] == frame[key].tolist()
        assert all(None not in r.values() for r in rows)
    assert counts["legacy"].sum() == len(record.legacy)
    assert counts["nibrs_offences"].sum() == len(record.nibrs)


# --- fetch and run, end to end --------------------------------------------------------------------


def scaled_data_folder(folder, scale: float):
    """A data folder with the real boundaries and the published roll-up times ``scale``."""
    from geo_crime.core.config import data_dir
    from geo_crime.record.coverage import REFERENCE_ROLLUP

    real = data_dir()
    (folder / "lapd_crime").mkdir(parents=True)
    (folder / "boundaries").symlink_to(real / "boundaries", target_is_directory=True)
    rollup = pd.read_csv(real / REFERENCE_ROLLUP, dtype=str)
    rollup["DR_NO"] = (pd.to_numeric(rollup["DR_NO"]) * scale).round(3).astype(str)
    target = folder / REFERENCE_ROLLUP
    target.parent.mkdir(parents=True)
    rollup.to_csv(target, index=False)
    return folder


@pytest.fixture(scope="module")
def today_run(tmp_path_factory):
    """``geo-crime fetch --dataset all`` from a loopback portal, then ``geo-crime run``."""
    folder = tmp_path_factory.mktemp("today")
    downloads = folder / "downloads"
    with serve_today(E2E_SCALE, seed=0) as (portal, record):
        args = ["fetch", "--dataset", "all", "--out", str(downloads)]
        args += ["--base-url", portal.template, "--page-size", "5000"]
        fetched = CliRunner().invoke(app, args)
    assert fetched.exit_code == 0, fetched.output
    assert portal.violations == []
    config = folder / "run.toml"
    config.write_text("[run]\npermutations = 19\ncache = false\n", encoding="utf-8")
    args = ["run", str(downloads), "--config", str(config), "--name", "today"]
    # the record is the full record at E2E_SCALE: so is the published roll-up the coverage
    # check compares its first periods with (the boundaries are the real ones)
    data = scaled_data_folder(folder / "data", E2E_SCALE)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GEO_CRIME_DATA", str(data))
        result = CliRunner().invoke(app, [*args, "--outputs", str(folder / "outputs"), "--quiet"])
    assert result.exit_code == 0, result.output
    return record, folder / "outputs" / "today"


def test_nothing_is_discarded_but_the_planted_twins(today_run):
    record, run = today_run
    incidents = pd.read_parquet(run / "analysis" / "incidents.parquet")
    cleaning = json.loads((run / "cleaning_report.json").read_text())
    legacy_ids = set(record.legacy["dr_no"])
    cases = set(record.nibrs["caseno"])
    kept = set(incidents["incident_id"].dropna()) | set(incidents["case_id"].dropna())
    lost = (legacy_ids | cases) - kept
    twins = set(record.twin_of) | set(record.twin_of.values())
    assert lost <= twins  # of each twin pair one record is kept
    assert len(lost) == record.twins == cleaning["cross_system_duplicates_dropped"]
    assert len(incidents) == len(legacy_ids) + len(cases) - record.twins


def test_every_2024_month_of_the_union_is_at_its_usual_level(today_run):
    """Incidents a day of each 2024 month within 10% of 2023's (per day: February is short)."""
    _, run = today_run
    incidents = pd.read_parquet(run / "analysis" / "incidents.parquet", columns=["occurred_at"])
    months = incidents["occurred_at"].dt.to_period("M").value_counts().sort_index()
    per_day = months / months.index.days_in_month
    normal = months["2023"].sum() / 365
    ratio = per_day["2024"] / normal
    assert ratio.between(0.9, 1.1).all(), ratio.round(3).to_dict()


def test_the_default_citywide_study_covers_the_latest_52_complete_weeks(today_run):
    _, run = today_run
    summary = json.loads((run / "summary.json").read_text())
    citywide = [
        study["settings"]
        for study in summary.values()
        if isinstance(study, dict) and "settings" in study and not study["settings"]["areas"]
    ]
    assert len(citywide) == 1
    # the record ends on Monday 2026-11-30: the last complete week is 23-29 November
    assert (citywide[0]["start"], citywide[0]["end"]) == ("2025-12-01", "2026-11-30")

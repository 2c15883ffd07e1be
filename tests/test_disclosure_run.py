"""Disclosure over everything one run publishes: each attack a hostile tester made, on real rows.

One run of the pipeline (the 2020 head of the export, the West LA record and a file holding one
broken forcible-rape row) publishes three studies that share no row: West LA weekly with a
forecast, one day of West LA, and one day of Central division with a single incident. The
attacker reads everything under ``public/``, the report and the run folder's top-level files, and
tries: differencing overlapping studies, solving the forecast layer's ratios for a unit's crime
counts, reading a tiny study's count off the report and its figures, reading the raw bad row,
and comparing releases at two thresholds.
"""

from __future__ import annotations

import csv
import gzip
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyogrio
import pytest

import geo_crime.publish.figures.core as figures
from geo_crime.core.errors import ConfigError
from geo_crime.cube.panel import Cube
from geo_crime.forecast.incidents import INCIDENT_GROUPS, MIX_PERIODS
from geo_crime.pipeline import run_pipeline
from geo_crime.publish.privacy import check_study_overlap, suppressed_units
from geo_crime.settings import RunSettings, StudySettings
from geo_crime.study_windows import studies_from_coverage
from tests.fakes.shared_data import IVANCO, REDUCED_DIR, WESTLA, crime_file

K = 3
#: The forcible rape (crime code 121) whose row is broken in the extra input file.
RAPE_DR_NO = "200100501"
#: Central division (1) holds one incident of the 2020 head on this day.
TINY_DAY = "2020-02-11"


def _study(name: str, **values) -> StudySettings:
    values = {"statistics": [], "forecast": False, **values}
    return StudySettings(name=name, **values)


@pytest.fixture(scope="module")
def broken_file(tmp_path_factory) -> Path:
    """The first rows of the 2020 head, the forcible rape's row with one field lost."""
    path = tmp_path_factory.mktemp("broken") / "broken.csv"
    with gzip.open(crime_file(IVANCO), "rt", newline="", encoding="utf-8") as source:
        rows = [row for _, row in zip(range(8), csv.reader(source), strict=False)]
    assert rows[6][0] == RAPE_DR_NO and rows[6][8] == "121"
    rows[6] = rows[6][:10] + rows[6][11:]  # the Mocodes field is gone: 27 fields, not 28
    with path.open("w", newline="", encoding="utf-8") as out:
        csv.writer(out).writerows(rows)
    return path


@pytest.fixture(scope="module")
def run(tmp_path_factory, broken_file) -> tuple[Path, dict[str, object]]:
    """The run folder and every figure it drew (by file name under its study)."""
    folder = tmp_path_factory.mktemp("run")
    settings = RunSettings(
        name="r",
        inputs=[str(crime_file(IVANCO)), str(crime_file(WESTLA)), str(broken_file)],
        outputs=folder,
        permutations=19,
        k_anonymity=K,
        studies=[
            _study(
                "westla",
                areas=[8],
                start="2020-07-01",
                end="2021-08-01",
                units=["rd"],
                forecast=True,
                forecast_models=["ma8"],
                forecast_origins=1,
            ),
            _study("westla_day", areas=[8], start="2020-06-06", end="2020-06-07", freq="D"),
            _study("central_day", areas=[1], start=TINY_DAY, end="2020-02-12", freq="D"),
        ],
    )
    for study in settings.studies[1:]:
        study.units = ["division"]
    drawn: dict[str, object] = {}
    save = figures.save_figure

    def capture(fig, path, dpi, **kwargs):
        drawn[f"{Path(path).parent.parent.name}/{Path(path).name}"] = fig
        return save(fig, path, dpi, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(figures, "save_figure", capture)
        result = run_pipeline(settings, quiet=True)
    return result.folder, drawn


def _public_text(folder: Path) -> str:
    """Every public text a reader gets: the report, the top-level records, public tables."""
    paths = [folder / "report.md", folder / "report.html", *folder.glob("*.json")]
    paths += [p for p in (folder / "public").rglob("*") if p.suffix in (".csv", ".html")]
    return "\n".join(p.read_text(encoding="utf-8") for p in paths)


# --- overlapping studies -------------------------------------------------------------------


def test_overlapping_studies_of_one_run_are_refused_before_any_work(tmp_path):
    """A (Feb on), B (Jan on) and C (January) at reporting district x month: B - C is A's count
    of every district, the suppressed ones too, and B - A each district's January. The run
    refuses the combination before reading a row."""
    months = {"units": ["rd"], "freq": "M"}
    settings = RunSettings(
        name="abc",
        inputs=[str(crime_file(REDUCED_DIR))],
        outputs=tmp_path / "out",
        permutations=19,
        studies=[
            _study("a", start="2024-02-01", end="2025-01-01", **months),
            _study("b", start="2024-01-01", end="2025-01-01", **months),
            _study("c", start="2024-01-01", end="2024-02-01", **months),
        ],
    )
    with pytest.raises(ConfigError) as refused:
        run_pipeline(settings, quiet=True)
    message = str(refused.value)
    assert "studies 'a' and 'b'" in message
    assert "2024-02-01 to 2025-01-01" in message and "2024-01-01 to 2025-01-01" in message
    assert "fewer than k_anonymity = 3" in message
    assert not (tmp_path / "out").exists()


def test_studies_that_share_no_row_or_every_row_run_together(run, incidents):
    folder, _ = run
    summary = json.loads((folder / "summary.json").read_text())
    assert {"westla", "westla_day", "central_day"} <= set(summary)
    # the same rows at another period length on other units (the examples' city-wide panels)
    same_rows = {"start": "2024-01-01", "end": "2024-10-01"}
    check_study_overlap(
        [
            _study("weekly", units=["h3:8", "rd"], **same_rows),
            _study("daily", units=["division"], freq="D", **same_rows),
        ]
    )
    # ... but not on the same units: complete weeks and complete days differ at the edges
    with pytest.raises(ConfigError, match="'weekly' and 'daily'"):
        check_study_overlap(
            [
                _study("weekly", units=["rd"], **same_rows),
                _study("daily", units=["rd"], freq="D", **same_rows),
            ]
        )
    # the studies a run chooses from the data never overlap
    from geo_crime.record.coverage import check_coverage

    chosen = studies_from_coverage(check_coverage(incidents, freq="W")).studies
    assert len(chosen) == 2
    check_study_overlap(chosen)


# --- the forecast layer --------------------------------------------------------------------


def _mix_truth(folder: Path, last: pd.Timestamp) -> pd.DataFrame:
    """Each district's incidents (all, violent, property) and severity points over the 13
    complete weeks up to the forecast origin: what the forecast's mix is read over."""
    cube = Cube.load(folder / "analysis/westla/cube_rd.parquet")
    origin = int(pd.DatetimeIndex(cube.periods).get_loc(last))
    use = np.zeros(cube.shape, dtype=bool)
    start = origin + 1 - MIX_PERIODS
    use[:, start : origin + 1] = np.asarray(cube.complete, dtype=bool)[:, start : origin + 1]
    out = {
        "n": np.where(use, cube.values("count"), 0).sum(axis=1),
        "points": np.where(use, cube.values("severity"), 0).sum(axis=1),
    }
    for group in ("violent", "property"):
        out[group] = sum(
            np.where(use, cube.categories[c], 0).sum(axis=1)
            for c in INCIDENT_GROUPS[group]
            if c in cube.categories
        )
    return pd.DataFrame(out, index=cube.unit_ids.astype(str))


def _solve(row) -> tuple[int, int, int] | None:
    """The smallest window that makes the published shares and points per incident whole
    numbers of incidents and points: (all, violent, property)."""
    violent = row.expected_violent / row.expected_incidents
    prop = row.expected_property / row.expected_incidents
    points = row.prediction / row.expected_incidents
    for n in range(1, 500):
        if all(abs(x * n - round(x * n)) < 1e-6 for x in (violent, prop, points)):
            return n, round(violent * n), round(prop * n)
    return None


def test_forecast_ratios_give_no_units_crime_counts_or_severity_per_incident(run):
    folder, _ = run
    csv_path = folder / "public/westla/forecast_rd/next_period_forecast.csv"
    layer = pyogrio.read_dataframe(folder / "public/westla/gis/geo_crime_rd.gpkg", "rd_forecast")
    for table in (pd.read_csv(csv_path, dtype={"unit_id": str}), layer):
        shown = table[~table["suppressed"].astype(bool) & table["expected_incidents"].notna()]
        assert len(shown) >= 60
        truth = _mix_truth(folder, pd.Timestamp(shown["last_complete_period"].iloc[0]))
        recovered = [
            row.unit_id
            for row in shown.itertuples()
            if _solve(row) == tuple(truth.loc[row.unit_id, ["n", "violent", "property"]])
        ]
        assert recovered == []
        # points per incident and the violent share are the division's, not the unit's
        per_incident = shown["prediction"] / shown["expected_incidents"]
        share = shown["expected_violent"] / shown["expected_incidents"]
        assert per_incident.round(9).nunique() == share.round(9).nunique() == 1
        assert per_incident.iloc[0] == pytest.approx(
            truth["points"].sum() / truth["n"].sum(), rel=1e-9
        )
        # ... and the map still ranks units by their forecast
        assert shown["expected_incidents"].max() > 2 * shown["expected_incidents"].median()


# --- a tiny study ---------------------------------------------------------------------------


def test_a_study_below_k_is_fewer_than_k_in_the_report(run):
    folder, _ = run
    incidents = pd.read_parquet(folder / "analysis/incidents.parquet")
    day = incidents[
        (incidents["area"] == 1) & (incidents["occurred_at"].dt.date.astype(str) == TINY_DAY)
    ]
    assert len(day) == 1  # the truth the attacker wants
    for name in ("report.md", "report.html"):
        text = (folder / name).read_text(encoding="utf-8")
        section = text[text.index("central_day") :]
        assert f"Fewer than {K} incidents in LAPD division(s) 1" in section
        assert not re.search(r"(?<![\d.,])1 incidents", text)
    # the other day is large enough to be stated
    westla_day = incidents[
        (incidents["area"] == 8) & (incidents["occurred_at"].dt.date.astype(str) == "2020-06-06")
    ]
    report = (folder / "report.md").read_text(encoding="utf-8")
    assert f"{len(westla_day)} incidents in LAPD division(s) 8" in report


def test_no_public_figure_shows_a_count_below_k(run):
    folder, drawn = run
    tiny = folder / "public/central_day/figures"
    assert not list(tiny.glob("*.png"))  # one incident: no trend, no hour x weekday
    heat = drawn["westla_day/hour_weekday.png"].axes[0]
    cells = [t.get_text() for t in heat.texts]
    assert len(cells) == 7 * 24
    numbers = [int(c.replace(",", "")) for c in cells if c.replace(",", "").isdigit()]
    assert numbers and min(numbers) >= K
    assert cells.count(f"<{K}") >= 150  # 25 incidents over 168 weekday-hours
    image = heat.get_images()[0].get_array()
    assert np.ma.count_masked(image) == cells.count(f"<{K}")
    caption = drawn["westla_day/hour_weekday.png"].get_supxlabel()
    for count in re.findall(r"exactly: ([\d,]+) incidents", caption):
        assert int(count.replace(",", "")) >= K
    # the trend of one day of West LA: one point, above k
    trend = drawn["westla_day/trend.png"]
    for ax in trend.axes:
        for line in ax.get_lines():
            values = np.asarray(line.get_ydata(), dtype=float)
            values = values[np.isfinite(values)]
            if "incidents" in ax.get_ylabel():
                assert (values >= K).all()


# --- the bad-row listing --------------------------------------------------------------------


def test_bad_rows_are_public_by_line_and_reason_only(run, broken_file):
    folder, _ = run
    public = _public_text(folder)
    assert RAPE_DR_NO not in public
    assert "RAPE" not in public and "01/02/2020 00:00,01/01/2020" not in public
    report = (folder / "report.md").read_text(encoding="utf-8")
    assert f"{broken_file.name}: line 7: wrong number of fields" in report
    cleaning = json.loads((folder / "cleaning_report.json").read_text())
    (listed,) = cleaning["bad_rows"]
    assert Path(listed.pop("file")).name == broken_file.name
    assert listed == {"line": 7, "column": "*", "reason": "wrong number of fields"}
    # the analyst still has the raw row
    full = json.loads((folder / "analysis/cleaning_report.json").read_text())
    assert full["bad_rows"][0]["value"].startswith(f"{RAPE_DR_NO},01/02/2020")


# --- releases at another threshold ----------------------------------------------------------


def test_the_report_states_k_and_that_releases_at_another_k_undo_it(run):
    folder, _ = run
    cube = Cube.load(folder / "analysis/westla/cube_rd.parquet").complete_periods()
    counts = pd.Series(cube.counts.sum(axis=1), index=cube.unit_ids.astype(str))
    groups = pd.Series(cube.units["area"].to_numpy(), index=counts.index)
    at_5 = suppressed_units(counts, 5, groups=groups)
    # this release (k = 3) shows the count of districts a release at k = 5 suppresses
    layer = pyogrio.read_dataframe(folder / "public/westla/gis/geo_crime_rd.gpkg", "rd_summary")
    published = layer.set_index("unit_id").loc[lambda t: ~t["suppressed"].astype(bool), "count"]
    undone = published[at_5.reindex(published.index).to_numpy()]
    assert len(undone) >= 1 and (undone < 5).any()
    assert (undone == counts.reindex(undone.index)).all()
    for name in ("report.md", "report.html"):
        text = (folder / name).read_text(encoding="utf-8")
        assert f"fewer than {K} incidents are suppressed" in text
        assert "releases of the same data at different k undo each other" in text

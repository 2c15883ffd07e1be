"""Places by name and key findings first: labels from the real neighbourhood layer, a summary
that names the top place of the real 2024 H3-8 study and never a suppressed unit."""

from __future__ import annotations

import json
import re

import geopandas as gpd
import h3
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import box

from geo_crime.cube.panel import build_cube
from geo_crime.ingest import load_incidents
from geo_crime.record.coverage import check_coverage
from geo_crime.report.findings import contents_lines, key_findings_lines, unit_findings
from geo_crime.report.markdown import markdown_to_html
from geo_crime.units import assign_units, division_names, division_units, make_units
from geo_crime.units.places import neighbourhoods, place_labels
from tests.fakes.shared_data import REDUCED_DIR, crime_file

CITY_HALL = (34.0537, -118.2428)


def city_findings(**options):
    """:func:`unit_findings` of the city-wide 2024 study's H3-8 cells (no statistic, no
    forecast unless given)."""
    options.setdefault("tables", {})
    options.setdefault("backtest", None)
    return unit_findings(
        study="citywide_2024", spec="h3:8", **options
    )  # Los Angeles City Hall, Downtown, LAPD Central division


@pytest.fixture(scope="module")
def city_h38(tmp_path_factory):
    rows, _ = load_incidents(crime_file(REDUCED_DIR), cache=tmp_path_factory.mktemp("r"))
    units = make_units("h3:8", rows)
    ids, _ = assign_units(rows, units)
    cube = build_cube(rows, units, ids, freq="W", coverage=check_coverage(rows, freq="W"))
    return units, cube


def test_the_cell_of_city_hall_is_downtown_in_central(city_h38):
    units, _ = city_h38
    labels = place_labels(units, division_names(units, division_units()))
    cell = h3.latlng_to_cell(*CITY_HALL, 8)
    assert cell in labels.index
    assert labels.at[cell, "neighbourhood"] == "Downtown"
    assert re.fullmatch(
        rf"Downtown( and \d+ others?)? \(Central\) - {cell}", labels.at[cell, "label"]
    )
    # every city cell has a neighbourhood; the labels are unique because they carry the id
    named = (labels["neighbourhood"] != "").mean()
    assert named > 0.98
    assert labels["label"].is_unique


def test_a_split_unit_names_its_majority_and_counts_the_others(tmp_path):
    hoods = gpd.GeoDataFrame(
        {"name": ["Alpha", "Beta", "Gamma"]},
        geometry=[box(0, 0, 600, 1000), box(600, 0, 950, 1000), box(950, 0, 1000, 1000)],
        crs="EPSG:3310",
    ).to_crs(4326)
    path = tmp_path / "hoods.geojson"
    hoods.to_file(path, driver="GeoJSON")
    units = gpd.GeoDataFrame(
        {"unit_id": ["u1", "u2"], "unit_type": "h3"},
        geometry=[box(0, 0, 1000, 1000), box(0, 0, 500, 1000)],
        crs="EPSG:3310",
    ).to_crs(4326)
    table = neighbourhoods(units, path=path)
    # u1: 60% Alpha, 35% Beta (counted), 5% Gamma (below the 10% share, not counted)
    assert table.at["u1", "neighbourhood"] == "Alpha"
    assert table.at["u1", "neighbourhood_share"] == pytest.approx(0.6, abs=1e-3)
    assert table.at["u1", "other_neighbourhoods"] == 1
    assert table.at["u2", "other_neighbourhoods"] == 0
    labels = place_labels(units, pd.Series({"u1": "Central", "u2": ""}), path=path)
    assert labels.at["u1", "label"] == "Alpha and 1 other (Central) - u1"
    assert labels.at["u2", "label"] == "Alpha - u2"


def test_the_summary_names_the_top_place_of_the_real_2024_h3_8_study(city_h38):
    units, cube = city_h38
    labels = place_labels(units, division_names(units, division_units()))["label"]
    severity = np.where(cube.complete, cube.values("severity"), 0.0).sum(axis=1)
    top = str(cube.unit_ids[int(np.argmax(severity))])
    findings = city_findings(
        cube=cube,
        labels=labels,
        suppressed=pd.Series(False, index=cube.unit_ids),
    )
    text = "\n".join(key_findings_lines([findings]))
    assert findings["top_places"][0]["label"] == labels[top]
    assert labels[top] in text
    share = severity.max() / severity.sum()
    assert f"({share:.1%})" in text
    # the attack: suppress the top unit; it must vanish from the summary and from every share
    hidden = pd.Series(False, index=cube.unit_ids)
    hidden[top] = True
    again = city_findings(
        cube=cube,
        labels=labels,
        suppressed=hidden,
    )
    text = "\n".join(key_findings_lines([again]))
    assert labels[top] not in text and top not in json.dumps(again)
    published = np.sort(severity[cube.unit_ids != top])[::-1]
    decile = again["top_decile_units"]
    assert again["top_decile_share"] == pytest.approx(published[:decile].sum() / severity.sum())


def test_every_contents_link_lands_on_a_heading_of_the_html_report(tmp_path):
    text = "\n".join(
        [
            "# geo_crime run report",
            "## Key findings",
            *contents_lines("## Data\n## Study `a`\n### Units `rd`\n## Study `b`\n### Units `rd`"),
            "## Data",
            "## Study `a`",
            "### Units `rd`",
            "## Study `b`",
            "### Units `rd`",
        ]
    )
    html = markdown_to_html(text, base=tmp_path)
    links = re.findall(r'href="#([^"]+)"', html)
    ids = set(re.findall(r' id="([^"]+)"', html))
    assert links == ["data", "study-a", "units-rd", "study-b", "units-rd-2"]
    assert set(links) <= ids


def test_a_key_finding_states_its_divisions_window_and_units(city_h38):
    """The scope of a key finding is in its sentence: divisions, window and units, recomputed
    here from the rows' weekly coverage."""
    units, cube = city_h38
    window = cube.complete_periods()
    rows, _ = load_incidents(crime_file(REDUCED_DIR), cache=False)
    union = check_coverage(rows, freq="W").union
    # weeks complete in every division, recomputed from the coverage table
    every = union.groupby("period")["complete"].all()
    weeks = every.index[every.to_numpy()]
    assert list(pd.DatetimeIndex(window.periods)) == list(weeks)
    labels = place_labels(units, division_names(units, division_units()))["label"]
    findings = city_findings(
        cube=window,
        labels=labels,
        suppressed=pd.Series(False, index=cube.unit_ids),
        tables={},
        backtest=None,
        where="all 21 LAPD divisions",
    )
    text = "\n".join(key_findings_lines([findings]))
    assert (
        f"({len(units):,} units in all 21 LAPD divisions; window: {len(weeks)} completely "
        f"recorded weeks, {weeks[0].date()} to {weeks[-1].date()})"
    ) in text


def _westla_findings(cube, study_end: str, run_end: str = "") -> str:
    """Key-finding text of a West LA forecast of the week starting 2021-07-26, with the study's
    data ending on ``study_end`` and the run's on ``run_end``."""
    backtest = {
        "metrics": {"keras": {"mae": 10.0, "pai_5": 5.0}, "hist_mean": {"mae": 11.0, "pai_5": 5.0}},
        "next_period": "2021-07-26",
        "data_end": study_end,
        "origins": ["2021-06-28", "2021-07-05"],
        "scope": {"scored_share_per_origin": [1.0, 1.0], "covers_study_area": True},
    }
    findings = unit_findings(
        study="westla",
        spec="rd",
        cube=cube,
        labels=pd.Series(dtype=str),
        suppressed=pd.Series(False, index=cube.unit_ids),
        tables={},
        backtest=backtest,
        data_end=run_end,
    )
    return "\n".join(key_findings_lines([findings]))


def test_a_forecast_of_a_period_the_data_holds_is_called_a_backtest(city_h38):
    _, cube = city_h38
    assert (
        "Backtest, not a forecast: the week starting 2021-07-26 lies inside this run's data "
        "(which runs to 2021-07-31)"
    ) in _westla_findings(cube, "2021-07-31")
    forecast = _westla_findings(cube, "2021-07-25")
    assert "Forecast for the week starting 2021-07-26 (models compared over 2 origins" in forecast
    # the study's data ends before that week, but the run's data runs on to 2024
    later = _westla_findings(cube, "2021-07-25", run_end="2024-09-30")
    assert "lies inside this run's data (which runs to 2024-09-30)" in later


def test_the_briefing_names_the_strongest_gi_hot_spots_and_never_a_suppressed_one(city_h38):
    from geo_crime.record.tallies import RunTally
    from geo_crime.report.briefing import briefing_lines
    from geo_crime.stats.run import run_statistic

    units, cube = city_h38
    window = cube.complete_periods()
    gi = run_statistic(window, "gi", permutations=99, seed=0)
    labels = place_labels(units, division_names(units, division_units()))["label"]
    table = gi.table.sort_values(["gi_z", "unit_id"], ascending=[False, True])
    hot = table[table["gi_bin"] == 3]
    strongest = str(hot["unit_id"].iloc[0])
    hidden = pd.Series(False, index=cube.unit_ids.astype(str))
    hidden[strongest] = True  # suppressed: it must not be named
    findings = city_findings(
        cube=window,
        labels=labels,
        suppressed=hidden,
        tables={"gi": gi},
        backtest=None,
    )
    expected = [labels[str(u)] for u in hot["unit_id"].astype(str) if u != strongest][:5]
    assert findings["hot_spots"] == {"n": len(hot) - 1, "places": expected}
    rows, _ = load_incidents(crime_file(REDUCED_DIR), cache=False)
    text = "\n".join(
        briefing_lines(
            study="citywide_2024",
            window={"first": "2024-01-01", "last": "2024-02-26", "periods": 9},
            weekly=check_coverage(rows, freq="W"),
            weeks=RunTally.of_rows(rows).weeks,
            hot_spots=findings["hot_spots"],
            units="h3:8",
        )
    )
    assert f"**Where.** {len(hot) - 1:,} units (h3:8) are Getis-Ord Gi* hot spots" in text
    assert expected[0] in text and labels[strongest] not in text


def test_the_top_decile_share_of_the_key_findings_recomputed_from_the_rows(city_h38):
    """'The N units with the most recorded severity (10% of the units) hold X% of it', over the
    window, from the rows indexed to H3 by the h3 library (suppressed units: fewer than 3
    incidents in the window, never ranked, still in the total)."""
    from geo_crime.publish.privacy import cube_disclosure

    units, cube = city_h38
    window = cube.complete_periods()
    _, suppressed = cube_disclosure(window, 3)
    findings = city_findings(
        cube=window,
        labels=pd.Series(dtype=str),
        suppressed=suppressed,
    )
    rows, _ = load_incidents(crime_file(REDUCED_DIR), cache=False)
    week = rows["occurred_at"].dt.to_period("W-SUN").dt.start_time
    inside = rows[week.isin(window.periods) & rows["spatial_valid"].astype(bool)]
    cells = [h3.latlng_to_cell(a, b, 8) for a, b in zip(inside["lat"], inside["lon"], strict=True)]
    inside = inside.assign(cell=cells)
    inside = inside[inside["cell"].isin(set(units["unit_id"]))]
    severity = inside.groupby("cell")["severity"].sum()
    counts = inside.groupby("cell").size()
    ranked = severity[counts.reindex(severity.index) >= 3].sort_values(ascending=False)
    decile = int(np.ceil(0.1 * len(units)))
    share = ranked.head(decile).sum() / severity.sum()
    assert findings["top_decile_units"] == decile
    assert findings["top_decile_share"] == pytest.approx(share, rel=1e-12)
    text = "\n".join(key_findings_lines([findings]))
    assert f"the {decile:,} units with the most recorded severity (10% of the units) hold " in text
    assert f"hold {share:.0%} of it" in text

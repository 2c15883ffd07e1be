"""Forecast severity read as incidents: the conversion at each unit's recent mix, checked by hand
on real West LA rows, the severity-scale sentence, and the suppression attack on the new columns."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from geo_crime.cube.panel import make_cube
from geo_crime.forecast.incidents import (
    INCIDENT_GROUPS,
    MIX_PERIODS,
    expected_incidents,
    points_per_incident,
    severity_scale_sentence,
)
from geo_crime.publish.privacy import public_tables
from geo_crime.record.coverage import check_coverage
from geo_crime.units import assign_units, make_units


@pytest.fixture(scope="module")
def westla_rd_cube(incidents):
    rows = incidents[
        (incidents["area"] == 8)
        & (incidents["occurred_at"] >= "2020-03-02")
        & (incidents["occurred_at"] < "2021-07-05")
    ]
    units = make_units("rd", rows)
    coverage = check_coverage(rows, freq="W")
    return rows, make_cube(rows, units, freq="W", coverage=coverage)


def _by_hand(rows: pd.DataFrame, cube, unit: str) -> dict[str, float]:
    """Incidents per group and severity points of one unit over the mix window, from the rows."""
    window = cube.periods[-MIX_PERIODS:]
    row = list(cube.unit_ids.astype(str)).index(unit)
    complete = np.asarray(cube.complete, bool)[row, -MIX_PERIODS:]
    weeks = set(pd.DatetimeIndex(window)[complete])
    start = rows["occurred_at"].dt.to_period("W-SUN").dt.start_time
    ids, _ = assign_units(rows, cube.units)
    mine = rows[(pd.Series(ids, index=rows.index).astype(str) == unit) & start.isin(weeks)]
    groups = {g: float(mine["crime_category"].isin(c).sum()) for g, c in INCIDENT_GROUPS.items()}
    groups["other"] = float(len(mine)) - sum(groups.values())
    return {"points": float(mine["severity"].sum()), **groups}


def test_expected_incidents_are_the_forecast_at_the_units_recent_mix(westla_rd_cube):
    rows, cube = westla_rd_cube
    points = np.where(cube.complete, cube.values("severity"), 0.0)[:, -MIX_PERIODS:].sum(axis=1)
    busiest = str(cube.unit_ids[int(np.argmax(points))])
    quiet = str(cube.unit_ids[int(np.argmin(points))])
    table = pd.DataFrame(
        {"unit_id": [busiest, quiet, "not-a-unit"], "prediction": [500.0, 40.0, 10.0]}
    )
    out = expected_incidents(table, cube)
    hand = _by_hand(rows, cube, busiest)
    assert hand["points"] == pytest.approx(points.max())
    first = out.iloc[0]
    for group in ("violent", "property", "other"):
        assert first[f"expected_{group}"] == pytest.approx(500.0 * hand[group] / hand["points"])
    assert first["expected_incidents"] == pytest.approx(
        first[["expected_violent", "expected_property", "expected_other"]].sum()
    )
    # 500 points at this unit's own points per incident
    incidents_in_window = hand["violent"] + hand["property"] + hand["other"]
    assert first["expected_incidents"] == pytest.approx(
        500.0 * incidents_in_window / hand["points"]
    )
    # a unit with no recorded severity in its window takes the study's mix (a one-week window)
    last_week = np.where(cube.complete, cube.values("severity"), 0.0)[:, -1]
    assert (last_week == 0).any()
    empty = str(cube.unit_ids[int(np.argmin(last_week))])
    one_week = expected_incidents(
        pd.DataFrame({"unit_id": [empty], "prediction": [40.0]}), cube, periods=1
    )
    assert one_week.iloc[0]["expected_incidents"] == pytest.approx(
        40.0 / points_per_incident(cube, periods=1)
    )
    assert out.iloc[2][["expected_incidents", "expected_violent"]].isna().all()
    assert 5 < points_per_incident(cube) < 60  # a recorded incident scores 0-100


def test_a_blank_forecast_stays_blank_and_suppressed_units_lose_their_incidents(
    westla_rd_cube,
):
    _, cube = westla_rd_cube
    ids = cube.unit_ids.astype(str)[:4]
    table = pd.DataFrame(
        {
            "unit_id": ids,
            "period": "2021-07-05",
            "prediction": [120.0, np.nan, 80.0, 60.0],
            "lower": [90.0, np.nan, 60.0, 40.0],
            "upper": [150.0, np.nan, 100.0, 80.0],
        }
    )
    out = expected_incidents(table, cube)
    assert out.loc[1, ["expected_incidents", "expected_violent"]].isna().all()
    suppressed = pd.Series([False, False, True, True], index=ids)
    public = public_tables({"forecast": out}, suppressed)["forecast"]
    # the attack: expected incidents / prediction would give the unit's recent crime mix and,
    # with its published history, its counts; a suppressed unit carries neither
    hidden = public[public["unit_id"].isin(ids[2:])]
    assert hidden.filter(like="expected_").isna().all().all()
    assert hidden["prediction"].isna().all()
    shown = public.set_index("unit_id").loc[ids[0]]
    assert shown["expected_incidents"] == pytest.approx(out.loc[0, "expected_incidents"])


def test_the_severity_scale_sentence_gives_the_study_points_per_incident(westla_rd_cube):
    _, cube = westla_rd_cube
    average = points_per_incident(cube)
    text = severity_scale_sentence(average, freq=cube.freq)
    assert f"averaged {average:.0f} points" in text
    assert f"100 severity points are about {100 / average:.0f} incidents" in text
    assert "homicide 100" in text and "child or over 65" in text
    assert "13 weeks up to the forecast origin" in text
    assert "averaged" not in severity_scale_sentence(None, freq="W")
    assert "averaged" not in severity_scale_sentence(float("nan"), freq="W")

"""The severity index: table completeness, bounds, bonuses, cap, harm weights."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from geo_crime.ingest.cleaning import CleaningReport
from geo_crime.ingest.severity import (
    DEFAULT_BASE_SCORE,
    SEVERITY_CAP,
    score_incidents,
    severity_table,
    weapon_bonus,
    weapon_table,
)
from tests.fakes.shared_data import IVANCO, REDUCED_DIR, WESTLA, crime_file, require_data


def test_table_covers_every_code_seen_2020_2024():
    table = severity_table()
    assert table["crm_cd"].is_unique and table["crm_cd_desc"].is_unique
    rollup = pd.read_csv(
        require_data()
        / "lapd_crime/reference/lapd_crime_2020_2022_rollup__area_crmcd_year_counts.csv",
        dtype=str,
    )
    assert set(rollup["Crm Cd"].astype(int)) <= set(table["crm_cd"])
    for name in (IVANCO, WESTLA):
        rows = pd.read_csv(crime_file(name), dtype=str)
        assert set(rows["Crm Cd"].astype(int)) <= set(table["crm_cd"])
    described = dict(zip(table["crm_cd"], table["crm_cd_desc"], strict=True))
    assert described[453] == "DRUNK ROLL - ATTEMPT" and described[926] == "TRAIN WRECKING"
    assert len(table) == 140
    assert table["base_score"].between(0, 100).all()
    assert (table["harm_days"] > 0).all()
    assert table["rationale"].str.len().between(5, 120).all()


def test_ordering_follows_sentencing_ranges():
    score = dict(zip(severity_table()["crm_cd"], severity_table()["base_score"], strict=True))
    chain = [110, 121, 210, 230, 310, 510, 624, 440]  # homicide > rape > robbery > ADW > ...
    assert all(score[a] > score[b] for a, b in zip(chain, chain[1:], strict=False))
    assert score[220] < score[210]  # attempted robbery below robbery


def test_weapon_tiers():
    tiers = dict(zip(weapon_table()["weapon_cd"], weapon_table()["bonus"], strict=True))
    assert tiers[102] == 15 and tiers[200] == 10 and tiers[400] == 5
    codes = pd.Series(pd.array([102, 200, 400, None, 199, None], dtype="Int16"))
    used = pd.Series([True, True, True, False, True, True])
    # 199 is no listed code: its 1xx block makes it a firearm; 'weapon used' alone gives +5
    assert weapon_bonus(codes, used).tolist() == [15, 10, 5, 0, 15, 5]


def test_bonuses_and_cap():
    rows = pd.DataFrame(
        {
            "crm_cd": pd.array([110, 624, 624, 624, 440], dtype="Int16"),
            "vict_age_group": ["elderly", "child", "adult", "adult", "unknown"],
            "weapon_cd": pd.array([102, None, 200, 400, None], dtype="Int16"),
            "weapon_used": [True, False, True, True, False],
        }
    )
    scored = score_incidents(rows)
    base = dict(zip(severity_table()["crm_cd"], severity_table()["base_score"], strict=True))
    assert scored["severity"].tolist() == [
        SEVERITY_CAP,  # 100 + 10 + 15 capped
        base[624] + 10,
        base[624] + 10,
        base[624] + 5,
        base[440],
    ]
    logged = score_incidents(rows, harm_log=True)
    assert np.allclose(np.expm1(logged["harm"]), scored["harm"])


def test_unknown_code_warns_defaults_and_counts():
    rows = pd.DataFrame(
        {
            "crm_cd": pd.array([999, 624], dtype="Int16"),
            "vict_age_group": ["adult", "adult"],
            "weapon_cd": pd.array([None, None], dtype="Int16"),
            "weapon_used": [False, False],
        }
    )
    report = CleaningReport()
    with pytest.warns(UserWarning, match="missing from the severity table"):
        scored = score_incidents(rows, report=report)
    assert scored["severity"].iloc[0] == DEFAULT_BASE_SCORE
    assert report.unknown_crime_codes == {"999": 1}


def test_real_2024_rows_score_in_bounds_without_warnings():
    from geo_crime.ingest import load_incidents

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        frame, report = load_incidents(crime_file(REDUCED_DIR), cache=False)
    assert frame["severity"].between(0, 100).all()
    assert report.unknown_crime_codes == {}
    homicides = frame[frame["crm_cd"] == 110]
    assert len(homicides) > 0 and (homicides["severity"] >= 100 - 0).all()

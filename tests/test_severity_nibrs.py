"""Severity on NIBRS offence codes: the tables, the crosswalk, equal scores for equal offences."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from geo_crime.ingest.cleaning import CleaningReport
from geo_crime.ingest.severity import (
    DEFAULT_BASE_SCORE,
    DEFAULT_HARM_DAYS,
    SEVERITY_NIBRS_VERSION,
    SEVERITY_VERSION,
    UNLISTED_NIBRS_WEAPON_BONUS,
    lapd_nibrs_crosswalk,
    legacy_to_nibrs,
    nibrs_severity_table,
    nibrs_weapon_bonus,
    nibrs_weapon_table,
    score_incidents,
    severity_table,
    weapon_table,
)
from tests.fakes.shared_data import IVANCO, crime_file

#: FBI NIBRS Group A offence codes (2019 and later, federal and tribal codes included).
GROUP_A = [
    "09A",
    "09B",
    "09C",
    "100",
    "11A",
    "11B",
    "11C",
    "11D",
    "120",
    "13A",
    "13B",
    "13C",
    "200",
    "210",
    "220",
    "23A",
    "23B",
    "23C",
    "23D",
    "23E",
    "23F",
    "23G",
    "23H",
    "240",
    "250",
    "26A",
    "26B",
    "26C",
    "26D",
    "26E",
    "26F",
    "26G",
    "26H",
    "270",
    "280",
    "290",
    "35A",
    "35B",
    "36A",
    "36B",
    "370",
    "39A",
    "39B",
    "39C",
    "39D",
    "40A",
    "40B",
    "40C",
    "510",
    "520",
    "64A",
    "64B",
    "720",
    "101",
    "103",
    "30A",
    "30B",
    "30C",
    "30D",
    "360",
    "49A",
    "49B",
    "49C",
    "521",
    "522",
    "526",
    "58A",
    "58B",
    "61A",
    "61B",
    "620",
]
#: Group B, with the retired 90I (runaway) and the federal 90K-90M.
GROUP_B = [
    "90A",
    "90B",
    "90C",
    "90D",
    "90E",
    "90F",
    "90G",
    "90H",
    "90I",
    "90J",
    "90K",
    "90L",
    "90M",
    "90Z",
]
NOT_A_CRIME = {"09C", "90I"}
NOTE_KINDS = ("same offence", "approximate", "no NIBRS equivalent")

#: LAPD weapon codes and the FBI weapon/force code for the same weapon (None: no weapon, 99).
LAPD_TO_NIBRS_WEAPON: dict[int | None, str] = {
    None: "99",
    101: "12",
    102: "12",
    103: "13",
    104: "14",
    106: "11",
    107: "15",
    108: "11A",
    109: "12",
    110: "13",
    **{code: "20" for code in (*range(200, 212), *range(213, 221), 221, 223)},
    212: "30",
    **{code: "30" for code in (*range(300, 307), *range(308, 313))},
    307: "35",
    400: "40",
    500: "95",
    503: "50",
    505: "60",
    506: "65",
    507: "70",
    509: "85",
}


def _same_offence() -> pd.DataFrame:
    crosswalk = lapd_nibrs_crosswalk()
    return crosswalk[crosswalk["note"].str.startswith("same offence")]


def _scored(
    crm_cd: list, nibrs_code: list, ages: list, weapon_cd: list, nibrs_weapon_cd: list
) -> pd.DataFrame:
    rows = pd.DataFrame(
        {
            "crm_cd": pd.array(crm_cd, dtype="Int16"),
            "nibrs_code": pd.array(nibrs_code, dtype="string"),
            "vict_age_group": pd.Categorical(
                ages, categories=["child", "adult", "elderly", "unknown"]
            ),
            "weapon_cd": pd.array(weapon_cd, dtype="Int16"),
            "nibrs_weapon_cd": pd.array(nibrs_weapon_cd, dtype="string"),
            "weapon_used": [w is not None for w in weapon_cd],
        }
    )
    return score_incidents(rows)


def test_nibrs_table_covers_the_fbi_code_list():
    table = nibrs_severity_table()
    assert table["nibrs_code"].is_unique
    assert table["nibrs_code"].tolist() == GROUP_A + GROUP_B
    assert len(GROUP_A) == 71 and len(GROUP_B) == 14
    groups = dict(zip(table["nibrs_code"], table["group"], strict=True))
    assert {code for code, group in groups.items() if group == "A"} == set(GROUP_A)
    assert set(table["crime_against"]) == {"Person", "Property", "Society", "Not a Crime"}
    assert table["base_score"].between(0, 100).all()
    crimes = ~table["nibrs_code"].isin(NOT_A_CRIME)
    assert (table.loc[crimes, "harm_days"] > 0).all()
    assert (table.loc[~crimes, ["base_score", "harm_days"]] == 0).all().all()
    assert set(table["category"]) <= set(severity_table()["category"])
    assert table["rationale"].str.len().between(5, 120).all()
    described = dict(zip(table["nibrs_code"], table["nibrs_desc"], strict=True))
    assert described["13A"] == "Aggravated Assault" and described["26H"] == "Money Laundering"


def test_nibrs_ordering_follows_the_legacy_scale():
    table = nibrs_severity_table()
    score = dict(zip(table["nibrs_code"], table["base_score"], strict=True))
    chain = ["09A", "11A", "120", "13A", "220", "240", "13B", "23H"]  # as the legacy chain
    assert all(score[a] > score[b] for a, b in zip(chain, chain[1:], strict=False))
    assert score["90Z"] == DEFAULT_BASE_SCORE  # all other offences = 946 = the default


def test_crosswalk_covers_every_legacy_code():
    crosswalk = lapd_nibrs_crosswalk()
    legacy = severity_table()
    assert len(crosswalk) == 140 and crosswalk["crm_cd"].is_unique
    assert set(crosswalk["crm_cd"]) == set(legacy["crm_cd"])
    assert set(crosswalk["nibrs_code"]) <= set(nibrs_severity_table()["nibrs_code"])
    merged = crosswalk.merge(legacy, on="crm_cd", suffixes=("", "_legacy"), validate="1:1")
    assert (merged["category"] == merged["category_legacy"]).all()
    assert (merged["crm_cd_desc"] == merged["crm_cd_desc_legacy"]).all()
    assert crosswalk["note"].str.startswith(NOTE_KINDS).all()
    nibrs = nibrs_severity_table()
    groups = dict(zip(nibrs["nibrs_code"], nibrs["group"], strict=True))
    no_equivalent = crosswalk[crosswalk["note"].str.startswith("no NIBRS equivalent")]
    assert no_equivalent["nibrs_code"].map(groups).eq("B").all()
    court_orders = crosswalk[crosswalk["category"] == "court_order"]
    assert set(court_orders["crm_cd"]) == {900, 901, 902, 903, 904, 906}
    assert (court_orders["nibrs_code"] == "90Z").all()
    assert len(_same_offence()) == 48


def test_same_offence_has_the_legacy_score_and_harm():
    nibrs = nibrs_severity_table().set_index("nibrs_code")
    merged = _same_offence().merge(severity_table(), on="crm_cd", suffixes=("", "_legacy"))
    expected = nibrs.loc[merged["nibrs_code"]]
    assert merged["base_score"].tolist() == expected["base_score"].tolist()
    assert merged["harm_days"].astype(float).tolist() == expected["harm_days"].tolist()
    assert merged["category"].tolist() == expected["category"].tolist()


def test_nibrs_weapon_tiers_match_the_lapd_tiers():
    table = nibrs_weapon_table()
    assert table["nibrs_weapon_cd"].is_unique
    codes = set(table["nibrs_weapon_cd"])
    assert {f"{c}{a}" for c in range(11, 16) for a in ("", "A")} <= codes
    assert {"20", "30", "35", "40", "50", "60", "65", "70", "85", "90", "95", "99"} <= codes
    bonus_of_tier = {0: 0, 1: 5, 2: 10, 3: 15}
    assert (table["bonus"] == table["tier"].map(bonus_of_tier)).all()
    nibrs_bonus = dict(zip(table["nibrs_weapon_cd"], table["bonus"], strict=True))
    lapd_bonus = dict(zip(weapon_table()["weapon_cd"], weapon_table()["bonus"], strict=True))
    for lapd_code, fbi_code in LAPD_TO_NIBRS_WEAPON.items():
        assert nibrs_bonus[fbi_code] == (0 if lapd_code is None else lapd_bonus[lapd_code])
    values = pd.Series([" 12 ", "11a", "40", "99", "20", "98", "102", "", None], dtype="string")
    assert nibrs_weapon_bonus(values).tolist() == [
        15,
        15,
        5,
        0,
        10,
        UNLISTED_NIBRS_WEAPON_BONUS,
        pd.NA,
        pd.NA,
        pd.NA,
    ]


def test_legacy_and_nibrs_rows_of_the_same_offence_score_the_same():
    same = _same_offence()
    facts = [  # (victim age group, LAPD weapon, FBI weapon)
        ("adult", None, "99"),
        ("child", 102, "12"),
        ("elderly", 400, "40"),
        ("adult", 200, "20"),
        ("unknown", 307, "35"),
    ]
    n = len(same)
    crm_cd, nibrs_code, ages, lapd_weapon, fbi_weapon = [], [], [], [], []
    for age, lapd, fbi in facts:
        crm_cd += [*same["crm_cd"], *[None] * n]
        nibrs_code += [*[None] * n, *same["nibrs_code"]]
        ages += [age] * 2 * n
        lapd_weapon += [lapd] * n + [None] * n
        fbi_weapon += [None] * n + [fbi] * n
    scored = _scored(crm_cd, nibrs_code, ages, lapd_weapon, fbi_weapon)
    legacy = scored[scored["crm_cd"].notna()].reset_index(drop=True)
    nibrs = scored[scored["nibrs_code"].notna()].reset_index(drop=True)
    assert len(legacy) == len(nibrs) == 5 * 48
    assert legacy["severity"].tolist() == nibrs["severity"].tolist()
    assert legacy["harm"].tolist() == nibrs["harm"].tolist()
    assert legacy["crime_category"].tolist() == nibrs["crime_category"].tolist()
    murder = nibrs[nibrs["nibrs_code"] == "09A"]["severity"].tolist()
    assert murder == [100] * 5
    assault = nibrs[nibrs["nibrs_code"] == "13B"]["severity"].tolist()
    assert assault == [30, 30 + 10 + 15, 30 + 10 + 5, 30 + 10, 30 + 10]


def test_real_rows_score_the_same_as_legacy_and_nibrs():
    from geo_crime.ingest import load_incidents

    frame, _ = load_incidents(crime_file(IVANCO), cache=False)
    same_codes = set(_same_offence()["crm_cd"])
    weapon = frame["weapon_cd"].astype("Float64")
    mapped = weapon.isna() | weapon.isin([c for c in LAPD_TO_NIBRS_WEAPON if c is not None])
    rows = frame[frame["crm_cd"].isin(same_codes) & mapped.to_numpy(dtype=bool)]
    rows = rows.drop(columns=["crime_category", "severity", "harm"]).reset_index(drop=True)
    assert len(rows) > 5000
    nibrs_rows = rows.copy()
    nibrs_rows["nibrs_code"] = legacy_to_nibrs(rows["crm_cd"])
    weapon_codes = rows["weapon_cd"].astype("Float64").to_numpy(dtype=float, na_value=np.nan)
    nibrs_rows["nibrs_weapon_cd"] = pd.array(
        [LAPD_TO_NIBRS_WEAPON[None if np.isnan(w) else int(w)] for w in weapon_codes],
        dtype="string",
    )
    nibrs_rows["crm_cd"] = pd.array([pd.NA] * len(rows), dtype="Int16")
    nibrs_rows["weapon_cd"] = pd.array([pd.NA] * len(rows), dtype="Int16")
    report = CleaningReport()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        legacy = score_incidents(rows)
        nibrs = score_incidents(nibrs_rows, report=report)
    assert nibrs_rows["nibrs_code"].notna().all()
    assert report.unknown_crime_codes == {}
    assert report.severity_version == f"{SEVERITY_VERSION}+{SEVERITY_NIBRS_VERSION}"
    assert (legacy["severity"] == nibrs["severity"]).all()
    assert np.array_equal(legacy["harm"].to_numpy(), nibrs["harm"].to_numpy())
    assert (legacy["crime_category"] == nibrs["crime_category"]).all()
    assert nibrs["severity"].between(0, 100).all()
    assert set(nibrs["nibrs_code"]) >= {"13B", "23H", "23F", "13A", "220", "120"}


def test_nibrs_rows_fall_back_to_the_lapd_weapon_and_legacy_rows_ignore_fbi_codes():
    scored = _scored(
        crm_cd=[None, None, 624, None],
        nibrs_code=["13B", "13B", None, "13B"],
        ages=["adult"] * 4,
        weapon_cd=[102, 102, None, None],
        nibrs_weapon_cd=[None, "99", "12", "102"],
    )
    # no FBI code -> LAPD 102 (+15); FBI 99 wins (0); legacy row ignores FBI 12; "102" is no FBI
    # code and the row has no LAPD weapon, so no bonus
    assert scored["severity"].tolist() == [45, 30, 30, 30]
    without_column = score_incidents(
        pd.DataFrame(
            {
                "crm_cd": pd.array([None], dtype="Int16"),
                "nibrs_code": ["13A"],
                "vict_age_group": ["adult"],
                "weapon_cd": pd.array([200], dtype="Int16"),
                "weapon_used": [True],
            }
        )
    )
    assert without_column["severity"].tolist() == [70 + 10]


def test_frames_without_nibrs_codes_score_as_before():
    rows = pd.DataFrame(
        {
            "crm_cd": pd.array([110, 624, 440], dtype="Int16"),
            "vict_age_group": ["elderly", "child", "adult"],
            "weapon_cd": pd.array([102, None, 400], dtype="Int16"),
            "weapon_used": [True, False, True],
        }
    )
    before = score_incidents(rows)
    empty_codes = rows.assign(nibrs_code=pd.array([None, "", "  "], dtype="string"))
    report = CleaningReport()
    after = score_incidents(empty_codes, report=report)
    pd.testing.assert_frame_equal(after.drop(columns="nibrs_code"), before)
    assert report.severity_version == SEVERITY_VERSION
    assert before["severity"].tolist() == [100, 40, 23]


def test_unknown_nibrs_code_gets_the_default_and_is_counted():
    rows = pd.DataFrame(
        {
            "crm_cd": pd.array([None, None, None, 999], dtype="Int16"),
            "nibrs_code": pd.array(["XYZ", " 13a ", "XYZ", None], dtype="string"),
            "vict_age_group": ["adult"] * 4,
            "weapon_cd": pd.array([None] * 4, dtype="Int16"),
            "weapon_used": [False] * 4,
        }
    )
    report = CleaningReport()
    with pytest.warns(UserWarning) as caught:
        scored = score_incidents(rows, report=report)
    messages = [str(w.message) for w in caught]
    assert any("NIBRS offence codes missing from the severity table" in m for m in messages)
    assert any("one missing from the severity table (999)" in m for m in messages)
    assert scored["severity"].tolist() == [DEFAULT_BASE_SCORE, 70, DEFAULT_BASE_SCORE, 20]
    assert scored["harm"].tolist() == [DEFAULT_HARM_DAYS, 1095.0, DEFAULT_HARM_DAYS, 7.0]
    assert scored["crime_category"].tolist() == ["other", "aggravated_assault", "other", "other"]
    assert report.unknown_crime_codes == {"nibrs:XYZ": 2, "999": 1}


def test_legacy_to_nibrs():
    codes = pd.Series(
        pd.array([110, 330, 900, 946, None, 5], dtype="Int16"), index=[3, 4, 5, 6, 7, 8]
    )
    mapped = legacy_to_nibrs(codes)
    assert mapped.index.tolist() == [3, 4, 5, 6, 7, 8]
    assert str(mapped.dtype) == "string"
    assert mapped.tolist() == ["09A", "23F", "90Z", "90Z", pd.NA, pd.NA]
    every = legacy_to_nibrs(severity_table()["crm_cd"])
    assert every.tolist() == lapd_nibrs_crosswalk()["nibrs_code"].tolist()

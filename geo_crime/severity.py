"""Score every incident for severity: the seed 0-100 scheme and a crime-harm alternative.

Seed scheme (``severity``, version :data:`SEVERITY_VERSION`)
    The original study's idea, made explicit and versioned. Each LAPD crime code has a base score
    0-100 in ``geo_crime/data/severity_lapd.csv`` (ordered by California sentencing ranges:
    homicide > rape > kidnapping > robbery > aggravated assault > arson > burglary > vehicle theft
    > grand theft > simple assault > petty theft and vandalism > minor offences), with a one-line
    rationale per code. Then:

    * +10 when the victim is a child (< 18) or elderly (> 65) (:data:`VULNERABLE_VICTIM_BONUS`);
      the reduced 2024 rows only carry age bands, so only their ``0-12`` band earns it;
    * +5, +10 or +15 by weapon tier (``geo_crime/data/weapon_tiers_lapd.csv``: 1 bodily force,
      verbal threat, unknown weapon; 2 blunt or edged weapons; 3 firearms and explosives). A
      weapon code missing from the table takes the tier of its LAPD code block (1xx firearms,
      2xx-3xx edged and blunt, 4xx-5xx other); a row that only says "weapon used" (2024) gets +5;
    * the total is capped at :data:`SEVERITY_CAP` = 100.

Harm scheme (``harm``)
    In the spirit of the Cambridge Crime Harm Index: each code's weight is the custody days of
    the starting-point sentence for a first offender (``harm_days``), so one homicide weighs as
    much as thousands of petty thefts. ``harm_log=True`` stores ``log1p(days)`` to tame the tail.

Unknown codes get base :data:`DEFAULT_BASE_SCORE` and :data:`DEFAULT_HARM_DAYS`, a warning and a
count in the cleaning report.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np
import pandas as pd

#: Version of the shipped tables; bump whenever a score changes.
SEVERITY_VERSION = "lapd-severity-1.0"
VULNERABLE_VICTIM_BONUS = 10
SEVERITY_CAP = 100
DEFAULT_BASE_SCORE = 20
DEFAULT_HARM_DAYS = 7.0
#: Bonus for a row that records a weapon without saying which (reduced 2024 schema).
UNSPECIFIED_WEAPON_BONUS = 5


@lru_cache(maxsize=1)
def severity_table() -> pd.DataFrame:
    """The shipped crime-code table: ``crm_cd, crm_cd_desc, part, category, base_score,
    harm_days, rationale`` (one row per LAPD crime code seen 2020-2024)."""
    with resources.files("geo_crime.data").joinpath("severity_lapd.csv").open("rb") as fh:
        table = pd.read_csv(fh, dtype={"crm_cd_desc": str, "rationale": str, "category": str})
    return table


@lru_cache(maxsize=1)
def weapon_table() -> pd.DataFrame:
    """The shipped weapon tiers: ``weapon_cd, weapon_desc, tier, bonus, rationale``."""
    with resources.files("geo_crime.data").joinpath("weapon_tiers_lapd.csv").open("rb") as fh:
        return pd.read_csv(fh, dtype={"weapon_desc": str, "rationale": str})


@dataclass(frozen=True)
class CrimeCodeLookup:
    """Dictionaries between crime codes, descriptions, UCR parts and categories."""

    desc_by_code: dict[int, str]
    code_by_desc: dict[str, int]
    part_by_code: dict[int, int]
    category_by_code: dict[int, str]


@lru_cache(maxsize=1)
def crime_code_lookup() -> CrimeCodeLookup:
    """Lookups built from :func:`severity_table` (descriptions match LAPD's text exactly)."""
    table = severity_table()
    codes = table["crm_cd"].astype(int)
    return CrimeCodeLookup(
        desc_by_code=dict(zip(codes, table["crm_cd_desc"], strict=True)),
        code_by_desc=dict(zip(table["crm_cd_desc"], codes, strict=True)),
        part_by_code=dict(zip(codes, table["part"].astype(int), strict=True)),
        category_by_code=dict(zip(codes, table["category"], strict=True)),
    )


_CODE_SPACE = 1000


def _lookup(keys, values, index: np.ndarray) -> np.ndarray:
    """``values`` looked up by integer ``index`` (-1 or absent keys give NaN)."""
    table = np.full(_CODE_SPACE + 1, np.nan)
    table[np.asarray(keys, dtype=np.int64)] = np.asarray(values, dtype=float)
    return table[np.where(index < 0, _CODE_SPACE, index)]


def weapon_bonus(weapon_cd: pd.Series, weapon_used: pd.Series | None = None) -> np.ndarray:
    """The weapon bonus (0, 5, 10 or 15) for each row.

    Parameters
    ----------
    weapon_cd
        LAPD weapon codes (nullable).
    weapon_used
        Optional boolean "a weapon was recorded"; rows with no code but ``True`` get
        :data:`UNSPECIFIED_WEAPON_BONUS`.

    Returns
    -------
    numpy.ndarray
        Integer bonuses.
    """
    table = weapon_table()
    by_code = dict(zip(table["weapon_cd"].astype(int), table["bonus"].astype(int), strict=True))
    codes = weapon_cd.astype("Float64").to_numpy(dtype=float, na_value=np.nan)
    known = pd.Series(codes).map(by_code).to_numpy(dtype=float)
    block = np.floor(codes / 100)
    fallback = np.select([block == 1, (block == 2) | (block == 3)], [15.0, 10.0], default=5.0)
    bonus = np.where(np.isnan(known), fallback, known)
    bonus = np.where(np.isnan(codes), 0.0, bonus)
    if weapon_used is not None:
        used = weapon_used.fillna(False).to_numpy(dtype=bool)
        bonus = np.where(np.isnan(codes) & used, float(UNSPECIFIED_WEAPON_BONUS), bonus)
    return bonus.astype(np.int16)


def score_incidents(
    frame: pd.DataFrame,
    *,
    report=None,
    harm_log: bool = False,
) -> pd.DataFrame:
    """Add ``crime_category``, ``severity`` (seed scheme, 0-100) and ``harm`` to incidents.

    Parameters
    ----------
    frame
        Cleaned canonical incidents (needs ``crm_cd``, ``vict_age_group``, ``weapon_cd``,
        ``weapon_used``).
    report
        Optional :class:`~geo_crime.cleaning.CleaningReport` receiving the unknown-code counts.
    harm_log
        Store ``log1p(custody days)`` in ``harm`` instead of the days.

    Returns
    -------
    pandas.DataFrame
        The same frame with the three columns added.

    Examples
    --------
    >>> import pandas as pd
    >>> rows = pd.DataFrame({"crm_cd": pd.array([210, 624], dtype="Int16"),
    ...                      "vict_age_group": ["elderly", "adult"],
    ...                      "weapon_cd": pd.array([102, None], dtype="Int16"),
    ...                      "weapon_used": [True, False]})
    >>> score_incidents(rows)["severity"].tolist()   # robbery 75 +10 elderly +15 handgun -> cap
    [100, 30]
    """
    table = severity_table()
    codes = frame["crm_cd"].astype("Float64").to_numpy(dtype=float, na_value=np.nan)
    # lookup arrays indexed by code (codes are < 1000): one gather instead of a dict map
    index = np.where(np.isfinite(codes) & (codes >= 0) & (codes < _CODE_SPACE), codes, -1)
    index = index.astype(np.int64)
    base = _lookup(table["crm_cd"], table["base_score"], index)
    harm = _lookup(table["crm_cd"], table["harm_days"], index)
    unknown = np.isnan(base)
    if unknown.any():
        counts = pd.Series(codes[unknown]).fillna(-1).astype(int).value_counts()
        warnings.warn(
            f"{int(unknown.sum())} incidents have crime codes missing from the severity table "
            f"({', '.join(str(c) for c in counts.index[:10])}); they get the default base "
            f"score {DEFAULT_BASE_SCORE}",
            stacklevel=2,
        )
        if report is not None:
            for code, count in counts.items():
                key = "missing" if code == -1 else str(code)
                report.unknown_crime_codes[key] = report.unknown_crime_codes.get(key, 0) + int(
                    count
                )
    base = np.where(unknown, DEFAULT_BASE_SCORE, base)
    harm = np.where(unknown, DEFAULT_HARM_DAYS, harm)
    group = frame["vict_age_group"]
    if isinstance(group.dtype, pd.CategoricalDtype):
        wanted = [i for i, c in enumerate(group.cat.categories) if c in ("child", "elderly")]
        vulnerable = np.isin(group.cat.codes.to_numpy(), wanted)
    else:
        values = group.astype(object).to_numpy()
        vulnerable = (values == "child") | (values == "elderly")
    weapon_used = frame.get("weapon_used")
    total = (
        base + VULNERABLE_VICTIM_BONUS * vulnerable + weapon_bonus(frame["weapon_cd"], weapon_used)
    )
    out = frame.copy()
    names = sorted(set(table["category"]) | {"other"})
    category_codes = _lookup(table["crm_cd"], [names.index(c) for c in table["category"]], index)
    category_codes = np.where(np.isnan(category_codes), names.index("other"), category_codes)
    out["crime_category"] = pd.Categorical.from_codes(category_codes.astype(np.int8), names)
    out["severity"] = np.minimum(total, SEVERITY_CAP).astype(np.int16)
    out["harm"] = np.log1p(harm) if harm_log else harm
    if report is not None:
        report.severity_scheme = "seed+harm_log" if harm_log else "seed+harm_days"
        report.severity_version = SEVERITY_VERSION
    return out

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

NIBRS offences (``severity_nibrs``, version :data:`SEVERITY_NIBRS_VERSION`)
    Rows from LAPD's NIBRS records (from 2024-03-07) carry an FBI NIBRS offence code in the
    canonical string column ``nibrs_code`` (``"13A"``). Such a row takes its base score, harm days
    and category from ``geo_crime/data/severity_nibrs.csv`` instead of the LAPD table. The scale
    is the same: a NIBRS code that is the same offence as a legacy code scores exactly as that
    code (``geo_crime/data/crosswalk_lapd_nibrs.csv`` maps all legacy codes to NIBRS, see
    :func:`legacy_to_nibrs`). The victim bonus and the cap are unchanged. The weapon bonus comes
    from ``geo_crime/data/weapon_tiers_nibrs.csv`` when ``nibrs_weapon_cd`` holds a two-digit FBI
    weapon/force code (optionally with ``A``, automatic), on the same tiers; otherwise from the
    LAPD ``weapon_cd`` as for legacy rows. Rows without a NIBRS code are scored as before.

Unknown codes get base :data:`DEFAULT_BASE_SCORE` and :data:`DEFAULT_HARM_DAYS`, a warning and a
count in the cleaning report (``"nibrs:<code>"`` for NIBRS codes).
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
#: Version of the NIBRS tables (severity, crosswalk, weapon tiers); bump whenever one changes.
SEVERITY_NIBRS_VERSION = "nibrs-severity-1.0"
VULNERABLE_VICTIM_BONUS = 10
SEVERITY_CAP = 100
DEFAULT_BASE_SCORE = 20
DEFAULT_HARM_DAYS = 7.0
#: Bonus for a row that records a weapon without saying which (reduced 2024 schema).
UNSPECIFIED_WEAPON_BONUS = 5
#: Bonus for a well-formed FBI weapon/force code missing from ``weapon_tiers_nibrs.csv`` (tier 1).
UNLISTED_NIBRS_WEAPON_BONUS = 5
#: An FBI NIBRS weapon/force code: two digits, ``A`` for an automatic firearm.
NIBRS_WEAPON_CODE_PATTERN = r"\d{2}A?"


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


def _read_nibrs_csv(name: str) -> pd.DataFrame:
    """A shipped NIBRS table with every column as text (codes such as ``09A`` and ``01`` keep
    their form; ``None`` and ``NA`` are not missing values)."""
    with resources.files("geo_crime.data").joinpath(name).open("rb") as fh:
        return pd.read_csv(fh, dtype=str, keep_default_na=False, na_values=[""])


@lru_cache(maxsize=1)
def nibrs_severity_table() -> pd.DataFrame:
    """The shipped NIBRS offence table, one row per FBI NIBRS offence code.

    Returns
    -------
    pandas.DataFrame
        ``nibrs_code, nibrs_desc, group, crime_against, category, base_score, harm_days,
        rationale``; ``base_score`` is an integer, ``harm_days`` a float, the rest text.

    Raises
    ------
    ValueError
        A category is not one of the categories of :func:`severity_table`.
    """
    table = _read_nibrs_csv("severity_nibrs.csv")
    table["base_score"] = table["base_score"].astype(int)
    table["harm_days"] = table["harm_days"].astype(float)
    foreign = set(table["category"]) - set(severity_table()["category"]) - {"other"}
    if foreign:
        raise ValueError(f"severity_nibrs.csv has categories unknown to severity_lapd: {foreign}")
    return table


@lru_cache(maxsize=1)
def nibrs_weapon_table() -> pd.DataFrame:
    """The shipped FBI NIBRS weapon/force tiers.

    Returns
    -------
    pandas.DataFrame
        ``nibrs_weapon_cd, nibrs_weapon_desc, tier, bonus, rationale`` (codes as text, with and
        without the ``A`` suffix; ``tier`` and ``bonus`` integers).
    """
    table = _read_nibrs_csv("weapon_tiers_nibrs.csv")
    table["tier"] = table["tier"].astype(int)
    table["bonus"] = table["bonus"].astype(int)
    return table


@lru_cache(maxsize=1)
def lapd_nibrs_crosswalk() -> pd.DataFrame:
    """The shipped crosswalk from every legacy LAPD crime code to its closest NIBRS offence.

    Returns
    -------
    pandas.DataFrame
        ``crm_cd`` (integer), ``crm_cd_desc``, ``nibrs_code``, ``category`` (the legacy code's
        category) and ``note``, which starts with ``same offence``, ``approximate`` or
        ``no NIBRS equivalent``.
    """
    table = _read_nibrs_csv("crosswalk_lapd_nibrs.csv")
    table["crm_cd"] = table["crm_cd"].astype(int)
    return table


def legacy_to_nibrs(crm_cd: pd.Series) -> pd.Series:
    """The NIBRS offence code that each legacy LAPD crime code crosswalks to.

    Parameters
    ----------
    crm_cd
        LAPD crime codes (any integer-like dtype, nullable).

    Returns
    -------
    pandas.Series
        ``string`` codes on the same index, named ``nibrs_code``; NA where the code is missing
        or not in :func:`lapd_nibrs_crosswalk`.

    Examples
    --------
    >>> import pandas as pd
    >>> legacy_to_nibrs(pd.Series(pd.array([110, 624, None, 999], dtype="Int16"))).tolist()
    ['09A', '13B', <NA>, <NA>]
    """
    crosswalk = lapd_nibrs_crosswalk()
    by_code = np.full(_CODE_SPACE + 1, None, dtype=object)
    by_code[crosswalk["crm_cd"].to_numpy(dtype=np.int64)] = crosswalk["nibrs_code"].to_numpy()
    codes = crm_cd.astype("Float64").to_numpy(dtype=float, na_value=np.nan)
    inside = np.isfinite(codes) & (codes >= 0) & (codes < _CODE_SPACE)
    index = np.where(inside, codes, _CODE_SPACE).astype(np.int64)
    return pd.Series(by_code[index], index=crm_cd.index, dtype="string", name="nibrs_code")


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


def _factorised_codes(values: pd.Series) -> tuple[np.ndarray, pd.Series]:
    """Each row's position among the distinct codes (-1 where missing) and those codes, stripped
    and upper-cased (blank codes become NA), so lookups run once per distinct code."""
    positions, uniques = pd.factorize(values)
    keys = pd.Series(np.asarray(uniques, dtype=object), dtype=object)
    keys = keys.astype("string").str.strip().str.upper()
    keys = keys.mask((keys == "").fillna(False).to_numpy(dtype=bool))
    return positions, keys


def _per_row(per_code: np.ndarray, positions: np.ndarray, missing) -> np.ndarray:
    """Values looked up per distinct code, spread over the rows (``missing`` where -1)."""
    return np.append(per_code, np.array([missing], dtype=per_code.dtype))[positions]


def nibrs_weapon_bonus(nibrs_weapon_cd: pd.Series) -> pd.Series:
    """The weapon bonus of each FBI NIBRS weapon/force code (0, 5, 10 or 15).

    Parameters
    ----------
    nibrs_weapon_cd
        Weapon/force codes as text (``"12"``, ``"11A"``, ``"99"``); surrounding blanks and case
        are ignored.

    Returns
    -------
    pandas.Series
        ``Int16`` bonuses on the same index; NA where the value is not a two-digit FBI code (an
        LAPD three-digit code, a blank). A well-formed code missing from
        :func:`nibrs_weapon_table` gets :data:`UNLISTED_NIBRS_WEAPON_BONUS`.

    Examples
    --------
    >>> import pandas as pd
    >>> codes = pd.Series(["12", "40", "20", "99", "11a", "102", None, "98"])
    >>> nibrs_weapon_bonus(codes).tolist()
    [15, 5, 10, 0, 15, <NA>, <NA>, 5]
    """
    table = nibrs_weapon_table()
    by_code = dict(zip(table["nibrs_weapon_cd"], table["bonus"].astype(float), strict=True))
    positions, keys = _factorised_codes(nibrs_weapon_cd)
    well_formed = keys.str.fullmatch(NIBRS_WEAPON_CODE_PATTERN).fillna(False).to_numpy(bool)
    listed = keys.map(by_code).to_numpy(dtype=float, na_value=np.nan)
    per_code = np.where(np.isnan(listed), float(UNLISTED_NIBRS_WEAPON_BONUS), listed)
    per_code = np.where(well_formed, per_code, np.nan)
    bonus = pd.array(_per_row(per_code, positions, np.nan), dtype="Int16")
    return pd.Series(bonus, index=nibrs_weapon_cd.index, name="weapon_bonus")


@dataclass(frozen=True)
class _NibrsScores:
    """Per-row NIBRS lookups (meaningful where ``rows`` is True)."""

    rows: np.ndarray
    base: np.ndarray
    harm: np.ndarray
    category: np.ndarray
    unknown: np.ndarray
    codes: np.ndarray


def _nibrs_scores(frame: pd.DataFrame) -> _NibrsScores | None:
    """Severity-table lookups for the rows with a NIBRS offence code; None when there are none."""
    if "nibrs_code" not in frame:
        return None
    positions, keys = _factorised_codes(frame["nibrs_code"])
    present = _per_row(keys.notna().to_numpy(dtype=bool), positions, False)
    if not present.any():
        return None
    table = nibrs_severity_table()
    base = keys.map(dict(zip(table["nibrs_code"], table["base_score"].astype(float), strict=True)))
    harm = keys.map(dict(zip(table["nibrs_code"], table["harm_days"], strict=True)))
    category = keys.map(dict(zip(table["nibrs_code"], table["category"], strict=True)))
    base_rows = _per_row(base.to_numpy(dtype=float, na_value=np.nan), positions, np.nan)
    return _NibrsScores(
        rows=present,
        base=base_rows,
        harm=_per_row(harm.to_numpy(dtype=float, na_value=np.nan), positions, np.nan),
        category=_per_row(category.to_numpy(dtype=object, na_value=None), positions, None),
        unknown=present & np.isnan(base_rows),
        codes=_per_row(keys.to_numpy(dtype=object, na_value=None), positions, None),
    )


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
        ``weapon_used``). Optional ``nibrs_code`` (FBI NIBRS offence code as text): a row where
        it is set is scored by :func:`nibrs_severity_table`; optional ``nibrs_weapon_cd`` (FBI
        weapon/force code as text) then gives its weapon bonus (:func:`nibrs_weapon_bonus`),
        falling back to ``weapon_cd``.
    report
        Optional :class:`~geo_crime.ingest.cleaning.CleaningReport` receiving the unknown-code
        counts.
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

    A NIBRS row (aggravated assault 70, handgun ``12`` +15) beside a legacy battery:

    >>> rows = pd.DataFrame({"crm_cd": pd.array([None, 624], dtype="Int16"),
    ...                      "nibrs_code": pd.array(["13A", None], dtype="string"),
    ...                      "nibrs_weapon_cd": pd.array(["12", None], dtype="string"),
    ...                      "vict_age_group": ["adult", "adult"],
    ...                      "weapon_cd": pd.array([None, None], dtype="Int16"),
    ...                      "weapon_used": [True, False]})
    >>> score_incidents(rows)[["crime_category", "severity"]].values.tolist()
    [['aggravated_assault', 85], ['simple_assault', 30]]
    """
    table = severity_table()
    nibrs = _nibrs_scores(frame)
    is_nibrs = nibrs.rows if nibrs is not None else np.zeros(len(frame), dtype=bool)
    codes = frame["crm_cd"].astype("Float64").to_numpy(dtype=float, na_value=np.nan)
    # lookup arrays indexed by code (codes are < 1000): one gather instead of a dict map
    index = np.where(np.isfinite(codes) & (codes >= 0) & (codes < _CODE_SPACE), codes, -1)
    index = index.astype(np.int64)
    base = _lookup(table["crm_cd"], table["base_score"], index)
    harm = _lookup(table["crm_cd"], table["harm_days"], index)
    unknown = np.isnan(base) & ~is_nibrs
    if unknown.any():
        counts = pd.Series(codes[unknown]).fillna(-1).astype(int).value_counts()
        warnings.warn(
            f"{int(unknown.sum())} incidents have no crime code or one missing from the "
            f"severity table ({', '.join('none' if c == -1 else str(c) for c in counts.index[:10])}"
            f"); they get the default base score {DEFAULT_BASE_SCORE}",
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
    bonus = weapon_bonus(frame["weapon_cd"], weapon_used)
    names = sorted(set(table["category"]) | {"other"})
    category_codes = _lookup(table["crm_cd"], [names.index(c) for c in table["category"]], index)
    category_codes = np.where(np.isnan(category_codes), names.index("other"), category_codes)
    if nibrs is not None:
        if nibrs.unknown.any():
            _report_unknown_nibrs(nibrs.codes[nibrs.unknown], report)
        base = np.where(is_nibrs, np.where(nibrs.unknown, DEFAULT_BASE_SCORE, nibrs.base), base)
        harm = np.where(is_nibrs, np.where(nibrs.unknown, DEFAULT_HARM_DAYS, nibrs.harm), harm)
        position = {name: i for i, name in enumerate(names)}
        nibrs_category = pd.Series(nibrs.category).map(position).fillna(position["other"])
        category_codes = np.where(is_nibrs, nibrs_category.to_numpy(dtype=float), category_codes)
        if "nibrs_weapon_cd" in frame:
            fbi_bonus = nibrs_weapon_bonus(frame["nibrs_weapon_cd"])
            use_fbi = is_nibrs & fbi_bonus.notna().to_numpy(dtype=bool)
            fbi_values = fbi_bonus.to_numpy(dtype=np.int16, na_value=0)
            bonus = np.where(use_fbi, fbi_values, bonus).astype(np.int16)
    total = base + VULNERABLE_VICTIM_BONUS * vulnerable + bonus
    out = frame.copy()
    out["crime_category"] = pd.Categorical.from_codes(category_codes.astype(np.int8), names)
    out["severity"] = np.minimum(total, SEVERITY_CAP).astype(np.int16)
    out["harm"] = np.log1p(harm) if harm_log else harm
    if report is not None:
        report.severity_scheme = "seed+harm_log" if harm_log else "seed+harm_days"
        report.severity_version = (
            f"{SEVERITY_VERSION}+{SEVERITY_NIBRS_VERSION}" if is_nibrs.any() else SEVERITY_VERSION
        )
    return out


def _report_unknown_nibrs(codes: np.ndarray, report) -> None:
    """Warn about NIBRS offence codes missing from the NIBRS table and count them as
    ``"nibrs:<code>"`` in the report."""
    counts = pd.Series(codes, dtype=object).value_counts()
    warnings.warn(
        f"{len(codes)} incidents have NIBRS offence codes missing from the severity table "
        f"severity_nibrs ({', '.join(str(c) for c in counts.index[:10])}); they get the default "
        f"base score {DEFAULT_BASE_SCORE}",
        stacklevel=3,
    )
    if report is not None:
        for code, count in counts.items():
            key = f"nibrs:{code}"
            report.unknown_crime_codes[key] = report.unknown_crime_codes.get(key, 0) + int(count)

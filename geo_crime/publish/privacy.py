"""Privacy: what public outputs may carry, and what they may say about each unit.

Two checks guard every public artefact (maps, GIS layers, figures, report, forecast tables).
First, **no victim- or incident-level data**: :func:`check_public_table` refuses a table with a
victim column (:func:`victim_columns`) or incident-level columns, or more than one row per unit
(:class:`~geo_crime.core.errors.PrivacyError`). Second, **disclosure control** below.

Public outputs (maps, GIS layers, figures, the report, forecast tables) describe units, never
incidents, and a unit with fewer than ``k_anonymity`` incidents (3 by default) is *suppressed*:
nothing public carries its count, severity, rate, class, statistic or forecast, nor a number from
which they can be solved. The rules, each answering an attack that works without it:

1. **Primary suppression.** A unit with fewer than ``k`` incidents (or an unknown count) is
   suppressed: every measure and statistic of it is blank, and maps and figures draw it grey.
2. **Secondary suppression.** The study total (in the report) minus the published units gives
   the sum of the suppressed ones, and a division total minus its published units the sum of
   that division's suppressed units. Where a group (the study, or a division) would have exactly
   one suppressed unit, its smallest published unit is suppressed too
   (:func:`suppressed_units`), so a difference is always a sum over at least two units.
3. **Classes, not solvable statistics.** Gi* z-scores, p-values and local sums are linear in the
   unit values: with the published weights, the exact z-scores of the *published* units alone let
   a least-squares solve recover the value of most suppressed units (on the 2020 rows at
   reporting district x month, 68% of them to 1e-12; z rounded to 2 decimals still gives a
   median error of 12%). Public Gi* layers therefore carry the confidence bin (``gi_bin``,
   ``gi_label``), LISA layers the cluster class, emerging hot spot layers the category and
   counts of significant periods; never ``y``, ``Gs``, ``Is``, z-scores or p-values
   (:data:`PUBLIC_COLUMNS`). Bins bound a unit's value only loosely.
4. **No incident counts in unit attributes.** Attributes that count the incidents a unit was
   derived from (``n_incidents``, ``n_coordinates`` of derived reporting districts) are dropped.
5. **Forecasts.** A suppressed unit's prediction and interval are blank (a forecast of a
   unit is mostly its own history). The public forecast reads severity as incidents at the
   crime mix of the unit's *division* (:func:`geo_crime.forecast.incidents.expected_incidents`
   with ``groups``), never at the unit's own: at its own mix, expected incidents per group
   divided by expected incidents are the unit's exact group shares over its recent window, and
   the prediction divided by expected incidents its exact points per incident, from which the
   exact counts (all, violent, property) of most units follow, windows under ``k`` included.
6. **Everything one run publishes, together.** Two studies of a run whose rows overlap but
   differ (study B from January, study A from February, study C January alone) publish two
   counts of one unit whose difference counts the rows only one holds: ``B - C`` gives every
   unit of ``A``, suppressed or not, and ``B - A`` every unit's January. Their totals, figures
   and division counts difference the same way. A run therefore refuses, before reading a
   row, two studies that share a row unless they select the same rows (the same divisions and
   dates) and, for the unit types they share, at the same period length
   (:func:`check_study_overlap`); the studies a run chooses from the data never overlap.
7. **Report text and figures.** A count the report prints (a study's incidents) is "fewer
   than k" below the threshold, and a count figure (hour x weekday, trend) hides every cell
   below ``k`` (with a second one where one alone would follow from the total,
   :func:`suppressed_units` over the figure's groups); a study with fewer than ``k`` incidents
   has no such figure at all. Rows that could not be read are listed in public files by file,
   line and reason only; their raw values go to ``analysis/cleaning_report.json``.

NIBRS rows (the offences set LAPD publishes since March 2024) carry more about victims than
legacy rows: victim counts, whether a victim was shot, and domestic-violence, hate, gang, transit
and homeless flags. They are victim-level (:data:`geo_crime.core.schema.VICTIM_COLUMNS`, and the
set's own spellings in :func:`victim_columns`), so they stay in ``analysis/``; case and offence
numbers and the hundred-block coordinates are incident-level. Sexual offences are never located
in public outputs: no public layer carries incident points or per-unit counts by category, so
they enter only unit totals (subject to the threshold) and city-wide figures.

What the threshold protects: the exact small count of any single unit, and its value, class and
forecast. What it does not protect: that a unit has fewer than ``k`` incidents (it is grey), the
sum of the suppressed units of a group (at least two units), aggregate statistics (Moran's I,
backtest metrics) and anything in ``analysis/``, which holds exact small counts and victim-level
fields and is not for publication. Nor does it hold across releases: two runs over overlapping
rows difference like two studies of one run, and a release at a lower ``k`` publishes units a
release at a higher ``k`` suppressed (releases of the same data at different ``k`` undo each
other), so publish one run, at one ``k``, per set of rows. A suppression rule is no substitute
for judging whether a map of a small area should be published at all.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

from geo_crime.core.config import DEFAULT_K
from geo_crime.core.errors import ConfigError, DataError, PrivacyError
from geo_crime.core.schema import DIVISIONS, EXTRA_PREFIX, VICTIM_COLUMNS
from geo_crime.cube.summary import cube_summary
from geo_crime.units.spec import UnitSpec

__all__ = [
    "INCIDENT_COLUMNS",
    "SUPPRESSED_COLUMNS",
    "check_public_table",
    "check_study_overlap",
    "count_words",
    "suppress_small_units",
    "victim_columns",
    "PUBLIC_COLUMNS",
    "cube_disclosure",
    "hidden_mask",
    "publishable",
    "UNIT_ATTRIBUTES",
    "public_tables",
    "study_groups",
    "suppressed_units",
    "unit_counts",
]

INCIDENT_COLUMNS: frozenset[str] = frozenset(
    {
        "incident_id",
        "dr_no",
        "occurred_at",
        "reported_at",
        "location",
        "cross_street",
        "mocodes",
        "lat",
        "lon",
        "source_line",
        "case_id",
        "offense_id",
        "caseno",
        "uniquenibrno",
        "hndrdth_lat",
        "hndrdth_lon",
        "hndrdth_loc_chk",
    }
)
"""Columns that only incident-level (one row per crime) tables carry."""

SUPPRESSED_COLUMNS: frozenset[str] = frozenset(
    {
        "count",
        "counts",
        "incidents",
        "n_incidents",
        "y",
        "y_std",
        "lag_std",
        "Is",
        "actual",
        "observed",
        "severity",
        "severity_sum",
        "severity_mean",
        "severity_rate",
        "harm",
        "harm_sum",
        "rate",
        "rate_per_1000",
        "crime_rate",
        "top_crime",
    }
)
"""Per-unit measures set to null for units below the k-anonymity threshold.

Columns starting with ``cat_`` (per-category counts), ``severity_``, ``harm_``, ``rate_`` or
``expected_`` (expected incidents of a forecast) are suppressed too. ``y``, ``y_std``,
``lag_std`` and ``Is`` are the hot-spot tables' copies of the analysed value (from which it
could be recovered).
"""

_SUPPRESSED_PREFIXES = ("cat_", "severity_", "harm_", "rate_", "expected_")

# Raw LAPD spellings of victim fields (official CSV, API, reduced 2024 JSON and its intermediates)
_RAW_VICTIM_COLUMNS = frozenset(
    {
        "age_category",
        "descent_category",
        "victim_descent_category",
        "vict_age_group",
        # the NIBRS offences set's victim facts, as the set spells them
        "totalvictimcount",
        "victim_shot",
        "domestic_violence_crime",
        "hate_crime",
        "gang_related_crime",
        "transit_related_crime",
        "homeless_victim_crime",
        "homeless_suspect_crime",
        "homeless_arrestee_crime",
    }
)


def victim_columns(columns: Iterable[Any]) -> list[str]:
    """Victim-level columns among ``columns``.

    Parameters
    ----------
    columns : iterable
        Column names.

    Returns
    -------
    list of str
        The names that are :data:`~geo_crime.core.schema.VICTIM_COLUMNS`, start with ``vict`` (any
        case, e.g. ``Vict Age``, ``Victim_Sex``) or are the reduced schema's age and descent
        categories.
    """
    found = []
    for column in columns:
        name = str(column)
        norm = name.strip().lower().replace(" ", "_")
        if name in VICTIM_COLUMNS or norm.startswith("vict") or norm in _RAW_VICTIM_COLUMNS:
            found.append(name)
    return found


def check_public_table(table: pd.DataFrame, *, name: str = "table") -> None:
    """Refuse a table that is not unit-level or that carries victim-level columns.

    Parameters
    ----------
    table : pandas.DataFrame
        The candidate layer.
    name : str
        Layer name, for messages.

    Raises
    ------
    PrivacyError
        Victim-level columns, incident-level columns, no ``unit_id`` column, or duplicated
        ``unit_id`` values (more than one row per unit).
    """
    victims = victim_columns(table.columns)
    if victims:
        raise PrivacyError(
            f"layer {name!r} has victim-level columns {victims}: public exports carry unit-level "
            "aggregates only (drop these columns before exporting)"
        )
    incident = sorted(
        c
        for c in map(str, table.columns)
        if c.lower() in INCIDENT_COLUMNS or c.lower().startswith(EXTRA_PREFIX)
    )
    if incident:
        raise PrivacyError(
            f"layer {name!r} looks like incident-level data (columns {incident}); only unit-level "
            "tables (one row per spatial unit) can be exported"
        )
    if "unit_id" not in table.columns:
        raise PrivacyError(f"layer {name!r} has no 'unit_id' column; only unit-level tables")
    ids = table["unit_id"]
    if ids.isna().any():
        raise PrivacyError(f"layer {name!r} has missing unit_id values")
    if ids.duplicated().any():
        dup = ids[ids.duplicated()].iloc[0]
        raise PrivacyError(
            f"layer {name!r} has more than one row per unit (e.g. unit_id {dup!r}); "
            "per-incident rows cannot be exported, aggregate to units first"
        )


def _suppressible(columns: Iterable[Any], extra: Iterable[str] = ()) -> list[str]:
    extra = set(extra)
    return [
        str(c)
        for c in columns
        if str(c) in SUPPRESSED_COLUMNS
        or str(c) in extra
        or any(str(c).startswith(p) for p in _SUPPRESSED_PREFIXES)
    ]


def _unit_counts(
    table: pd.DataFrame,
    counts: Mapping[str, float] | pd.Series | None,
    count_column: str,
) -> np.ndarray | None:
    if counts is not None:
        series = counts if isinstance(counts, pd.Series) else pd.Series(dict(counts))
        series = series.copy()
        series.index = series.index.astype(str)
        return pd.to_numeric(
            series.reindex(table["unit_id"].astype(str).to_numpy()), errors="coerce"
        ).to_numpy(dtype=float)
    if count_column in table.columns:
        return pd.to_numeric(table[count_column], errors="coerce").to_numpy(dtype=float)
    return None


def suppress_small_units(
    table: pd.DataFrame,
    *,
    k_anonymity: int = DEFAULT_K,
    counts: Mapping[str, float] | pd.Series | None = None,
    count_column: str = "count",
    extra_columns: Sequence[str] = (),
    name: str = "table",
) -> pd.DataFrame:
    """Null the measures of units with fewer than ``k_anonymity`` incidents.

    Parameters
    ----------
    table : pandas.DataFrame
        A unit-level table with ``unit_id``.
    k_anonymity : int, default 3
        Units with fewer incidents are suppressed; ``0`` (or ``1`` with no empty units) turns
        suppression off, though the ``suppressed`` column is still added.
    counts : mapping or pandas.Series, optional
        Incidents per ``unit_id``; wins over ``count_column``. Units missing from it count as
        unknown and are suppressed.
    count_column : str, default "count"
        Column of ``table`` with each unit's incident count, used when ``counts`` is not given.
    extra_columns : sequence of str
        Further columns to suppress besides :data:`SUPPRESSED_COLUMNS`.
    name : str
        Layer name, for messages.

    Returns
    -------
    pandas.DataFrame
        A copy with the measure columns nulled for small units (integer columns become nullable
        ``Int64``) and a boolean ``suppressed`` column. A table with no measure columns (e.g.
        outlines) is returned unchanged: there is nothing to suppress.

    Raises
    ------
    PrivacyError
        The table has measure columns but neither ``counts`` nor ``count_column``.
    """
    if k_anonymity < 0:
        raise DataError(f"k_anonymity must be >= 0, got {k_anonymity}")
    columns = _suppressible(table.columns, extra_columns)
    if not columns:
        return table
    n = _unit_counts(table, counts, count_column)
    if n is None:
        if columns:
            raise PrivacyError(
                f"layer {name!r} has per-unit measures {columns} but no {count_column!r} column "
                "and no counts were given, so units with fewer than k incidents cannot be "
                "suppressed (pass counts={unit_id: incidents})"
            )
        return table
    small = ~(n >= k_anonymity)  # NaN (unknown count) is suppressed too
    if "suppressed" in table.columns:  # secondary suppression decided upstream is kept
        small |= table["suppressed"].astype("boolean").fillna(True).to_numpy(dtype=bool)
    out = table.copy()
    for column in columns:
        series = out[column]
        if ptypes.is_bool_dtype(series.dtype):
            series = series.astype("boolean")
        elif ptypes.is_integer_dtype(series.dtype):
            series = series.astype("Int64")
        elif not ptypes.is_float_dtype(series.dtype):
            series = series.astype(object)
        out[column] = series.mask(small)
    out["suppressed"] = small
    return out


#: Unit attributes that say nothing about incidents and stay public for every unit.
UNIT_ATTRIBUTES: tuple[str, ...] = (
    "unit_id",
    "unit_type",
    "name",
    "place",
    "area",
    "area_km2",
    "bureau",
    "division_name",
    "approximate",
    "in_study_area",
    "population",
    "complete_periods",
    "geometry",
)

#: Columns a public layer of each kind may carry besides :data:`UNIT_ATTRIBUTES` (blank for
#: suppressed units).
PUBLIC_COLUMNS: dict[str, tuple[str, ...]] = {
    "summary": (
        "count",
        "severity",
        "harm",
        "severity_per_complete_period",
        "severity_rate",
    ),
    "gi": ("gi_bin", "gi_label", "n_neighbours"),
    "lisa": ("cluster_code", "cluster", "significant", "island"),
    "emerging": ("category", "code", "signed_code", "n_hot", "n_cold"),
    "forecast": (
        "period",
        "last_complete_period",
        "data_end",
        "prediction",
        "lower",
        "upper",
        "expected_incidents",
        "expected_violent",
        "expected_property",
        "expected_other",
        "history_complete",
    ),
}

#: Columns kept for suppressed units too: they describe the unit or the table, not its data.
_ALWAYS_SHOWN = frozenset(
    {*UNIT_ATTRIBUTES, "n_neighbours", "period", "last_complete_period", "data_end"}
)


def suppressed_units(
    counts: pd.Series,
    k_anonymity: int = DEFAULT_K,
    *,
    groups: pd.Series | Sequence[pd.Series] | None = None,
) -> pd.Series:
    """Which units are suppressed: fewer than ``k`` incidents, plus secondary suppression.

    Parameters
    ----------
    counts : pandas.Series
        Incidents per unit, indexed by ``unit_id`` (NaN = unknown, suppressed).
    k_anonymity : int, default 3
        Units with fewer incidents are suppressed; ``0`` turns suppression off.
    groups : pandas.Series or sequence of them, optional
        A group per unit (the LAPD division), aligned with ``counts``; secondary suppression
        runs within each group and over all units. Several groupings (the rows and the columns
        of a figure's table) are each closed the same way.

    Returns
    -------
    pandas.Series
        Boolean per unit, indexed like ``counts``.

    Examples
    --------
    >>> counts = pd.Series({"a": 1, "b": 5, "c": 9, "d": 4})
    >>> suppressed_units(counts, 3).tolist()  # "a" alone would be solvable from the total
    [True, False, False, True]
    """
    values = pd.to_numeric(counts, errors="coerce").astype(float)
    if k_anonymity <= 0:
        return pd.Series(False, index=counts.index)
    small = ~(values >= k_anonymity)
    keys = [pd.Series("all", index=counts.index)]
    for group in [groups] if isinstance(groups, pd.Series) else groups or []:
        keys.append(pd.Series(group.to_numpy(), index=counts.index).astype("string").fillna("?"))
    changed = True
    while changed:  # a unit suppressed for one group can leave another with a single one
        changed = False
        for key in keys:
            for _, members in values.groupby(key.to_numpy()):
                hidden = small.loc[members.index]
                if int(hidden.sum()) == 1 and len(members) > 1:
                    shown = members[~hidden]
                    small.loc[shown.idxmin()] = True
                    changed = True
    return small


def count_words(count: float, k_anonymity: int = DEFAULT_K) -> str:
    """A count as public text: ``"1,234"``, or ``"fewer than 3"`` below the threshold."""
    if k_anonymity > 0 and not count >= k_anonymity:
        return f"fewer than {k_anonymity}"
    return f"{int(count):,}"


def _rows_of(study: Any) -> tuple[frozenset[int], pd.Timestamp, pd.Timestamp]:
    """A study's divisions (all 21 when none are named) and its date range (open ends)."""
    areas = frozenset(int(a) for a in study.areas) or frozenset(DIVISIONS)
    start = pd.Timestamp(study.start) if study.start else pd.Timestamp.min
    end = pd.Timestamp(study.end) if study.end else pd.Timestamp.max
    return areas, start, end


def _unit_kinds(study: Any) -> set[str]:
    """The unit types of a study, one spelling each (:attr:`UnitSpec.canonical`)."""
    kinds = set()
    for spec in study.units:
        try:
            kinds.add(UnitSpec.parse(spec).canonical)
        except ConfigError:  # not a unit (the settings check says so): compared as written
            kinds.add(str(spec))
    return kinds


def _rows_words(study: Any) -> str:
    areas = f"division(s) {', '.join(map(str, sorted(study.areas)))}" if study.areas else "all"
    dates = f"{study.start or 'the first day'} to {study.end or 'the last day'}"
    return f"{study.name!r}: {areas}, {dates}, periods {study.freq}"


def check_study_overlap(studies: Sequence[Any], k_anonymity: int = DEFAULT_K) -> None:
    """Refuse studies of one run whose published numbers could be differenced (rule 6).

    Two studies may share no row (other divisions, or dates that do not overlap), or select
    the same rows (the same divisions and dates) at the same period length for the unit types
    they share. Anything else publishes two counts of a unit, a division or the study area
    whose difference counts the rows only one of them holds, which suppression never sees.

    Parameters
    ----------
    studies : sequence of StudySettings
        The run's studies (``name``, ``areas``, ``start``, ``end``, ``freq``, ``units``).
    k_anonymity : int, default 3
        The run's threshold; ``0`` suppresses nothing, so there is nothing to protect.

    Raises
    ------
    ConfigError
        The first pair that overlaps, with what each selects and why that is refused.
    """
    if k_anonymity <= 0:
        return
    for i, first in enumerate(studies):
        for second in studies[i + 1 :]:
            areas_a, start_a, end_a = _rows_of(first)
            areas_b, start_b, end_b = _rows_of(second)
            if not (areas_a & areas_b) or start_a >= end_b or start_b >= end_a:
                continue  # no row in common
            same_rows = (areas_a, start_a, end_a) == (areas_b, start_b, end_b)
            shared = sorted(_unit_kinds(first) & _unit_kinds(second))
            if same_rows and (not shared or first.freq.upper() == second.freq.upper()):
                continue
            what = (
                f"the same {', '.join(shared)} units over different periods"
                if same_rows
                else "counts of overlapping but different rows"
            )
            raise ConfigError(
                f"studies {first.name!r} and {second.name!r} publish {what} "
                f"({_rows_words(first)}; {_rows_words(second)}): the difference of two of their "
                "published counts (of a unit, a division or the study) counts the rows only one "
                f"of them holds, which can be fewer than k_anonymity = {k_anonymity} and is "
                "suppressed nowhere. Give studies of one run the same divisions, dates and "
                "period length, or divisions or dates that do not overlap (two runs over "
                "overlapping rows undo each other the same way: publish one)"
            )


def hidden_mask(suppressed: pd.Series, unit_ids: Iterable[object]) -> np.ndarray:
    """Boolean per unit id: suppressed (a unit missing from ``suppressed`` counts as one)."""
    ids = pd.Index([str(u) for u in unit_ids])
    return suppressed.reindex(ids).astype("boolean").fillna(True).to_numpy(dtype=bool)


def publishable(
    summary: pd.DataFrame,
    suppressed: pd.Series,
    *,
    statistics: Mapping[str, pd.DataFrame] | None = None,
    forecast: pd.DataFrame | None = None,
) -> dict[str, pd.DataFrame]:
    """The public tables of one unit set: its summary, statistics and forecast, disclosure-safe.

    Parameters
    ----------
    summary : geopandas.GeoDataFrame
        :func:`geo_crime.cube.summary.cube_summary` of the units (its geometry goes to the
        forecast).
    suppressed : pandas.Series
        From :func:`suppressed_units`.
    statistics : mapping, optional
        ``gi`` / ``lisa`` / ``emerging`` result tables.
    forecast : pandas.DataFrame, optional
        ``unit_id`` and the prediction columns.

    Returns
    -------
    dict of str to DataFrame
        :func:`public_tables` of them, keyed ``summary``, the statistics and ``forecast``.
    """
    raw: dict[str, pd.DataFrame] = {"summary": summary}
    raw.update({k: v for k, v in (statistics or {}).items() if k in ("gi", "lisa", "emerging")})
    if forecast is not None:
        raw["forecast"] = summary[["unit_id", "geometry"]].merge(
            forecast.drop(columns=["suppressed"], errors="ignore"), on="unit_id"
        )
    return public_tables(raw, suppressed)


def public_tables(
    tables: Mapping[str, pd.DataFrame], suppressed: pd.Series
) -> dict[str, pd.DataFrame]:
    """Public copies of unit-level tables: allowed columns only, suppressed units blank.

    Parameters
    ----------
    tables : mapping of str to DataFrame
        Tables keyed by kind (``summary``, ``gi``, ``lisa``, ``emerging``, ``forecast``; see
        :data:`PUBLIC_COLUMNS`), each with ``unit_id``.
    suppressed : pandas.Series
        From :func:`suppressed_units`, indexed by ``unit_id``.

    Returns
    -------
    dict of str to DataFrame
        Same keys; each table keeps :data:`UNIT_ATTRIBUTES` and its kind's public columns,
        blanks every other value of suppressed units and gains a boolean ``suppressed``
        column. A unit missing from ``suppressed`` is suppressed.

    Raises
    ------
    KeyError
        A kind not in :data:`PUBLIC_COLUMNS`.
    """
    out: dict[str, pd.DataFrame] = {}
    for kind, table in tables.items():
        allowed = PUBLIC_COLUMNS[kind]
        keep = [c for c in table.columns if c in UNIT_ATTRIBUTES or c in allowed]
        public = table[keep].copy()
        hidden = hidden_mask(suppressed, public["unit_id"])
        for column in public.columns:
            if column in _ALWAYS_SHOWN:
                continue
            series = public[column]
            if pd.api.types.is_bool_dtype(series.dtype):
                series = series.astype("boolean")
            elif pd.api.types.is_integer_dtype(series.dtype):
                series = series.astype("Int64")
            elif not pd.api.types.is_float_dtype(series.dtype):
                series = series.astype(object)
            public[column] = series.mask(hidden)
        public["suppressed"] = hidden
        out[kind] = public
    return out


def unit_counts(summary: pd.DataFrame) -> pd.Series:
    """Incidents per unit of a summary table, indexed by ``unit_id``."""
    return pd.Series(
        pd.to_numeric(summary["count"], errors="coerce").to_numpy(dtype=float),
        index=summary["unit_id"].astype(str).to_numpy(),
    )


def study_groups(summary: pd.DataFrame) -> pd.Series | None:
    """The division of each unit of a summary table (``None`` without an ``area`` column)."""
    if "area" not in summary:
        return None
    return pd.Series(summary["area"].to_numpy(), index=summary["unit_id"].astype(str).to_numpy())


def cube_disclosure(cube: Any, k_anonymity: int = DEFAULT_K) -> tuple[pd.DataFrame, pd.Series]:
    """A cube's per-unit summary and which of its units are suppressed.

    Parameters
    ----------
    cube : geo_crime.cube.panel.Cube
        The space-time cube.
    k_anonymity : int, default 3
        See :func:`suppressed_units`.

    Returns
    -------
    (geopandas.GeoDataFrame, pandas.Series)
        :func:`geo_crime.cube.summary.cube_summary` and the suppression flags by ``unit_id``
        (secondary suppression within each division).
    """

    summary = cube_summary(cube)
    hidden = suppressed_units(unit_counts(summary), k_anonymity, groups=study_groups(summary))
    return summary, hidden


def suppression_off(k_anonymity: int) -> str:
    """What public outputs show under a ``k_anonymity`` below 2, in words, for the run's warning
    and the report's privacy lines; empty when small counts are suppressed.

    Parameters
    ----------
    k_anonymity
        The run's suppression threshold.

    Returns
    -------
    str

    Examples
    --------
    >>> suppression_off(3)
    ''
    >>> suppression_off(0)[:46]
    'k_anonymity = 0 turns small-count suppression '
    """
    if k_anonymity >= 2:
        return ""
    if k_anonymity == 1:
        return (
            "k_anonymity = 1 suppresses only units without incidents: units with a single "
            "incident are published in the maps, GIS layers and figures"
        )
    return (
        "k_anonymity = 0 turns small-count suppression off: units with 1 or 2 incidents are "
        "published in the maps, GIS layers and figures"
    )

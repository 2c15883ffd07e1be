"""Forecast severity read as incidents: expected incidents per crime group at a unit's recent mix.

A severity forecast (severity points per unit per period) is what the models are trained and
scored on, but a reader thinks in incidents. :func:`expected_incidents` converts each unit's
point forecast into expected incidents of each :data:`INCIDENT_GROUPS` group by assuming the
unit keeps the mix of crimes it had over its last :data:`MIX_PERIODS` completely recorded
periods: expected incidents of a group = forecast severity x (the group's incidents / severity
points over that window). A unit with no recorded severity in the window takes the mix of the
whole study. The conversion is a reading aid, not a second forecast: its error is the severity
forecast's error plus any change in the unit's mix.

Public tables read each unit at its *division's* mix instead (``groups``): at its own, expected
incidents per group over expected incidents are the unit's exact group shares over the window,
and the prediction over expected incidents its exact points per incident, from which its exact
counts follow (:mod:`geo_crime.publish.privacy`, rule 5). The unit's own mix stays in ``analysis/``.

:func:`severity_scale_sentence` says in one sentence how to read the scale, with the average
points per incident of the study.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from geo_crime.core.periods import Freq
from geo_crime.cube.panel import Cube

__all__ = [
    "EXPECTED_COLUMNS",
    "INCIDENT_GROUPS",
    "MIX_PERIODS",
    "expected_incidents",
    "points_per_incident",
    "severity_scale_sentence",
]

INCIDENT_GROUPS: dict[str, tuple[str, ...]] = {
    "violent": (
        "homicide",
        "sexual_violence",
        "robbery",
        "aggravated_assault",
        "simple_assault",
    ),
    "property": ("burglary", "theft", "vehicle_theft", "arson_vandalism", "fraud"),
}
"""Crime groups of the severity table's categories; every other category is ``other``."""

MIX_PERIODS = 13
"""Completely recorded periods (ending at the forecast origin) a unit's crime mix is read over."""

EXPECTED_COLUMNS = (
    "expected_incidents",
    "expected_violent",
    "expected_property",
    "expected_other",
)
"""Columns :func:`expected_incidents` adds (all incidents, then per group)."""


def _group_counts(cube: Cube, use: np.ndarray) -> dict[str, np.ndarray]:
    """Incidents per unit and group over the periods ``use`` marks, ``other`` the remainder."""
    total = np.where(use, cube.values("count"), 0.0).sum(axis=1)
    out: dict[str, np.ndarray] = {}
    for group, categories in INCIDENT_GROUPS.items():
        counts = np.zeros(cube.shape[0])
        for name in categories:
            if name in cube.categories:
                counts += np.where(use, cube.categories[name], 0.0).sum(axis=1)
        out[group] = counts
    out["other"] = np.maximum(total - sum(out.values()), 0.0)
    return out


def _mix_window(cube: Cube, periods: int) -> np.ndarray:
    """(unit, period) mask of the last ``periods`` periods, completely recorded ones only."""
    use = np.zeros(cube.shape, dtype=bool)
    start = max(0, cube.shape[1] - int(periods))
    use[:, start:] = np.asarray(cube.complete, dtype=bool)[:, start:]
    return use


def points_per_incident(cube: Cube, *, periods: int = MIX_PERIODS) -> float:
    """Average severity points of one recorded incident over the study's recent window.

    Parameters
    ----------
    cube : Cube
        History up to the forecast origin.
    periods : int
        Periods the average is read over (completely recorded ones only).

    Returns
    -------
    float
        Severity points per incident (NaN when the window holds no incident).
    """
    use = _mix_window(cube, periods)
    count = float(np.where(use, cube.values("count"), 0.0).sum())
    points = float(np.where(use, cube.values("severity"), 0.0).sum())
    return points / count if count > 0 else float("nan")


def _pooled_rates(
    points: np.ndarray, counts: dict[str, np.ndarray], keys: pd.Series, k_anonymity: int
) -> dict[str, np.ndarray]:
    """Incidents per severity point of each group, per unit at its key's pooled mix: the
    study's where the key's mix has a group below ``k_anonymity`` (or no key), NaN where the
    study's has too."""
    frame = pd.DataFrame({"points": points, **counts})
    names = list(counts)

    def usable(table: pd.DataFrame) -> pd.Series:
        return (table["points"] > 0) & (table[names] >= k_anonymity).all(axis=1)

    pooled = frame.groupby(keys.to_numpy(), dropna=True).sum()
    pooled = pooled[usable(pooled)]
    study = frame.sum().to_frame().T
    fallback = study[names].div(study["points"], axis=0).where(usable(study), np.nan)
    per_unit = pooled[names].div(pooled["points"], axis=0).reindex(keys.to_numpy())
    per_unit = per_unit.fillna(fallback.iloc[0])
    return {name: per_unit[name].to_numpy(dtype=float) for name in names}


def expected_incidents(
    table: pd.DataFrame,
    cube: Cube,
    *,
    periods: int = MIX_PERIODS,
    groups: pd.Series | None = None,
    k_anonymity: int = 0,
) -> pd.DataFrame:
    """Add expected incidents (all and per crime group) to a severity forecast table.

    Parameters
    ----------
    table : pandas.DataFrame
        ``unit_id`` and ``prediction`` (severity points), e.g. from
        :func:`geo_crime.forecast.predict_next`.
    cube : Cube
        The history the forecast was made from (its last period is the origin); it must hold
        severity and per-category counts.
    periods : int
        Periods the unit's crime mix is read over (:data:`MIX_PERIODS`).
    groups : pandas.Series, optional
        A group per unit (its division, indexed by ``unit_id``): every unit is read at its
        group's mix (incidents and points of the group's units over the window), as public
        tables are. A group with a crime group below ``k_anonymity`` incidents there (or a unit
        with no group) takes the study's mix; where the study's has one too, the columns are NaN.
    k_anonymity : int, default 0
        The threshold of ``groups``.

    Returns
    -------
    pandas.DataFrame
        A copy of ``table`` with :data:`EXPECTED_COLUMNS`; NaN where the prediction is NaN.
        ``expected_incidents`` is the sum of the three groups.
    """
    use = _mix_window(cube, periods)
    points = np.where(use, cube.values("severity"), 0.0).sum(axis=1)
    counts_by_group = _group_counts(cube, use)
    index = pd.Index(cube.unit_ids.astype(str))
    if groups is not None:
        keys = pd.Series(groups.to_numpy(), index=groups.index.astype(str)).reindex(index)
        rates = _pooled_rates(points, counts_by_group, keys.astype("string"), k_anonymity)
    else:
        study_points = points.sum()
        rates = {}
        for group, counts in counts_by_group.items():
            study_rate = counts.sum() / study_points if study_points > 0 else np.nan
            with np.errstate(divide="ignore", invalid="ignore"):
                rates[group] = np.where(points > 0, counts / points, study_rate)
    rows = index.get_indexer(table["unit_id"].astype(str))
    prediction = table["prediction"].to_numpy(dtype=float)
    out = table.copy()
    expected = {}
    for group, rate in rates.items():
        per_row = np.where(rows >= 0, rate[np.maximum(rows, 0)], np.nan)
        expected[group] = prediction * per_row
    out["expected_incidents"] = expected["violent"] + expected["property"] + expected["other"]
    for group in ("violent", "property", "other"):
        out[f"expected_{group}"] = expected[group]
    return out


def severity_scale_sentence(
    average: float | None, *, freq: str = "W", periods: int = MIX_PERIODS, scale: bool = True
) -> str:
    """One sentence on how to read severity points, with the study's points per incident.

    Parameters
    ----------
    average : float or None
        Severity points per recorded incident over the mix window (:func:`points_per_incident`
        of the history the forecast was made from); None or NaN gives the scale only.
    freq : str
        Period length (``D``, ``W``, ``M``).
    periods : int
        Periods the average and the mix were read over.
    scale : bool
        Explain the 0-100 scale too (a report that explains it once elsewhere passes False).

    Returns
    -------
    str
    """
    word = Freq.parse(freq).word
    known = average is not None and np.isfinite(average) and average > 0
    typical = (
        f" Over the {periods} {word}s up to the forecast origin (completely recorded unit-{word}s "
        f"only) one recorded incident averaged {average:.0f} points, so 100 severity points are "
        f"about {100 / average:.0f} incidents."
        if known
        else ""
    )
    explained = (
        "How to read severity: every recorded incident scores 0-100 by its crime (homicide "
        "100, rape 90, robbery 65-75, aggravated assault 50-72, burglary 25-55, vehicle theft "
        "28-40, simple assault 18-40, theft 10-42), plus 10 when the victim is a child or over "
        "65 and 5-15 when a weapon is used (capped at 100); a unit's severity is the sum over "
        "its incidents."
        if scale
        else ""
    )
    return (
        f"{explained}{typical} Expected incidents read each unit at its division's "
        "crime mix and points per incident over "
        f"the {periods} {word}s up to the forecast origin (violent: homicide, sexual violence, "
        "robbery, assault; property: burglary, theft, vehicle theft, arson and vandalism, fraud)."
    ).strip()

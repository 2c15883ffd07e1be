"""What happens at the top places of a unit set: crime mix, repeat locations and a response.

A ranking says *where*; a response needs *what*. For the units with the most recorded severity
over a unit set's analysis window, this module reads their incident rows (of the window's
periods only) and profiles each place:

* its crime mix: incidents per crime type, the leading offence and premise;
* its busiest address: LAPD publishes each incident at a point of its hundred block, so one
  point stands for one address (block). A place is a **repeat location** when one address holds
  at least :data:`REPEAT_SHARE` of the place's incidents (and at least :data:`REPEAT_MIN`), most
  of them one offence: a problem of one site, for its owner or operator, not for area patrol;
* its busiest 4-hour time block, where times are recorded;
* the response its dominant problem suggests (:data:`RESPONSES`, after the problem-oriented
  policing guides: vehicle crime, burglary, theft, robbery, assault, vandalism, public order,
  fraud, and the offences for specialists rather than patrol), or a problem-oriented review when
  no problem dominates.

The rows are read by either engine (:meth:`geo_crime.engines.MemoryStudy.place_rows`,
:meth:`geo_crime.engines.ClusterStudy.place_rows`), both with :func:`place_rows`.

Privacy: a profile shows only counts of at least ``k`` (smaller crime types are folded into
"other types"; an address or time block below ``k`` is not named), and never an address: the
busiest address is described by its share and offence. Units suppressed in public outputs are
never profiled.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from geo_crime.core.periods import Freq
from geo_crime.publish.privacy import hidden_mask
from geo_crime.units import assign_units

#: The columns a place profile reads (those a source lacks are left out).
PROFILE_COLUMNS: tuple[str, ...] = (
    "occurred_at",
    "lat",
    "lon",
    "spatial_valid",
    "area",
    "crime_category",
    "crm_cd_desc",
    "premis_desc",
    "time_class",
)

#: The 4-hour blocks of the time of day (``time_class`` 1-6; 0 is unknown).
TIME_CLASS_LABELS: dict[int, str] = {
    1: "00:00-03:59",
    2: "04:00-07:59",
    3: "08:00-11:59",
    4: "12:00-15:59",
    5: "16:00-19:59",
    6: "20:00-23:59",
}

#: A place is a repeat location when one address holds at least this share of its incidents...
REPEAT_SHARE = 0.25
#: ... and at least this many of them ...
REPEAT_MIN = 10
#: ... and one offence makes at least this share of that address's incidents.
REPEAT_OFFENCE_SHARE = 0.5
#: A problem dominates a place when it holds at least this share of its incidents.
DOMINANT_SHARE = 0.4

#: The problem each crime category belongs to (vehicle crime also takes thefts and burglaries
#: from vehicles, found by their offence).
PROBLEMS: dict[str, str] = {
    "vehicle_theft": "vehicle crime",
    "burglary": "burglary",
    "theft": "theft",
    "robbery": "robbery",
    "aggravated_assault": "assault",
    "simple_assault": "assault",
    "homicide": "assault",
    "weapons": "assault",
    "arson_vandalism": "vandalism and arson",
    "public_order": "public order and trespass",
    "fraud": "fraud",
    "sexual_violence": "offences for specialists",
    "sex_offence_other": "offences for specialists",
    "child_family": "offences for specialists",
    "court_order": "offences for specialists",
    "other": "other offences",
}

#: What to try where one problem dominates (after the problem-oriented policing guides).
RESPONSES: dict[str, str] = {
    "vehicle crime": (
        "lighting and sight lines where cars park, signs telling drivers to leave nothing on "
        "view, and the operators of the lots and garages"
    ),
    "burglary": (
        "tell the neighbours of a burgled home within days (a repeat or a near-repeat is most "
        "likely then) and harden doors and windows"
    ),
    "theft": (
        "work with the shops and venues that report it on display, staffing and bicycle and "
        "parcel security"
    ),
    "robbery": (
        "visible presence at the busiest time around transit stops and cash businesses, and "
        "support for victims"
    ),
    "assault": (
        "look at the venues and the busiest time behind it (nightlife, disputes); violence "
        "interruption and victim services, with intimate-partner cases sent to domestic-violence "
        "services rather than patrol"
    ),
    "vandalism and arson": "quick repair and clean-up, and the owners of the damaged property",
    "public order and trespass": (
        "outreach and site management with the property's owner rather than arrests"
    ),
    "fraud": (
        "fraud is mostly reported where victims live, not where it happens: prevention advice, "
        "not patrol"
    ),
    "offences for specialists": (
        "specialist investigators and victim services; not a patrol problem"
    ),
    "other offences": "a closer look at what the offences are before any response",
}

#: Where no problem dominates.
MIXED_RESPONSE = "mixed crime: a problem-oriented review of what drives it before any response"


def place_rows(
    rows: pd.DataFrame,
    units,
    keep: list[str],
    periods: pd.DatetimeIndex,
    freq: str,
) -> pd.DataFrame:
    """The rows of the units ``keep`` that fall in ``periods``, with their ``unit_id``.

    Rows are first cut to the periods (cheap), then assigned to units as a cube assigns them
    (:func:`geo_crime.units.assign_units`); only :data:`PROFILE_COLUMNS` are kept.
    """

    columns = [c for c in PROFILE_COLUMNS if c in rows]
    if not len(rows) or not len(periods) or not len(keep):
        return pd.DataFrame(columns=[*columns, "unit_id"])
    inside = Freq.parse(freq).start(rows["occurred_at"]).isin(periods).to_numpy()
    part = rows.loc[inside, columns]
    if not len(part):
        return pd.DataFrame(columns=[*columns, "unit_id"])
    chosen = units[units["unit_id"].astype(str).isin(set(keep))]
    unit_ids, _ = assign_units(part, chosen)
    part = part.assign(unit_id=unit_ids.astype("string"))
    return part[part["unit_id"].notna()].reset_index(drop=True)


@dataclass(frozen=True)
class PlaceProfile:
    """One place's crime mix over a window, and what to try there.

    Attributes
    ----------
    unit_id, incidents
        The unit and its incidents over the window.
    mix
        ``(crime type, incidents)`` of the types with at least ``k`` incidents, largest first;
        the rest are summed in ``other_types``.
    problem, problem_share
        The dominant problem (:data:`PROBLEMS`) and its share, or ``""`` and 0 when none holds
        :data:`DOMINANT_SHARE`.
    repeat
        ``(incidents at the busiest address, the offence most of them are, its incidents)``
        when the place is a repeat location, else ``None``.
    premise
        ``(the leading premise, its incidents)`` where the rows record one, else ``None``.
    peak
        ``(time block, its incidents, incidents with a known block)`` or ``None``.
    response
        What to try there.
    """

    unit_id: str
    incidents: int
    mix: tuple[tuple[str, int], ...]
    other_types: int
    problem: str
    problem_share: float
    repeat: tuple[int, str, int] | None
    premise: tuple[str, int] | None
    peak: tuple[str, int, int] | None
    response: str


def _problem_of(rows: pd.DataFrame) -> pd.Series:
    """Each row's problem: its category's, with thefts and burglaries from vehicles as vehicle
    crime."""
    problem = rows["crime_category"].astype("string").map(PROBLEMS).fillna("other offences")
    if "crm_cd_desc" in rows:
        offence = rows["crm_cd_desc"].astype("string").str.upper().fillna("")
        from_vehicle = offence.str.contains("VEHICLE", regex=False) & problem.isin(
            ["theft", "burglary"]
        )
        problem = problem.mask(from_vehicle, "vehicle crime")
    return problem


def _ranked(values: pd.Series) -> pd.Series:
    """Counts of each value, largest first, ties by name: the same order whatever the row
    order (the engines read rows in different orders)."""
    counts = values.value_counts()
    order = sorted(counts.index, key=lambda v: (-int(counts[v]), str(v)))
    return counts.reindex(order)


def _leading(values: pd.Series) -> tuple[str, int]:
    counts = values.dropna().astype(str).str.strip()
    counts = _ranked(counts[counts != ""])
    return (str(counts.index[0]), int(counts.iloc[0])) if len(counts) else ("", 0)


def study_place_rows(part: pd.DataFrame, select, *args) -> pd.DataFrame:
    """:func:`place_rows` of the rows ``select`` keeps of one partition (for a cluster)."""
    return place_rows(select(part), *args)


def profile_place(unit_id: str, rows: pd.DataFrame, k: int) -> PlaceProfile:
    """The profile of one place from its rows over the window (see the module notes)."""
    n = len(rows)
    types = _ranked(rows["crime_category"].astype(str).replace({"<NA>": "other", "nan": "other"}))
    shown = types[types >= max(k, 1)]
    mix = tuple((str(t).replace("_", " "), int(c)) for t, c in shown.items())
    problems = _ranked(_problem_of(rows))
    top_problem, top_count = (problems.index[0], int(problems.iloc[0])) if n else ("", 0)
    dominant = n > 0 and top_count / n >= DOMINANT_SHARE and top_count >= k
    repeat = None
    valid = rows
    if "spatial_valid" in rows:
        valid = rows[rows["spatial_valid"].fillna(False).astype(bool)]
    if len(valid):
        points = valid.groupby([valid["lat"].round(5), valid["lon"].round(5)]).size()
        busiest = int(points.max())
        if busiest >= max(REPEAT_MIN, k) and busiest >= REPEAT_SHARE * n:
            lat, lon = points[points == busiest].sort_index().index[0]  # ties: the first point
            at = valid[(valid["lat"].round(5) == lat) & (valid["lon"].round(5) == lon)]
            offence, count = _leading(at.get("crm_cd_desc", pd.Series(dtype=object)))
            if offence and count >= REPEAT_OFFENCE_SHARE * busiest:
                repeat = (busiest, offence, count)
    premise = None
    if "premis_desc" in rows:
        name, count = _leading(rows["premis_desc"])
        premise = (name, count) if name and count >= k else None
    peak = None
    if "time_class" in rows:
        classes = pd.to_numeric(rows["time_class"], errors="coerce").fillna(0).astype(int)
        known = classes[classes.between(1, 6)]
        if len(known):
            block = _ranked(known)
            if int(block.iloc[0]) >= k:
                peak = (TIME_CLASS_LABELS[int(block.index[0])], int(block.iloc[0]), len(known))
    if repeat is not None:
        response = (
            "a repeat location: work with whoever manages that site on its "
            f"{repeat[1].lower()} problem; area patrol is the wrong tool"
        )
    elif dominant:
        response = RESPONSES.get(str(top_problem), MIXED_RESPONSE)
    else:
        response = MIXED_RESPONSE
    return PlaceProfile(
        unit_id=str(unit_id),
        incidents=int(n),
        mix=mix,
        other_types=int(n - shown.sum()),
        problem=str(top_problem) if dominant else "",
        problem_share=float(top_count / n) if dominant else 0.0,
        repeat=repeat,
        premise=premise,
        peak=peak,
        response=response,
    )


def top_places(window, suppressed: pd.Series | None, n: int = 10) -> list[str]:
    """The ``n`` units with the most recorded severity over the window's periods, published
    units only (``suppressed``: see :func:`geo_crime.publish.privacy.cube_disclosure`)."""
    totals = pd.Series(window.severity.sum(axis=1), index=window.unit_ids.astype(str))
    totals = totals[totals > 0]
    if suppressed is not None:
        totals = totals[~hidden_mask(suppressed, totals.index)]
    return totals.sort_values(ascending=False, kind="stable").head(n).index.tolist()


def profile_places(rows: pd.DataFrame, order: list[str], k: int) -> list[PlaceProfile]:
    """Profiles of the places ``order`` (in that order) from their rows
    (:func:`place_rows`); a place without rows is left out."""
    groups = {str(u): g for u, g in rows.groupby("unit_id", sort=False)} if len(rows) else {}
    return [profile_place(u, groups[u], k) for u in order if u in groups]


def mix_words(profile: PlaceProfile, limit: int = 3) -> str:
    """``theft 40%, burglary 22%, assault 12%`` (types with at least k incidents)."""
    n = max(profile.incidents, 1)
    words = [f"{name} {count / n:.0%}" for name, count in profile.mix[:limit]]
    return ", ".join(words) if words else "no type with enough incidents to show"


def repeat_words(profile: PlaceProfile) -> str:
    """The busiest address in words (never the address itself)."""
    if profile.repeat is None:
        return ""
    at, offence, count = profile.repeat
    return (
        f"repeat location: one address (hundred block) holds {at:,} of the {profile.incidents:,} "
        f"incidents ({at / max(profile.incidents, 1):.0%}), {count:,} of them "
        f"{offence.lower()}"
    )


def peak_words(profile: PlaceProfile) -> str:
    if profile.peak is None:
        return ""
    block, count, known = profile.peak
    return f"busiest {block} ({count / max(known, 1):.0%} of the incidents with a time)"


__all__ = [
    "DOMINANT_SHARE",
    "MIXED_RESPONSE",
    "PROBLEMS",
    "PROFILE_COLUMNS",
    "REPEAT_MIN",
    "REPEAT_OFFENCE_SHARE",
    "REPEAT_SHARE",
    "RESPONSES",
    "TIME_CLASS_LABELS",
    "PlaceProfile",
    "mix_words",
    "peak_words",
    "place_rows",
    "profile_place",
    "profile_places",
    "repeat_words",
    "study_place_rows",
    "top_places",
]

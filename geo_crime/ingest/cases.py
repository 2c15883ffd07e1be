"""NIBRS offence rows collapsed to one row per case, so that every row is an incident.

The LAPD NIBRS offences set has one row per offence: a case with an aggravated assault, the
vandalism done in it and an "all other offenses" charge is three rows sharing one ``caseno``.
Counting those rows would count that incident three times, where a legacy row (one per report)
counts it once. :func:`collapse_offenses_to_cases` keeps one row per case (``case_id``), after
scoring:

* the row kept is the case's **most serious offence**: the highest ``severity``; on a tie the
  lower NIBRS group letter (``A`` before ``B``, a missing group last), then the lowest
  ``offense_id`` (as text). That row gives the case its ``nibrs_code``, description, category,
  ``severity``, ``harm``, weapon and every other column;
* ``offense_count`` is the number of offence rows of the case;
* the victim-level facts of the case are those of all its offences: ``victim_count`` is the
  largest count of any offence, ``victim_shot`` and each ``flag_*`` is True when any offence has
  it True (else False when any has it False, else NA).

Legacy rows pass through unchanged (``offense_count`` 1). Rows keep their order: a case is at
the place of its kept row. The rows folded away are counted in
:attr:`~geo_crime.ingest.cleaning.CleaningReport.offenses_merged_into_cases`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from geo_crime.core import schema
from geo_crime.ingest.cleaning import CleaningReport, _nibrs_rows

#: Rank of a NIBRS group letter in the tie-break (lower wins; any other value or NA ranks last).
_GROUP_RANK = {"A": 0, "B": 1}


def collapse_offenses_to_cases(frame: pd.DataFrame, report: CleaningReport) -> pd.DataFrame:
    """One row per NIBRS case: its most serious offence, with the case's offence count.

    Parameters
    ----------
    frame
        Cleaned, scored incidents (``source_system``, ``case_id``, ``offense_id``,
        ``nibrs_group``, ``severity``, ``offense_count`` and the victim-level NIBRS columns).
    report
        Receives ``offenses_merged_into_cases`` and the new ``rows_out`` and
        ``spatially_valid``.

    Returns
    -------
    pandas.DataFrame
        The frame with every NIBRS case on one row (index reset); the frame itself when it has
        no NIBRS row.

    Examples
    --------
    >>> import pandas as pd
    >>> from geo_crime.ingest.cleaning import CleaningReport, _nibrs_rows
    >>> rows = pd.DataFrame({
    ...     "source_system": ["nibrs", "nibrs", "nibrs", "legacy"],
    ...     "case_id": ["250310000", "250310000", "250310000", "010304468"],
    ...     "offense_id": ["25031000013A1", "2503100002902", "25031000090Z3", "010304468"],
    ...     "nibrs_code": ["13A", "290", "90Z", None],
    ...     "nibrs_group": ["A", "A", "B", None],
    ...     "severity": [60, 30, 30, 25],
    ...     "offense_count": pd.array([1, 1, 1, 1], dtype="Int16"),
    ...     "spatial_valid": True})
    >>> cases = collapse_offenses_to_cases(rows, CleaningReport())
    >>> cases[["case_id", "nibrs_code", "offense_count"]].values.tolist()
    [['250310000', '13A', 3], ['010304468', None, 1]]
    """
    nibrs = _nibrs_rows(frame)
    if not nibrs.any():
        return frame
    positions = np.flatnonzero(nibrs)
    case_codes, _ = pd.factorize(frame["case_id"].to_numpy(dtype=object)[positions])
    severity = frame["severity"].to_numpy(dtype=np.float64)[positions]
    groups = pd.Series(frame["nibrs_group"].to_numpy(dtype=object)[positions])
    group_rank = groups.map(_GROUP_RANK).fillna(len(_GROUP_RANK)).to_numpy(dtype=np.int64)
    offense_rank, _ = pd.factorize(frame["offense_id"].to_numpy(dtype=object)[positions], sort=True)
    # last key first: case, then severity (highest first), group letter, offence id
    order = np.lexsort((offense_rank, group_rank, -severity, case_codes))
    sorted_cases = case_codes[order]
    starts = np.flatnonzero(np.r_[True, sorted_cases[1:] != sorted_cases[:-1]])
    kept = positions[order[starts]]
    offences_per_case = np.bincount(case_codes)[sorted_cases[starts]]

    counts = frame["offense_count"].to_numpy(dtype=np.int64, na_value=1).copy()
    counts[kept] = offences_per_case
    merged = {"offense_count": pd.array(counts, dtype="Int16")}
    merged.update(_merged_victim_facts(frame, positions, order, starts, kept))
    keep = ~nibrs
    keep[kept] = True
    out = frame.loc[keep].reset_index(drop=True)
    for column, values in merged.items():
        out[column] = values[keep]
    report.offenses_merged_into_cases += int(len(positions) - len(kept))
    report.rows_out = len(out)
    if "spatial_valid" in out:
        report.spatially_valid = int(out["spatial_valid"].sum())
    return out


def _merged_victim_facts(
    frame: pd.DataFrame,
    positions: np.ndarray,
    order: np.ndarray,
    starts: np.ndarray,
    kept: np.ndarray,
) -> dict[str, pd.api.extensions.ExtensionArray]:
    """The victim columns with each kept row holding the facts of all its case's offences.

    ``positions[order]`` lists the NIBRS rows case by case, each case starting at ``starts``;
    ``kept`` holds the row kept for each case. Other rows keep their values.
    """
    merged: dict[str, pd.api.extensions.ExtensionArray] = {}
    if "victim_count" in frame:
        count = frame["victim_count"].to_numpy(dtype=np.float64, na_value=np.nan)
        count[kept] = np.fmax.reduceat(count[positions[order]], starts)
        missing = np.isnan(count)
        merged["victim_count"] = pd.arrays.IntegerArray(
            np.where(missing, 0, count).astype(np.int16), missing
        )
    for flag in schema.NIBRS_FLAG_COLUMNS:
        if flag not in frame:
            continue
        column = frame[flag].astype("boolean")
        # -1 missing, 0 False, 1 True: the largest over a case is "any True, else any False"
        state = np.where(column.isna().to_numpy(), -1, column.fillna(False).to_numpy(dtype=int))
        state = state.astype(np.int8)
        state[kept] = np.maximum.reduceat(state[positions[order]], starts)
        merged[flag] = pd.arrays.BooleanArray(state == 1, state < 0)
    return merged

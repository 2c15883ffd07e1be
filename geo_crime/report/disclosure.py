"""The report's section on disclosure control: the run's threshold and what holds across runs."""

from __future__ import annotations

__all__ = ["disclosure_lines"]


def disclosure_lines(k_anonymity: int) -> list[str]:
    """The ``## Disclosure control`` section of a run's report.

    Parameters
    ----------
    k_anonymity : int
        The run's threshold (see :mod:`geo_crime.publish.privacy`).

    Returns
    -------
    list of str
        Markdown lines: the threshold, what it covers in this run (every public table, map,
        figure and the report's own counts; studies that share rows select the same rows), and
        what it cannot cover: another release of the same data at another ``k``, or another
        run over overlapping rows.
    """
    if k_anonymity <= 0:
        covered = "This run suppresses no count (k_anonymity = 0): small counts are published."
    else:
        covered = (
            f"Units with fewer than {k_anonymity} incidents are suppressed (k_anonymity = "
            f"{k_anonymity}) in every public output of this run: the maps, GIS layers, tables "
            f"and figures (a figure cell below {k_anonymity} is blank, and a study with fewer "
            f"incidents has no count figure), and this report, where a study with fewer "
            f"incidents reads 'fewer than {k_anonymity}'. The studies of a run share no row or "
            "select the same rows, so no two published counts difference to a suppressed one; "
            "the forecast layer reads severity as incidents at each division's crime mix, so no "
            "unit's own counts can be solved from it."
        )
    return [
        "## Disclosure control",
        "",
        covered,
        "",
        "Suppression holds within one release only: releases of the same data at different k "
        "undo each other (a unit suppressed at k = 5 but published at k = 3 shows its count, "
        "and a lower k shows more), and two runs over overlapping rows difference like two "
        "studies of one run. Publish one run, at one k, for a given set of rows.",
        "",
    ]

"""Where a next-period forecast starts: the last period completely recorded for most units.

The end of the data is rarely a good origin: the last period is often cut off by the end of the
data, and after a recording break (the March 2024 records-system change) recent periods are
recorded too thinly, which would read as a crime drop. :func:`forecast_origin` picks the last
period that the backtest's own origin rule accepts and says, in words, why later periods were
not used.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from geo_crime.core.errors import ConfigError
from geo_crime.core.periods import Freq


@dataclass
class ForecastOrigin:
    """The period a next-period forecast starts from, and why it is not the last one."""

    index: int
    period: pd.Timestamp
    share: float
    reason: str


def forecast_origin(cube, *, min_share: float = 0.5, data_end=None) -> ForecastOrigin:
    """The last period complete for most units: where a trustworthy forecast can start.

    Parameters
    ----------
    cube : geo_crime.cube.panel.Cube
        The study's cube (with its coverage mask).
    min_share : float, default 0.5
        Share of the units that must be completely recorded in the origin period (the same
        rule as the backtest's origins); when no period reaches it, the most complete one.
    data_end : timestamp, optional
        The last occurrence date of the study's data, to tell a period cut off by the end of
        the data from one recorded too thinly.

    Returns
    -------
    ForecastOrigin
        Its column, start, complete share and, when later periods exist, why they were not used.
    """
    share = cube.period_complete_share()
    if not len(share):
        raise ConfigError("the cube has no period to forecast from")
    good = np.flatnonzero(share >= min_share)
    index = int(good[-1]) if len(good) else int(np.flatnonzero(share >= share.max())[-1])
    word = Freq.parse(cube.freq).word
    later = len(share) - 1 - index
    reasons = []
    last_start = cube.periods[-1]
    cut_off = data_end is not None and pd.Timestamp(data_end) < _period_end(last_start, cube.freq)
    thin = later - (1 if cut_off else 0)
    if thin > 0:
        reasons.append(
            f"{'the' if thin > 1 else 'the one'} {thin} {word}{'s' if thin > 1 else ''} after "
            f"it {'are' if thin > 1 else 'is'} completely recorded for fewer than "
            f"{min_share:.0%} of the units (a recording break, such as the March 2024 "
            "records-system change, would read as a crime drop)"
        )
    if cut_off:
        reasons.append(
            f"the {word} starting {last_start.date()} is cut off by the end of the data "
            f"({pd.Timestamp(data_end).date()}), so it is not a whole {word}"
        )
    reason = "; and ".join(reasons)
    return ForecastOrigin(index, cube.periods[index], float(share[index]), reason)


def _period_end(start: pd.Timestamp, freq: str) -> pd.Timestamp:
    """The last day of the period starting at ``start``."""
    days = {"D": 0, "W": 6}.get(freq)
    if days is not None:
        return start + pd.Timedelta(days=days)
    return start + pd.offsets.MonthEnd(0)

"""Classes and colours of the web maps and static figures, and how numbers are written.

:func:`classify_values` puts a numeric variable into classes (quantiles or Fisher-Jenks natural
breaks, with mapclassify) and returns a :class:`Classification`, whose
:meth:`~Classification.labels` read ``"low – high"``; :func:`sequential_colours` gives the fills
of the classes. The categorical layers use fixed colours: :data:`GI_COLOURS` (ArcGIS hot spot
bins), :data:`LISA_COLOURS` (GeoDa clusters) and :data:`EMERGING_STYLES` (emerging hot spot
categories: hot in reds and oranges, cold in blues, the fading kinds hatched);
:data:`SUPPRESSED_COLOUR`, :data:`NO_DATA_COLOUR` and :data:`NOT_FORECAST_STYLE` fill the units
without a class. :func:`format_number` writes a number as the maps and figures show it.

The web maps (:mod:`geo_crime.publish.maps`, whose hatched fills are in
:mod:`geo_crime.publish.maps.classify`) and the static figures
(:mod:`geo_crime.publish.figures.core`) both use these. This module does not load folium, so
drawing a PNG does not load the web map's stack.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any, Literal

import mapclassify
import numpy as np
from matplotlib import colormaps
from matplotlib.colors import to_hex

from geo_crime.core.errors import ConfigError
from geo_crime.stats.emerging import CATEGORY_STYLES

GI_COLOURS: dict[int, str] = {
    3: "#d62f27",
    2: "#ed7551",
    1: "#fab984",
    0: "#f7f7f7",
    -1: "#b5c7e8",
    -2: "#7599c9",
    -3: "#4575b5",
}
"""ArcGIS hot spot colours per Gi* bin (99/95/90% hot, not significant, 90/95/99% cold)."""

LISA_COLOURS: dict[int, str] = {
    1: "#ff0000",
    2: "#a7adf9",
    3: "#0000ff",
    4: "#f4ada8",
    0: "#eeeeee",
}
"""GeoDa LISA colours per cluster code: High-High, Low-High, Low-Low, High-Low, not sig."""

EMERGING_STYLES: dict[int, tuple[str, bool]] = CATEGORY_STYLES
"""Emerging hot spot category code -> (fill colour, hatched): the palette of
:data:`geo_crime.stats.emerging.CATEGORY_STYLES`, shared with the static figures."""

NOT_FORECAST_STYLE: tuple[str, bool] = ("#9e9e9e", True)
"""Fill of units not forecast (hatched grey): distinct from a forecast of zero and from
suppressed units."""

SUPPRESSED_COLOUR = "#bdbdbd"
"""Fill of units suppressed for having fewer than k incidents."""

NO_DATA_COLOUR = "#ffffff"
"""Fill of units with no value (e.g. no residents for a rate, or missing from a table)."""

Scheme = Literal["fisherjenks", "quantiles"]
SCHEMES = ("fisherjenks", "quantiles")

#: Exact Fisher-Jenks above this many values is slow in pure Python (mapclassify without numba):
#: the breaks are then computed on this many evenly spaced quantiles of the values.
_JENKS_EXACT_MAX = 500


@dataclass
class Classification:
    """Classes of a numeric variable.

    Attributes
    ----------
    codes : numpy.ndarray of int
        Class index per value (0 = lowest); -1 where the value is missing.
    bins : numpy.ndarray
        Upper bound of each class (a value ``v`` is in the first class with ``v <= bin``).
    minimum : float
        Smallest classified value (lower bound of the first class).
    scheme : str
        Scheme used.
    """

    codes: np.ndarray
    bins: np.ndarray
    minimum: float
    scheme: str

    @property
    def k(self) -> int:
        """Number of classes."""
        return len(self.bins)

    def labels(self) -> list[str]:
        """``"low – high"`` label per class."""
        if not len(self.bins):
            return []
        lows = [self.minimum, *self.bins[:-1]]
        return [
            f"{format_number(lo)} – {format_number(hi)}"
            for lo, hi in zip(lows, self.bins, strict=True)
        ]


def classify_values(values: Any, *, scheme: Scheme = "fisherjenks", k: int = 5) -> Classification:
    """Classify values for a choropleth with mapclassify.

    Parameters
    ----------
    values : array_like
        Numbers; NaN (and infinities) are left unclassified (code -1).
    scheme : {"fisherjenks", "quantiles"}
        Fisher-Jenks natural breaks (default) or quantiles. Above 500 values the Fisher-Jenks
        breaks are computed on 500 evenly spaced quantiles of the values (deterministic, and
        fast without numba).
    k : int, default 5
        Number of classes (fewer when there are fewer distinct values).

    Returns
    -------
    Classification

    Raises
    ------
    ConfigError
        Unknown scheme or ``k < 1``.
    """
    if scheme not in SCHEMES:
        raise ConfigError(f"unknown classification scheme {scheme!r}; choose from {SCHEMES}")
    if k < 1:
        raise ConfigError(f"k must be >= 1, got {k}")
    y = np.asarray(values, dtype=float)
    ok = np.isfinite(y)
    codes = np.full(y.shape, -1, dtype=int)
    if not ok.any():
        return Classification(codes, np.array([]), math.nan, scheme)
    v = y[ok]
    distinct = np.unique(v)
    k_eff = min(k, len(distinct))
    if k_eff == len(distinct):
        bins = distinct
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if scheme == "quantiles":
                bins = mapclassify.Quantiles(v, k=k_eff).bins
            else:
                sample = v
                if len(v) > _JENKS_EXACT_MAX:
                    sample = np.quantile(v, np.linspace(0.0, 1.0, _JENKS_EXACT_MAX))
                bins = mapclassify.FisherJenks(sample, k=k_eff).bins
        bins = np.unique(np.asarray(bins, dtype=float))
        bins[-1] = max(bins[-1], v.max())
    codes[ok] = np.minimum(np.searchsorted(bins, v, side="left"), len(bins) - 1)
    return Classification(codes, bins, float(v.min()), scheme)


def sequential_colours(k: int, cmap: str = "YlOrRd", *, start: float = 0.12) -> list[str]:
    """``k`` hex colours from light to dark along a matplotlib colormap.

    Parameters
    ----------
    k : int
        Number of colours.
    cmap : str, default "YlOrRd"
        Matplotlib colormap.
    start : float, default 0.12
        Position of the lightest colour on the colormap (0..0.95): higher keeps the lowest
        class clear of white (a missing value).
    """
    if k <= 0:
        return []
    cm = colormaps[cmap]
    positions = [0.5] if k == 1 else np.linspace(start, 0.95, k)
    return [to_hex(cm(float(p))) for p in positions]


def format_number(x: float) -> str:
    """A number as the map writes it: thousands separated, fewer decimals the larger it is."""
    if x is None or not math.isfinite(x):
        return "n/a"
    if float(x).is_integer() and abs(x) < 1e15:
        return f"{int(x):,}"
    ax = abs(x)
    if ax >= 100:
        return f"{x:,.0f}"
    if ax >= 10:
        return f"{x:,.1f}"
    return f"{x:,.2f}"

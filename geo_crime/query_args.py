"""Checks of the arguments of the query API (:mod:`geo_crime.query`): each turns a value a
caller can pass into what a query needs, or raises one :class:`~geo_crime.core.errors.InputError`
naming the argument and its value, whatever its type (text where a number is expected, a list
where a name is, a date that is no date, an infinite radius, a point outside the county).
"""

from __future__ import annotations

import datetime as dt
import numbers
from collections.abc import Iterable

import numpy as np
import pandas as pd

from geo_crime.core.config import LOCAL_TIMEZONE
from geo_crime.core.errors import InputError
from geo_crime.ingest.cleaning import LA_COUNTY_BBOX

_COUNTY = "Los Angeles County (lat {1:.2f}..{3:.2f}, lon {0:.2f}..{2:.2f})".format(*LA_COUNTY_BBOX)


def real_number(name: str, value: object) -> float:
    """``value`` as a finite float: a real number (not text, not a boolean), else InputError."""
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
        raise InputError(f"{name} must be a number, got {value!r} ({type(value).__name__})")
    try:
        number = float(value)
    except (OverflowError, TypeError, ValueError):
        number = float("nan")
    if not np.isfinite(number):
        raise InputError(f"{name} must be a finite number, got {value!r}")
    return number


def whole_numbers(name: str, value: object) -> list[int]:
    """One whole number or an iterable of them (crime codes), else InputError."""
    values = [value] if not isinstance(value, Iterable) or isinstance(value, str) else value
    try:
        values = list(values)  # type: ignore[arg-type]
    except TypeError:
        values = [value]
    if not values or not all(
        isinstance(v, numbers.Integral) and not isinstance(v, bool | np.bool_) for v in values
    ):
        raise InputError(f"{name} must be a whole number or a list of them, got {value!r}")
    return [int(v) for v in values]


def names(name: str, value: object) -> list[str]:
    """One name or an iterable of names (crime categories), else InputError."""
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, Iterable) or not all(isinstance(v, str) for v in values):
        raise InputError(f"{name} must be a name or a list of names, got {value!r}")
    values = list(values)
    if not values:
        raise InputError(f"{name} must name at least one, got {value!r}")
    return values


def instant(name: str, value: object) -> np.datetime64:
    """A ``start``/``end`` bound (an ISO date or time, a timestamp) as local naive time."""
    if isinstance(value, bool | np.bool_) or not isinstance(
        value, str | pd.Timestamp | np.datetime64 | dt.date
    ):
        raise InputError(f"{name} must be a date such as '2024-01-01', got {value!r}")
    try:
        stamp = pd.Timestamp(value)
        if stamp.tzinfo is not None:  # the records keep local time without a zone
            stamp = stamp.tz_convert(LOCAL_TIMEZONE).tz_localize(None)
        if not pd.isna(stamp):
            return np.datetime64(stamp.as_unit("ns"))  # (1677-2262: pandas' range)
    except (ValueError, TypeError, OverflowError):
        pass
    raise InputError(f"{name} must be a date such as '2024-01-01', got {value!r}")


def name_text(name: str, value: object) -> str:
    """A name argument (a unit type, a column), else InputError."""
    if not isinstance(value, str):
        raise InputError(f"{name} must be a name (text), got {value!r} ({type(value).__name__})")
    return value


def in_county(lat: float, lon: float) -> bool:
    """Whether a point lies in the box of Los Angeles County."""
    west, south, east, north = LA_COUNTY_BBOX
    return south <= lat <= north and west <= lon <= east


def check_point(lat: object, lon: object) -> tuple[float, float]:
    """A query point as ``(lat, lon)`` floats, or one clear error when it cannot be meant.

    Parameters
    ----------
    lat, lon
        The point (WGS84 degrees).

    Returns
    -------
    (float, float)

    Raises
    ------
    InputError
        Not a finite number, ``(0, 0)``, given as ``(lon, lat)``, or outside Los Angeles County
        (:data:`geo_crime.ingest.cleaning.LA_COUNTY_BBOX`); the message names the argument and value.

    Examples
    --------
    >>> check_point(34.0522, -118.2437)
    (34.0522, -118.2437)
    >>> check_point(-118.2437, 34.0522)
    Traceback (most recent call last):
    geo_crime.core.errors.InputError: lat=-118.2437, lon=34.0522 look swapped: Los Angeles County (lat 32.80..34.82, lon -118.94..-117.65) is at lat 34, lon -118; call with lat=34.0522, lon=-118.2437
    """  # noqa: E501
    y, x = real_number("lat", lat), real_number("lon", lon)
    if in_county(y, x):
        return y, x
    if in_county(x, y):
        raise InputError(
            f"lat={lat}, lon={lon} look swapped: {_COUNTY} is at lat 34, lon -118; "
            f"call with lat={lon}, lon={lat}"
        )
    if y == 0 and x == 0:
        raise InputError(
            f"lat=0, lon=0 is not a place in {_COUNTY}: (0, 0) is how the data records a "
            "missing coordinate"
        )
    west, south, east, north = LA_COUNTY_BBOX
    wrong = [f"lat={lat}"] * (not south <= y <= north) + [f"lon={lon}"] * (not west <= x <= east)
    verb = "are" if len(wrong) > 1 else "is"
    raise InputError(f"{' and '.join(wrong)} {verb} outside {_COUNTY}")


def check_box(*sides: object) -> None:
    """A lon/lat box that overlaps the county, with its sides in order (else InputError)."""
    labels = ("west", "south", "east", "north")
    west, south, east, north = (real_number(n, v) for n, v in zip(labels, sides, strict=True))
    if west > east or south > north:
        side = f"west={west} > east={east}" if west > east else f"south={south} > north={north}"
        raise InputError(f"the box is inverted: {side}")
    c_west, c_south, c_east, c_north = LA_COUNTY_BBOX
    if c_west <= south and north <= c_east and c_south <= west and east <= c_north:
        raise InputError(
            f"the box west={west}, south={south}, east={east}, north={north} looks like lat/lon "
            f"swapped: {_COUNTY} is at lat 34, lon -118"
        )
    for label, value in zip(labels, (west, south, east, north), strict=True):
        limit = 90 if label in ("south", "north") else 180
        if abs(value) > limit:
            what = "latitude" if limit == 90 else "longitude"
            raise InputError(f"{label}={value:g} is no {what} (-{limit}..{limit})")
    if east < c_west or west > c_east or north < c_south or south > c_north:
        raise InputError(
            f"the box west={west}, south={south}, east={east}, north={north} lies outside {_COUNTY}"
        )

"""Period length, the one shared word for time: :class:`Freq` (day, week or month).

A period length arrives as a word at the edge (``--freq W``, ``freq = "week"`` in a settings
file, ``"M"`` in a saved cube) and is parsed once by :meth:`Freq.parse` into a :class:`Freq`.
Everything below reads its properties instead of keeping its own table: the pandas period code
(weeks run Monday to Sunday, ``W-SUN``), the noun and adjective a report writes, the periods in
a year and the ``strftime`` format of a period label. :class:`Freq` is a :class:`str` enum whose
value is the one-letter code, so ``Freq.WEEK == "W"``, it keys a dict as ``"W"`` does and it is
written to files and JSON as ``W``.

>>> Freq.parse("week"), Freq.parse("W").word, Freq.parse("m").pandas_code
(<Freq.WEEK: 'W'>, 'week', 'M')
>>> f"cube_{Freq.DAY}.parquet"
'cube_D.parquet'
"""

from __future__ import annotations

from enum import StrEnum

import pandas as pd

from geo_crime.core.errors import DataError

__all__ = ["Freq"]


class Freq(StrEnum):
    """A period length: ``D`` (day), ``W`` (Monday-to-Sunday week) or ``M`` (calendar month)."""

    DAY = "D"
    WEEK = "W"
    MONTH = "M"

    @classmethod
    def parse(cls, value: object) -> Freq:
        """The period length a word names, by its first letter (``"W"``, ``"week"``,
        ``"weekly"``); one :class:`~geo_crime.core.errors.DataError` for anything else.

        >>> Freq.parse("daily")
        <Freq.DAY: 'D'>
        >>> Freq.parse("hour")
        Traceback (most recent call last):
        geo_crime.core.errors.DataError: unknown period 'hour': use D (day), W (week) or M (month)
        """
        if isinstance(value, cls):
            return value
        code = str(value).strip().upper()[:1]
        try:
            return cls(code)
        except ValueError:
            raise DataError(
                f"unknown period {value!r}: use D (day), W (week) or M (month)"
            ) from None

    @property
    def word(self) -> str:
        """The noun: ``day``, ``week`` or ``month``."""
        return {"D": "day", "W": "week", "M": "month"}[self.value]

    @property
    def adjective(self) -> str:
        """``daily``, ``weekly`` or ``monthly``."""
        return {"D": "daily", "W": "weekly", "M": "monthly"}[self.value]

    @property
    def pandas_code(self) -> str:
        """The pandas period code (weeks end on Sunday: ``W-SUN``)."""
        return {"D": "D", "W": "W-SUN", "M": "M"}[self.value]

    @property
    def per_year(self) -> int:
        """Whole periods in a year: 364 days, 52 weeks, 12 months (a season's lag)."""
        return {"D": 364, "W": 52, "M": 12}[self.value]

    @property
    def label_format(self) -> str:
        """The ``strftime`` format of a period's label (a month by its month, else its first
        day)."""
        return "%Y-%m" if self is Freq.MONTH else "%Y-%m-%d"

    def start(self, timestamps: pd.Series) -> pd.Series:
        """The first instant of the period holding each time."""
        return timestamps.dt.to_period(self.pandas_code).dt.start_time

    def range(self, first: object, last: object) -> pd.DatetimeIndex:
        """The starts of every period from the one holding ``first`` to the one holding
        ``last``."""
        return pd.period_range(first, last, freq=self.pandas_code).start_time

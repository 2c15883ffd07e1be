"""The unit specification, the one shared word for space: :class:`UnitSpec`.

A unit type arrives as a word at the edge (``--unit h3:8``, ``units = ["rd", "zones.gpkg"]`` in
a settings file) and is parsed once by :meth:`UnitSpec.parse`:

* ``h3`` or ``h3:<5-10>``: H3 cells (resolution 8 when none is given);
* ``rd`` (or ``rds``): LAPD reporting districts;
* ``division`` (or ``divisions``): the 21 LAPD divisions;
* anything else: the path of a polygon layer, ``~`` expanded, which must be a file.

So a polygon file named ``rd_zones.gpkg`` is a polygon layer, not reporting districts, and
``~/zones.gpkg`` is found wherever it is checked.

>>> UnitSpec.parse("h3:9").resolution, UnitSpec.parse("h3").label, UnitSpec.parse("rd").kind
(9, 'h3', <UnitKind.RD: 'rd'>)
>>> UnitSpec.parse("h3:12")  # doctest: +ELLIPSIS
Traceback (most recent call last):
geo_crime.core.errors.ConfigError: unknown unit 'h3:12': use h3:<5-10>, rd, division or the path ...
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from geo_crime.core.errors import ConfigError

__all__ = ["H3_RESOLUTIONS", "UnitKind", "UnitSpec", "unit_label"]

#: The H3 resolutions a unit may use (about 0.1 to 250 km² a cell).
H3_RESOLUTIONS = range(5, 11)


class UnitKind(StrEnum):
    """What kind of unit a specification names."""

    H3 = "h3"
    RD = "rd"
    DIVISION = "division"
    POLYGONS = "polygons"


_ALIASES = {"rds": UnitKind.RD, "divisions": UnitKind.DIVISION}


@dataclass(frozen=True)
class UnitSpec:
    """A parsed unit specification.

    Attributes
    ----------
    text
        The specification as given (it keys the run summary and names files).
    kind
        :class:`UnitKind`.
    resolution
        The H3 resolution (H3 only; 8 when the text gives none).
    path
        The polygon layer (``~`` expanded; polygon layers only).
    """

    text: str
    kind: UnitKind
    resolution: int | None = None
    path: Path | None = None

    @classmethod
    def parse(cls, value: str | UnitSpec | Path) -> UnitSpec:
        """The specification ``value`` names, or one :class:`~geo_crime.core.errors.ConfigError`
        naming it and what is allowed."""
        if isinstance(value, UnitSpec):
            return value
        text = str(value)
        kind, colon, arg = text.partition(":")
        kind = kind.strip().lower()
        if kind == UnitKind.H3:
            if not colon and not arg:
                return cls(text, UnitKind.H3, 8)
            if not arg.strip():
                return cls(text, UnitKind.H3, 8)
            if arg.strip().isdigit() and int(arg) in H3_RESOLUTIONS:
                return cls(text, UnitKind.H3, int(arg))
        elif kind in (UnitKind.RD, UnitKind.DIVISION, *_ALIASES) and not colon:
            return cls(text, _ALIASES.get(kind, UnitKind(kind)))
        else:
            path = Path(text).expanduser()
            if path.is_file():
                return cls(text, UnitKind.POLYGONS, path=path)
        raise ConfigError(
            f"unknown unit {text!r}: use h3:<5-10>, rd, division or the path of a polygon file"
        )

    @classmethod
    def is_valid(cls, value: object) -> bool:
        """Whether ``value`` is a unit specification (for settings checks)."""
        if not isinstance(value, str | UnitSpec | Path):
            return False
        try:
            cls.parse(value)
        except ConfigError:
            return False
        return True

    @property
    def label(self) -> str:
        """A file-name label (:func:`unit_label`)."""
        return unit_label(self.text)

    @property
    def canonical(self) -> str:
        """One spelling per unit type: ``h3`` is ``h3:8``, ``rds`` is ``rd``, ``divisions`` is
        ``division``; a polygon layer is its text."""
        if self.kind is UnitKind.H3:
            return f"h3:{self.resolution}"
        return self.text if self.kind is UnitKind.POLYGONS else str(self.kind)

    def __str__(self) -> str:
        return self.text


def unit_label(text: str | UnitSpec) -> str:
    """A file-name label for a unit specification, checked or not: ``h3:8`` -> ``h38``, a
    polygon file -> its stem; only letters, digits, ``_`` and ``-`` (a label never names a
    path).

    >>> unit_label("h3:8"), unit_label("/tmp/a b/../my layer.geojson")
    ('h38', 'my_layer')
    """
    text = str(text)
    kind = text.partition(":")[0].strip().lower()
    named = kind in (*UnitKind, *_ALIASES) and kind != UnitKind.POLYGONS
    label = text.replace(":", "") if named else Path(text).stem
    return re.sub(r"[^A-Za-z0-9_-]", "_", label)[:64] or "units"

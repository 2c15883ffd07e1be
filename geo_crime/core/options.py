"""The words a user chooses from at the edge, each parsed once into an enum.

- :class:`EngineKind`: where incident rows are read (``memory`` or ``dask``);
- :class:`Tiles`: the web tiles under a map's vector base map;
- :class:`CountUnit`: what a row of loaded incidents stands for.

:func:`word_parser` turns a word into its member, or into the one error naming the option.
The period length has its own module (:mod:`geo_crime.core.periods`). Each enum is a
:class:`str` enum: a member equals, hashes and is written as its word.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum, StrEnum

from geo_crime.core.errors import ConfigError

__all__ = ["CountUnit", "EngineKind", "Tiles", "word_parser"]


class EngineKind(StrEnum):
    """Where incident rows are read: ``memory`` (this process) or ``dask`` (a cluster)."""

    MEMORY = "memory"
    DASK = "dask"


class Tiles(StrEnum):
    """Web tiles under a map's vector base map: ``none`` (no request leaves the page), ``carto``
    or ``osm`` (the default; offline, the map falls back to its vector base map)."""

    NONE = "none"
    CARTO = "carto"
    OSM = "osm"

    @property
    def provider(self) -> str | None:
        """What :func:`geo_crime.publish.maps.build_map` takes: ``None`` for no tiles."""
        return None if self is Tiles.NONE else self.value


class CountUnit(StrEnum):
    """What a row of loaded incidents stands for: ``incidents`` (NIBRS offences collapsed to
    their case, the default) or ``offenses`` (every NIBRS offence row kept)."""

    INCIDENTS = "incidents"
    OFFENSES = "offenses"


def word_parser(enum: type[Enum], option: str) -> Callable[[str], Enum]:
    """The parse of ``option``'s words (case ignored): the member, or one
    :class:`~geo_crime.core.errors.ConfigError` ``--option must be 'a' or 'b', got 'c'``.

    >>> word_parser(EngineKind, "--engine")("DASK")
    <EngineKind.DASK: 'dask'>
    """
    words = [f"'{m.value}'" for m in enum]
    listed = ", ".join(words[:-1]) + " or " + words[-1]

    def parse(value: str) -> Enum:
        try:
            return enum(value.lower())
        except ValueError:
            raise ConfigError(f"{option} must be {listed}, got {value!r}") from None

    return parse

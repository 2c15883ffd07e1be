"""The words a user chooses from at the edge, each parsed once into an enum.

- :class:`EngineKind`: where incident rows are read (``memory`` or ``dask``);
- :class:`Tiles`: the web tiles under a map's vector base map;
- :class:`CountUnit`: what a row of loaded incidents stands for.

The period length has its own module (:mod:`geo_crime.core.periods`). Each enum is a
:class:`str` enum: a member equals, hashes and is written as its word.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["CountUnit", "EngineKind", "Tiles"]


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

"""Hatched fills of the map layers: SVG patterns on the map, striped swatches in its legend.

A ``(colour, hatched)`` style (:data:`geo_crime.publish.style.EMERGING_STYLES`,
:data:`geo_crime.publish.style.NOT_FORECAST_STYLE`) fills a unit with its colour, or with the colour
hatched white: an SVG pattern (:func:`hatch_id`, :func:`hatch_patterns`) on the map and a
striped swatch (:func:`swatch_background`) in its legend. The classes and colours themselves
are in :mod:`geo_crime.publish.style`, shared with the static figures.
"""

from __future__ import annotations


def hatch_id(colour: str) -> str:
    """Id of the SVG pattern hatching ``colour`` (a ``#rrggbb`` hex colour) with white."""
    return f"gc-hatch-{colour.lstrip('#').lower()}"


def fill_of(style: tuple[str, bool]) -> str:
    """The SVG fill of a ``(colour, hatched)`` style: the colour or its pattern."""
    colour, hatched = style
    return f"url(#{hatch_id(colour)})" if hatched else colour


def swatch_background(style: tuple[str, bool]) -> str:
    """The CSS background of a legend swatch of a ``(colour, hatched)`` style."""
    colour, hatched = style
    if not hatched:
        return colour
    return f"repeating-linear-gradient(45deg, {colour} 0 3px, #ffffff 3px 5px)"


def hatch_patterns(colours: list[str]) -> str:
    """An invisible ``<svg>`` defining a hatch pattern per colour (see :func:`hatch_id`)."""
    patterns = "".join(
        f'<pattern id="{hatch_id(c)}" patternUnits="userSpaceOnUse" width="6" height="6" '
        f'patternTransform="rotate(45)"><rect width="6" height="6" fill="{c}"/>'
        f'<rect x="4" width="2" height="6" fill="#ffffff"/></pattern>'
        for c in sorted(set(colours))
    )
    return (
        '<svg width="0" height="0" style="position:absolute" aria-hidden="true">'
        f"<defs>{patterns}</defs></svg>"
    )

"""Where a map's Leaflet comes from: inlined for offline maps, from a CDN otherwise.

folium pages load Leaflet, jQuery, Bootstrap and Font Awesome from CDNs. :func:`_set_assets`
keeps Leaflet only: an online map loads it from jsDelivr (version :data:`LEAFLET_VERSION`); an
offline map inlines the copy vendored in ``geo_crime/assets/leaflet`` (:data:`ASSETS_DIR`,
BSD-2-Clause) with its images as data URIs (:func:`_inline_leaflet`) and drops the tile layer.
:func:`external_references` lists what a page still fetches from the network: an offline map
has nothing there.
"""

from __future__ import annotations

import base64
import re
from pathlib import Path

import folium
from branca.element import Element

LEAFLET_VERSION = "1.9.4"
"""Version of the vendored Leaflet (also the CDN version of online maps)."""

ASSETS_DIR = Path(__file__).parents[2] / "assets" / "leaflet"
"""Vendored Leaflet files (``leaflet.js``, ``leaflet.css``, ``images/``, ``LICENSE``)."""

_LEAFLET_CDN_JS = f"https://cdn.jsdelivr.net/npm/leaflet@{LEAFLET_VERSION}/dist/leaflet.js"
_LEAFLET_CDN_CSS = f"https://cdn.jsdelivr.net/npm/leaflet@{LEAFLET_VERSION}/dist/leaflet.css"

_SOURCE_MAP = re.compile(r"^//# sourceMappingURL=.*$", re.MULTILINE)
_CSS_URL = re.compile(r"url\((images/[A-Za-z0-9_.-]+\.png)\)")


def _inline_leaflet() -> str:
    """``<style>`` and ``<script>`` elements holding the vendored Leaflet."""
    js = _SOURCE_MAP.sub("", (ASSETS_DIR / "leaflet.js").read_text(encoding="utf-8"))
    css = (ASSETS_DIR / "leaflet.css").read_text(encoding="utf-8")

    def data_uri(match: re.Match) -> str:
        data = base64.b64encode((ASSETS_DIR / match.group(1)).read_bytes()).decode("ascii")
        return f"url(data:image/png;base64,{data})"

    css = _CSS_URL.sub(data_uri, css)
    js = js.replace("</script", "<\\/script")
    css = css.replace("</style", "<\\/style")
    return (
        f"<style>/* Leaflet {LEAFLET_VERSION} (BSD-2-Clause) */\n{css}</style>\n"
        f"<script>/* Leaflet {LEAFLET_VERSION} (BSD-2-Clause, (c) Volodymyr Agafonkin) */\n"
        f"{js}</script>\n"
    )


def _set_assets(m: folium.Map, *, offline: bool) -> None:
    """Use only Leaflet: inlined when offline, from the CDN otherwise."""
    root = m.get_root()
    for name in ("leaflet", "jquery", "bootstrap", "awesome_markers"):
        root.header._children.pop(name, None)
    for name in (
        "leaflet_css",
        "bootstrap_css",
        "glyphicons_css",
        "awesome_markers_font_css",
        "awesome_markers_css",
        "awesome_rotate_css",
    ):
        root.header._children.pop(name, None)
    if offline:
        m.default_js = []
        m.default_css = []
        root.header.add_child(Element(_inline_leaflet()), name="geo_crime_leaflet", index=0)
        for key, child in list(m._children.items()):
            if isinstance(child, folium.TileLayer):
                del m._children[key]
    else:
        m.default_js = [("leaflet", _LEAFLET_CDN_JS)]
        m.default_css = [("leaflet_css", _LEAFLET_CDN_CSS)]
        root.header._children.pop("geo_crime_leaflet", None)


_EXTERNAL = re.compile(
    r"""<(?:script|link|img|iframe)\b[^>]*\b(?:src|href)\s*=\s*["']?\s*(?:https?:)?//"""
    r"""|url\(\s*["']?\s*(?:https?:)?//|@import""",
    re.IGNORECASE,
)


def external_references(text: str) -> list[str]:
    """Network references in an HTML page: ``<script src>``, ``<link href>``, ``<img src>``,
    ``<iframe src>`` pointing to ``http(s)://`` or ``//``, CSS ``url(http...)`` and
    ``@import``. An offline map has none."""
    return [m.group(0) for m in _EXTERNAL.finditer(text)]

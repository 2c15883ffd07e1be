"""Markdown for reports: escaping of untrusted text, tables, and a self-contained HTML page.

Every value from the data (unit ids, place names, file names, error messages) goes through
:func:`md_text` or :func:`md_code` before it enters a report, so no content can open a link, an
image, raw HTML or a table cell.
"""

from __future__ import annotations

import base64
import html
import io
import re
from collections.abc import Iterable
from pathlib import Path

import pandas as pd
from markdown_it import MarkdownIt
from PIL import Image


def md_code(value: object) -> str:
    """``value`` as a Markdown code span that no content can close (CommonMark: the fence is
    one backtick longer than the longest run inside), on one line."""
    text = " ".join(str(value).split())
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") or not text else ""
    return f"{fence}{pad}{text}{pad}{fence}"


_MD_SPECIAL = re.compile(r"([\\`\[\]!|<>&])")


def md_text(value: object) -> str:
    """``value`` as literal Markdown text, on one line: the characters that could open a link,
    an image, a code span, raw HTML or a table cell are backslash-escaped (emphasis and list
    markers are left alone: they cannot inject anything and escaping them clutters the text)."""
    return _MD_SPECIAL.sub(r"\\\1", " ".join(str(value).split()))


def markdown_table(frame: pd.DataFrame, *, floatfmt: str = "{:,.2f}") -> str:
    """A plain GitHub-flavoured Markdown table (no extra dependency)."""

    def cell(value: object) -> str:
        if isinstance(value, float):
            return "" if pd.isna(value) else floatfmt.format(value)
        if isinstance(value, int):
            return f"{value:,}"
        return md_text(value)

    header = "| " + " | ".join(str(c) for c in frame.columns) + " |"
    rule = "| " + " | ".join("---" for _ in frame.columns) + " |"
    rows = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *rows])


_HTML_STYLE = """
body { font-family: system-ui, -apple-system, 'Segoe UI', sans-serif; max-width: 60rem;
       margin: 2rem auto; padding: 0 1rem; line-height: 1.5; color: #222; }
table { border-collapse: collapse; margin: 1rem 0; font-size: 0.9rem; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.5rem; text-align: left; }
th { background: #f3f3f3; }
img { max-width: 100%; border: 1px solid #ddd; }
code { background: #f6f6f6; padding: 0 0.2rem; }
h2 { border-bottom: 1px solid #ddd; padding-bottom: 0.2rem; margin-top: 2.5rem; }
"""


def heading_anchor(title: str) -> str:
    """The HTML anchor of a report heading: lower case, punctuation dropped, spaces as hyphens.

    Parameters
    ----------
    title : str
        The heading's text (Markdown code marks are dropped too).

    Returns
    -------
    str
        E.g. ``"Units h3:8"`` -> ``"units-h38"``.
    """
    text = re.sub(r"[^\w\- ]", "", title.lower().replace("`", ""))
    return re.sub(r"\s+", "-", text.strip())


def unique_anchor(anchor: str, seen: dict[str, int]) -> str:
    """``anchor``, or ``anchor-2``, ``anchor-3`` ... when it was seen before (``seen`` is
    updated): two studies' ``Units rd`` headings get distinct anchors, in document order."""
    count = seen.get(anchor, 0) + 1
    seen[anchor] = count
    return anchor if count == 1 else f"{anchor}-{count}"


def compact_png(path: str | Path) -> bytes:
    """A PNG re-encoded with a 256-colour palette (no dithering), for embedding in a report.

    Figures are flat colours and anti-aliased edges: the palette keeps every colour that covers
    a visible area exactly (class colours stay the legend's colours) and makes the file about a
    third as large. Transparent pixels are drawn on white, as the report page shows them. The
    original is returned when re-encoding fails or does not help.

    Parameters
    ----------
    path : path-like
        A PNG file.

    Returns
    -------
    bytes
        PNG bytes.
    """
    raw = Path(path).read_bytes()
    try:
        with Image.open(io.BytesIO(raw)) as image:
            rgba = image.convert("RGBA")
            flat = Image.alpha_composite(Image.new("RGBA", rgba.size, "white"), rgba)
            palette = flat.convert("RGB").quantize(
                colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE
            )
            buffer = io.BytesIO()
            palette.save(buffer, "PNG", optimize=True)
    except (OSError, ValueError):
        return raw
    packed = buffer.getvalue()
    return packed if len(packed) < len(raw) else raw


def markdown_to_html(
    text: str,
    *,
    base: Path,
    title: str = "geo_crime report",
    images: Iterable[Path] | None = None,
) -> str:
    """Render the Markdown report as one self-contained HTML page (figures inlined as data URIs).

    Parameters
    ----------
    text
        The Markdown report.
    base
        Folder that relative image paths in the report are resolved against.
    title
        The page title.
    images
        The only files that may be inlined (the figures the run wrote); any other image
        reference is dropped, so text from the data can never embed a local file. ``None``
        allows PNG files inside ``base``.

    Returns
    -------
    str
        HTML with no external references.
    """
    renderer = MarkdownIt("commonmark", {"html": False}).enable("table")
    body = renderer.render(text)

    root = Path(base).resolve()
    allowed = None if images is None else {Path(p).resolve() for p in images}

    def inline(match: re.Match) -> str:
        src = html.unescape(match.group(1))
        path = (root / src).resolve()
        permitted = path in allowed if allowed is not None else root in path.parents
        if not permitted or not path.is_file() or path.suffix.lower() != ".png":
            return 'src=""'
        data = base64.b64encode(compact_png(path)).decode("ascii")
        return f'src="data:image/png;base64,{data}"'

    body = re.sub(r'src="([^"]*)"', inline, body)

    seen: dict[str, int] = {}

    def anchored(match: re.Match) -> str:
        words = html.unescape(re.sub(r"<[^>]+>", "", match.group(2)))
        anchor = unique_anchor(heading_anchor(words), seen)
        return f'<h{match.group(1)} id="{anchor}">{match.group(2)}</h{match.group(1)}>'

    body = re.sub(r"<h([23])>(.*?)</h\1>", anchored, body)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_HTML_STYLE}</style></head>"
        f"<body>\n{body}\n</body></html>\n"
    )

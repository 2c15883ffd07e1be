"""Trend, hour x weekday and emerging hot spot figures on the real LAPD rows.

Each figure is checked against the data it claims to draw (counts from a plain pandas groupby,
shaded spans from the coverage table, the heat map from the timestamps), and its legends and
colour bars against the data axes: none may cover them.
"""

from __future__ import annotations

import io

import geopandas as gpd
import h3
import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_hex
from matplotlib.dates import date2num
from shapely.geometry import Polygon

import geo_crime.publish.figures.core as figures
from geo_crime.core.errors import DataError
from geo_crime.ingest import load_incidents
from geo_crime.publish.figures.emerging import emerging_hotspot_figure
from geo_crime.publish.figures.hours import WEEKDAYS, hour_weekday_heatmap, hour_weekday_matrix
from geo_crime.publish.figures.trends import trend_data, trend_figure
from geo_crime.publish.maps import NO_DATA_COLOUR, SUPPRESSED_COLOUR
from geo_crime.publish.privacy import public_tables, suppressed_units
from geo_crime.record.coverage import check_coverage
from geo_crime.stats.emerging import (
    CATEGORIES,
    CATEGORY_COLOURS,
    CATEGORY_STYLES,
    emerging_hotspots,
)
from tests.fakes.shared_data import REDUCED_DIR, WESTLA, crime_file

DPI = 40  # the tests look at layout and data, not pixels: keep rendering fast


@pytest.fixture(scope="module")
def reduced(tmp_path_factory) -> pd.DataFrame:
    """The 2024 rows of all 21 divisions (reduced schema: dates only, no time of day)."""
    frame, _ = load_incidents(crime_file(REDUCED_DIR), cache=tmp_path_factory.mktemp("cache"))
    return frame


@pytest.fixture(scope="module")
def westla(tmp_path_factory) -> pd.DataFrame:
    """The West LA 2020-21 rows (original fields: date and time of day)."""
    frame, _ = load_incidents(crime_file(WESTLA), cache=tmp_path_factory.mktemp("cache"))
    return frame


@pytest.fixture(scope="module")
def weekly_coverage(reduced):
    return check_coverage(reduced, freq="W")


@pytest.fixture
def drawn(monkeypatch) -> list:
    """The figures written during a test (``figures.save_figure`` is wrapped, not replaced)."""
    figs: list = []
    save = figures.save_figure

    def capture(fig, path, dpi, **kwargs):
        figs.append(fig)
        return save(fig, path, dpi, **kwargs)

    monkeypatch.setattr(figures, "save_figure", capture)
    return figs


def _assert_nothing_covers_data(fig) -> None:
    """No legend and no colour bar overlaps an axes that holds data."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    colourbars = {ax for ax in fig.axes if getattr(ax, "_colorbar", None) is not None}
    data_axes = [ax for ax in fig.axes if ax.has_data() and ax not in colourbars]
    assert data_axes
    legends = [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
    assert legends or colourbars
    for legend in legends:
        box = legend.get_window_extent(renderer)
        for ax in data_axes:
            assert not box.overlaps(ax.get_window_extent(renderer)), ax.get_title()
    for bar in colourbars:
        for ax in data_axes:
            assert not bar.get_window_extent(renderer).overlaps(ax.get_window_extent(renderer))


# ------------------------------------------------------------------ trend


def test_trend_counts_are_the_groupby_of_the_incidents(reduced, weekly_coverage):
    data = trend_data(reduced, weekly_coverage, freq="W")
    week = reduced["occurred_at"].dt.to_period("W-SUN").dt.start_time
    counts = reduced.groupby(week).size()
    severity = reduced.groupby(week)["severity"].sum()
    assert data.city["count"].to_dict() == counts.to_dict()
    assert np.allclose(data.city["severity"], severity.reindex(data.city.index))
    assert data.city["count"].sum() == len(reduced) == 105_750
    assert data.city.loc[pd.Timestamp("2024-01-01"), "count"] == counts[pd.Timestamp("2024-01-01")]
    by_area = reduced.groupby([reduced["area"].astype(int), week]).size()
    table = data.areas.set_index(["area", "period"])["count"]
    assert table[table > 0].to_dict() == by_area.to_dict()
    assert len(data.names) == 21 and data.names[8] == "West LA"
    # the data ends on Monday 2024-09-30: that week is partial, not plotted, not a "drop"
    assert data.last_day == pd.Timestamp("2024-09-30")
    assert data.city.index[data.city["partial"]].tolist() == [pd.Timestamp("2024-09-30")]
    assert not data.city.loc[pd.Timestamp("2024-09-30"), "shown"]


def _expand(spans: pd.DataFrame, kinds: tuple[str, ...]) -> set[pd.Timestamp]:
    weeks: set[pd.Timestamp] = set()
    for span in spans.loc[spans["kind"].isin(kinds)].itertuples():
        weeks.update(pd.date_range(span.start, span.end, freq="7D", inclusive="left"))
    return weeks


def test_trend_shading_is_exactly_the_incomplete_periods(reduced, weekly_coverage, tmp_path, drawn):
    data = trend_data(reduced, weekly_coverage, freq="W")
    combined = weekly_coverage.combined()
    bad = combined.loc[~combined["complete"]]
    city = data.spans.loc[data.spans["scope"].eq("city")]
    # city-wide: the weeks in which any division is not complete
    assert _expand(city, ("incomplete", "partial")) == set(bad["period"])
    assert _expand(city, ("partial",)) == set(bad.loc[bad["status"].eq("partial"), "period"])
    assert min(_expand(city, ("incomplete",))) == pd.Timestamp("2024-03-04")  # the RMS change
    for area in range(1, 22):
        mine = data.spans.loc[data.spans["area"].eq(area)]
        assert _expand(mine, ("incomplete", "partial")) == set(
            bad.loc[bad["area"].eq(area), "period"]
        ), area
    # and the figure draws those spans: one shaded patch per city span on each city panel
    path = trend_figure(reduced, weekly_coverage, tmp_path / "trend.png", dpi=DPI)
    assert path.stat().st_size > 10_000
    fig = drawn[-1]
    count_ax = fig.axes[0]
    assert count_ax.get_ylabel() == "incidents per week"
    assert fig.axes[1].get_ylabel() == "severity points per week"
    drawn_spans = sorted(
        (round(p.get_x(), 6), round(p.get_x() + p.get_width(), 6)) for p in count_ax.patches
    )
    expected = sorted(
        (round(date2num(s.start), 6), round(date2num(s.end), 6)) for s in city.itertuples()
    )
    assert drawn_spans == expected
    # the plotted line leaves the partial week out and shows every other week's count
    line = count_ax.get_lines()[0].get_ydata()
    assert np.isnan(line[-1])
    assert np.array_equal(line[:-1], data.city["count"].to_numpy(dtype=float)[:-1])
    assert "2024-01-01 to 2024-09-30" in fig.get_suptitle()
    assert "not completely recorded" in count_ax.get_legend().get_texts()[2].get_text()
    assert "week of 2024-09-30" in fig.get_supxlabel()
    # 2 city panels + 21 division panels (count and severity lines in each)
    panels = [ax for ax in fig.axes if ax.has_data()]
    assert len(panels) == 2 + 21
    assert [ax.get_title() for ax in panels[2:]][7] == "8 West LA"
    assert all(len(ax.get_lines()) == 2 for ax in panels[2:])
    _assert_nothing_covers_data(fig)


def test_trend_single_division_partial_edge_weeks(westla, tmp_path, drawn):
    coverage = check_coverage(westla, freq="W")
    data = trend_data(westla, coverage)
    # Sunday 2020-03-15 to Saturday 2021-07-31: both edge weeks are partial and left out
    partial = data.city.index[data.city["partial"]].tolist()
    assert partial == [pd.Timestamp("2020-03-09"), pd.Timestamp("2021-07-26")]
    assert data.city.loc[pd.Timestamp("2020-03-09"), "count"] == int(
        (westla["occurred_at"] < "2020-03-16").sum()
    )
    assert list(data.names) == [8]
    trend_figure(westla, coverage, tmp_path / "westla.png", dpi=DPI)
    fig = drawn[-1]
    assert "West LA division" in fig.get_suptitle()
    assert sum(ax.has_data() for ax in fig.axes) == 2  # no small multiples for one division
    _assert_nothing_covers_data(fig)
    with pytest.raises(DataError, match="per 'M'"):
        trend_data(westla, check_coverage(westla, freq="M"), freq="W")


# ------------------------------------------------------------------ hour x weekday


@pytest.mark.filterwarnings("ignore:The behavior of DataFrame concatenation:FutureWarning")
def test_heatmap_counts_and_placeholders(westla, reduced, tmp_path, drawn):
    mixed = pd.concat([westla, reduced.iloc[:500]], ignore_index=True)
    data = hour_weekday_matrix(mixed)
    assert data.matrix.shape == (7, 24)
    assert list(data.matrix.index) == list(WEEKDAYS)
    assert int(data.matrix.to_numpy().sum()) == int(mixed["time_known"].sum()) == len(westla)
    assert data.n_unknown == 500  # the 2024 rows carry no time of day
    stamps = westla["occurred_at"]
    monday_noon = ((stamps.dt.weekday == 0) & (stamps.dt.hour == 12)).sum()
    assert data.matrix.loc["Monday", 12] == monday_noon
    at_noon = int((stamps.dt.strftime("%H:%M") == "12:00").sum())
    assert data.placeholders.loc["12:00", "count"] == at_noon == 582
    assert data.placeholders.loc["12:00", "suspected"]  # far above the other full hours
    assert data.placeholders.loc["00:00", "count"] == 0  # midnight is written 00:01
    hour_weekday_heatmap(mixed, tmp_path / "heat.png", dpi=DPI)
    fig = drawn[-1]
    heat = fig.axes[0]
    assert np.array_equal(heat.get_images()[0].get_array(), data.matrix.to_numpy())
    assert heat.get_images()[0].colorbar.ax.get_ylabel() == "incidents"
    assert [t.get_text() for t in heat.get_yticklabels()] == list(WEEKDAYS)
    assert heat.get_xticklabels()[12].get_text() == "12*"
    caption = fig.get_supxlabel()
    assert "582 incidents" in caption and "500 incidents without one" in caption
    _assert_nothing_covers_data(fig)
    with pytest.raises(DataError, match="time of day"):
        hour_weekday_heatmap(reduced.iloc[:50], tmp_path / "none.png")
    assert not (tmp_path / "none.png").exists()


# ------------------------------------------------------------------ emerging hot spots


@pytest.fixture(scope="module")
def westla_emerging(westla):
    """Emerging hot spots of real monthly counts per H3 res-8 cell (West LA, 2020-04..2021-07)."""
    rows = westla.loc[westla["lat"].notna() & (westla["occurred_at"] >= "2020-04-01")]
    cells = [h3.latlng_to_cell(a, b, 8) for a, b in zip(rows["lat"], rows["lon"], strict=True)]
    month = rows["occurred_at"].dt.to_period("M").dt.start_time.to_numpy()
    cube = pd.crosstab(np.array(cells), month)
    ids = cube.index.to_numpy()
    geoms = [Polygon([(lng, lat) for lat, lng in h3.cell_to_boundary(c)]) for c in ids]
    units = gpd.GeoDataFrame({"unit_id": ids}, geometry=geoms, crs="EPSG:4326")
    result = emerging_hotspots(units, cube.to_numpy(float), pd.DatetimeIndex(cube.columns))
    totals = pd.Series(cube.sum(axis=1).to_numpy(), index=ids)
    return units, result, totals


def _colours(collection) -> list[str]:
    """One fill per drawn polygon (a single colour is broadcast to every path)."""
    colours = [to_hex(c) for c in collection.get_facecolor()]
    return colours * len(collection.get_paths()) if len(colours) == 1 else colours


def _fills(ax) -> tuple[list[str], list[str]]:
    """Fill of every unit, and of the suppressed overlay drawn on top (when there is one)."""
    base, *overlay = ax.collections
    return _colours(base), _colours(overlay[0]) if overlay else []


def test_emerging_figure_hides_suppressed_units(westla_emerging, tmp_path, drawn):
    units, result, totals = westla_emerging
    table = result.table
    hidden = suppressed_units(totals, 10)
    # also hide the only Consecutive Hot Spot: its category must then vanish from the legend
    only = table.loc[table["category"].eq("Consecutive Hot Spot"), "unit_id"]
    assert len(only) == 1
    hidden[only.iloc[0]] = True
    assert hidden.sum() > 20
    emerging_hotspot_figure(units, result, tmp_path / "emerging.png", suppressed=hidden, dpi=DPI)
    fig = drawn[-1]
    ax = fig.axes[0]
    fill, overlay = _fills(ax)
    mask = hidden.reindex(units["unit_id"]).to_numpy(dtype=bool)
    codes = table["code"].to_numpy()
    # suppressed units: no category colour underneath, grey hatched on top
    assert all(c == to_hex(NO_DATA_COLOUR) for c in np.array(fill)[mask])
    assert overlay == [to_hex(SUPPRESSED_COLOUR)] * int(mask.sum())
    assert [c for c, m in zip(fill, mask, strict=True) if not m] == [
        to_hex(CATEGORY_COLOURS[int(k)]) for k in codes[~mask]
    ]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    shown = {CATEGORIES[int(k)] for k in codes[~mask]}
    assert labels == [CATEGORIES[k] for k in sorted(CATEGORIES) if CATEGORIES[k] in shown] + [
        "suppressed"
    ]
    assert "Consecutive Hot Spot" not in labels
    assert "16 periods" in ax.get_title()
    assert ax.get_legend().get_title().get_text() == "Emerging hot spot category (16 periods)"
    # the fading kinds share their counterpart's colour, hatched: no two categories look alike
    hatched = {CATEGORY_STYLES[int(k)][1] for k in codes[~mask]}
    legend = {
        t.get_text(): p
        for t, p in zip(ax.get_legend().get_texts(), ax.get_legend().get_patches(), strict=True)
    }
    styles = {(to_hex(p.get_facecolor()), bool(p.get_hatch())) for p in legend.values()}
    assert len(styles) == len(legend)  # every entry distinct by colour or hatching
    for label, patch in legend.items():
        if label != "suppressed":
            code = next(c for c, name in CATEGORIES.items() if name == label)
            assert bool(patch.get_hatch()) == CATEGORY_STYLES[code][1]
    if True in hatched:  # the hatched units are drawn hatched over their fill
        assert any(c.get_hatch() == "////" for c in ax.collections)
    _assert_nothing_covers_data(fig)
    # the public table (categories blanked, a suppressed column) draws the same map
    public = public_tables({"emerging": table}, hidden)["emerging"]
    emerging_hotspot_figure(units, public, tmp_path / "public.png", dpi=DPI)
    assert _fills(drawn[-1].axes[0]) == (fill, overlay)


# ------------------------------------------------------------------ severity choropleth


def test_severity_choropleth_legend_beside_map(westla_h3_units, tmp_path, drawn):
    units, y = westla_h3_units
    units = units.assign(count=y.astype(int), severity=y * 2.0)
    units["suppressed"] = False
    busiest = int(np.argmax(y))
    units.loc[busiest, "suppressed"] = True  # secondary suppression decided upstream
    title = "Severity points, West LA H3 res-8 cells, 2020-03-15 to 2021-07-31"
    figures.severity_choropleth(units, tmp_path / "sev.png", title=title, dpi=DPI)
    fig = drawn[-1]
    ax = fig.axes[0]
    _assert_nothing_covers_data(fig)
    _, overlay = _fills(ax)
    assert len(overlay) == int((y < 3).sum()) + 1  # the small units and the flagged one
    assert ax.get_legend().get_title().get_text() == "Classes (quantiles)"


# ------------------------------------------------------------------ embedding in the report


def test_a_figure_embedded_in_the_report_keeps_its_colours_and_shrinks(reduced, tmp_path):
    """The report inlines figures with a 256-colour palette: every colour covering a visible
    area (0.05% of the pixels or more) is exactly the original, and the file is smaller."""
    from PIL import Image

    from geo_crime.report.markdown import compact_png

    path = trend_figure(reduced, check_coverage(reduced, freq="W"), tmp_path / "trend.png")
    packed = compact_png(path)
    assert len(packed) < 0.7 * path.stat().st_size
    original = np.asarray(Image.open(path).convert("RGB")).reshape(-1, 3)
    embedded = np.asarray(Image.open(io.BytesIO(packed)).convert("RGB")).reshape(-1, 3)
    assert embedded.shape == original.shape
    colours, inverse, counts = np.unique(original, axis=0, return_inverse=True, return_counts=True)
    visible = np.flatnonzero(counts >= 0.0005 * len(original))
    assert len(visible) >= 5  # background, the bars, the shading, the lines, the text
    for colour in visible:
        pixels = inverse.ravel() == colour
        assert (embedded[pixels] == colours[colour]).all(), colours[colour]
    # not a PNG: embedded as it is
    fake = tmp_path / "fake.png"
    fake.write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    assert compact_png(fake) == fake.read_bytes()


def test_the_rest_of_a_placeholder_hour_is_never_a_count_below_k(westla, tmp_path, drawn):
    """The caption's '12:00 exactly' count subtracted from the figure's hour-12 cells gives the
    incidents at 12:01-12:59: when that is below k, the 12:00 count is not printed."""
    timed = westla[westla["time_known"].astype(bool)]
    stamps = timed["occurred_at"]
    noon = timed[stamps.dt.strftime("%H:%M") == "12:00"]
    later = timed[(stamps.dt.hour == 12) & (stamps.dt.minute > 0)]
    rows = pd.concat([noon, later.iloc[:2]], ignore_index=True)  # 2 incidents at 12:01-12:59
    hour_weekday_heatmap(rows, tmp_path / "noon.png", dpi=DPI, k_anonymity=3)
    caption = drawn[-1].get_supxlabel()
    assert "12:00 exactly: fewer than 3 incidents" in caption
    assert f"{len(noon):,} incidents" not in caption
    rows = pd.concat([noon, later.iloc[:3]], ignore_index=True)  # 3: no longer below k
    hour_weekday_heatmap(rows, tmp_path / "noon3.png", dpi=DPI, k_anonymity=3)
    assert f"12:00 exactly: {len(noon):,} incidents" in drawn[-1].get_supxlabel()

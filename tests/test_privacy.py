"""Suppressed means suppressed: attack every public file of a real run and recover nothing.

The run is the 2020 rows (the head of the export and the West LA record) at reporting district
x month, where about a quarter of the districts have fewer than 3 incidents. A hostile reader
gets everything under ``public/``, the report and the weights (they follow from the published
geometry), and tries three attacks on the suppressed districts: read them off a column, solve
the published hot spot statistics for them, and difference published totals.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyogrio
import pytest
from scipy.optimize import linprog
from typer.testing import CliRunner

from geo_crime.cli import app
from geo_crime.cube.panel import Cube
from geo_crime.publish.privacy import UNIT_ATTRIBUTES, suppressed_units
from geo_crime.stats.weights import build_weights
from tests.fakes.shared_data import IVANCO, WESTLA, crime_file

#: Columns a suppressed unit may still show: what the unit is, not what happened in it.
SHOWN_FOR_SUPPRESSED = {*UNIT_ATTRIBUTES, "id", "suppressed", "n_neighbours", "period"}
SHOWN_FOR_SUPPRESSED |= {"last_complete_period", "data_end"}

#: z thresholds of the ArcGIS confidence bins (two-sided normal p < 0.10, 0.05, 0.01).
BIN_Z = {
    3: (2.5758, np.inf),
    2: (1.96, 2.5758),
    1: (1.645, 1.96),
    0: (-1.645, 1.645),
    -1: (-1.96, -1.645),
    -2: (-2.5758, -1.96),
    -3: (-np.inf, -2.5758),
}


@pytest.fixture(scope="module")
def run_2020(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("disclosure")
    config = folder / "run.toml"
    config.write_text(
        f"""
[run]
inputs = ["{crime_file(IVANCO)}", "{crime_file(WESTLA)}"]
permutations = 99
# the head of the 2020 export is a thin sample of every month (1-5% of the published
# counts): accept it as recorded
coverage_threshold = 0.001

[[study]]
name = "rd2020"
start = "2020-01-01"
end = "2021-01-01"
units = ["rd"]
freq = "M"
"""
    )
    result = CliRunner().invoke(
        app, ["run", "--config", str(config), "--name", "r", "--outputs", str(folder / "out")]
    )
    assert result.exit_code == 0, result.output
    return folder / "out" / "r"


@pytest.fixture(scope="module")
def truth(run_2020) -> pd.DataFrame:
    """What the attacker wants: each district's exact count over the analysis window (the months
    completely recorded for every district: what every public value is computed over), from the
    analysis folder."""
    cube = Cube.load(run_2020 / "analysis/rd2020/cube_rd.parquet").complete_periods()
    return pd.DataFrame(
        {"count": cube.counts.sum(axis=1), "area": cube.units["area"].to_numpy()},
        index=cube.unit_ids.astype(str),
    )


def _public_layers(folder: Path) -> dict[str, pd.DataFrame]:
    """Every public tabular file: GIS layers (three formats) and CSV tables."""
    layers: dict[str, pd.DataFrame] = {}
    for path in sorted((folder / "public").rglob("*")):
        if path.suffix == ".gpkg":
            for name, _ in pyogrio.list_layers(path):
                layers[f"{path.name}:{name}"] = pyogrio.read_dataframe(path, layer=name)
        elif path.suffix in (".geojson", ".parquet"):
            reader = pd.read_parquet if path.suffix == ".parquet" else pyogrio.read_dataframe
            layers[path.name] = reader(path)
        elif path.suffix == ".csv":
            layers[path.name] = pd.read_csv(path, dtype={"unit_id": str})
    return layers


def test_the_run_suppresses_a_third_of_the_districts(run_2020, truth):
    summary = pyogrio.read_dataframe(run_2020 / "public/rd2020/gis/geo_crime_rd.gpkg", "rd_summary")
    hidden = summary.set_index("unit_id")["suppressed"].astype(bool)
    small = truth["count"] < 3
    # over the 10 months completely recorded for every district (February-December 2020)
    assert len(truth) == 1_037 and int(small.sum()) == 337
    assert hidden.loc[small[small].index].all()  # every primary suppression
    assert int(hidden.sum()) == 338  # plus one secondary (single suppressed in a division)


def test_no_public_column_carries_a_suppressed_value(run_2020, truth):
    small = truth.index[truth["count"] < 3]
    positive = truth.index[(truth["count"] > 0) & (truth["count"] < 3)]
    layers = _public_layers(run_2020)
    assert len(layers) >= 15
    for name, table in layers.items():
        if "unit_id" not in table:
            continue
        rows = table[table["unit_id"].astype(str).isin(small)]
        assert len(rows), name
        assert rows["suppressed"].astype(bool).all(), name
        for column in rows.columns:
            if column in SHOWN_FOR_SUPPRESSED:
                continue
            assert rows[column].isna().all(), f"{name}: {column} is not blank"
        # nothing may equal the exact count, whatever its name (n_coordinates once did)
        matched = table.set_index(table["unit_id"].astype(str)).reindex(positive)
        for column in matched.columns:
            if column in ("unit_id", "suppressed") or pd.api.types.is_bool_dtype(matched[column]):
                continue
            values = pd.to_numeric(matched[column], errors="coerce")
            if values.notna().any():
                hits = (values == truth.loc[positive, "count"]).mean()
                assert hits < 0.2, f"{name}: {column} equals the suppressed count for {hits:.0%}"
    # no solvable statistic is published at all
    for name, table in layers.items():
        leaked = {"y", "Gs", "gi_z", "gi_p", "Is", "y_std", "lag_std", "p_value", "final_z"}
        assert not leaked & set(table.columns), name


def test_map_and_report_show_nothing_of_suppressed_units(run_2020, truth):
    small = set(truth.index[truth["count"] < 3])
    html = (run_2020 / "public/rd2020/map_rd.html").read_text(encoding="utf-8")
    features = re.findall(r'"id": "(\d{4})", "properties": (\{[^{}]*\})', html)
    layers_seen = 0
    for unit, props in features:
        shown = json.loads(props)
        if unit in small and "v" in shown:  # unit layers (outline layers carry names only)
            for key in ("n", "s", "r", "v"):
                assert shown[key] == "suppressed", (unit, key, shown[key])
            layers_seen += 1
    assert layers_seen >= 5 * len(small)  # rate, Gi*, LISA, emerging, forecast layers
    report = (run_2020 / "report.md").read_text()
    named = _units_in_report_tables(report)
    assert len(named) >= 30  # rate ranking, Gi* ranking, forecast ranking, division priorities
    assert not named & small


def _units_in_report_tables(report: str) -> set[str]:
    """Unit ids in the report's tables: the ``unit`` and ``top units`` columns."""
    found: set[str] = set()
    columns: list[int] = []
    for line in report.splitlines():
        if not line.startswith("|"):
            columns = []
            continue
        cells = [c.strip() for c in line[1:-1].split("|")]
        if not columns and any(c in ("unit", "top units") for c in cells):
            columns = [i for i, c in enumerate(cells) if c in ("unit", "top units")]
            continue
        for i in columns:
            if i < len(cells):
                found |= {u.strip(" .") for u in cells[i].split(",") if u.strip(" .")}
    return found - {"---"}


def _gi_system(run_2020: Path):
    """The attacker's setting: the weights, the published units' values, and the mean and
    standard deviation of all values (given away here, to make the attack stronger)."""
    full = pd.read_parquet(run_2020 / "analysis/rd2020/gi_rd.parquet")
    cube = Cube.load(run_2020 / "analysis/rd2020/cube_rd.parquet")
    weights = build_weights(cube.units)
    assert list(weights.unit_ids) == full["unit_id"].tolist()
    binary = weights.binary_sparse(include_self=True).toarray()
    y = full["y"].to_numpy(dtype=float)
    n = len(y)
    w_sum = binary.sum(axis=1)
    scale = y.std() * np.sqrt((n * (binary**2).sum(axis=1) - w_sum**2) / (n - 1))
    summary = pyogrio.read_dataframe(run_2020 / "public/rd2020/gis/geo_crime_rd.gpkg", "rd_summary")
    hidden = summary.set_index("unit_id").loc[full["unit_id"], "suppressed"].to_numpy(dtype=bool)
    return full, binary, y, w_sum, scale, hidden


def test_exact_z_scores_would_give_suppressed_values_away(run_2020):
    """The attack works on the analysis tables: this is why no z-score is published."""
    full, binary, y, w_sum, scale, hidden = _gi_system(run_2020)
    z = full["gi_z"].to_numpy(dtype=float)
    shown, secret = np.flatnonzero(~hidden), np.flatnonzero(hidden)
    # published units only: z_i * scale_i = sum_j w_ij y_j - mean * w_i, unknown y_secret, mean
    a = np.hstack([binary[np.ix_(shown, secret)], -w_sum[shown, None]])
    b = z[shown] * scale[shown] - binary[np.ix_(shown, shown)] @ y[shown]
    solution, *_ = np.linalg.lstsq(a, b, rcond=None)
    recovered = np.abs(solution[:-1] - y[secret]) < 1e-6
    assert recovered.mean() > 0.5


def test_published_confidence_bins_do_not_pin_down_suppressed_values(run_2020):
    full, binary, y, w_sum, scale, hidden = _gi_system(run_2020)
    public = pyogrio.read_dataframe(run_2020 / "public/rd2020/gis/geo_crime_rd.gpkg", "rd_gi")
    bins = public.set_index("unit_id").loc[full["unit_id"], "gi_bin"].to_numpy(dtype=float)
    shown, secret = np.flatnonzero(~hidden), np.flatnonzero(hidden)
    rows, bounds = [], []
    mean = y.mean()
    for i in shown:
        low, high = BIN_Z[int(bins[i])]
        row = binary[i, secret] / scale[i]
        known = (binary[i, shown] @ y[shown] - mean * w_sum[i]) / scale[i]
        if np.isfinite(high):
            rows.append(row)
            bounds.append(high - known)
        if np.isfinite(low):
            rows.append(-row)
            bounds.append(known - low)
    a_ub, b_ub = np.array(rows), np.array(bounds)
    a_eq, b_eq = np.ones((1, len(secret))), [len(y) * mean - y[shown].sum()]
    # the attacker also knows each value is at most 2 incidents of severity <= 100 over the
    # 10 complete months: 0 <= y <= 20
    prior = (0.0, 20.0)
    sample = np.random.default_rng(0).choice(len(secret), 25, replace=False)
    widths = []
    for j in sample:
        c = np.zeros(len(secret))
        c[j] = 1.0
        low = linprog(c, a_ub, b_ub, a_eq, b_eq, bounds=prior, method="highs")
        high = linprog(-c, a_ub, b_ub, a_eq, b_eq, bounds=prior, method="highs")
        assert low.status == 0 and high.status == 0  # the truth is feasible
        widths.append(-high.fun - low.fun)
    # every sampled value can still be anything the prior allows
    assert np.median(widths) > 0.9 * (prior[1] - prior[0])


def test_differencing_totals_gives_sums_over_two_or_more_units(run_2020, truth):
    summary = pyogrio.read_dataframe(run_2020 / "public/rd2020/gis/geo_crime_rd.gpkg", "rd_summary")
    published = summary.set_index("unit_id")
    stats = json.loads((run_2020 / "summary.json").read_text())["rd2020"]["units"]["rd"]
    window = {"first": "2020-02-01", "last": "2020-12-01", "periods": 10, "share": 1.0}
    assert stats["window"] == window  # complete for every unit (the default share)
    # the window's total (what an attacker would difference against the published counts)
    hidden_total = int(truth["count"].sum()) - published["count"].sum()
    assert hidden_total == truth.loc[published.index[published["suppressed"]], "count"].sum()
    # ... but it is a sum over many units, and so is every division's
    groups = published.groupby("area")["suppressed"].sum()
    assert ((groups == 0) | (groups >= 2)).all()
    assert published["suppressed"].sum() >= 2


def test_secondary_suppression_covers_every_group():
    counts = pd.Series({"a": 1, "b": 5, "c": 9, "d": 4, "e": 7, "f": 2, "g": 0})
    groups = pd.Series({"a": 1, "b": 1, "c": 1, "d": 2, "e": 2, "f": 3, "g": 3})
    hidden = suppressed_units(counts, 3, groups=groups)
    # division 1 had only "a": "b" (its smallest shown) joins; division 3 has two already
    assert hidden.to_dict() == {
        "a": True,
        "b": True,
        "c": False,
        "d": False,
        "e": False,
        "f": True,
        "g": True,
    }
    assert not suppressed_units(counts, 0).any()

"""The README's ten lines, run as written on the real rows: one window, the default run's Gi*.

The example keeps the weeks the default run's city-wide study analyses (chosen from the weekly
coverage by :func:`geo_crime.study_windows.studies_from_coverage`), so its Gi* must be the one
that run writes, cell for cell; and its answers name their places.
"""

from __future__ import annotations

import ast
import dataclasses
import gzip
import json
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import geo_crime as gc
from geo_crime.study_windows import studies_from_coverage
from tests.fakes.shared_data import REDUCED_DIR, require_data

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_example() -> str:
    """The code block under "Python API in ten lines"."""
    text = README.read_text()
    section = text[text.index("## Python API in ten lines") :]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def raw_2024_rows(start: str, end: str) -> int:
    """Records of the reduced 2024 files dated ``start <= Date < end``, read from the JSON."""
    files = sorted((require_data() / "lapd_crime" / REDUCED_DIR).glob("*.json.gz"))
    assert len(files) == 21
    return sum(
        start <= row["Date"] < end for path in files for row in json.loads(gzip.open(path).read())
    )


@pytest.fixture(scope="module")
def example():
    """The README code run as written: its names, each bare expression's value, its warnings."""
    require_data()
    tree = ast.parse(readme_example())
    names: dict = {}
    shown = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for node in tree.body:
            if isinstance(node, ast.Expr):
                shown.append(eval(compile(ast.Expression(node.value), "README", "eval"), names))
            else:
                exec(compile(ast.Module([node], type_ignores=[]), "README", "exec"), names)
    return names, shown, [str(w.message) for w in caught]


def test_the_example_is_ten_lines_and_builds_its_cube_over_one_window_of_one_source(example):
    code = [line for line in readme_example().splitlines() if line.strip()]
    assert len(code) == 11 and code[0] == "import geo_crime as gc"  # the import and ten lines
    names, _, messages = example
    incidents, cube, coverage = names["incidents"], names["cube"], names["coverage"]
    assert set(incidents["source"]) == {"reduced_2024"}
    assert len(incidents) == raw_2024_rows("2024-01-01", "2024-03-04") == 38_283
    assert (incidents["occurred_at"].min(), incidents["occurred_at"].max()) == (
        pd.Timestamp("2024-01-01"),
        pd.Timestamp("2024-03-03"),
    )
    city = studies_from_coverage(coverage).studies[0]
    assert (city.name, city.start, city.end) == ("citywide_2024", "2024-01-01", "2024-03-04")
    assert list(cube.periods) == list(pd.date_range(city.start, city.end, freq="W-MON"))[:-1]
    assert cube.shape == (1513, 9) and cube.complete.all()
    assert cube.meta["incidents_in_cube"] + cube.meta["incidents_outside_units"] == 38_283
    assert cube.meta["incidents_outside_periods"] == 0
    assert not [m for m in messages if "do not overlap" in m]


def test_the_example_gi_is_the_default_run_city_wide_gi(example, tmp_path):
    """The default run's city-wide study, on H3-8 cells with Gi* only, gives the same Gi*."""
    names, *_ = example
    city = studies_from_coverage(names["coverage"]).studies[0]
    study = dataclasses.replace(city, units=["h3:8"], statistics=["gi"], forecast=False)
    settings = gc.RunSettings(name="readme", outputs=tmp_path, studies=[study])
    result = gc.run_pipeline(settings)
    (path,) = (result.folder / "analysis" / city.name).glob("gi_*.parquet")
    run = pd.read_parquet(path).set_index("unit_id")
    ours = names["gi"].set_index("unit_id")
    assert len(run) == len(ours) == 1513
    run = run.loc[ours.index]
    np.testing.assert_allclose(ours["gi_z"], run["gi_z"], rtol=0, atol=1e-12)
    assert (ours["gi_bin"] == run["gi_bin"]).all()
    summary = json.loads((result.folder / "summary.json").read_text())
    bins = summary[city.name]["units"]["h3:8"]["statistics"]["gi"]["bins"]
    assert ours["gi_label"].value_counts().to_dict() == bins
    assert bins["Hot Spot - 99% Confidence"] == 138


def test_the_example_answers_name_their_places(example):
    names, (robberies, nearest, top), _ = example
    assert len(robberies) == 4
    assert set(robberies["place"]) == {"Downtown (Central)"}
    assert set(robberies["division"]) == {"Central"}
    assert robberies["distance_m"].is_monotonic_increasing
    assert nearest[["unit_id", "place", "division"]].values.tolist() == [
        ["8829a1d757fffff", "Downtown (Central)", "Central"]
    ]
    assert nearest["distance_m"].iloc[0] == 0.0
    assert top.attrs["by"] == "gi_z"
    assert top["place"].tolist() == [
        "Downtown (Central)",
        "Downtown (Central)",
        "Downtown and 1 other (Central)",
        "Westlake (Rampart)",
        "Westlake and 1 other (Rampart)",
    ]
    gi = names["gi"]
    assert top["gi_z"].tolist() == gi["gi_z"].sort_values(ascending=False).iloc[:5].tolist()

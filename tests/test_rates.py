"""Tests of geo_crime.cube.rates on the real data: population interpolation, rates, Empirical
Bayes."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import shapely
from esda.smoothing import Empirical_Bayes, Spatial_Empirical_Bayes
from libpysal.graph import Graph

from geo_crime import units as gu
from geo_crime.core.errors import ConfigError, DataError, InputError
from geo_crime.cube import rates as gr
from tests.fakes.shared_data import require_data as _data_root

TRACTS = "la_county_census_tracts_2020_population__tract_crimes_per_1000.geojson"


@pytest.fixture(scope="module")
def tracts() -> gpd.GeoDataFrame:
    _data_root()
    return gr.load_tracts()


@pytest.fixture(scope="module")
def city_cells(incidents, tracts) -> gpd.GeoDataFrame:
    """H3 res-8 city cells with population and the count of 2024 crimes (Jan-Sep)."""
    units = gr.attach_population(gu.h3_units(8, study_area="city"), tracts=tracts)
    recent = incidents[incidents["source"] == "reduced_2024"]
    ids, _ = gu.assign_units(recent, units)
    units["count"] = ids.value_counts().reindex(units["unit_id"], fill_value=0).to_numpy()
    return units


# --- population -----------------------------------------------------------------------------------


def test_tracts_are_the_real_county_tracts(tracts):
    assert len(tracts) == 2495
    assert tracts["population"].sum() == 9_808_667
    assert (tracts["population"] == 0).sum() == 18


def test_interpolating_tracts_onto_themselves_is_exact(tracts):
    units = gu.polygon_units(_data_root() / "boundaries" / TRACTS, columns=["population"])
    out = gr.attach_population(units, tracts=tracts, column="interpolated")
    assert np.allclose(out["interpolated"], out["population"], rtol=1e-6, atol=1e-3)
    assert out.attrs["population"]["share_on_units"] == pytest.approx(1.0, abs=1e-6)


def test_population_is_attached_only_by_an_explicit_call(tracts):
    divisions = gu.make_units("division")
    assert "population" not in divisions.columns
    out = gr.attach_population(divisions, tracts=tracts)
    assert (out["population"] > 0).all()
    assert out.attrs["population"]["tracts_used"] == 2495
    assert out.attrs["study_area"] == divisions.attrs["study_area"]


def test_population_conserved_on_cells_covering_the_county(tracts):
    county = shapely.union_all(tracts.geometry.to_numpy())
    cells = gu.h3_units(6, study_area=county, contain="overlap")
    out = gr.attach_population(cells, tracts=tracts)
    total = tracts["population"].sum()
    assert out["population"].sum() == pytest.approx(total, rel=0.005)
    assert (out["population"] >= 0).all()
    assert (out["population"] == 0).any()  # ocean and mountain cells


def test_population_conserved_onto_divisions(tracts):
    divisions = gu.division_units()
    out = gr.attach_population(divisions, tracts=tracts)
    # What must be conserved: each tract's population times the share of its area inside the
    # divisions (tracts straddling the city limit keep the rest outside).
    albers = tracts.to_crs("EPSG:3310")
    union = shapely.union_all(divisions.to_crs("EPSG:3310").geometry.to_numpy())
    inside = shapely.area(shapely.intersection(albers.geometry.to_numpy(), union))
    share = inside / albers.area.to_numpy()
    expected = float((albers["population"].to_numpy() * share).sum())
    assert out["population"].sum() == pytest.approx(expected, rel=0.005)
    assert 3.7e6 < out["population"].sum() < 4.0e6  # the city has about 3.9M residents
    assert (out["population"] > 50_000).all()
    assert out.attrs["population"]["tracts_used"] == 2495


def test_city_cells_have_unpopulated_cells(city_cells):
    pop = city_cells["population"]
    assert (pop == 0).sum() >= 1
    assert pop.sum() == pytest.approx(3.82e6, rel=0.03)


# --- raw rates ------------------------------------------------------------------------------------


def test_rate_per_1000_no_residents_is_nan_with_reason():
    counts = pd.Series([5, 3, 0, 7, np.nan], index=list("abcde"))
    population = [1000, 0, 500, np.nan, 100]
    rates, notes = gr.rate_per_1000(counts, population)
    assert rates.index.tolist() == list("abcde")
    assert rates["a"] == pytest.approx(5.0)
    assert rates["c"] == 0.0
    assert np.isnan(rates[["b", "d", "e"]]).all()
    assert notes.tolist() == [None, "no residents", None, "population unknown", "count unknown"]
    assert not np.isinf(rates).any()
    with pytest.raises(DataError):
        gr.rate_per_1000([1], [-5])
    with pytest.raises(InputError):
        gr.rate_per_1000([1, 2], [5])


def test_real_rates_never_infinite(city_cells):
    rates, notes = gr.rate_per_1000(city_cells["count"], city_cells["population"])
    assert not np.isinf(rates).any()
    zero = city_cells["population"].to_numpy() == 0
    assert np.isnan(rates[zero]).all()
    assert (notes[zero] == "no residents").all()
    assert notes[~zero].isna().all()


# --- Empirical Bayes ------------------------------------------------------------------------------


def test_global_eb_shrinks_small_populations_most(city_cells):
    counts = city_cells["count"].to_numpy(dtype=float)
    pop = city_cells["population"].to_numpy()
    raw, _ = gr.rate_per_1000(counts, pop)
    eb, notes = gr.eb_smooth(counts, pop)
    ok = pop > 0
    mean = 1000 * counts[ok].sum() / pop[ok].sum()
    raw, eb = raw.to_numpy(), eb.to_numpy()
    # between the raw rate and the mean
    lo, hi = np.minimum(raw, mean), np.maximum(raw, mean)
    assert ((eb[ok] >= lo[ok] - 1e-9) & (eb[ok] <= hi[ok] + 1e-9)).all()
    # the share of the distance to the mean that is removed falls with population
    far = ok & (np.abs(raw - mean) > 1e-9)
    pulled = 1 - (eb[far] - mean) / (raw[far] - mean)
    order = np.argsort(pop[far])
    assert np.all(np.diff(pulled[order]) <= 1e-9)
    # a tiny unit with an extreme raw rate moves more than a large one
    small = np.flatnonzero(far & (pop < 200))
    small = small[np.argmax(raw[small])]
    large = np.flatnonzero(far)[np.argmax(pop[far])]
    assert raw[small] > 5 * mean
    assert abs(eb[small] - raw[small]) > abs(eb[large] - raw[large])
    assert pulled[np.flatnonzero(far).tolist().index(small)] > 0.5
    # zero population: NaN with the reason, no inf
    assert np.isnan(eb[~ok]).all() and (notes[~ok] == "no residents").all()
    assert not np.isinf(eb).any()
    # the same numbers as esda's Empirical_Bayes where its prior variance is positive
    reference = Empirical_Bayes(counts[ok], pop[ok]).r.ravel() * 1000
    assert np.allclose(eb[ok], reference, rtol=1e-9)


@pytest.mark.filterwarnings("ignore:invalid value encountered in divide:RuntimeWarning")
def test_spatial_eb_matches_esda_and_ignores_unpopulated_units(city_cells):
    ok = city_cells["population"].to_numpy() > 0
    populated = city_cells[ok].reset_index(drop=True)
    graph = Graph.build_contiguity(populated.set_index("unit_id"), rook=False)
    series_counts = populated.set_index("unit_id")["count"].astype(float)
    eb, notes = gr.eb_smooth(series_counts, populated["population"].to_numpy(), weights=graph)
    w = graph.to_W()
    reference = Spatial_Empirical_Bayes(
        series_counts.reindex(w.id_order).to_numpy(),
        populated.set_index("unit_id")["population"].reindex(w.id_order).to_numpy(),
        w,
    )
    ref = pd.Series(reference.r.ravel() * 1000, index=w.id_order).reindex(eb.index).to_numpy()
    finite = np.isfinite(ref)
    assert finite.mean() > 0.95
    assert np.allclose(eb.to_numpy()[finite], ref[finite], rtol=1e-9)
    # esda divides 0 by 0 where a unit and all its neighbours have no crime; the rate is then 0
    assert (eb.to_numpy()[~finite] == 0).all()
    assert notes.isna().all()
    # on all cells (zero-population ones included) with a W, the populated cells are unchanged
    full_graph = Graph.build_contiguity(city_cells.set_index("unit_id"), rook=False)
    eb_all, notes_all = gr.eb_smooth(
        city_cells["count"], city_cells["population"], weights=full_graph.to_W()
    )
    eb_all.index = city_cells["unit_id"]
    assert np.isnan(eb_all[~ok]).all()
    assert (notes_all[~ok] == "no residents").all()
    same = eb.reindex(eb_all.index[ok]).to_numpy()
    assert np.allclose(eb_all[ok].to_numpy(), same, rtol=1e-9)
    assert not np.isinf(eb_all).any()


def test_spatial_eb_label_alignment_and_bad_weights():
    # four units in a row: a - b - c - d
    matrix = np.array([[0, 1, 0, 0], [1, 0, 1, 0], [0, 1, 0, 1], [0, 0, 1, 0]], dtype=float)
    graph = Graph.from_sparse(sp.csr_matrix(matrix), ids=list("abcd"))
    counts = pd.Series([1.0, 20.0, 3.0, 4.0], index=list("abcd"))
    pop = pd.Series([1000.0, 100.0, 1500.0, 800.0], index=list("abcd"))
    forward, _ = gr.eb_smooth(counts, pop.to_numpy(), weights=graph)
    shuffled = list("dbca")
    backward, _ = gr.eb_smooth(counts[shuffled], pop[shuffled].to_numpy(), weights=graph)
    assert np.allclose(backward[list("abcd")].to_numpy(), forward.to_numpy())
    positional, _ = gr.eb_smooth(counts.to_numpy(), pop.to_numpy(), weights=matrix)
    assert np.allclose(positional.to_numpy(), forward.to_numpy())
    with pytest.raises(ConfigError):
        gr.eb_smooth(counts, pop, weights="queen")
    with pytest.raises(ConfigError):
        gr.eb_smooth(counts, pop, weights=np.ones((3, 3)))


def test_eb_with_no_between_unit_variance_returns_the_mean():
    counts = np.array([10.0, 20.0, 30.0])
    pop = np.array([1000.0, 2000.0, 3000.0])  # identical raw rates
    eb, notes = gr.eb_smooth(counts, pop)
    assert np.allclose(eb, 10.0)
    assert notes.isna().all()
    eb0, notes0 = gr.eb_smooth([0, 0], [0, 0])
    assert np.isnan(eb0).all() and (notes0 == "no residents").all()

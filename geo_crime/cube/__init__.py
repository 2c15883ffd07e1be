"""The space-time cube: incidents binned by unit and period, its rates and summaries.

- :mod:`~geo_crime.cube.panel`: :class:`~geo_crime.cube.panel.Cube`, built from the rows;
- :mod:`~geo_crime.cube.rates`: population, rates per 1,000 and Empirical Bayes smoothing;
- :mod:`~geo_crime.cube.summary`: per-unit tables of a cube;
- :mod:`~geo_crime.cube.dask`: the same cube from partitioned rows on a Dask cluster;
- :mod:`~geo_crime.cube.dask_incidents`: those rows held on the cluster, deduplicated, tallied;
- :mod:`~geo_crime.cube.dask_cluster`: the cluster's client and collecting its results.
"""

"""Spatial statistics of a cube, in the habit of esda: weights, tests and their significance.

- :mod:`~geo_crime.stats.weights`: who neighbours whom;
- :mod:`~geo_crime.stats.significance`: checks, p-values, FDR and confidence bins;
- :mod:`~geo_crime.stats.hotspots`: Moran's I, LISA and Getis-Ord Gi*;
- :mod:`~geo_crime.stats.incremental`: Moran's I over growing distance bands;
- :mod:`~geo_crime.stats.emerging`: emerging hot spots (Mann-Kendall over Gi*);
- :mod:`~geo_crime.stats.run`: one table of statistic names and the one way to run them.
"""

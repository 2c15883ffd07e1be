"""Static figures (matplotlib, Agg renderer) with the maps' colours and suppression rules.

- :mod:`~geo_crime.publish.figures.core`: choropleths and the shared drawing helpers;
- :mod:`~geo_crime.publish.figures.trends`: weekly trend figures;
- :mod:`~geo_crime.publish.figures.emerging`: the emerging hot spot map;
- :mod:`~geo_crime.publish.figures.forecast`: the figures of a forecast backtest.
"""

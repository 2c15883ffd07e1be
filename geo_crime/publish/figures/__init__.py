"""Static figures (matplotlib, Agg renderer) with the maps' colours and suppression rules.

- :mod:`~geo_crime.publish.figures.core`: choropleths, hot spot and LISA maps, Moran's scatter;
- :mod:`~geo_crime.publish.figures.draw`: the drawing helpers the figures share;
- :mod:`~geo_crime.publish.figures.trends`: weekly trend figures;
- :mod:`~geo_crime.publish.figures.hours`: the hour x weekday heat map;
- :mod:`~geo_crime.publish.figures.emerging`: the emerging hot spot map;
- :mod:`~geo_crime.publish.figures.forecast`: the figures of a forecast backtest.
"""

"""What leaves the machine: privacy first, then the files people open.

- :mod:`~geo_crime.publish.privacy`: small-count suppression and the disclosure checks;
- :mod:`~geo_crime.publish.style`: colours and classes shared by maps and figures (no folium);
- :mod:`~geo_crime.publish.export`: GeoJSON, GeoPackage and GeoParquet layers;
- :mod:`~geo_crime.publish.places`: the profiles of the top places;
- :mod:`~geo_crime.publish.outputs`: the public map, layers and figures of one cube, one
  composition for the pipeline and the command line;
- :mod:`~geo_crime.publish.maps`: folium web maps;
- :mod:`~geo_crime.publish.figures`: matplotlib figures.
"""

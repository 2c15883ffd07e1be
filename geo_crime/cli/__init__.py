"""The ``geo-crime`` command line (``geo_crime.cli:app``).

- :mod:`~geo_crime.cli.app`: the typer app, its help style, its one error handler
  (:func:`~geo_crime.cli.app.user_errors`) and the options several commands share, each word
  parsed at the edge into its enum by the option's parser (:func:`~geo_crime.cli.app.word_parser`,
  :meth:`~geo_crime.core.periods.Freq.parse`);
- :mod:`~geo_crime.cli.data`: ``ingest``, ``coverage``, ``fetch``;
- :mod:`~geo_crime.cli.cubes`: ``cube``, ``hotspots``, ``map``, ``export``;
- :mod:`~geo_crime.cli.forecasts`: ``train``, ``evaluate``, ``predict``;
- :mod:`~geo_crime.cli.runs`: ``run``.

Importing a command module registers its commands on the app.
"""

from geo_crime.cli import cubes, data, forecasts, runs  # noqa: F401 (registers the commands)
from geo_crime.cli.app import app

__all__ = ["app"]

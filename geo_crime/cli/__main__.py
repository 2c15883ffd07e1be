"""``python -m geo_crime.cli`` runs the command line (as ``python -m geo_crime`` does)."""

from geo_crime.cli import app

app()

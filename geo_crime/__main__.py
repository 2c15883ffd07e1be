"""``python -m geo_crime`` runs the command line."""

from geo_crime.cli import app

app()

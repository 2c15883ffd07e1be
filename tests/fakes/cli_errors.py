"""Running the command line in tests and reading the one error line a refusal prints."""

from __future__ import annotations

import gzip
from pathlib import Path

from typer.testing import CliRunner

from geo_crime.cli import app
from tests.fakes.shared_data import IVANCO, crime_file


def cli(*args: str):
    """Run ``geo-crime ARGS...`` in this process and return typer's result."""
    return CliRunner().invoke(app, list(args))


def error_line(result) -> str:
    """The single error line a failed command printed (and nothing that looks like a traceback)."""
    text = result.output  # standard output and standard error, as a terminal shows them
    assert "Traceback" not in text, text
    errors = [line for line in text.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, text
    return errors[0]


def official_rows(path: Path, rows: int = 300, skip: int = 0) -> Path:
    """Write ``rows`` real rows of the official export (after ``skip`` rows) as a plain CSV."""
    with gzip.open(crime_file(IVANCO), "rt", encoding="utf-8") as handle:
        header = next(handle)
        for _ in range(skip):
            next(handle)
        lines = [next(handle) for _ in range(rows)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(header + "".join(lines), encoding="utf-8")
    return path

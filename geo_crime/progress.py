"""Progress of long stages (forecast backtests: fits over origins, epochs within a fit).

A stage that takes more than a few seconds reports what it is doing through the reporter in
effect, set with :func:`reporting`; code deep inside (a backtest's fit loop, a Keras fit) calls
:func:`fits` and :func:`epoch` without knowing who listens. Without a reporter these calls do
nothing, so the library stays silent unless the CLI or the pipeline asks for a display.

:class:`BarReporter` draws one rich progress bar per stage on the terminal (nothing when standard
error is not a terminal, e.g. in CI logs): the fits of the backtest (origins x models) and, under
it, the epochs of the network being trained.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from typing import Protocol

from rich.console import Console


class Reporter(Protocol):
    """What a progress display implements."""

    def fits(self, done: int, total: int, label: str) -> None:
        """``done`` of ``total`` fits finished; ``label`` names the one running next."""

    def epoch(self, done: int, total: int) -> None:
        """``done`` of at most ``total`` epochs of the current network finished."""


_CURRENT: contextvars.ContextVar[Reporter | None] = contextvars.ContextVar(
    "geo_crime_progress", default=None
)


@contextlib.contextmanager
def reporting(reporter: Reporter | None) -> Iterator[None]:
    """Make ``reporter`` the one every :func:`fits` and :func:`epoch` call reports to."""
    token = _CURRENT.set(reporter)
    try:
        yield
    finally:
        _CURRENT.reset(token)


def fits(done: int, total: int, label: str = "") -> None:
    """Report fitting progress to the reporter in effect (no-op without one)."""
    reporter = _CURRENT.get()
    if reporter is not None:
        reporter.fits(done, total, label)


def epoch(done: int, total: int) -> None:
    """Report an epoch to the reporter in effect (no-op without one)."""
    reporter = _CURRENT.get()
    if reporter is not None:
        reporter.epoch(done, total)


class BarReporter:
    """Rich progress bars for one stage: fits (origins x models) and epochs of the current fit.

    Parameters
    ----------
    label : str
        The stage, shown before the bars.
    console : rich.console.Console, optional
        Where to draw (standard error by default); nothing is drawn when it is not a terminal.
    """

    def __init__(self, label: str, console: Console | None = None) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        self.console = console or Console(stderr=True)
        self.progress = Progress(
            TextColumn("  {task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[detail]}"),
            console=self.console,
            transient=True,
            disable=not self.console.is_terminal,
        )
        self.label = label
        self._fits = None
        self._epochs = None

    def __enter__(self) -> BarReporter:
        self.progress.start()
        self._fits = self.progress.add_task("fits", total=None, detail="")
        self._epochs = self.progress.add_task("epochs", total=None, detail="")
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def fits(self, done: int, total: int, label: str) -> None:  # noqa: D102 (see Reporter)
        self.progress.update(self._fits, completed=done, total=total, detail=label)
        self.progress.update(self._epochs, completed=0, total=None)

    def epoch(self, done: int, total: int) -> None:  # noqa: D102 (see Reporter)
        self.progress.update(self._epochs, completed=done, total=total)


class RecordingReporter:
    """A reporter that keeps every call (for tests and for logs)."""

    def __init__(self) -> None:
        self.fit_calls: list[tuple[int, int, str]] = []
        self.epoch_calls: list[tuple[int, int]] = []

    def fits(self, done: int, total: int, label: str) -> None:  # noqa: D102 (see Reporter)
        self.fit_calls.append((done, total, label))

    def epoch(self, done: int, total: int) -> None:  # noqa: D102 (see Reporter)
        self.epoch_calls.append((done, total))

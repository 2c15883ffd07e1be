"""Progress of a run: one live display for the whole pipeline, and bars for long stages.

A stage that takes more than a few seconds reports what it is doing through the reporter in
effect, set with :func:`reporting`; code deep inside (a backtest's fit loop, a Keras fit, a loop
over statistics or maps) calls :func:`fits`, :func:`epoch` and :func:`step` (or iterates with
:func:`steps`) without knowing who listens. Without a reporter these calls do nothing, so the
library stays silent unless the CLI or the pipeline asks for a display.

:class:`RunDisplay` is the display of a whole ``geo-crime run``: on a terminal, one rich live
display with the run (stages done, elapsed), the current stage (its sub-step, a bar when it
reports steps, elapsed) and the epochs of the network being trained, and one line per finished
stage above it. When its console is not a terminal (CI logs, pipes) it prints the plain two
lines per stage it always printed (``<stage> ...`` and ``  done in 3.2 s``), without escape
codes; in quiet mode it prints nothing.

:class:`BarReporter` draws the bars of one stage on its own (``geo-crime train``,
``geo-crime evaluate``): the fits of the backtest (origins x models) and, under it, the epochs.
Inside a run it draws nothing itself and passes everything on to the run's display.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Literal, Protocol, TypeVar

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

if TYPE_CHECKING:
    from rich.progress import Progress

T = TypeVar("T")
Mode = Literal["live", "plain", "quiet"]


class Reporter(Protocol):
    """What a progress display implements."""

    def fits(self, done: int, total: int, label: str) -> None:
        """``done`` of ``total`` fits finished; ``label`` names the one running next."""

    def epoch(self, done: int, total: int) -> None:
        """``done`` of at most ``total`` epochs of the current network finished."""

    def step(self, done: int, total: int, label: str, unit: str) -> None:
        """``done`` of ``total`` steps (``unit``: what a step is) finished; ``label`` runs next.

        Optional: :func:`step` skips reporters without this method.
        """


_CURRENT: contextvars.ContextVar[Reporter | None] = contextvars.ContextVar(
    "geo_crime_progress", default=None
)
_DISPLAY: contextvars.ContextVar[RunDisplay | None] = contextvars.ContextVar(
    "geo_crime_run_display", default=None
)


@contextlib.contextmanager
def reporting(reporter: Reporter | None) -> Iterator[None]:
    """Make ``reporter`` the one every :func:`fits`, :func:`epoch` and :func:`step` reports to."""
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


def step(done: int, total: int, label: str = "", unit: str = "steps") -> None:
    """Report ``done`` of ``total`` sub-steps of the current stage (no-op without a reporter).

    Parameters
    ----------
    done, total
        Steps finished, and how many there are.
    label
        The step running next (e.g. ``"gi"``), shown beside the bar.
    unit
        What a step is, in the plural (``"statistics"``, ``"maps"``).
    """
    reporter = _CURRENT.get()
    report = getattr(reporter, "step", None)
    if report is not None:
        report(done, total, label, unit)


def steps(items: Iterable[T], unit: str = "steps", label: Callable[[T], str] = str) -> Iterator[T]:
    """Iterate over ``items``, reporting each one as a :func:`step` of the current stage.

    Parameters
    ----------
    items
        What the stage loops over (read into a list first, to know the total).
    unit
        What an item is, in the plural.
    label
        How an item is named beside the bar.

    Yields
    ------
    object
        The items, in order; the step count advances as each one finishes.

    Examples
    --------
    >>> [s for s in steps(["moran", "gi"], "statistics")]
    ['moran', 'gi']
    """
    chosen = list(items)
    for done, item in enumerate(chosen):
        step(done, len(chosen), label(item), unit)
        yield item
    step(len(chosen), len(chosen), "", unit)


def current_display() -> RunDisplay | None:
    """The :class:`RunDisplay` of the run in progress, if any."""
    return _DISPLAY.get()


class RunDisplay:
    """The display of a whole run: stages, their sub-steps and elapsed times.

    Entering it makes it the display of the run (:func:`current_display`) and the reporter in
    effect (:func:`reporting`); each stage calls :meth:`begin` and :meth:`end`.

    Parameters
    ----------
    console : rich.console.Console, optional
        Where to draw (standard error by default).
    title : str
        What the first line of the live display calls the run.
    stages : int, optional
        How many stages the run is expected to have (the run's bar; grows if there are more).
    mode : {"live", "plain", "quiet"}, optional
        ``live``: the rich live display (the default on a terminal); ``plain``: two plain lines
        per stage, no escape codes (the default elsewhere); ``quiet``: nothing at all.

    Attributes
    ----------
    live : rich.progress.Progress or None
        What draws the live display while the run is in progress (None unless ``live``).
    done, total : int
        Stages finished, and the stages expected (None when not known).
    """

    def __init__(
        self,
        console: Console | None = None,
        *,
        title: str = "run",
        stages: int | None = None,
        mode: Mode | None = None,
    ) -> None:
        self.console = console or Console(stderr=True)
        self.mode: Mode = mode or ("live" if self.console.is_terminal else "plain")
        self.title = title
        self.total = stages
        self.done = 0
        self.live: Progress | None = None
        self._run = self._stage = self._epochs = None
        self._tokens: list[tuple[contextvars.ContextVar, contextvars.Token]] = []

    def __enter__(self) -> RunDisplay:
        if self.mode == "live":
            self.live = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                TextColumn("{task.fields[count]}"),
                TimeElapsedColumn(),
                TextColumn("{task.fields[detail]}"),
                console=self.console,
                transient=True,
            )
            self._run = self.live.add_task(
                f"[bold]{escape(self.title)}",
                total=self.total,
                count=self._stage_count(),
                detail="",
            )
            self._new_stage("", visible=False)
            self.live.start()
        self._tokens = [(_DISPLAY, _DISPLAY.set(self)), (_CURRENT, _CURRENT.set(self))]
        return self

    def __exit__(self, *exc: object) -> None:
        for var, token in reversed(self._tokens):
            var.reset(token)
        self._tokens = []
        if self.live is not None:
            self.live.stop()
            self.live = None

    def _stage_count(self) -> str:
        return f"{self.done}/{self.total} stages" if self.total else f"{self.done} stages"

    def begin(self, label: str) -> None:
        """A stage starts: show it (its elapsed time counts from now)."""
        if self.mode == "plain":
            self.console.print(f"[bold]{escape(label)}[/bold] ...", highlight=False)
        elif self.live is not None:
            if self.total is not None and self.done >= self.total:
                self.total = self.done + 1  # more stages than expected: the bar grows
                self.live.update(self._run, total=self.total, count=self._stage_count())
            self._new_stage(f"  {escape(label)}")

    def end(self, label: str, elapsed: float, *, failed: bool = False) -> None:
        """A stage finished after ``elapsed`` seconds (or ``failed``)."""
        self.done += 0 if failed else 1
        if self.mode == "plain":
            if not failed:
                self.console.print(f"  done in {elapsed:.1f} s", highlight=False)
        elif self.live is not None:
            if failed:
                line = f"[bold red]failed[/] {escape(label)} after {elapsed:.1f} s"
            else:
                line = f"[green]done[/] {escape(label)} [dim]in {elapsed:.1f} s[/dim]"
            self.live.console.print(line, highlight=False)
            self.live.update(
                self._run, completed=self.done, total=self.total, count=self._stage_count()
            )
            self._hide_epochs()

    def _new_stage(self, description: str, *, visible: bool = True) -> None:
        """Rows for a new stage: no steps known yet (a pulsing bar), elapsed from now."""
        for task in (self._stage, self._epochs):
            if task is not None:
                self.live.remove_task(task)
        self._stage = self.live.add_task(
            description, total=None, count="", detail="", visible=visible
        )
        self._epochs = None
        self._hide_epochs()

    def _hide_epochs(self) -> None:
        """No network is training (yet): a hidden epochs row, its clock starting now."""
        if self.live is not None:
            if self._epochs is not None:
                self.live.remove_task(self._epochs)
            self._epochs = self.live.add_task(
                "    epochs", total=None, count="", detail="", visible=False
            )

    def step(self, done: int, total: int, label: str, unit: str = "steps") -> None:  # noqa: D102
        if self.live is not None:
            self.live.update(
                self._stage,
                completed=done,
                total=total,
                count=f"{done}/{total} {unit}",
                detail=escape(label),
            )

    def fits(self, done: int, total: int, label: str) -> None:  # noqa: D102 (see Reporter)
        self.step(done, total, label, "fits")
        self._hide_epochs()  # the next fit's epochs, and their elapsed time, start now

    def epoch(self, done: int, total: int) -> None:  # noqa: D102 (see Reporter)
        if self.live is not None:
            self.live.update(
                self._epochs, completed=done, total=total, count=f"{done}/{total}", visible=True
            )


class BarReporter:
    """Rich progress bars for one stage: fits (origins x models) and epochs of the current fit.

    Inside a run (a :class:`RunDisplay` in effect) it draws nothing itself: everything goes to
    the run's display, so there is only ever one live display.

    Parameters
    ----------
    label : str
        The stage, shown before the bars.
    console : rich.console.Console, optional
        Where to draw (standard error by default); nothing is drawn when it is not a terminal.
    """

    def __init__(self, label: str, console: Console | None = None) -> None:

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
        self._display: RunDisplay | None = None

    def __enter__(self) -> BarReporter:
        self._display = current_display()
        if self._display is None:
            self.progress.start()
            self._fits = self.progress.add_task("fits", total=None, detail="")
            self._epochs = self.progress.add_task("epochs", total=None, detail="")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._display is None:
            self.progress.stop()
        self._display = None

    def fits(self, done: int, total: int, label: str) -> None:  # noqa: D102 (see Reporter)
        if self._display is not None:
            self._display.fits(done, total, label)
            return
        self.progress.update(self._fits, completed=done, total=total, detail=label)
        self.progress.update(self._epochs, completed=0, total=None)

    def epoch(self, done: int, total: int) -> None:  # noqa: D102 (see Reporter)
        if self._display is not None:
            self._display.epoch(done, total)
            return
        self.progress.update(self._epochs, completed=done, total=total)

    def step(self, done: int, total: int, label: str, unit: str = "steps") -> None:  # noqa: D102
        if self._display is not None:
            self._display.step(done, total, label, unit)
            return
        self.progress.update(self._fits, completed=done, total=total, detail=label)


class RecordingReporter:
    """A reporter that keeps every call (for tests and for logs)."""

    def __init__(self) -> None:
        self.fit_calls: list[tuple[int, int, str]] = []
        self.epoch_calls: list[tuple[int, int]] = []
        self.step_calls: list[tuple[int, int, str, str]] = []

    def fits(self, done: int, total: int, label: str) -> None:  # noqa: D102 (see Reporter)
        self.fit_calls.append((done, total, label))

    def epoch(self, done: int, total: int) -> None:  # noqa: D102 (see Reporter)
        self.epoch_calls.append((done, total))

    def step(self, done: int, total: int, label: str, unit: str = "steps") -> None:  # noqa: D102
        self.step_calls.append((done, total, label, unit))

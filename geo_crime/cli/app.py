"""The ``geo-crime`` command line: its app, help style, one error handler and shared options.

Every command has ``--help``. Errors a user can cause print one line (``error: ...``) on standard
error and exit with status 1, with no traceback (``--debug`` shows it) and no partial output file:
outputs are written to a temporary file and renamed into place only when complete.

Help text names values by what they are (``--output FILE``, ``--unit SPEC``), never by Python
type (typer's ``<bool>``, ``<path>``), and the usage line lists arguments as ``INPUTS...`` /
``[INPUTS]...`` (not typer's ``{inputs}...``): see :class:`_CleanHelp`.

Long because each command's options are declared here with their help text (typer keeps a
command's parameters in its signature); the work itself lives in the stage modules.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

from geo_crime.core.errors import GeoCrimeError
from geo_crime.core.options import CountUnit, EngineKind, Tiles, word_parser
from geo_crime.core.periods import Freq

#: What a value is called in help when its option gives no ``metavar`` (typer's type names).
_VALUE_NAMES = {
    "str": "TEXT",
    "int": "N",
    "float": "NUMBER",
    "path": "PATH",
    "file": "FILE",
    "directory": "FOLDER",
}


class _ArgumentHelp(TyperArgument):
    """An argument shown by its name alone (``INPUTS...``), without a type column."""

    def display_type_rich(self, ctx: typer.Context) -> str | None:  # noqa: D102 (typer's)
        return None

    def get_usage_pieces(self, ctx: typer.Context) -> list[str]:  # noqa: D102 (click's)
        return [self.display_name_raw if self.required else f"[{self.display_name_raw}]"]


def _clean_parameter(param: object, ctx: typer.Context) -> None:
    """Give ``param`` a help name without type placeholders (once; explicit metavars win)."""
    if isinstance(param, TyperArgument) and not isinstance(param, _ArgumentHelp):
        param.__class__ = _ArgumentHelp  # same layout: only how it is shown changes
        if param.metavar is None:
            param.metavar = (param.name or "value").upper() + ("..." if param.nargs != 1 else "")
    elif isinstance(param, TyperOption) and param.metavar is None:
        if param.is_flag or param.count:
            param.metavar = ""  # a flag takes no value: no '<bool>'
        else:
            label = param.display_type(ctx).strip("<>")
            label = label.removeprefix("list[").removesuffix("]")
            param.metavar = _VALUE_NAMES.get(label, label.upper())


class _CleanHelp:
    """Help without type placeholders, for every command and the app (mixed into typer's)."""

    def get_params(self, ctx: typer.Context) -> list:  # noqa: D102 (click's)
        params = super().get_params(ctx)  # type: ignore[misc]
        for param in params:
            _clean_parameter(param, ctx)
        return params


class _Command(_CleanHelp, TyperCommand):
    """A typer command with clean help (see :class:`_CleanHelp`), whose options' values are
    parsed under :func:`user_errors` (a bad ``--freq`` is one ``error:`` line, exit 1): each word
    is parsed at the edge into its enum by the option's ``parser`` (:meth:`Freq.parse`,
    :func:`word_parser`)."""

    def parse_args(self, ctx: typer.Context, args: list[str]) -> list[str]:  # noqa: D102 (click)
        with user_errors():
            return super().parse_args(ctx, args)


class _Group(_CleanHelp, TyperGroup):
    """The typer app with clean help (see :class:`_CleanHelp`)."""


app = typer.Typer(
    name="geo-crime",
    cls=_Group,
    help="Geospatial analytics for Los Angeles crime: ingest, hot spots, forecasts, maps.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(stderr=True)

# options several commands share
CubeArgument = Annotated[
    Path, typer.Argument(metavar="CUBE", help="Cube Parquet from 'geo-crime cube'.")
]
SeedOption = Annotated[int, typer.Option(metavar="N", help="Random seed.")]
PermutationsOption = Annotated[
    int, typer.Option(metavar="N", help="Permutations for pseudo p-values.")
]
KAnonymityOption = Annotated[
    int, typer.Option("--k", metavar="N", help="Suppress counts of units with fewer incidents.")
]
_state = {"debug": False}


@app.callback()
def main(
    debug: Annotated[
        bool,
        typer.Option("--debug", help="Show full tracebacks on errors, and TensorFlow's logs."),
    ] = False,
) -> None:
    """Geospatial analytics for Los Angeles crime."""
    _state["debug"] = debug
    if debug:  # TensorFlow's logs too (see geo_crime.forecast.network.import_keras)
        import os

        os.environ["GEO_CRIME_DEBUG"] = "1"
    import warnings

    def one_line(message, category, filename, lineno, line=None) -> str:  # noqa: ARG001
        return f"warning: {message}\n"

    warnings.formatwarning = one_line


def _fail(exc: BaseException) -> None:
    if _state["debug"]:
        raise exc
    message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """The one error handler of the CLI: every error a user can cause becomes one ``error:``
    line and exit status 1.

    :class:`~geo_crime.core.errors.GeoCrimeError` carries its own message; an ``OSError`` (disk
    full, read-only folder, a folder where a file was expected) is described with its path.
    Anything else is a bug and keeps its traceback. ``--debug`` re-raises everything.
    """
    from geo_crime.core.io_utils import describe_os_error

    try:
        yield
    except GeoCrimeError as exc:
        _fail(exc)
    except OSError as exc:
        if _state["debug"]:
            raise
        _fail(GeoCrimeError(describe_os_error(exc)))


def command(*args: Any, **kwargs: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``app.command`` with :func:`user_errors` around the command (every command uses it)."""

    def decorate(function: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(function)
        def handled(*call_args: Any, **call_kwargs: Any) -> Any:
            with user_errors():
                return function(*call_args, **call_kwargs)

        return app.command(*args, cls=_Command, **kwargs)(handled)

    return decorate


def progress_reader():
    """A rich progress display and a callback ticking per file."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[name]}"),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    )
    return progress


EngineOption = Annotated[
    EngineKind,
    typer.Option(
        "--engine",
        metavar="memory|dask",
        parser=word_parser(EngineKind, "--engine"),
        help="memory (one process) or dask (a dataset folder, on a Dask cluster).",
    ),
]
#: ``--freq``: a period length (:class:`~geo_crime.core.periods.Freq`; ``W`` or ``week``).
FreqOption = Annotated[
    Freq,
    typer.Option(
        "--freq",
        metavar="D|W|M",
        parser=Freq.parse,
        help="Period length: day, week or month.",
    ),
]
#: ``--tiles`` of a map (:class:`~geo_crime.core.options.Tiles`).
TilesOption = Annotated[
    Tiles,
    typer.Option(
        "--tiles",
        metavar="none|carto|osm",
        parser=word_parser(Tiles, "--tiles"),
        help="Web tiles under the vector base map: osm (default; the vector base map "
        "when offline), carto (needs GEO_CRIME_CARTO_KEY) or none (no request leaves the "
        "page).",
    ),
]
#: ``--count``: what a row of the incidents is (:class:`~geo_crime.core.options.CountUnit`).
CountOption = Annotated[
    CountUnit,
    typer.Option(
        "--count",
        metavar="incidents|offenses",
        parser=word_parser(CountUnit, "--count"),
        help=(
            "What a row is: incidents (default: NIBRS offences collapsed to one row per case) "
            "or offenses (every NIBRS offence row kept)."
        ),
    ),
]
SchedulerOption = Annotated[
    str,
    typer.Option(
        "--scheduler",
        metavar="ADDRESS|local",
        help="Dask scheduler address, or local for a cluster on this machine.",
    ),
]
WorkersOption = Annotated[
    int | None,
    typer.Option("--workers", metavar="N", help="Worker processes of a local Dask cluster."),
]
WorkerMemoryOption = Annotated[
    str | None,
    typer.Option(
        "--worker-memory",
        metavar="SIZE",
        help="Memory limit of each local Dask worker (e.g. 4GB); it spills to disk past 60%.",
    ),
]

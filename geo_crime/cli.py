"""The ``geo-crime`` command line.

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
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

from geo_crime.core.config import DEFAULT_K
from geo_crime.core.errors import GeoCrimeError
from geo_crime.core.progress import BarReporter, reporting

if TYPE_CHECKING:
    from geo_crime.cube.dask import ClusterOptions

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
    """A typer command with clean help (see :class:`_CleanHelp`)."""


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
def _user_errors() -> Iterator[None]:
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
    """``app.command`` with :func:`_user_errors` around the command (every command uses it)."""

    def decorate(function: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(function)
        def handled(*call_args: Any, **call_kwargs: Any) -> Any:
            with _user_errors():
                return function(*call_args, **call_kwargs)

        return app.command(*args, cls=_Command, **kwargs)(handled)

    return decorate


def _progress_reader():
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


@command()
def ingest(
    inputs: Annotated[
        list[str], typer.Argument(help="Crime files, folders or glob patterns (CSV/JSON, .gz).")
    ],
    output: Annotated[
        Path | None,
        typer.Option("-o", "--output", metavar="FILE", help="Incidents Parquet to write."),
    ] = None,
    dataset: Annotated[
        Path | None,
        typer.Option(
            "--dataset",
            metavar="DIR",
            help="Write a Hive-partitioned Parquet dataset (source, month) here instead.",
        ),
    ] = None,
    append: Annotated[
        bool,
        typer.Option("--append", help="Add the inputs to the --dataset folder as a new batch."),
    ] = False,
    report: Annotated[
        Path | None,
        typer.Option("--report", metavar="FILE", help="Write the cleaning report as JSON here."),
    ] = None,
    mapping: Annotated[
        Path | None,
        typer.Option(
            "--mapping",
            metavar="FILE",
            help="JSON file {source column: canonical field} for other exports.",
        ),
    ] = None,
    negative_age: Annotated[
        str,
        typer.Option(
            "--negative-age",
            metavar="null|abs",
            help="Negative victim ages: null (unknown) or abs (sign dropped).",
        ),
    ] = "null",
    strict: Annotated[
        bool, typer.Option("--strict", help="Stop at the first unparseable row.")
    ] = False,
    cache: Annotated[bool, typer.Option(help="Use the content-keyed Parquet cache.")] = True,
    min_date: Annotated[
        str,
        typer.Option(
            "--min-date",
            metavar="DATE",
            help="Drop and count occurrences before this ISO date ('' keeps all).",
        ),
    ] = "2010-01-01",
    count: Annotated[
        str,
        typer.Option(
            "--count",
            metavar="incidents|offenses",
            help=(
                "What a row is: incidents (NIBRS offences collapsed to one row per case, its "
                "most serious offence) or offenses (every NIBRS offence row kept)."
            ),
        ),
    ] = "incidents",
) -> None:
    """Read LAPD exports into one cleaned, typed, scored incidents Parquet file (or dataset)."""
    from geo_crime.core.errors import ConfigError
    from geo_crime.core.io_utils import atomic_path, check_output_path
    from geo_crime.ingest import COUNT_UNITS, expand_inputs, input_folders, load_incidents

    if negative_age not in ("null", "abs"):
        raise ConfigError(f"--negative-age must be 'null' or 'abs', got {negative_age!r}")
    if count not in COUNT_UNITS:
        raise ConfigError(f"--count must be 'incidents' or 'offenses', got {count!r}")
    if (output is None) == (dataset is None):
        raise ConfigError("give either -o/--output FILE or --dataset DIR")
    if append and dataset is None:
        raise ConfigError("--append adds to a --dataset folder; give --dataset DIR")
    column_map = _read_mapping(mapping) if mapping else None
    files = expand_inputs(inputs)
    sources = [*files, *input_folders(inputs), *([mapping] if mapping else [])]
    if dataset is not None:
        check_output_path(dataset, inputs=sources, folder=True)
    else:
        check_output_path(output, inputs=sources, formats=(".parquet",))
    if report:
        check_output_path(report, inputs=sources, formats=(".json",))
    with _progress_reader() as progress:
        task = progress.add_task("reading", total=len(files), name="")

        def tick(path: Path) -> None:
            progress.update(task, advance=1, name=path.name)

        frame, cleaning = load_incidents(
            files,
            mapping=column_map,
            negative_age=negative_age,
            on_bad_rows="raise" if strict else "report",
            cache=cache,
            min_occurred_date=min_date or None,
            progress=tick,
            count=count,
        )
    if dataset is not None:
        from geo_crime.ingest.store import write_incident_dataset

        write_incident_dataset(frame, cleaning, dataset, inputs=files, append=append)
    else:
        with atomic_path(output) as tmp:
            frame.to_parquet(tmp, index=False)
    if report:
        cleaning.write_json(report)
    Console().print(cleaning.rich_table())
    typer.echo(f"wrote {len(frame):,} incidents to {output or dataset}")


def _read_mapping(path: Path) -> dict[str, str]:
    from geo_crime.core.errors import ConfigError
    from geo_crime.settings import read_settings_text

    try:
        data = json.loads(read_settings_text(path, "mapping file"))
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: invalid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise ConfigError(f"{path}: the mapping must be a JSON object of strings")
    return data


@command()
def coverage(
    incidents: Annotated[
        Path,
        typer.Argument(help="Incidents Parquet or --dataset folder from 'geo-crime ingest'."),
    ],
    output: Annotated[
        Path | None,
        typer.Option(
            "-o",
            "--output",
            metavar="FILE",
            help="Write the (source, area, period) table (.csv or .parquet).",
        ),
    ] = None,
    threshold: Annotated[
        float,
        typer.Option(
            metavar="SHARE", help="A cell is incomplete below this share of its baseline."
        ),
    ] = 0.6,
    freq: Annotated[
        str,
        typer.Option(
            "--freq", metavar="M|W|D", help="Periods judged: M (months), W (weeks) or D (days)."
        ),
    ] = "M",
    by: Annotated[
        str,
        typer.Option(
            "--by",
            metavar="COLUMN",
            help="What a source is: source (schema family) or source_file.",
        ),
    ] = "source",
) -> None:
    """Flag (source, area, period) cells recorded too thinly to trust (e.g. the 2024 change)."""
    from geo_crime.core.io_utils import check_output_path, write_table
    from geo_crime.ingest import read_incidents_parquet
    from geo_crime.ingest.store import is_incident_dataset, read_incident_dataset
    from geo_crime.record.coverage import check_coverage

    if output:
        check_output_path(output, inputs=[incidents], formats=(".csv", ".parquet"))
    if is_incident_dataset(incidents):  # only the columns the check reads
        from geo_crime.cube.dask import COVERAGE_COLUMNS

        frame, _ = read_incident_dataset(incidents, columns=COVERAGE_COLUMNS)
    else:
        frame = read_incidents_parquet(incidents)
    result = check_coverage(frame, threshold=threshold, freq=freq, by=by)
    if output:
        write_table(result.union, output)
    for span in result.spans.itertuples():
        typer.echo(
            f"source {span.source}: {span.rows:,} rows, {span.first_day:%Y-%m-%d} to "
            f"{span.last_day:%Y-%m-%d}, {span.areas} areas"
        )
    fmt = {"M": "%Y-%m", "W": "%Y-%m-%d", "D": "%Y-%m-%d"}[result.freq]
    for row in result.citywide().itertuples():
        flag = f"  {row.areas_incomplete} areas incomplete" if row.areas_incomplete else ""
        typer.echo(f"{row.period:{fmt}}  {row.count:>8,.0f}{flag}")
    typer.echo(
        f"{len(result.incomplete)} of {len(result.union)} (area, period) cells not complete, "
        "judged on all sources together"
    )


EngineOption = Annotated[
    str,
    typer.Option(
        "--engine",
        metavar="memory|dask",
        help="memory (one process) or dask (a dataset folder, on a Dask cluster).",
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


def _cluster_options(
    engine: str, scheduler: str, workers: int | None, worker_memory: str | None
) -> ClusterOptions | None:
    """The Dask cluster a command runs on (``None``: in memory), or one clear error."""
    from geo_crime.core.errors import ConfigError
    from geo_crime.cube.dask import ClusterOptions

    if engine not in ("memory", "dask"):
        raise ConfigError(f"--engine must be 'memory' or 'dask', got {engine!r}")
    if engine == "memory":
        if scheduler != "local" or workers is not None or worker_memory is not None:
            raise ConfigError(
                "--scheduler, --workers and --worker-memory apply to --engine dask only"
            )
        return None
    return ClusterOptions(scheduler, workers, worker_memory)


@command()
def cube(
    incidents: Annotated[
        Path,
        typer.Argument(help="Incidents Parquet or --dataset folder from 'geo-crime ingest'."),
    ],
    output: Annotated[
        Path, typer.Option("-o", "--output", metavar="FILE", help="Cube Parquet to write.")
    ],
    unit: Annotated[
        str,
        typer.Option(
            "--unit",
            metavar="SPEC",
            help="Spatial unit: h3:<5-10>, rd, division or a polygon file.",
        ),
    ] = "h3:8",
    freq: Annotated[
        str, typer.Option("--freq", metavar="D|W|M", help="Period length: day, week or month.")
    ] = "W",
    study_area: Annotated[
        str,
        typer.Option(
            "--study-area",
            metavar="AREA",
            help="What H3 cells fill: data (the divisions the incidents cover), city, divisions, "
            "county or a polygon file; other units keep the data's divisions with 'data'.",
        ),
    ] = "data",
    include_incomplete: Annotated[
        bool, typer.Option("--include-incomplete", help="Do not mark thin (area, month) periods.")
    ] = False,
    population: Annotated[
        bool,
        typer.Option(
            help="Interpolate census-tract residents onto the units (for rates per 1,000)."
        ),
    ] = True,
    engine: EngineOption = "memory",
    scheduler: SchedulerOption = "local",
    workers: WorkersOption = None,
    worker_memory: WorkerMemoryOption = None,
) -> None:
    """Aggregate incidents into a zero-filled unit x period cube (count, severity, rate, ...)."""
    from geo_crime.core.errors import ConfigError
    from geo_crime.core.io_utils import check_output_path
    from geo_crime.cube.panel import make_cube
    from geo_crime.cube.rates import attach_population
    from geo_crime.ingest import read_incidents_parquet
    from geo_crime.ingest.store import is_incident_dataset, read_incident_dataset
    from geo_crime.record.coverage import check_coverage
    from geo_crime.units import make_units, unit_files

    cluster = _cluster_options(engine, scheduler, workers, worker_memory)
    inputs = [incidents, *unit_files(unit, study_area)]  # the polygon layers are inputs too
    check_output_path(output, inputs=inputs, formats=(".parquet",))
    if cluster is not None:
        from geo_crime.cube.dask import (
            cluster_client,
            cube_columns,
            dask_cube,
            load_distributed,
        )

        if not is_incident_dataset(incidents):
            raise ConfigError(
                f"{incidents}: --engine dask reads a dataset folder written by "
                "'geo-crime ingest ... --dataset DIR'"
            )
        with cluster_client(cluster.scheduler, cluster.workers, cluster.worker_memory) as client:
            held = load_distributed(incidents, client, columns=cube_columns(unit))
            units = make_units(unit, held.unit_input(unit), study_area=study_area)
            if population:
                units = attach_population(units)
            result = dask_cube(
                held, units, freq=freq, coverage=None if include_incomplete else True
            )
            held.release()
    else:
        if is_incident_dataset(incidents):  # only the columns a cube reads
            from geo_crime.cube.dask import dataset_columns

            frame, _ = read_incident_dataset(incidents, columns=dataset_columns(unit))
        else:
            frame = read_incidents_parquet(incidents)
        units = make_units(unit, frame, study_area=study_area)
        if population:
            units = attach_population(units)
        coverage = None if include_incomplete else check_coverage(frame, freq=freq)
        result = make_cube(frame, units, freq=freq, coverage=coverage)
    result.save(output)
    assignment = result.meta["assignment"]
    share = result.period_complete_share()
    typer.echo(
        f"cube {result.shape[0]:,} units x {result.shape[1]:,} periods ({freq}); "
        f"{assignment['assigned']:,} incidents in units, {assignment['outside']:,} outside, "
        f"{assignment['not_spatially_valid']:,} without valid coordinates; "
        f"{int((share == 1).sum())} periods complete for every unit -> {output}"
    )


@command()
def hotspots(
    cube_file: CubeArgument,
    output: Annotated[
        Path,
        typer.Option(
            "-o",
            "--output",
            metavar="FILE",
            help="Result table to write (.geojson, .gpkg, .parquet, .csv).",
        ),
    ],
    stat: Annotated[
        str,
        typer.Option("--stat", metavar="NAME", help="Statistic: moran, lisa, gi or emerging."),
    ] = "gi",
    measure: Annotated[
        str,
        typer.Option(
            "--measure",
            metavar="NAME",
            help="Value tested: severity, count, harm, rate or cat:<category>.",
        ),
    ] = "severity",
    permutations: PermutationsOption = 999,
    seed: SeedOption = 0,
    fdr: Annotated[
        bool, typer.Option("--fdr", help="Control the false discovery rate (Benjamini-Hochberg).")
    ] = False,
    time_window: Annotated[
        int,
        typer.Option(
            "--time-window", metavar="N", help="Emerging only: neighbouring periods pooled."
        ),
    ] = 0,
) -> None:
    """Moran's I, LISA, Getis-Ord Gi* or emerging hot spots on a cube, as a table per unit."""
    from geo_crime.core.io_utils import TABLE_FORMATS, check_output_path, write_table
    from geo_crime.cube.panel import Cube
    from geo_crime.stats.run import run_statistic

    check_output_path(output, inputs=[cube_file], formats=TABLE_FORMATS)
    loaded = Cube.load(cube_file)
    result = run_statistic(
        loaded,
        stat,
        measure=measure,
        permutations=permutations,
        seed=seed,
        fdr=fdr,
        time_window=time_window,
    )
    write_table(result.table, output)
    summary = {k: v for k, v in result.summary.items() if k != "weights"}
    typer.echo(f"{stat}: {json.dumps(summary, default=str)}")
    typer.echo(f"wrote {len(result.table):,} units to {output}")


@command()
def train(
    cube_file: CubeArgument,
    output: Annotated[
        Path, typer.Option("-o", "--output", metavar="FOLDER", help="Model folder to write.")
    ],
    target: Annotated[
        str, typer.Option(metavar="NAME", help="What to forecast: severity, count or harm.")
    ] = "severity",
    fast: Annotated[
        bool, typer.Option("--fast", help="Use the small, fast Keras configuration.")
    ] = False,
    tune_trials: Annotated[
        int,
        typer.Option(
            "--tune", metavar="TRIALS", help="keras-tuner trials before training (0 = none)."
        ),
    ] = 0,
    seed: SeedOption = 0,
) -> None:
    """Train the pooled Keras forecaster on a cube (complete periods only) and save it."""
    import dataclasses

    from geo_crime.core.io_utils import check_output_path, clean_stale_staging, describe_cleaned
    from geo_crime.cube.panel import Cube
    from geo_crime.forecast import DEFAULT_CONFIG, FAST_CONFIG
    from geo_crime.forecast import train as train_model

    check_output_path(output, inputs=[cube_file], folder=True, replaces=True)
    cleaned = clean_stale_staging(output.parent)
    if cleaned:
        typer.echo(describe_cleaned(cleaned), err=True)
    loaded = Cube.load(cube_file)
    config = dataclasses.replace(FAST_CONFIG if fast else DEFAULT_CONFIG, target=target)
    if tune_trials:
        from geo_crime.forecast import tune_and_train

        model = tune_and_train(loaded, config=config, max_trials=tune_trials, seed=seed)
    else:
        with BarReporter("train", console) as bar, reporting(bar):
            model = train_model(loaded, config=config, seed=seed)
    path = model.save(output)
    typer.echo(f"saved model to {path}")


@command()
def evaluate(
    cube_file: CubeArgument,
    output: Annotated[
        Path,
        typer.Option(
            "-o",
            "--output",
            metavar="FOLDER",
            help="Folder for the metrics (Markdown, JSON) and plots.",
        ),
    ],
    origins: Annotated[
        int,
        typer.Option(
            "--origins", metavar="N", min=0, help="Rolling forecast origins (0: every usable one)."
        ),
    ] = 0,
    refit_every: Annotated[
        int,
        typer.Option(
            metavar="K", min=0, help="Refit the models every K origins (0: at most 6 fits each)."
        ),
    ] = 0,
    models: Annotated[
        str | None,
        typer.Option(
            "--models", metavar="NAMES", help="Comma-separated model names (default: all)."
        ),
    ] = None,
    fast: Annotated[
        bool, typer.Option("--fast", help="Use the small, fast Keras configuration.")
    ] = False,
    seed: SeedOption = 0,
) -> None:
    """Backtest the Keras model and every baseline (rolling origin, no look-ahead)."""
    from geo_crime.core.io_utils import check_output_path
    from geo_crime.cube.panel import Cube
    from geo_crime.forecast import DEFAULT_CONFIG, FAST_CONFIG
    from geo_crime.forecast import evaluate as backtest
    from geo_crime.report.forecast import write_forecast_report

    check_output_path(output, inputs=[cube_file], folder=True)
    loaded = Cube.load(cube_file)
    chosen = [m.strip() for m in models.split(",")] if models else None
    with BarReporter("backtest", console) as bar, reporting(bar):
        result = backtest(
            loaded,
            models=chosen,
            n_origins=origins or None,
            refit_every=refit_every or None,
            config=FAST_CONFIG if fast else DEFAULT_CONFIG,
            seed=seed,
            name=cube_file.stem,
        )
    files = write_forecast_report(result, output)
    columns = ("n", "mae", "rmse", "poisson_deviance", "total_bias", "pai_5", "pei_5")
    columns = [c for c in columns if c in result.metrics.columns]
    typer.echo(result.metrics[columns].round(3).to_string())
    for path in files:
        typer.echo(f"wrote {path}")


@command()
def predict(
    cube_file: CubeArgument,
    model: Annotated[
        Path,
        typer.Option("--model", metavar="FOLDER", help="Model folder from 'geo-crime train'."),
    ],
    output: Annotated[
        Path,
        typer.Option(
            "-o", "--output", metavar="FILE", help="CSV of next-period forecasts to write."
        ),
    ],
) -> None:
    """Forecast each unit's next period (with 80% intervals when the model has them)."""
    from geo_crime.core.io_utils import TABLE_FORMATS, check_output_path, write_table
    from geo_crime.cube.panel import Cube
    from geo_crime.forecast import load_model, predict_next

    check_output_path(output, inputs=[cube_file, model], formats=TABLE_FORMATS)
    loaded = Cube.load(cube_file)
    table = predict_next(load_model(model), loaded)
    write_table(table, output)
    typer.echo(f"wrote {len(table):,} unit forecasts for {table['period'].iloc[0]} to {output}")


def _cube_layers(cube_file: Path, stats: str, permutations: int, seed: int):
    """Load a cube and run the requested statistics (shared by ``map`` and ``export``)."""
    from geo_crime.cube.panel import Cube
    from geo_crime.stats.run import run_statistic
    from geo_crime.stats.weights import build_weights

    loaded = Cube.load(cube_file)
    weights = build_weights(loaded.units)
    tables = {}
    for stat in [s.strip() for s in stats.split(",") if s.strip()]:
        tables[stat] = run_statistic(
            loaded, stat, permutations=permutations, seed=seed, weights=weights
        ).table
    return loaded, tables


def _public_cube_tables(loaded, tables, k_anonymity: int, forecast: Path | None):
    """The publishable tables of a cube (see :mod:`geo_crime.publish.privacy`) and who is hidden."""
    from geo_crime.publish.privacy import cube_disclosure, publishable

    summary, suppressed = cube_disclosure(loaded, k_anonymity)
    public = publishable(summary, suppressed, statistics=tables, forecast=_read_forecast(forecast))
    return public, suppressed


def _read_forecast(path: Path | None):
    import pandas as pd

    from geo_crime.core.errors import InputError

    if path is None:
        return None
    try:
        frame = pd.read_csv(path, dtype={"unit_id": str})
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    if not {"unit_id", "prediction"} <= set(frame.columns):
        raise InputError(
            f"{path}: a forecast table needs unit_id and prediction columns; "
            f"found {list(frame.columns)}"
        )
    return frame


@command("map")
def map_command(
    cube_file: CubeArgument,
    output: Annotated[Path, typer.Option("-o", "--output", help="HTML map to write.")],
    offline: Annotated[
        bool,
        typer.Option(
            "--offline/--cdn",
            help="Inline Leaflet (default: the map needs no internet) or load it from a CDN.",
        ),
    ] = True,
    tiles: Annotated[
        str,
        typer.Option(
            "--tiles",
            help="Web tiles under the vector base map: osm (default; the vector base map "
            "when offline), carto (needs GEO_CRIME_CARTO_KEY) or none (no request leaves the "
            "page).",
        ),
    ] = "osm",
    stats: Annotated[
        str, typer.Option("--stats", help="Layers to compute: any of gi,lisa,emerging.")
    ] = "gi,lisa,emerging",
    forecast: Annotated[
        Path | None, typer.Option("--forecast", help="CSV from 'geo-crime predict'.")
    ] = None,
    k_anonymity: KAnonymityOption = DEFAULT_K,
    permutations: PermutationsOption = 999,
    seed: SeedOption = 0,
) -> None:
    """An interactive folium map of a cube: severity, Gi*, LISA, emerging, forecast layers.

    Offline by default: Leaflet is inlined and the base map is drawn from the shipped city,
    division and neighbourhood boundaries; ``--tiles carto|osm`` adds web tiles.
    """
    from geo_crime.core.errors import ConfigError
    from geo_crime.core.io_utils import check_output_path
    from geo_crime.publish.maps import MapLayers, write_map
    from geo_crime.publish.privacy import hidden_mask
    from geo_crime.settings import MAP_TILES
    from geo_crime.units import division_units

    if tiles.lower() not in MAP_TILES:
        raise ConfigError(f"--tiles must be none, carto or osm, got {tiles!r}")
    check_output_path(
        output, inputs=[cube_file, *([forecast] if forecast else [])], formats=(".html", ".htm")
    )
    loaded, tables = _cube_layers(cube_file, stats, permutations, seed)
    public, suppressed = _public_cube_tables(loaded, tables, k_anonymity, forecast)
    layers = MapLayers.from_cube(
        loaded,
        gi=public.get("gi"),
        lisa=public.get("lisa"),
        emerging=public.get("emerging"),
        forecast=public.get("forecast"),
        divisions=division_units(),
    )
    layers.units["suppressed"] = hidden_mask(suppressed, layers.units["unit_id"])
    chosen = None if tiles.lower() == MAP_TILES[0] else tiles.lower()
    path = write_map(layers, output, offline=offline, k_anonymity=k_anonymity, tiles=chosen)
    typer.echo(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")


@command("export")
def export_command(
    cube_file: CubeArgument,
    output: Annotated[
        Path, typer.Option("-o", "--output", metavar="FOLDER", help="Folder to write into.")
    ],
    formats: Annotated[
        list[str],
        typer.Option(
            "--format", metavar="FORMAT", help="File format: geojson, gpkg or parquet (repeatable)."
        ),
    ] = ["geojson", "gpkg", "parquet"],  # noqa: B006 - typer needs a literal default
    stats: Annotated[
        str,
        typer.Option(
            "--stats", metavar="NAMES", help="Statistics tables: any of gi,lisa,emerging."
        ),
    ] = "gi,lisa,emerging",
    k_anonymity: KAnonymityOption = DEFAULT_K,
    permutations: PermutationsOption = 999,
    seed: SeedOption = 0,
) -> None:
    """GIS layers of a cube (unit totals and statistics), privacy-safe, for QGIS/ArcGIS."""
    from geo_crime.core.io_utils import check_output_path
    from geo_crime.publish.export import check_export_formats, export_layers

    check_export_formats(formats)
    check_output_path(output, inputs=[cube_file], folder=True)
    loaded, tables = _cube_layers(cube_file, stats, permutations, seed)
    public, _ = _public_cube_tables(loaded, tables, k_anonymity, None)
    summary = public["summary"]
    files = export_layers(
        public,
        output,
        formats=formats,
        k_anonymity=k_anonymity,
        counts=summary.set_index("unit_id")["count"],
    )
    for path in files:
        typer.echo(f"wrote {path}")


@command()
def run(
    inputs: Annotated[
        list[str] | None,
        typer.Argument(
            help=(
                "Crime files/folders, or one --dataset folder from 'geo-crime ingest' "
                "(default: the real data in GEO_CRIME_DATA)."
            )
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option("--config", metavar="FILE", help="TOML file with run settings."),
    ] = None,
    name: Annotated[
        str | None,
        typer.Option("--name", metavar="NAME", help="Run name: outputs go to <outputs>/<name>/."),
    ] = None,
    outputs: Annotated[
        Path | None,
        typer.Option("--outputs", metavar="FOLDER", help="Outputs folder (default: outputs/)."),
    ] = None,
    cache: Annotated[
        bool, typer.Option(help="Use the content-keyed cache of cleaned incidents.")
    ] = True,
    tiles: Annotated[
        str | None,
        typer.Option(
            "--tiles",
            metavar="none|carto|osm",
            help="Web tiles under the maps' vector base map (default osm, with the vector base "
            "map when offline; none: no request leaves the maps).",
        ),
    ] = None,
    quiet: Annotated[
        bool,
        typer.Option(
            "--quiet", "-q", help="No progress, no file list: print only the output folder."
        ),
    ] = False,
    count: Annotated[
        str | None,
        typer.Option(
            "--count",
            metavar="incidents|offenses",
            help=(
                "What a row is: incidents (default: NIBRS offences collapsed to one row per "
                "case) or offenses (every NIBRS offence row kept)."
            ),
        ),
    ] = None,
    engine: EngineOption = "memory",
    scheduler: SchedulerOption = "local",
    workers: WorkersOption = None,
    worker_memory: WorkerMemoryOption = None,
) -> None:
    """Run the whole pipeline on the default (or given) data into outputs/<run-name>/.

    On a terminal a live display shows the current stage and sub-step, a bar for stages that
    count their steps (fits, epochs) and the elapsed time of the stage and of the run; when
    standard error is not a terminal (CI, pipes) each stage prints plain lines instead. Then the
    files written are listed on standard output. With --quiet nothing but errors (on standard
    error) and the output folder (one line on standard output) is printed, for scripts.

    With --engine dask the input is one dataset folder ('geo-crime ingest ... --dataset DIR')
    and every stage that reads incident rows runs on a Dask cluster (--scheduler ADDRESS, or a
    local one); the statistics, forecasts, maps and report are computed here from its tables.
    """
    from geo_crime.pipeline import run_pipeline
    from geo_crime.settings import RunSettings

    settings = RunSettings.from_sources(
        config_file=config,
        inputs=inputs,
        name=name,
        outputs=outputs,
        cache=None if cache else False,
        map_tiles=tiles.lower() if tiles else None,
        count=count.lower() if count else None,
    )
    cluster = _cluster_options(engine, scheduler, workers, worker_memory)
    result = run_pipeline(settings, console=console, quiet=quiet, cluster=cluster)
    if quiet:
        typer.echo(str(result.folder))
        return
    typer.echo(f"run '{settings.name}' wrote {len(result.files)} files to {result.folder}:")
    for path in result.files:
        typer.echo(f"  {path}")


@command()
def fetch(
    dataset: Annotated[
        str,
        typer.Option(
            "--dataset",
            metavar="legacy|nibrs|all",
            help=(
                "Which data set: legacy (2nrs-mtv8, frozen: 2020-01-01 to 2024-12-30, keyed by "
                "dr_no), nibrs (k7nn-b2ep: 2024-03-07 to about two weeks ago, one row per "
                "offence, keyed by uniquenibrno) or all (both, each into its own file in the "
                "--out folder; a 2024 series needs both)."
            ),
        ),
    ] = "legacy",
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            metavar="PATH",
            help=(
                "Output .ndjson.gz; with --dataset all, the folder for both files "
                "(default: the downloads folder of the cache)."
            ),
        ),
    ] = None,
    page_size: Annotated[
        int, typer.Option("--page-size", metavar="ROWS", help="Rows per request.")
    ] = 50_000,
    base_url: Annotated[
        str | None,
        typer.Option(
            "--base-url",
            metavar="URL",
            help=(
                "Socrata API instead of the city's portal: one data set's resource URL, or a "
                "template containing {id} or a root ending in /resource/, which each data "
                "set's Socrata id is put into (needed with --dataset all)."
            ),
        ),
    ] = None,
    where: Annotated[
        str | None,
        typer.Option(
            "--where",
            metavar="SOQL",
            help=(
                "SoQL filter for a partial download; with --dataset all it applies to both "
                "(use fields both have, such as date_occ or area)."
            ),
        ),
    ] = None,
    resume: Annotated[bool, typer.Option(help="Resume an interrupted download.")] = True,
    boundaries: Annotated[
        bool, typer.Option("--boundaries", help="Fetch the official boundary layers instead.")
    ] = False,
    boundaries_dir: Annotated[
        Path | None,
        typer.Option(
            "--boundaries-dir",
            metavar="FOLDER",
            help="Where boundary layers go (default: the cache).",
        ),
    ] = None,
    timeout: Annotated[
        float,
        typer.Option(
            "--timeout",
            metavar="SECONDS",
            min=0.001,
            help=(
                "Seconds one request may take in all, body included (a server sending a byte "
                "now and then cannot hold it longer); past it the request is retried."
            ),
        ),
    ] = 300.0,
) -> None:
    """Download the LAPD crime data (or the official boundaries) from the city's open data.

    legacy is "Crime Data from 2020 to 2024" (Socrata 2nrs-mtv8): frozen, 1,004,894 rows,
    occurrences from 2020-01-01 to 2024-12-30. nibrs is "LAPD NIBRS Offenses" (k7nn-b2ep): every
    NIBRS record from 2024-03-07 to today, one row per offence, refreshed about every two weeks
    and 12-14 days behind. Through 2024 the two split LAPD's reports between them: a 2024
    series needs both. (The retired 2024-25 set y8y3-fqfu answers 403.)

    Each is paged in the order of its key and de-duplicated on it, checked against the server's
    row count, resumed after an interruption, and written only when complete and verified. With
    --dataset all they are downloaded one after the other into lapd_crime_2nrs-mtv8.ndjson.gz
    and lapd_nibrs_k7nn-b2ep.ndjson.gz in the --out folder. If the second fails, its file is not
    written and the first one, complete and verified, is kept.

    When a file is written its row count is printed, then its rows per year and month of
    date_occ (also written beside it as FILE.months.tsv). A warning says when the span is not
    what the set holds: a nibrs download without 2024 rows (the set held only the current year
    until 2026-08-18) or starting after 2024-03-31, a legacy download ending before December
    2024. With --where the filter may explain a short span: a note says so instead.

    To download from another server (a local copy, a test server), give --base-url
    http://127.0.0.1:8080/resource/{id}.json or http://127.0.0.1:8080/resource/ .
    """
    import logging

    from rich.logging import RichHandler

    from geo_crime.net import fetch as fetch_mod
    from geo_crime.net.catalogue import ALL_DATASETS, dataset_names
    from geo_crime.net.spans import format_month_table

    logger = logging.getLogger("geo_crime.net.fetch")
    logger.addHandler(RichHandler(console=console, show_path=False))
    logger.setLevel(logging.WARNING)
    names = dataset_names(dataset.strip().lower())
    if boundaries:
        from geo_crime.core.io_utils import check_output_path
        from geo_crime.units import fetch_boundary, load_manifest

        if boundaries_dir is not None:
            check_output_path(boundaries_dir, folder=True)
        for name in load_manifest()["layers"]:
            path = fetch_boundary(name, cache_dir=boundaries_dir, timeout=timeout)
            typer.echo(f"{name}: {path}")
        return

    def report(result: fetch_mod.FetchResult, prefix: str = "") -> None:
        typer.echo(
            f"{prefix}{result.rows:,} rows -> {result.path} (sha256 {result.sha256}, "
            f"{result.pages_reused} pages resumed, {result.retries} retries)"
        )
        months = result.months
        if months is not None:
            typer.echo(format_month_table(months))
            for note in months.notes:
                typer.echo(f"note: {months.label}: {note}")
            for warning in months.warnings:
                typer.echo(f"warning: {months.label}: {warning}", err=True)

    from geo_crime.core.io_utils import check_output_path

    options = {"page_size": page_size, "where": where, "resume": resume, "timeout": timeout}
    if dataset.strip().lower() == ALL_DATASETS:
        if out is not None:
            check_output_path(out, folder=True)
        fetch_mod.fetch_datasets(
            out,
            datasets=names,
            base_url=base_url or None,
            on_written=lambda result: report(result, f"{result.dataset}: "),
            **options,
        )
        return
    if out is not None:
        check_output_path(out)
    (name,) = names
    result = fetch_mod.fetch_incidents(out, dataset=name, base_url=base_url or None, **options)
    report(result)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())

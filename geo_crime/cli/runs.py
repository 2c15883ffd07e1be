"""The ``run`` command: the whole pipeline."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from geo_crime.cli.app import (
    EngineOption,
    SchedulerOption,
    WorkerMemoryOption,
    WorkersOption,
    command,
    console,
    word_parser,
)
from geo_crime.core.options import EngineKind, Tiles
from geo_crime.engines import engine_choice


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
        Tiles | None,
        typer.Option(
            "--tiles",
            metavar="none|carto|osm",
            parser=word_parser(Tiles, "--tiles"),
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
    engine: EngineOption = EngineKind.MEMORY,
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
        map_tiles=tiles,
        count=count.lower() if count else None,
    )
    cluster = engine_choice(engine, scheduler, workers, worker_memory)
    result = run_pipeline(settings, console=console, quiet=quiet, cluster=cluster)
    if quiet:
        typer.echo(str(result.folder))
        return
    typer.echo(f"run '{settings.name}' wrote {len(result.files)} files to {result.folder}:")
    for path in result.files:
        typer.echo(f"  {path}")

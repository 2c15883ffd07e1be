"""Commands on cubes: ``cube``, ``hotspots``, ``map`` and ``export``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from geo_crime.cli.app import (
    CubeArgument,
    EngineOption,
    FreqOption,
    KAnonymityOption,
    PermutationsOption,
    SchedulerOption,
    SeedOption,
    TilesOption,
    WorkerMemoryOption,
    WorkersOption,
    command,
)
from geo_crime.core.config import DEFAULT_K
from geo_crime.core.options import EngineKind, Tiles
from geo_crime.core.periods import Freq
from geo_crime.engines import engine_choice


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
    freq: FreqOption = Freq.WEEK,
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
    engine: EngineOption = EngineKind.MEMORY,
    scheduler: SchedulerOption = "local",
    workers: WorkersOption = None,
    worker_memory: WorkerMemoryOption = None,
) -> None:
    """Aggregate incidents into a zero-filled unit x period cube (count, severity, rate, ...)."""
    from geo_crime.core.io_utils import check_output_path
    from geo_crime.cube.rates import attach_population
    from geo_crime.engines import engine_client, incidents_for_units
    from geo_crime.units import make_units, unit_files
    from geo_crime.units.spec import UnitSpec

    spec = UnitSpec.parse(unit)
    cluster = engine_choice(engine, scheduler, workers, worker_memory)
    inputs = [incidents, *unit_files(unit, study_area)]  # the polygon layers are inputs too
    check_output_path(output, inputs=inputs, formats=(".parquet",))
    with engine_client(cluster) as client:
        rows = incidents_for_units(incidents, client, unit)
        units = make_units(spec, rows.unit_input(unit), study_area=study_area)
        if population:
            units = attach_population(units)
        result = rows.cube(units, freq=freq, complete_only=not include_incomplete)
        rows.release()
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
    tiles: TilesOption = Tiles.OSM,
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
    from geo_crime.core.io_utils import check_output_path
    from geo_crime.publish.outputs import public_cube, read_forecast_table, write_public_map
    from geo_crime.units import division_units

    check_output_path(
        output, inputs=[cube_file, *([forecast] if forecast else [])], formats=(".html", ".htm")
    )
    loaded, tables = _cube_layers(cube_file, stats, permutations, seed)
    public = public_cube(
        loaded, tables, k_anonymity=k_anonymity, forecast=read_forecast_table(forecast)
    )
    path = write_public_map(
        public,
        output,
        divisions=division_units(),
        offline=offline,
        k_anonymity=k_anonymity,
        tiles=tiles,
    )
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
    from geo_crime.publish.export import check_export_formats
    from geo_crime.publish.outputs import public_cube, write_public_layers

    check_export_formats(formats)
    check_output_path(output, inputs=[cube_file], folder=True)
    loaded, tables = _cube_layers(cube_file, stats, permutations, seed)
    public = public_cube(loaded, tables, k_anonymity=k_anonymity)
    files = write_public_layers(public, output, formats=formats, k_anonymity=k_anonymity)
    for path in files:
        typer.echo(f"wrote {path}")

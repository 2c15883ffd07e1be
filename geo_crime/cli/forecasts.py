"""Forecast commands: ``train``, ``evaluate`` and ``predict``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from geo_crime.cli.app import (
    CubeArgument,
    SeedOption,
    command,
    console,
)
from geo_crime.core.progress import BarReporter, reporting


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

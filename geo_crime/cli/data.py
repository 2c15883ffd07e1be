"""Commands that read and check data: ``ingest``, ``coverage`` and ``fetch``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from geo_crime.cli.app import (
    CountOption,
    command,
    console,
    progress_reader,
)
from geo_crime.core.options import CountUnit
from geo_crime.core.periods import Freq


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
    count: CountOption = CountUnit.INCIDENTS,
) -> None:
    """Read LAPD exports into one cleaned, typed, scored incidents Parquet file (or dataset)."""
    from geo_crime.core.errors import ConfigError
    from geo_crime.core.io_utils import atomic_path, check_output_path
    from geo_crime.ingest import expand_inputs, input_folders, load_incidents

    if negative_age not in ("null", "abs"):
        raise ConfigError(f"--negative-age must be 'null' or 'abs', got {negative_age!r}")
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
    with progress_reader() as progress:
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
        Freq,
        typer.Option(
            "--freq",
            metavar="M|W|D",
            parser=Freq.parse,
            help="Periods judged: M (months), W (weeks) or D (days).",
        ),
    ] = Freq.MONTH,
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
        from geo_crime.core.schema import COVERAGE_COLUMNS

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
    fmt = Freq.parse(result.freq).label_format
    for row in result.citywide().itertuples():
        flag = f"  {row.areas_incomplete} areas incomplete" if row.areas_incomplete else ""
        typer.echo(f"{row.period:{fmt}}  {row.count:>8,.0f}{flag}")
    typer.echo(
        f"{len(result.incomplete)} of {len(result.union)} (area, period) cells not complete, "
        "judged on all sources together"
    )


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

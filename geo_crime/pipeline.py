"""Wire the stages together: one call (or ``geo-crime run``) produces every output of a run.

The pipeline only calls stage functions in order and writes their results under
``outputs/<run-name>/``; it holds no analysis of its own. Settings come from defaults, then an
optional TOML file, then command-line flags (later wins).
"""

from __future__ import annotations

import datetime as dt
import time
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path

from rich.console import Console

from geo_crime.errors import ConfigError


@dataclass
class RunSettings:
    """Settings of one pipeline run (every field can be set in the TOML file's ``[run]`` table).

    Attributes
    ----------
    name
        Run name: outputs go to ``outputs/<name>/`` (default: ``run-YYYYmmdd-HHMMSS``).
    inputs
        Crime files, folders or globs (default: the real data in ``GEO_CRIME_DATA``).
    outputs
        The outputs folder.
    negative_age
        Negative victim age policy (``null`` or ``abs``).
    coverage_threshold
        Share of the baseline below which an (area, month) is incomplete.
    """

    name: str = ""
    inputs: list[str] = field(default_factory=list)
    outputs: Path = Path("outputs")
    negative_age: str = "null"
    coverage_threshold: float = 0.6

    @classmethod
    def from_sources(
        cls,
        *,
        config_file: Path | None = None,
        **overrides: object,
    ) -> RunSettings:
        """Build settings from defaults, a TOML file (``[run]`` table) and explicit overrides.

        Parameters
        ----------
        config_file
            Optional TOML file.
        **overrides
            Values that win over the file; ``None`` values are ignored.

        Returns
        -------
        RunSettings
        """
        values: dict[str, object] = {}
        if config_file is not None:
            try:
                data = tomllib.loads(Path(config_file).read_text(encoding="utf-8"))
            except FileNotFoundError:
                raise ConfigError(f"{config_file}: no such config file") from None
            except tomllib.TOMLDecodeError as exc:
                raise ConfigError(f"{config_file}: invalid TOML ({exc})") from None
            section = data.get("run", data)
            known = {f.name for f in fields(cls)}
            unknown = sorted(set(section) - known)
            if unknown:
                raise ConfigError(
                    f"{config_file}: unknown setting(s) {unknown}; known: {sorted(known)}"
                )
            values.update(section)
        values.update({k: v for k, v in overrides.items() if v is not None})
        settings = cls(**values)
        settings.outputs = Path(settings.outputs)
        if not settings.name:
            settings.name = dt.datetime.now().strftime("run-%Y%m%d-%H%M%S")
        if settings.negative_age not in {"null", "abs"}:
            raise ConfigError("negative_age must be 'null' or 'abs'")
        return settings


@dataclass
class RunResult:
    """What a run produced."""

    folder: Path
    files: list[Path] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)


def run_pipeline(settings: RunSettings, *, console: Console | None = None) -> RunResult:
    """Run every stage for ``settings`` and write the outputs.

    Parameters
    ----------
    settings
        The run settings.
    console
        Where progress goes (stderr by default).

    Returns
    -------
    RunResult
        The output folder, the files written and per-stage timings.
    """
    from geo_crime.config import default_crime_inputs
    from geo_crime.coverage import check_coverage
    from geo_crime.ingest import expand_inputs, load_incidents
    from geo_crime.io_utils import atomic_path, atomic_write_text
    from geo_crime.report import build_report

    console = console or Console(stderr=True)
    folder = settings.outputs / settings.name
    folder.mkdir(parents=True, exist_ok=True)
    result = RunResult(folder)

    def stage(label: str):
        return _Stage(label, result, console)

    with stage("ingest"):
        inputs = settings.inputs or [str(p) for p in default_crime_inputs()]
        files = expand_inputs(inputs)
        incidents, cleaning = load_incidents(files, negative_age=settings.negative_age)
        path = folder / "incidents.parquet"
        with atomic_path(path) as tmp:
            incidents.to_parquet(tmp, index=False)
        result.files.append(path)
        result.files.append(cleaning.write_json(folder / "cleaning_report.json"))

    with stage("coverage"):
        coverage = check_coverage(incidents, threshold=settings.coverage_threshold)
        path = folder / "coverage.csv"
        with atomic_path(path) as tmp:
            coverage.table.to_csv(tmp, index=False)
        result.files.append(path)

    with stage("report"):
        text = build_report(incidents=incidents, cleaning=cleaning, coverage=coverage, inputs=files)
        result.files.append(atomic_write_text(folder / "report.md", text))
    return result


class _Stage:
    """Times a stage and prints one progress line for it."""

    def __init__(self, label: str, result: RunResult, console: Console) -> None:
        self.label, self.result, self.console = label, result, console

    def __enter__(self) -> _Stage:
        self.start = time.perf_counter()
        self.console.print(f"[bold]{self.label}[/bold] ...")
        return self

    def __exit__(self, *exc: object) -> None:
        elapsed = time.perf_counter() - self.start
        self.result.timings[self.label] = elapsed
        if exc[0] is None:
            self.console.print(f"  {self.label} done in {elapsed:.1f} s")

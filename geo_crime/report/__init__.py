"""The run report: what the data holds, what was cleaned, where coverage breaks, and its limits.

The report is Markdown built from the results of the stages (no stage is re-run here). Every
report carries the responsible-use section: recorded crime is not all crime, forecasts used to
allocate patrols can create feedback loops, and the data has coverage breaks.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from geo_crime.core.config import DEFAULT_K
from geo_crime.ingest.cleaning import CleaningReport
from geo_crime.ingest.severity import SEVERITY_VERSION
from geo_crime.ingest.store import dataset_parts, is_incident_dataset
from geo_crime.publish.privacy import suppression_off
from geo_crime.record.coverage import CoverageResult
from geo_crime.record.tallies import RunTally
from geo_crime.report.findings import (
    contents_lines,
    coverage_caveats,
    key_findings_lines,
    output_links,
)
from geo_crime.report.markdown import markdown_table, markdown_to_html, md_code, md_text
from geo_crime.report.methods import methods_lines
from geo_crime.report.series import NIBRS_PRECISION_NOTE

__all__ = [
    "ANALYSIS_NOTE",
    "LIMITATIONS",
    "build_report",
    "data_summary",
    "markdown_table",
    "markdown_to_html",
    "md_code",
    "md_text",
]

#: The note beside the analysis files of a run (``analysis/README.txt``).
ANALYSIS_NOTE = """\
Files in this folder are for analysis, not for publication: incidents.parquet holds victim-level
fields (age, sex, descent) and the cubes and statistic tables hold exact small counts. Publish
only what is under public/ (maps, GIS layers with small counts suppressed, figures) and the
report.
"""


def dataset_note(dataset: Path) -> str:
    """The analysis folder's note for a run that read an incident dataset on a cluster."""
    return (
        "Files in this folder are for analysis, not for publication: the incident rows, with "
        f"their victim-level fields (age, sex, descent), stay in the dataset {dataset} (no copy "
        "is written here), and the cubes and statistic tables hold exact small counts. Publish "
        "only what is under public/ (maps, GIS layers with small counts suppressed, figures) "
        "and the report.\n"
    )


LIMITATIONS = """\
## Limitations and responsible use

- **Recorded crime is not all crime.** These are incidents reported to and recorded by the LAPD.
  Reporting rates differ by offence (most thefts and many assaults are never reported), by
  neighbourhood and by community trust in the police. A "cold" area may be under-reported, not
  safe.
- **Feedback loops.** Sending more patrols where the model predicts more crime records more crime
  there (more stops, more discovered offences), which the next model reads as confirmation. Use
  forecasts to direct prevention and services as much as enforcement, weight violent harm over
  discretionary offences, and audit allocations over time.
- **Coverage breaks.** LAPD moved to a new records system on 7 March 2024 and the legacy data set
  thins out area by area from then; the slices used here also cover only parts of 2020-2021 and
  2024. Periods flagged incomplete are excluded from statistics and models by default; trends
  across the break are not comparable. Forecasts start from the last period completely recorded
  for most units, which can be months before the end of the data: each forecast names its
  period.
- **Locations are approximate.** LAPD rounds addresses to the hundred block and some rows carry
  (0, 0) coordinates; reporting-district polygons derived from incident points are approximate.
- **Severity is a choice.** The 0-100 index and the harm weights encode judgements about
  seriousness (see the severity table and its rationale column); other weightings rank places
  differently.
- **Privacy.** Public exports carry no victim-level fields, and small counts are suppressed.
"""


def limitations(k_anonymity: int = DEFAULT_K) -> str:
    """:data:`LIMITATIONS`, whose privacy line says so when small counts are not suppressed."""
    off = suppression_off(k_anonymity)
    if not off:
        return LIMITATIONS
    return LIMITATIONS.replace(
        "and small counts are suppressed.", f"but small counts are **not** suppressed: {off}."
    )


#: The heading and note that open the technical appendix.
APPENDIX_LINES = [
    "## Technical appendix",
    "",
    "Everything below supports the briefing: the outputs, the data and what was cleaned, "
    "coverage, the severity index, the methods (each explained once), and each study's "
    "statistics, rankings and forecast backtests.",
    "",
]


def data_summary(incidents: pd.DataFrame | RunTally) -> pd.DataFrame:
    """Rows, date range and areas per source schema (of the rows, or of their tally)."""
    return _run_tally(incidents).data_summary()


def _inputs_phrase(inputs: Sequence[Path]) -> str:
    """``23 file(s)``, or ``the incident dataset `store` (2 batches)`` for a dataset folder."""
    if len(inputs) == 1 and is_incident_dataset(inputs[0]):
        batches = int(dataset_parts(inputs[0])[1]["batches"])
        return f"the incident dataset `{Path(inputs[0]).name}` ({batches} batch(es))"
    return f"{len(inputs)} file(s)"


def _run_tally(incidents: pd.DataFrame | RunTally) -> RunTally:
    return incidents if isinstance(incidents, RunTally) else RunTally.of_rows(incidents)


def build_report(
    *,
    incidents: pd.DataFrame | RunTally,
    cleaning: CleaningReport,
    coverage: CoverageResult,
    inputs: Sequence[Path] = (),
    sections: Sequence[str] = (),
    division_check=None,
    findings: Sequence[dict] = (),
    outputs: Sequence[Path] = (),
    folder: Path | None = None,
    break_lines: Sequence[str] = (),
    engine: str = "",
    briefing: Sequence[str] = (),
    k_anonymity: int = DEFAULT_K,
) -> str:
    """Assemble the Markdown report: the briefing, the key findings and the limitations, then
    the technical appendix (outputs, data, cleaning, coverage, severity, methods, studies).

    Parameters
    ----------
    incidents
        Cleaned, scored incidents, or their tally (:class:`geo_crime.record.tallies.RunTally`, what
        the Dask engine sums on a cluster).
    cleaning
        The cleaning report.
    coverage
        The coverage check.
    inputs
        The input files (listed by name).
    sections
        Further Markdown sections from later stages (hot spots, forecasts, recommendations),
        inserted before the limitations.
    division_check
        Optional :class:`~geo_crime.units.DivisionCheck` (incidents located outside the division
        they are recorded in).
    findings
        :func:`geo_crime.report.findings.unit_findings` of every study and unit type: the
        report opens with them (key findings, then contents and links to the outputs).
    outputs, folder
        The files the run wrote and its folder: the public maps, GIS layers, figures and tables
        are linked at the top.
    break_lines
        The section on the March 2024 records-system break (see
        :func:`geo_crime.report.series.break_lines`), after the coverage; empty when the run
        holds one system only.
    engine
        A sentence on where the rows were read (a Dask cluster), after the row count; empty
        for one process.
    briefing
        The opening briefing (:func:`geo_crime.report.briefing.briefing_lines`), before the
        key findings; empty when the run has no weekly city-wide window.
    k_anonymity
        The run's suppression threshold (the methods state it).

    Returns
    -------
    str
        Markdown text.
    """
    tally = _run_tally(incidents)
    parts = _data_lines(tally, inputs, engine, division_check)
    parts += _cleaning_lines(cleaning)
    parts += _coverage_lines(coverage)
    parts.extend(break_lines)
    parts += _synthetic_id_lines(int(getattr(cleaning, "synthetic_ids", 0)))
    parts += _severity_lines(tally)
    parts.extend(methods_lines(k_anonymity))
    for section in sections:
        parts.append(section.rstrip())
        parts.append("")
    body = "\n".join(parts)
    head = ["# geo_crime run report", "", *briefing]
    head += key_findings_lines(findings, coverage_caveats(coverage))
    head += [limitations(k_anonymity), *APPENDIX_LINES]
    links = output_links(outputs, folder) if folder is not None else []
    head += contents_lines("\n".join(links) + "\n" + body)
    head += links
    return "\n".join(head) + "\n" + body


def _data_lines(tally: RunTally, inputs: Sequence[Path], engine: str, division_check) -> list[str]:
    """The ``## Data`` section: rows per source schema, and the incidents located outside the
    division they are recorded in."""
    parts = ["## Data"]
    parts.append(f"{tally.total:,} incidents from {_inputs_phrase(inputs)}.")
    if engine:
        parts.append(engine)
    parts.append("")
    parts.append(markdown_table(tally.data_summary()))
    parts.append("")
    if "nibrs" in tally.systems:
        parts.append(NIBRS_PRECISION_NOTE)
        parts.append("")
    if division_check is not None:
        parts.append(
            f"Of {division_check.checked:,} incidents with coordinates, "
            f"{division_check.n_outside:,} ({division_check.share:.1%}) lie outside the LAPD "
            f"division they are recorded in ({division_check.in_other_division:,} in another "
            f"division, {division_check.outside_all_divisions:,} outside all divisions). They are "
            "kept; spatial units follow the coordinates."
        )
        parts.append("")
    return parts


def _cleaning_lines(cleaning: CleaningReport) -> list[str]:
    """The ``## Cleaning`` section: every row dropped or changed, and the first bad rows."""
    parts = ["## Cleaning"]
    parts.append("Every row dropped or changed, by reason (nothing is dropped silently).")
    parts.append("")
    lines = pd.DataFrame(cleaning.lines(), columns=["what", "rows"])
    parts.append(markdown_table(lines))
    if cleaning.bad_rows:
        parts.append("")
        parts.append(
            "First unparseable rows, by line and reason (their values can name an incident: "
            "they are in `analysis/cleaning_report.json` only):"
        )
        parts.append("")
        parts.extend(f"- {md_code(row.located())}" for row in cleaning.bad_rows[:10])
    parts.append("")
    return parts


def _coverage_lines(coverage: CoverageResult) -> list[str]:
    """The ``## Coverage`` section: how a period is judged, the status per source and the
    city-wide monthly counts."""
    parts = ["## Coverage"]
    parts.append(
        "An (area, month) is judged on all sources and records systems together (through 2024 "
        "the legacy and NIBRS systems split LAPD's reports between them): it is incomplete when "
        f"its count falls below {coverage.threshold:.0%} of a reference that does not drift: "
        "the same month a year earlier when that month was complete, else (after the March "
        "2024 switch) the area's level in the 12 weeks before the switch, else the area's month "
        "in the published annual totals of the full data set. A month is also incomplete when "
        "most of its days lie in weeks that are not complete, and partial when no source spans "
        "it whole. Weekly and daily studies are judged the same way week by week or day by day, "
        "from what was known at the time. Incomplete, partial and missing periods are excluded "
        "from statistics and models by default. Per source (a diagnostic: a source holding part "
        "of a month, as each records system does in 2024, can be incomplete where the union is "
        "not):"
    )
    parts.append("")
    spans = coverage.spans.copy()
    status = coverage.table.pivot_table(
        index="source", columns="status", values="area", aggfunc="size", fill_value=0
    )
    for name in ("complete", "partial", "incomplete", "missing", "unverified"):
        spans[f"{name} (area, month)"] = (
            status[name].reindex(spans["source"]).fillna(0).astype(int).to_numpy()
            if name in status
            else 0
        )
    spans["first_day"] = pd.to_datetime(spans["first_day"]).dt.date
    spans["last_day"] = pd.to_datetime(spans["last_day"]).dt.date
    parts.append(markdown_table(spans))
    parts.append("")
    parts.append(
        "City-wide monthly counts over all sources (months with data) and the number of areas "
        "not completely recorded in the month:"
    )
    parts.append("")
    city = coverage.citywide()
    city = city.loc[city["count"] > 0].copy()
    city["period"] = city["period"].dt.strftime("%Y-%m")
    city["count"] = city["count"].round().astype(int)
    city = city.rename(
        columns={
            "period": "month",
            "areas": "areas with data",
            "areas_incomplete": "areas not complete",
        }
    )
    parts.append(markdown_table(city))
    parts.append("")
    return parts


def _synthetic_id_lines(synthetic: int) -> list[str]:
    """The ``## Incident ids`` section when some incidents carry a synthetic id."""
    if not synthetic:
        return []
    return [
        "## Incident ids",
        f"{synthetic:,} incidents come from sources without LAPD's record number (DR_NO). "
        "They carry a synthetic id (`S` followed by 15 hex digits of a hash of the source "
        "file's name and the record's position in it, flagged in `incident_id_synthetic`): "
        "stable from run to run, never equal to a DR_NO, but not an LAPD id, so they cannot "
        "be matched against other LAPD records, and duplicates among them cannot be detected.",
        "",
    ]


def _severity_lines(tally: RunTally) -> list[str]:
    """The ``## Severity`` section: the index, and points and harm per category."""
    return [
        "## Severity",
        f"Severity index `{SEVERITY_VERSION}`: base score 0-100 per crime code, +10 for a child "
        "or elderly victim, +5/+10/+15 by weapon tier, capped at 100. Harm: custody-day weights. "
        f"The table covers all {tally.total:,} incidents of every source and year (not one "
        "study): severity points and harm days summed per category.",
        "",
        markdown_table(tally.severity_by_category()),
        "",
    ]

"""The report's crime-type-by-place table: the top places, their crime mix and what to try.

The profiles come from :mod:`geo_crime.publish.places`; this module only words them.
"""

from __future__ import annotations

from geo_crime.publish.places import PlaceProfile, mix_words, peak_words, repeat_words
from geo_crime.report.markdown import md_code, md_text


def profile_record(profile: PlaceProfile, label: str) -> dict:
    """A profile as the run summary keeps it (JSON types), with its place label."""
    return {
        "unit_id": profile.unit_id,
        "place": label,
        "incidents": profile.incidents,
        "mix": [[name, count] for name, count in profile.mix],
        "other_types": profile.other_types,
        "problem": profile.problem,
        "repeat": list(profile.repeat) if profile.repeat else None,
        "premise": list(profile.premise) if profile.premise else None,
        "peak": list(profile.peak) if profile.peak else None,
        "response": profile.response,
        "mix_words": mix_words(profile),
        "notes": _notes(profile),
    }


def _notes(profile: PlaceProfile) -> str:
    notes = [repeat_words(profile), peak_words(profile)]
    if profile.premise:
        name, count = profile.premise
        notes.append(f"leading premise {name.lower()} ({count / max(profile.incidents, 1):.0%})")
    return "; ".join(n for n in notes if n)


def place_table(records: list[dict], *, limit: int | None = None) -> list[str]:
    """The Markdown table of place records (:func:`profile_record`)."""
    lines = [
        "| place | incidents | crime mix | repeat location, time, premise | what to try |",
        "| --- | --- | --- | --- | --- |",
    ]
    for record in records[:limit]:
        lines.append(
            f"| {md_text(record['place'])} | {record['incidents']:,} | "
            f"{md_text(record['mix_words'])} | {md_text(record['notes']) or '-'} | "
            f"{md_text(record['response'])} |"
        )
    return [*lines, ""]


def place_lines(spec: str, records: list[dict], scope: str, k: int) -> list[str]:
    """The unit set's section on its top places (``scope``: units, divisions and window)."""
    if not records:
        return []
    repeats = sum(1 for r in records if r["repeat"])
    lines = [
        f"Top places by recorded severity: the {len(records)} published {md_code(spec)} units "
        f"with the most severity over {scope}, each place's crime mix (share of its incidents, "
        f"types with at least {k} incidents), and what to try there"
        + (
            f"; {repeats} of them are repeat locations (one address holds a large share of "
            "the place's incidents, mostly one offence: a problem of one site, for whoever "
            "manages it)"
            if repeats
            else ""
        )
        + ". Mixed crime calls for a problem-oriented review (scan, analyse, respond, assess) "
        "before any response. Addresses are not published: the busiest address is described, "
        "not named.",
        "",
    ]
    return lines + place_table(records)


__all__ = ["place_lines", "place_table", "profile_record"]

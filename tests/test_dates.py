"""Property tests for the vectorised date/time parsing."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from geo_crime.ingest import parse_datetimes

instants = st.datetimes(min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2035, 12, 31))


def _official(t: dt.datetime) -> str:
    return t.strftime("%m/%d/%Y %I:%M:%S %p")


def _resaved(t: dt.datetime) -> str:
    return t.strftime("%m/%d/%Y %H:%M")


def _stripped(t: dt.datetime) -> str:
    return f"{t.month}/{t.day}/{t.year} {t.hour}:{t.minute:02d}"


def _iso(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S") + ".000"


FORMATTERS = [_official, _resaved, _stripped, _iso]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(instants, st.sampled_from(FORMATTERS)), min_size=1, max_size=40))
def test_any_mix_of_formats_parses_to_the_minute(values):
    texts = [fmt(t) for t, fmt in values]
    parsed, bad = parse_datetimes(pa.array(texts))
    assert not bad.any()
    for (t, fmt), got in zip(values, parsed.to_pylist(), strict=True):
        expected = t.replace(microsecond=0)
        if fmt is not _official and fmt is not _iso:
            expected = expected.replace(second=0)
        assert got == expected


@settings(max_examples=100, deadline=None)
@given(
    st.integers(2000, 2035),
    st.integers(1, 12),
    st.integers(29, 31),
)
def test_impossible_days_are_rejected_not_rolled_over(year, month, day):
    try:
        dt.date(year, month, day)
        valid = True
    except ValueError:
        valid = False
    parsed, bad = parse_datetimes(pa.array([f"{month:02d}/{day:02d}/{year} 00:00"]))
    assert bool(bad[0]) is (not valid)
    assert (parsed[0].as_py() is None) is (not valid)


@given(st.text(alphabet="0123456789/:- APMx", max_size=12))
def test_garbage_never_crashes_and_is_flagged_or_parsed(text):
    parsed, bad = parse_datetimes(pa.array([text]))
    stripped = text.strip()
    if not stripped:
        assert not bad[0] and parsed[0].as_py() is None
    else:
        assert bool(bad[0]) == (parsed[0].as_py() is None)


def test_nulls_pass_through():
    parsed, bad = parse_datetimes(pa.array([None, "01/01/2020 00:00"]))
    assert parsed[0].as_py() is None and not bad[0]
    assert parsed[1].as_py() == dt.datetime(2020, 1, 1)

"""Parsing of query times and durations, and the choice of step and source."""

from __future__ import annotations

from datetime import timedelta

import pytest

from nazar_common.db.queries import (
    QueryLimits,
    align,
    format_duration,
    nice_step,
    plan_query,
)
from nazar_common.errors import InvalidInputError
from nazar_ingest.timeparse import parse_duration, parse_time

NOW = 1_767_225_600.0  # 2026-01-01T00:00:00Z


@pytest.mark.parametrize(
    ("raw", "seconds"),
    [
        ("60", 60), ("1.5", 1.5), ("60s", 60), ("5m", 300), ("1h", 3600), ("1d", 86400),
        ("1w", 604800), ("1h30m", 5400), ("250ms", 0.25), (" 2M ", 120), ("1e3", 1000),
    ],
)
def test_durations(raw: str, seconds: float) -> None:
    assert parse_duration(raw) == seconds


@pytest.mark.parametrize("raw", ["", "5x", "m", "1h 30m", "h1", "-5m", "0", "0s", "nan", "1y"])
def test_bad_durations(raw: str) -> None:
    with pytest.raises(InvalidInputError) as exc:
        parse_duration(raw, "step")
    assert "step" in exc.value.detail


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1767225600", NOW),
        ("1767225600.25", NOW + 0.25),
        ("2026-01-01T00:00:00Z", NOW),
        ("2026-01-01T02:00:00+02:00", NOW),
        ("2026-01-01T00:00:00.5Z", NOW + 0.5),
        ("now", NOW),
        ("NOW-1h", NOW - 3600),
        ("now - 90s", NOW - 90),
        ("now+5m", NOW + 300),
    ],
)
def test_times(raw: str, expected: float) -> None:
    assert parse_time(raw, NOW) == expected


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        ("", "empty"),
        ("yesterday", "RFC 3339"),
        ("2026-01-01T00:00:00", "no time zone"),
        ("2026-13-01T00:00:00Z", "RFC 3339"),
        ("-5", "out of range"),
        ("1e300", "out of range"),
        ("now-soon", "not a duration"),
    ],
)
def test_bad_times(raw: str, words: str) -> None:
    with pytest.raises(InvalidInputError) as exc:
        parse_time(raw, NOW, "start")
    assert words in exc.value.detail and "start" in exc.value.detail


def test_nice_steps_and_formatting() -> None:
    assert [nice_step(x) for x in (0.2, 7, 59, 60, 61, 3244, 3601, 86401, 3 * 86400)] == [
        1, 10, 60, 60, 120, 3600, 7200, 2 * 86400, 3 * 86400]
    assert [format_duration(x) for x in (90, 300, 3600, 86400, 604800, 0.5)] == [
        "90s", "5m", "1h", "1d", "1w", "0.5s"]
    assert align(NOW + 59, 60) == NOW and align(NOW + 3599, 3600) == NOW
    # Week-sized buckets start on the origin's Monday, not on the Unix epoch's Thursday.
    assert align(NOW, 604800) == NOW - 3 * 86400


LIMITS = QueryLimits(
    max_points=11_000, max_series=500,
    retention_raw=timedelta(days=7), retention_1m=timedelta(days=30),
)
H, D = 3600.0, 86400.0


@pytest.mark.parametrize(
    ("start", "end", "step", "source", "plan_step"),
    [
        (NOW - H, NOW, None, "raw", None),                # short range: raw points
        (NOW - 6 * H, NOW, None, "raw", None),
        (NOW - 7 * H, NOW, None, "1m", 60),               # longer: automatic step
        (NOW - D, NOW, None, "1m", 120),
        (NOW - 7 * D, NOW, None, "1m", 900),
        (NOW - 30 * D, NOW, None, "1h", 3600),
        (NOW - 90 * D, NOW, None, "1h", 3 * H),
        (NOW - H, NOW, 10, "raw", 10),                    # step < 60 s: raw buckets
        (NOW - H, NOW, 90, "raw", 90),                    # not a whole number of minutes
        (NOW - H, NOW, 300, "1m", 300),
        (NOW - D, NOW, 5400, "1m", 5400),
        (NOW - D, NOW, 3600, "1h", 3600),
        (NOW - 10 * D, NOW - 10 * D + H, None, "1m", 60),  # older than raw retention
        (NOW - 10 * D, NOW - 9 * D, 10, "1m", 60),          # step rounded up
        (NOW - 40 * D, NOW - 39 * D, 300, "1h", 3600),      # older than 1m retention
    ],
)
def test_plan_source_and_step(
    start: float, end: float, step: float | None, source: str, plan_step: float | None
) -> None:
    plan = plan_query(start, end, step, "avg", NOW, LIMITS)
    assert (plan.source, plan.step) == (source, plan_step)
    if plan.step is not None:
        assert plan.start == align(start, plan.step) and plan.points <= LIMITS.max_points


def test_plan_limits() -> None:
    with pytest.raises(InvalidInputError) as exc:
        plan_query(NOW - 30 * D, NOW, 60, "avg", NOW, LIMITS)
    assert exc.value.extra["min_step"] == 236 and "at least 236s" in exc.value.detail
    plan = plan_query(NOW - 30 * D, NOW, 240, "avg", NOW, LIMITS)
    assert plan.points <= LIMITS.max_points
    small = QueryLimits(10, 5, timedelta(days=7), timedelta(days=30))
    assert plan_query(NOW - D, NOW, None, "max", NOW, small).points <= 10
    for args in [(NOW, NOW, None, "avg"), (NOW, NOW - 1, None, "avg"),
                 (NOW - H, NOW, 0.5, "avg"), (NOW - H, NOW, None, "median")]:
        with pytest.raises(InvalidInputError):
            plan_query(*args, NOW, LIMITS)

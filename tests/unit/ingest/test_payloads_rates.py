"""Counter rates with reset handling (nazar_ingest.rates)."""

from __future__ import annotations

import math

import pytest

from nazar_ingest.rates import rate


def test_steady_counter() -> None:
    points = [(float(t), 10.0 * t) for t in range(0, 61, 10)]
    assert rate(points, 60) == [(0.0, 10.0), (60.0, 10.0)]


def test_buckets_and_order() -> None:
    points = [(30.0, 300.0), (0.0, 0.0), (10.0, 100.0), (20.0, 100.0)]
    # intervals ending at 10 (+100/10s), 20 (+0), 30 (+200) in 20 s buckets
    assert rate(points, 20) == [(0.0, 10.0), (20.0, 10.0)]


def test_counter_reset_counts_the_new_value() -> None:
    points = [(0.0, 1000.0), (10.0, 1100.0), (20.0, 50.0), (30.0, 150.0)]
    # increases: 100, 50 (reset: the new value), 100 over 30 s
    assert rate(points, 60) == [(0.0, pytest.approx(250 / 30))]
    per_interval = rate(points, 10)
    assert per_interval == [(10.0, 10.0), (20.0, 5.0), (30.0, 10.0)]


def test_edge_cases() -> None:
    assert rate([], 60) == []
    assert rate([(0.0, 5.0)], 60) == []
    assert rate([(0.0, 1.0), (0.0, 2.0), (10.0, 11.0)], 60) == [(0.0, 1.0)]
    assert rate([(0.0, 1.0), (5.0, math.nan), (10.0, 11.0)], 60) == [(0.0, 1.0)]
    with pytest.raises(ValueError):
        rate([(0.0, 1.0)], 0)


def test_gap_spreads_over_the_gap() -> None:
    points = [(0.0, 0.0), (10.0, 10.0), (3600.0, 3600.0)]
    assert rate(points, 60) == [(0.0, 1.0), (3600.0, 1.0)]

"""Counter rates with reset handling (nazar_ingest.rates)."""

from __future__ import annotations

import math

import pytest

from nazar_ingest.rates import counter_buckets, rate


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


def test_buckets_follow_the_origin() -> None:
    points = [(float(t), 2.0 * t) for t in range(0, 200, 10)]
    # 100 s buckets counted from 30: [30, 130), [130, 230)
    assert rate(points, 100, origin=30.0) == [(-70.0, 2.0), (30.0, 2.0), (130.0, 2.0)]
    assert [b for b, _ in rate(points, 100)] == [0.0, 100.0]


def test_counter_buckets_drop_early_buckets_and_scale_increase() -> None:
    points = [(0.0, 0.0), (10.0, 30.0), (20.0, 40.0), (30.0, 5.0), (40.0, 25.0)]
    # 20 s buckets: [0, 20) +30/10s, [20, 40) (+10 +5 reset)/20s, [40, 60) +20/10s
    assert rate(points, 20) == [(0.0, 3.0), (20.0, 0.75), (40.0, 2.0)]
    assert counter_buckets(points, 20, "rate", origin=0.0, start=20.0) == [
        (20.0, 0.75), (40.0, 2.0)]
    assert counter_buckets(points, 20, "increase", origin=0.0, start=0.0) == [
        (0.0, 60.0), (20.0, 15.0), (40.0, 40.0)]

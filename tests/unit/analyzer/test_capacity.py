"""Capacity forecasts (nazar_analyzer.capacity) on constructed series whose true
crossing time is known, over many random draws (not one lucky series)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nazar_analyzer.capacity import DAY, HOUR, forecast, human_span

NOW = 1_790_000_000.0 - (1_790_000_000.0 % HOUR)  # on an hour boundary


def hourly(days: float) -> np.ndarray:
    n = int(days * 24)
    return NOW - HOUR * np.arange(n, 0, -1)


def first_touch(f: object, threshold: float, above: bool = True) -> float:
    """The first time (1-minute grid) the noiseless ``f`` reaches ``threshold``."""
    grid = NOW + 60.0 * np.arange(0, 400 * 24 * 60)
    v = f(grid)  # type: ignore[operator]
    hit = np.nonzero(v >= threshold if above else v <= threshold)[0]
    assert hit.size, "the constructed series never crosses"
    return float(grid[hit[0]])


def test_linear_growth_crossing_within_5_percent() -> None:
    t = hourly(14)
    rate = 2.5 / DAY  # percent per second
    truth = lambda ts: 40.0 + rate * (ts - t[0])  # noqa: E731
    f = forecast(t, truth(t), 90.0, NOW, horizon=30 * DAY)
    expected = first_touch(truth, 90.0)
    assert f.status == "crossing"
    assert f.crossing_at is not None
    err = abs(f.crossing_at - expected) / (expected - NOW)
    assert err < 0.05, (f.crossing_at - NOW) / DAY
    assert f.slope_per_day == pytest.approx(2.5, rel=1e-6)
    assert f.earliest is not None and f.latest is not None
    assert f.earliest <= f.crossing_at <= f.latest
    assert f.within(30 * DAY) and not f.within(5 * DAY)
    assert "is expected to reach 90 in" in f.summary("disk.used_percent on web-1")
    # the projected line reaches the threshold
    assert f.projection[0][0] == NOW
    assert max(v for _, v in f.projection) >= 90.0 - 1e-9


def _seasonal_noisy(rng: np.random.Generator, days: float = 14):
    t = hourly(days)
    rate = rng.uniform(0.8, 3.0) / DAY
    amp = rng.uniform(0.5, 4.0)
    phase = rng.uniform(0, 2 * math.pi)
    start = rng.uniform(10.0, 30.0)

    def truth(ts: np.ndarray) -> np.ndarray:
        return start + rate * (ts - t[0]) + amp * np.sin(2 * math.pi * ts / DAY + phase)

    y = truth(t) + rng.normal(0, rng.uniform(0.2, 1.5), t.size)
    # a few outliers (a log rotated, a backup written then deleted)
    spikes = rng.choice(t.size, size=5, replace=False)
    y[spikes] += rng.choice([-15.0, 15.0], size=5)
    return t, y, truth


def test_noisy_seasonal_series_generalise() -> None:
    """Over 60 random noisy, seasonal series with outliers: the expected
    crossing is within 5 % of the true first touch for nearly all, and the
    interval covers the truth for most."""
    rng = np.random.default_rng(20261207)
    errors, covered, n = [], 0, 60
    for _ in range(n):
        t, y, truth = _seasonal_noisy(rng)
        threshold = 90.0
        f = forecast(t, y, threshold, NOW, horizon=90 * DAY)
        expected = first_touch(truth, threshold)
        assert f.status == "crossing" and f.crossing_at is not None
        errors.append(abs(f.crossing_at - expected) / (expected - NOW))
        assert f.daily_amplitude is not None
        if f.earliest is not None and f.earliest <= expected and (
                f.latest is None or expected <= f.latest):
            covered += 1
    errors_a = np.array(errors)
    print(f"noisy seasonal: median error {np.median(errors_a):.3%}, "
          f"p90 {np.quantile(errors_a, 0.9):.3%}, max {errors_a.max():.3%}, "
          f"interval coverage {covered}/{n}")
    assert np.mean(errors_a < 0.05) >= 0.95
    assert covered / n >= 0.75


def test_a_clean_up_is_a_level_shift_not_a_slower_trend() -> None:
    """A disk cleaned up (-15 %) ten days ago, growing again at +2 % a day:
    the slope and the crossing come from the growth, not from the drop."""
    rng = np.random.default_rng(3)
    t = hourly(14)
    drop_at = NOW - 10 * DAY

    def truth(ts: np.ndarray) -> np.ndarray:
        return 40 + 2 * (ts - t[0]) / DAY - 15 * (ts >= drop_at) + 2 * np.sin(
            2 * math.pi * ts / DAY)

    f = forecast(t, truth(t) + rng.normal(0, 0.5, t.size), 90.0, NOW)
    expected = first_touch(truth, 90.0)
    assert f.status == "crossing" and f.crossing_at is not None
    assert abs(f.crossing_at - expected) / (expected - NOW) < 0.05
    assert f.slope_per_day == pytest.approx(2.0, rel=0.05)
    assert f.shift_at is not None and abs(f.shift_at - drop_at) < 3 * HOUR


def test_seasonality_is_removed_not_extrapolated() -> None:
    """A flat series with a strong daily cycle is not a trend, whatever hour
    the history ends at."""
    for end_hour in (0, 6, 12, 18):
        now = NOW + end_hour * HOUR
        t = now - HOUR * np.arange(14 * 24, 0, -1)
        y = 50 + 20 * np.sin(2 * math.pi * t / DAY)
        f = forecast(t, y, 90.0, now)
        assert f.status == "not_crossing", f
        assert abs(f.slope_per_day or 0) < 0.05


def test_no_crossing_is_a_clear_answer() -> None:
    t = hourly(10)
    f = forecast(t, 70 - 0.5 * (t - t[0]) / DAY, 90.0, NOW)
    assert f.status == "not_crossing" and f.crossing_at is None and f.eta is None
    assert "falling" in f.reason
    assert not f.within(365 * DAY)
    assert "is not expected to reach 90" in f.summary("disk")


def test_below_direction() -> None:
    t = hourly(7)
    free = lambda ts: 64.0 - 4.0 * (ts - t[0]) / DAY  # noqa: E731
    f = forecast(t, free(t), 8.0, NOW, "below")
    expected = first_touch(free, 8.0, above=False)
    assert f.status == "crossing" and f.crossing_at is not None
    assert abs(f.crossing_at - expected) / (expected - NOW) < 0.05
    assert f.slope_per_day == pytest.approx(-4.0)
    assert "fall to 8" in f.summary("mem.free_gb")


def test_already_crossed_and_too_little_history() -> None:
    t = hourly(3)
    f = forecast(t, 80 + 10 * (t - t[0]) / DAY, 90.0, NOW)
    assert f.status == "crossed" and f.eta == 0 and f.within(0)
    short = forecast(hourly(0.25), [1.0] * 6, 90.0, NOW)
    assert short.status == "insufficient_data" and "at least" in short.reason


def test_human_span() -> None:
    assert human_span(6 * DAY, 5 * DAY, 7 * DAY) == "6.0 days ± 1.0"
    assert human_span(6 * DAY, 5 * DAY, 9 * DAY) == "6.0 days (5.0 to 9.0)"
    assert "possibly never" in human_span(3 * HOUR, 2 * HOUR, None)

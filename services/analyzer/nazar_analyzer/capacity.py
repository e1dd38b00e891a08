"""Capacity forecasts: when will a series cross a threshold? (pure, no I/O)

The method, on the hourly rollup of one series (its hourly averages):

1. a robust trend, Theil-Sen (the median of the slopes between every pair of
   points), so a spike, an outage or a one-off clean-up barely moves it;
2. daily seasonality removed: the median residual per hour of the day (UTC)
   is subtracted and the trend fitted again (with at least two days of
   history); the profile is kept, since a disk that fills at its daily peak
   is full at that peak;
3. the crossing: the first time the projected trend (plus the daily profile)
   reaches the threshold, with an interval from the slope's confidence bounds
   (Sen's method at 90 %, widened for the autocorrelation of the residuals)
   and the uncertainty of the current level.

Both the forecast API and the analyzer's ``forecast`` rule kind use
:func:`forecast`, so the alert and the chart always agree.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Literal

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy.stats import theilslopes

Direction = Literal["above", "below"]
Status = Literal["crossing", "crossed", "not_crossing", "insufficient_data"]

DAY = 86400.0
HOUR = 3600.0
#: Fewest hourly points a forecast is made from.
MIN_POINTS = 12
#: History needed before the daily profile is estimated and removed.
SEASONAL_MIN_SPAN = 2 * DAY
#: Level shifts (clean-ups, resizes) allowed for, at most; window and
#: significance (in standard errors of the window medians' difference).
MAX_SHIFTS = 3
SHIFT_ROUNDS = 8
SHIFT_WINDOW = 24
SHIFT_Z = 8.0
#: Beyond this many points the slope is fitted on group medians.
MAX_FIT_POINTS = 480
#: Harmonics of the day kept in the daily profile.
HARMONICS = 3
#: Confidence of the slope interval (Sen's method).
CONFIDENCE = 0.90
_Z = 1.6449  # two-sided 90 %
#: A residual autocorrelation factor above this is capped (few effective points).
MAX_WIDEN = 8.0
#: Most hours scanned for the first touch of the daily peak.
MAX_SCAN_HOURS = 20_000
#: A crossing further away than this is reported as none.
MAX_ETA = 10 * 365 * DAY
#: The projection runs at most this far ahead.
MAX_PROJECTION = 400 * DAY
#: Points of the projected line returned for charts.
PROJECTION_POINTS = 200


@dataclass(frozen=True)
class Forecast:
    """A forecast of one series; times are Unix seconds."""

    status: Status
    threshold: float
    direction: Direction
    now: float
    points: int
    #: Expected crossing time (``crossing``), or when it crossed (``crossed``).
    crossing_at: float | None = None
    #: Earliest and latest plausible crossing (None for latest: it may never cross).
    earliest: float | None = None
    latest: float | None = None
    #: Trend: level now, slope per day and its bounds.
    level: float | None = None
    slope_per_day: float | None = None
    slope_low: float | None = None
    slope_high: float | None = None
    #: Robust scale of what the trend and profile do not explain.
    noise: float | None = None
    #: Peak-to-trough amplitude of the daily profile (None: not estimated).
    daily_amplitude: float | None = None
    first: float | None = None
    last: float | None = None
    #: The latest level shift (a clean-up, a resize) found and allowed for.
    shift_at: float | None = None
    #: The projected line, ``[(t, value), ...]`` from ``now``.
    projection: list[tuple[float, float]] = field(default_factory=list)
    reason: str = ""

    @property
    def eta(self) -> float | None:
        """Seconds from ``now`` to the expected crossing (0 when crossed)."""
        if self.crossing_at is None:
            return None
        return max(0.0, self.crossing_at - self.now)

    def within(self, horizon: float) -> bool:
        """Expected to cross (or crossed already) within ``horizon`` seconds."""
        eta = self.eta
        return eta is not None and eta <= horizon

    def summary(self, what: str) -> str:
        """One sentence: ``"disk.used on web-1 is expected to reach 90 in 6.1 days
        (5.2 to 7.0)"``."""
        verb = "reach" if self.direction == "above" else "fall to"
        thr = _fmt(self.threshold)
        if self.status == "insufficient_data":
            return f"{what}: no forecast ({self.reason})"
        if self.status == "crossed":
            done = "reached" if self.direction == "above" else "fallen to"
            return f"{what} has already {done} {thr}"
        if self.status == "not_crossing":
            return f"{what} is not expected to {verb} {thr} ({self.reason})"
        assert self.eta is not None
        lo = None if self.earliest is None else max(0.0, self.earliest - self.now)
        hi = None if self.latest is None else self.latest - self.now
        return (f"{what} is expected to {verb} {thr} in {human_span(self.eta, lo, hi)}")


def _fmt(x: float) -> str:
    return f"{x:.4g}"


def human_span(eta: float, lo: float | None, hi: float | None) -> str:
    """``"6 days ± 1"``, ``"6.2 days (5.1 to 8.4)"``, ``"3 hours (2 to never)"``."""
    unit, size = ("days", DAY) if eta >= 2 * DAY else ("hours", HOUR)
    value = eta / size
    text = f"{value:.1f} {unit}" if value < 10 else f"{value:.0f} {unit}"
    if lo is None:
        return text
    if hi is None:
        return f"{text} (at the earliest {lo / size:.1f}, possibly never)"
    below, above = value - lo / size, hi / size - value
    if max(below, above) < 0.05:
        return text
    if abs(below - above) <= 0.25 * max(below, above, 1e-9):
        half = max(below, above)
        return f"{text} ± {half:.1f}" if half < 10 else f"{text} ± {half:.0f}"
    return f"{text} ({lo / size:.1f} to {hi / size:.1f})"


def _hour_of_day(times: np.ndarray) -> np.ndarray:
    return (np.floor(times / HOUR) % 24).astype(np.int64)


def _profile(hours: np.ndarray, residuals: np.ndarray) -> np.ndarray:
    """Median residual per hour of the day, centred on zero (hours without
    points get 0)."""
    prof = np.zeros(24)
    for h in range(24):
        sel = residuals[hours == h]
        if sel.size:
            prof[h] = float(np.median(sel))
    # keep the first harmonics only: a daily shape, not the noise of 24 medians
    spectrum = np.fft.rfft(prof)
    spectrum[HARMONICS + 1:] = 0
    smooth = np.fft.irfft(spectrum, n=24)
    return smooth - float(np.mean(smooth))


@lru_cache(maxsize=8)
def _pairs(n: int) -> tuple[np.ndarray, np.ndarray]:
    return np.triu_indices(n, 1)


def _fit(x: np.ndarray, y: np.ndarray, bounds: bool = True) -> tuple[float, float, float, float]:
    """Theil-Sen slope with its 90 % bounds (``bounds=False``: the slope alone,
    bounds = slope, for the intermediate rounds), and the intercept at x = 0
    (the median of ``y - slope * x``). Beyond ``MAX_FIT_POINTS`` the slope is
    fitted on the medians of consecutive groups of points (Theil-Sen is
    quadratic)."""
    bx, by = x, y
    if x.size > MAX_FIT_POINTS:
        k = math.ceil(x.size / MAX_FIT_POINTS)
        m = x.size // k * k
        bx = x[x.size - m:].reshape(-1, k).mean(axis=1)
        by = np.median(y[y.size - m:].reshape(-1, k), axis=1)
    if bounds:
        slope, _, low, high = (float(v) for v in theilslopes(by, bx, alpha=CONFIDENCE))
    else:
        i, j = _pairs(bx.size)
        dx = bx[j] - bx[i]
        keep = dx > 0
        slope = low = high = float(np.median((by[j] - by[i])[keep] / dx[keep]))
    intercept = float(np.median(y - slope * x))
    return slope, intercept, low, high


def _jump_at(resid: np.ndarray, i: int) -> float:
    """Median of the day after index ``i`` minus that of the day before."""
    w = SHIFT_WINDOW
    return float(np.median(resid[i:i + w]) - np.median(resid[max(0, i - w):i]))


def _level_shift(resid: np.ndarray) -> tuple[int, float] | None:
    """The largest abrupt step in the residuals, as (index of its first point
    after, size), when it is clearly more than noise: the difference of the
    medians of the day after and the day before each point (a whole day, so
    the daily cycle cancels), against the noise of consecutive differences."""
    w = SHIFT_WINDOW
    if resid.size < 2 * w + 1:
        return None
    med = np.median(sliding_window_view(resid, w), axis=1)  # med[k]: resid[k:k+w]
    jumps = med[w:] - med[:-w]  # at index i = j + w: after minus before
    j = int(np.argmax(np.abs(jumps)))
    d = np.diff(resid)
    sigma = 1.4826 * float(np.median(np.abs(d - np.median(d)))) / math.sqrt(2)
    scale = float(np.median(np.abs(resid))) + 1e-12
    limit = max(SHIFT_Z * 1.2533 * sigma * math.sqrt(2 / w), 1e-6 * scale)
    if abs(jumps[j]) <= limit:
        return None
    return j + w, float(jumps[j])


def forecast(
    times: list[float] | np.ndarray,
    values: list[float] | np.ndarray,
    threshold: float,
    now: float,
    direction: Direction = "above",
    *,
    horizon: float = 30 * DAY,
    seasonal: bool = True,
) -> Forecast:
    """When the series ``(times, values)`` (hourly, any order) is expected to
    cross ``threshold`` (upwards for ``above``, downwards for ``below``),
    seen from ``now``. The projection for charts runs a little past the
    crossing, and at least to ``now + horizon``."""
    t = np.asarray(times, dtype=float)
    y = np.asarray(values, dtype=float)
    ok = np.isfinite(t) & np.isfinite(y)
    t, y = t[ok], y[ok]
    order = np.argsort(t)
    t, y = t[order], y[order]
    base = Forecast("insufficient_data", threshold, direction, now, int(t.size))
    if t.size < MIN_POINTS:
        return replace(base, reason=f"{t.size} hourly points, at least {MIN_POINTS} needed")
    span = float(t[-1] - t[0])
    if span < (MIN_POINTS - 1) * HOUR:
        return replace(base, reason=f"{span / HOUR:.1f} hours of history, at least "
                       f"{MIN_POINTS - 1} needed")
    sign = 1.0 if direction == "above" else -1.0
    # work "upwards": for below, mirror the series and the threshold
    ys, thr = sign * y, sign * threshold
    x = (t - now) / DAY  # days, 0 = now
    hours = _hour_of_day(t)
    prof = np.zeros(24)
    seasonal_used = seasonal and span >= SEASONAL_MIN_SPAN
    # the past moved to the present level after each level shift (a clean-up)
    adjust = np.zeros_like(ys)
    shifts: list[int] = []
    slope, intercept, _, _ = _fit(x, ys, bounds=False)
    for rounds in range(SHIFT_ROUNDS):
        if seasonal_used:
            prof = _profile(hours, ys + adjust - (intercept + slope * x))
        des = ys + adjust - prof[hours]
        slope, intercept, _, _ = _fit(x, des, bounds=False)
        r = des - (intercept + slope * x)
        # the steps found so far, re-measured against the better trend
        for i, jump in [(i, _jump_at(r, i)) for i in shifts]:
            adjust[:i] += jump
        found = _level_shift(r) if len(shifts) < MAX_SHIFTS else None
        if found is not None and all(abs(found[0] - i) > SHIFT_WINDOW for i in shifts):
            shifts.append(found[0])
            adjust[: found[0]] += found[1]
        elif not shifts and (rounds >= 1 or not seasonal_used):
            break
    if seasonal_used and shifts:
        prof = _profile(hours, ys + adjust - (intercept + slope * x))
    slope, intercept, low, high = _fit(x, ys + adjust - prof[hours])
    shift_at = float(t[max(shifts)]) if shifts else None
    resid = ys + adjust - prof[hours] - (intercept + slope * x)
    noise = 1.4826 * float(np.median(np.abs(resid - np.median(resid))))
    # autocorrelated residuals carry less information than their count says
    widen = 1.0
    if resid.size > 3 and float(np.std(resid[:-1])) > 0 and float(np.std(resid[1:])) > 0:
        r1 = float(np.corrcoef(resid[:-1], resid[1:])[0, 1])
        if math.isfinite(r1) and r1 > 0:
            widen = min(MAX_WIDEN, math.sqrt((1 + r1) / (1 - r1)) if r1 < 1 else MAX_WIDEN)
    low = slope - (slope - low) * widen
    high = slope + (high - slope) * widen
    level_se = _Z * 1.2533 * noise * widen / math.sqrt(resid.size)
    level = intercept  # trend level now (x = 0)
    amplitude = float(prof.max() - prof.min()) if seasonal_used else None
    fitted = replace(
        base, level=sign * level, slope_per_day=sign * slope,
        slope_low=sign * (low if sign > 0 else high), slope_high=sign * (high if sign > 0 else low),
        noise=noise, daily_amplitude=amplitude, first=float(t[0]), last=float(t[-1]),
        shift_at=shift_at,
    )

    def at(xd: float) -> float:
        """Trend plus daily profile at ``xd`` days from now (mirrored units)."""
        hour = math.floor((now + xd * DAY) / HOUR) % 24
        return intercept + slope * xd + float(prof[hour])

    def project(until: float) -> list[tuple[float, float]]:
        end = max(until, now + HOUR)
        n = PROJECTION_POINTS
        step = max(HOUR, math.ceil((end - now) / n / HOUR) * HOUR)
        out = []
        ts = now
        while ts <= end + 1e-6:
            out.append((ts, sign * at((ts - now) / DAY)))
            ts += step
        return out

    current = at(0.0)
    if current >= thr or level >= thr:
        # already there: when did the fitted series last cross?
        crossed = float(t[-1])
        for i in range(t.size - 1, -1, -1):
            if ys[i] < thr:
                break
            crossed = float(t[i])
        return replace(fitted, status="crossed", crossing_at=min(crossed, now),
                       projection=project(now + horizon), reason="the trend is past the threshold")
    if slope <= 0 or low <= 0:
        if slope <= 0:
            word = "flat" if slope == 0 else ("falling" if sign > 0 else "rising")
            reason = f"the trend is {word} ({_fmt(sign * slope)} per day)"
        else:
            reason = (f"no significant trend ({_fmt(sign * slope)} per day, and the "
                      f"{CONFIDENCE:.0%} interval of the slope includes 0)")
        return replace(fitted, status="not_crossing", projection=project(now + horizon),
                       reason=reason)

    def touch(a: float, b: float) -> float | None:
        """Days until trend ``a + b x`` plus the profile first reaches ``thr``."""
        if b <= 0:
            return None
        return _first_touch(lambda xd: a + b * xd + at(xd) - (intercept + slope * xd),
                            b, a, prof, thr)

    x_mid = touch(intercept, slope)
    assert x_mid is not None
    if x_mid * DAY > MAX_ETA:
        return replace(fitted, status="not_crossing", projection=project(now + horizon),
                       reason=f"not within {MAX_ETA / DAY / 365:.0f} years at "
                       f"{_fmt(sign * slope)} per day")
    crossing = now + x_mid * DAY
    x_lo = touch(intercept + level_se, high)
    x_hi = touch(intercept - level_se, low)
    earliest = min(crossing, now + x_lo * DAY) if x_lo is not None else None
    latest = max(crossing, now + x_hi * DAY) if x_hi is not None else None
    end = min(max(crossing + 0.1 * (crossing - now), now + horizon), now + MAX_PROJECTION)
    return replace(fitted, status="crossing", crossing_at=crossing, earliest=earliest,
                   latest=latest, projection=project(end))


def _first_touch(at: Callable[[float], float], slope: float, intercept: float,
                 prof: np.ndarray, thr: float) -> float:
    """Days from now until trend + profile first reaches ``thr`` (slope > 0):
    hour by hour between the crossings of the profile's peak and trough."""
    lo = max(0.0, (thr - float(prof.max()) - intercept) / slope)
    hi = max(lo, (thr - float(prof.min()) - intercept) / slope)
    if (hi - lo) * 24 > MAX_SCAN_HOURS:
        return max(0.0, (thr - intercept) / slope)
    step = 1 / 24
    x = lo
    while x < hi:
        nxt = min(hi, x + step)
        if at(nxt) >= thr:
            # within that hour the profile is constant and the trend linear
            offset = at(nxt) - (intercept + slope * nxt)
            exact = (thr - offset - intercept) / slope
            return min(max(exact, x), nxt)
        x = nxt
    return hi

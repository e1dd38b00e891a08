"""Per-second rates of cumulative counters (pure logic, for the ``rate`` aggregation).

Counters such as ``node_network_receive_bytes_total`` or OTel cumulative sums
are stored as sent; their rate is derived at query time. A value lower than
the previous one means the counter was reset (process or host restart): the
increase over that interval is then the new value itself, as Prometheus
assumes.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Literal

CounterAggregate = Literal["rate", "increase"]


def rate(
    points: Iterable[tuple[float, float]], step: float, origin: float = 0.0
) -> list[tuple[float, float]]:
    """Per-second rates of a counter, one per ``step``-second bucket.

    ``points`` are ``(unix_seconds, counter_value)`` raw samples, in any order.
    Each interval between two consecutive samples is attributed to the bucket
    of its end, ``origin + floor((t - origin) / step) * step`` (pass the
    storage's bucket origin so buckets agree with the other aggregations); a
    bucket's rate is the sum of its intervals' increases divided by their
    total duration. The first sample only anchors the next interval, so a
    bucket needs a sample in it and one before it (in it or in an earlier
    bucket). Non-finite values and repeated timestamps are ignored. Returns
    ``[(bucket_start, rate)]`` in time order.
    """
    if not step > 0:
        raise ValueError("step must be positive")
    out: list[tuple[float, float]] = []
    prev_t = prev_v = math.nan
    bucket = math.nan
    increase = elapsed = 0.0
    for t, v in sorted(points, key=lambda p: p[0]):
        if not (math.isfinite(v) and math.isfinite(t)):
            continue
        if prev_t != prev_t:  # first usable sample
            prev_t, prev_v = t, v
            continue
        dt = t - prev_t
        if dt <= 0:
            continue
        delta = v - prev_v
        if delta < 0:  # counter reset: it restarted from zero
            delta = v
        start = origin + math.floor((t - origin) / step) * step
        if start != bucket:
            if elapsed > 0:
                out.append((bucket, increase / elapsed))
            bucket, increase, elapsed = start, 0.0, 0.0
        increase += delta
        elapsed += dt
        prev_t, prev_v = t, v
    if elapsed > 0:
        out.append((bucket, increase / elapsed))
    return out


def counter_buckets(
    points: Iterable[tuple[float, float]],
    step: float,
    agg: CounterAggregate,
    *,
    origin: float,
    start: float,
) -> list[tuple[float, float]]:
    """The ``rate`` or ``increase`` points of a range query: :func:`rate` per
    bucket, keeping buckets that start at or after ``start`` (earlier points
    are read only to anchor the first bucket's first interval). ``increase``
    is the rate times ``step``: the increase over the whole bucket,
    extrapolated when the samples do not cover all of it."""
    rates = [(t, r) for t, r in rate(points, step, origin) if t >= start]
    if agg == "increase":
        return [(t, r * step) for t, r in rates]
    return rates

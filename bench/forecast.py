#!/usr/bin/env python3
"""Capacity forecasts (nazar_analyzer.capacity): accuracy on constructed series
whose true crossing is known, and speed.

Families, each drawn ``--n`` times with random rates, levels, daily
amplitudes, phases, noise and outliers (one seed, so runs compare):

* ``linear``   — a straight line;
* ``seasonal`` — a line plus a daily cycle, Gaussian noise and 1 % outliers;
* ``cleanup``  — ``seasonal`` with a one-off drop (a clean-up) in the first
  half of the history, after which growth resumes;
* ``flat``     — no trend, daily cycle and noise: any forecast crossing is a
  false alarm.

For each series: the error of the expected crossing relative to the true
time to cross (the first time the noiseless series reaches the threshold),
whether the interval covers the truth, and for ``flat`` whether it (wrongly)
forecasts a crossing within 30 days. Speed: forecasts per second for 7, 14,
30 and 90 days of hourly points.

Example::

    nice -n 10 python bench/forecast.py --n 300
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import time

import numpy as np

from nazar_analyzer.capacity import DAY, HOUR, forecast

NOW = 1_800_000_000.0


def family(name: str, rng: np.random.Generator, days: float):  # type: ignore[no-untyped-def]
    t = NOW - HOUR * np.arange(int(days * 24), 0, -1) + HOUR / 2
    start = rng.uniform(10, 30)
    rate = 0.0 if name == "flat" else rng.uniform(0.5, 3.0) / DAY
    amp = 0.0 if name == "linear" else rng.uniform(0.5, 4.0)
    phase = rng.uniform(0, 2 * math.pi)
    drop_at = t[0] + rng.uniform(0.1, 0.4) * (t[-1] - t[0]) if name == "cleanup" else None
    drop = rng.uniform(5, 15)

    def truth(ts: np.ndarray) -> np.ndarray:
        v = start + rate * (ts - t[0]) + amp * np.sin(2 * math.pi * ts / DAY + phase)
        if drop_at is not None:
            v = v - drop * (ts >= drop_at)
        return v

    y = truth(t)
    if name != "linear":
        y = y + rng.normal(0, rng.uniform(0.2, 1.5), t.size)
        k = max(1, t.size // 100)
        idx = rng.choice(t.size, size=k, replace=False)
        y[idx] += rng.choice([-15.0, 15.0], size=k)
    return t, y, truth


def true_crossing(truth, threshold: float) -> float | None:  # type: ignore[no-untyped-def]
    grid = NOW + 60.0 * np.arange(0, 400 * 24 * 60)
    hit = np.nonzero(truth(grid) >= threshold)[0]
    return float(grid[hit[0]]) if hit.size else None


def accuracy(n: int, days: float) -> None:
    rng = np.random.default_rng(20261207)
    print(f"accuracy: {n} series per family, {days:g} days of hourly history, threshold 90")
    print(f"{'family':10} {'within 5%':>10} {'median err':>11} {'p90 err':>9} {'max err':>9} "
          f"{'covered':>8} {'false <30d':>10}")
    for name in ("linear", "seasonal", "cleanup", "flat"):
        errs, covered, false_alarms = [], 0, 0
        for _ in range(n):
            t, y, truth = family(name, rng, days)
            f = forecast(t, y, 90.0, NOW, horizon=30 * DAY)
            if name == "flat":
                false_alarms += f.within(30 * DAY)
                continue
            expected = true_crossing(truth, 90.0)
            assert expected is not None
            if f.crossing_at is None:
                errs.append(math.inf)
                continue
            errs.append(abs(f.crossing_at - expected) / (expected - NOW))
            # the truth is on a 1-minute grid
            if f.earliest is not None and f.earliest - 60 <= expected and (
                    f.latest is None or expected <= f.latest + 60):
                covered += 1
        if name == "flat":
            print(f"{name:10} {'':>10} {'':>11} {'':>9} {'':>9} {'':>8} "
                  f"{false_alarms / n:>10.1%}")
            continue
        e = np.array(errs)
        print(f"{name:10} {np.mean(e < 0.05):>10.1%} {np.median(e):>11.2%} "
              f"{np.quantile(e, 0.9):>9.2%} {e.max():>9.2%} {covered / n:>8.1%} {'':>10}")


def speed() -> None:
    rng = np.random.default_rng(1)
    print("speed: one forecast (hourly points; Theil-Sen is quadratic in them)")
    for days in (7, 14, 30, 90):
        t, y, _ = family("seasonal", rng, days)
        runs = max(3, int(200 / days))
        started = time.perf_counter()
        for _ in range(runs):
            forecast(t, y, 90.0, NOW)
        took = (time.perf_counter() - started) / runs
        print(f"  {days:>3} days ({t.size:>5} points): {took * 1000:8.2f} ms "
              f"({1 / took:8.1f} series/s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=200, help="series per family")
    parser.add_argument("--days", type=float, default=14, help="days of history")
    args = parser.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"load {os.getloadavg()[0]:.1f}")
    accuracy(args.n, args.days)
    speed()


if __name__ == "__main__":
    main()

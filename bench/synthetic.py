#!/usr/bin/env python3
"""Synthetic anomaly suite: every anomaly type on several kinds of series.

Base signals (5-minute points, two weeks by default):

* ``flat``      a level with Gaussian noise;
* ``daily``     a daily cycle (a strong one) with noise;
* ``trending``  a steady upward trend with noise;
* ``counter``   a monotone cumulative counter, fed as its per-second rate
                (differences of the counter, as a Prometheus ``rate()``);
* ``bursty``    Poisson-like counts with occasional bursts (2 % of points).

Anomalies, injected at a fixed point (day 10) into every base signal, with
sizes relative to the base's own noise ``sigma``:

====================  =======================================================
``spike`` / ``dip``   one point 12 sigma above / below (bursty: 6x the level
                      up; a dip to zero)
``level_up/down``     a lasting shift of 5 sigma
``variance_up``       the noise grows fivefold
``flatline``          the value sticks (the counter stops: its rate is 0)
``drift``             a slow ramp of 8 sigma per day
``seasonal_break``    (daily only) the daily pattern stops; the value stays
                      at the daily mean
``extreme_rate``      moderate spikes (5 sigma) on one point in ten, where
                      the series had none (bursty: bursts eight times as
                      often)
====================  =======================================================

plus clean controls of every base signal. An anomaly counts as caught when
the detector raises an alarm within its stated delay bound (``DELAY_BOUND``,
points after the anomaly starts) and raised none between the end of the
learning period and the anomaly. Controls must raise no alarm at all after
the learning period.

    python bench/synthetic.py                # all bases x types, 3 seeds
    python bench/synthetic.py --seeds 10     # a larger run

The tests (tests/unit/analyzer/test_synthetic.py) run the same suite with
fewer seeds.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT / "services" / "analyzer") not in sys.path:
    sys.path.insert(0, str(ROOT / "services" / "analyzer"))

from nazar_analyzer.detection import COMPONENTS, CompositeConfig, DetectorBank  # noqa: E402

STEP = 300.0  # the suite's sampling interval (s); ``--step`` samples it finer or coarser
DAY = int(86400 / STEP)  # points per day
T0 = 1_700_006_400.0  # a midnight (UTC)
LENGTH = 14 * DAY
START = 10 * DAY  # where anomalies begin
LEARN = 5 * DAY // 2  # learning period (two and a half daily cycles): alarms before it not judged

BASES = ("flat", "daily", "trending", "counter", "bursty")
ANOMALIES = (
    "spike",
    "dip",
    "level_up",
    "level_down",
    "variance_up",
    "flatline",
    "drift",
    "seasonal_break",
    "extreme_rate",
)
#: Most points (at the 5-minute step; in time at another step: ``bound``)
#: after the anomaly's start by which an alarm must come.
DELAY_BOUND = {
    "spike": 0,
    "dip": 0,
    "level_up": 6,
    "level_down": 6,
    "variance_up": 24,
    "flatline": 24,
    "drift": DAY,
    "seasonal_break": DAY // 2,
    "extreme_rate": DAY // 2,
}


#: The (base, anomaly) pairs the composite detector catches within their bound
#: on every seed tried (0-9), and the bases whose clean controls stay silent:
#: what the tests require. The rest of the table is printed by this benchmark
#: and discussed in docs/accuracy.md (what is not met, and why).
GUARANTEED: dict[str, tuple[str, ...]] = {
    "flat": ("spike", "dip", "level_up", "variance_up", "flatline", "drift"),
    "daily": ("spike", "dip", "variance_up", "flatline", "seasonal_break"),
    "trending": ("spike", "dip", "level_up", "level_down", "variance_up", "flatline"),
    "counter": ("spike", "dip", "level_up", "level_down", "variance_up", "flatline", "drift"),
    "bursty": (),
}
QUIET_CONTROLS = BASES  # every clean control: no alarm at all

#: The same at one point a minute (``--step 60``; bounds in time), seeds 0-9.
#: Controls: at most one alarm per clean series in 11.5 days (2 of 50 alarmed
#: once), not none: see docs/accuracy.md, "Fine sampling".
GUARANTEED_FINE: dict[str, tuple[str, ...]] = {
    "flat": ("spike", "dip", "level_up", "flatline", "drift"),
    "daily": ("spike", "dip", "variance_up", "flatline", "seasonal_break"),
    "trending": ("spike", "dip", "level_up", "level_down", "variance_up", "flatline", "drift"),
    "counter": ("spike", "dip", "level_up", "level_down", "variance_up", "flatline"),
    "bursty": ("level_up", "flatline"),
}


def applies(base: str, anomaly: str) -> bool:
    return anomaly != "seasonal_break" or base == "daily"


@dataclass(frozen=True)
class Case:
    name: str
    base: str
    anomaly: str | None  # None: a control
    seed: int
    ts: np.ndarray
    values: np.ndarray
    start: int  # first anomalous point (the length for a control)
    step: float = STEP  # sampling interval (s)

    @property
    def learn(self) -> int:
        """The learning period in points (alarms before it are not judged)."""
        return int(2.5 * 86400 / self.step)


def bound(anomaly: str, step: float = STEP) -> int:
    """The delay bound of ``anomaly`` in points at ``step``: the same time at a
    finer step, the same points at a coarser one (as the detector counts)."""
    return int(DELAY_BOUND[anomaly] * max(1.0, STEP / step))


def _base(
    base: str, rng: np.random.Generator, n: int, step: float = STEP
) -> tuple[np.ndarray, np.ndarray, float]:
    """(deterministic part, noise, sigma) of a base signal."""
    k = np.arange(n, dtype=float)
    day = 86400.0 / step  # points per day at this step
    if base == "flat":
        return np.full(n, 50.0), rng.normal(0, 2.0, n), 2.0
    if base == "daily":
        shape = 50 + 30 * np.sin(2 * np.pi * (k / day - 0.3))
        return shape, rng.normal(0, 2.0, n), 2.0
    if base == "trending":
        return 50 + 5.0 * k / day, rng.normal(0, 2.0, n), 2.0
    if base == "counter":
        return np.full(n, 100.0), np.zeros(n), 100.0**0.5 / step**0.5
    if base == "bursty":
        return np.full(n, 100.0), np.zeros(n), 10.0
    raise ValueError(base)


def make_case(
    base: str, anomaly: str | None, seed: int, n: int | None = None, step: float = STEP
) -> Case:
    """One series of ``base`` with ``anomaly`` (None: a clean control), sampled
    every ``step`` seconds (``n`` points; default two weeks)."""
    rng = np.random.default_rng([seed, BASES.index(base), 0 if anomaly is None else
                                 1 + ANOMALIES.index(anomaly)])
    day = int(86400 / step)  # points per day at this step
    n = 14 * day if n is None else n
    shape, noise, sigma = _base(base, rng, n, step)
    s = 10 * day if anomaly is not None else n
    k = np.arange(n, dtype=float)
    after = k >= s
    if base == "daily" and anomaly == "seasonal_break":
        shape = np.where(after, 50.0, shape)
    noise_scale = np.ones(n)
    if anomaly == "variance_up":
        noise_scale[s:] = 5.0
    level = shape.copy()
    if anomaly == "level_up":
        level[s:] += 5 * sigma
    elif anomaly == "level_down":
        level[s:] -= 5 * sigma
    elif anomaly == "drift":
        level += np.where(after, 8 * sigma * (k - s) / day, 0.0)
    extra_rate = anomaly == "extreme_rate"
    if base == "counter":
        # events per second; the counter adds Poisson counts per step
        lam = np.maximum(level, 0.0) * step
        incr = rng.poisson(lam * np.where(noise_scale > 1, rng.uniform(0.2, 1.8, n), 1.0))
        incr = incr.astype(float)
        if anomaly == "spike":
            incr[s] += 12 * sigma * step
        elif anomaly == "dip":
            incr[s] = 0.0
        elif anomaly == "flatline":
            incr[s:] = 0.0
        elif extra_rate:
            hit = after & (rng.random(n) < 0.1)
            incr[hit] += 5 * sigma * step
        counter = 1e6 + np.cumsum(incr)
        values = np.empty(n)
        values[0] = incr[0] / step
        values[1:] = np.diff(counter) / step
    elif base == "bursty":
        values = rng.poisson(np.maximum(level, 0.0)).astype(float)
        if anomaly == "variance_up":
            values = np.where(after, level + (values - level) * 5.0, values)
        burst_p = np.where(after & extra_rate, 0.16, 0.02)
        bursts = rng.random(n) < burst_p
        values = np.where(bursts, values * rng.uniform(1.5, 2.5, n), values)
        if anomaly == "spike":
            values[s] = 6 * 100.0
        elif anomaly == "dip":
            values[s] = 0.0
        values = np.maximum(values, 0.0)
    else:
        values = level + noise * noise_scale
        if anomaly == "spike":
            values[s] += 12 * sigma
        elif anomaly == "dip":
            values[s] -= 12 * sigma
        elif extra_rate:
            hit = after & (rng.random(n) < 0.1)
            values[hit] += 5 * sigma
    if anomaly == "flatline" and base != "counter":
        values[s:] = values[s - 1]
    values = np.round(values, 3)
    name = f"{base}/{anomaly or 'control'}/{seed}"
    return Case(name, base, anomaly, seed, T0 + step * np.arange(n), values, s, step)


def suite(seeds: int = 3, n: int | None = None, step: float = STEP) -> list[Case]:
    cases = []
    for seed in range(seeds):
        for base in BASES:
            cases.append(make_case(base, None, seed, n, step))
            for anomaly in ANOMALIES:
                if applies(base, anomaly):
                    cases.append(make_case(base, anomaly, seed, n, step))
    return cases


@dataclass(frozen=True)
class Outcome:
    case: Case
    alarms: np.ndarray  # indices of alarms after the learning period
    delay: int | None  # points from the anomaly's start to the first alarm at/after it
    early: int  # alarms between the learning period and the anomaly's start
    component: str  # component of the first alarm at/after the start

    @property
    def caught(self) -> bool:
        if self.case.anomaly is None:
            return False
        return (
            self.early == 0
            and self.delay is not None
            and self.delay <= bound(self.case.anomaly, self.case.step)
        )


def run_suite(
    cases: list[Case], config: CompositeConfig | None = None, tell_interval: bool = True
) -> tuple[list[Outcome], float]:
    """Every case (all at one step) through one detector bank (all series
    updated together); returns the outcomes and the seconds spent in the
    detector. The detector is told the sampling interval, as the analyzer
    tells it, and its learning period and records' half-life are the same
    durations as at 5 minutes (a rule sets them from its seconds);
    ``tell_interval=False``: none of this, every count in points."""
    cfg = config or CompositeConfig()
    if tell_interval and cfg.interval_s == 0 and cases:
        f = cfg.model_copy(update={"interval_s": cases[0].step}).point_scale
        cfg = cfg.model_copy(update={
            "interval_s": cases[0].step,
            "min_history": round(cfg.min_history * f),
            "record_halflife": cfg.record_halflife * f,
        })
    bank = DetectorBank(cfg, capacity=len(cases))
    slots = bank.add_many(len(cases))
    n = max(c.values.size for c in cases)
    alarm = np.zeros((len(cases), n), dtype=bool)
    comp = np.zeros((len(cases), n), dtype=np.int8)
    ts = np.stack([c.ts for c in cases])
    vs = np.stack([c.values for c in cases])
    started = time.perf_counter()
    for k in range(n):
        res = bank.update(slots, ts[:, k], vs[:, k])
        alarm[:, k] = res.is_anomaly
        comp[:, k] = res.component
    seconds = time.perf_counter() - started
    out = []
    for i, c in enumerate(cases):
        hits = np.flatnonzero(alarm[i, c.learn :]) + c.learn
        early = int((hits < c.start).sum())
        later = hits[hits >= c.start]
        delay = int(later[0] - c.start) if later.size else None
        component = COMPONENTS[int(comp[i, later[0]])] if later.size else ""
        out.append(Outcome(c, hits, delay, early, component))
    return out, seconds


def report(outcomes: list[Outcome], seconds: float) -> bool:
    """Print the table; True when every type was caught and no control alarmed."""
    ok = True
    print(f"{'anomaly':<15} {'bound':>5}  " + "  ".join(f"{b:>16}" for b in BASES))
    for anomaly in ANOMALIES:
        cells = []
        for base in BASES:
            group = [o for o in outcomes if o.case.anomaly == anomaly and o.case.base == base]
            if not group:
                cells.append(f"{'-':>16}")
                continue
            caught = sum(o.caught for o in group)
            delays = [o.delay for o in group if o.caught and o.delay is not None]
            worst = max(delays) if delays else None
            ok &= caught == len(group)
            shown = "-" if worst is None else str(worst)
            cells.append(f"{caught}/{len(group)} max {shown:>4}".rjust(16))
        step = outcomes[0].case.step if outcomes else STEP
        print(f"{anomaly:<15} {bound(anomaly, step):>5}  " + "  ".join(cells))
    controls = [o for o in outcomes if o.case.anomaly is None]
    false = sum(o.alarms.size for o in controls)
    ok &= false == 0
    print(f"controls: {len(controls)} clean series, {false} alarms after the learning period")
    missed = [o for o in outcomes if o.case.anomaly is not None and not o.caught]
    for o in missed:
        print(f"  not caught: {o.case.name} (delay {o.delay}, early alarms {o.early})")
    points = sum(o.case.values.size for o in outcomes)
    print(f"detector: {points} points in {seconds:.2f}s = {points / seconds:,.0f} points/s "
          f"({len(outcomes)} series per batch)")
    return ok


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--step", type=float, default=STEP,
                    help="sampling interval in seconds (default 300; the delay bounds are "
                    "kept in time)")
    ap.add_argument("--days", type=float, default=14.0, help="length of every series")
    ap.add_argument("--no-interval", action="store_true",
                    help="do not tell the detector the sampling interval (its time "
                    "constants stay in points)")
    args = ap.parse_args(argv)
    print(f"machine: {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"load average {os.getloadavg()[0]:.2f}")
    n = int(args.days * 86400 / args.step)
    cases = suite(args.seeds, n, args.step)
    print(f"synthetic suite: {len(BASES)} base signals, {n} points each ({args.step:g} s step), "
          f"anomaly at point {cases[1].start}, learning period {cases[0].learn} points, "
          f"{args.seeds} seeds; detector told the interval: {not args.no_interval}")
    outcomes, seconds = run_suite(cases, tell_interval=not args.no_interval)
    return 0 if report(outcomes, seconds) else 1


if __name__ == "__main__":
    sys.exit(main())

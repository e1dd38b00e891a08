"""Per-series evaluators: turn samples into observations for the state machine (pure).

* threshold: a comparison, with optional hysteresis (``recovery_value``);
* baseline / anomaly: a streaming detector per (rule, series), warmed up
  from stored history, whose verdict and expected band explain the alert.

Absence rules are not sample-driven; :func:`absence_observation` judges a
subject from the time it was last seen.
"""

from __future__ import annotations

import itertools
import math
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import numpy as np

from nazar_analyzer import detectors
from nazar_analyzer.detection import BankResult, CompositeDetector, DetectionResult, Detector
from nazar_analyzer.machine import NORMAL, Machine, Observation, Status, Transition
from nazar_analyzer.rules import Rule
from nazar_common.schemas.config import AbsenceParams, ThresholdParams

_EPS = 1e-6  # seconds: points closer than this to the last one are repeats

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}


class Observer(Protocol):
    """Judges one point of a series (for the state machine). An observer may
    also have ``quiet(value) -> bool``: True when the point cannot open an
    alert, so a normal subject skips building an observation (the hot path)."""

    def observe(self, ts: float, value: float) -> Observation: ...


@dataclass(frozen=True)
class ObserverKind:
    """How a sample-driven rule kind is evaluated point by point: ``factory``
    makes its observer, one per rule (``per_series=False``: stateless, like
    threshold) or one per (rule, series) kept in the owning replica's memory."""

    factory: Callable[[Rule], Observer]
    per_series: bool = False


#: The registration point of sample-driven rule kinds evaluated by an
#: observer: a kind's module calls :func:`register_kind` when imported (and
#: is imported below). Kinds with a learning detector per series
#: (:data:`DETECTOR_KINDS`) are evaluated in batches per detector bank instead.
OBSERVER_KINDS: dict[str, ObserverKind] = {}
DETECTOR_KINDS = frozenset({"baseline", "anomaly"})


def register_kind(kind: str, factory: Callable[[Rule], Observer], *,
                  per_series: bool = False) -> None:
    OBSERVER_KINDS[kind] = ObserverKind(factory, per_series)


def fmt(x: float | None) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{x:.4g}"


class ThresholdEvaluator:
    """Stateless: one instance serves every series of a rule."""

    def __init__(self, params: ThresholdParams, metric: str | None) -> None:
        self.params = params
        self.metric = metric or "value"
        self.op = _OPS[params.comparator]
        self.recovery = params.recovery_value if params.comparator not in ("==", "!=") else None
        up = params.comparator in (">", ">=")
        down = params.comparator in ("<", "<=")
        self.low = params.value if down else None
        self.high = params.value if up else None

    def quiet(self, value: float) -> bool:
        """No breach: a normal subject stays normal (no observation needed)."""
        return not self.op(value, self.params.value)

    def observe(self, ts: float, value: float) -> Observation:
        p = self.params
        breach = self.op(value, p.value)
        clear = None if self.recovery is None else not self.op(value, self.recovery)
        if breach:
            text = f"{self.metric} {fmt(value)} {p.comparator} {fmt(p.value)}"
        else:
            text = f"{self.metric} {fmt(value)} is not {p.comparator} {fmt(p.value)}"
        if self.recovery is not None and not breach and clear is False:
            text += f" (but not yet past the recovery level {fmt(self.recovery)})"
        return Observation(
            ts, breach, value, clear, self.low, self.high, p.value, None, text,
            (f"{self.metric}={fmt(value)}",),
        )


register_kind(
    "threshold",
    lambda rule: ThresholdEvaluator(rule.spec.params, rule.spec.metric),  # type: ignore[arg-type]
)


@dataclass
class DetectorEvaluator:
    """A detector bound to one (rule, series); ``last_ts`` is the time of the
    last point it consumed (its position in the series), ``origin`` the time
    from which it has learnt (a deploy it re-learnt after; None: unknown)."""

    rule_id: int
    rule_version: int
    series_id: int
    metric: str
    detector: Detector
    interval: float
    last_ts: float | None = None
    points: int = 0
    dirty: bool = False
    origin: float | None = None
    # its interval is the default, not measured (a new series): it is rebuilt
    # from the stored points once there are enough to measure it, and never
    # stored as a snapshot meanwhile
    guessed: bool = False
    _prev: float | None = field(default=None, repr=False)

    def feed(self, ts: float, value: float) -> DetectionResult:
        result = self.detector.update(ts, value)
        self.last_ts = ts
        self.points += 1
        self.dirty = True
        return result

    def warm(self, points: list[tuple[float, float]]) -> None:
        for ts, value in points:
            if self.last_ts is None or ts > self.last_ts:
                self.feed(ts, value)
                self._prev = value

    def observe(self, ts: float, value: float) -> Observation:
        prev = self._prev
        r = self.feed(ts, value)
        self._prev = value
        return self._observation(
            ts, value, prev, r.anomaly_score, r.is_anomaly, r.expected_low, r.expected_high,
            r.expected_centre, r.explanation, r.learning,
        )

    def _observation(
        self, ts: float, value: float, prev: float | None, score: float, anomaly: bool,
        low_: float, high_: float, centre_: float, text: str | None, learning: bool,
    ) -> Observation:
        """The state machine's observation of one verdict (``text=None``: no
        explanation or contributors, for a verdict that cannot change an alert)."""
        low, high, centre = _finite(low_), _finite(high_), _finite(centre_)
        if text is None:
            return Observation(ts, bool(anomaly), value, None, low, high, centre, float(score))
        contributors = [f"{self.metric}={fmt(value)}"]
        if centre is not None and low is not None and high is not None:
            width = max(high - centre, centre - low, 1e-12)
            contributors.append(
                f"level: {fmt(value - centre)} from the expected centre {fmt(centre)} "
                f"({(value - centre) / width:+.1f} half-bands)"
            )
        if prev is not None:
            contributors.append(f"change: {fmt(value - prev)} since the previous point")
        if learning:
            text = f"{text} ({self.points} points seen)"
        return Observation(
            ts, bool(anomaly), value, None, low, high, centre, float(score), text,
            tuple(contributors),
        )


def _new_points(
    ev: DetectorEvaluator, times: Sequence[float], values: Sequence[float], after: float | None
) -> tuple[list[float], list[float]]:
    """The points after ``after`` and after the detector's position, each later
    than the one before (a late or repeated point is skipped)."""
    last = after if ev.last_ts is None else (
        ev.last_ts if after is None else max(after, ev.last_ts))
    out_t: list[float] = []
    out_v: list[float] = []
    for t, v in zip(times, values, strict=True):
        if last is None or t > last + _EPS:
            out_t.append(t)
            out_v.append(v)
            last = t
    return out_t, out_v


def _feed_many(
    items: Sequence[tuple[DetectorEvaluator, Sequence[float], Sequence[float]]],
) -> list[tuple[BankResult | None, list[DetectionResult], int]]:
    """Feed each evaluator its points; composite detectors sharing a bank are
    updated together, in one ``DetectorBank.update`` call per bank.

    Returns, per item, the bank result and the offset of its points in it, or
    the per-point results of a detector without a bank."""
    out: list[tuple[BankResult | None, list[DetectionResult], int]] = [
        (None, [], 0) for _ in items
    ]
    groups: dict[int, list[int]] = {}
    for k, (ev, times, values) in enumerate(items):
        det = ev.detector
        if isinstance(det, CompositeDetector):
            groups.setdefault(id(det.bank), []).append(k)
        else:
            out[k] = (None, [det.update(t, v) for t, v in zip(times, values, strict=True)], 0)
    for members in groups.values():
        bank = items[members[0]][0].detector.bank  # type: ignore[attr-defined]
        # flat Python lists, one array each (not three small arrays per member)
        slots: list[int] = []
        ts: list[float] = []
        vs: list[float] = []
        offsets: list[int] = []
        for k in members:
            ev, times, values = items[k]
            offsets.append(len(ts))
            slots += [ev.detector.slot] * len(times)  # type: ignore[attr-defined]
            ts += times
            vs += values
        res = bank.update(np.array(slots, dtype=np.int64), np.array(ts, dtype=float),
                          np.array(vs, dtype=float))
        for k, off in zip(members, offsets, strict=True):
            out[k] = (res, [], off)
    for (ev, times, values), _ in zip(items, out, strict=True):
        if times:
            ev.last_ts = float(times[-1])
            ev.points += len(times)
            ev.dirty = True
            ev._prev = float(values[-1])
    return out


def warm_many(items: Sequence[tuple[DetectorEvaluator, Sequence[tuple[float, float]]]]) -> None:
    """Bring several evaluators up to date with stored points (batched per bank)."""
    work = []
    for ev, points in items:
        times, values = _new_points(ev, [t for t, _ in points], [v for _, v in points], None)
        work.append((ev, times, values))
    _feed_many(work)


def step_many(
    items: Sequence[
        tuple[DetectorEvaluator, Machine, Status, Sequence[float], Sequence[float]]
    ],
) -> list[tuple[list[Transition], int]]:
    """Evaluate new points of several (rule, series) detectors and advance their
    state machines; returns each item's transitions and evaluated point count.

    Points at or before ``status.last_ts`` are skipped (already evaluated). The
    detectors are updated in batches (one ``DetectorBank.update`` per bank), and an
    observation is explained in full only where it changed an alert (a
    transition), after the state machine has stepped: a firing alert's later
    points cost no explanation."""
    work = []
    for ev, _, status, times, values in items:
        work.append((ev, *_new_points(ev, times, values, status.last_ts)))
    before = [ev._prev for ev, _, _ in work]
    fed = _feed_many(work)
    lists: dict[int, tuple[list[Any], ...]] = {}  # a bank result as Python lists
    out: list[tuple[list[Transition], int]] = []
    for (_, machine, status, _, _), (ev, times, values), (res, results, off), prev in zip(
        items, work, fed, before, strict=True
    ):
        transitions: list[Transition] = []
        if res is None:
            for k, (ts, value) in enumerate(zip(times, values, strict=True)):
                r = results[k]
                obs = ev._observation(
                    ts, value, prev, r.anomaly_score, r.is_anomaly, r.expected_low,
                    r.expected_high, r.expected_centre, r.explanation, r.learning,
                )
                transitions += machine.step(status, obs)
                prev = value
            out.append((transitions, len(times)))
            continue
        cols = lists.get(id(res))
        if cols is None:
            cols = lists[id(res)] = (
                res.score.tolist(), res.is_anomaly.tolist(), _nones(res.low),
                _nones(res.high), _nones(res.centre), res.learning.tolist(),
            )
        scores, anomalies, lows, highs, centres, learnings = cols
        step = machine.step
        plain = type(machine) is Machine  # (a HeldMachine judges every verdict)
        for i, ts, value in zip(range(off, off + len(times)), times, values, strict=True):
            if plain and not anomalies[i] and status.state == NORMAL:
                # what Machine.step does with a normal verdict of a normal state
                last = status.last_ts
                status.last_ts = ts if last is None or ts > last else last
                prev = value
                continue
            obs = Observation(
                ts, anomalies[i], value, None, lows[i], highs[i], centres[i], scores[i]
            )
            stepped = step(status, obs)
            if stepped:  # the verdict changed an alert: explain it (only then)
                full = ev._observation(
                    ts, value, prev, scores[i], anomalies[i], _nan(lows[i]), _nan(highs[i]),
                    _nan(centres[i]), res.explanation(i), learnings[i],
                )
                stepped = [
                    replace(tr, observation=full) if tr.observation is obs else tr
                    for tr in stepped
                ]
                transitions += stepped
            prev = value
        out.append((transitions, len(times)))
    return out


def _nones(a: np.ndarray) -> list[float | None]:
    return [None if x != x or x in (math.inf, -math.inf) else x for x in a.tolist()]


def _nan(x: float | None) -> float:
    return math.nan if x is None else x


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def absence_observation(rule: Rule, now: float, last_seen: float | None, what: str) -> Observation:
    params = rule.spec.params
    assert isinstance(params, AbsenceParams)
    if last_seen is None:
        return Observation(now, True, None, None, explanation=f"{what} has never reported")
    silent = now - last_seen
    breach = silent > params.after
    if breach:
        text = f"{what} has not reported for {silent:.0f}s (more than {params.after:.0f}s)"
    else:
        text = f"{what} last reported {silent:.0f}s ago"
    return Observation(now, breach, silent, None, None, params.after, None, None, text,
                       (f"last_seen_seconds_ago={silent:.0f}",))


#: Fewest points the sampling interval is measured from.
MIN_INTERVAL_POINTS = 3


def measured_interval(times: list[float]) -> float | None:
    """Median spacing of the points (the series' sampling interval), or None
    when there are too few to tell."""
    if len(times) < MIN_INTERVAL_POINTS:
        return None
    diffs = sorted(b - a for a, b in itertools.pairwise(times) if b > a)
    if not diffs:
        return None
    return max(diffs[len(diffs) // 2], 1e-3)


def estimate_interval(times: list[float], default: float) -> float:
    """Median spacing of the points (the series' sampling interval), or ``default``."""
    measured = measured_interval(times)
    return default if measured is None else measured


def new_detector_evaluator(
    rule: Rule,
    series_id: int,
    interval: float,
    limits: detectors.Limits,
    pool: detectors.BankPool | None = None,
    relearn_from: float | None = None,
) -> DetectorEvaluator:
    """A fresh detector for a (rule, series); with ``relearn_from`` one that
    re-learns from that time on after a deploy (see :mod:`.deploys`)."""
    params = rule.spec.params
    assert params.kind in ("baseline", "anomaly")
    deploys = rule.spec.deploys
    relearn_for = deploys.hold_for if relearn_from is not None and deploys else None
    det = detectors.new_detector(
        params, interval, limits, pool, relearn_for  # type: ignore[arg-type]
    )
    return DetectorEvaluator(rule.id, rule.version, series_id, rule.spec.metric or "value",
                             det, interval, origin=relearn_from)


def relearn(ev: DetectorEvaluator, rule: Rule, limits: detectors.Limits,
            pool: detectors.BankPool | None, reset_at: float) -> DetectorEvaluator:
    """A fresh detector in place of ``ev`` that learns from ``reset_at`` on,
    at ``ev``'s position (the points before are not learnt)."""
    fresh = new_detector_evaluator(rule, ev.series_id, ev.interval, limits, pool, reset_at)
    fresh.last_ts = ev.last_ts
    fresh.dirty = True
    return fresh

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
from collections.abc import Callable
from dataclasses import dataclass, field

from nazar_analyzer import detectors
from nazar_analyzer.detection import DetectionResult, Detector
from nazar_analyzer.machine import Observation
from nazar_analyzer.rules import Rule
from nazar_common.schemas.config import AbsenceParams, ThresholdParams

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}


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


@dataclass
class DetectorEvaluator:
    """A detector bound to one (rule, series); ``last_ts`` is the time of the
    last point it consumed (its position in the series)."""

    rule_id: int
    rule_version: int
    series_id: int
    metric: str
    detector: Detector
    interval: float
    last_ts: float | None = None
    points: int = 0
    dirty: bool = False
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
        low, high, centre = (_finite(r.expected_low), _finite(r.expected_high),
                             _finite(r.expected_centre))
        contributors = [f"{self.metric}={fmt(value)}"]
        if centre is not None and low is not None and high is not None:
            width = max(high - centre, centre - low, 1e-12)
            contributors.append(
                f"level: {fmt(value - centre)} from the expected centre {fmt(centre)} "
                f"({(value - centre) / width:+.1f} half-bands)"
            )
        if prev is not None:
            contributors.append(f"change: {fmt(value - prev)} since the previous point")
        text = r.explanation
        if r.learning:
            text = f"{text} ({self.points} points seen)"
        return Observation(
            ts, bool(r.is_anomaly), value, None, low, high, centre, float(r.anomaly_score),
            text, tuple(contributors),
        )


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


def estimate_interval(times: list[float], default: float) -> float:
    """Median spacing of the points (the series' sampling interval)."""
    if len(times) < 3:
        return default
    diffs = sorted(b - a for a, b in itertools.pairwise(times) if b > a)
    if not diffs:
        return default
    return max(diffs[len(diffs) // 2], 1e-3)


def new_detector_evaluator(
    rule: Rule, series_id: int, interval: float, limits: detectors.Limits
) -> DetectorEvaluator:
    params = rule.spec.params
    assert params.kind in ("baseline", "anomaly")
    det = detectors.new_detector(params, interval, limits)  # type: ignore[arg-type]
    return DetectorEvaluator(rule.id, rule.version, series_id, rule.spec.metric or "value",
                             det, interval)

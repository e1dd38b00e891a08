"""NAB-style scoring of anomaly alarms against labelled windows.

A self-contained re-implementation of the scoring rules of the Numenta Anomaly
Benchmark (NAB v1.x) and of plain event metrics, written for this project
(numpy and stdlib only).  Definitions:

* The first ``min(floor(0.15 * n), 750)`` rows of a file are the probation
  period and are not scored.
* An alarm is a row whose score is at or above the threshold.
* Within a window only its earliest alarm counts: it earns
  ``tp * sigma(pos) / sigma(-1)`` where ``pos = -(right - i + 1) / width`` and
  ``sigma(x) = 2 / (1 + exp(5x)) - 1`` (forced to -1 for x > 3).  A window
  without alarm costs ``-fn``.
* An alarm outside every window costs ``fp * sigma(d)``, with
  ``d = (i - right_prev) / (width_prev - 1)`` measured from the end of the
  preceding window; alarms before the first window cost ``-fp``.
* Normalised score = ``100 * (raw - null) / (perfect - null)`` where
  ``null = -fn * windows`` and ``perfect = tp * windows``.
* Event metrics: a window with an alarm is a true-positive event, one without
  is a false negative, every alarm row outside all windows is a false-positive
  event; FPR = alarm rows outside windows / scored rows outside windows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

PROFILES: dict[str, dict[str, float]] = {
    "standard": {"tp": 1.0, "fn": 1.0, "fp": 0.11},
    "reward_low_FP_rate": {"tp": 1.0, "fn": 1.0, "fp": 0.22},
    "reward_low_FN_rate": {"tp": 1.0, "fn": 2.0, "fp": 0.11},
}


def scaled_sigmoid(x: np.ndarray | float) -> np.ndarray:
    """NAB's scaled sigmoid ``2 / (1 + e^(5x)) - 1``, set to -1 where x > 3."""
    arr = np.asarray(x, dtype=float)
    with np.errstate(over="ignore"):
        val = 2.0 / (1.0 + np.exp(5.0 * arr)) - 1.0
    return np.where(arr > 3.0, -1.0, val)


_FULL_CREDIT = float(scaled_sigmoid(-1.0))


def probation_rows(n_rows: int, fraction: float = 0.15, cap_rows: int = 5000) -> int:
    """Number of leading rows not scored (NAB: min(floor(p*n), p*5000))."""
    return int(min(math.floor(fraction * n_rows), fraction * cap_rows))


def safe_div(num: float, den: float) -> float:
    return float(num) / den if den else float("nan")


def f1_score(precision: float, recall: float) -> float:
    if math.isnan(precision) or math.isnan(recall):
        return float("nan")
    if precision + recall == 0:
        return 0.0
    return 2.0 * precision * recall / (precision + recall)


@dataclass
class FileScore:
    """Scores of one file at one threshold and profile."""

    name: str
    rows: int
    windows: int
    raw: float
    normalised: float
    tp: int
    fn: int
    fp: int
    alarms: int
    outside_rows: int
    precision: float
    recall: float
    f1: float
    fpr: float
    delays: list[float] = field(default_factory=list)


class ScoredFile:
    """Threshold-independent preparation of one file for scoring.

    ``timestamps`` are the file's timestamps as strings or datetime64, in row
    order; ``windows`` are ``(start, end)`` pairs of the same type.  A window
    bound is the first row carrying that timestamp (or, if absent, the nearest
    rows inside the window).
    """

    def __init__(
        self,
        name: str,
        timestamps: np.ndarray,
        scores: np.ndarray,
        windows: list[tuple[np.datetime64, np.datetime64]],
        probation: float = 0.15,
    ) -> None:
        self.name = name
        ts = np.asarray(timestamps, dtype="datetime64[us]")
        self.n = n = int(ts.size)
        self.scores = np.asarray(scores, dtype=float)
        if self.scores.shape != (n,):
            raise ValueError(f"{name}: {self.scores.size} scores for {n} rows")
        self.scored = np.arange(n) >= probation_rows(n, probation)
        bounds: list[tuple[int, int]] = []
        for start, end in windows:
            lo_hits = np.flatnonzero(ts == start)
            hi_hits = np.flatnonzero(ts == end)
            if lo_hits.size and hi_hits.size:
                lo, hi = int(lo_hits[0]), int(hi_hits[0])
            else:
                ge = np.flatnonzero(ts >= start)
                lo = int(ge[0]) if ge.size else n
                le = np.flatnonzero((ts <= end) & (np.arange(n) >= lo))
                hi = int(le.max()) if le.size else -1
            if lo > hi:
                raise ValueError(f"{name}: window {start}..{end} has no rows")
            bounds.append((lo, hi))
        bounds.sort()
        self.bounds = bounds
        idx = np.arange(n)
        win = np.full(n, -1, dtype=np.int64)
        for k, (lo, hi) in enumerate(bounds):
            win[lo : hi + 1] = k
        self.win = win
        tp_pos = np.zeros(n)
        after = np.full(n, np.nan)
        for k, (lo, hi) in enumerate(bounds):
            width = hi - lo + 1
            tp_pos[lo : hi + 1] = -(hi - idx[lo : hi + 1] + 1) / float(width)
            nxt = bounds[k + 1][0] if k + 1 < len(bounds) else n
            if hi + 1 < nxt:
                after[hi + 1 : nxt] = (idx[hi + 1 : nxt] - hi) / float(max(width - 1, 1))
        self.tp_unit = np.where(win >= 0, scaled_sigmoid(tp_pos) / _FULL_CREDIT, 0.0)
        fp_unit = np.where(np.isnan(after), -1.0, scaled_sigmoid(np.nan_to_num(after)))
        self.fp_unit = np.where(win >= 0, 0.0, fp_unit)
        self.win_scored = [bool(self.scored[lo : hi + 1].any()) for lo, hi in bounds]
        self.n_windows = int(sum(self.win_scored))
        self.n_outside = int(((win < 0) & self.scored).sum())

    def alarms(self, threshold: float) -> np.ndarray:
        return (self.scores >= threshold) & self.scored

    def raw_score(self, threshold: float, profile: dict[str, float]) -> float:
        alarm = self.alarms(threshold)
        raw = 0.0
        for k, (lo, hi) in enumerate(self.bounds):
            if not self.win_scored[k]:
                continue
            hits = np.flatnonzero(alarm[lo : hi + 1])
            raw += profile["tp"] * self.tp_unit[lo + hits[0]] if hits.size else -profile["fn"]
        raw += profile["fp"] * float(self.fp_unit[alarm & (self.win < 0)].sum())
        return raw

    def evaluate(self, threshold: float, profile: dict[str, float]) -> FileScore:
        alarm = self.alarms(threshold)
        tp = fn = 0
        delays: list[float] = []
        for k, (lo, hi) in enumerate(self.bounds):
            if not self.win_scored[k]:
                continue
            hits = np.flatnonzero(alarm[lo : hi + 1])
            if hits.size:
                tp += 1
                delays.append(hits[0] / float(max(hi - lo, 1)))
            else:
                fn += 1
        fp = int((alarm & (self.win < 0)).sum())
        raw = self.raw_score(threshold, profile)
        precision = safe_div(tp, tp + fp)
        recall = safe_div(tp, tp + fn)
        return FileScore(
            name=self.name,
            rows=self.n,
            windows=self.n_windows,
            raw=raw,
            normalised=normalise(raw, self.n_windows, profile),
            tp=tp,
            fn=fn,
            fp=fp,
            alarms=int(alarm.sum()),
            outside_rows=self.n_outside,
            precision=precision,
            recall=recall,
            f1=f1_score(precision, recall),
            fpr=safe_div(fp, self.n_outside),
            delays=delays,
        )


def normalise(raw: float, n_windows: int, profile: dict[str, float]) -> float:
    null = -profile["fn"] * n_windows
    perfect = profile["tp"] * n_windows
    if perfect == null:
        return float("nan")
    return 100.0 * (raw - null) / (perfect - null)


def corpus_score(files: list[ScoredFile], threshold: float, profile: dict[str, float]) -> float:
    """Normalised NAB score of a whole corpus at one threshold."""
    raw = sum(f.raw_score(threshold, profile) for f in files)
    return normalise(raw, sum(f.n_windows for f in files), profile)


def best_threshold(
    files: list[ScoredFile], profile: dict[str, float], candidates: np.ndarray
) -> tuple[float, float]:
    """Threshold among ``candidates`` that maximises the corpus score (for reference)."""
    best = (float("inf"), corpus_score(files, float("inf"), profile))
    for t in candidates:
        s = corpus_score(files, float(t), profile)
        if s > best[1]:
            best = (float(t), s)
    return best

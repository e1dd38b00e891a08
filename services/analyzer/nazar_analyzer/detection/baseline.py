"""Robust statistical baseline detector.

The expected band of a series is learnt from a bounded window of its recent
history, on three scales:

* the values themselves (catches spikes and dips),
* a rolling median of the last ``smooth_window`` values (catches level shifts
  that are too small to stand out point by point), and
* the *local deviation*: the value minus the median of the ``smooth_window``
  points before it (``local_scale``).  This judges a spike or dip against the
  level the series is at now, so it still stands out shortly after a level
  shift, when the first two scales are anchored on the old level.

On each scale the band is centred on the history median and reaches out to the
history's ``extreme_rank``-th most extreme value on each side, widened by
``margin`` times its distance from the centre, and never narrower than
``mad_k`` robust standard deviations (1.4826 * MAD).  Values the series has
produced before (daily peaks, batch jobs) are therefore not news; a value
clearly beyond anything seen in the window is.  With a daily or weekly
seasonality, the band is learnt on the residual after subtracting the median
of the same time-of-day (of-week) bin, once enough cycles have been seen.

Points judged anomalous (raw score >= ``quarantine_score``) are *quarantined*:
they and the points after them are held out of the history while the episode
lasts (see :class:`~.base.Quarantine`), so one spike does not widen the band
and a sustained anomaly stays anomalous.  When the series has been normal for
``release_after`` points the held points are learnt; when the episode has
lasted ``rebaseline_fraction`` of ``max_history`` points, it is learnt as the
new normal (re-baselining).

The score of a point is ``r^k / (1 + r^k)`` with ``r`` the distance from the
centre relative to the distance to the band edge: 0.5 at the edge.  The largest
of the scales' scores is used.  An :class:`~.base.AlarmGate` then decides
on alarms (persistence and alarm suppression).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from .base import (
    ALARM_SCORE,
    Admission,
    AlarmGate,
    DetectionResult,
    Direction,
    Quarantine,
    RingBuffer,
    StateDict,
    TwoPhaseUpdate,
    explain,
    fmt_value,
    ignored_result,
    learning_result,
    quarantine_horizon,
    score_from_ratio,
)
from .seasonal import Seasonality, SeasonalProfile

MAD_TO_SIGMA = 1.4826


class BaselineConfig(BaseModel):
    """Settings of :class:`BaselineDetector` (counts are in points)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    max_history: int = 2016
    min_history: int = 288
    smooth_window: int = 12
    extreme_rank: int = 1
    margin: float = 0.1
    mad_k: float = 6.0
    rel_floor: float = 1e-3
    direction: Direction = Direction.BOTH
    seasonality: Seasonality = Seasonality.NONE
    season_bins_per_day: int = 24
    season_min_cycles: float = 3.0
    steepness: float = 4.0
    threshold: float = ALARM_SCORE
    alarm_window: int = 1
    alarm_fraction: float = 1.0
    refractory_s: float = 6 * 3600.0
    refractory_extends: bool = True
    stats_every: int = 1
    local_scale: bool = True
    quarantine_score: float = ALARM_SCORE
    release_after: int = 3
    rebaseline_fraction: float = 0.1

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> BaselineConfig:
        """Settings from a dict; keys of other versions are ignored."""
        return cls.model_validate(d)


@dataclass(slots=True)
class Band:
    """Expected band of one scale: centre and edges."""

    centre: float
    low: float
    high: float

    def ratio(self, y: float, direction: Direction) -> float:
        """Distance from the centre relative to the distance to the edge (1 = edge)."""
        if y > self.centre and direction is not Direction.BELOW:
            return (y - self.centre) / (self.high - self.centre)
        if y < self.centre and direction is not Direction.ABOVE:
            return (self.centre - y) / (self.centre - self.low)
        return 0.0


def robust_band(
    values: np.ndarray,
    extreme_rank: int,
    margin: float,
    mad_k: float,
    rel_floor: float,
    abs_floor: float = 1e-12,
) -> Band:
    """Band of a history sample (see module docstring)."""
    n = values.size
    k = min(extreme_rank, n) - 1
    mid = n // 2
    part = np.partition(values, (k, mid, n - 1 - k))
    lo_ext, centre, hi_ext = float(part[k]), float(part[mid]), float(part[n - 1 - k])
    mad = float(np.median(np.abs(values - centre)))
    floor = max(MAD_TO_SIGMA * mad * mad_k, rel_floor * abs(centre), abs_floor, 1e-12)
    high = max(hi_ext + margin * (hi_ext - centre), centre + floor)
    low = min(lo_ext - margin * (centre - lo_ext), centre - floor)
    return Band(centre, low, high)


class BaselineDetector(TwoPhaseUpdate):
    """Median/MAD/extremes band detector on raw, smoothed and local scales (bounded memory)."""

    config: BaselineConfig
    name = "baseline"

    def __init__(self, config: BaselineConfig | None = None) -> None:
        self.config = cfg = config or BaselineConfig()
        if cfg.min_history < 2 or cfg.max_history < cfg.min_history:
            raise ValueError("need 2 <= min_history <= max_history")
        self._hist = RingBuffer(cfg.max_history)
        self._hist_smooth = RingBuffer(cfg.max_history)
        self._hist_local = RingBuffer(cfg.max_history)
        # the last smooth_window values plus the one before them (for the local scale)
        self._recent: deque[float] = deque(maxlen=max(1, cfg.smooth_window) + 1)
        self._season = SeasonalProfile(
            cfg.seasonality,
            bins_per_day=cfg.season_bins_per_day,
            min_cycles=cfg.season_min_cycles,
        )
        self._season_active = False
        self._gate = AlarmGate(
            cfg.threshold,
            cfg.alarm_window,
            cfg.alarm_fraction,
            cfg.refractory_s,
            refractory_extends=cfg.refractory_extends,
        )
        self._quarantine = Quarantine(
            quarantine_horizon(cfg.rebaseline_fraction, cfg.max_history, cfg.release_after),
            cfg.release_after,
        )
        # (value, smoothed, local) of the points held out of the history
        self._held: list[tuple[float, float, float]] = []
        self._pending: tuple[float, float, tuple[float, float, float]] | None = None
        self._bands: tuple[Band, Band, Band] | None = None
        self._since_stats = 0
        self._n = 0

    # -- interface ---------------------------------------------------------

    def config_dict(self) -> dict[str, Any]:
        return self.config.to_dict()

    def judge(self, ts: float, value: float) -> DetectionResult:
        """First half of :meth:`update`: judge the point; :meth:`admit` must follow.

        An ensemble calls the two halves itself, so that its combined verdict
        decides which points all of its members hold back.
        """
        self._pending = None
        x = float(value)
        if not math.isfinite(x):
            return ignored_result(ts, x)
        self._maybe_activate_season()
        offset = self._season.offset(ts) if self._season_active else 0.0
        y = x - offset
        self._recent.append(y)
        smooth, local = self._local_stats(y)
        self._pending = (ts, x, (y, smooth, local))
        return self._judge(ts, x, y, smooth, local, offset)

    def admit(self, suspect: bool) -> Admission:
        """Second half of :meth:`update`: learn from the judged point, or hold it back."""
        if self._pending is None:  # not a finite value
            return Admission.ADMIT
        ts, x, point = self._pending
        self._pending = None
        action = self._quarantine.step(suspect)
        if action is Admission.HOLD:
            self._held.append(point)
        else:
            for held in (*self._held, point):
                self._learn(*held)
            self._held.clear()
        self._season.add(ts, x)
        self._n += 1
        return action

    def state_dict(self) -> StateDict:
        return {
            "type": self.name,
            "config": self.config.to_dict(),
            "hist": self._hist.state_dict(),
            "hist_smooth": self._hist_smooth.state_dict(),
            "hist_local": self._hist_local.state_dict(),
            "recent": list(self._recent),
            "held": [list(p) for p in self._held],
            "quarantine": self._quarantine.state_dict(),
            "season": self._season.state_dict(),
            "season_active": self._season_active,
            "gate": self._gate.state_dict(),
            "n": self._n,
        }

    def load_state(self, state: StateDict) -> None:
        self.__init__(BaselineConfig.from_dict(state["config"]))  # type: ignore[misc]
        self._hist.load_state(state["hist"])
        self._hist_smooth.load_state(state["hist_smooth"])
        self._hist_local.load_state(state["hist_local"])
        self._recent.extend(float(v) for v in state["recent"])
        self._held = [(float(a), float(b), float(c)) for a, b, c in state.get("held", [])]
        self._quarantine.load_state(state.get("quarantine"))
        self._season.load_state(state["season"])
        self._season_active = bool(state["season_active"])
        self._gate.load_state(state["gate"])
        self._n = int(state["n"])

    # -- internals ---------------------------------------------------------

    def _maybe_activate_season(self) -> None:
        if self._season_active or not self._season.enabled or not self._season.ready():
            return
        # switch the learnt history to residuals so that bands stay consistent
        self._season_active = True
        self._hist = RingBuffer(self.config.max_history)
        self._hist_smooth = RingBuffer(self.config.max_history)
        self._hist_local = RingBuffer(self.config.max_history)
        self._recent.clear()
        self._held.clear()
        self._quarantine.load_state(None)
        self._bands = None

    def _learn(self, y: float, smooth: float, local: float) -> None:
        self._hist.append(y)
        self._hist_smooth.append(smooth)
        self._hist_local.append(local)
        self._since_stats += 1

    def _local_stats(self, y: float) -> tuple[float, float]:
        """Smoothed level and local deviation of the newest value ``y``.

        The smoothed level is the median of the last ``smooth_window`` values (``y``
        included); the local deviation is ``y`` minus the median of the
        ``smooth_window`` values before it.
        """
        cfg = self.config
        if cfg.smooth_window <= 1:
            prev = self._recent[0] if len(self._recent) > 1 else y
            return y, y - prev
        recent = np.fromiter(self._recent, dtype=float)
        smooth = float(np.median(recent[-cfg.smooth_window :]))
        local = y - float(np.median(recent[:-1])) if recent.size > 1 else 0.0
        return smooth, local

    def _current_bands(self) -> tuple[Band, Band, Band]:
        cfg = self.config
        if self._bands is None or self._since_stats >= cfg.stats_every:
            args = (cfg.extreme_rank, cfg.margin, cfg.mad_k, cfg.rel_floor)
            band = robust_band(self._hist.values(), *args)
            band_s = robust_band(self._hist_smooth.values(), *args)
            if cfg.local_scale:
                # deviations are centred on 0: the relative floor refers to the level
                band_l = robust_band(
                    self._hist_local.values(), *args, abs_floor=cfg.rel_floor * abs(band.centre)
                )
            else:
                band_l = Band(0.0, -math.inf, math.inf)
            self._bands = (band, band_s, band_l)
            self._since_stats = 0
        return self._bands

    def _judge(
        self, ts: float, x: float, y: float, smooth: float, local: float, offset: float
    ) -> DetectionResult:
        cfg = self.config
        if len(self._hist) < cfg.min_history:
            self._gate.step(ts, 0.0)
            return learning_result(ts, x)
        band, band_s, band_l = self._current_bands()
        s_raw = score_from_ratio(band.ratio(y, cfg.direction), cfg.steepness)
        s_smooth = score_from_ratio(band_s.ratio(smooth, cfg.direction), cfg.steepness)
        s_local = 0.0
        if cfg.local_scale:
            s_local = score_from_ratio(band_l.ratio(local, cfg.direction), cfg.steepness)
        raw = max(s_raw, s_smooth, s_local)
        alarm = self._gate.step(ts, raw)
        score = self._gate.reported_score(raw, alarm)
        low, high, centre = band.low + offset, band.high + offset, band.centre + offset
        if s_local > max(s_raw, s_smooth):
            level = x - local  # median of the points just before this one
            text = explain(
                x,
                level + band_l.low,
                level + band_l.high,
                level + band_l.centre,
                score,
                f"value (vs median {fmt_value(level)} of the previous "
                f"{max(cfg.smooth_window, 1)} points)",
            )
        elif s_smooth > s_raw and cfg.smooth_window > 1:
            text = explain(
                smooth + offset,
                band_s.low + offset,
                band_s.high + offset,
                band_s.centre + offset,
                score,
                f"median of last {cfg.smooth_window} points",
            )
        else:
            text = explain(x, low, high, centre, score)
        if raw >= cfg.threshold and not alarm:
            text += " (alarm suppressed: persistence/refractory)"
        return DetectionResult(ts, x, score, alarm, low, high, centre, text, raw, False)

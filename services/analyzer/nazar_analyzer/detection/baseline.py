"""Robust statistical baseline detector.

The expected band of a series is learnt from a bounded window of its recent
history, on two time scales:

* the values themselves (catches spikes and dips), and
* a rolling median of the last ``smooth_window`` values (catches level shifts
  that are too small to stand out point by point).

On each scale the band is centred on the history median and reaches out to the
history's ``extreme_rank``-th most extreme value on each side, widened by
``margin`` times its distance from the centre, and never narrower than
``mad_k`` robust standard deviations (1.4826 * MAD).  Values the series has
produced before (daily peaks, batch jobs) are therefore not news; a value
clearly beyond anything seen in the window is.  With a daily or weekly
seasonality, the band is learnt on the residual after subtracting the median
of the same time-of-day (of-week) bin, once enough cycles have been seen.

The score of a point is ``r^k / (1 + r^k)`` with ``r`` the distance from the
centre relative to the distance to the band edge: 0.5 at the edge.  The larger
of the two scales' scores is used.  An :class:`~.base.AlarmGate` then decides
on alarms (persistence and alarm suppression).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from .base import (
    ALARM_SCORE,
    AlarmGate,
    DetectionResult,
    Direction,
    RingBuffer,
    StateDict,
    explain,
    score_from_ratio,
)
from .seasonal import Seasonality, SeasonalProfile

MAD_TO_SIGMA = 1.4826


@dataclass(frozen=True, slots=True)
class BaselineConfig:
    """Settings of :class:`BaselineDetector` (counts are in points)."""

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
    stats_every: int = 1
    shift_window: int = 0
    shift_fraction: float = 0.9
    shift_min_history: int = 72
    spread_window: int = 12
    spread_direction: Direction = Direction.ABOVE

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["direction"] = Direction(self.direction).value
        d["spread_direction"] = Direction(self.spread_direction).value
        d["seasonality"] = Seasonality(self.seasonality).value
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> BaselineConfig:
        cfg = cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})
        return replace(
            cfg,
            direction=Direction(cfg.direction),
            spread_direction=Direction(cfg.spread_direction),
            seasonality=Seasonality(cfg.seasonality),
        )


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


class BaselineDetector:
    """Median/MAD/extremes band detector on raw and smoothed values (bounded memory)."""

    name = "baseline"

    def __init__(self, config: BaselineConfig | None = None) -> None:
        self.config = cfg = config or BaselineConfig()
        if cfg.min_history < 2 or cfg.max_history < cfg.min_history:
            raise ValueError("need 2 <= min_history <= max_history")
        self._hist = RingBuffer(cfg.max_history)
        self._hist_smooth = RingBuffer(cfg.max_history)
        self._hist_spread = RingBuffer(cfg.max_history)
        self._recent: deque[float] = deque(maxlen=max(1, cfg.smooth_window, cfg.spread_window))
        self._season = SeasonalProfile(
            cfg.seasonality,
            bins_per_day=cfg.season_bins_per_day,
            min_cycles=cfg.season_min_cycles,
        )
        self._season_active = False
        self._gate = AlarmGate(
            cfg.threshold, cfg.alarm_window, cfg.alarm_fraction, cfg.refractory_s
        )
        self._bands: tuple[Band, Band, Band] | None = None
        self._since_stats = 0
        self._n = 0
        # level-shift tracking: side (+1 above, -1 below, 0 none), frozen edge of the
        # smoothed band when the run started, points in the run, points beyond the edge
        self._shift_side = 0
        self._shift_edge = 0.0
        self._shift_len = 0
        self._shift_out = 0
        self._relearning = False

    # -- interface ---------------------------------------------------------

    def config_dict(self) -> dict[str, Any]:
        return self.config.to_dict()

    def update(self, ts: float, value: float) -> DetectionResult:
        cfg = self.config
        x = float(value)
        if not math.isfinite(x):
            return DetectionResult(
                ts,
                x,
                0.0,
                False,
                math.nan,
                math.nan,
                math.nan,
                "value is not a finite number; ignored",
                0.0,
                True,
            )
        self._maybe_activate_season()
        offset = self._season.offset(ts) if self._season_active else 0.0
        y = x - offset
        self._recent.append(y)
        smooth, spread = self._local_stats(y)
        result = self._judge(ts, x, y, smooth, spread, offset)
        self._hist.append(y)
        self._hist_smooth.append(smooth)
        self._hist_spread.append(spread)
        if not result.learning:
            self._track_shift(smooth)
        self._season.add(ts, x)
        self._n += 1
        self._since_stats += 1
        return result

    def state_dict(self) -> StateDict:
        return {
            "type": self.name,
            "config": self.config.to_dict(),
            "hist": self._hist.state_dict(),
            "hist_smooth": self._hist_smooth.state_dict(),
            "hist_spread": self._hist_spread.state_dict(),
            "recent": list(self._recent),
            "season": self._season.state_dict(),
            "season_active": self._season_active,
            "gate": self._gate.state_dict(),
            "n": self._n,
            "shift": [
                self._shift_side,
                self._shift_edge,
                self._shift_len,
                self._shift_out,
                self._relearning,
            ],
        }

    def load_state(self, state: StateDict) -> None:
        self.__init__(BaselineConfig.from_dict(state["config"]))  # type: ignore[misc]
        self._hist.load_state(state["hist"])
        self._hist_smooth.load_state(state["hist_smooth"])
        self._hist_spread.load_state(state["hist_spread"])
        self._recent.extend(float(v) for v in state["recent"])
        self._season.load_state(state["season"])
        self._season_active = bool(state["season_active"])
        self._gate.load_state(state["gate"])
        self._n = int(state["n"])
        side, edge, length, out, relearning = state["shift"]
        self._shift_side, self._shift_edge = int(side), float(edge)
        self._shift_len, self._shift_out = int(length), int(out)
        self._relearning = bool(relearning)

    # -- internals ---------------------------------------------------------

    def _maybe_activate_season(self) -> None:
        if self._season_active or not self._season.enabled or not self._season.ready():
            return
        # switch the learnt history to residuals so that bands stay consistent
        self._season_active = True
        self._hist = RingBuffer(self.config.max_history)
        self._hist_smooth = RingBuffer(self.config.max_history)
        self._hist_spread = RingBuffer(self.config.max_history)
        self._recent.clear()
        self._bands = None

    def _track_shift(self, smooth: float) -> None:
        """Re-anchor the history on the new level once a level shift is confirmed.

        A run starts when the smoothed value leaves the smoothed band; the edge it
        crossed is frozen.  The shift is confirmed when the run has lasted
        ``shift_window`` points with at least ``shift_fraction`` of them beyond that
        edge; the history is then replaced by the points of the run (the new level),
        so that the band is learnt again from post-shift data.
        """
        cfg = self.config
        if cfg.shift_window < 1 or self._bands is None:
            return
        band_s = self._bands[1]
        if self._shift_side == 0:
            if smooth > band_s.high:
                self._shift_side, self._shift_edge = 1, band_s.high
            elif smooth < band_s.low:
                self._shift_side, self._shift_edge = -1, band_s.low
            else:
                return
            self._shift_len = self._shift_out = 1
            return
        self._shift_len += 1
        self._shift_out += int((smooth - self._shift_edge) * self._shift_side > 0)
        if self._shift_len - self._shift_out > (1.0 - cfg.shift_fraction) * cfg.shift_window:
            self._shift_side = 0  # back to the old level: a transient, not a shift
            return
        if self._shift_len < cfg.shift_window:
            return
        keep = self._shift_len
        for buf in (self._hist, self._hist_smooth, self._hist_spread):
            kept = buf.last(keep)
            buf.load_state({"capacity": cfg.max_history, "values": kept})
        self._bands = None
        self._relearning = True
        self._shift_side = 0

    def _local_stats(self, y: float) -> tuple[float, float]:
        """Rolling median (smoothed level) and rolling MAD (local spread)."""
        cfg = self.config
        if cfg.spread_window == -1:
            recent = np.fromiter(self._recent, dtype=float)
            smooth = float(np.median(recent[-cfg.smooth_window :]))
            return smooth, y - smooth
        if cfg.smooth_window <= 1 and cfg.spread_window <= 1:
            return y, 0.0
        recent = np.fromiter(self._recent, dtype=float)
        smooth = float(np.median(recent[-cfg.smooth_window :])) if cfg.smooth_window > 1 else y
        spread = 0.0
        if cfg.spread_window > 1:
            window = recent[-cfg.spread_window :]
            spread = float(np.median(np.abs(window - np.median(window))))
        return smooth, spread

    def _current_bands(self) -> tuple[Band, Band, Band]:
        cfg = self.config
        if self._bands is None or self._since_stats >= cfg.stats_every:
            args = (cfg.extreme_rank, cfg.margin, cfg.mad_k, cfg.rel_floor)
            band = robust_band(self._hist.values(), *args)
            band_s = robust_band(self._hist_smooth.values(), *args)
            if cfg.spread_window > 1 or cfg.spread_window == -1:
                band_d = robust_band(
                    self._hist_spread.values(), *args, abs_floor=cfg.rel_floor * abs(band.centre)
                )
            else:
                band_d = Band(0.0, -math.inf, math.inf)
            self._bands = (band, band_s, band_d)
            self._since_stats = 0
        return self._bands

    def _judge(
        self, ts: float, x: float, y: float, smooth: float, spread: float, offset: float
    ) -> DetectionResult:
        cfg = self.config
        need = cfg.min_history
        if self._relearning:
            if len(self._hist) >= cfg.min_history:
                self._relearning = False
            else:
                need = min(cfg.shift_min_history, cfg.min_history)
        if len(self._hist) < need:
            self._gate.step(ts, 0.0)
            return DetectionResult(
                ts,
                x,
                0.0,
                False,
                math.nan,
                math.nan,
                math.nan,
                explain(x, math.nan, math.nan, math.nan, 0.0),
                0.0,
                True,
            )
        band, band_s, band_d = self._current_bands()
        s_raw = score_from_ratio(band.ratio(y, cfg.direction), cfg.steepness)
        s_smooth = score_from_ratio(band_s.ratio(smooth, cfg.direction), cfg.steepness)
        s_spread = 0.0
        if cfg.spread_window > 1 or cfg.spread_window == -1:
            s_spread = score_from_ratio(band_d.ratio(spread, cfg.spread_direction), cfg.steepness)
        raw = max(s_raw, s_smooth, s_spread)
        alarm = self._gate.step(ts, raw)
        score = self._gate.reported_score(raw, alarm)
        low, high, centre = band.low + offset, band.high + offset, band.centre + offset
        if s_spread > max(s_raw, s_smooth):
            text = explain(
                spread,
                max(band_d.low, 0.0),
                band_d.high,
                band_d.centre,
                score,
                f"spread (median absolute deviation) of last {cfg.spread_window} points",
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

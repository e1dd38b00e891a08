"""The composite detector: many series of one configuration in numpy arrays.

A :class:`DetectorBank` holds the state of many series of ONE configuration
as struct-of-arrays (one row of a float64 matrix per series, plus a daily and
a weekly seasonal profile) and judges a batch of points of many series at
once::

    bank = DetectorBank(CompositeConfig())
    a, b = bank.add(), bank.add()                      # slots (ints)
    res = bank.update(np.array([a, b, a]),             # series slot of each point
                      np.array([t0, t0, t0 + 60.0]),   # epoch seconds
                      np.array([1.0, 5.0, 1.2]))       # values
    res.score, res.is_anomaly, res.low, res.high, res.centre, res.component
    res.explanation(i)                                 # text, built on demand
    blob = bank.export_state(a)                        # ~2 kB, no history
    c = bank.import_state(blob)                        # restore: microseconds
    bank.remove(b)                                     # slot is reused later
    whole = bank.checkpoint(); bank2 = DetectorBank.restore(whole)

Points of one series inside a batch are processed in their order in the
batch ("rounds": the k-th point of every series is handled in round k); all
work of a round is vectorised across series. Every update is O(1) per point
(recursive estimates, no history window, no refit), and the per-series state
is a fixed-size row, so restoring a series needs no replay.

Model of one series (all in the series' own units):

* expected value ``E = B + S(t)``: a robust slow level ``B`` (Huber-clipped
  exponentially weighted mean of the deseasonalised value, moved each point
  by the trend: the slope of an exponentially weighted least-squares line
  through the clipped values of the points learnt as normal) plus a seasonal
  offset ``S(t)`` from a daily (24 bins) or weekly (168 bins) profile,
  linearly interpolated between bin centres. Which seasonality applies is
  decided automatically: the profile whose residuals are clearly smaller
  (mean absolute residual, tracked for none / daily / weekly at once) once
  two cycles have been seen, and later only a model clearly better than
  the current one (no choosing and dropping by turns; choosing one does not
  widen the band). Until a seasonality is chosen, the profiles
  and those residuals learn from every point of the first two days (a young
  series' first episode may be the turn of its daily cycle), against ``B``.
* a fast level ``F`` (the recent level) and the noise scale of ``x - F``.

Statistics, each a component of the verdict (``COMPONENTS``):

* **spike / dip**: residual from the expected value in robust deviations, and
  the jump from the recent level ``F`` (catches a spike right after a shift);
  and the residual in the series' own units (``range_up`` / ``range_down``,
  judged with ``range_margin``): a record in deviations moves with the learnt
  noise scale, a record in the series' units does not;
* **level_up / level_down**: two-sided CUSUM of the clipped residual;
* **variance_up / variance_down**: log ratio of the short-term to the
  long-term variance of the jumps;
* **flatline**: length of the current run of identical values;
* **drift_up / drift_down**: a medium-term mean against a slow reference, in
  robust deviations (slow drifts and trend changes);
* **extreme_rate**: the short-term rate of large jumps against the long-term
  rate (a Poisson z), for spikes that become more frequent.

Every statistic is judged against the series' own record of it: the
threshold is ``max(floor, (1 + margin) * record)`` where ``record`` is a
decaying maximum of the statistic over the points learnt as normal
(half-life ``record_halflife`` points); the residual in deviations has its own
margin (``spike_margin``), the range its own (``range_margin``). A value
beyond anything the series did recently, by a margin, is news; a value it
produces every day is not.
The ratio statistic / threshold of the most extreme component is the raw
score (1 = edge of normal) and ``r^4 / (1 + r^4)`` maps it to [0, 1]
(0.5 at the edge).

Points judged anomalous are held out of what is learnt (the slow level,
scales, profiles after the first days, and records) while the episode
lasts, so a sustained anomaly stays anomalous; an episode that lasts
``rebaseline_points`` (at most ``rebaseline_s``) is taken as the new normal
(the slow level re-anchors on the recent level; the long-term variance and
rate of extremes adopt their current values; so does a drift statistic's
reference after a drift that stayed elevated as long without an alarm).
Settings that stand for a duration are bounded in time as well as in
points (``*_s``), so coarse series are judged on the same time scales as
fine ones; told its series' sampling interval (``interval_s``, as
the analyzer tells it), the detector scales them up for a series finer than
5 minutes, so a series sampled every 10 s is judged on the same time scales
as well.

The alarm gate: an alarm needs a score >= ``threshold`` on at least
``alarm_count`` of the last ``alarm_window`` points, and no alarm in the last
``refractory_s`` seconds (with ``refractory_extends``, since the last
alarm-worthy point: one alarm per incident).
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from .base import ALARM_SCORE, DetectionResult, StateDict, fmt_value

DAY_S = 86400.0
WEEK_S = 7 * DAY_S
BINS_DAY = 24
BINS_WEEK = 168
MAD_TO_SIGMA = 1.2533  # mean absolute deviation -> standard deviation (normal)

#: Components by id (``BankResult.component``); 0 = nothing unusual.
COMPONENTS: tuple[str, ...] = (
    "none",
    "spike",
    "dip",
    "level_up",
    "level_down",
    "variance_up",
    "variance_down",
    "flatline",
    "drift_up",
    "drift_down",
    "extreme_rate",
)
COMPONENT_ID = {name: i for i, name in enumerate(COMPONENTS)}

# statistics: (name, component, direction: +1 above, -1 below, 0 none)
_STATS: tuple[tuple[str, str, int], ...] = (
    ("z_up", "spike", 1),
    ("z_dn", "dip", -1),
    ("j_up", "spike", 1),
    ("j_dn", "dip", -1),
    ("cusum_up", "level_up", 1),
    ("cusum_dn", "level_down", -1),
    ("var_up", "variance_up", 0),
    ("var_dn", "variance_down", 0),
    ("flat", "flatline", 0),
    ("drift_up", "drift_up", 1),
    ("drift_dn", "drift_down", -1),
    ("rate", "extreme_rate", 0),
    ("range_up", "spike", 1),
    ("range_dn", "dip", -1),
)
#: The range statistics (in the series' units, not in deviations): the last two.
_RANGE = slice(12, 14)
#: The residual from the expected value in robust deviations: the first two.
_RESID = slice(0, 2)
N_STATS = len(_STATS)
_CUSUM_UP, _CUSUM_DN = 4, 5
_DRIFT_UP, _DRIFT_DN = 9, 10
# components whose statistic builds up over the anomaly (see ``learn_level``)
_ACCUMULATING = ("flatline", "drift_up", "drift_down", "level_up", "level_down")
#: Statistics by id (``BankResult.statistic``).
STATISTICS: tuple[str, ...] = tuple(name for name, _, _ in _STATS)
_STAT_COMPONENT = np.array([COMPONENT_ID[c] for _, c, _ in _STATS], dtype=np.int8)

# scalar state columns
(
    C_N,  # points learnt from (finite values)
    C_FIRST_TS,
    C_LAST_TS,
    C_LAST_X,
    C_DT,  # typical sampling interval (s)
    C_LEVEL,  # slow level B (deseasonalised)
    C_SCALE,  # mean |x - E|
    C_FAST,  # fast level F
    C_JSCALE,  # mean |x - F|
    C_VSHORT,  # short-term mean of (x - F)^2
    C_VLONG,  # long-term mean of (x - F)^2
    C_CUP,
    C_CDN,
    C_RUN,  # current run of identical values
    C_MID,  # medium-term level
    C_REF,  # slow reference level (for drift)
    C_RSHORT,  # short-term rate of large jumps
    C_RLONG,  # long-term rate of large jumps
    C_MAE0,  # mean |residual| without / with daily / with weekly profile
    C_MAED,
    C_MAEW,
    C_MODE,  # 0 none, 1 daily, 2 weekly
    C_HELD,  # points of the open anomaly episode
    C_LAST_ALARM,
    C_HITS,  # bit mask of recent alarm-worthy points
    C_ABS,  # mean |x|: the magnitude the relative floor of the scales refers to
    C_ESHORT,  # short-term mean |x - F| (unclipped): the current noise, for re-baselining
    C_TREND,  # slope of the level per point (the local linear fit below)
    C_MODE_N,  # points since the seasonality last changed
    # the trend: an exponentially weighted least-squares line through the
    # points learnt as normal (weights, mean age, mean value, and the sums of
    # squares of the age and of age x value about their means)
    C_TW,
    C_TAGE,
    C_TY,
    C_TAA,
    C_TAY,
) = range(34)
C_REC = 34  # records of the statistics
C_EPI = C_REC + N_STATS  # each statistic's peak since it rose above learn_level
C_ELEV = C_EPI + N_STATS  # points each statistic has stayed above learn_level
C_PEND = C_ELEV + N_STATS  # what the records will learn once it is confirmed
C_PN = C_PEND + N_STATS  # normal points since the pending values were started
N_SCALARS = C_PN + 1
ROW_FLOATS = N_SCALARS + BINS_DAY + BINS_WEEK

_STATE_MAGIC = b"NZS1"
_BANK_MAGIC = b"NZB1"
_DET_MAGIC = b"NZD1"


class CompositeConfig(BaseModel):
    """Settings of the composite detector (counts are in points; see ``interval_s``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    components: tuple[str, ...] = Field(
        default=COMPONENTS[1:], description="Components that may raise an alarm."
    )
    direction: Literal["above", "below", "both"] = "both"
    seasonality: Literal["auto", "none", "daily", "weekly"] = "auto"
    min_history: int = Field(default=150, ge=2, description="Points before alarms may be raised.")
    record_halflife: float = Field(
        default=4032.0, gt=0, description="Half-life (points) of the records thresholds refer to."
    )
    record_halflife_s: float = Field(
        default=14 * 86400.0,
        ge=0,
        description="If set, the records' half-life is at most this long (seconds, at the "
        "series' sampling interval).",
    )
    record_delay: int = Field(
        default=6,
        ge=0,
        description="Points a statistic's value waits before its record learns it (it is "
        "dropped if an anomaly starts meanwhile).",
    )
    margin: float = Field(default=0.5, ge=0, description="Threshold above the record, relative.")
    spike_margin: float | None = Field(
        default=0.3,
        ge=0,
        description="Threshold of the residual in robust deviations (spike / dip) above its "
        "record, relative; None: ``margin``.",
    )
    range_margin: float = Field(
        default=0.5,
        ge=0,
        description="Threshold of the range statistics above their record, relative.",
    )
    learn_level: float = Field(
        default=0.5,
        gt=0,
        le=1,
        description="A statistic above this fraction of its threshold is learnt only once "
        "it has fallen back (its episode's peak).",
    )
    floor_scale: float = Field(
        default=1.0, gt=0, description="Multiplier of every statistic's absolute floor."
    )
    spike_floor: float = Field(default=5.0, gt=0, description="Robust deviations.")
    jump_floor: float = Field(
        default=5.25,
        gt=0,
        description="Robust deviations of the jumps from the recent level: a second test of "
        "the same point against a noisier reference, set a little above the spike floor.",
    )
    cusum_floor: float = 12.0
    variance_floor: float = math.log(6.0)
    flat_floor: float = 12.0
    drift_floor: float = 4.0
    rate_floor: float = 5.0
    level_halflife: float = 144.0
    fast_halflife: float = 2.0
    mid_halflife: float = 36.0
    trend_halflife: float = 288.0
    ref_halflife: float = 1008.0
    short_var_halflife: float = 12.0
    long_halflife: float = 1008.0
    rate_short_halflife: float = 72.0
    rate_z: float = 3.0
    cusum_k: float = 0.5
    cusum_window: float = Field(
        default=48.0, gt=1, description="Memory of the (leaky) CUSUM, points."
    )
    cusum_window_s: float = Field(
        default=4 * 3600.0, ge=0, description="If set, the CUSUM's memory is at most this long (s)."
    )
    clip: float = 3.0
    rel_floor: float = 1e-3
    season_gain: float = 0.85
    season_cycles: float = 2.0
    season_memory_cycles: float = 4.0
    relearn_points: int = Field(
        default=75, ge=0, description="Points of learning after the seasonality changed."
    )
    relearn_s: float = Field(
        default=10800.0,
        ge=0,
        description="If set, the learning after a change of seasonality lasts at most this "
        "long (seconds, at the series' sampling interval).",
    )
    rebaseline_points: int = Field(default=288, ge=1)
    rebaseline_s: float = Field(
        default=86400.0,
        ge=0,
        description="If set, an episode is also the new normal after this long (seconds, "
        "at the series' sampling interval; at least 12 points).",
    )
    interval_s: float = Field(
        default=0.0,
        ge=0,
        description="The series' sampling interval (seconds), if known. The settings in "
        "points that stand for the model's time constants (the half-lives, the records' "
        "delay, the flat run's floor, re-learning and re-baselining) are meant at "
        "``reference_interval_s``; at a finer interval they are scaled to the same "
        "duration, so a series sampled every 10 s is modelled on the time scales of one "
        "sampled every 5 minutes. A coarser interval keeps the counts (the ``*_s`` "
        "settings bound them in time). The CUSUM's memory stays in points (its statistic "
        "accumulates evidence point by point); ``min_history``, ``record_halflife`` and "
        "the alarm window are the caller's, in the series' own points (a rule sets the "
        "first two from its seconds). 0: unknown, counts as given.",
    )
    reference_interval_s: float = Field(
        default=300.0, gt=0, description="The interval the time constants in points are meant at."
    )
    threshold: float = Field(default=ALARM_SCORE, gt=0, lt=1)
    alarm_window: int = Field(default=1, ge=1, le=32)
    alarm_count: int = Field(default=1, ge=1, le=32)
    refractory_s: float = Field(default=0.0, ge=0)
    refractory_extends: bool = True
    steepness: float = 4.0

    @model_validator(mode="after")
    def _check(self) -> CompositeConfig:
        unknown = set(self.components) - set(COMPONENTS[1:])
        if unknown:
            raise ValueError(f"unknown components {sorted(unknown)}; known: {COMPONENTS[1:]}")
        if self.alarm_count > self.alarm_window:
            raise ValueError("alarm_count must be <= alarm_window")
        return self

    @property
    def point_scale(self) -> float:
        """How many of the series' points stand for one point at the reference interval."""
        if self.interval_s <= 0 or self.interval_s >= self.reference_interval_s:
            return 1.0
        return self.reference_interval_s / self.interval_s

    def effective(self) -> CompositeConfig:
        """The settings the detector runs with: time constants in points scaled to
        the series' interval (:attr:`point_scale`)."""
        f = self.point_scale
        if f == 1.0:
            return self
        scaled: dict[str, Any] = {name: getattr(self, name) * f for name in _TIME_CONSTANTS}
        for name in _TIME_COUNTS:
            scaled[name] = round(getattr(self, name) * f)
        return self.model_copy(update=scaled)


#: Settings in points that stand for durations of the model (scaled by
#: :meth:`CompositeConfig.effective`).
_TIME_CONSTANTS = (
    "level_halflife",
    "fast_halflife",
    "mid_halflife",
    "trend_halflife",
    "ref_halflife",
    "short_var_halflife",
    "long_halflife",
    "rate_short_halflife",
    "flat_floor",
)
_TIME_COUNTS = ("record_delay", "relearn_points", "rebaseline_points")


@dataclass(frozen=True, slots=True)
class BankResult:
    """Verdicts on a batch of points, in the order of the batch (arrays)."""

    series: np.ndarray
    ts: np.ndarray
    value: np.ndarray
    score: np.ndarray  # [0, 1]; >= 0.5 exactly when is_anomaly
    raw: np.ndarray  # evidence before the alarm gate, in [0, 1]
    is_anomaly: np.ndarray
    learning: np.ndarray
    low: np.ndarray
    high: np.ndarray
    centre: np.ndarray
    component: np.ndarray  # index into COMPONENTS of the most extreme statistic
    statistic: np.ndarray  # index into STATISTICS of that statistic
    ratio: np.ndarray  # statistic / threshold of that component (1 = edge)
    season: np.ndarray  # 0 none, 1 daily, 2 weekly

    def __len__(self) -> int:
        return int(self.score.size)

    def explanation(self, i: int) -> str:
        """One line on point ``i``: value, expected band, component and score."""
        x = float(self.value[i])
        if not math.isfinite(x):
            return "value is not a finite number; ignored"
        if self.learning[i]:
            return f"value {fmt_value(x)}: still learning the normal range"
        low, high, centre = float(self.low[i]), float(self.high[i]), float(self.centre[i])
        where = "above" if x > high else "below" if x < low else "within"
        season = ("", " (daily pattern)", " (weekly pattern)")[int(self.season[i])]
        text = (
            f"value {fmt_value(x)} is {where} the expected band "
            f"[{fmt_value(low)}, {fmt_value(high)}] (centre {fmt_value(centre)}{season}); "
            f"score {float(self.score[i]):.2f}"
        )
        comp = int(self.component[i])
        if comp:
            text += f"; {_DESCRIBE[COMPONENTS[comp]]} at {float(self.ratio[i]):.2f} x its threshold"
        if self.raw[i] >= ALARM_SCORE and not self.is_anomaly[i]:
            text += " (alarm suppressed: persistence/refractory)"
        return text

    def result(self, i: int) -> DetectionResult:
        """Point ``i`` as a :class:`~.base.DetectionResult`."""
        return DetectionResult(
            float(self.ts[i]),
            float(self.value[i]),
            float(self.score[i]),
            bool(self.is_anomaly[i]),
            float(self.low[i]),
            float(self.high[i]),
            float(self.centre[i]),
            self.explanation(i),
            float(self.raw[i]),
            bool(self.learning[i]),
        )


_DESCRIBE = {
    "spike": "spike: far above the expected value or the recent level",
    "dip": "dip: far below the expected value or the recent level",
    "level_up": "level shift up (CUSUM)",
    "level_down": "level shift down (CUSUM)",
    "variance_up": "variance increase",
    "variance_down": "variance decrease",
    "flatline": "flat line: the value has not changed",
    "drift_up": "upward drift or trend change",
    "drift_down": "downward drift or trend change",
    "extreme_rate": "rising rate of extreme values",
}


def _within(
    points: float | np.ndarray, seconds: float, dt: np.ndarray, least: float = 0.0
) -> np.ndarray:
    """``points``, but no more than ``seconds`` at the sampling interval ``dt``
    (and no fewer than ``least``): a duration meant in time for coarse series."""
    return np.minimum(points, np.maximum(least, seconds / np.maximum(dt, 1e-3)))


def _alpha(halflife: float) -> float:
    return 1.0 - 0.5 ** (1.0 / max(halflife, 1e-9))


def rounds(series_idx: np.ndarray) -> list[np.ndarray]:
    """Positions of a batch grouped in rounds: round k holds the k-th point of
    every series (in batch order), so no series appears twice in a round."""
    m = series_idx.size
    if m == 0:
        return []
    order = np.argsort(series_idx, kind="stable")
    s = series_idx[order]
    new = np.empty(m, dtype=bool)
    new[0] = True
    np.not_equal(s[1:], s[:-1], out=new[1:])
    start = np.maximum.accumulate(np.where(new, np.arange(m), 0))
    rank = np.empty(m, dtype=np.int64)
    rank[order] = np.arange(m) - start
    if rank.max() == 0:
        return [np.arange(m)]
    by_rank = np.argsort(rank, kind="stable")
    counts = np.bincount(rank)
    return np.split(by_rank, np.cumsum(counts)[:-1])


class DetectorBank:
    """State of many series of one :class:`CompositeConfig`, updated in batches."""

    def __init__(self, config: CompositeConfig | None = None, capacity: int = 16) -> None:
        self.config = config or CompositeConfig()
        # what it runs with: the time constants at the series' sampling interval
        self._cfg = cfg = self.config.effective()
        capacity = max(1, capacity)
        self._s = np.zeros((N_SCALARS, capacity))  # one column per series
        self._daily = np.zeros((capacity, BINS_DAY))
        self._weekly = np.zeros((capacity, BINS_WEEK))
        self._used = np.zeros(capacity, dtype=bool)
        self._free: list[int] = list(range(capacity - 1, -1, -1))
        # constants of the configuration
        self._a_level = _alpha(cfg.level_halflife)
        self._a_fast = _alpha(cfg.fast_halflife)
        self._a_mid = _alpha(cfg.mid_halflife)
        self._a_ref = _alpha(cfg.ref_halflife)
        self._a_vs = _alpha(cfg.short_var_halflife)
        self._a_long = _alpha(cfg.long_halflife)
        self._a_rs = _alpha(cfg.rate_short_halflife)
        self._a_trend = _alpha(cfg.trend_halflife)
        self._l_trend = 1.0 - _alpha(cfg.trend_halflife)  # weight decay of the trend's line
        self._cusum_leak = 1.0 - 1.0 / cfg.cusum_window
        # statistics that grow steadily during their anomaly (a flat run, a
        # drift) stop being learnt at learn_level; the others at their threshold
        self._learn_level = np.array(
            [cfg.learn_level if c in _ACCUMULATING else 1.0 for _, c, _ in _STATS]
        )[:, None]
        floors = np.array(
            [
                cfg.spike_floor,
                cfg.spike_floor,
                cfg.jump_floor,
                cfg.jump_floor,
                cfg.cusum_floor,
                cfg.cusum_floor,
                cfg.variance_floor,
                cfg.variance_floor,
                cfg.flat_floor,
                cfg.drift_floor,
                cfg.drift_floor,
                cfg.rate_floor,
                0.0,
                0.0,
            ]
        )
        self._floors = (floors * cfg.floor_scale)[:, None]
        enabled = np.array([c in cfg.components for _, c, _ in _STATS])
        if cfg.direction == "above":
            enabled &= np.array([d >= 0 for _, _, d in _STATS])
        elif cfg.direction == "below":
            enabled &= np.array([d <= 0 for _, _, d in _STATS])
        self._enabled = enabled.astype(float)[:, None]
        # raw ratio at which the score reaches the alarm threshold
        t = cfg.threshold
        self._ratio_threshold = (t / (1.0 - t)) ** (1.0 / cfg.steepness)
        self._window_mask = (1 << cfg.alarm_window) - 1
        self._season_on = cfg.seasonality != "none"

    # -- series management ---------------------------------------------------

    def __len__(self) -> int:
        return int(self._used.sum())

    @property
    def slots(self) -> np.ndarray:
        """Slots in use."""
        return np.flatnonzero(self._used)

    def _grow(self, need: int) -> None:
        cap = self._used.size
        new_cap = max(cap * 2, cap + need)
        scalars = np.zeros((N_SCALARS, new_cap))
        scalars[:, :cap] = self._s
        self._s = scalars
        for name in ("_daily", "_weekly"):
            old = getattr(self, name)
            arr = np.zeros((new_cap, old.shape[1]))
            arr[:cap] = old
            setattr(self, name, arr)
        used = np.zeros(new_cap, dtype=bool)
        used[:cap] = self._used
        self._used = used
        self._free = list(range(new_cap - 1, cap - 1, -1)) + self._free

    def add(self) -> int:
        """A new series (fresh state); returns its slot."""
        if not self._free:
            self._grow(1)
        slot = self._free.pop()
        self._reset(slot)
        self._used[slot] = True
        return slot

    def add_many(self, n: int) -> np.ndarray:
        return np.array([self.add() for _ in range(n)], dtype=np.int64)

    def remove(self, slot: int) -> None:
        """Forget a series; its slot may be handed out again."""
        if 0 <= slot < self._used.size and self._used[slot]:
            self._used[slot] = False
            self._free.append(slot)

    def _reset(self, slot: int) -> None:
        self._s[:, slot] = 0.0
        self._s[C_LAST_ALARM, slot] = -np.inf
        self._s[C_LAST_TS, slot] = np.nan
        self._daily[slot] = 0.0
        self._weekly[slot] = 0.0

    def points(self, slot: int) -> int:
        return int(self._s[C_N, slot])

    # -- state export / import -------------------------------------------------

    def export_state(self, slot: int) -> bytes:
        """The state of one series as compact bytes (no configuration)."""
        if not self._used[slot]:
            raise KeyError(f"slot {slot} is not in use")
        row = np.concatenate((self._s[:, slot], self._daily[slot], self._weekly[slot]))
        return _STATE_MAGIC + struct.pack("<I", ROW_FLOATS) + row.astype("<f8").tobytes()

    def import_state(self, blob: bytes, slot: int | None = None) -> int:
        """Restore a series from :meth:`export_state` (into ``slot`` or a new one)."""
        if blob[:4] != _STATE_MAGIC or struct.unpack("<I", blob[4:8])[0] != ROW_FLOATS:
            raise ValueError("not a series state of this detector version")
        row = np.frombuffer(blob, dtype="<f8", offset=8)
        if row.size != ROW_FLOATS:
            raise ValueError("truncated series state")
        if slot is None:
            slot = self.add()
        elif not self._used[slot]:
            raise KeyError(f"slot {slot} is not in use")
        self._s[:, slot] = row[:N_SCALARS]
        self._daily[slot] = row[N_SCALARS : N_SCALARS + BINS_DAY]
        self._weekly[slot] = row[N_SCALARS + BINS_DAY :]
        return slot

    def checkpoint(self) -> bytes:
        """The whole bank (configuration and every series) as bytes."""
        slots = self.slots
        head = json.dumps({"config": self.config.model_dump(mode="json"), "n": int(slots.size)})
        rows = np.concatenate(
            (self._s[:, slots].T, self._daily[slots], self._weekly[slots]), axis=1
        )
        hb = head.encode()
        return (
            _BANK_MAGIC
            + struct.pack("<II", len(hb), ROW_FLOATS)
            + hb
            + slots.astype("<i8").tobytes()
            + rows.astype("<f8").tobytes()
        )

    @classmethod
    def restore(cls, blob: bytes) -> DetectorBank:
        """A bank from :meth:`checkpoint`; series keep their slots."""
        if blob[:4] != _BANK_MAGIC:
            raise ValueError("not a detector bank checkpoint")
        hlen, width = struct.unpack("<II", blob[4:12])
        if width != ROW_FLOATS:
            raise ValueError("checkpoint of another detector version")
        head = json.loads(blob[12 : 12 + hlen])
        n = int(head["n"])
        off = 12 + hlen
        slots = np.frombuffer(blob, dtype="<i8", count=n, offset=off)
        rows = np.frombuffer(blob, dtype="<f8", count=n * width, offset=off + 8 * n)
        rows = rows.reshape(n, width)
        cap = int(slots.max()) + 1 if n else 1
        bank = cls(CompositeConfig.model_validate(head["config"]), capacity=cap)
        bank._s[:, slots] = rows[:, :N_SCALARS].T
        bank._daily[slots] = rows[:, N_SCALARS : N_SCALARS + BINS_DAY]
        bank._weekly[slots] = rows[:, N_SCALARS + BINS_DAY :]
        bank._used[:] = False
        bank._used[slots] = True
        bank._free = [int(s) for s in range(cap - 1, -1, -1) if not bank._used[s]]
        return bank

    # -- evaluation ------------------------------------------------------------------

    def update(
        self,
        series_idx: np.ndarray | Sequence[int],
        ts: np.ndarray | Sequence[float],
        values: np.ndarray | Sequence[float],
    ) -> BankResult:
        """Judge and learn a batch of points (any mix of series, each in time order)."""
        idx = np.asarray(series_idx, dtype=np.int64)
        t = np.asarray(ts, dtype=float)
        x = np.asarray(values, dtype=float)
        m = idx.size
        if not (t.size == m and x.size == m):
            raise ValueError("series_idx, ts and values must have the same length")
        if m and not self._used[idx].all():
            raise KeyError("a series index is not in use in this bank")
        out = {
            k: np.zeros(m)
            for k in ("score", "raw", "low", "high", "centre", "ratio")
        }
        for k in ("low", "high", "centre"):
            out[k][:] = np.nan
        anomaly = np.zeros(m, dtype=bool)
        learning = np.ones(m, dtype=bool)
        comp = np.zeros(m, dtype=np.int8)
        stat = np.zeros(m, dtype=np.int8)
        season = np.zeros(m, dtype=np.int8)
        finite = np.isfinite(x) & np.isfinite(t)
        pos_all = np.flatnonzero(finite)
        for part in rounds(idx[pos_all]):
            pos = pos_all[part]
            self._round(
                idx[pos], t[pos], x[pos], pos, out, anomaly, learning, comp, stat, season
            )
        return BankResult(
            idx, t, x, out["score"], out["raw"], anomaly, learning, out["low"], out["high"],
            out["centre"], comp, stat, out["ratio"], season,
        )

    def _round(
        self,
        idx: np.ndarray,
        t: np.ndarray,
        x: np.ndarray,
        pos: np.ndarray,
        out: dict[str, np.ndarray],
        anomaly: np.ndarray,
        learning: np.ndarray,
        comp: np.ndarray,
        stat: np.ndarray,
        season: np.ndarray,
    ) -> None:
        cfg = self._cfg
        st = self._s[:, idx]  # (statistic, series): rows are contiguous
        n = st[C_N]
        first = n == 0
        nn = n + 1.0
        # sampling interval
        dt = t - st[C_LAST_TS]
        good_dt = dt > 0
        old_dt = st[C_DT]
        st[C_DT] = np.where(
            good_dt, np.where(old_dt > 0, old_dt + 0.05 * (dt - old_dt), dt), old_dt
        )
        st[C_FIRST_TS] = np.where(first, t, st[C_FIRST_TS])
        # seasonal offsets (bins interpolated between their centres)
        if self._season_on:
            pd = (t % DAY_S) * (BINS_DAY / DAY_S) - 0.5
            bd0 = np.floor(pd)
            fd = pd - bd0
            bd0 = bd0.astype(np.int64) % BINS_DAY
            bd1 = (bd0 + 1) % BINS_DAY
            dly = self._daily
            sd = dly[idx, bd0] * (1.0 - fd) + dly[idx, bd1] * fd
            pw = (t % WEEK_S) * (BINS_WEEK / WEEK_S) - 0.5
            bw0 = np.floor(pw)
            fw = pw - bw0
            bw0 = bw0.astype(np.int64) % BINS_WEEK
            bw1 = (bw0 + 1) % BINS_WEEK
            wky = self._weekly
            sw = wky[idx, bw0] * (1.0 - fw) + wky[idx, bw1] * fw
            mode = st[C_MODE]
            s = np.where(mode == 1, sd, np.where(mode == 2, sw, 0.0))
        else:
            s = np.zeros_like(x)
            mode = st[C_MODE]
        trend = st[C_TREND]
        # the level follows the trend while points confirm it; during an
        # anomaly episode (nothing is learnt) it holds: a slope extrapolated
        # for up to a day without evidence walks the expected value away from
        # the series, and the episode then feeds itself
        held_prev = st[C_HELD].copy()
        level = np.where(first, x - s, st[C_LEVEL] + np.where(held_prev > 0, 0.0, trend))
        fast = np.where(first, x - s, st[C_FAST])
        u = x - s
        e = u - level
        d = u - fast
        mag = np.where(first, np.abs(x), st[C_ABS])
        tiny = cfg.rel_floor * np.maximum(np.abs(level), mag) + 1e-12
        sig = np.maximum(st[C_SCALE] * MAD_TO_SIGMA, tiny)
        sigj = np.maximum(st[C_JSCALE] * MAD_TO_SIGMA, tiny)
        z = e / sig
        zj = d / sigj
        c = cfg.clip
        young = n < cfg.min_history // 3  # scales not settled: learn without clipping
        zc = np.clip(z, -c, c)
        if cfg.cusum_window_s > 0:  # at most this long, at the sampling interval
            leak = 1.0 - 1.0 / _within(cfg.cusum_window, cfg.cusum_window_s, st[C_DT], 2.0)
        else:
            leak = self._cusum_leak
        cup = np.maximum(0.0, leak * st[C_CUP] + zc - cfg.cusum_k)
        cdn = np.maximum(0.0, leak * st[C_CDN] - zc - cfg.cusum_k)
        d2 = np.minimum(d * d, (c * c * 4.0) * sigj * sigj)
        vshort = np.where(first, 0.0, st[C_VSHORT] + self._a_vs * (d2 - st[C_VSHORT]))
        vlong = st[C_VLONG]
        fl2 = tiny * tiny
        lvr = np.log((vshort + fl2) / (vlong + fl2))
        same = np.abs(x - st[C_LAST_X]) <= 1e-12 * np.maximum(1.0, np.abs(x))
        run = np.where(same & ~first, st[C_RUN] + 1.0, 0.0)
        old_mid = np.where(first, u, st[C_MID] + trend)
        mid = old_mid + np.maximum(self._a_mid, 1.0 / nn) * (u - old_mid)
        ref = np.where(first, u, st[C_REF] + trend)
        drift = (mid - ref) / sig
        ext = (np.abs(zj) >= cfg.rate_z).astype(float)
        rshort = st[C_RSHORT] + self._a_rs * (ext - st[C_RSHORT])
        rlong = st[C_RLONG]
        rate = (rshort - rlong) / np.sqrt((rlong + 1e-3) * self._a_rs * 0.5)
        q = np.empty((N_STATS, idx.size))
        q[0] = z
        q[1] = -z
        q[2] = zj
        q[3] = -zj
        q[4] = cup
        q[5] = cdn
        q[6] = lvr
        q[7] = -lvr
        q[8] = run
        q[_DRIFT_UP] = drift
        q[_DRIFT_DN] = -drift
        q[11] = rate
        q[12] = e
        q[13] = -e
        np.maximum(q, 0.0, out=q)
        rec = st[C_REC : C_REC + N_STATS]
        # the thresholds refer to the values waiting to be learnt as well
        rec_thr = np.maximum(rec, st[C_PEND : C_PEND + N_STATS]) if cfg.record_delay else rec
        thr = np.maximum(self._floors, (1.0 + cfg.margin) * rec_thr)
        sm = cfg.margin if cfg.spike_margin is None else cfg.spike_margin
        thr[_RESID] = np.maximum(self._floors[_RESID], (1.0 + sm) * rec_thr[_RESID])
        # the range: the residual in the series' units against its own record
        thr[_RANGE] = np.maximum(
            self._floors[0] * sig, (1.0 + cfg.range_margin) * rec_thr[_RANGE]
        )
        rel = q / thr
        # learning: the first min_history points, and half as many after the
        # seasonality changed (the residuals mean something new). The points
        # since a change equal the points seen while there has been none:
        # then the floor is relearn_points as given (the fewest points the
        # scales settle on, at any interval), after a change the scaled one
        count = np.where(st[C_MODE_N] < n, cfg.relearn_points, self.config.relearn_points)
        relearn = _within(count, cfg.relearn_s, st[C_DT]) if cfg.relearn_s > 0 else count
        is_learning = (n < cfg.min_history) | (st[C_MODE_N] < relearn)
        elevated = (rel >= self._learn_level) & ~is_learning[None, :]
        elev_n = np.where(elevated, st[C_ELEV : C_ELEV + N_STATS] + 1.0, 0.0)
        if cfg.rebaseline_s > 0:
            rb_points = _within(cfg.rebaseline_points, cfg.rebaseline_s, st[C_DT], 12.0)
        else:
            rb_points = np.full(idx.size, float(cfg.rebaseline_points))
        lasting = elev_n >= rb_points
        # a drift in progress must not be learnt as the trend
        drifting = (elevated[_DRIFT_UP] & ~lasting[_DRIFT_UP]) | (
            elevated[_DRIFT_DN] & ~lasting[_DRIFT_DN]
        )
        ratios = q / thr * self._enabled
        best = ratios.argmax(axis=0)
        ratio = ratios[best, np.arange(idx.size)]
        ratio = np.where(is_learning, 0.0, ratio)
        suspect = ratio >= 1.0
        # alarm gate
        hits = (st[C_HITS].astype(np.int64) << 1 | (ratio >= self._ratio_threshold)) & (
            self._window_mask
        )
        st[C_HITS] = hits
        worthy = (ratio >= self._ratio_threshold) & (
            np.bitwise_count(hits.astype(np.uint64)) >= cfg.alarm_count
        )
        calm = t - st[C_LAST_ALARM] >= cfg.refractory_s
        alarm = worthy & calm
        if cfg.refractory_extends:
            st[C_LAST_ALARM] = np.where(worthy, t, st[C_LAST_ALARM])
        else:
            st[C_LAST_ALARM] = np.where(alarm, t, st[C_LAST_ALARM])
        p = ratio**cfg.steepness
        raw = p / (1.0 + p)
        score = np.where(alarm, np.maximum(raw, ALARM_SCORE), np.minimum(raw, ALARM_SCORE - 1e-3))
        # outputs
        centre = level + s
        out["score"][pos] = score
        out["raw"][pos] = raw
        out["ratio"][pos] = ratio
        out["centre"][pos] = np.where(is_learning, np.nan, centre)
        out["high"][pos] = np.where(is_learning, np.nan, centre + thr[0] * sig)
        out["low"][pos] = np.where(is_learning, np.nan, centre - thr[1] * sig)
        anomaly[pos] = alarm
        learning[pos] = is_learning
        comp[pos] = np.where(ratio > 0, _STAT_COMPONENT[best], 0)
        stat[pos] = best
        season[pos] = mode
        # --- learning ---------------------------------------------------------
        held = np.where(suspect, st[C_HELD] + 1.0, 0.0)
        rebase = held >= rb_points
        admit = ~suspect | rebase
        held = np.where(rebase, 0.0, held)
        st[C_HELD] = held
        a_lvl = np.maximum(self._a_level, 1.0 / nn)
        a_long = np.maximum(self._a_long, 1.0 / nn)
        a_ref = np.maximum(self._a_ref, 1.0 / nn)
        new_fast = fast + self._a_fast * np.clip(d, -c * sigj, c * sigj)
        st[C_FAST] = new_fast
        # a scale still at its floor (a flat start) learns without clipping
        free = young | (st[C_SCALE] * MAD_TO_SIGMA <= tiny)
        freej = young | (st[C_JSCALE] * MAD_TO_SIGMA <= tiny)
        ec = np.where(free, e, np.clip(e, -c * sig, c * sig))
        lvl_learnt = level + a_lvl * ec
        st[C_LEVEL] = np.where(rebase, new_fast, np.where(admit, lvl_learnt, level))
        # the trend: the slope of a weighted least-squares line through the
        # points learnt as normal (weights halve every trend_halflife points
        # learnt), each value clipped like the level's; unbiased for a steady
        # trend from the first points on, unlike a smoothed slope of a lagging
        # level. Points not learnt only age the line.
        # A drift in progress is not learnt as the trend, unless the series has
        # become flatter than the line (a drift against the slope): that is the
        # trend ending, and learning it can only shrink the slope. Otherwise a
        # slope that has ended locks itself: the drift against it keeps it from
        # being corrected.
        flatter = np.sign(mid - ref) == -np.sign(trend)
        learn_tr = admit & ~(drifting & ~flatter) & ~first
        yv = level + ec  # the value, clipped as the level learns it
        tw0 = st[C_TW]
        tw_dec = tw0 * self._l_trend
        tw = tw_dec + 1.0
        age = st[C_TAGE] + 1.0
        da = -age
        ty0 = np.where(tw0 > 0, st[C_TY], yv)
        dy = yv - ty0
        new_age = age + da / tw
        new_ty = ty0 + dy / tw
        taa = st[C_TAA] * self._l_trend + da * (0.0 - new_age)
        tay = st[C_TAY] * self._l_trend + da * (yv - new_ty)
        st[C_TW] = np.where(learn_tr, tw, tw0)
        st[C_TAGE] = np.where(learn_tr, new_age, np.where(first, 0.0, age))
        # re-baselining moves the line with the level (a step is not a slope);
        # the line went on with the trend while the level held
        st[C_TY] = np.where(learn_tr, new_ty, st[C_TY]) + np.where(
            rebase, new_fast - level - held_prev * trend, 0.0
        )
        st[C_TAA] = np.where(learn_tr, taa, st[C_TAA])
        st[C_TAY] = np.where(learn_tr, tay, st[C_TAY])
        # a line needs a few points and some spread of ages to have a slope
        fitted = (st[C_TW] >= 3.0) & (st[C_TAA] > 1e-9)
        slope = np.where(fitted, -st[C_TAY] / np.where(fitted, st[C_TAA], 1.0), 0.0)
        st[C_TREND] = np.where(first, 0.0, slope)
        aerr = np.where(free, np.abs(e), np.minimum(np.abs(e), 2 * c * sig))
        eshort = np.where(first, 0.0, st[C_ESHORT] + self._a_vs * (np.abs(d) - st[C_ESHORT]))
        st[C_ESHORT] = eshort
        scale = np.where(
            admit | free, st[C_SCALE] + a_long * (aerr - st[C_SCALE]), st[C_SCALE]
        )
        # re-baselining adopts the current noise if it is larger
        st[C_SCALE] = np.where(rebase, np.maximum(scale, eshort), scale)
        jerr = np.where(freej, np.abs(d), np.minimum(np.abs(d), 2 * c * sigj))
        st[C_JSCALE] = np.where(
            (admit | freej) & ~first,
            st[C_JSCALE] + a_long * (jerr - st[C_JSCALE]),
            st[C_JSCALE],
        )
        st[C_ABS] = np.where(admit, mag + a_long * (np.abs(x) - mag), mag)
        st[C_JSCALE] = np.where(rebase, np.maximum(st[C_JSCALE], eshort), st[C_JSCALE])
        st[C_VSHORT] = vshort
        vlong = np.where(admit & ~first, vlong + a_long * (d2 - vlong), vlong)
        # re-baselining adopts the current variance and rate of extremes
        st[C_VLONG] = np.where(rebase, np.maximum(vshort, tiny * tiny), vlong)
        st[C_CUP] = np.where(rebase, 0.0, cup)
        st[C_CDN] = np.where(rebase, 0.0, cdn)
        st[C_RUN] = run
        st[C_LAST_X] = x
        st[C_LAST_TS] = t
        st[C_MID] = mid
        # the drift's reference re-anchors on the medium-term level at
        # re-baselining, and once a drift statistic has stayed elevated (below
        # an alarm) for as long: that drift is the new normal. Learning one
        # point then, with its half-life, would leave the reference where it
        # was, going on with the trend, and the statistic elevated for good
        lasting_drift = admit & (lasting[_DRIFT_UP] | lasting[_DRIFT_DN])
        st[C_REF] = np.where(
            rebase | lasting_drift,
            mid,
            np.where(admit & ~drifting, ref + a_ref * (u - ref), ref),
        )
        st[C_RSHORT] = rshort
        st[C_RLONG] = np.where(
            rebase, rshort, np.where(admit, rlong + a_long * (ext - rlong), rlong)
        )
        # records: decaying maxima of the statistics of normal points. A statistic
        # at or above learn_level of its threshold is not learnt while it stays
        # there (a slowly growing statistic must not raise its own threshold);
        # when it falls back, the peak of that episode is learnt (a bump that
        # came and went is normal, and its repeat is not news).
        # A statistic that stays elevated for rebaseline_points is the new normal.
        ok = (~young & admit & ~rebase)[None, :]
        settled = ok & (~elevated | lasting)
        epi = np.maximum(st[C_EPI : C_EPI + N_STATS], q)
        if cfg.record_halflife_s > 0:  # at most this long, at the sampling interval
            hl = _within(cfg.record_halflife, cfg.record_halflife_s, st[C_DT], 1.0)
        else:
            hl = np.full(idx.size, cfg.record_halflife)
        dec = rec * np.power(0.5, 1.0 / np.maximum(hl, 1.0))
        if cfg.record_delay > 0:
            # what is learnt waits record_delay points: the first points of an
            # anomaly, before it is recognised, are not learnt as normal
            # (a level shift's first residuals; other alarms are learnt on fall back)
            discard = ((~admit & ((best == _CUSUM_UP) | (best == _CUSUM_DN))) | rebase)[None, :]
            pend = np.where(
                discard, 0.0,
                np.maximum(st[C_PEND : C_PEND + N_STATS], np.where(settled, epi, 0.0)),
            )
            pn = np.where(discard[0], 0.0, st[C_PN] + admit)
            commit = pn >= cfg.record_delay
            kept = np.where(young[None, :], rec, dec)
            st[C_REC : C_REC + N_STATS] = np.where(
                commit[None, :], np.maximum(kept, pend), kept
            )
            st[C_PEND : C_PEND + N_STATS] = np.where(commit[None, :], 0.0, pend)
            st[C_PN] = np.where(commit, 0.0, pn)
        else:
            st[C_REC : C_REC + N_STATS] = np.where(
                settled, np.maximum(dec, epi), np.where(young[None, :], rec, dec)
            )
        reset = settled | rebase[None, :] | young[None, :]
        st[C_EPI : C_EPI + N_STATS] = np.where(reset | ~elevated, 0.0, epi)
        st[C_ELEV : C_ELEV + N_STATS] = np.where(reset, 0.0, elev_n)
        st[C_N] = nn
        st[C_MODE_N] += 1.0
        if self._season_on:
            self._learn_season(
                st, idx, t, x, level, ref, admit, bd0, bd1, fd, bw0, bw1, fw, sd, sw
            )
        self._s[:, idx] = st

    def _learn_season(
        self,
        st: np.ndarray,
        idx: np.ndarray,
        t: np.ndarray,
        x: np.ndarray,
        level: np.ndarray,
        ref: np.ndarray,
        admit: np.ndarray,
        bd0: np.ndarray,
        bd1: np.ndarray,
        fd: np.ndarray,
        bw0: np.ndarray,
        bw1: np.ndarray,
        fw: np.ndarray,
        sd: np.ndarray,
        sw: np.ndarray,
    ) -> None:
        cfg = self._cfg
        unchosen = st[C_MODE] == 0
        # the profiles learn the deviation from the reference; before a
        # seasonality is chosen, from the level, which holds during an episode
        # (the reference goes on with the trend's slope, which may be the
        # first half of a daily cycle)
        dev = x - np.where(unchosen, level, ref)
        # normal points teach the profiles; so does every point of the first
        # season_cycles days while no seasonality is chosen: the first half
        # day, learnt as level and trend, cannot tell an anomaly from the
        # turn of a daily cycle, and a series first seen at its trough or
        # peak would otherwise stay in one episode with nothing learnt
        span = t - st[C_FIRST_TS]
        unexplained = unchosen & (span <= cfg.season_cycles * DAY_S)
        a = np.where(admit | unexplained, 1.0, 0.0)
        dt = np.maximum(st[C_DT], 1e-3)
        # the first cycles are averaged plainly, then older cycles fade
        g = 1.0 - 0.5 ** (1.0 / cfg.season_memory_cycles)
        gd = a * np.minimum(1.0, dt * BINS_DAY / DAY_S) * np.maximum(g, DAY_S / (span + DAY_S))
        gw = a * np.minimum(1.0, dt * BINS_WEEK / WEEK_S) * np.maximum(g, WEEK_S / (span + WEEK_S))
        dly, wky = self._daily, self._weekly
        rd = dev - sd
        dly[idx, bd0] += gd * (1.0 - fd) * rd
        dly[idx, bd1] += gd * fd * rd
        rw = dev - sw
        wky[idx, bw0] += gw * (1.0 - fw) * rw
        wky[idx, bw1] += gw * fw * rw
        # which seasonality explains the series best
        a_m = a * np.maximum(self._a_long, 1.0 / (st[C_N] + 1.0))
        for col, resid in ((C_MAE0, dev), (C_MAED, rd), (C_MAEW, rw)):
            capped = np.minimum(np.abs(resid), 10 * st[C_SCALE] + 1e-12)
            st[col] += a_m * (capped - st[col])
        maes = (st[C_MAE0], st[C_MAED], st[C_MAEW])  # by mode: none, daily, weekly
        old_mode = st[C_MODE].copy()
        if cfg.seasonality == "auto":
            gain = cfg.season_gain
            daily_ok = (span >= cfg.season_cycles * DAY_S) & (st[C_MAED] < gain * st[C_MAE0])
            weekly_ok = (span >= cfg.season_cycles * WEEK_S) & (
                st[C_MAEW] < gain * np.minimum(st[C_MAED], st[C_MAE0])
            )
            best = np.where(weekly_ok, 2.0, np.where(daily_ok, 1.0, 0.0))
            # a change needs the new model to explain the series clearly better
            # than the current one, by the gain that first chose it (the tests
            # above hold for the first choice): a pattern whose residuals sit
            # near the gain was otherwise chosen and dropped by turns, each
            # change a new learning period in which a level shift is learnt
            if (best != old_mode).any():
                clearly = np.choose(best.astype(np.int64), maes) < gain * np.choose(
                    old_mode.astype(np.int64), maes
                )
                best = np.where(clearly, best, old_mode)
            st[C_MODE] = best
        elif cfg.seasonality == "daily":
            st[C_MODE] = np.where(span >= cfg.season_cycles * DAY_S, 1.0, 0.0)
        else:
            st[C_MODE] = np.where(span >= cfg.season_cycles * WEEK_S, 2.0, 0.0)
        # the residuals change meaning with the seasonality: restart the CUSUMs,
        # with the scale of the residuals of the new model
        changed = st[C_MODE] != old_mode
        st[C_MODE_N] = np.where(changed, 0.0, st[C_MODE_N])
        if changed.any():
            new_mae = np.choose(st[C_MODE].astype(np.int64), maes)
            # choosing a seasonality never widens the band at once: it is
            # chosen because it explains the series better, but its tracker
            # learnt from every point of the first days (an episode included),
            # the scale from the points judged normal
            new_mae = np.where(old_mode == 0, np.minimum(new_mae, st[C_SCALE]), new_mae)
            st[C_SCALE] = np.where(changed, new_mae, st[C_SCALE])
            for col in (C_CUP, C_CDN):
                st[col] = np.where(changed, 0.0, st[col])
            # levels kept net of the seasonal offset move with the offset
            def offset(mode: np.ndarray) -> np.ndarray:
                return np.where(mode == 1, sd, np.where(mode == 2, sw, 0.0))

            shift = np.where(changed, offset(old_mode) - offset(st[C_MODE]), 0.0)
            for col in (C_LEVEL, C_FAST, C_MID, C_REF, C_TY):
                st[col] += shift
            st[C_RSHORT] = np.where(changed, st[C_RLONG], st[C_RSHORT])
            st[C_VSHORT] = np.where(changed, st[C_VLONG], st[C_VSHORT])


class CompositeDetector:
    """One series as a :class:`Detector`: a slot of a :class:`DetectorBank`.

    Made alone it has a bank of its own; :meth:`in_bank` puts it in a shared
    bank, so that many series can be updated together (``bank.update``).
    """

    name = "composite"

    def __init__(
        self,
        config: CompositeConfig | None = None,
        *,
        bank: DetectorBank | None = None,
        slot: int | None = None,
    ) -> None:
        self.bank = bank if bank is not None else DetectorBank(config, capacity=1)
        self.config = self.bank.config
        self.slot = self.bank.add() if slot is None else slot
        self._slot_arr = np.array([self.slot], dtype=np.int64)

    def __del__(self) -> None:  # the slot is free again once nobody refers to it
        try:
            self.bank.remove(self.slot)
        except Exception:
            pass

    @classmethod
    def in_bank(cls, bank: DetectorBank, state: bytes | None = None) -> CompositeDetector:
        slot = bank.add() if state is None else bank.import_state(state)
        return cls(bank=bank, slot=slot)

    def update(self, ts: float, value: float) -> DetectionResult:
        res = self.bank.update(self._slot_arr, np.array([ts]), np.array([value]))
        return res.result(0)

    def update_many(self, ts: np.ndarray, values: np.ndarray) -> BankResult:
        """Several points of this series, in order."""
        return self.bank.update(np.full(len(ts), self.slot, dtype=np.int64), ts, values)

    @property
    def points(self) -> int:
        return self.bank.points(self.slot)

    def config_dict(self) -> dict[str, Any]:
        return self.config.model_dump(mode="json")

    def state_dict(self) -> StateDict:
        return {
            "type": self.name,
            "config": self.config_dict(),
            "state": np.frombuffer(self.bank.export_state(self.slot), dtype=np.uint8),
        }

    def load_state(self, state: StateDict) -> None:
        cfg = CompositeConfig.model_validate(state["config"])
        if cfg != self.config:
            self.bank.remove(self.slot)
            self.bank = DetectorBank(cfg, capacity=1)
            self.config = cfg
            self.slot = self.bank.add()
            self._slot_arr = np.array([self.slot], dtype=np.int64)
        self.bank.import_state(np.asarray(state["state"], dtype=np.uint8).tobytes(), self.slot)

    def to_bytes(self) -> bytes:
        """Configuration and state, compact (restored by :func:`composite_from_bytes`)."""
        cfg = json.dumps(self.config_dict(), separators=(",", ":")).encode()
        return _DET_MAGIC + struct.pack("<I", len(cfg)) + cfg + self.bank.export_state(self.slot)


def is_composite_bytes(blob: bytes) -> bool:
    return blob[:4] == _DET_MAGIC


def restorable(blob: bytes) -> bool:
    """Whether a composite detector's bytes can be restored by this version
    (the state layout and the settings change between versions)."""
    try:
        parts = split_detector_bytes(blob)
    except ValueError:
        return False
    if parts is None:
        return False
    state = parts[1]
    return (
        state[:4] == _STATE_MAGIC
        and len(state) == 8 + 8 * ROW_FLOATS
        and struct.unpack("<I", state[4:8])[0] == ROW_FLOATS
    )


def split_detector_bytes(blob: bytes) -> tuple[CompositeConfig, bytes] | None:
    """(configuration, series state) of :meth:`CompositeDetector.to_bytes`, or None."""
    if blob[:4] != _DET_MAGIC:
        return None
    (n,) = struct.unpack("<I", blob[4:8])
    cfg = CompositeConfig.model_validate_json(blob[8 : 8 + n])
    return cfg, blob[8 + n :]


def composite_from_bytes(blob: bytes, bank: DetectorBank | None = None) -> CompositeDetector:
    parts = split_detector_bytes(blob)
    if parts is None:
        raise ValueError("not a composite detector state")
    cfg, state = parts
    if bank is None or bank.config != cfg:
        bank = DetectorBank(cfg, capacity=1)
    return CompositeDetector.in_bank(bank, state)

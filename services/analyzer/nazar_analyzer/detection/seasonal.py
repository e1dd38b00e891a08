"""A bounded daily / weekly seasonal profile (per time-of-cycle bin medians)."""

from __future__ import annotations

import math
from enum import StrEnum

import numpy as np

from .base import StateDict

DAY_S = 86400.0
WEEK_S = 7 * DAY_S


class Seasonality(StrEnum):
    NONE = "none"
    DAILY = "daily"
    WEEKLY = "weekly"


class SeasonalProfile:
    """Median of the recent values seen in each bin of a daily or weekly cycle.

    Each bin keeps at most ``bin_capacity`` recent values (a ring), so memory is
    ``bins * bin_capacity`` floats.  The profile is *ready* once the stream has
    spanned ``min_cycles`` full periods and every bin has at least
    ``min_per_bin`` values.  Timestamps are epoch seconds (UTC).
    """

    def __init__(
        self,
        kind: Seasonality,
        bins_per_day: int = 24,
        bin_capacity: int = 48,
        min_cycles: float = 3.0,
        min_per_bin: int = 3,
    ) -> None:
        self.kind = Seasonality(kind)
        self.period = WEEK_S if self.kind is Seasonality.WEEKLY else DAY_S
        days = 7 if self.kind is Seasonality.WEEKLY else 1
        self.n_bins = bins_per_day * days
        self.bin_capacity = bin_capacity
        self.min_cycles = min_cycles
        self.min_per_bin = min_per_bin
        self._vals = np.full((self.n_bins, bin_capacity), np.nan)
        self._next = np.zeros(self.n_bins, dtype=np.int64)
        self._count = np.zeros(self.n_bins, dtype=np.int64)
        self._medians = np.full(self.n_bins, np.nan)
        self._first_ts = math.nan
        self._last_ts = math.nan
        self._ready = False

    @property
    def enabled(self) -> bool:
        return self.kind is not Seasonality.NONE

    def bin_of(self, ts: float) -> int:
        return int((ts % self.period) / self.period * self.n_bins) % self.n_bins

    def ready(self) -> bool:
        return self._ready

    def offset(self, ts: float) -> float:
        """Expected seasonal level at ``ts`` (0.0 when not ready)."""
        if not self._ready:
            return 0.0
        return float(self._medians[self.bin_of(ts)])

    def add(self, ts: float, value: float) -> None:
        if not self.enabled:
            return
        if math.isnan(self._first_ts):
            self._first_ts = ts
        self._last_ts = ts
        b = self.bin_of(ts)
        self._vals[b, self._next[b]] = value
        self._next[b] = (self._next[b] + 1) % self.bin_capacity
        self._count[b] = min(self._count[b] + 1, self.bin_capacity)
        self._medians[b] = float(np.nanmedian(self._vals[b]))
        if not self._ready:
            spans = (self._last_ts - self._first_ts) >= self.min_cycles * self.period
            self._ready = bool(spans and (self._count >= self.min_per_bin).all())

    def state_dict(self) -> StateDict:
        return {
            "vals": self._vals.copy(),
            "next": self._next.copy(),
            "count": self._count.copy(),
            "first_ts": self._first_ts,
            "last_ts": self._last_ts,
            "ready": self._ready,
        }

    def load_state(self, state: StateDict) -> None:
        self._vals = np.array(state["vals"], dtype=float)
        self._next = np.array(state["next"], dtype=np.int64)
        self._count = np.array(state["count"], dtype=np.int64)
        self._first_ts = float(state["first_ts"])
        self._last_ts = float(state["last_ts"])
        self._ready = bool(state["ready"])
        with np.errstate(all="ignore"):
            filled = self._count > 0
            self._medians = np.full(self.n_bins, np.nan)
            if filled.any():
                self._medians[filled] = np.nanmedian(self._vals[filled], axis=1)

"""Per-second rates from monotonically increasing counters (pure, no I/O)."""

from __future__ import annotations

from collections.abc import Hashable


class RateTracker:
    """Turns successive counter readings into per-second rates.

    The first reading of a key yields no rate. A counter that went backwards
    (wrap, reset, device re-created) yields no rate for that interval: the new
    reading only becomes the baseline of the next one, so a rate is never negative.
    """

    def __init__(self) -> None:
        self._last: dict[Hashable, tuple[float, float]] = {}
        self._seen: set[Hashable] = set()

    def update(self, key: Hashable, value: float, now: float) -> float | None:
        """Record ``value`` of counter ``key`` read at monotonic time ``now``."""
        self._seen.add(key)
        previous = self._last.get(key)
        self._last[key] = (value, now)
        if previous is None:
            return None
        prev_value, prev_time = previous
        elapsed = now - prev_time
        if elapsed <= 0 or value < prev_value:
            return None
        return (value - prev_value) / elapsed

    def end_cycle(self) -> None:
        """Forget counters not read since the previous call (e.g. an unplugged NIC)."""
        for key in self._last.keys() - self._seen:
            del self._last[key]
        self._seen.clear()

    def __len__(self) -> int:
        return len(self._last)

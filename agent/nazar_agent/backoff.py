"""Exponential backoff with full jitter (pure apart from the injected RNG)."""

from __future__ import annotations

import random
from collections.abc import Callable


class Backoff:
    """Delay before retry *n* is uniform in ``[0, min(cap, base * 2**n)]``.

    Full jitter (see the AWS architecture blog "Exponential Backoff And Jitter")
    spreads the retries of many agents after an ingest outage instead of having
    them all hit the recovering server at the same instants.
    """

    def __init__(
        self,
        base: float,
        cap: float,
        *,
        uniform: Callable[[float, float], float] = random.uniform,
    ) -> None:
        if base <= 0 or cap <= 0:
            raise ValueError("base and cap must be positive")
        self.base = base
        self.cap = cap
        self._uniform = uniform
        self.failures = 0

    def ceiling(self, failures: int) -> float:
        """Upper bound of the delay after ``failures`` consecutive failures (>= 1)."""
        exponent = min(max(failures - 1, 0), 62)  # 2**62 already exceeds any sane cap
        return min(self.cap, self.base * 2.0**exponent)

    def next_delay(self) -> float:
        """Register one more failure and return how long to wait before retrying."""
        self.failures += 1
        return self._uniform(0.0, self.ceiling(self.failures))

    def reset(self) -> None:
        self.failures = 0

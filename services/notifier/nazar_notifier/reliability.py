"""Retry delays with jitter and a circuit breaker per endpoint (pure, clock injected)."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

BreakerState = Literal["closed", "open", "half_open"]


def backoff_delay(
    attempt: int,
    base: float,
    cap: float,
    retry_after: float | None = None,
    rand: Callable[[], float] = random.random,
) -> float:
    """Delay before attempt ``attempt + 1`` (``attempt`` >= 1 failed so far).

    Exponential (``base * 2**(attempt-1)``, capped) with equal jitter (half
    fixed, half random), never shorter than the server's ``Retry-After``."""
    exp = min(cap, base * float(2 ** max(0, attempt - 1)))
    delay = exp / 2 + rand() * exp / 2
    if retry_after is not None:
        delay = max(delay, retry_after)
    return float(delay)


@dataclass
class CircuitBreaker:
    """Closed → (``failures`` consecutive failures) → open → (``reset`` s) → half-open:
    one trial; its success closes the breaker, its failure opens it again."""

    failures: int
    reset: float
    clock: Callable[[], float] = time.monotonic
    state: BreakerState = "closed"
    consecutive: int = 0
    opened_at: float = 0.0
    trial_in_flight: bool = field(default=False)

    def allow(self) -> tuple[bool, float]:
        """May an attempt go out now? If not, also how many seconds until it may."""
        if self.state == "closed":
            return True, 0.0
        now = self.clock()
        if self.state == "open":
            wait = self.opened_at + self.reset - now
            if wait > 0:
                return False, wait
            self.state = "half_open"
            self.trial_in_flight = False
        if self.trial_in_flight:
            return False, max(1.0, self.reset / 4)
        self.trial_in_flight = True
        return True, 0.0

    def success(self) -> None:
        self.state = "closed"
        self.consecutive = 0
        self.trial_in_flight = False

    def failure(self) -> None:
        self.consecutive += 1
        self.trial_in_flight = False
        if self.state == "half_open" or self.consecutive >= self.failures:
            self.state = "open"
            self.opened_at = self.clock()

    def release(self) -> None:
        """The attempt ended without saying anything about the endpoint's health."""
        self.trial_in_flight = False


class Breakers:
    """One breaker per endpoint key (``scheme://host:port``; never a secret path)."""

    def __init__(self, failures: int, reset: float, clock: Callable[[], float] = time.monotonic):
        self._failures = failures
        self._reset = reset
        self._clock = clock
        self._by_endpoint: dict[str, CircuitBreaker] = {}

    def get(self, endpoint: str) -> CircuitBreaker:
        breaker = self._by_endpoint.get(endpoint)
        if breaker is None:
            breaker = CircuitBreaker(self._failures, self._reset, self._clock)
            self._by_endpoint[endpoint] = breaker
        return breaker

    def states(self) -> dict[str, BreakerState]:
        return {k: b.state for k, b in self._by_endpoint.items()}

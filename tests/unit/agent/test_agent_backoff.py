from __future__ import annotations

import pytest

from nazar_agent.backoff import Backoff


def upper_bound(low: float, high: float) -> float:
    assert low == 0.0
    return high


def test_ceiling_doubles_until_the_cap() -> None:
    backoff = Backoff(base=0.5, cap=5.0, uniform=upper_bound)
    delays = [backoff.next_delay() for _ in range(7)]
    assert delays == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0, 5.0]
    assert backoff.failures == 7


def test_full_jitter_stays_within_zero_and_ceiling() -> None:
    backoff = Backoff(base=1.0, cap=8.0)
    for attempt in range(1, 200):
        delay = backoff.next_delay()
        assert 0.0 <= delay <= backoff.ceiling(attempt)
        assert delay <= 8.0


def test_jitter_actually_varies() -> None:
    backoff = Backoff(base=1.0, cap=100.0)
    delays = set()
    for _ in range(20):
        backoff.reset()
        for _ in range(5):
            delay = backoff.next_delay()
        delays.add(delay)
    assert len(delays) > 10


def test_reset_starts_over() -> None:
    backoff = Backoff(base=1.0, cap=60.0, uniform=upper_bound)
    for _ in range(10):
        backoff.next_delay()
    backoff.reset()
    assert backoff.failures == 0
    assert backoff.next_delay() == 1.0


def test_huge_failure_counts_do_not_overflow() -> None:
    backoff = Backoff(base=1.0, cap=30.0)
    assert backoff.ceiling(10_000) == 30.0


@pytest.mark.parametrize(("base", "cap"), [(0.0, 1.0), (1.0, 0.0), (-1.0, 1.0)])
def test_invalid_parameters(base: float, cap: float) -> None:
    with pytest.raises(ValueError):
        Backoff(base=base, cap=cap)

from __future__ import annotations

import pytest

from nazar_agent.rates import RateTracker


def test_first_reading_gives_no_rate() -> None:
    tracker = RateTracker()
    assert tracker.update("eth0", 1000.0, now=10.0) is None


def test_rate_is_delta_over_elapsed_time() -> None:
    tracker = RateTracker()
    tracker.update("eth0", 1000.0, now=10.0)
    assert tracker.update("eth0", 3000.0, now=12.0) == pytest.approx(1000.0)
    assert tracker.update("eth0", 3000.0, now=13.0) == 0.0


def test_counter_reset_gives_no_rate_then_resumes_from_new_baseline() -> None:
    tracker = RateTracker()
    tracker.update("eth0", 5_000_000.0, now=0.0)
    assert tracker.update("eth0", 100.0, now=10.0) is None  # reboot of the NIC / wrap
    assert tracker.update("eth0", 600.0, now=20.0) == pytest.approx(50.0)


def test_wrap_of_32_bit_counter_is_never_negative() -> None:
    tracker = RateTracker()
    tracker.update("x", 2**32 - 10, now=0.0)
    rate = tracker.update("x", 5, now=1.0)
    assert rate is None


def test_no_rate_when_clock_did_not_advance() -> None:
    tracker = RateTracker()
    tracker.update("sda", 1.0, now=5.0)
    assert tracker.update("sda", 2.0, now=5.0) is None
    assert tracker.update("sda", 3.0, now=4.0) is None


def test_keys_are_independent() -> None:
    tracker = RateTracker()
    tracker.update(("net.rx", "eth0"), 0.0, now=0.0)
    tracker.update(("net.rx", "eth1"), 0.0, now=0.0)
    assert tracker.update(("net.rx", "eth0"), 10.0, now=1.0) == 10.0
    assert tracker.update(("net.rx", "eth1"), 20.0, now=1.0) == 20.0


def test_end_cycle_forgets_vanished_counters() -> None:
    tracker = RateTracker()
    tracker.update("eth0", 1.0, now=0.0)
    tracker.update("veth123", 1.0, now=0.0)
    tracker.end_cycle()
    tracker.update("eth0", 2.0, now=1.0)
    tracker.end_cycle()
    assert len(tracker) == 1
    # a re-appearing interface starts over: no rate on its first reading
    assert tracker.update("veth123", 50.0, now=2.0) is None

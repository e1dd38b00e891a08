"""Stopping a worker's background tasks always ends.

The notifier's shutdown sometimes hung for good: the last delivery to end
during the drain wakes the delivery round (a periodic task) in the same
step as the stop cancels it, and ``asyncio.wait_for`` on Python 3.11 returns
the finished wait instead of raising the cancellation, so the round ran on
and ``Tasks.stop()`` waited for ever. These tests play that exact order."""

from __future__ import annotations

import asyncio

from nazar_common.runtime.backoff import wait_event
from nazar_common.runtime.metrics import runtime_metrics
from nazar_common.runtime.tasks import Tasks


async def _wake_then(action: object) -> None:
    """A done callback wakes the waiter; ``action`` runs in the same step."""
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    done.add_done_callback(lambda _: action())  # type: ignore[operator]
    done.set_result(None)
    await done
    await asyncio.sleep(0)


async def test_a_periodic_task_woken_as_it_is_stopped_still_stops() -> None:
    tasks = Tasks("stop-test", runtime_metrics("stop_test"))
    runs = 0

    async def round_() -> None:
        nonlocal runs
        runs += 1

    for _ in range(20):
        periodic = tasks.every("deliver", 30.0, round_)
        await asyncio.sleep(0.01)
        await _wake_then(periodic.wake)
        await asyncio.wait_for(tasks.stop(), 5.0)
        assert "deliver" not in tasks


async def test_wait_event_passes_on_a_cancellation_that_meets_the_event() -> None:
    event = asyncio.Event()
    waiter = asyncio.create_task(wait_event(event, 30.0))
    await asyncio.sleep(0.01)
    await _wake_then(event.set)
    waiter.cancel()
    results = await asyncio.gather(waiter, return_exceptions=True)
    assert isinstance(results[0], asyncio.CancelledError)


async def test_wait_event_reports_set_and_timeout() -> None:
    event = asyncio.Event()
    assert await wait_event(event, 0.01) is False
    event.set()
    assert await wait_event(event, 5.0) is True


async def test_a_task_that_swallows_its_cancellation_is_stopped_all_the_same() -> None:
    """Whatever inside a background task drops the cancellation (a library,
    ``wait_for`` completing at that moment), the stop repeats it and the
    loops end at their next turn."""
    tasks = Tasks("stop-test", runtime_metrics("stop_test"))
    swallowed = 0

    async def stubborn() -> None:
        nonlocal swallowed
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            swallowed += 1  # dropped, as wait_for on Python 3.11 may do

    tasks.every("stubborn", 0.05, stubborn, run_first=True)
    tasks.spawn("stubborn-long", stubborn)
    await asyncio.sleep(0.05)
    await asyncio.wait_for(tasks.stop(), 5.0)
    assert swallowed >= 2
    assert "stubborn" not in tasks and "stubborn-long" not in tasks

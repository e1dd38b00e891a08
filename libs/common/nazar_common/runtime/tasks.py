"""Background tasks of a worker: long-running ones, restarted with backoff when
they fail, and periodic ones, run every interval (or sooner when woken).

Failures never end a task. A failure because a dependency is unavailable
(:func:`~nazar_common.runtime.backoff.is_transient`) is an incident, logged
once when it starts and once when it ends; any other error is a bug, logged
with its traceback every time. Both count in
``nazar_<component>_background_errors_total{task}``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from nazar_common.runtime.backoff import Backoff, Incident, is_transient, wait_event
from nazar_common.runtime.metrics import RuntimeMetrics

log = logging.getLogger(__name__)


def _task_incident(name: str) -> Incident:
    return Incident(
        name,
        log,
        lost="background task %s failing: a dependency is unavailable",
        back="background task %s recovered",
    )


class Periodic:
    """``fn`` every ``interval`` seconds; :meth:`wake` runs it sooner."""

    def __init__(
        self,
        name: str,
        interval: float,
        fn: Callable[[], Awaitable[Any]],
        *,
        run_first: bool = False,
    ) -> None:
        self.name = name
        self.interval = interval
        self.fn = fn
        self.run_first = run_first
        self.runs = 0
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Run the next round now (or as soon as the current one ends)."""
        self._wake.set()

    async def wait(self) -> None:
        await wait_event(self._wake, self.interval)
        self._wake.clear()


class Tasks:
    """The background tasks of one component."""

    def __init__(self, component: str, metrics: RuntimeMetrics) -> None:
        self.component = component
        self.metrics = metrics
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._stopping = False

    def spawn(
        self,
        name: str,
        fn: Callable[[], Awaitable[Any]],
        *,
        restart: bool = True,
        backoff: Backoff | None = None,
    ) -> asyncio.Task[None]:
        """Run ``fn()`` in the background. If it raises (and ``restart``), it
        is run again after a backoff; if it returns, the task ends."""
        return self._add(name, self._supervise(name, fn, restart, backoff or Backoff(0.5, 30.0)))

    def every(
        self,
        name: str,
        interval: float,
        fn: Callable[[], Awaitable[Any]],
        *,
        run_first: bool = False,
    ) -> Periodic:
        """Run ``fn()`` every ``interval`` seconds (first after one interval,
        or at once with ``run_first``). Returns a handle to wake it."""
        periodic = Periodic(name, interval, fn, run_first=run_first)
        self._add(name, self._periodic(periodic))
        return periodic

    def __contains__(self, name: str) -> bool:
        task = self._tasks.get(name)
        return task is not None and not task.done()

    def _add(self, name: str, coro: Any) -> asyncio.Task[None]:
        if name in self:
            coro.close()
            raise ValueError(f"a background task named {name!r} is running")
        task: asyncio.Task[None] = asyncio.create_task(coro, name=f"{self.component}:{name}")
        self._tasks[name] = task
        return task

    def _failed(self, name: str, exc: Exception, incident: Incident) -> None:
        self.metrics.task_errors.labels(name).inc()
        if is_transient(exc):
            incident.failed(exc, task=name)
        else:
            log.exception("background task %s failed", name, extra={"task": name})

    async def _supervise(
        self, name: str, fn: Callable[[], Awaitable[Any]], restart: bool, backoff: Backoff
    ) -> None:
        incident = _task_incident(name)
        while not self._stopping:
            try:
                await fn()
            except Exception as exc:
                self._failed(name, exc, incident)
                if not restart:
                    return
                await asyncio.sleep(backoff.next())
                continue
            incident.recovered()
            return

    async def _periodic(self, p: Periodic) -> None:
        incident = _task_incident(p.name)
        if not p.run_first:
            await p.wait()
        while not self._stopping:
            try:
                await p.fn()
            except Exception as exc:
                self._failed(p.name, exc, incident)
            else:
                incident.recovered()
            p.runs += 1
            await p.wait()

    async def stop(self) -> None:
        """Cancel every task and wait for them to end. A cancellation that
        something inside a task swallowed (``asyncio.wait_for`` on Python 3.11
        when the awaited call completes at that moment, a library catching
        it) is repeated, and the loops end at their next turn anyway."""
        self._stopping = True
        tasks = list(self._tasks.values())
        pending = {task for task in tasks if not task.done()}
        while pending:
            for task in pending:
                task.cancel()
            _, pending = await asyncio.wait(pending, timeout=1.0)
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
        self._stopping = False

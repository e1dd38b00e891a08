"""Retrying with exponential backoff and jitter, logged once per incident.

An *incident* is the time from the first failure of something (the broker,
the database, a consumer) to its first success afterwards. It is logged
twice: a warning when it starts, with the error, and one info line when it
ends, with how long it lasted and how many attempts it took. The retries in
between log at debug level only, so an outage of an hour is two lines, not
thousands.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from nazar_common.db.pool import is_connection_error
from nazar_common.errors import TransientError

T = TypeVar("T")

log = logging.getLogger(__name__)


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` means "a dependency is unavailable right now"."""
    return is_connection_error(exc) or isinstance(exc, TransientError | TimeoutError)


@dataclass
class Backoff:
    """Exponential delays with jitter: ``initial``, then ``factor`` times the
    previous one, at most ``maximum``; each drawn uniformly from the upper
    ``jitter`` fraction of that value, so replicas that failed together do
    not come back in lockstep."""

    initial: float = 0.2
    maximum: float = 5.0
    factor: float = 2.0
    jitter: float = 0.5
    attempts: int = field(default=0, init=False)

    def next(self) -> float:
        """The delay before the next attempt."""
        ceiling = min(self.maximum, self.initial * self.factor**self.attempts)
        self.attempts += 1
        return ceiling * (1.0 - self.jitter * random.random())

    def reset(self) -> None:
        self.attempts = 0


class Incident:
    """Logs an outage of ``what`` once when it starts and once when it ends."""

    def __init__(
        self,
        what: str,
        logger: logging.Logger | None = None,
        *,
        lost: str = "%s unavailable; retrying with backoff",
        back: str = "%s available again",
    ) -> None:
        self.what = what
        self.log = logger or log
        self._lost = lost
        self._back = back
        self.active = False
        self.since = 0.0
        self.failures = 0

    def failed(self, error: BaseException | str, **extra: Any) -> bool:
        """Record a failure; logs a warning only for the first one of an
        incident. Returns whether this failure started the incident."""
        self.failures += 1
        detail = error if isinstance(error, str) else _describe(error)
        if self.active:
            self.log.debug("%s still unavailable", self.what, extra={"error": detail, **extra})
            return False
        self.active = True
        self.since = time.monotonic()
        self.failures = 1
        self.log.warning(self._lost, self.what, extra={"error": detail, **extra})
        return True

    def recovered(self, **extra: Any) -> bool:
        """Record a success; logs the end of an incident if one was going on."""
        if not self.active:
            return False
        self.active = False
        self.log.info(
            self._back,
            self.what,
            extra={
                "outage_seconds": round(time.monotonic() - self.since, 3),
                "failed_attempts": self.failures,
                **extra,
            },
        )
        return True


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


async def wait_event(event: asyncio.Event, timeout: float | None) -> bool:
    """Wait until ``event`` is set or ``timeout`` seconds pass; returns whether it is set.

    Unlike ``asyncio.wait_for(event.wait(), timeout)`` on Python 3.11, a
    cancellation that arrives just as the event is set is never swallowed:
    a loop that waits here (a periodic task woken at the moment it is
    stopped) ends when cancelled instead of running on for ever."""
    try:
        async with asyncio.timeout(timeout):
            await event.wait()
    except TimeoutError:
        pass
    return event.is_set()


async def retry(
    op: Callable[[], Awaitable[T]],
    *,
    what: str,
    retryable: Callable[[BaseException], bool] = is_transient,
    backoff: Backoff | None = None,
    budget: float | None = None,
    incident: Incident | None = None,
    logger: logging.Logger | None = None,
) -> T:
    """Run ``op`` until it succeeds, sleeping with ``backoff`` between attempts.

    Errors for which ``retryable`` is false are raised at once. With a
    ``budget`` (seconds), a retryable error that would need a retry beyond
    it is raised as :class:`TransientError` (the caller's edge then answers
    503 or requeues); without one, retrying goes on until the task is
    cancelled. Callers that run concurrently against the same dependency
    pass one shared ``incident`` so an outage is logged once, not once per
    caller."""
    backoff = backoff or Backoff()
    incident = incident or Incident(what, logger)
    deadline = None if budget is None else time.monotonic() + budget
    while True:
        try:
            result = await op()
        except Exception as exc:
            if not retryable(exc):
                raise
            delay = backoff.next()
            if deadline is not None and time.monotonic() + delay > deadline:
                if isinstance(exc, TransientError):
                    raise
                raise TransientError(f"{what} unavailable: {_describe(exc)}") from exc
            incident.failed(exc)
            await asyncio.sleep(delay)
            continue
        incident.recovered()
        return result

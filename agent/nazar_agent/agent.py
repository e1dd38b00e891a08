"""The agent's run loop: collect every interval into the buffer, drain the buffer to ingest."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Protocol

from nazar_agent.backoff import Backoff
from nazar_agent.buffer import BatchBuffer
from nazar_agent.collectors import SystemCollector
from nazar_agent.samples import Sample
from nazar_agent.sender import HttpSender, SendResult, Verdict
from nazar_agent.settings import AgentSettings
from nazar_agent.wire import encode_batches

logger = logging.getLogger(__name__)


class Collector(Protocol):
    def collect(self) -> Sequence[Sample]: ...


class Sender(Protocol):
    async def send(self, batch_id: str, body: bytes) -> SendResult: ...

    async def aclose(self) -> None: ...


class Agent:
    """Runs two loops until :meth:`stop` is called.

    * the collect loop reads the host every ``interval`` seconds, splits the samples
      into batches and appends them to the on-disk buffer;
    * the drain loop sends the oldest buffered batch, deletes it once the server
      accepted it (or rejected it for good) and otherwise retries with backoff.
    """

    def __init__(
        self,
        settings: AgentSettings,
        *,
        collector: Collector | None = None,
        sender: Sender | None = None,
        backoff: Backoff | None = None,
        shutdown_grace: float = 5.0,
    ) -> None:
        self._settings = settings
        self._collector = collector
        self._sender = sender
        self._backoff = backoff or Backoff(settings.backoff_base, settings.backoff_cap)
        self._shutdown_grace = shutdown_grace
        self._stop = asyncio.Event()
        self._wakeup = asyncio.Event()

    def stop(self) -> None:
        """Ask the agent to stop (safe to call from a signal handler on the loop)."""
        if not self._stop.is_set():
            logger.info("stop requested")
        self._stop.set()
        self._wakeup.set()

    async def run(self) -> None:
        settings = self._settings
        buffer = BatchBuffer(settings.buffer_dir, settings.buffer_max_bytes)
        collector = self._collector or SystemCollector()
        sender = self._sender or HttpSender(settings)
        logger.info(
            "agent started",
            extra={"settings": settings.log_safe(), "buffered_batches": len(buffer)},
        )
        tasks = [
            asyncio.create_task(self._collect_loop(collector, buffer), name="collect"),
            asyncio.create_task(self._drain_loop(sender, buffer), name="drain"),
        ]
        stop_waiter = asyncio.create_task(self._stop.wait(), name="stop")
        try:
            await asyncio.wait([stop_waiter, *tasks], return_when=asyncio.FIRST_COMPLETED)
            self.stop()
            _, pending = await asyncio.wait(tasks, timeout=self._shutdown_grace)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            for task in tasks:
                error = None if task.cancelled() else task.exception()
                if error is not None:
                    raise error
        finally:
            stop_waiter.cancel()
            for task in tasks:
                task.cancel()
            await asyncio.gather(stop_waiter, *tasks, return_exceptions=True)
            await sender.aclose()
            logger.info(
                "agent stopped",
                extra={"buffered_batches": len(buffer), "buffered_bytes": buffer.total_bytes},
            )
            buffer.close()

    async def _sleep(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; return True if the agent was asked to stop."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), timeout=max(seconds, 0.0))
        return self._stop.is_set()

    async def _collect_loop(self, collector: Collector, buffer: BatchBuffer) -> None:
        loop = asyncio.get_running_loop()
        interval = self._settings.interval
        next_tick = loop.time()
        while not self._stop.is_set():
            try:
                samples = await asyncio.to_thread(collector.collect)
                self._store(samples, buffer)
            except Exception:
                logger.exception("collection failed")
            next_tick += interval
            now = loop.time()
            if next_tick <= now:  # collection overran or the host was suspended
                missed = int((now - next_tick) // interval) + 1
                next_tick += missed * interval
                logger.warning("collection ticks skipped", extra={"skipped": missed})
            if await self._sleep(next_tick - now):
                return

    def _store(self, samples: Sequence[Sample], buffer: BatchBuffer) -> None:
        settings = self._settings
        batches = encode_batches(
            settings.hostname, settings.labels, samples, settings.max_batch_samples
        )
        for batch in batches:
            buffer.append(batch)
        logger.debug(
            "collected",
            extra={
                "samples": len(samples),
                "batches": len(batches),
                "buffered_batches": len(buffer),
            },
        )
        self._wakeup.set()

    async def _drain_loop(self, sender: Sender, buffer: BatchBuffer) -> None:
        while not self._stop.is_set():
            try:
                await self._drain_once(sender, buffer)
            except Exception:
                # e.g. a transient SQLite error (disk full): keep the batch, retry later
                delay = self._backoff.next_delay()
                logger.exception("drain step failed", extra={"retry_in": round(delay, 3)})
                await self._sleep(delay)

    async def _drain_once(self, sender: Sender, buffer: BatchBuffer) -> None:
        """Send the oldest batch (or wait for one) and act on the server's answer."""
        stored = buffer.oldest()
        if stored is None:
            self._wakeup.clear()
            await self._wakeup.wait()
            return
        result = await sender.send(stored.batch_id, stored.body)
        log_extra = {
            "batch_id": stored.batch_id,
            "samples": stored.sample_count,
            "status": result.status,
        }
        if result.verdict is Verdict.DELIVERED:
            buffer.delete(stored.seq)
            if self._backoff.failures:
                logger.info("ingest reachable again", extra=log_extra)
            self._backoff.reset()
            logger.debug("batch delivered", extra=log_extra)
        elif result.verdict is Verdict.REJECTED:
            buffer.delete(stored.seq)
            self._backoff.reset()
            logger.error(
                "batch rejected by ingest, dropped",
                extra={**log_extra, "detail": result.detail},
            )
        else:
            delay = self._backoff.next_delay()
            if result.retry_after is not None:
                delay = result.retry_after
            logger.warning(
                "batch not delivered, will retry",
                extra={
                    **log_extra,
                    "detail": result.detail,
                    "retry_in": round(delay, 3),
                    "attempt": self._backoff.failures,
                    "buffered_batches": len(buffer),
                },
            )
            await self._sleep(delay)

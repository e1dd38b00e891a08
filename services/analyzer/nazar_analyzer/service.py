"""The analyzer process: consumes sample batches, keeps the rule set fresh,
runs the periodic sweeps, snapshots detectors and relays alert events."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from aio_pika.abc import AbstractIncomingMessage
from prometheus_client import Counter, Gauge

from nazar_analyzer.engine import Engine
from nazar_analyzer.settings import AnalyzerSettings
from nazar_analyzer.store import prune_processed
from nazar_common.db.migrate import migrate
from nazar_common.db.pool import create_pool, is_connection_error
from nazar_common.errors import InvalidInputError, TransientError
from nazar_common.messaging.broker import Broker
from nazar_common.messaging.outbox import OutboxRelay
from nazar_common.messaging.topology import ANALYZER_SAMPLES
from nazar_common.schemas.wire import SampleBatchV1

log = logging.getLogger(__name__)

SERVICE = "nazar-analyzer"

BATCHES = Counter("nazar_analyzer_batches_total", "Sample batches handled", ["outcome"])
OUTBOX_PUBLISHED = Counter(
    "nazar_analyzer_outbox_published_total", "Alert events published from the outbox"
)
RULES = Gauge("nazar_analyzer_rules", "Enabled rules loaded")
SWEEP_ERRORS = Counter("nazar_analyzer_background_errors_total", "Background task failures",
                       ["task"])

#: Database errors worth retrying in place (the batch stays unacknowledged).
_RETRYABLE = (
    asyncpg.exceptions.DeadlockDetectedError,
    asyncpg.exceptions.SerializationError,
    asyncpg.exceptions.UniqueViolationError,
)


class AnalyzerService:
    def __init__(self, settings: AnalyzerSettings) -> None:
        self.settings = settings
        self.pool: asyncpg.Pool | None = None
        self.broker = Broker(settings.amqp_url.get_secret_value())
        self.engine = Engine(None, settings)
        self.relay: OutboxRelay | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._inflight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._slots = asyncio.Semaphore(settings.analyzer_concurrency)
        self._reload = asyncio.Event()
        self._listener: asyncpg.Connection | None = None
        self.draining = False
        self.consuming = False
        self.rules_loaded = False
        self.stopped = False
        self.batches_done = 0

    # -- lifecycle --------------------------------------------------------------

    async def start(self) -> None:
        self.pool = await _retry(lambda: create_pool(self.settings, SERVICE, min_size=1),
                                 "database")

        async def _migrate() -> None:
            assert self.pool is not None
            async with self.pool.acquire() as conn:
                await migrate(conn, self.settings.storage_backend)

        await _retry(_migrate, "database")
        self.engine.pool = self.pool
        await _retry(self._load_config, "database")
        await _retry(self.broker.connect, "broker")
        self.relay = OutboxRelay(
            self.pool,
            self.broker,
            self.settings.analyzer_outbox_batch,
            on_published=OUTBOX_PUBLISHED.inc,
        )
        s = self.settings
        self._spawn(self._listen(), "config-listener")
        self._spawn(self._every(s.analyzer_reload_interval, self._load_config, "reload",
                                wake=self._reload), "reload")
        self._spawn(self._every(s.analyzer_sweep_interval, self._sweep, "sweep"), "sweep")
        self._spawn(self._every(s.analyzer_state_flush_interval, self.engine.flush_models,
                                "flush"), "flush")
        self._spawn(self._every(600.0, self._prune, "prune"), "prune")
        self._spawn(self.relay.run(), "relay")
        await self.broker.consume(ANALYZER_SAMPLES.name, self.handle, prefetch=s.analyzer_prefetch)
        self.consuming = True
        log.info("analyzer started", extra={"rules": len(self.engine.rules.rules)})

    async def stop(self) -> None:
        """Graceful drain: refuse new batches, finish those in flight, snapshot
        the detectors, then close."""
        if self.stopped:
            return
        self.stopped = True
        self.draining = True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), self.settings.analyzer_drain_timeout)
        await self.broker.stop_consuming()
        self.consuming = False
        if self.pool is not None:
            try:
                await self.engine.flush_models()
            except Exception as exc:  # the next owner replays from older snapshots
                log.warning("final model snapshot failed", extra={"error": str(exc)})
            if self.relay is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self.relay.run_once(), 5.0)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        if self._listener is not None:
            with contextlib.suppress(Exception):
                await self._listener.close()
        await self.broker.close()
        if self.pool is not None:
            await self.pool.close()
        log.info("analyzer stopped")

    def checks(self) -> dict[str, str]:
        return {
            "database": "ok" if self.pool is not None and self.rules_loaded else "unavailable",
            "broker": "ok" if self.broker.connected and self.consuming else "unavailable",
        }

    # -- the consumer ---------------------------------------------------------------

    async def handle(self, message: AbstractIncomingMessage) -> None:
        if self.draining:
            raise TransientError("draining")
        try:
            batch = SampleBatchV1.from_bytes(message.body)
        except ValueError as exc:
            BATCHES.labels("invalid").inc()
            raise InvalidInputError(f"undecodable sample batch: {exc}") from exc
        self._inflight += 1
        self._idle.clear()
        try:
            async with self._slots:
                await self._handle_with_retry(batch)
        finally:
            self._inflight -= 1
            if self._inflight == 0:
                self._idle.set()

    async def _handle_with_retry(self, batch: SampleBatchV1) -> None:
        delay = 0.2
        deadline = time.monotonic() + 60.0
        while True:
            try:
                outcome = await self.engine.handle_batch(batch)
            except Exception as exc:
                retry = is_connection_error(exc) or isinstance(exc, _RETRYABLE | TimeoutError)
                if not retry or self.draining or time.monotonic() > deadline:
                    BATCHES.labels("failed").inc()
                    if retry:
                        raise TransientError(f"batch not evaluated: {exc}") from exc
                    raise
                log.warning("batch evaluation will be retried",
                            extra={"batch": str(batch.id), "error": f"{type(exc).__name__}: {exc}"})
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            break
        BATCHES.labels("duplicate" if outcome.duplicate else "ok").inc()
        self.batches_done += 1
        if outcome.events and self.relay is not None:
            self.relay.wake()

    # -- background work ----------------------------------------------------------------

    def _spawn(self, coro: Awaitable[None], name: str) -> None:
        self._tasks.append(asyncio.create_task(coro, name=name))  # type: ignore[arg-type]

    async def _every(
        self,
        interval: float,
        fn: Callable[[], Awaitable[Any]],
        name: str,
        wake: asyncio.Event | None = None,
    ) -> None:
        while True:
            if wake is None:
                await asyncio.sleep(interval)
            else:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), interval)
                wake.clear()
            try:
                await fn()
            except Exception as exc:
                SWEEP_ERRORS.labels(name).inc()
                if is_connection_error(exc):
                    log.warning(f"{name} waiting for the database", extra={"error": str(exc)})
                else:
                    log.exception(f"{name} failed")

    async def _load_config(self) -> None:
        await self.engine.reload()
        self.rules_loaded = True
        RULES.set(len(self.engine.rules.rules))

    async def _sweep(self) -> None:
        events = await self.engine.sweep()
        if events and self.relay is not None:
            self.relay.wake()

    async def _prune(self) -> None:
        assert self.pool is not None
        await prune_processed(self.pool, self.settings.analyzer_processed_retention)

    async def _listen(self) -> None:
        """LISTEN nazar_config: rule changes are applied within moments."""
        while True:
            try:
                conn = await asyncpg.connect(
                    self.settings.database_url.get_secret_value(),
                    server_settings={"application_name": SERVICE + "-listen"},
                )
                self._listener = conn
                closed = asyncio.Event()
                conn.add_termination_listener(lambda *_, ev=closed: ev.set())
                await conn.add_listener("nazar_config", lambda *_: self._reload.set())
                self._reload.set()  # catch up with changes made while not listening
                await closed.wait()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("config listener reconnecting", extra={"error": str(exc)})
            await asyncio.sleep(2.0)


async def _retry(fn: Callable[[], Awaitable[Any]], what: str) -> Any:
    delay = 0.5
    while True:
        try:
            return await fn()
        except Exception as exc:
            if not (is_connection_error(exc) or isinstance(exc, TransientError | TimeoutError)):
                raise
            log.warning(f"{what} not reachable; retrying", extra={"error": str(exc)})
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)

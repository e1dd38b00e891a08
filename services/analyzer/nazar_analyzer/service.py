"""The analyzer process: consumes sample batches, keeps the rule set fresh,
runs the periodic sweeps, snapshots detectors and relays alert events — on
the shared worker runtime (:mod:`nazar_common.runtime`)."""

from __future__ import annotations

import asyncio
import logging

import asyncpg
from aio_pika.abc import AbstractIncomingMessage
from prometheus_client import Counter, Gauge

from nazar_analyzer.engine import BatchOutcome, Engine
from nazar_analyzer.settings import AnalyzerSettings
from nazar_analyzer.store import prune_processed
from nazar_common.db.events import EVENTS_CHANNEL
from nazar_common.errors import InvalidInputError, TransientError
from nazar_common.messaging.outbox import OutboxRelay
from nazar_common.messaging.topology import ANALYZER_SAMPLES
from nazar_common.runtime.backoff import Backoff, Incident, is_transient, retry
from nazar_common.runtime.worker import Runtime
from nazar_common.schemas.wire import SampleBatchV1

log = logging.getLogger(__name__)

SERVICE = "nazar-analyzer"

BATCHES = Counter("nazar_analyzer_batches_total", "Sample batches handled", ["outcome"])
OUTBOX_PUBLISHED = Counter(
    "nazar_analyzer_outbox_published_total", "Alert events published from the outbox"
)
RULES = Gauge("nazar_analyzer_rules", "Enabled rules loaded")

#: Database errors worth retrying in place (the batch stays unacknowledged).
_RETRYABLE = (
    asyncpg.exceptions.DeadlockDetectedError,
    asyncpg.exceptions.SerializationError,
    asyncpg.exceptions.UniqueViolationError,
)


class AnalyzerService:
    def __init__(self, settings: AnalyzerSettings) -> None:
        self.settings = settings
        self.runtime = Runtime("analyzer", settings)
        self.broker = self.runtime.broker
        self.pool: asyncpg.Pool | None = None
        self.engine = Engine(None, settings)
        self.relay: OutboxRelay | None = None
        self._slots = asyncio.Semaphore(settings.analyzer_concurrency)
        self._evaluation = Incident("batch evaluation", log)
        self.draining = False
        self.rules_loaded = False
        self.stopped = False
        self.batches_done = 0

    # -- lifecycle (run by nazar_common.runtime.worker.run_worker) --------------

    async def start(self) -> None:
        s, rt = self.settings, self.runtime
        self.pool = await rt.open_database(min_size=1)
        self.engine.pool = self.pool
        await rt.retry_database(self._load_config)
        reload = rt.every("reload", s.analyzer_reload_interval, self._load_config)
        rt.listen(reload.wake)  # rule changes apply within moments
        # events (deploys) too, on a channel of their own; also reloaded with the rules
        events = rt.every("events", s.analyzer_reload_interval, self.engine.reload_events)
        rt.listen(events.wake, channel=EVENTS_CHANNEL)
        rt.every("sweep", s.analyzer_sweep_interval, self._sweep)
        rt.every("flush", s.analyzer_state_flush_interval, self.engine.flush_models)
        rt.every("prune", 600.0, self._prune)
        self.relay = OutboxRelay(
            self.pool, rt.broker, s.analyzer_outbox_batch, on_published=OUTBOX_PUBLISHED.inc
        )
        self.relay.start(rt.tasks)
        rt.consume(
            ANALYZER_SAMPLES,
            self.handle,
            prefetch=s.analyzer_prefetch,
            drain_timeout=s.analyzer_drain_timeout,
        )
        rt.start_broker()

    def stopping(self) -> None:
        """Batches not yet being evaluated go back to the queue."""
        self.draining = True

    async def drain(self) -> None:
        """Consumers are stopped: snapshot the detectors, relay what is left."""
        if self.pool is None:
            return
        try:
            await self.engine.flush_models()
        except Exception as exc:  # the next owner replays from older snapshots
            log.warning("final model snapshot failed", extra={"error": str(exc)})
        if self.relay is not None:
            try:
                await asyncio.wait_for(self.relay.run_once(), 5.0)
            except Exception as exc:  # the rows stay in the outbox for the next relay
                log.warning("final outbox relay failed", extra={"error": str(exc)})

    async def stop(self) -> None:
        """Graceful drain: refuse new batches, finish those in flight, snapshot
        the detectors, then close."""
        if self.stopped:
            return
        self.stopped = True
        await self.runtime.shutdown(stopping=self.stopping, drain=self.drain)
        log.info("analyzer stopped")

    @property
    def consuming(self) -> bool:
        return self.runtime.broker.consumers().get(ANALYZER_SAMPLES.name, False)

    def checks(self) -> dict[str, str]:
        return {
            "database": "ok" if self.pool is not None and self.rules_loaded else "unavailable",
            **self.runtime.checks(),
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
        async with self._slots:
            if self.draining:  # waited for a slot while a stop began
                raise TransientError("draining")
            await self._evaluate(batch)

    def _retryable(self, exc: BaseException) -> bool:
        return not self.draining and (is_transient(exc) or isinstance(exc, _RETRYABLE))

    async def _evaluate(self, batch: SampleBatchV1) -> None:
        try:
            outcome: BatchOutcome = await retry(
                lambda: self.engine.handle_batch(batch),
                what="batch evaluation",
                retryable=self._retryable,
                backoff=Backoff(0.2, 5.0),
                budget=60.0,
                incident=self._evaluation,
            )
        except Exception:
            BATCHES.labels("failed").inc()
            raise
        BATCHES.labels("duplicate" if outcome.duplicate else "ok").inc()
        self.batches_done += 1
        if outcome.events and self.relay is not None:
            self.relay.wake()

    # -- background work ----------------------------------------------------------------

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

"""Background work of the ingest process: the outbox relay's metrics, the
deferred-queue consumer, host bookkeeping and storage maintenance (run as
tasks of the shared worker runtime)."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import asyncpg
from aio_pika.abc import AbstractIncomingMessage
from prometheus_client import Counter, Gauge

from nazar_common.db.backends import Retention, StorageBackend
from nazar_common.db.events import prune_events
from nazar_common.db.samples import count_series, upsert_hosts
from nazar_common.errors import InvalidInputError, TransientError
from nazar_common.messaging.broker import Broker
from nazar_common.messaging.outbox import OutboxRelay
from nazar_common.messaging.partitioning import sample_router
from nazar_common.runtime.backoff import Backoff, Incident, retry
from nazar_common.schemas.wire import SampleBatchV1
from nazar_ingest.pipeline import (
    BODY_HASH_HEADER,
    IDEMPOTENCY_KEY_HEADER,
    Accepter,
    from_message,
)

log = logging.getLogger(__name__)

OUTBOX_PUBLISHED = Counter(
    "nazar_ingest_outbox_published_total", "Outbox messages published to the broker"
)
OUTBOX_BACKLOG = Gauge("nazar_ingest_outbox_backlog", "Outbox rows waiting to be published")


def outbox_relay(
    pool: asyncpg.Pool, broker: Broker, batch: int, partitions: int = 8
) -> OutboxRelay:
    """The relay of ingest's outbox. Ingest writes each group commit's
    sample batches as one row per analyzer partition, addressed to it, and
    these are published as they are; a row of the previous version (one
    unsplit batch, left by a rolling upgrade) is split over the
    ``partitions`` partition queues."""
    return OutboxRelay(
        pool, broker, batch, on_published=OUTBOX_PUBLISHED.inc, on_backlog=OUTBOX_BACKLOG.set,
        route=sample_router(partitions),
    )


DEFERRED_STORED = Counter(
    "nazar_ingest_deferred_stored_total", "Deferred batches stored after a database outage"
)


def deferred_handler(
    accepter: Accepter, hold: float = 60.0
) -> Callable[[AbstractIncomingMessage], Awaitable[None]]:
    """Store batches that were accepted while the database was down.

    While the database is still down the message is held (retried with
    backoff for up to ``hold`` seconds) rather than requeued at once, so a long
    outage does not burn through the queue's delivery limit."""
    incident = Incident("database for deferred batches", log)

    async def handle(message: AbstractIncomingMessage) -> None:
        try:
            batch = SampleBatchV1.from_bytes(message.body)
        except ValueError as exc:
            raise InvalidInputError(f"undecodable deferred batch: {exc}") from exc
        headers = message.headers or {}
        key = headers.get(IDEMPOTENCY_KEY_HEADER)
        try:
            digest = bytes.fromhex(str(headers.get(BODY_HASH_HEADER) or ""))
        except ValueError:
            digest = b""
        normalized = from_message(batch, str(key) if key else None, digest or None)
        result = await retry(
            lambda: accepter.accept(normalized, allow_fallback=False),
            what="database for deferred batches",
            retryable=lambda exc: isinstance(exc, TransientError),
            backoff=Backoff(0.5, 2.0),
            budget=hold,
            incident=incident,
        )
        if result.rejected is not None:
            log.warning(
                "deferred batch: samples of new series beyond a cardinality budget dropped",
                extra={"samples": result.rejected.samples, "series": result.rejected.series,
                       "limit": result.rejected.limit},
            )
        DEFERRED_STORED.inc()

    return handle


class HostTracker:
    """Remembers hosts seen by committed batches and flushes them to the
    ``hosts`` table every few seconds (off the ingest hot path)."""

    def __init__(self, pool: asyncpg.Pool, interval: float = 2.0) -> None:
        self.pool = pool
        self.interval = interval
        self._seen: dict[str, tuple[str, datetime]] = {}

    def note(self, hosts: dict[str, str], latest: float) -> None:
        ts = datetime.fromtimestamp(latest, UTC)
        for host, labels in hosts.items():
            prev = self._seen.get(host)
            self._seen[host] = (labels, ts if prev is None or ts > prev[1] else prev[1])

    async def flush(self) -> None:
        if not self._seen:
            return
        seen, self._seen = self._seen, {}
        try:
            async with self.pool.acquire() as conn:
                await upsert_hosts(conn, seen)
        except Exception:
            for host, value in seen.items():  # keep them for the next flush
                self._seen.setdefault(host, value)
            raise


class Maintenance:
    """Partitions, retention, rollups, old idempotency keys and old events,
    and the series count of the global cardinality budget, periodically."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        backend: StorageBackend,
        retention: Retention,
        interval: float,
        accept_past: timedelta,
        accept_future: timedelta,
        events_retention: timedelta,
        on_series_count: Callable[[int], None] | None = None,
    ) -> None:
        self.pool = pool
        self.backend = backend
        self.retention = retention
        self.interval = interval
        self.accept_past = accept_past
        self.accept_future = accept_future
        self.events_retention = events_retention
        #: Told the number of series each run (for the global cardinality budget).
        self.on_series_count = on_series_count
        self.last_run: float | None = None

    async def run_once(self) -> None:
        async with self.pool.acquire() as conn:
            await self.backend.maintain(
                conn,
                self.retention,
                accept_past=self.accept_past,
                accept_future=self.accept_future,
            )
            await conn.execute(
                "DELETE FROM ingest_requests WHERE received_at < now() - $1::interval",
                max(self.accept_past, timedelta(days=1)) * 2,
            )
            await prune_events(conn, self.events_retention)
            if self.on_series_count is not None:
                self.on_series_count(await count_series(conn))
        self.last_run = time.time()

"""The transactional outbox relay.

Components write messages into the ``outbox`` table in the same transaction
as the data they describe; this relay publishes them with publisher
confirms and deletes each row in the transaction that saw it confirmed. Rows
stay while the broker is down. Several relays (replicas, or ingest and the
analyzer, which share the table) split the work with ``FOR UPDATE SKIP
LOCKED``. A crash between the confirm and the commit republishes a row;
consumers are idempotent by message id.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import asyncpg

from nazar_common.db.pool import is_connection_error
from nazar_common.errors import TransientError
from nazar_common.messaging.broker import Broker

log = logging.getLogger(__name__)


class OutboxRelay:
    def __init__(
        self,
        pool: asyncpg.Pool,
        broker: Broker,
        batch: int,
        *,
        on_published: Callable[[int], None] = lambda n: None,
        on_backlog: Callable[[int], None] | None = None,
    ) -> None:
        self.pool = pool
        self.broker = broker
        self.batch = batch
        self._on_published = on_published
        self._on_backlog = on_backlog
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    async def run_once(self) -> int:
        """Publish up to one batch of rows; returns how many."""
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox ORDER BY id "
                "LIMIT $1 FOR UPDATE SKIP LOCKED) "
                "RETURNING id, exchange, routing_key, message_id, body",
                self.batch,
            )
            if not rows:
                return 0
            # Confirms are pipelined; any failure raises, the transaction
            # rolls back and the rows stay for the next round.
            await asyncio.gather(
                *(
                    self.broker.publish(
                        r["exchange"], r["routing_key"], r["body"], message_id=str(r["message_id"])
                    )
                    for r in rows
                )
            )
        self._on_published(len(rows))
        return len(rows)

    async def run(self, interval: float = 1.0) -> None:
        while True:
            try:
                if self.broker.connected:
                    while await self.run_once() >= self.batch:
                        pass
                if self._on_backlog is not None:
                    self._on_backlog(int(await self.pool.fetchval("SELECT count(*) FROM outbox")))
            except TransientError as exc:
                log.warning("outbox relay waiting for the broker", extra={"error": str(exc)})
            except Exception as exc:
                if not is_connection_error(exc):
                    log.exception("outbox relay failed")
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=interval)

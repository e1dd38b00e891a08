"""Outbox relay of the analyzer: publishes the alert events committed with
their transitions, deleting each row in the transaction that confirmed it.

It works on the shared ``outbox`` table; ingest's relay may publish the same
rows, and ``FOR UPDATE SKIP LOCKED`` gives every row to exactly one relay.
A crash between the broker's confirm and the commit republishes a row: the
event id is deterministic, so consumers drop the duplicate.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import asyncpg
from prometheus_client import Counter

from nazar_common.db.pool import is_connection_error
from nazar_common.errors import TransientError
from nazar_common.messaging.broker import Broker

log = logging.getLogger(__name__)

PUBLISHED = Counter("nazar_analyzer_outbox_published_total", "Outbox messages published")


class OutboxRelay:
    def __init__(self, pool: asyncpg.Pool, broker: Broker, batch: int) -> None:
        self.pool = pool
        self.broker = broker
        self.batch = batch
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    async def run_once(self) -> int:
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox ORDER BY id "
                "LIMIT $1 FOR UPDATE SKIP LOCKED) "
                "RETURNING id, exchange, routing_key, message_id, body",
                self.batch,
            )
            if not rows:
                return 0
            await asyncio.gather(
                *(
                    self.broker.publish(
                        r["exchange"], r["routing_key"], r["body"], message_id=str(r["message_id"])
                    )
                    for r in rows
                )
            )
        PUBLISHED.inc(len(rows))
        return len(rows)

    async def run(self, interval: float = 1.0) -> None:
        while True:
            try:
                if self.broker.connected:
                    while await self.run_once() >= self.batch:
                        pass
            except TransientError as exc:
                log.warning("outbox relay waiting for the broker", extra={"error": str(exc)})
            except Exception as exc:
                if not is_connection_error(exc):
                    log.exception("outbox relay failed")
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=interval)

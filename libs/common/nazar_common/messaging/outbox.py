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
from collections.abc import Callable, Sequence

import asyncpg

from nazar_common.messaging.broker import Broker
from nazar_common.messaging.partitioning import Router
from nazar_common.runtime.tasks import Periodic, Tasks


class OutboxRelay:
    def __init__(
        self,
        pool: asyncpg.Pool,
        broker: Broker,
        batch: int,
        *,
        on_published: Callable[[int], None] = lambda n: None,
        on_backlog: Callable[[int], None] | None = None,
        route: Router | None = None,
        exchanges: Sequence[str] | None = None,
    ) -> None:
        #: Relay only the rows of these exchanges (None: every row). The
        #: analyzer relays its alert events only: sample batches are relayed
        #: by ingest alone, in commit order.
        self.exchanges = list(exchanges) if exchanges is not None else None
        #: Splits / re-addresses a row into the messages published for it.
        self.route = route
        self.pool = pool
        self.broker = broker
        self.batch = batch
        self._on_published = on_published
        self._on_backlog = on_backlog
        self._periodic: Periodic | None = None

    def start(self, tasks: Tasks, interval: float = 1.0) -> Periodic:
        """Relay every ``interval`` seconds, and at once when woken, as a
        periodic task of ``tasks`` (which logs failures once per incident)."""
        self._periodic = tasks.every("outbox-relay", interval, self.run_round, run_first=True)
        return self._periodic

    def wake(self) -> None:
        """Rows were committed: relay them now rather than at the next round."""
        if self._periodic is not None:
            self._periodic.wake()

    async def run_once(self) -> int:
        """Publish up to one batch of rows; returns how many."""
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox "
                "WHERE $2::text[] IS NULL OR exchange = ANY($2::text[]) ORDER BY id "
                "LIMIT $1 FOR UPDATE SKIP LOCKED) "
                "RETURNING id, exchange, routing_key, message_id, body",
                self.batch,
                self.exchanges,
            )
            if not rows:
                return 0
            # Confirms are pipelined; any failure raises, the transaction
            # rolls back and the rows stay for the next round.
            messages = [
                (r["exchange"], r["routing_key"], str(r["message_id"]), r["body"]) for r in rows
            ]
            if self.route is not None:
                route = self.route
                messages = [
                    (exchange, *part)
                    for exchange, key, mid, body in messages
                    for part in route(exchange, key, mid, body)
                ]
            await asyncio.gather(
                *(
                    self.broker.publish(exchange, key, body, message_id=mid)
                    for exchange, key, mid, body in messages
                )
            )
        self._on_published(len(rows))
        return len(rows)

    async def run_round(self) -> None:
        """Publish everything there is (while the broker is connected), then
        report the backlog."""
        if self.broker.connected:
            while await self.run_once() >= self.batch:
                pass
        if self._on_backlog is not None:
            self._on_backlog(int(await self.pool.fetchval("SELECT count(*) FROM outbox")))

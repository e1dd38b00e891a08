"""``LISTEN`` on a PostgreSQL channel, kept open across database restarts.

Configuration changes are announced with ``NOTIFY nazar_config``. A
dedicated connection listens; it is re-established with backoff when it
drops, and ``on_notify`` is also called after every (re)connection, because
notifications sent while nobody listened are gone: the callback must reload
what it caches. A connection that dies without a FIN (a crashed host, a
network partition) is noticed by a cheap ping every ``ping_interval``
seconds. ``on_connect`` runs on every new connection before it is used,
e.g. to take a session-level advisory lock that lives exactly as long as
the process's hold on the database (the notifier's delivery leases).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from nazar_common.runtime.backoff import Backoff, Incident
from nazar_common.runtime.metrics import RuntimeMetrics

log = logging.getLogger(__name__)

#: The channel configuration changes are announced on.
CONFIG_CHANNEL = "nazar_config"


class PgListener:
    def __init__(
        self,
        dsn: str,
        channel: str,
        on_notify: Callable[[], None],
        *,
        application_name: str,
        metrics: RuntimeMetrics | None = None,
        ping_interval: float = 10.0,
        backoff: Backoff | None = None,
        on_connect: Callable[[asyncpg.Connection], Awaitable[None]] | None = None,
    ) -> None:
        self.dsn = dsn
        self.channel = channel
        self.on_notify = on_notify
        self.application_name = application_name
        self.metrics = metrics
        self.ping_interval = ping_interval
        self.backoff = backoff or Backoff(0.5, 10.0)
        self.on_connect = on_connect
        self.connected = False
        self.connections = 0

    async def run(self) -> None:
        """Listen until cancelled."""
        incident = Incident(f"LISTEN {self.channel}", log)
        while True:
            conn: asyncpg.Connection | None = None
            try:
                # asyncio.timeout, not wait_for: on Python 3.11 wait_for drops a
                # cancellation that arrives as the call completes, and this loop
                # would then never end.
                async with asyncio.timeout(10.0):
                    connection: asyncpg.Connection = await asyncpg.connect(
                        self.dsn, server_settings={"application_name": self.application_name}
                    )
                conn = connection
                lost = asyncio.get_running_loop().create_future()

                def terminated(_: Any, lost: asyncio.Future[None] = lost) -> None:
                    if not lost.done():
                        lost.set_result(None)

                connection.add_termination_listener(terminated)
                if self.on_connect is not None:
                    await self.on_connect(connection)
                await connection.add_listener(self.channel, lambda *_: self.on_notify())
                self.connected = True
                self.connections += 1
                if self.connections > 1 and self.metrics is not None:
                    self.metrics.listener_reconnects.inc()
                incident.recovered()
                self.backoff.reset()
                self.on_notify()  # catch up with what changed while not listening
                await self._hold(connection, lost)
                raise ConnectionError("the LISTEN connection was closed")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                incident.failed(exc)
            finally:
                self.connected = False
                if conn is not None and not conn.is_closed():
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(conn.close(), 2.0)
            await asyncio.sleep(self.backoff.next())

    async def _hold(self, conn: asyncpg.Connection, lost: asyncio.Future[None]) -> None:
        """Return when the connection is gone (closed, or not answering a ping)."""
        while not lost.done():
            done, _ = await asyncio.wait({lost}, timeout=self.ping_interval)
            if done:
                return
            async with asyncio.timeout(self.ping_interval):
                await conn.execute("SELECT 1")

"""The runtime of a Nazar process: database, broker, background work,
readiness and the start/stop lifecycle, in one place.

A component builds one :class:`Runtime`, registers what it needs —
consumers (:meth:`Runtime.consume`), periodic tasks (:meth:`Runtime.every`),
long-running tasks (:meth:`Runtime.spawn`), the configuration listener
(:meth:`Runtime.listen`) — and starts it. Worker processes (analyzer,
notifier) run under :func:`run_worker`, which also handles SIGTERM/SIGINT
and their HTTP endpoint; ingest runs its runtime from the API's lifespan.
See docs/architecture.md, "Worker runtime".
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol

import asyncpg

from nazar_common.db.migrate import Backend, migrate
from nazar_common.db.pool import create_pool
from nazar_common.messaging.broker import (
    Broker,
    ConsumerSpec,
    Handler,
    StateHook,
    TopologyDeclarer,
)
from nazar_common.messaging.topology import QueueSpec, declare_topology, partitions_declarer
from nazar_common.runtime.backoff import Backoff, Incident, retry
from nazar_common.runtime.http import serve_http
from nazar_common.runtime.listener import CONFIG_CHANNEL, PgListener
from nazar_common.runtime.metrics import runtime_metrics
from nazar_common.runtime.tasks import Periodic, Tasks
from nazar_common.settings import CommonSettings

log = logging.getLogger(__name__)


class Runtime:
    """Everything a component shares with the others at run time."""

    def __init__(
        self,
        component: str,
        settings: CommonSettings,
        *,
        topology: Sequence[TopologyDeclarer] | None = None,
    ) -> None:
        if topology is None:
            topology = (declare_topology, partitions_declarer(settings.analyzer_partitions))
        self.component = component
        self.settings = settings
        self.metrics = runtime_metrics(component)
        self.broker = Broker(
            settings.amqp_url.get_secret_value(),
            component=component,
            heartbeat=settings.amqp_heartbeat,
            backoff=Backoff(0.2, settings.reconnect_max_delay),
            topology=topology,
        )
        self.tasks = Tasks(component, self.metrics)
        self.pool: asyncpg.Pool | None = None
        self.backend: Backend | None = None
        self.listeners: list[PgListener] = []
        #: Shared by every caller of :meth:`retry_database`: one log line per outage.
        self.database_incident = Incident("database", log)
        self._stopped = False

    @property
    def application_name(self) -> str:
        return f"nazar-{self.component}"

    # ------------------------------------------------------------------ database

    async def open_database(
        self,
        *,
        min_size: int | None = None,
        max_size: int | None = None,
        run_migrations: bool = True,
    ) -> asyncpg.Pool:
        """Create the pool (and migrate), retrying with backoff until the
        database answers."""
        pool = await retry(
            lambda: create_pool(
                self.settings, self.application_name, min_size=min_size, max_size=max_size
            ),
            what="database",
            incident=self.database_incident,
        )
        self.pool = pool
        if run_migrations:

            async def _migrate() -> tuple[Backend, int]:
                async with pool.acquire() as conn:
                    return await migrate(conn, self.settings.storage_backend)

            self.backend, _ = await retry(
                _migrate, what="database", incident=self.database_incident
            )
        return pool

    async def retry_database(self, op: Callable[[], Awaitable[Any]], **kwargs: Any) -> Any:
        """:func:`~nazar_common.runtime.backoff.retry` with this runtime's
        database incident (one log line per outage across all callers)."""
        kwargs.setdefault("what", "database")
        kwargs.setdefault("incident", self.database_incident)
        return await retry(op, **kwargs)

    def listen(
        self,
        on_notify: Callable[[], None],
        channel: str = CONFIG_CHANNEL,
        *,
        on_connect: Callable[[asyncpg.Connection], Awaitable[None]] | None = None,
    ) -> PgListener:
        """``LISTEN channel`` on a connection of its own, kept open across
        restarts; ``on_notify`` runs on every notification and after every
        (re)connection, ``on_connect`` on every new connection first."""
        listener = PgListener(
            self.settings.database_url.get_secret_value(),
            channel,
            on_notify,
            application_name=f"{self.application_name}-listen",
            metrics=self.metrics,
            backoff=Backoff(0.5, self.settings.reconnect_max_delay),
            on_connect=on_connect,
        )
        self.listeners.append(listener)
        self.tasks.spawn(f"listen:{channel}", listener.run)
        return listener

    # ------------------------------------------------------------------ broker

    def consume(
        self,
        queue: QueueSpec,
        handler: Handler,
        *,
        prefetch: int = 10,
        required: bool = True,
        on_state: StateHook | None = None,
        exclusive: bool = False,
        arguments: Mapping[str, Any] | None = None,
        drain_timeout: float = 30.0,
        abandon: bool = False,
    ) -> None:
        """Consume ``queue`` with ``handler`` (see :class:`ConsumerSpec`); may be
        called before or after :meth:`start_broker`."""
        self.broker.add_consumer(
            ConsumerSpec(
                queue,
                handler,
                prefetch=prefetch,
                required=required,
                on_state=on_state,
                exclusive=exclusive,
                arguments=dict(arguments or {}),
                drain_timeout=drain_timeout,
                abandon=abandon,
            )
        )

    def start_broker(self) -> None:
        """Connect in the background and keep connected."""
        self.broker.start()

    # ------------------------------------------------------------------ tasks

    def every(
        self,
        name: str,
        interval: float,
        fn: Callable[[], Awaitable[Any]],
        *,
        run_first: bool = False,
    ) -> Periodic:
        return self.tasks.every(name, interval, fn, run_first=run_first)

    def spawn(
        self, name: str, fn: Callable[[], Awaitable[Any]], *, restart: bool = True
    ) -> asyncio.Task[None]:
        return self.tasks.spawn(name, fn, restart=restart)

    # ------------------------------------------------------------------ health

    def checks(self) -> dict[str, str]:
        """The broker and every required consumer, for ``/readyz``:
        ``consumer:<queue>`` is ``missing`` while the broker is connected but
        the consumer is not attached."""
        connected = self.broker.connected
        checks = {"broker": "ok" if connected else "unavailable"}
        for name in self.broker.required_consumers():
            attached = self.broker.consumers().get(name, False)
            checks[f"consumer:{name}"] = (
                "ok" if attached else ("missing" if connected else "waiting for the broker")
            )
        return checks

    async def database_check(self, timeout: float = 2.0) -> str:
        if self.pool is None:
            return "unavailable: not connected yet"
        try:
            await asyncio.wait_for(self.pool.fetchval("SELECT 1"), timeout)
        except Exception as exc:
            return f"unavailable: {type(exc).__name__}"
        return "ok"

    # ------------------------------------------------------------------ lifecycle

    async def shutdown(
        self,
        *,
        stopping: Callable[[], None] | None = None,
        drain: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """Stop in order: ``stopping()`` (refuse new work), cancel the
        subscriptions and let in-flight handlers finish, ``drain()`` (the
        component's own in-flight work), background tasks, broker, pool."""
        if self._stopped:
            return
        self._stopped = True
        if stopping is not None:
            stopping()
        await self.broker.stop_consuming()
        if drain is not None:
            try:
                await drain()
            except Exception:
                log.exception("draining failed", extra={"component": self.component})
        await self.tasks.stop()
        await self.broker.close()
        if self.pool is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.pool.close(), 10.0)


class Worker(Protocol):
    """A component run by :func:`run_worker`."""

    runtime: Runtime

    async def start(self) -> None:
        """Connect, load, register consumers and tasks. Retries while
        dependencies are down; cancelled if a stop comes first."""

    def stopping(self) -> None:
        """A stop was requested: refuse new work from now on."""

    async def drain(self) -> None:
        """Consumers are stopped: finish (or hand back) the work in flight."""


def stop_on_signals() -> asyncio.Event:
    """An event set by SIGTERM or SIGINT."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
    return stop


async def run_worker(
    worker: Worker,
    app: Any,
    host: str,
    port: int,
    *,
    stop: asyncio.Event | None = None,
) -> None:
    """The lifecycle of a worker process: serve ``app`` (health, readiness,
    metrics) at once, start the worker, run until ``stop`` (default:
    SIGTERM / SIGINT), then shut down in order and stop serving last."""
    runtime = worker.runtime
    stop = stop or stop_on_signals()
    server = await serve_http(app, host, port)
    starting = asyncio.create_task(worker.start(), name=f"{runtime.component}:start")
    stopped = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({starting, stopped}, return_when="FIRST_COMPLETED")
        if starting.done():
            starting.result()
            log.info("%s started", runtime.component, extra={"port": server.port})
            await stopped
        else:
            starting.cancel()
            await asyncio.gather(starting, return_exceptions=True)
    finally:
        stopped.cancel()
        log.info("%s stopping", runtime.component)
        await runtime.shutdown(stopping=worker.stopping, drain=worker.drain)
        await server.stop()
        log.info("%s stopped", runtime.component)

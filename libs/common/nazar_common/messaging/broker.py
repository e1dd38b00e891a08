"""The broker connection, supervised: publishing with confirms, consumers that
come back, and one error translation.

**Supervision.** :class:`Broker` owns one AMQP connection (a plain
``aio_pika.connect``, not the "robust" connection, whose implicit restore of
channels and consumers is exactly what failed after a second RabbitMQ
restart). A supervisor task opens it, declares the topology on a confirming
publisher channel, and starts every registered consumer on a channel of its
own. It then watches:

* the connection (closed by the broker, a restart, ``rabbitmqctl
  close_connection``, a missed heartbeat, a network error): everything is
  rebuilt on a new connection, after a backoff with jitter;
* the publisher channel (closed by a channel error): reopened;
* each consumer's channel (closed by a channel error) and subscription
  (``basic.cancel`` from the broker, e.g. because its queue was deleted):
  the queue is declared again and the consumer re-subscribed, with backoff.

Each outage is logged once when it starts and once when it ends (see
:class:`~nazar_common.runtime.backoff.Incident`), and counted in
``nazar_<component>_broker_reconnects_total`` and
``nazar_<component>_consumer_restarts_total``; ``nazar_<component>_consumers``
is the number of consumers attached right now.

Consumers can be added and removed at any time (:meth:`Broker.add_consumer`,
:meth:`Broker.remove_consumer`). A consumer's ``on_state`` hook hears
``attached`` (subscribed), ``active`` (its first delivery since attaching;
awaited before any handler of that attachment runs, so it can load state —
with a single-active-consumer queue this is the moment the consumer
becomes the active one) and ``detached``.

**Error translation.** Handlers raise the :mod:`nazar_common.errors`
hierarchy; :func:`handle_delivery` turns it into broker actions once:
success acks, ``TransientError`` (and unexpected errors) requeue — the
queue's delivery limit then dead-letters a message that never succeeds —
and ``PermanentError`` rejects to the DLQ at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import aio_pika
import aiormq
from aio_pika.abc import (
    AbstractChannel,
    AbstractConnection,
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractQueue,
)
from opentelemetry import trace
from yarl import URL

from nazar_common.errors import PermanentError, TransientError
from nazar_common.messaging.topology import QueueSpec, declare_queue, declare_topology
from nazar_common.runtime.backoff import Backoff, Incident, wait_event
from nazar_common.runtime.metrics import runtime_metrics
from nazar_common.telemetry import extract_context, inject_headers

log = logging.getLogger(__name__)
tracer = trace.get_tracer("nazar.messaging")

Handler = Callable[[AbstractIncomingMessage], Awaitable[None]]
ConsumerEvent = Literal["attached", "active", "detached"]
#: ``on_state(queue_name, event)``; may be a coroutine function.
StateHook = Callable[[str, ConsumerEvent], Awaitable[None] | None]
#: Declares part of the topology on a channel; returns the exchanges it declared.
TopologyDeclarer = Callable[[AbstractChannel], Awaitable[Mapping[str, AbstractExchange] | None]]


@dataclass(frozen=True)
class ConsumerSpec:
    """What to consume and how. ``required`` consumers count for readiness."""

    queue: QueueSpec
    handler: Handler
    prefetch: int = 10
    required: bool = True
    exclusive: bool = False
    #: ``basic.consume`` arguments (e.g. ``x-priority``).
    arguments: Mapping[str, Any] = field(default_factory=dict)
    on_state: StateHook | None = None
    #: Seconds to wait for in-flight handlers when the consumer is removed.
    drain_timeout: float = 30.0
    #: On removal close the channel at once (no cancel, no wait for handlers):
    #: every unacknowledged message returns to the queue in its order, and a
    #: single-active-consumer queue passes to the next subscriber only then.
    abandon: bool = False

    @property
    def name(self) -> str:
        return self.queue.name


class _Consumer:
    """A registered consumer and its state."""

    def __init__(self, spec: ConsumerSpec) -> None:
        self.spec = spec
        self.attached = False
        self.attachments = 0
        self.inflight = 0
        self.idle = asyncio.Event()
        self.idle.set()
        self.removed = asyncio.Event()
        self.activation: asyncio.Task[None] | None = None
        self.task: asyncio.Task[None] | None = None
        self.incident = Incident(
            f"consumer of {spec.name}",
            log,
            lost="%s lost; subscribing again with backoff",
            back="%s attached again",
        )


def _describe(exc: BaseException | None) -> str:
    if exc is None:
        return "closed"
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _with_heartbeat(url: str, heartbeat: int | None) -> str:
    parsed = URL(url)
    if heartbeat is None or "heartbeat" in parsed.query:
        return url
    return str(parsed.update_query(heartbeat=str(heartbeat)))


class Broker:
    """One supervised connection, a confirming publisher channel, consumers."""

    def __init__(
        self,
        url: str,
        *,
        component: str = "common",
        publish_timeout: float = 10.0,
        connect_timeout: float = 10.0,
        heartbeat: int | None = None,
        backoff: Backoff | None = None,
        topology: Sequence[TopologyDeclarer] = (declare_topology,),
    ) -> None:
        self._url = _with_heartbeat(url, heartbeat)
        self.component = component
        self.metrics = runtime_metrics(component)
        self._publish_timeout = publish_timeout
        self._connect_timeout = connect_timeout
        self._backoff = backoff or Backoff(0.2, 5.0)
        self._topology: list[TopologyDeclarer] = list(topology)
        self._connection: AbstractConnection | None = None
        self._publisher: AbstractChannel | None = None
        self._exchanges: dict[str, AbstractExchange] = {}
        self._consumers: dict[str, _Consumer] = {}
        self._supervisor: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()
        self._stop = asyncio.Event()
        self._closing = False
        self._last_error = "not connected yet"
        self._incident = Incident(
            "broker connection",
            log,
            lost="%s down; reconnecting with backoff",
            back="%s re-established",
        )
        #: Connections established (the first one, then every reconnection).
        self.connections = 0

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Start supervising (idempotent); returns at once. The connection
        comes up in the background and comes back whenever it is lost."""
        if self._supervisor is None or self._supervisor.done():
            self._closing = False
            self._stop.clear()
            self._supervisor = asyncio.create_task(
                self._supervise(), name=f"{self.component}:broker"
            )

    async def wait_connected(self, timeout: float | None = None) -> bool:
        """Wait until connected (at most ``timeout`` seconds); returns whether it is."""
        await wait_event(self._connected, timeout)
        return self.connected

    async def connect(self, *, timeout: float = 10.0) -> None:
        """Start and wait for the connection; raises :class:`TransientError`
        (and stops) if it is not up within ``timeout`` seconds."""
        self.start()
        if not await self.wait_connected(timeout):
            error = self._last_error
            await self.close()
            raise TransientError(f"broker unreachable: {error}")

    async def close(self) -> None:
        """Remove every consumer (draining in-flight handlers) and disconnect."""
        self._closing = True
        await self.stop_consuming()
        self._stop.set()
        if self._supervisor is not None:
            self._supervisor.cancel()
            await asyncio.gather(self._supervisor, return_exceptions=True)
            self._supervisor = None
        connection, self._connection, self._publisher = self._connection, None, None
        if connection is not None and not connection.is_closed:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(connection.close(), 5.0)

    # ------------------------------------------------------------------ state

    @property
    def connected(self) -> bool:
        return (
            self._connection is not None
            and not self._connection.is_closed
            and self._publisher is not None
            and not self._publisher.is_closed
        )

    def consumers(self) -> dict[str, bool]:
        """Every registered consumer: whether it is attached right now."""
        return {name: c.attached for name, c in self._consumers.items()}

    def required_consumers(self) -> list[str]:
        """The names of the consumers that count for readiness."""
        return [n for n, c in self._consumers.items() if c.spec.required]

    def missing_consumers(self) -> list[str]:
        """Required consumers that are not attached right now."""
        return [n for n, c in self._consumers.items() if c.spec.required and not c.attached]

    # ------------------------------------------------------------------ topology

    def add_topology(self, declare: TopologyDeclarer) -> None:
        """Declare more on every (re)connection (after what is declared already)."""
        self._topology.append(declare)

    # ------------------------------------------------------------------ consumers

    def add_consumer(self, spec: ConsumerSpec) -> None:
        """Consume ``spec.queue`` from now on (at once if connected)."""
        if spec.name in self._consumers:
            raise ValueError(f"a consumer of {spec.name} is registered already")
        consumer = self._consumers[spec.name] = _Consumer(spec)
        connection = self._connection
        if connection is not None and not connection.is_closed and self._connected.is_set():
            self._start_consumer(connection, consumer)

    async def consume(
        self, queue: QueueSpec, handler: Handler, *, prefetch: int = 10, required: bool = True
    ) -> None:
        """Shorthand for :meth:`add_consumer`."""
        self.add_consumer(ConsumerSpec(queue, handler, prefetch=prefetch, required=required))

    async def remove_consumer(self, name: str) -> None:
        """Stop consuming queue ``name``: cancel the subscription, let the
        handlers in flight finish (up to the spec's ``drain_timeout``), then
        close its channel, which returns unacknowledged messages to the queue."""
        consumer = self._consumers.pop(name, None)
        if consumer is None:
            return
        consumer.removed.set()
        if consumer.task is not None:
            await asyncio.gather(consumer.task, return_exceptions=True)

    async def stop_consuming(self) -> None:
        """Remove every consumer (see :meth:`remove_consumer`), concurrently."""
        await asyncio.gather(*(self.remove_consumer(n) for n in list(self._consumers)))

    # ------------------------------------------------------------------ publishing

    async def publish(
        self,
        exchange: str,
        routing_key: str,
        body: bytes,
        *,
        message_id: str,
        headers: dict[str, Any] | None = None,
        content_type: str = "application/json",
    ) -> None:
        """Publish a persistent message and wait for the broker's confirm."""
        if not self.connected:
            raise TransientError("broker not connected")
        message = aio_pika.Message(
            body,
            message_id=message_id,
            content_type=content_type,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            headers=dict(inject_headers(dict(headers or {}))),
        )
        try:
            confirmation = await asyncio.wait_for(
                self._exchanges[exchange].publish(message, routing_key=routing_key, mandatory=True),
                self._publish_timeout,
            )
        except (TimeoutError, OSError, RuntimeError, aio_pika.exceptions.AMQPError) as exc:
            raise TransientError(f"publish failed: {type(exc).__name__}: {exc}") from exc
        if isinstance(confirmation, aio_pika.exceptions.DeliveryError):  # pragma: no cover
            raise TransientError("publish not confirmed")

    @contextlib.asynccontextmanager
    async def channel(self, *, publisher_confirms: bool = False) -> AsyncIterator[AbstractChannel]:
        """A channel of its own on the current connection, closed on exit
        (for one-off work such as ``basic.get``)."""
        connection = self._connection
        if connection is None or connection.is_closed:
            raise TransientError("broker not connected")
        channel = await connection.channel(publisher_confirms=publisher_confirms)
        try:
            yield channel
        finally:
            if not channel.is_closed:
                with contextlib.suppress(Exception):
                    await channel.close()

    # ------------------------------------------------------------------ supervision

    async def _pause(self, delay: float) -> None:
        await wait_event(self._stop, delay)

    async def _supervise(self) -> None:
        while not self._closing:
            try:
                connection = await aio_pika.connect(
                    self._url,
                    timeout=self._connect_timeout,
                    client_properties={
                        "connection_name": f"nazar-{self.component}@{socket.gethostname()}"
                    },
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._last_error = _describe(exc)
                self._incident.failed(exc)
                await self._pause(self._backoff.next())
                continue
            try:
                await self._session(connection)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._last_error = _describe(exc)
                if not self._closing:
                    self._incident.failed(exc)
            finally:
                await self._end_session(connection)
            if not self._closing:
                await self._pause(self._backoff.next())

    async def _open_publisher(self, connection: AbstractConnection) -> asyncio.Future[str]:
        """Open the confirming publisher channel and declare the topology on it;
        returns a future that resolves (to a reason) when that channel closes."""
        channel = await connection.channel(publisher_confirms=True)
        closed = _closed_future(channel)
        exchanges: dict[str, AbstractExchange] = {}
        try:
            for declare in self._topology:
                exchanges.update(await declare(channel) or {})
        except BaseException:
            with contextlib.suppress(Exception):
                await channel.close()
            raise
        self._publisher = channel
        self._exchanges = exchanges
        return closed

    async def _session(self, connection: AbstractConnection) -> None:
        """One connection's life: publisher, consumers, watching."""
        lost = _closed_future(connection)
        publisher_closed = await self._open_publisher(connection)
        self._connection = connection
        self._connected.set()
        self.metrics.broker_connected.inc()
        self.connections += 1
        self._backoff.reset()
        if self.connections > 1:
            self.metrics.broker_reconnects.inc()
        if not self._incident.recovered(consumers=len(self._consumers)):
            log.info("broker connected", extra={"consumers": len(self._consumers)})
        for consumer in self._consumers.values():
            self._start_consumer(connection, consumer)
        stop: asyncio.Future[Any] = asyncio.ensure_future(self._stop.wait())
        try:
            while True:
                watched: set[asyncio.Future[Any]] = {lost, publisher_closed, stop}
                await asyncio.wait(watched, return_when="FIRST_COMPLETED")
                if self._closing or stop.done():
                    return
                if lost.done():
                    raise ConnectionError(f"connection lost ({lost.result()})")
                # Only the publisher channel was closed (a channel error): reopen it.
                self._publisher = None
                log.warning(
                    "broker publisher channel closed; reopening",
                    extra={"error": publisher_closed.result()},
                )
                publisher_closed = await self._open_publisher(connection)
        finally:
            stop.cancel()

    async def _end_session(self, connection: AbstractConnection) -> None:
        if self._connected.is_set():
            self._connected.clear()
            self.metrics.broker_connected.dec()
        self._connection = None
        self._publisher = None
        tasks = [c.task for c in self._consumers.values() if c.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if not connection.is_closed:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(connection.close(), 5.0)

    def _start_consumer(self, connection: AbstractConnection, consumer: _Consumer) -> None:
        if consumer.task is not None and not consumer.task.done():
            return
        consumer.task = asyncio.create_task(
            self._run_consumer(connection, consumer),
            name=f"{self.component}:consume:{consumer.spec.name}",
        )

    async def _run_consumer(self, connection: AbstractConnection, c: _Consumer) -> None:
        """Keep ``c`` subscribed while the connection lives and ``c`` is registered."""
        backoff = Backoff(0.2, self._backoff.maximum)
        try:
            while not c.removed.is_set() and not connection.is_closed:
                try:
                    channel, queue, tag, ended = await self._subscribe(connection, c)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    if connection.is_closed:
                        return
                    c.incident.failed(exc)
                    await wait_event(c.removed, backoff.next())
                    continue
                backoff.reset()
                self._set_attached(c, True)
                c.attachments += 1
                if c.attachments > 1:
                    self.metrics.consumer_restarts.labels(c.spec.name).inc()
                if not c.incident.recovered():
                    log.info("consumer attached", extra={"queue": c.spec.name})
                await self._hook(c, "attached")
                removed: asyncio.Future[Any] = asyncio.ensure_future(c.removed.wait())
                try:
                    watched: set[asyncio.Future[Any]] = {ended, removed}
                    await asyncio.wait(watched, return_when="FIRST_COMPLETED")
                finally:
                    removed.cancel()
                self._set_attached(c, False)
                if c.removed.is_set():
                    await self._unsubscribe(channel, queue, tag, c)
                    await self._hook(c, "detached")
                    return
                await self._hook(c, "detached")
                if connection.is_closed:
                    return  # the connection's incident, not this consumer's
                c.incident.failed(ended.result())
                # Handlers in flight may still finish (their acks are lost with
                # the channel; the broker redelivers those messages).
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(c.idle.wait(), min(c.spec.drain_timeout, 5.0))
                await _close_quietly(channel)
                await wait_event(c.removed, backoff.next())
        finally:
            if c.attached:
                self._set_attached(c, False)
                await self._hook(c, "detached")

    async def _subscribe(
        self, connection: AbstractConnection, c: _Consumer
    ) -> tuple[AbstractChannel, AbstractQueue, str, asyncio.Future[str]]:
        channel = await connection.channel(publisher_confirms=False)
        try:
            ended = _closed_future(channel)
            await channel.set_qos(prefetch_count=c.spec.prefetch)
            queue = await declare_queue(channel, c.spec.queue)
            underlay = await channel.get_underlay_channel()

            def cancelled(frame: aiormq.spec.Basic.Cancel) -> None:
                if not ended.done():
                    ended.set_result("subscription cancelled by the broker")

            underlay.on_consumer_cancel_callbacks.add(cancelled)
            c.activation = None

            async def on_message(message: AbstractIncomingMessage) -> None:
                await self._deliver(c, message)

            tag = await queue.consume(
                on_message, exclusive=c.spec.exclusive, arguments=dict(c.spec.arguments) or None
            )
        except BaseException:
            await _close_quietly(channel)
            raise
        return channel, queue, str(tag), ended

    async def _unsubscribe(
        self, channel: AbstractChannel, queue: AbstractQueue, tag: str, c: _Consumer
    ) -> None:
        if c.spec.abandon:
            await _close_quietly(channel)
            return
        if not channel.is_closed:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(queue.cancel(tag), 5.0)
        try:
            await asyncio.wait_for(c.idle.wait(), c.spec.drain_timeout)
        except TimeoutError:
            log.warning(
                "consumer stopped with handlers still running; their messages return to the queue",
                extra={"queue": c.spec.name, "in_flight": c.inflight},
            )
        await _close_quietly(channel)

    async def _deliver(self, c: _Consumer, message: AbstractIncomingMessage) -> None:
        c.inflight += 1
        c.idle.clear()
        try:
            await handle_delivery(message, lambda m: self._activated_then(c, m))
        finally:
            c.inflight -= 1
            if c.inflight == 0:
                c.idle.set()

    async def _activated_then(self, c: _Consumer, message: AbstractIncomingMessage) -> None:
        """Run the ``active`` hook once per attachment, before any handler."""
        if c.spec.on_state is not None:
            if c.activation is None:
                c.activation = asyncio.ensure_future(self._hook(c, "active", raise_errors=True))
            try:
                await asyncio.shield(c.activation)
            except Exception:
                c.activation = None  # the next delivery tries again
                raise
        await c.spec.handler(message)

    async def _hook(
        self, c: _Consumer, event: ConsumerEvent, *, raise_errors: bool = False
    ) -> None:
        if c.spec.on_state is None:
            return
        try:
            result = c.spec.on_state(c.spec.name, event)
            if inspect.isawaitable(result):
                await result
        except Exception:
            if raise_errors:
                raise
            log.exception("consumer state hook failed", extra={"queue": c.spec.name})

    def _set_attached(self, c: _Consumer, attached: bool) -> None:
        if c.attached != attached:
            c.attached = attached
            self.metrics.consumers.inc() if attached else self.metrics.consumers.dec()


def _closed_future(obj: AbstractConnection | AbstractChannel) -> asyncio.Future[str]:
    """A future resolved (to a description of the reason) when ``obj`` closes."""
    future: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    def closed(_: Any, exc: BaseException | None = None) -> None:
        if not future.done():
            future.set_result(_describe(exc))

    obj.close_callbacks.add(closed)
    if obj.is_closed and not future.done():
        future.set_result("closed")
    return future


async def _close_quietly(channel: AbstractChannel) -> None:
    if not channel.is_closed:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(channel.close(), 5.0)


async def handle_delivery(message: AbstractIncomingMessage, handler: Handler) -> None:
    """Run ``handler`` and translate its outcome into ack / requeue / dead-letter."""
    ctx = extract_context(message.headers)
    with tracer.start_as_current_span(
        f"consume {message.routing_key}", context=ctx, kind=trace.SpanKind.CONSUMER
    ):
        try:
            await handler(message)
        except PermanentError as exc:
            log.error(
                "message rejected to the dead-letter queue",
                extra={"message_id": message.message_id, "error": str(exc)},
            )
            await _settle(message.reject(requeue=False))
        except (TransientError, Exception) as exc:
            log.warning(
                "message requeued",
                extra={"message_id": message.message_id, "error": f"{type(exc).__name__}: {exc}"},
            )
            await _settle(message.nack(requeue=True))
        else:
            await _settle(message.ack())


async def _settle(outcome: Awaitable[None]) -> None:
    """Ack / nack / reject; if the channel is gone meanwhile, the broker has
    already returned the message to its queue and will deliver it again."""
    try:
        await outcome
    except (aiormq.exceptions.AMQPError, aio_pika.exceptions.AMQPError, RuntimeError) as exc:
        log.debug("could not settle a message; the broker redelivers it", extra={
            "error": _describe(exc)})

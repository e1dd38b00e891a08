"""Publishing with confirms and consuming with one error translation.

Consumers raise the :mod:`nazar_common.errors` hierarchy; this module turns
it into broker actions once: success acks, ``TransientError`` (and
unexpected errors) requeue — the queue's delivery limit then dead-letters a
message that never succeeds — and ``PermanentError`` rejects to the DLQ at
once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import aio_pika
from aio_pika.abc import (
    AbstractChannel,
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractRobustConnection,
)
from opentelemetry import trace

from nazar_common.errors import PermanentError, TransientError
from nazar_common.messaging.topology import declare_topology
from nazar_common.telemetry import extract_context, inject_headers

log = logging.getLogger(__name__)
tracer = trace.get_tracer("nazar.messaging")

Handler = Callable[[AbstractIncomingMessage], Awaitable[None]]


class Broker:
    """One robust connection, a confirming publisher channel, and consumers."""

    def __init__(self, url: str, *, publish_timeout: float = 10.0) -> None:
        self._url = url
        self._publish_timeout = publish_timeout
        self._connection: AbstractRobustConnection | None = None
        self._channel: AbstractChannel | None = None
        self._exchanges: dict[str, AbstractExchange] = {}
        self._consumer_channels: list[AbstractChannel] = []

    async def connect(self, *, timeout: float = 10.0) -> None:
        try:
            self._connection = await asyncio.wait_for(
                aio_pika.connect_robust(self._url, reconnect_interval=1.0), timeout
            )
            self._channel = await self._connection.channel(publisher_confirms=True)
            self._exchanges = await declare_topology(self._channel)
        except (TimeoutError, OSError, aio_pika.exceptions.AMQPError) as exc:
            await self.close()
            raise TransientError(f"broker unreachable: {type(exc).__name__}") from exc

    @property
    def connected(self) -> bool:
        return (
            self._connection is not None
            and not self._connection.is_closed
            and self._channel is not None
            and not self._channel.is_closed
        )

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

    async def consume(self, queue_name: str, handler: Handler, *, prefetch: int = 10) -> None:
        """Start consuming ``queue_name`` on a channel of its own."""
        if self._connection is None:
            raise TransientError("broker not connected")
        channel = await self._connection.channel()
        await channel.set_qos(prefetch_count=prefetch)
        queue = await channel.get_queue(queue_name, ensure=False)
        self._consumer_channels.append(channel)

        async def on_message(message: AbstractIncomingMessage) -> None:
            await handle_delivery(message, handler)

        await queue.consume(on_message)

    async def stop_consuming(self) -> None:
        for channel in self._consumer_channels:
            if not channel.is_closed:
                await channel.close()
        self._consumer_channels.clear()

    async def close(self) -> None:
        await self.stop_consuming()
        if self._connection is not None and not self._connection.is_closed:
            await self._connection.close()
        self._connection = None
        self._channel = None


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
            await message.reject(requeue=False)
        except (TransientError, Exception) as exc:
            log.warning(
                "message requeued",
                extra={"message_id": message.message_id, "error": f"{type(exc).__name__}: {exc}"},
            )
            await message.nack(requeue=True)
        else:
            await message.ack()

"""Adapter: the depth of a RabbitMQ queue (passive declare, never creates it)."""

from __future__ import annotations

import aio_pika
import aiormq
from aio_pika.abc import AbstractRobustConnection

from nazar_common.errors import TransientError


class QueueDepth:
    """Reads ``message_count`` of one queue over a connection opened on first use."""

    def __init__(self, amqp_url: str, queue: str) -> None:
        self._url = amqp_url
        self.queue = queue
        self._connection: AbstractRobustConnection | None = None

    async def read(self) -> int:
        try:
            if self._connection is None or self._connection.is_closed:
                self._connection = await aio_pika.connect_robust(self._url, timeout=10)
            # A channel per read: a failed passive declare closes its channel.
            async with self._connection.channel() as channel:
                declared = await channel.declare_queue(self.queue, passive=True)
                count = declared.declaration_result.message_count
        except (
            aiormq.exceptions.AMQPError,
            aio_pika.exceptions.AMQPException,
            OSError,
            RuntimeError,  # a robust connection still reconnecting: "not opened"
        ) as exc:
            raise TransientError(
                f"cannot read the depth of {self.queue}: {type(exc).__name__}: {exc}"
            ) from exc
        return int(count or 0)

    async def aclose(self) -> None:
        if self._connection is not None:
            await self._connection.close()
            self._connection = None

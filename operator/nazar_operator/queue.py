"""Adapter: the depth of RabbitMQ queues (passive declare, never creates them)."""

from __future__ import annotations

from collections.abc import Sequence

import aio_pika
import aiormq
from aio_pika.abc import AbstractRobustConnection

from nazar_common.errors import TransientError


class QueueDepth:
    """Reads the total ``message_count`` of one or more queues (the analyzer's
    partitions) over a connection opened on first use."""

    def __init__(self, amqp_url: str, queue: str | Sequence[str]) -> None:
        self._url = amqp_url
        self.queues = [queue] if isinstance(queue, str) else list(queue)
        self.queue = ", ".join(self.queues)
        self._connection: AbstractRobustConnection | None = None

    async def read(self) -> int:
        try:
            if self._connection is None or self._connection.is_closed:
                self._connection = await aio_pika.connect_robust(self._url, timeout=10)
            # A channel per read: a failed passive declare closes its channel.
            count = 0
            async with self._connection.channel() as channel:
                for name in self.queues:
                    declared = await channel.declare_queue(name, passive=True)
                    count += declared.declaration_result.message_count or 0
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

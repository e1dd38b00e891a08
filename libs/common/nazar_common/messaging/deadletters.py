"""Dead-lettered messages: inspect and replay them.

Messages reach a ``.dlq`` queue when a consumer rejects them, when they
exceed their queue's delivery limit, or (notifier) when a notification
exhausts its retry budget. :func:`replay` publishes each one back to the
exchange it came from (``x-death`` header, or the notifier's
``x-nazar-original-*`` headers) and removes it from the dead-letter queue
once the broker confirms. Used by ``nazar dlq`` (on a connection of its own)
and by the API (on ingest's connection), each with a connected
:class:`~nazar_common.messaging.broker.Broker`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aio_pika

from nazar_common.messaging.broker import Broker
from nazar_common.messaging.topology import NOTIFIER_ALERTS, QUEUES

DEFAULT_QUEUE = NOTIFIER_ALERTS.dlq
#: Every dead-letter queue of the topology.
DEAD_LETTER_QUEUES: tuple[str, ...] = tuple(q.dlq for q in QUEUES)
_DROP_HEADERS = (
    "x-death",
    "x-first-death-exchange",
    "x-first-death-queue",
    "x-first-death-reason",
    "x-last-death-exchange",
    "x-last-death-queue",
    "x-last-death-reason",
)


def text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@dataclass
class DeadLetter:
    message_id: str | None
    exchange: str
    routing_key: str
    reason: str
    headers: dict[str, Any]
    body: bytes


def origin(headers: dict[str, Any]) -> tuple[str, str, str]:
    """(exchange, routing key, reason) a dead-lettered message came from."""
    if "x-nazar-original-exchange" in headers:
        return (
            text(headers["x-nazar-original-exchange"]),
            text(headers.get("x-nazar-original-routing-key", "")),
            "notification failed: " + text(headers.get("x-nazar-error", "")),
        )
    deaths = headers.get("x-death") or []
    if deaths:
        first = deaths[0]
        keys = first.get("routing-keys") or [""]
        return text(first.get("exchange", "")), text(keys[0]), text(first.get("reason", ""))
    raise ValueError("message has no origin headers; cannot replay")


def standalone(amqp_url: str) -> Broker:
    """A broker connection of its own, without consumers or topology: it
    connects with the same retries, heartbeat and name as the services."""
    return Broker(amqp_url, component="cli", topology=())


async def peek(broker: Broker, queue_name: str, limit: int) -> tuple[int, list[DeadLetter]]:
    """Up to ``limit`` messages, left in the queue (they are returned on channel close)."""
    async with broker.channel() as channel:
        queue = await channel.declare_queue(queue_name, passive=True)
        total = queue.declaration_result.message_count or 0
        out = []
        for _ in range(min(limit, total)):
            message = await queue.get(no_ack=False, fail=False)
            if message is None:
                break
            headers = dict(message.headers or {})
            try:
                exchange, key, reason = origin(headers)
            except ValueError:
                exchange, key, reason = "?", "?", "unknown"
            out.append(DeadLetter(message.message_id, exchange, key, reason, headers, message.body))
    return total, out


async def replay(broker: Broker, queue_name: str, limit: int) -> int:
    """Move up to ``limit`` messages back to their exchanges; returns how many."""
    moved = 0
    async with broker.channel(publisher_confirms=True) as channel:
        queue = await channel.declare_queue(queue_name, passive=True)
        exchanges: dict[str, aio_pika.abc.AbstractExchange] = {}
        while moved < limit:
            message = await queue.get(no_ack=False, fail=False)
            if message is None:
                break
            headers = dict(message.headers or {})
            try:
                exchange_name, routing_key, _ = origin(headers)
            except ValueError:
                await message.nack(requeue=True)
                raise
            if exchange_name not in exchanges:
                exchanges[exchange_name] = await channel.get_exchange(exchange_name, ensure=True)
            for name in _DROP_HEADERS:
                headers.pop(name, None)
            headers["x-nazar-replayed"] = int(str(headers.get("x-nazar-replayed") or 0)) + 1
            await exchanges[exchange_name].publish(
                aio_pika.Message(
                    message.body,
                    headers=headers,
                    message_id=message.message_id,
                    content_type=message.content_type,
                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                ),
                routing_key=routing_key,
                mandatory=True,
            )
            await message.ack()
            moved += 1
    return moved


async def depths(broker: Broker, queue_names: tuple[str, ...]) -> dict[str, int | None]:
    """Messages waiting in each queue (None for a queue that does not exist)."""
    out: dict[str, int | None] = {}
    for name in queue_names:
        # A passive declare of a missing queue closes its channel: one each.
        async with broker.channel() as channel:
            try:
                queue = await channel.declare_queue(name, passive=True)
                out[name] = queue.declaration_result.message_count or 0
            except aio_pika.exceptions.ChannelClosed:
                out[name] = None
    return out

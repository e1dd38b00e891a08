"""``nazar dlq``: inspect and replay dead-lettered messages.

Messages reach a ``.dlq`` queue when a consumer rejects them, when they
exceed their queue's delivery limit, or (notifier) when a notification
exhausts its retry budget. ``replay`` publishes each one back to the exchange
it came from (``x-death`` header, or the notifier's ``x-nazar-original-*``
headers) and removes it from the dead-letter queue once the broker confirms.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Annotated, Any

import aio_pika
import typer

from nazar_cli.settings import CliSettings
from nazar_common.messaging.broker import Broker

app = typer.Typer(no_args_is_help=True)

DEFAULT_QUEUE = "nazar.notifier.alerts.dlq"
_DROP_HEADERS = (
    "x-death",
    "x-first-death-exchange",
    "x-first-death-queue",
    "x-first-death-reason",
    "x-last-death-exchange",
    "x-last-death-queue",
    "x-last-death-reason",
)


def _text(value: Any) -> str:
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
            _text(headers["x-nazar-original-exchange"]),
            _text(headers.get("x-nazar-original-routing-key", "")),
            "notification failed: " + _text(headers.get("x-nazar-error", "")),
        )
    deaths = headers.get("x-death") or []
    if deaths:
        first = deaths[0]
        keys = first.get("routing-keys") or [""]
        return _text(first.get("exchange", "")), _text(keys[0]), _text(first.get("reason", ""))
    raise ValueError("message has no origin headers; cannot replay")


def _broker(amqp_url: str) -> Broker:
    """The shared broker connection, without consumers or topology of its own:
    it connects with the same retries, heartbeat and name as the services."""
    return Broker(amqp_url, component="cli", topology=())


async def peek(amqp_url: str, queue_name: str, limit: int) -> tuple[int, list[DeadLetter]]:
    """Up to ``limit`` messages, left in the queue (they are returned on channel close)."""
    broker = _broker(amqp_url)
    await broker.connect(timeout=10.0)
    try:
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
                out.append(
                    DeadLetter(message.message_id, exchange, key, reason, headers, message.body)
                )
        return total, out
    finally:
        await broker.close()


async def replay(amqp_url: str, queue_name: str, limit: int) -> int:
    """Move up to ``limit`` messages back to their exchanges; returns how many."""
    broker = _broker(amqp_url)
    await broker.connect(timeout=10.0)
    moved = 0
    try:
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
                    exchanges[exchange_name] = await channel.get_exchange(
                        exchange_name, ensure=True
                    )
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
    finally:
        await broker.close()


QueueOpt = Annotated[str, typer.Option("--queue", help="Dead-letter queue.")]
LimitOpt = Annotated[int, typer.Option("--limit", min=1, help="Most messages to handle.")]


@app.command("list")
def list_(queue: QueueOpt = DEFAULT_QUEUE, limit: LimitOpt = 20) -> None:
    """Show dead-lettered messages (they stay in the queue)."""
    settings = CliSettings()
    total, items = asyncio.run(peek(settings.amqp_url.get_secret_value(), queue, limit))
    typer.echo(f"{queue}: {total} message(s)")
    for item in items:
        channel = _text(item.headers.get("x-nazar-channel", ""))
        extra = f" channel={channel}" if channel else ""
        typer.echo(f"{item.message_id}\t{item.exchange}/{item.routing_key}\t{item.reason}{extra}")


@app.command("replay")
def replay_cmd(queue: QueueOpt = DEFAULT_QUEUE, limit: LimitOpt = 1000) -> None:
    """Publish dead-lettered messages back to the exchange they came from."""
    settings = CliSettings()
    moved = asyncio.run(replay(settings.amqp_url.get_secret_value(), queue, limit))
    typer.echo(f"replayed {moved} message(s) from {queue}")

"""``nazar dlq``: inspect and replay dead-lettered messages
(see :mod:`nazar_common.messaging.deadletters`)."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from nazar_cli.settings import CliSettings
from nazar_common.messaging import deadletters
from nazar_common.messaging.deadletters import DEFAULT_QUEUE, DeadLetter, text

app = typer.Typer(no_args_is_help=True)


async def peek(amqp_url: str, queue_name: str, limit: int) -> tuple[int, list[DeadLetter]]:
    """Up to ``limit`` messages, left in the queue."""
    broker = deadletters.standalone(amqp_url)
    await broker.connect(timeout=10.0)
    try:
        return await deadletters.peek(broker, queue_name, limit)
    finally:
        await broker.close()


async def replay(amqp_url: str, queue_name: str, limit: int) -> int:
    """Move up to ``limit`` messages back to their exchanges; returns how many."""
    broker = deadletters.standalone(amqp_url)
    await broker.connect(timeout=10.0)
    try:
        return await deadletters.replay(broker, queue_name, limit)
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
        channel = text(item.headers.get("x-nazar-channel", ""))
        extra = f" channel={channel}" if channel else ""
        typer.echo(f"{item.message_id}\t{item.exchange}/{item.routing_key}\t{item.reason}{extra}")


@app.command("replay")
def replay_cmd(queue: QueueOpt = DEFAULT_QUEUE, limit: LimitOpt = 1000) -> None:
    """Publish dead-lettered messages back to the exchange they came from."""
    settings = CliSettings()
    moved = asyncio.run(replay(settings.amqp_url.get_secret_value(), queue, limit))
    typer.echo(f"replayed {moved} message(s) from {queue}")

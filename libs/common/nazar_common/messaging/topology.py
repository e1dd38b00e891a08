"""Every exchange and queue Nazar uses, declared in this one module.

Work queues are durable quorum queues with a delivery limit; a message that
keeps failing (or is rejected) is dead-lettered to the queue's ``.dlq``
sibling through the ``nazar.dlx`` exchange, where it stays visible and can be
replayed with ``nazar dlq replay``.
"""

from __future__ import annotations

import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractQueue

DEAD_LETTER_EXCHANGE = "nazar.dlx"

#: Accepted sample batches (``SampleBatchV1``), for analysis.
SAMPLES_EXCHANGE = "nazar.samples"
SAMPLES_ROUTING_KEY = "samples.v1"
#: Batches accepted while the database was unreachable, waiting to be stored.
DEFERRED_EXCHANGE = "nazar.ingest.deferred"
DEFERRED_ROUTING_KEY = "deferred.v1"
#: Alert state transitions (``AlertEventV1``), for notification.
ALERTS_EXCHANGE = "nazar.alerts"
ALERTS_ROUTING_KEY = "alert.v1"


@dataclass(frozen=True)
class QueueSpec:
    name: str
    exchange: str
    routing_key: str
    delivery_limit: int = 5
    arguments: dict[str, Any] = field(default_factory=dict)
    #: The dead-letter queue, when shared with other queues (default: ``<name>.dlq``).
    dead_letter: str | None = None

    @property
    def dlq(self) -> str:
        return self.dead_letter or f"{self.name}.dlq"


ANALYZER_SAMPLES = QueueSpec("nazar.analyzer.samples", SAMPLES_EXCHANGE, SAMPLES_ROUTING_KEY)
INGEST_DEFERRED = QueueSpec(
    "nazar.ingest.deferred", DEFERRED_EXCHANGE, DEFERRED_ROUTING_KEY, delivery_limit=1000
)
NOTIFIER_ALERTS = QueueSpec("nazar.notifier.alerts", ALERTS_EXCHANGE, ALERTS_ROUTING_KEY)

EXCHANGES = (SAMPLES_EXCHANGE, DEFERRED_EXCHANGE, ALERTS_EXCHANGE)
#: ANALYZER_SAMPLES itself is no longer fed (batches go to its partitions,
#: below); it is declared for its dead-letter queue, shared by the partitions.
QUEUES = (ANALYZER_SAMPLES, INGEST_DEFERRED, NOTIFIER_ALERTS)

#: Redeliveries a partition message survives: a rebalance or a replica's
#: crash returns every unacknowledged message (up to the checkpoint interval's
#: worth) to its queue, which is no fault of the message.
PARTITION_DELIVERY_LIMIT = 100


def partition_of(host: str, partitions: int) -> int:
    """The analyzer partition of every series of ``host`` (and of the host
    itself): CRC-32 of its name, stable across processes and versions."""
    return zlib.crc32(host.encode()) % partitions


def partition_routing_key(partition: int) -> str:
    return f"{SAMPLES_ROUTING_KEY}.p{partition}"


def analyzer_partition(partition: int) -> QueueSpec:
    """The queue of one analyzer partition: quorum, single active consumer
    (every replica subscribes, the broker delivers to one at a time and hands
    the queue to the next subscriber when it leaves)."""
    return QueueSpec(
        f"{ANALYZER_SAMPLES.name}.p{partition}",
        SAMPLES_EXCHANGE,
        partition_routing_key(partition),
        delivery_limit=PARTITION_DELIVERY_LIMIT,
        arguments={"x-single-active-consumer": True},
        dead_letter=ANALYZER_SAMPLES.dlq,
    )


def analyzer_partitions(partitions: int) -> list[QueueSpec]:
    return [analyzer_partition(p) for p in range(partitions)]


def partitions_declarer(
    partitions: int,
) -> Callable[[AbstractChannel], Awaitable[dict[str, AbstractExchange]]]:
    """Declares the analyzer's partition queues (publishers declare them too:
    a message routed before the analyzer first started is kept, not dropped)."""

    async def declare(channel: AbstractChannel) -> dict[str, AbstractExchange]:
        for spec in analyzer_partitions(partitions):
            await declare_queue(channel, spec)
        return {}

    return declare


async def declare_topology(channel: AbstractChannel) -> dict[str, AbstractExchange]:
    """Declare everything (idempotent). Returns the exchanges by name."""
    dlx = await channel.declare_exchange(
        DEAD_LETTER_EXCHANGE, aio_pika.ExchangeType.DIRECT, durable=True
    )
    exchanges = {DEAD_LETTER_EXCHANGE: dlx}
    for name in EXCHANGES:
        exchanges[name] = await channel.declare_exchange(
            name, aio_pika.ExchangeType.DIRECT, durable=True
        )
    for spec in QUEUES:
        await declare_queue(channel, spec)
    return exchanges


async def declare_queue(channel: AbstractChannel, spec: QueueSpec) -> AbstractQueue:
    """Declare ``spec``'s queue, its dead-letter queue and their bindings
    (idempotent; the exchanges must exist). Consumers call this before every
    subscription, so a queue that was deleted comes back."""
    dlq = await channel.declare_queue(spec.dlq, durable=True, arguments={"x-queue-type": "quorum"})
    await dlq.bind(DEAD_LETTER_EXCHANGE, routing_key=spec.name)
    queue = await channel.declare_queue(
        spec.name,
        durable=True,
        arguments={
            "x-queue-type": "quorum",
            "x-delivery-limit": spec.delivery_limit,
            "x-dead-letter-exchange": DEAD_LETTER_EXCHANGE,
            "x-dead-letter-routing-key": spec.name,
            **spec.arguments,
        },
    )
    await queue.bind(spec.exchange, routing_key=spec.routing_key)
    return queue

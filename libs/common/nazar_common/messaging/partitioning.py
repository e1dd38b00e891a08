"""Routing of sample batches to the analyzer's partitions.

A series goes to the partition of its host
(:func:`~nazar_common.messaging.topology.partition_of`), so the samples of
one host — and the host's own absence state — always meet in the same
partition, in the order they were committed.

Ingest splits a group commit by partition as it writes it: one outbox row
per partition, already addressed to the partition's routing key, which the
relay publishes as it is. :func:`split_batch` splits a batch written
unsplit (to the plain samples routing key, by an ingest of an earlier
version, e.g. during a rolling upgrade) into one message per partition it
touches. The parts keep the batch's id as a namespace
(``uuid5(batch id, partition)``): relaying a batch twice yields the same
message ids.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import orjson

from nazar_common.messaging.topology import (
    SAMPLES_EXCHANGE,
    SAMPLES_ROUTING_KEY,
    partition_of,
    partition_routing_key,
)
from nazar_common.schemas.wire import compress, decompress

#: Parts at least this large are compressed (as ingest does).
COMPRESS_FROM = 4096

#: ``(exchange, routing_key, message_id, body)`` -> ``[(routing_key, message_id, body)]``
Router = Callable[[str, str, str, bytes], list[tuple[str, str, bytes]]]


def part_id(batch_id: str, partition: int) -> str:
    return str(uuid.uuid5(uuid.UUID(batch_id), f"p{partition}"))


def split_batch(body: bytes, partitions: int) -> list[tuple[int, str, bytes]]:
    """``body`` (a SampleBatchV1) as ``(partition, message id, body)`` parts."""
    doc: dict[str, Any] = orjson.loads(decompress(body))
    series: list[dict[str, Any]] = doc["series"]
    of_series = [partition_of(s["host"], partitions) for s in series]
    hosts: dict[str, Any] = doc.get("hosts") or {}
    if len(set(of_series)) <= 1:  # one partition (an agent's push): as it is
        p = of_series[0] if of_series else 0
        return [(p, part_id(doc["id"], p), body)]
    groups: dict[int, tuple[list[int], list[float], list[float]]] = {}
    for i, t, v in zip(doc["series_index"], doc["times"], doc["values"], strict=True):
        idx, times, values = groups.setdefault(of_series[i], ([], [], []))
        idx.append(i)
        times.append(t)
        values.append(v)
    out = []
    for p, (idx, times, values) in sorted(groups.items()):
        used = list(dict.fromkeys(idx))
        position = {i: k for k, i in enumerate(used)}
        part_series = [series[i] for i in used]
        names = {s["host"] for s in part_series}
        data = orjson.dumps({
            **doc,
            "id": part_id(doc["id"], p),
            "series": part_series,
            "series_index": [position[i] for i in idx],
            "times": times,
            "values": values,
            "hosts": {h: labels for h, labels in hosts.items() if h in names},
        })
        out.append((p, part_id(doc["id"], p), compress(data) if len(data) >= COMPRESS_FROM
                    else data))
    return out


def sample_router(partitions: int) -> Router:
    """An outbox router: unsplit sample batches to their partitions, the rest
    (rows already addressed to a partition, other messages) as they are."""

    def route(exchange: str, routing_key: str, message_id: str, body: bytes
              ) -> list[tuple[str, str, bytes]]:
        if exchange != SAMPLES_EXCHANGE or routing_key != SAMPLES_ROUTING_KEY:
            return [(routing_key, message_id, body)]
        return [(partition_routing_key(p), mid, part)
                for p, mid, part in split_batch(body, partitions)]

    return route

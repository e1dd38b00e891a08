"""Ingest's outbox rows reach the analyzer's partition queues: a group
commit's rows (one per partition, written by ``nazar_write_group``) as they
were stored, and a row of the previous version (one unsplit batch) split by
the relay. Real PostgreSQL and RabbitMQ."""

from __future__ import annotations

import time
import uuid
from datetime import timedelta

import aio_pika
import asyncpg
import orjson

from nazar_common.db.backends import PostgresBackend, Retention
from nazar_common.db.migrate import migrate
from nazar_common.db.samples import SeriesKey, SeriesResolver, write_samples_with_outbox
from nazar_common.messaging.broker import Broker
from nazar_common.messaging.partitioning import part_id
from nazar_common.messaging.topology import (
    SAMPLES_EXCHANGE,
    SAMPLES_ROUTING_KEY,
    analyzer_partitions,
    declare_topology,
    partition_of,
    partitions_declarer,
)
from nazar_common.schemas.wire import SampleBatchV1
from nazar_ingest.background import outbox_relay
from nazar_ingest.pipeline import Columns, Parts, columns_message, series_json
from nazar_ingest.samples import BatchBuilder, Limits, NormalizedBatch, parse_json_payload

PARTITIONS = 4
NOW = time.time()


def hosts_in_distinct_partitions(count: int) -> list[str]:
    found: dict[int, str] = {}
    i = 0
    while len(found) < count:
        found.setdefault(partition_of(f"host-{i}", PARTITIONS), f"host-{i}")
        i += 1
    return list(found.values())


def request(host: str, values: list[float]) -> NormalizedBatch:
    doc = {
        "host": host,
        "labels": {"env": "t"},
        "samples": [
            {"metric": "cpu", "value": v, "timestamp": NOW - i} for i, v in enumerate(values)
        ],
    }
    return parse_json_payload(orjson.dumps(doc), BatchBuilder(Limits(100, 0, NOW + 1)), NOW)


async def drain(url: str) -> dict[int, list[aio_pika.abc.AbstractIncomingMessage]]:
    """The messages in each partition queue, in order (consumed: quorum
    queues with a single active consumer do not allow basic.get)."""
    connection = await aio_pika.connect(url)
    out: dict[int, list[aio_pika.abc.AbstractIncomingMessage]] = {}
    try:
        channel = await connection.channel()
        for p, spec in enumerate(analyzer_partitions(PARTITIONS)):
            queue = await channel.declare_queue(spec.name, passive=True)
            count = int(queue.declaration_result.message_count or 0)
            if not count:
                continue
            async with queue.iterator(no_ack=True) as messages:
                async for message in messages:
                    out.setdefault(p, []).append(message)
                    if len(out[p]) == count:
                        break
    finally:
        await connection.close()
    return out


async def test_rows_are_published_as_stored_and_old_rows_are_split(
    fresh_database_url: str, fresh_amqp_url: str
) -> None:
    pool = await asyncpg.create_pool(fresh_database_url, min_size=1, max_size=2)
    broker = Broker(fresh_amqp_url, topology=(declare_topology, partitions_declarer(PARTITIONS)))
    try:
        async with pool.acquire() as conn:
            await migrate(conn, "postgres")
            retention = Retention(timedelta(days=7), timedelta(days=30), timedelta(days=400))
            await PostgresBackend().maintain(conn, retention, rollups=False)
            a, b = hosts_in_distinct_partitions(2)
            batches = [request(a, [1.0, 2.0]), request(b, [3.0]), request(a, [4.0])]
            keys = [SeriesKey("cpu", h, '{"env":"t"}') for h in (a, b)]
            ids = dict(zip(keys, await SeriesResolver().resolve(conn, keys), strict=True))
            series = {sid: series_json(key, sid) for key, sid in ids.items()}
            parts = Parts(PARTITIONS)
            for batch in batches:
                parts.add(batch, [ids[batch.keys[i]] for i in batch.series_index])
            merged = parts.merged()
            rows = parts.outbox(series)
            assert len(rows) == 2
            assert await write_samples_with_outbox(
                conn, ["r1", "r2", "r3"], merged.series_ids, merged.times, merged.values, rows
            )
            # a row as the previous version wrote it, through the function it
            # calls (nazar_write_samples, now a wrapper): the whole group,
            # unsplit (its samples are stored already)
            old = Columns()
            for batch in batches:
                old.add(batch, [ids[batch.keys[i]] for i in batch.series_index])
            old_id = uuid.uuid4()
            await conn.execute(
                "SELECT nazar_write_samples(NULL, now(), '{}', '{}', '{}', $1, $2, $3, $4)",
                SAMPLES_EXCHANGE,
                SAMPLES_ROUTING_KEY,
                old_id,
                columns_message(old, series, old_id),
            )
        await broker.connect()
        relay = outbox_relay(pool, broker, 400, PARTITIONS)
        assert await relay.run_once() == 3
        assert await pool.fetchval("SELECT count(*) FROM outbox") == 0

        got = await drain(fresh_amqp_url)
        stored = {str(mid): (key, body) for _, key, mid, body in rows}
        for host in (a, b):
            p = partition_of(host, PARTITIONS)
            messages = got.pop(p)
            assert len(messages) == 2  # this group's row, then its part of the old row
            new, split = messages
            assert new.routing_key == f"{SAMPLES_ROUTING_KEY}.p{p}"
            assert stored[new.message_id or ""] == (new.routing_key, new.body)
            assert split.message_id == part_id(str(old_id), p)
            for message in (new, split):
                batch = SampleBatchV1.from_bytes(message.body)
                assert {s.host for s in batch.series} == set(batch.hosts) == {host}
                assert batch.values == ([1.0, 2.0, 4.0] if host == a else [3.0])
        assert got == {}  # nothing in the other partitions
    finally:
        await broker.close()
        await pool.close()

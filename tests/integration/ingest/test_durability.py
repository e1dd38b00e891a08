"""A 202 means durable: ingest keeps accepting while PostgreSQL or RabbitMQ is
down (not both), and every accepted sample reaches the database and the
analysis queue once they are back.

The servers here are private instances (their own data directories and
ports), so stopping them disturbs nothing else.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterator

import aio_pika
import asyncpg
import httpx
import pytest

from nazar_common.messaging.topology import analyzer_partition, partition_of
from nazar_common.schemas.wire import SampleBatchV1
from tests.conftest import IngestServer, start_ingest
from tests.support.instances import PrivatePostgres, PrivateRabbitMQ

pytestmark = pytest.mark.slow

HOST_PREFIX = "dur"


@pytest.fixture(scope="module")
def pg() -> Iterator[PrivatePostgres]:
    with PrivatePostgres() as server:
        server.start()
        server.create_database("nazar")
        yield server


@pytest.fixture(scope="module")
def mq() -> Iterator[PrivateRabbitMQ]:
    with PrivateRabbitMQ() as server:
        server.start()
        yield server


@pytest.fixture(scope="module")
async def server(pg: PrivatePostgres, mq: PrivateRabbitMQ) -> AsyncIterator[IngestServer]:
    srv = await start_ingest(pg.dsn("nazar"), mq.url, dependency_timeout=2.0)
    yield srv
    srv.thread.stop()


class Load:
    """Posts 10-sample batches continuously; every sample value is unique, so
    the accepted ones can be counted end to end."""

    def __init__(self, server: IngestServer, tag: str, concurrency: int = 8) -> None:
        self.server = server
        self.tag = tag
        self.concurrency = concurrency
        self.accepted: set[int] = set()
        self.statuses: dict[int, int] = {}
        self.retry_after: list[str] = []
        self._next = 0
        self._stop = asyncio.Event()

    async def _worker(self, client: httpx.AsyncClient) -> None:
        while not self._stop.is_set():
            base = self._next
            self._next += 10
            values = list(range(base, base + 10))
            now = time.time()
            body = {
                "host": f"{HOST_PREFIX}-{self.tag}",
                # Distinct times: samples of one series and time are merged.
                "samples": [
                    {"metric": "dur.seq", "value": v, "timestamp": now + i / 1000}
                    for i, v in enumerate(values)
                ],
            }
            try:
                r = await client.post("/api/v1/metrics", json=body)
            except httpx.HTTPError:
                self.statuses[0] = self.statuses.get(0, 0) + 1
                continue
            self.statuses[r.status_code] = self.statuses.get(r.status_code, 0) + 1
            if r.status_code == 202:
                self.accepted.update(values)
            elif r.status_code == 503:
                self.retry_after.append(r.headers.get("retry-after", ""))
                await asyncio.sleep(0.05)

    async def run(self) -> None:
        async with self.server.client(self.server.ingest_key) as client:
            await asyncio.gather(*(self._worker(client) for _ in range(self.concurrency)))

    def stop(self) -> None:
        self._stop.set()


async def stored_values(database_url: str, tag: str) -> list[int]:
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT s.value FROM samples s JOIN series x ON x.id = s.series_id WHERE x.host = $1",
            f"{HOST_PREFIX}-{tag}",
        )
    finally:
        await conn.close()
    return [int(r["value"]) for r in rows]


async def wait_stored(database_url: str, tag: str, expected: set[int], timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    while True:
        try:
            values = await stored_values(database_url, tag)
        except (OSError, asyncpg.PostgresError):
            values = []
        if set(values) >= expected or time.monotonic() > deadline:
            return values
        await asyncio.sleep(0.5)


async def analysed_values(amqp_url: str, tag: str, expected: set[int], timeout: float) -> set[int]:
    """Drain the analysis queue, collecting this tag's sample values."""
    seen: set[int] = set()
    connection = await aio_pika.connect_robust(amqp_url)
    try:
        channel = await connection.channel()
        queue = await channel.get_queue(
            analyzer_partition(partition_of(f"{HOST_PREFIX}-{tag}", 8)).name, ensure=False)
        done = asyncio.Event()

        async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            # (a partition queue has a single active consumer: no basic.get)
            batch = SampleBatchV1.from_bytes(message.body)
            hosts = [s.host for s in batch.series]
            for idx, value in zip(batch.series_index, batch.values, strict=True):
                if hosts[idx] == f"{HOST_PREFIX}-{tag}":
                    seen.add(int(value))
            await message.ack()
            if expected <= seen:
                done.set()

        await queue.consume(on_message)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), timeout)
    finally:
        await connection.close()
    return seen


async def test_database_outage_under_load(server: IngestServer, pg: PrivatePostgres) -> None:
    load = Load(server, "pgdown")
    task = asyncio.create_task(load.run())
    await asyncio.sleep(2)
    before = len(load.accepted)
    await pg.astop("immediate")  # a crash, not a clean shutdown
    await asyncio.sleep(4)
    during = len(load.accepted) - before
    await pg.astart()
    await asyncio.sleep(3)
    load.stop()
    await task
    assert during > 0, "ingest stopped accepting while only the database was down"
    assert set(load.statuses) == {202}, load.statuses
    values = await wait_stored(server.database_url, "pgdown", load.accepted, timeout=60)
    assert set(values) >= load.accepted, f"{len(load.accepted - set(values))} samples lost"
    assert len(values) == len(set(values)), "samples stored twice"
    assert set(values) <= load.accepted | set(range(load._next))
    seen = await analysed_values(server.amqp_url, "pgdown", load.accepted, timeout=60)
    assert load.accepted <= seen, f"{len(load.accepted - seen)} samples never reached analysis"


async def test_broker_outage_under_load(server: IngestServer, mq: PrivateRabbitMQ) -> None:
    load = Load(server, "mqdown")
    task = asyncio.create_task(load.run())
    await asyncio.sleep(2)
    await mq.astop("kill")
    before = len(load.accepted)
    await asyncio.sleep(4)
    during = len(load.accepted) - before
    await mq.astart()
    await asyncio.sleep(3)
    load.stop()
    await task
    assert during > 0, "ingest stopped accepting while only the broker was down"
    assert set(load.statuses) == {202}, load.statuses
    values = await wait_stored(server.database_url, "mqdown", load.accepted, timeout=30)
    assert set(values) >= load.accepted
    assert len(values) == len(set(values))
    seen = await analysed_values(server.amqp_url, "mqdown", load.accepted, timeout=90)
    assert load.accepted <= seen, f"{len(load.accepted - seen)} samples never reached analysis"


async def test_both_down_answers_503_and_recovers(
    server: IngestServer, pg: PrivatePostgres, mq: PrivateRabbitMQ
) -> None:
    body = {"host": f"{HOST_PREFIX}-both", "samples": [{"metric": "dur.seq", "value": 1}]}
    async with server.client(server.ingest_key) as client:
        assert (await client.post("/api/v1/metrics", json=body)).status_code == 202
        await asyncio.gather(pg.astop("immediate"), mq.astop("kill"))
        try:
            r = await client.post("/api/v1/metrics", json=body)
            assert r.status_code == 503, r.text
            assert int(r.headers["retry-after"]) > 0
            assert r.headers["content-type"].startswith("application/problem+json")
            ready = await client.get("/readyz")
            assert ready.status_code == 503
        finally:
            await asyncio.gather(pg.astart(), mq.astart())
        deadline = time.monotonic() + 60
        while True:
            r = await client.post("/api/v1/metrics", json=body)
            if r.status_code == 202 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
        assert r.status_code == 202

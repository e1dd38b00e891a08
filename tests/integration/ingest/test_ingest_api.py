"""The JSON ingest endpoint against a real server, database and broker."""

from __future__ import annotations

import asyncio
import gzip
import time

import aio_pika
import asyncpg
import orjson

from nazar_common.messaging.topology import analyzer_partition, partition_of
from nazar_common.schemas.wire import SampleBatchV1
from tests.conftest import IngestServer
from tests.integration.protocols.helpers import scalar


async def test_accepts_and_stores_a_batch(ingest_server: IngestServer) -> None:
    now = time.time()
    body = {
        "host": "itest-store-1",
        "labels": {"env": "prod"},
        "samples": [
            {
                "metric": "cpu.usage_percent",
                "value": 12.5,
                "timestamp": now,
                "labels": {"cpu": "total"},
            },
            {
                "metric": "cpu.usage_percent",
                "value": 13.5,
                "timestamp": now + 1,
                "labels": {"cpu": "total"},
            },
            {
                "metric": "mem.used_percent",
                "value": 40,
                "timestamp": "2026-01-01T00:00:00Z",
                "host": "itest-store-2",
            },
        ],
    }
    body["samples"][2]["timestamp"] = now - 5  # within the accepted window
    async with ingest_server.client(ingest_server.ingest_key) as client:
        r = await client.post("/api/v1/metrics", json=body)
    assert r.status_code == 202, r.text
    assert r.json()["accepted"] == 3
    n = await scalar(
        ingest_server.database_url,
        "SELECT count(*) FROM samples s JOIN series x ON x.id = s.series_id "
        "WHERE x.host LIKE 'itest-store-%'",
    )
    assert n == 3
    labels = await scalar(
        ingest_server.database_url,
        "SELECT count(*) FROM series WHERE host = 'itest-store-1' "
        'AND labels = \'{"env": "prod", "cpu": "total"}\'::jsonb',
    )
    assert labels == 1


async def test_gzip_and_rfc3339(ingest_server: IngestServer) -> None:
    ts = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    body = gzip.compress(
        orjson.dumps(
            {
                "host": "itest-gzip",
                "samples": [{"metric": "m.one", "value": 1, "timestamp": ts}],
            }
        )
    )
    async with ingest_server.client(ingest_server.ingest_key) as client:
        r = await client.post(
            "/api/v1/metrics",
            content=body,
            headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
        )
    assert r.status_code == 202, r.text


async def test_invalid_batch_writes_nothing(ingest_server: IngestServer) -> None:
    body = {
        "host": "itest-invalid",
        "samples": [
            {"metric": "ok.metric", "value": 1},
            {"metric": "bad metric", "value": 1},
            {"metric": "ok.metric", "value": "12"},
            {"metric": "ok.metric", "value": 1, "timestamp": time.time() - 10 * 86400},
            {"metric": "ok.metric", "value": 1, "labels": {"bad-label": "x"}},
        ],
    }
    async with ingest_server.client(ingest_server.ingest_key) as client:
        r = await client.post("/api/v1/metrics", json=body)
        assert r.status_code == 400, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        locs = {e["loc"] for e in r.json()["errors"]}
        assert locs == {
            "samples[1].metric",
            "samples[2].value",
            "samples[3].timestamp",
            "samples[4].labels.bad-label",
        }
        # Non-finite numbers are not even valid JSON: rejected with a reason.
        r = await client.post(
            "/api/v1/metrics",
            content=b'{"host": "itest-invalid", "samples": [{"metric": "m", "value": NaN}]}',
        )
        assert r.status_code == 400
        assert "JSON" in r.json()["detail"]
    assert (
        await scalar(
            ingest_server.database_url, "SELECT count(*) FROM series WHERE host = 'itest-invalid'"
        )
        == 0
    )


async def test_auth_and_scopes(ingest_server: IngestServer) -> None:
    body = {"host": "itest-auth", "samples": [{"metric": "m", "value": 1}]}
    async with ingest_server.client("nzr_nope_nope") as client:
        r = await client.post("/api/v1/metrics", json=body)
        assert r.status_code == 401
    async with ingest_server.client(ingest_server.read_key) as client:
        r = await client.post("/api/v1/metrics", json=body)
        assert r.status_code == 403
    async with ingest_server.client(ingest_server.admin_key) as client:
        r = await client.post("/api/v1/metrics", json=body)
        assert r.status_code == 202


async def test_limits(ingest_server: IngestServer) -> None:
    samples = [{"metric": "m", "value": i} for i in range(50_001)]
    async with ingest_server.client(ingest_server.ingest_key) as client:
        r = await client.post("/api/v1/metrics", json={"host": "itest-limit", "samples": samples})
        assert r.status_code == 413
        bomb = gzip.compress(b" " * (11 * 1024 * 1024))
        r = await client.post("/api/v1/metrics", content=bomb, headers={"Content-Encoding": "gzip"})
        assert r.status_code == 413
        r = await client.post("/api/v1/metrics", content=b"{not json")
        assert r.status_code == 400


async def test_idempotency_key_stores_once(ingest_server: IngestServer) -> None:
    body = {"host": "itest-idem", "samples": [{"metric": "m", "value": 1}]}
    async with ingest_server.client(ingest_server.ingest_key) as client:
        first = await client.post("/api/v1/metrics", json=body, headers={"Idempotency-Key": "k-1"})
        second = await client.post("/api/v1/metrics", json=body, headers={"Idempotency-Key": "k-1"})
    assert first.status_code == second.status_code == 202
    assert second.json()["duplicate"] is True
    assert (
        await scalar(
            ingest_server.database_url,
            "SELECT count(*) FROM samples s JOIN series x ON x.id = s.series_id "
            "WHERE x.host = 'itest-idem'",
        )
        == 1
    )


async def test_accepted_batches_reach_the_analysis_queue(ingest_server: IngestServer) -> None:
    body = {"host": "itest-publish", "samples": [{"metric": "m.pub", "value": 7.0}]}
    async with ingest_server.client(ingest_server.ingest_key) as client:
        r = await client.post("/api/v1/metrics", json=body)
    assert r.status_code == 202
    connection = await aio_pika.connect(ingest_server.amqp_url)
    try:
        channel = await connection.channel()
        queue = await channel.get_queue(
            analyzer_partition(partition_of("itest-publish", 8)).name, ensure=False)
        found = asyncio.Event()

        async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            # (a partition queue has a single active consumer: no basic.get)
            batch = SampleBatchV1.from_bytes(message.body)
            await message.ack()
            if any(s.host == "itest-publish" for s in batch.series):
                found.set()

        await queue.consume(on_message)
        await asyncio.wait_for(found.wait(), 10)
        assert found.is_set()
    finally:
        await connection.close()


async def test_unnest_insert_mode_stores_the_same_samples(
    fresh_database_url: str, amqp_url: str
) -> None:
    from tests.conftest import start_ingest

    server = await start_ingest(fresh_database_url, amqp_url, insert_mode="unnest")
    try:
        ts = time.time() - 30.123456
        body = {"host": "itest-unnest", "samples": [
            {"metric": "m.a", "value": 1.5, "timestamp": ts},
            {"metric": "m.b", "value": -2.25, "timestamp": "2026-11-25T10:00:00.5Z"},
        ]}
        body["samples"][1]["timestamp"] = ts + 1.5
        async with server.client(server.ingest_key) as client:
            r = await client.post("/api/v1/metrics", json=body)
        assert r.status_code == 202, r.text
        conn = await asyncpg.connect(fresh_database_url)
        try:
            rows = await conn.fetch(
                "SELECT extract(epoch FROM s.time)::float8 AS t, s.value, x.metric "
                "FROM samples s JOIN series x ON x.id = s.series_id ORDER BY x.metric"
            )
        finally:
            await conn.close()
        assert [(r["metric"], r["value"]) for r in rows] == [("m.a", 1.5), ("m.b", -2.25)]
        assert abs(rows[0]["t"] - ts) < 1e-6 and abs(rows[1]["t"] - (ts + 1.5)) < 1e-6
    finally:
        server.thread.stop()

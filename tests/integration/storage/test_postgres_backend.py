"""The plain-PostgreSQL storage path: migrations, partitions, retention, rollups."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from nazar_common.db.backends import PostgresBackend, Retention
from nazar_common.db.migrate import load_migrations, migrate
from nazar_common.db.samples import (
    SeriesKey,
    SeriesResolver,
    array_literal,
    insert_samples,
    write_samples_with_outbox,
)
from nazar_common.errors import PermanentError

RET = Retention(timedelta(days=3), timedelta(days=10), timedelta(days=60))
NOW = datetime(2026, 6, 15, 12, 0, 30, tzinfo=UTC)


@pytest.fixture
async def conn(fresh_database_url: str) -> AsyncIterator[asyncpg.Connection]:
    c = await asyncpg.connect(fresh_database_url)
    await migrate(c, "postgres")
    yield c
    await c.close()


async def test_concurrent_migrators_apply_each_migration_once(fresh_database_url: str) -> None:
    conns = [await asyncpg.connect(fresh_database_url) for _ in range(4)]
    try:
        results = await asyncio.gather(*(migrate(c, "auto") for c in conns))
        assert sum(applied for _, applied in results) == len(load_migrations("postgres"))
        assert {backend for backend, _ in results} == {"postgres"}
        assert await conns[0].fetchval("SELECT count(*) FROM schema_migrations") == len(
            load_migrations("postgres")
        )
        with pytest.raises(PermanentError):
            await migrate(conns[0], "timescaledb")
    finally:
        for c in conns:
            await c.close()


async def test_partitions_are_created_ahead_and_dropped_by_retention(
    conn: asyncpg.Connection,
) -> None:
    backend = PostgresBackend()
    report = await backend.maintain(conn, RET, now=NOW, accept_past=timedelta(days=1))
    raw = {n for n in report.partitions_created if n.startswith("samples_p")}
    assert "samples_p20260615" in raw and "samples_p20260617" in raw  # today + 2 days ahead
    assert "samples_p20260613" in raw  # the accepted past window
    # A sample for each day can now be written; a month later, they expire.
    resolver = SeriesResolver()
    [sid] = await resolver.resolve(conn, [SeriesKey("m", "h", "{}")])
    await insert_samples(conn, [sid], [NOW], [1.0])
    # The partition of 06-15 ends 06-16 00:00: with 3 days of retention it is
    # kept while now < 06-19 00:00, then dropped whole.
    later = NOW + timedelta(days=2)
    report = await backend.maintain(conn, RET, now=later, accept_past=timedelta(days=1))
    assert "samples_p20260615" not in report.partitions_dropped
    assert await conn.fetchval("SELECT count(*) FROM samples") == 1
    later = NOW + timedelta(days=5)
    report = await backend.maintain(conn, RET, now=later, accept_past=timedelta(days=1))
    assert "samples_p20260615" in report.partitions_dropped
    assert await conn.fetchval("SELECT count(*) FROM samples") == 0
    # Idempotent: a second run creates and drops nothing.
    again = await backend.maintain(conn, RET, now=later, accept_past=timedelta(days=1))
    assert again.partitions_created == [] and again.partitions_dropped == []


async def test_rollups_follow_the_watermark_and_late_samples(conn: asyncpg.Connection) -> None:
    backend = PostgresBackend()
    await backend.maintain(conn, RET, now=NOW, accept_past=timedelta(days=1), rollups=False)
    resolver = SeriesResolver()
    [sid] = await resolver.resolve(conn, [SeriesKey("cpu", "h1", "{}")])
    t0 = datetime(2026, 6, 15, 10, 0, tzinfo=UTC)
    times = [t0 + timedelta(seconds=10 * i) for i in range(12)]  # 2 minutes
    values = [float(i) for i in range(12)]
    async with conn.transaction():
        await backend.prepare_write(conn, min(times))
        await insert_samples(conn, [sid] * 12, times, values)
    await backend.refresh_rollups(conn, now=NOW)
    rows = await conn.fetch("SELECT * FROM samples_1m ORDER BY bucket")
    assert [(r["count"], r["sum"], r["min"], r["max"], r["last"]) for r in rows] == [
        (6, 15.0, 0.0, 5.0, 5.0),
        (6, 51.0, 6.0, 11.0, 11.0),
    ]
    hour = await conn.fetchrow("SELECT * FROM samples_1h")
    assert (hour["bucket"], hour["count"], hour["sum"], hour["min"], hour["max"], hour["last"]) == (
        datetime(2026, 6, 15, 10, tzinfo=UTC),
        12,
        66.0,
        0.0,
        11.0,
        11.0,
    )
    # A late sample below the watermark is recorded and folded in next time.
    async with conn.transaction():
        await backend.prepare_write(conn, t0 + timedelta(seconds=5))
        await insert_samples(conn, [sid], [t0 + timedelta(seconds=5)], [100.0])
    assert await conn.fetchval("SELECT count(*) FROM rollup_invalidations") == 1
    await backend.refresh_rollups(conn, now=NOW)
    first = await conn.fetchrow("SELECT * FROM samples_1m ORDER BY bucket LIMIT 1")
    assert (first["count"], first["sum"], first["max"]) == (7, 115.0, 100.0)
    hour = await conn.fetchrow("SELECT * FROM samples_1h")
    assert (hour["count"], hour["max"]) == (13, 100.0)
    assert await conn.fetchval("SELECT count(*) FROM rollup_invalidations") == 0


async def test_one_statement_write_records_keys_samples_and_outbox(
    conn: asyncpg.Connection,
) -> None:
    backend = PostgresBackend()
    await backend.maintain(conn, RET, now=NOW, accept_past=timedelta(days=1), rollups=False)
    ids = await SeriesResolver().resolve(
        conn, [SeriesKey("cpu", "h1", "{}"), SeriesKey("m", "h1", "{}")]
    )
    t0 = NOW.timestamp() - 60
    message_ids = [uuid.uuid4(), uuid.uuid4()]
    written = await write_samples_with_outbox(
        conn,
        ["req-1", "req-2"],
        [ids[0], ids[1], ids[0]],
        [t0, t0, t0 + 10.000001],
        [1.5, -2.0, 1e300],
        [
            ("nazar.samples", "samples.v1.p0", message_ids[0], b"\x04\x22\x4d\x18body"),
            ("nazar.samples", "samples.v1.p3", message_ids[1], b"{}"),
        ],
    )
    assert written
    rows = await conn.fetch("SELECT time, series_id, value FROM samples ORDER BY time, series_id")
    assert [(r["time"].timestamp(), r["series_id"], r["value"]) for r in rows] == [
        (t0, ids[0], 1.5),
        (t0, ids[1], -2.0),
        (t0 + 10.000001, ids[0], 1e300),
    ]
    assert {r["key"] for r in await conn.fetch("SELECT key FROM ingest_requests")} == {
        "req-1",
        "req-2",
    }
    outbox = await conn.fetch("SELECT exchange, routing_key, message_id, body FROM outbox")
    assert sorted(tuple(r) for r in outbox) == [
        ("nazar.samples", "samples.v1.p0", message_ids[0], b"\x04\x22\x4d\x18body"),
        ("nazar.samples", "samples.v1.p3", message_ids[1], b"{}"),
    ]

    # A group holding a request already stored writes nothing at all.
    again = await write_samples_with_outbox(
        conn, ["req-3", "req-2"], [ids[1]], [t0 + 1], [7.0], [("x", "y", uuid.uuid4(), b"{}")]
    )
    assert not again
    assert await conn.fetchval("SELECT count(*) FROM samples") == 3
    assert await conn.fetchval("SELECT count(*) FROM ingest_requests") == 2
    assert await conn.fetchval("SELECT count(*) FROM outbox") == 2


async def test_one_statement_write_records_late_samples_for_the_rollups(
    conn: asyncpg.Connection,
) -> None:
    backend = PostgresBackend()
    await backend.maintain(conn, RET, now=NOW, accept_past=timedelta(days=1), rollups=False)
    [sid] = await SeriesResolver().resolve(conn, [SeriesKey("cpu", "h1", "{}")])
    await backend.refresh_rollups(conn, now=NOW)  # sets the watermark
    watermark = await conn.fetchval(
        "SELECT watermark FROM rollup_watermarks WHERE resolution = '1m'"
    )
    late = watermark.timestamp() - 120
    outbox = [("x", "y", uuid.uuid4(), b"{}")]
    assert await write_samples_with_outbox(conn, ["k"], [sid], [late], [1.0], outbox)
    row = await conn.fetchrow("SELECT start_time, end_time FROM rollup_invalidations")
    assert (row["start_time"].timestamp(), row["end_time"]) == (late, watermark)


def test_array_literal_is_exact_for_floats() -> None:
    values = [0.1, -2.5e-308, 1.7976931348623157e308, 12, 43.29123887123012]
    text = array_literal(values)
    assert text.startswith("{") and text.endswith("}")
    assert [float(x) for x in text[1:-1].split(",")] == values
    assert array_literal([]) == "{}"

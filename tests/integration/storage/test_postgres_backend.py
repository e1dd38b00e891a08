"""The plain-PostgreSQL storage path: migrations, partitions, retention, rollups."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from nazar_common.db.backends import PostgresBackend, Retention
from nazar_common.db.migrate import load_migrations, migrate
from nazar_common.db.samples import SeriesKey, SeriesResolver, insert_samples
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

"""The TimescaleDB storage path against a real TimescaleDB (the PGlite build).

Run alone with: .venv/bin/python -m pytest tests/integration/timescale -q
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg

from nazar_common.db.backends import (
    BUCKET_ORIGIN,
    PostgresBackend,
    Retention,
    backend_for,
)
from nazar_common.db.migrate import Backend, load_migrations, migrate
from nazar_common.db.samples import (
    SeriesKey,
    SeriesResolver,
    canonical_labels,
    insert_samples,
    write_samples_with_outbox,
)
from nazar_common.db.timescale import (
    COMPRESSION,
    REFRESH,
    RETENTION,
    TimescaleBackend,
)

ROLLUP_COLUMNS = [
    ("bucket", "timestamp with time zone"),
    ("series_id", "bigint"),
    ("count", "bigint"),
    ("sum", "double precision"),
    ("min", "double precision"),
    ("max", "double precision"),
    ("last", "double precision"),
]

RETENTION_DEFAULT = Retention(
    raw=timedelta(days=7), rollup_1m=timedelta(days=30), rollup_1h=timedelta(days=365)
)


#: Refresh lookback of the backends the data tests use. The first refresh of
#: an empty aggregate walks its whole window in batches of about one bucket,
#: which takes seconds per day of 1-minute buckets on the WASM server; 4.5
#: hours covers the test data (at most 4 hours old where a refresh policy must
#: see it). The policy test checks the production default.
TEST_LOOKBACK = timedelta(hours=4, minutes=30)


def floor(ts: datetime, width: timedelta) -> datetime:
    return BUCKET_ORIGIN + ((ts - BUCKET_ORIGIN) // width) * width


async def make_series(conn: asyncpg.Connection, *metrics: str) -> list[int]:
    keys = [SeriesKey(m, "host-1", canonical_labels({"env": "test"})) for m in metrics]
    async with conn.transaction():
        return await SeriesResolver().resolve(conn, keys)


async def write(conn: asyncpg.Connection, rows: Sequence[tuple[int, datetime, float]]) -> None:
    # COPY FROM STDIN is not supported by PGlite: the unnest INSERT path.
    async with conn.transaction():
        await insert_samples(
            conn,
            [r[0] for r in rows],
            [r[1] for r in rows],
            [r[2] for r in rows],
            use_copy=False,
        )


@dataclass(frozen=True)
class Agg:
    count: int
    sum: float
    min: float
    max: float
    last: float


def expected_rollup(
    rows: Sequence[tuple[int, datetime, float]], width: timedelta
) -> dict[tuple[datetime, int], Agg]:
    groups: dict[tuple[datetime, int], list[tuple[datetime, float]]] = defaultdict(list)
    for sid, ts, value in rows:
        groups[(floor(ts, width), sid)].append((ts, value))
    return {
        key: Agg(
            count=len(points),
            sum=sum(v for _, v in points),
            min=min(v for _, v in points),
            max=max(v for _, v in points),
            last=max(points)[1],
        )
        for key, points in groups.items()
    }


async def fetch_rollup(
    conn: asyncpg.Connection, view: str, series: Sequence[int]
) -> dict[tuple[datetime, int], Agg]:
    rows = await conn.fetch(
        f"SELECT bucket, series_id, count, sum, min, max, last FROM {view} "
        "WHERE series_id = ANY($1::bigint[])",
        list(series),
    )
    return {
        (r["bucket"], r["series_id"]): Agg(r["count"], r["sum"], r["min"], r["max"], r["last"])
        for r in rows
    }


async def chunks(conn: asyncpg.Connection, relation: str) -> list[asyncpg.Record]:
    """Chunks of a hypertable or continuous aggregate of the test's schema."""
    rows: list[asyncpg.Record] = await conn.fetch(
        """
        SELECT c.chunk_name, c.range_start, c.range_end, c.is_compressed
        FROM timescaledb_information.chunks c
        LEFT JOIN timescaledb_information.continuous_aggregates ca
               ON ca.materialization_hypertable_schema = c.hypertable_schema
              AND ca.materialization_hypertable_name = c.hypertable_name
        WHERE coalesce(ca.view_schema, c.hypertable_schema) = current_schema()
          AND coalesce(ca.view_name, c.hypertable_name) = $1
        ORDER BY c.range_start
        """,
        relation,
    )
    return rows


# --- schema ---------------------------------------------------------------


async def test_auto_migration_picks_timescaledb(
    conn: asyncpg.Connection, first_migration: tuple[Backend, int]
) -> None:
    # The backend was left to "auto": the extension exists in the database,
    # so the migrator chose timescaledb, then applied every migration
    # of that path: 0001 (shared), 0002 (this path's variant) and any later.
    expected = load_migrations("timescaledb")
    assert first_migration == ("timescaledb", len(expected))
    assert await conn.fetchval("SELECT current_schema()") == "public"
    assert await conn.fetchval("SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'")
    assert (
        await conn.fetchval("SELECT value FROM nazar_meta WHERE key = 'storage_backend'")
        == "timescaledb"
    )
    versions = await conn.fetch("SELECT version, name FROM schema_migrations ORDER BY version")
    assert [(r["version"], r["name"]) for r in versions] == [(m.version, m.name) for m in expected]
    assert [(r["version"], r["name"]) for r in versions][:2] == [(1, "core"), (2, "samples")]
    assert "create_hypertable" in expected[1].sql
    # The core migration applied here too.
    for table in ("api_keys", "series", "hosts", "ingest_requests", "outbox", "rules", "channels"):
        assert await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", table), table
    # The plain path's bookkeeping tables are not part of this path.
    assert not await conn.fetchval("SELECT to_regclass('rollup_watermarks') IS NOT NULL")
    # Nothing left to apply; the recorded backend sticks.
    assert await migrate(conn, "auto") == ("timescaledb", 0)
    assert isinstance(backend_for("timescaledb"), TimescaleBackend)
    assert backend_for("timescaledb").name == "timescaledb"


async def test_samples_is_a_hypertable_with_day_chunks(db: asyncpg.Connection) -> None:
    row = await db.fetchrow(
        "SELECT * FROM timescaledb_information.hypertables "
        "WHERE hypertable_schema = current_schema() AND hypertable_name = 'samples'"
    )
    assert row is not None
    assert row["compression_enabled"] is True
    dim = await db.fetchrow(
        "SELECT column_name, time_interval FROM timescaledb_information.dimensions "
        "WHERE hypertable_schema = current_schema() AND hypertable_name = 'samples'"
    )
    assert (dim["column_name"], dim["time_interval"]) == ("time", timedelta(days=1))
    indexdef = await db.fetchval(
        "SELECT indexdef FROM pg_indexes "
        "WHERE schemaname = current_schema() AND indexname = 'samples_series_time_idx'"
    )
    assert indexdef is not None and '(series_id, "time" DESC)' in indexdef
    columns = await db.fetch(
        "SELECT column_name, data_type, is_nullable FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND table_name = 'samples' ORDER BY ordinal_position"
    )
    assert [tuple(r) for r in columns] == [
        ("time", "timestamp with time zone", "NO"),
        ("series_id", "bigint", "NO"),
        ("value", "double precision", "NO"),
    ]


async def test_compression_settings(db: asyncpg.Connection) -> None:
    rows = await db.fetch(
        "SELECT attname, segmentby_column_index, orderby_column_index, orderby_asc "
        "FROM timescaledb_information.compression_settings "
        "WHERE hypertable_schema = current_schema() AND hypertable_name = 'samples' "
        "ORDER BY attname"
    )
    assert [tuple(r) for r in rows] == [
        ("series_id", 1, None, None),
        ("time", None, 1, False),
    ]


async def test_continuous_aggregates_match_the_plain_rollup_tables(db: asyncpg.Connection) -> None:
    caggs = {
        r["view_name"]: r
        for r in await db.fetch(
            "SELECT * FROM timescaledb_information.continuous_aggregates "
            "WHERE view_schema = current_schema()"
        )
    }
    assert set(caggs) == {"samples_1m", "samples_1h"}
    assert caggs["samples_1m"]["hypertable_name"] == "samples"
    # Hierarchical: samples_1h reads samples_1m's materialization hypertable.
    assert (
        caggs["samples_1h"]["hypertable_name"]
        == caggs["samples_1m"]["materialization_hypertable_name"]
    )
    assert all(c["materialized_only"] for c in caggs.values())
    for view in ("samples_1m", "samples_1h"):
        columns = await db.fetch(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position",
            view,
        )
        assert [tuple(r) for r in columns] == ROLLUP_COLUMNS, view
    widths = {
        r["hypertable_name"]: r["time_interval"]
        for r in await db.fetch("SELECT * FROM timescaledb_information.dimensions")
    }
    assert widths[caggs["samples_1m"]["materialization_hypertable_name"]] == timedelta(days=1)
    assert widths[caggs["samples_1h"]["materialization_hypertable_name"]] == timedelta(days=28)


# --- policies -------------------------------------------------------------


def by_kind(jobs: Sequence[asyncpg.Record]) -> dict[tuple[str, str], asyncpg.Record]:
    result = {(j["proc_name"], j["relation"]): j for j in jobs}
    assert len(result) == len(jobs), "one job per policy kind and relation"
    return result


async def test_configure_sets_and_replaces_policies(db: asyncpg.Connection) -> None:
    backend = TimescaleBackend()
    assert await backend.jobs(db) == []
    await backend.configure(db, RETENTION_DEFAULT)
    jobs = by_kind(await backend.jobs(db))
    assert set(jobs) == {
        (REFRESH, "samples_1m"),
        (REFRESH, "samples_1h"),
        (COMPRESSION, "samples"),
        (RETENTION, "samples"),
        (RETENTION, "samples_1m"),
        (RETENTION, "samples_1h"),
    }
    refresh_1m = jobs[(REFRESH, "samples_1m")]
    assert refresh_1m["start_offset"] == TimescaleBackend.REFRESH_LOOKBACK
    assert refresh_1m["end_offset"] == timedelta(minutes=1)
    assert refresh_1m["schedule_interval"] == timedelta(minutes=1)
    refresh_1h = jobs[(REFRESH, "samples_1h")]
    assert refresh_1h["end_offset"] == timedelta(hours=1)
    assert refresh_1h["start_offset"] > refresh_1m["start_offset"]
    assert jobs[(COMPRESSION, "samples")]["compress_after"] == timedelta(days=2)
    assert jobs[(RETENTION, "samples")]["drop_after"] == timedelta(days=7)
    assert jobs[(RETENTION, "samples_1m")]["drop_after"] == timedelta(days=30)
    assert jobs[(RETENTION, "samples_1h")]["drop_after"] == timedelta(days=365)

    # Same settings again: the very same jobs are kept.
    ids = {k: j["job_id"] for k, j in jobs.items()}
    await backend.configure(db, RETENTION_DEFAULT)
    assert {k: j["job_id"] for k, j in by_kind(await backend.jobs(db)).items()} == ids

    # Other retention: the affected policies are replaced, the rest kept.
    await backend.configure(
        db,
        Retention(
            raw=timedelta(days=14), rollup_1m=timedelta(days=30), rollup_1h=timedelta(days=90)
        ),
    )
    jobs = by_kind(await backend.jobs(db))
    assert jobs[(RETENTION, "samples")]["drop_after"] == timedelta(days=14)
    assert jobs[(RETENTION, "samples_1h")]["drop_after"] == timedelta(days=90)
    assert jobs[(RETENTION, "samples")]["job_id"] != ids[(RETENTION, "samples")]
    assert jobs[(RETENTION, "samples_1m")]["job_id"] == ids[(RETENTION, "samples_1m")]
    assert jobs[(REFRESH, "samples_1m")]["job_id"] == ids[(REFRESH, "samples_1m")]

    # Raw data kept less than the compression age: no compression policy,
    # and the refresh window stays inside the raw data.
    await backend.configure(
        db,
        Retention(
            raw=timedelta(days=1), rollup_1m=timedelta(days=30), rollup_1h=timedelta(days=90)
        ),
    )
    jobs = by_kind(await backend.jobs(db))
    assert (COMPRESSION, "samples") not in jobs
    assert jobs[(RETENTION, "samples")]["drop_after"] == timedelta(days=1)
    assert jobs[(REFRESH, "samples_1m")]["start_offset"] < timedelta(days=1)
    # TimescaleDB itself agrees there is no compression job on samples.
    assert not await db.fetchval(
        "SELECT count(*) FROM timescaledb_information.jobs "
        "WHERE proc_name = 'policy_compression' AND hypertable_schema = current_schema()"
    )

    report = await backend.maintain(db, RETENTION_DEFAULT)
    assert report.partitions_created == report.partitions_dropped == []


# --- data -----------------------------------------------------------------


async def test_rollups_after_running_the_jobs(db: asyncpg.Connection) -> None:
    backend = TimescaleBackend(refresh_lookback=TEST_LOOKBACK)
    await backend.configure(db, RETENTION_DEFAULT)
    cpu, mem = await make_series(db, "cpu", "mem")
    # Two whole hours, ending at least an hour ago (inside both refresh windows).
    base = floor(datetime.now(UTC) - timedelta(hours=3), timedelta(hours=1))
    rows: list[tuple[int, datetime, float]] = []
    for minute in (0, 1, 2, 59, 60, 61, 119):
        for second, value in ((5, 1.0), (20, 4.5), (50, -2.0)):
            ts = base + timedelta(minutes=minute, seconds=second)
            rows.append((cpu, ts, value + minute))
            rows.append((mem, ts, 100.0 - value * minute))
    # The last sample of a bucket is the latest in time, not the last written.
    rows.append((cpu, base + timedelta(minutes=1, seconds=30), 1000.0))
    rows.reverse()
    await write(db, rows)
    assert await fetch_rollup(db, "samples_1m", [cpu, mem]) == {}

    ran = await backend.run_jobs(db)
    assert len(ran) == 6
    assert await fetch_rollup(db, "samples_1m", [cpu, mem]) == expected_rollup(
        rows, timedelta(minutes=1)
    )
    assert await fetch_rollup(db, "samples_1h", [cpu, mem]) == expected_rollup(
        rows, timedelta(hours=1)
    )
    assert (await fetch_rollup(db, "samples_1h", [cpu]))[(base, cpu)].count == 13

    # A late sample below the materialized range: TimescaleDB's invalidation
    # log makes the next refreshes redo the minute, then the hour from it.
    late = (cpu, base + timedelta(minutes=2, seconds=59), 7777.0)
    await write(db, [late])
    rows.append(late)
    await backend.run_jobs(db)
    minutes = await fetch_rollup(db, "samples_1m", [cpu, mem])
    assert minutes == expected_rollup(rows, timedelta(minutes=1))
    assert minutes[(base + timedelta(minutes=2), cpu)].last == 7777.0
    hours = await fetch_rollup(db, "samples_1h", [cpu, mem])
    assert hours == expected_rollup(rows, timedelta(hours=1))
    assert hours[(base, cpu)].max == 7777.0


async def test_bucket_sql_groups_like_the_plain_path(db: asyncpg.Connection) -> None:
    (sid,) = await make_series(db, "bucketed")
    start = datetime.now(UTC) - timedelta(days=2)
    # Irregular times over two days, values that sum exactly.
    rows = [
        (sid, start + timedelta(seconds=97 * i + (i * i) % 61), float(i % 17)) for i in range(1800)
    ]
    await write(db, rows)
    timescale_sql = TimescaleBackend().bucket_sql("$1", "time")
    plain_sql = PostgresBackend().bucket_sql("$1", "time")
    assert timescale_sql.startswith("time_bucket(")
    for width in (
        timedelta(minutes=1),
        timedelta(minutes=7),
        timedelta(minutes=15),
        timedelta(hours=1),
        timedelta(hours=5),
        timedelta(days=1),
    ):
        result = await db.fetch(
            f"SELECT {timescale_sql} AS bucket, {plain_sql} AS plain, "
            "count(*) AS n, sum(value) AS total "
            "FROM samples WHERE series_id = $2 GROUP BY 1, 2 ORDER BY 1",
            width,
            sid,
        )
        expected = expected_rollup(rows, width)
        assert {(r["bucket"], sid): (r["n"], r["total"]) for r in result} == {
            k: (a.count, a.sum) for k, a in expected.items()
        }, width
        assert all(r["bucket"] == r["plain"] for r in result), width


async def test_retention_drops_old_chunks(db: asyncpg.Connection) -> None:
    backend = TimescaleBackend(refresh_lookback=TEST_LOOKBACK)
    retention = Retention(
        raw=timedelta(days=3), rollup_1m=timedelta(days=5), rollup_1h=timedelta(days=60)
    )
    await backend.configure(db, retention)
    (sid,) = await make_series(db, "disk")
    now = datetime.now(UTC)
    # Ages keep each group's chunks clearly on one side of every cutoff.
    ages = {
        "old": timedelta(days=10),
        "middle": timedelta(days=4, hours=1),
        "recent": timedelta(hours=2),
    }
    rows = [
        (sid, now - age + timedelta(seconds=s), float(s))
        for age in ages.values()
        for s in (0, 10, 20)
    ]
    await write(db, rows)
    day = timedelta(days=1)
    assert len(await chunks(db, "samples")) == len({floor(t, day) for _, t, _ in rows})
    # Roll the old data up by hand (it is outside the policies' windows).
    lo = floor(now - ages["old"], timedelta(hours=1))
    await db.execute(
        "CALL refresh_continuous_aggregate('samples_1m', $1::timestamptz, $2::timestamptz)",
        lo,
        lo + timedelta(hours=2),
    )
    await db.execute(
        "CALL refresh_continuous_aggregate('samples_1h', $1::timestamptz, $2::timestamptz)",
        lo,
        lo + timedelta(hours=2),
    )
    assert await db.fetchval(
        "SELECT count(*) FROM samples_1m WHERE bucket < $1", lo + timedelta(hours=2)
    )
    assert await db.fetchval(
        "SELECT count(*) FROM samples_1h WHERE bucket < $1", lo + timedelta(hours=2)
    )

    await backend.run_jobs(db)

    # Raw: chunks older than 3 days are gone, the recent one stays.
    remaining = await db.fetch("SELECT time FROM samples WHERE series_id = $1 ORDER BY time", sid)
    assert [r["time"] for r in remaining] == sorted(
        t for _, t, _ in rows if t > now - timedelta(days=1)
    )
    assert [c["range_start"] for c in await chunks(db, "samples")] == sorted(
        {floor(t, day) for _, t, _ in rows if t > now - day}
    )
    # 1m rollup (5 days): the 10-day-old minutes are dropped.
    assert not await db.fetchval(
        "SELECT count(*) FROM samples_1m WHERE bucket < $1", now - timedelta(days=5)
    )
    # 1h rollup (60 days): the old hour outlives its raw data.
    old_hour = await db.fetchrow(
        "SELECT count, sum FROM samples_1h WHERE bucket = $1",
        floor(now - ages["old"], timedelta(hours=1)),
    )
    assert old_hour is not None and (old_hour["count"], old_hour["sum"]) == (3, 30.0)


async def test_compression_job_compresses_old_chunks(db: asyncpg.Connection) -> None:
    backend = TimescaleBackend(refresh_lookback=TEST_LOOKBACK)
    await backend.configure(db, RETENTION_DEFAULT)
    a, b = await make_series(db, "net.rx", "net.tx")
    now = datetime.now(UTC)
    old = now - timedelta(days=3, hours=1)
    rows = [
        (sid, ts + timedelta(seconds=15 * i), float(i))
        for sid in (a, b)
        for ts in (old, now - timedelta(hours=2))
        for i in range(40)
    ]
    await write(db, rows)
    totals = await db.fetchrow("SELECT count(*) AS n, sum(value) AS s FROM samples")
    day, compress_after = timedelta(days=1), TimescaleBackend.COMPRESS_AFTER
    before = {c["range_start"]: c["is_compressed"] for c in await chunks(db, "samples")}
    assert before == {floor(t, day): False for _, t, _ in rows}

    await backend.run_jobs(db)

    after = {c["range_start"]: c["is_compressed"] for c in await chunks(db, "samples")}
    # Chunks older than compress_after (2 days) are compressed, no others.
    expected = {floor(t, day): t < now - compress_after for _, t, _ in rows}
    assert after == expected
    assert True in expected.values()
    stats = await db.fetch(
        "SELECT * FROM chunk_compression_stats('samples') WHERE compression_status = 'Compressed'"
    )
    assert len(stats) == list(expected.values()).count(True)
    # Same data, read through the compressed chunk.
    assert await db.fetchrow("SELECT count(*) AS n, sum(value) AS s FROM samples") == totals
    per_series = await db.fetch(
        "SELECT series_id, count(*) AS n, max(time) AS last FROM samples "
        "WHERE time < $1 GROUP BY 1 ORDER BY 1",
        now - timedelta(days=2),
    )
    assert [(r["series_id"], r["n"]) for r in per_series] == [(a, 40), (b, 40)]
    # Late samples can still land in a compressed chunk.
    await write(db, [(a, old + timedelta(minutes=30), 99.0)])
    assert (
        await db.fetchval(
            "SELECT count(*) FROM samples WHERE series_id = $1 AND time < $2",
            a,
            now - timedelta(days=2),
        )
        == 41
    )


async def test_one_statement_write_into_the_hypertable(db: asyncpg.Connection) -> None:
    """Ingest's group commit (``nazar_write_group``, migration 0016)."""
    ids = await make_series(db, "cpu", "mem")
    t0 = datetime.now(UTC).replace(microsecond=250_000).timestamp() - 3600
    message_id = uuid.uuid4()
    outbox = [("nazar.samples", "samples.v1.p1", message_id, b"body")]
    written = await write_samples_with_outbox(
        db, ["a", "b"], [ids[0], ids[1]], [t0, t0 + 0.5], [1.0, 2.0], outbox
    )
    assert written
    rows = await db.fetch("SELECT time, series_id, value FROM samples ORDER BY time")
    assert [(r["time"].timestamp(), r["series_id"], r["value"]) for r in rows] == [
        (t0, ids[0], 1.0),
        (t0 + 0.5, ids[1], 2.0),
    ]
    chunks = await db.fetchval(
        "SELECT count(*) FROM timescaledb_information.chunks "
        "WHERE hypertable_schema = current_schema() AND hypertable_name = 'samples'"
    )
    assert chunks >= 1
    assert await db.fetchval("SELECT message_id FROM outbox") == message_id
    # A group with a request already stored writes nothing.
    assert not await write_samples_with_outbox(db, ["b", "c"], [ids[0]], [t0], [9.0], outbox)
    assert await db.fetchval("SELECT count(*) FROM samples") == 2
    assert await db.fetchval("SELECT count(*) FROM ingest_requests") == 2

"""The two time-series storage paths behind one interface.

``PostgresBackend`` is plain PostgreSQL: day partitions created ahead of
time, retention by dropping whole partitions, and the ``samples_1m`` /
``samples_1h`` rollup tables refreshed incrementally from a watermark plus a
log of late writes. ``TimescaleBackend`` gets the same results from
TimescaleDB itself (hypertable, compression and retention policies,
continuous aggregates); its SQL lives in ``timescale.sql``-style migrations
and :mod:`nazar_common.db.timescale`.

Both expose the same tables to readers: ``samples(time, series_id, value)``
and rollups ``samples_1m`` / ``samples_1h`` with
``(bucket, series_id, count, sum, min, max, last)``.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import asyncpg

from nazar_common.db.migrate import Backend

log = logging.getLogger(__name__)

#: Origin of every time bucket (a Monday, as TimescaleDB's default).
BUCKET_ORIGIN = datetime(2000, 1, 3, tzinfo=UTC)

#: Advisory-lock keys: writers hold the rollup lock shared while they commit,
#: the rollup refresher holds it exclusively while it moves the watermark.
ROLLUP_LOCK_KEY = 0x4E415A5231
MAINTENANCE_LOCK_KEY = 0x4E415A4D31


@dataclass(frozen=True)
class Retention:
    raw: timedelta
    rollup_1m: timedelta
    rollup_1h: timedelta


@dataclass
class MaintenanceReport:
    partitions_created: list[str] = field(default_factory=list)
    partitions_dropped: list[str] = field(default_factory=list)
    rollup_ranges: int = 0


class StorageBackend(ABC):
    name: Backend

    @abstractmethod
    def bucket_sql(self, interval_param: str, column: str) -> str:
        """SQL expression bucketing ``column`` by the interval in ``interval_param``."""

    @abstractmethod
    async def prepare_write(self, conn: asyncpg.Connection, min_time: datetime) -> None:
        """Called inside a write transaction before samples are inserted."""

    @abstractmethod
    async def configure(self, conn: asyncpg.Connection, retention: Retention) -> None:
        """Apply retention and background policies (idempotent; at every start)."""

    @abstractmethod
    async def maintain(
        self,
        conn: asyncpg.Connection,
        retention: Retention,
        *,
        now: datetime | None = None,
        accept_past: timedelta = timedelta(days=1),
        accept_future: timedelta = timedelta(hours=1),
    ) -> MaintenanceReport:
        """Periodic housekeeping: partitions, retention, rollups."""


def _floor(ts: datetime, width: timedelta) -> datetime:
    n = (ts - BUCKET_ORIGIN) // width
    return BUCKET_ORIGIN + n * width


@dataclass(frozen=True)
class PartitionedTable:
    name: str
    width: timedelta
    retention_attr: str


class PostgresBackend(StorageBackend):
    name: Backend = "postgres"

    TABLES = (
        PartitionedTable("samples", timedelta(days=1), "raw"),
        PartitionedTable("samples_1m", timedelta(days=1), "rollup_1m"),
        PartitionedTable("samples_1h", timedelta(days=28), "rollup_1h"),
    )
    #: Partitions kept ready beyond the accepted future window.
    AHEAD = timedelta(days=2)
    #: The 1m rollup lags real time by this much so in-flight minutes settle.
    ROLLUP_LAG = timedelta(minutes=1)

    def bucket_sql(self, interval_param: str, column: str) -> str:
        return f"date_bin({interval_param}, {column}, TIMESTAMPTZ '2000-01-03 00:00:00+00')"

    async def prepare_write(self, conn: asyncpg.Connection, min_time: datetime) -> None:
        # Shared rollup lock, and late samples recorded for the refresher:
        # in SQL (migration 0006), which ingest's one-statement write calls too.
        await conn.execute("SELECT nazar_prepare_write($1)", min_time)

    async def configure(self, conn: asyncpg.Connection, retention: Retention) -> None:
        await self.maintain(conn, retention, rollups=False)

    async def ensure_partitions(
        self, conn: asyncpg.Connection, table: PartitionedTable, start: datetime, end: datetime
    ) -> list[str]:
        created = []
        existing = await self.partitions(conn, table)
        lo = _floor(start, table.width)
        while lo <= end:
            name = f"{table.name}_p{lo:%Y%m%d}"
            if name not in existing:
                hi = lo + table.width
                await conn.execute(
                    f"CREATE TABLE IF NOT EXISTS {name} PARTITION OF {table.name} "
                    f"FOR VALUES FROM ('{lo.isoformat()}') TO ('{hi.isoformat()}')"
                )
                created.append(name)
            lo += table.width
        return created

    async def partitions(self, conn: asyncpg.Connection, table: PartitionedTable) -> set[str]:
        rows = await conn.fetch(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = $1::regclass",
            table.name,
        )
        return {r["relname"] for r in rows}

    async def drop_expired(
        self, conn: asyncpg.Connection, table: PartitionedTable, cutoff: datetime
    ) -> list[str]:
        dropped = []
        prefix = f"{table.name}_p"
        for name in sorted(await self.partitions(conn, table)):
            try:
                lo = datetime.strptime(name[len(prefix) :], "%Y%m%d").replace(tzinfo=UTC)
            except ValueError:
                continue
            if lo + table.width <= cutoff:
                await conn.execute(f"DROP TABLE IF EXISTS {name}")
                dropped.append(name)
        return dropped

    async def maintain(
        self,
        conn: asyncpg.Connection,
        retention: Retention,
        *,
        now: datetime | None = None,
        accept_past: timedelta = timedelta(days=1),
        accept_future: timedelta = timedelta(hours=1),
        rollups: bool = True,
    ) -> MaintenanceReport:
        now = now or datetime.now(UTC)
        report = MaintenanceReport()
        await conn.execute("SELECT pg_advisory_lock($1)", MAINTENANCE_LOCK_KEY)
        try:
            for table in self.TABLES:
                keep: timedelta = getattr(retention, table.retention_attr)
                start = now - min(keep, accept_past + timedelta(days=1))
                report.partitions_created += await self.ensure_partitions(
                    conn, table, start, now + accept_future + self.AHEAD
                )
                report.partitions_dropped += await self.drop_expired(conn, table, now - keep)
            if rollups:
                report.rollup_ranges = await self.refresh_rollups(conn, now=now)
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", MAINTENANCE_LOCK_KEY)
        if report.partitions_created or report.partitions_dropped:
            log.info(
                "partitions maintained",
                # Not "created": that is a LogRecord attribute, and logging
                # refuses to overwrite it (a KeyError at INFO level).
                extra={
                    "partitions_created": report.partitions_created,
                    "partitions_dropped": report.partitions_dropped,
                },
            )
        return report

    async def refresh_rollups(
        self, conn: asyncpg.Connection, *, now: datetime | None = None
    ) -> int:
        """Bring ``samples_1m`` and ``samples_1h`` up to date. Returns ranges refreshed."""
        now = now or datetime.now(UTC)
        target = _floor(now - self.ROLLUP_LAG, timedelta(minutes=1))
        async with conn.transaction():
            # Exclusive: waits for in-flight writers, which then see the new mark.
            await conn.execute("SELECT pg_advisory_xact_lock($1)", ROLLUP_LOCK_KEY)
            old = await conn.fetchval(
                "SELECT watermark FROM rollup_watermarks WHERE resolution = '1m' FOR UPDATE"
            )
            if old is None:
                first = await conn.fetchval("SELECT min(time) FROM samples")
                old = _floor(first, timedelta(minutes=1)) if first is not None else target
                await conn.execute(
                    "INSERT INTO rollup_watermarks (resolution, watermark) VALUES ('1m', $1)",
                    target if target > old else old,
                )
            elif target > old:
                await conn.execute(
                    "UPDATE rollup_watermarks SET watermark = $1 WHERE resolution = '1m'", target
                )
        ranges: list[tuple[datetime, datetime]] = []
        if target > old:
            ranges.append((old, target))
        async with conn.transaction():
            rows = await conn.fetch(
                "DELETE FROM rollup_invalidations RETURNING start_time, end_time"
            )
            ranges += [(r["start_time"], r["end_time"]) for r in rows]
            for lo, hi in _merge_ranges(ranges):
                lo = _floor(lo, timedelta(minutes=1))
                hi = _floor(hi - timedelta(microseconds=1), timedelta(minutes=1)) + timedelta(
                    minutes=1
                )
                await conn.execute(_ROLLUP_1M_SQL, lo, hi)
                hlo = _floor(lo, timedelta(hours=1))
                hhi = _floor(hi - timedelta(microseconds=1), timedelta(hours=1)) + timedelta(
                    hours=1
                )
                await conn.execute(_ROLLUP_1H_SQL, hlo, hhi)
        return len(ranges)


def _merge_ranges(ranges: list[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    merged: list[tuple[datetime, datetime]] = []
    for lo, hi in sorted(ranges):
        if merged and lo <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(hi, merged[-1][1]))
        else:
            merged.append((lo, hi))
    return merged


_ROLLUP_1M_SQL = """
INSERT INTO samples_1m (bucket, series_id, count, sum, min, max, last)
SELECT date_bin(INTERVAL '1 minute', time, TIMESTAMPTZ '2000-01-03 00:00:00+00') AS bucket,
       series_id, count(*), sum(value), min(value), max(value),
       (array_agg(value ORDER BY time DESC))[1]
FROM samples
WHERE time >= $1 AND time < $2
GROUP BY 1, 2
ON CONFLICT (series_id, bucket) DO UPDATE SET
    count = EXCLUDED.count, sum = EXCLUDED.sum, min = EXCLUDED.min,
    max = EXCLUDED.max, last = EXCLUDED.last
"""

_ROLLUP_1H_SQL = """
INSERT INTO samples_1h (bucket, series_id, count, sum, min, max, last)
SELECT date_bin(INTERVAL '1 hour', bucket, TIMESTAMPTZ '2000-01-03 00:00:00+00') AS hour,
       series_id, sum(count), sum(sum), min(min), max(max),
       (array_agg(last ORDER BY bucket DESC))[1]
FROM samples_1m
WHERE bucket >= $1 AND bucket < $2
GROUP BY 1, 2
ON CONFLICT (series_id, bucket) DO UPDATE SET
    count = EXCLUDED.count, sum = EXCLUDED.sum, min = EXCLUDED.min,
    max = EXCLUDED.max, last = EXCLUDED.last
"""


def backend_for(name: Backend, accept_past: timedelta | None = None) -> StorageBackend:
    """The backend called ``name``. ``accept_past`` (how old an accepted sample
    may be) lets TimescaleDB's aggregate refresh look back far enough to fold
    in late samples."""
    if name == "timescaledb":
        from nazar_common.db.timescale import TimescaleBackend

        if accept_past is not None:
            return TimescaleBackend(refresh_lookback=accept_past + timedelta(hours=2))
        return TimescaleBackend()
    return PostgresBackend()

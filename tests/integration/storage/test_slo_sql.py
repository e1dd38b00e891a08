"""Availability and SLO sums across the raw samples and the 1-minute
rollups (plain PostgreSQL): to the second where raw samples are read, to the
minute before, and the same event sums whichever table holds them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import pytest

from nazar_common.db import slo as slo_sql
from nazar_common.db.backends import PostgresBackend
from nazar_common.db.migrate import migrate
from nazar_common.schemas.slo import SLOSpec

END = datetime(2026, 6, 15, 12, 0, tzinfo=UTC).timestamp()
DAY = 86400.0
RAW_FROM = END - 3 * DAY  # raw samples are read from here on
START = END - 10 * DAY


@pytest.fixture
async def conn(fresh_database_url: str) -> AsyncIterator[asyncpg.Connection]:
    c = await asyncpg.connect(fresh_database_url)
    await migrate(c, "postgres")
    backend = PostgresBackend()
    for table in backend.TABLES:
        await backend.ensure_partitions(c, table, datetime.fromtimestamp(START - DAY, UTC),
                                        datetime.fromtimestamp(END + DAY, UTC))
    await c.execute(
        "INSERT INTO hosts (host, labels, first_seen, last_seen, last_sample) "
        "VALUES ('h1', '{\"role\": \"web\"}', $1, $2, $2)",
        datetime.fromtimestamp(START - DAY, UTC), datetime.fromtimestamp(END, UTC))
    yield c
    await c.close()


async def _series(c: asyncpg.Connection, metric: str) -> int:
    return int(await c.fetchval(
        "INSERT INTO series (metric, host) VALUES ($1, 'h1') RETURNING id", metric))


async def test_availability_is_exact_on_raw_samples_and_to_the_minute_on_rollups(
    conn: asyncpg.Connection,
) -> None:
    sid = await _series(conn, "up")
    gap_raw = (END - 2 * DAY + 5.5, END - 2 * DAY + 1005.5)  # no raw sample inside
    # raw samples every 10 s (offset 0.5 s) over the last three days
    await conn.execute(
        "INSERT INTO samples (time, series_id, value) SELECT to_timestamp(t::float8), $1, 1 "
        "FROM generate_series($2::numeric, $3::numeric, 10) AS t "
        "WHERE NOT (t > $4 AND t < $5)",
        sid, RAW_FROM + 0.5, END - 0.5, gap_raw[0], gap_raw[1])
    # before: one rollup row a minute, 30 minutes missing five days ago
    hole = END - 5 * DAY
    await conn.execute(
        "INSERT INTO samples_1m (bucket, series_id, count, sum, min, max, last) "
        "SELECT to_timestamp(t::float8), $1, 6, 6, 1, 1, 1 "
        "FROM generate_series($2::numeric, $3::numeric, 60) AS t "
        "WHERE NOT (t >= $4 AND t < $5)",
        sid, START - 600, RAW_FROM - 60, hole, hole + 1800)
    (host,) = await slo_sql.hosts_in(conn, START)
    found = await slo_sql.host_availability(conn, [host], START, END, 300.0, RAW_FROM)
    outages = sorted(found["h1"].outages, key=lambda o: o.start)
    assert len(outages) == 2
    rolled, raw = outages
    # rollups: a minute with data counts as present throughout
    assert rolled.start == pytest.approx(hole - 0.001, abs=1e-3)
    assert rolled.end == pytest.approx(hole + 1800, abs=1e-3)
    # raw: from the last sample before the silence to the first after, to the second
    last_before = RAW_FROM + 0.5 + 10 * ((gap_raw[0] - RAW_FROM - 0.5) // 10)
    first_after = last_before + 10 * (1 + (gap_raw[1] - last_before) // 10)
    assert (raw.start, raw.end) == pytest.approx((last_before, first_after), abs=1e-6)
    assert found["h1"].monitored == 10 * DAY


async def test_event_sums_agree_across_raw_samples_and_rollups(
    conn: asyncpg.Connection,
) -> None:
    """100 requests a minute, 99 good, for ten days, in both tables (as the
    rollup refresher leaves them): the window sums read rollups before the
    last day and raw samples after, and count every minute once."""
    for metric, value in (("req.total", 100), ("req.good", 99)):
        sid = await _series(conn, metric)
        await conn.execute(
            "INSERT INTO samples (time, series_id, value) SELECT to_timestamp(t::float8), $1, $4 "
            "FROM generate_series($2::numeric, $3::numeric, 60) AS t",
            sid, START - 300 + 0.25, END - 60 + 0.25, float(value))
        await conn.execute(
            "INSERT INTO samples_1m (bucket, series_id, count, sum, min, max, last) "
            "SELECT to_timestamp(t::float8), $1, 1, $4, $4, $4, $4 "
            "FROM generate_series($2::numeric, $3::numeric, 60) AS t",
            sid, START - 300, END - 60, float(value))
        await conn.execute(
            "INSERT INTO samples_1h (bucket, series_id, count, sum, min, max, last) "
            "SELECT to_timestamp(t::float8), $1, 60, $4 * 60, $4, $4, $4 "
            "FROM generate_series($2::numeric, $3::numeric, 3600) AS t",
            sid, START - 3600, END - 3600, float(value))
    spec = SLOSpec.model_validate({
        "name": "x", "objective": 99.5, "window": "10d",
        "selector": {"match_labels": {"role": "web"}},
        "indicator": {"kind": "ratio", "good": {"metric": "req.good"},
                      "total": {"metric": "req.total"}}})
    window, day, hour = await slo_sql.measure(
        conn, spec, [START, END - DAY, END - 3600], END, RAW_FROM)
    assert slo_sql.hour_span([START, END - DAY, END - 3600], END - DAY) == (START, END - DAY)
    assert (window.total, window.good) == (14400 * 100, 14400 * 99)
    assert (day.total, day.good) == (1440 * 100, 1440 * 99)
    assert (hour.total, hour.good) == (6000, 5940)
    assert window.burn_rate(spec.budget) == pytest.approx(2.0)
    # a window starting within a minute, five days ago: minutes up to the next
    # whole hour, hours, then minutes and raw samples again
    k = END - 5 * DAY - 1234
    assert slo_sql.hour_span([k], END - DAY) == (END - 5 * DAY, END - DAY)
    (odd,) = await slo_sql.measure(conn, spec, [k], END, RAW_FROM)
    assert (odd.total, odd.good) == ((7200 + 20) * 100, (7200 + 20) * 99)

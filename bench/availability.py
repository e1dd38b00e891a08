#!/usr/bin/env python3
"""Availability and SLO measurement benchmark, on a database of its own.

Builds a fleet in a fresh database: ``--hosts`` hosts with ``--series``
series each, a sample every ``--interval`` seconds over ``--days`` days (raw
samples, plus the 1-minute rollups where the period reaches beyond
``--raw-days``), each host silent now and then. Then times, several times:

1. availability of every host over the period, grouped by a host label
   (``nazar_common.db.slo.host_availability``: the presence query and the
   outage arithmetic, what ``GET /api/v1/reports/availability`` runs);
2. a ratio SLO's good / total sums over its window and the four burn-rate
   windows (what ``GET /api/v1/slos`` and a ``burn_rate`` rule run);
3. an availability SLO over the same windows.

Prints what it measured, on what, and how busy the machine was.

    python bench/availability.py --hosts 50 --series 10 --days 1
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import secrets
import statistics
import time
from datetime import UTC, datetime

import asyncpg

from nazar_common.db import slo as slo_sql
from nazar_common.db.backends import PostgresBackend
from nazar_common.db.migrate import migrate
from nazar_common.schemas.slo import SLOSpec

ADMIN_URL = os.environ.get("NAZAR_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def _with_db(url: str, name: str) -> str:
    return url.rsplit("/", 1)[0] + "/" + name


async def build(conn: asyncpg.Connection, args: argparse.Namespace, now: float) -> int:
    await migrate(conn, "postgres")
    backend = PostgresBackend()
    start = now - args.days * 86400
    for table in backend.TABLES:
        await backend.ensure_partitions(conn, table, datetime.fromtimestamp(start - 86400, UTC),
                                        datetime.fromtimestamp(now + 86400, UTC))
    raw_from = now - args.raw_days * 86400
    for h in range(args.hosts):
        host = f"bench-{h:04d}"
        await conn.execute(
            "INSERT INTO hosts (host, labels, first_seen, last_seen, last_sample) "
            "VALUES ($1, $2::jsonb, $3, $4, $4)",
            host, f'{{"role": "r{h % 5}"}}', datetime.fromtimestamp(start, UTC),
            datetime.fromtimestamp(now, UTC))
        ids = [await conn.fetchval(
            "INSERT INTO series (metric, host) VALUES ($1, $2) RETURNING id", f"m{k}", host)
            for k in range(args.series)]
        await conn.execute(
            "INSERT INTO series (metric, host) VALUES ('req.ok', $1), ('req.total', $1)", host)
        ids += [r["id"] for r in await conn.fetch(
            "SELECT id FROM series WHERE host = $1 AND metric LIKE 'req.%'", host)]
        # silent for 15 minutes once every ~6 hours, at a host-specific phase
        phase = (h * 977) % 21600
        await conn.execute(
            "INSERT INTO samples (time, series_id, value) "
            "SELECT to_timestamp(t::float8), sid, 1000 FROM unnest($1::bigint[]) AS sid, "
            "generate_series($2::numeric, $3::numeric, $4::numeric) AS t "
            "WHERE mod((t::bigint + $5), 21600) >= 900",
            ids, max(start, raw_from), now, args.interval, phase)
        # the rollups of the whole period, as the refresher leaves them
        await conn.execute(
            "INSERT INTO samples_1m (bucket, series_id, count, sum, min, max, last) "
            "SELECT to_timestamp(t::float8), sid, 6, 6000, 1000, 1000, 1000 "
            "FROM unnest($1::bigint[]) AS sid, generate_series($2::numeric, $3::numeric, 60) "
            "AS t WHERE mod((t::bigint + $4), 21600) >= 900",
            ids, start - start % 60, now - 60, phase)
        await conn.execute(
            "INSERT INTO samples_1h (bucket, series_id, count, sum, min, max, last) "
            "SELECT to_timestamp(t::float8), sid, 330, 330000, 1000, 1000, 1000 "
            "FROM unnest($1::bigint[]) AS sid, generate_series($2::numeric, $3::numeric, 3600) "
            "AS t", ids, start - start % 3600, now - 3600)
    await conn.execute("ANALYZE")
    return int(await conn.fetchval("SELECT count(*) FROM samples"))


async def timed(what: str, runs: int, fn) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        await fn()
        times.append(time.perf_counter() - t)
    median = statistics.median(times)
    print(f"  {what}: median {median * 1000:.0f} ms, min {min(times) * 1000:.0f} ms "
          f"({runs} runs)")
    return median


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", type=int, default=50)
    parser.add_argument("--series", type=int, default=10, help="series per host")
    parser.add_argument("--days", type=float, default=1.0)
    parser.add_argument("--raw-days", type=float, default=7.0)
    parser.add_argument("--interval", type=float, default=10.0)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    name = f"nazar_bench_avail_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(ADMIN_URL)
    await admin.execute(f'CREATE DATABASE "{name}"')
    now = time.time()
    try:
        conn = await asyncpg.connect(_with_db(ADMIN_URL, name))
        try:
            t = time.perf_counter()
            raw = await build(conn, args, now)
            print(f"fleet: {args.hosts} hosts x {args.series + 2} series, a sample every "
                  f"{args.interval:g} s over {args.days:g} days ({raw:,} raw samples, read for "
                  f"the last {args.raw_days:g} days; rollups), built in "
                  f"{time.perf_counter() - t:.0f} s")
            start, cut = now - args.days * 86400, now - args.raw_days * 86400
            hosts = await slo_sql.hosts_in(conn, start)

            async def availability() -> None:
                found = await slo_sql.host_availability(conn, hosts, start, now, 300.0, cut)
                assert all(a.outages for a in found.values())

            ratio = SLOSpec.model_validate({
                "name": "b", "objective": 99.9, "window": args.days * 86400,
                "indicator": {"kind": "ratio", "good": {"metric": "req.ok"},
                              "total": {"metric": "req.total"}}})
            avail = SLOSpec.model_validate({
                "name": "a", "objective": 99.9, "window": args.days * 86400,
                "selector": {"match_labels": {"role": "r0"}},
                "indicator": {"kind": "availability"}})
            windows = [start, now - 21600, now - 3600, now - 1800, now - 300]
            print(f"timings ({platform.machine()}, {os.cpu_count()} CPUs, load average "
                  f"{os.getloadavg()[0]:.2f} at start, PostgreSQL "
                  f"{conn.get_server_version().major}):")
            await timed(f"availability of {len(hosts)} hosts over {args.days:g} d", args.runs,
                        availability)
            await timed("ratio SLO, window + 4 burn windows", args.runs,
                        lambda: slo_sql.measure(conn, ratio, windows, now, cut))
            await timed(f"availability SLO over {args.hosts // 5} hosts, window + 4 burn "
                        "windows", args.runs,
                        lambda: slo_sql.measure(conn, avail, windows, now, cut))
            print(f"load average at the end: {os.getloadavg()[0]:.2f}")
        finally:
            await conn.close()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


if __name__ == "__main__":
    asyncio.run(main())

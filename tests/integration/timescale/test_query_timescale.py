"""Range queries and host rates on the TimescaleDB path (the PGlite stand-in
server of tests/integration/timescale): the same SQL gives the same answers
with ``time_bucket`` and continuous aggregates."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import asyncpg
import orjson

from nazar_common.db import queries
from nazar_common.db.backends import Retention
from nazar_common.db.samples import (
    SeriesKey,
    SeriesResolver,
    canonical_labels,
    insert_samples,
    to_datetimes,
    upsert_hosts,
)
from nazar_common.db.timescale import TimescaleBackend
from tests.integration.query.test_query_api import AGGS, expected

LIMITS = queries.QueryLimits(
    max_points=1000, max_series=10,
    retention_raw=timedelta(days=7), retention_1m=timedelta(days=30),
)


async def test_range_queries_on_timescaledb(db: asyncpg.Connection) -> None:
    backend = TimescaleBackend(refresh_lookback=timedelta(hours=6))
    await backend.configure(db, Retention(timedelta(days=7), timedelta(days=30),
                                          timedelta(days=400)))
    now = datetime.now(UTC).timestamp()
    base = math.floor(now / 3600) * 3600 - 3 * 3600
    pts = [(base + 5 + i * 20.0, float((i * 5) % 9) - 1.5) for i in range(360)]  # two hours
    keys = [SeriesKey("ts.q", "ts-host", canonical_labels({"dev": "a"}))] * len(pts)
    ids = await SeriesResolver().resolve(db, keys)
    await insert_samples(db, ids, to_datetimes([t for t, _ in pts]), [v for _, v in pts],
                         use_copy=False)
    await upsert_hosts(db, {"ts-host": ("{}", to_datetimes([pts[-1][0]])[0])})
    await backend.run_jobs(db)

    async def run(step: float | None, agg: str, start: float, end: float) -> dict[str, object]:
        plan = queries.plan_query(start, end, step, agg, now, LIMITS)
        return await queries.query_range(
            db, backend, plan, metric="ts.q", host=None, labels={"dev": "a"}, limits=LIMITS
        )

    body = await run(None, "avg", base, base + 600)
    assert body["source"] == "raw"
    [series] = body["series"]  # type: ignore[misc]
    points = orjson.loads(orjson.dumps(series["points"]))
    assert points == [[t, v] for t, v in pts if t < base + 600]
    end = base + 7200
    for step, source in ((30, "raw"), (300, "1m"), (3600, "1h")):
        for agg in AGGS:
            body = await run(step, agg, base, end)
            assert body["source"] == source
            [series] = body["series"]  # type: ignore[misc]
            got = orjson.loads(orjson.dumps(series["points"]))
            want = expected(pts, step, agg, base, end)
            assert [p[0] for p in got] == [w[0] for w in want], (step, agg)
            assert [p[1] for p in got] == [w[1] for w in want], (step, agg)

    hosts, window = await queries.list_hosts(
        db, backend, now=datetime.now(UTC), stale_after=timedelta(seconds=60)
    )
    assert window.source == "raw"
    assert [(h["host"], h["series_count"], h["status"]) for h in hosts] == [
        ("ts-host", 1, "stale")]

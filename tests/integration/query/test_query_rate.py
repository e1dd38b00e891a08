"""The counter aggregations (``agg=rate`` / ``increase``) of GET /api/v1/query,
and the hosts' default staleness threshold, against a real server.

Like test_query_api.py, the module runs its own ingest server (own database
and vhost) with small caps and maintenance effectively off; samples are
written straight to the database and the rollups refreshed by the test.
"""

from __future__ import annotations

import math
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.conftest import IngestServer, private_database, private_vhost, start_ingest
from tests.integration.query.test_query_api import Row, insert_direct, ok, problem

MAX_POINTS = 800
#: The server's NAZAR_HOST_STALE_AFTER (two hours, not the default 60 s).
STALE_AFTER = 7200.0


@pytest.fixture(scope="module")
async def server(session_token: str) -> AsyncIterator[IngestServer]:
    token = f"{session_token}_query_rate"
    async with private_database(token) as url:
        with private_vhost(token) as amqp:
            srv = await start_ingest(
                url, amqp, query_max_points=MAX_POINTS, query_max_series=5,
                maintenance_interval=3600, host_stale_after=STALE_AFTER,
            )
            yield srv
            srv.thread.stop()


async def query(srv: IngestServer, **params: Any) -> dict[str, Any]:
    async with srv.client(srv.read_key) as client:
        return ok(await client.get("/api/v1/query", params=params))


async def query_error(srv: IngestServer, *words: str, **params: Any) -> str:
    async with srv.client(srv.read_key) as client:
        return problem(await client.get("/api/v1/query", params=params), *words)


def counter(times: list[float], per_sample: float, resets: dict[float, float],
            first: float = 1000.0) -> list[tuple[float, float]]:
    """A counter growing by ``per_sample`` per sample, restarting at
    ``resets[t]`` at the listed sample times."""
    points = []
    value = first
    for i, t in enumerate(times):
        if t in resets:
            value = resets[t]
        elif i:
            value += per_sample
        points.append((t, value))
    return points


async def test_rate_of_raw_samples_handles_a_counter_reset(server: IngestServer) -> None:
    base = math.floor(time.time() / 3600) * 3600 - 2 * 3600
    # +50 every 10 s (5/s) for 30 minutes; at base+603 the counter restarts at 20.
    times = [base + 3 + 10.0 * i for i in range(180)]
    reset = base + 603
    pts = counter(times, 50, {reset: 20})
    await insert_direct(server.database_url,
                        [("qr-raw", "q.bytes_total", {"dev": "eth0"}, t, v) for t, v in pts])
    start, end = base + 300, base + 1500

    body = await query(server, metric="q.bytes_total", start=start, end=end, step="30s",
                       agg="rate")
    assert (body["source"], body["step"], body["agg"], body["start"]) == ("raw", 30, "rate",
                                                                          start)
    [series] = body["series"]
    assert (series["host"], series["labels"]) == ("qr-raw", {"dev": "eth0"})
    # Every 30 s bucket is complete, the first one too (its first interval
    # starts before `start`); the reset bucket gains 20 + 50 + 50 over 30 s.
    want = [[b, 4.0 if b == base + 600 else 5.0] for b in range(start, end, 30)]
    assert series["points"] == want

    # With one sample per bucket, the first bucket's only interval starts
    # before `start`: it still has a rate.
    body = await query(server, metric="q.bytes_total", start=start, end=end, step="10s",
                       agg="rate")
    got = body["series"][0]["points"]
    assert [p[0] for p in got] == list(range(start, end, 10))
    assert got[0] == [start, 5.0] and got[30] == [base + 600, 2.0]

    body = await query(server, metric="q.bytes_total", start=start, end=end, step="30s",
                       agg="increase")
    assert body["agg"] == "increase"
    assert body["series"][0]["points"] == [[t, v * 30] for t, v in want]

    # Without a step a counter aggregation still gets one (here 60 s, from the
    # 1-minute rollup's last values): the reset minute gains 20 + 5 x 50.
    body = await query(server, metric="q.bytes_total", start=start, end=end, agg="rate")
    assert (body["source"], body["step"]) == ("1m", 60)
    assert body["series"][0]["points"] == [
        [b, 4.5 if b == base + 600 else 5.0] for b in range(start, end, 60)
    ]
    # Gauges without a step still return raw points.
    body = await query(server, metric="q.bytes_total", start=start, end=end)
    assert body["step"] is None and len(body["series"][0]["points"]) == 120


async def test_rate_from_the_rollups_over_days(server: IngestServer) -> None:
    base = math.floor(time.time() / 3600) * 3600 - 3 * 86400
    times = [base + 7 + 30.0 * i for i in range(3 * 2880)]  # 3 days, every 30 s
    # +150 per sample (5/s). Two restarts at 2: at the first sample of a
    # minute (the rollup's last values see the whole increase), and at the
    # second sample of a minute (the minute's last IS the restart, so the
    # 150 gained before it in that minute is not counted).
    first_reset_minute = base + 86400 + 180
    second_reset_minute = base + 2 * 86400 + 7200 + 300
    pts = counter(times, 150, {first_reset_minute + 7: 2, second_reset_minute + 37: 2})
    await insert_direct(server.database_url,
                        [("qr-long", "q.ops_total", {}, t, v) for t, v in pts])
    start, end = base + 3600, base + 3 * 86400 - 3600

    body = await query(server, metric="q.ops_total", start=start, end=end, agg="rate")
    # 70 h with no step: the automatic step (10 min) reads the 1-minute rollup.
    assert (body["source"], body["step"], body["start"]) == ("1m", 600, start)
    got = body["series"][0]["points"]
    special = {
        first_reset_minute - 180: (9 * 300 + 2 + 150) / 600,  # exact: 2 + 150 in the minute
        second_reset_minute - 300: (9 * 300 + 2) / 600,  # undercounted by 150
    }
    want = [[b, special.get(b, 5.0)] for b in range(start, end, 600)]
    assert len(got) == len(want) == 420
    assert [p[0] for p in got] == [w[0] for w in want]
    assert [p[1] for p in got] == pytest.approx([w[1] for w in want], rel=1e-12)

    body = await query(server, metric="q.ops_total", start=start, end=end, step="1h",
                       agg="increase")
    assert (body["source"], body["step"]) == ("1h", 3600)
    got = body["series"][0]["points"]
    assert [p[0] for p in got] == list(range(start, end, 3600))
    reset_hours = {first_reset_minute - 180, second_reset_minute - 300}
    for t, v in got:
        if t in reset_hours:  # the restarted value only: less than a full hour's increase
            assert 0 < v < 5 * 3600
        else:
            assert v == 5 * 3600


async def test_counter_aggregation_bad_combinations_are_400(server: IngestServer) -> None:
    now = math.floor(time.time())
    # 1 sample per second for 2.5 h: more raw values than a rate may read
    # (10 x query_max_points = 8000) at a sub-minute step.
    rows: list[Row] = [("qr-dense", "q.dense_total", {}, now - 9000 + i, float(i))
                       for i in range(9000)]
    await insert_direct(server.database_url, rows)
    await query_error(server, "rate over this range reads more than 8000 values",
                      "larger step", metric="q.dense_total", start=now - 9000, end=now,
                      step="30s", agg="rate")
    # A whole number of minutes reads the rollup: 150 rows, fine.
    body = await query(server, metric="q.dense_total", start=now - 9000, end=now, step="1m",
                       agg="rate")
    assert body["source"] == "1m"
    assert {p[1] for p in body["series"][0]["points"]} == {1.0}

    await query_error(server, "over the limit of 800", metric="q.dense_total",
                      start="now-30d", step="60s", agg="rate")
    await query_error(server, "at least 1 second", metric="q.dense_total", step="0.5",
                      agg="increase")
    detail = await query_error(server, "agg must be one of", metric="q.dense_total",
                               agg="irate")
    assert "rate" in detail and "increase" in detail
    await query_error(server, "start must be before end", metric="q.dense_total",
                      start=now, end=now - 60, agg="rate")


async def test_hosts_stale_after_defaults_to_the_setting(server: IngestServer) -> None:
    now = time.time()
    await insert_direct(server.database_url, [
        ("qr-host-recent", "h.one", {}, now - 10, 1.0),
        ("qr-host-1h", "h.one", {}, now - 3600, 1.0),
        ("qr-host-3h", "h.one", {}, now - 3 * 3600, 1.0),
    ])
    async with server.client(server.read_key) as client:
        async def statuses(**params: str) -> dict[str, str]:
            body = ok(await client.get("/api/v1/hosts", params=params))
            hosts = body["hosts"]
            return {h["host"]: h["status"] for h in hosts if h["host"].startswith("qr-host-")}

        # NAZAR_HOST_STALE_AFTER is 2 h on this server.
        assert await statuses() == {
            "qr-host-1h": "up", "qr-host-3h": "stale", "qr-host-recent": "up"}
        assert await statuses(stale_after="60s") == {
            "qr-host-1h": "stale", "qr-host-3h": "stale", "qr-host-recent": "up"}
        detail = ok(await client.get("/api/v1/hosts/qr-host-1h"))
        assert detail["status"] == "up"
        detail = ok(await client.get("/api/v1/hosts/qr-host-1h",
                                     params={"stale_after": "30m"}))
        assert detail["status"] == "stale"


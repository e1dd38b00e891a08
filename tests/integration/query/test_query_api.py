"""The read API (query, series, metric names, hosts) against a real server.

The module runs its own ingest server (own database and vhost) with small
caps and maintenance effectively off, so rollups change only when a test
refreshes them and old partitions are not dropped under the tests' feet.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
import pytest

from nazar_common.db.backends import BUCKET_ORIGIN, MAINTENANCE_LOCK_KEY, PostgresBackend
from nazar_common.db.samples import (
    SeriesKey,
    SeriesResolver,
    canonical_labels,
    insert_samples,
    to_datetimes,
    upsert_hosts,
)
from tests.conftest import IngestServer, private_database, private_vhost, start_ingest

MAX_POINTS = 800
MAX_SERIES = 5
ORIGIN = BUCKET_ORIGIN.timestamp()

Row = tuple[str, str, dict[str, str], float, float]  # host, metric, labels, time, value


@pytest.fixture(scope="module")
async def server(session_token: str) -> AsyncIterator[IngestServer]:
    token = f"{session_token}_query"
    async with private_database(token) as url:
        with private_vhost(token) as amqp:
            srv = await start_ingest(
                url, amqp, query_max_points=MAX_POINTS, query_max_series=MAX_SERIES,
                maintenance_interval=3600,
            )
            yield srv
            srv.thread.stop()


async def insert_direct(database_url: str, rows: Sequence[Row]) -> None:
    """Write samples (any age) straight to the database, then refresh rollups."""
    backend = PostgresBackend()
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", MAINTENANCE_LOCK_KEY)
        try:
            times = to_datetimes([r[3] for r in rows])
            for table in backend.TABLES:
                await backend.ensure_partitions(conn, table, min(times), max(times))
            keys = [SeriesKey(r[1], r[0], canonical_labels(r[2])) for r in rows]
            hosts: dict[str, tuple[str, datetime]] = {}
            for r, t in zip(rows, times, strict=True):
                if r[0] not in hosts or hosts[r[0]][1] < t:
                    hosts[r[0]] = ("{}", t)
            async with conn.transaction():
                await backend.prepare_write(conn, min(times))
                ids = await SeriesResolver().resolve(conn, keys)
                await insert_samples(conn, ids, times, [r[4] for r in rows])
                await upsert_hosts(conn, hosts)
            await backend.refresh_rollups(conn)
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", MAINTENANCE_LOCK_KEY)
    finally:
        await conn.close()


async def refresh_rollups(database_url: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        await PostgresBackend().refresh_rollups(conn)
    finally:
        await conn.close()


AGGS: dict[str, Callable[[list[float]], float]] = {
    "avg": lambda vs: sum(vs) / len(vs),
    "min": min,
    "max": max,
    "count": len,
    "last": lambda vs: vs[-1],
    "sum": sum,
}


def expected(points: Sequence[tuple[float, float]], step: float, agg: str,
             start: float, end: float) -> list[list[float]]:
    buckets: dict[float, list[float]] = {}
    for t, v in sorted(points):
        if start <= t < end:
            b = ORIGIN + math.floor((t - ORIGIN) / step) * step
            buckets.setdefault(b, []).append(v)
    return [[b, AGGS[agg](vs)] for b, vs in sorted(buckets.items())]


async def query(srv: IngestServer, **params: Any) -> httpx.Response:
    async with srv.client(srv.read_key) as client:
        return await client.get("/api/v1/query", params=params)


def ok(r: httpx.Response) -> dict[str, Any]:
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def problem(r: httpx.Response, *words: str) -> str:
    assert r.status_code == 400, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    detail: str = r.json()["detail"]
    for word in words:
        assert word in detail, detail
    return detail


async def test_raw_points_come_back_exactly(server: IngestServer) -> None:
    now = math.floor(time.time())
    samples = [
        {"metric": "q.raw", "value": v, "timestamp": now - 600 + i * 10.5,
         "labels": {"dev": "a"}}
        for i, v in enumerate([1.25, -3.0, 1e-7, 123456789.125, 0.0, 42])
    ]
    async with server.client(server.ingest_key) as client:
        r = await client.post("/api/v1/metrics", json={"host": "qt-raw", "samples": samples})
    assert r.status_code == 202, r.text
    body = ok(await query(server, metric="q.raw", host="qt-raw", start=now - 900, end=now))
    assert body["source"] == "raw" and body["step"] is None
    assert body["series"] == [{
        "host": "qt-raw", "metric": "q.raw", "labels": {"dev": "a"},
        "points": [[s["timestamp"], s["value"]] for s in samples],
    }]
    # RFC 3339 and relative times select the same points; end is exclusive.
    rfc = datetime.fromtimestamp(now - 900, UTC).isoformat().replace("+00:00", "Z")
    body = ok(await query(server, metric="q.raw", host="qt-raw", start=rfc,
                          end=samples[-1]["timestamp"]))
    assert [p[0] for p in body["series"][0]["points"]] == [s["timestamp"] for s in samples[:-1]]
    body = ok(await query(server, metric="q.raw", host="qt-raw", start="now-15m"))
    assert len(body["series"][0]["points"]) == len(samples)


async def test_step_aggregation_raw_and_1m(server: IngestServer) -> None:
    base = math.floor(time.time() / 3600) * 3600 - 3 * 3600
    values = [float((i * 7) % 11) + 0.5 * (i % 3) for i in range(120)]
    pts = [(base + 3 + i * 15.0, v) for i, v in enumerate(values)]
    await insert_direct(server.database_url,
                        [("qt-agg", "q.agg", {}, t, v) for t, v in pts])
    start, end = base + 100, base + 1800  # unaligned start: aligned down to the step
    for step, source in ((30, "raw"), (120, "1m"), (600, "1m"), (900, "1m")):
        for agg in AGGS:
            body = ok(await query(server, metric="q.agg", start=start, end=end,
                                  step=f"{step}s", agg=agg))
            assert body["source"] == source and body["step"] == step
            assert body["start"] == ORIGIN + math.floor((start - ORIGIN) / step) * step
            want = expected(pts, step, agg, body["start"], end)
            got = body["series"][0]["points"]
            assert [p[0] for p in got] == [w[0] for w in want], (step, agg)
            assert [p[1] for p in got] == pytest.approx([w[1] for w in want], rel=1e-12), (
                step, agg)
    # The 1m rollup re-aggregated at 2m agrees with the raw samples at 2m.
    body = ok(await query(server, metric="q.agg", start=base, end=end, step="2m", agg="avg"))
    assert body["series"][0]["points"] == [
        [b, v] for b, v in expected(pts, 120, "avg", base, end)
    ]


async def test_thirty_days_use_the_hourly_rollup(server: IngestServer) -> None:
    now = time.time()
    base = math.floor(now / 3600) * 3600 - 30 * 86400
    pts = [(base + i * 600.0 + 7, float(i % 13) - 4.5) for i in range(30 * 144 - 6)]
    await insert_direct(server.database_url,
                        [("qt-long", "q.long", {"k": "v"}, t, v) for t, v in pts])
    end = base + 30 * 86400
    for agg in AGGS:
        body = ok(await query(server, metric="q.long", start=base, end=end, agg=agg))
        assert body["source"] == "1h" and body["step"] == 3600
        got = body["series"][0]["points"]
        want = expected(pts, 3600, agg, base, end)
        assert len(got) == len(want) == 30 * 24 - 1
        assert [p[0] for p in got] == [w[0] for w in want]
        assert [p[1] for p in got] == pytest.approx([w[1] for w in want], rel=1e-12), agg
    # A daily step re-aggregates the hourly rollup.
    body = ok(await query(server, metric="q.long", start=base, end=end, step="1d", agg="max"))
    assert body["source"] == "1h"
    assert body["series"][0]["points"] == expected(pts, 86400, "max", body["start"], end)
    # A short range older than the raw retention (7 d) falls back to the 1m rollup.
    old = base + 10 * 86400
    body = ok(await query(server, metric="q.long", start=old, end=old + 3600, agg="sum"))
    assert body["source"] == "1m" and body["step"] == 60
    assert body["series"][0]["points"] == expected(pts, 60, "sum", old, old + 3600)
    # Older than the 1m retention (30 d): the hourly rollup, step rounded up.
    body = ok(await query(server, metric="q.long", start=base, end=base + 7200, step="10s",
                          agg="count"))
    assert body["source"] == "1h" and body["step"] == 3600
    assert body["series"][0]["points"] == [[base, 6], [base + 3600, 6]]


async def test_labels_filter_and_hosts(server: IngestServer) -> None:
    t = time.time() - 60
    rows: list[Row] = [
        ("qt-lab-1", "q.lab", {"dev": "a", "mode": "x"}, t, 1.0),
        ("qt-lab-1", "q.lab", {"dev": "b", "mode": "x"}, t, 2.0),
        ("qt-lab-2", "q.lab", {"dev": "a", "mode": "y"}, t, 3.0),
        ("qt-lab-3", "q.lab", {}, t, 4.0),
    ]
    await insert_direct(server.database_url, rows)

    def values(body: dict[str, Any]) -> list[float]:
        return [s["points"][0][1] for s in body["series"]]

    assert values(ok(await query(server, metric="q.lab", start="now-1h"))) == [1, 2, 3, 4]
    assert values(ok(await query(server, metric="q.lab", host="qt-lab-1", start="now-1h"))) == [
        1, 2]
    assert values(ok(await query(server, metric="q.lab", labels="dev=a", start="now-1h"))) == [
        1, 3]
    assert values(ok(await query(server, metric="q.lab", labels="dev=a,mode=y",
                                 start="now-1h"))) == [3]
    assert values(ok(await query(server, metric="q.lab", labels=["dev=a", "mode=x"],
                                 start="now-1h"))) == [1]
    assert values(ok(await query(server, metric="q.lab", labels='{"mode": "x"}',
                                 start="now-1h"))) == [1, 2]
    assert ok(await query(server, metric="q.lab", labels="dev=zzz"))["series"] == []
    assert ok(await query(server, metric="q.nothing"))["series"] == []
    body = ok(await query(server, metric="q.lab", labels="dev=b", start="now-1h"))
    assert body["series"][0]["labels"] == {"dev": "b", "mode": "x"}
    assert body["series"][0]["host"] == "qt-lab-1"


async def test_caps(server: IngestServer) -> None:
    t = time.time() - 120
    await insert_direct(server.database_url,
                        [(f"qt-many-{i}", "q.many", {}, t, float(i)) for i in range(6)])
    problem(await query(server, metric="q.many"), "more than 5 series", "narrow")
    assert len(ok(await query(server, metric="q.many", host="qt-many-1"))["series"]) == 1

    r = await query(server, metric="q.many", start="now-30d", step="60s")
    detail = problem(r, "over the limit of 800", "at least")
    assert r.json()["min_step"] == math.ceil(30 * 86400 / (MAX_POINTS - 1))
    assert "(for example 1h)" in detail  # the smallest step, rounded to a round one
    ok(await query(server, metric="q.many", host="qt-many-1", start="now-30d",
                   step=str(r.json()["min_step"])))

    now = math.floor(time.time())
    await insert_direct(server.database_url,
                        [("qt-dense", "q.dense", {}, now - 3000 + i * 3.0, 1.0)
                         for i in range(MAX_POINTS + 1)])
    problem(await query(server, metric="q.dense", start=now - 3600, end=now), "pass a step")
    body = ok(await query(server, metric="q.dense", start=now - 3600, end=now, step="10s",
                          agg="count"))
    assert sum(p[1] for p in body["series"][0]["points"]) == MAX_POINTS + 1


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({}, ["metric is required"]),
        ({"metric": "bad metric"}, ["not a valid metric name"]),
        ({"metric": "m", "start": "yesterday"}, ["start", "RFC 3339"]),
        ({"metric": "m", "start": "2026-01-01T00:00:00"}, ["no time zone"]),
        ({"metric": "m", "start": "100", "end": "50"}, ["start must be before end"]),
        ({"metric": "m", "step": "5x"}, ["step", "not a duration"]),
        ({"metric": "m", "step": "0"}, ["positive"]),
        ({"metric": "m", "step": "0.5"}, ["at least 1 second"]),
        ({"metric": "m", "agg": "median"}, ["agg must be one of"]),
        ({"metric": "m", "labels": "foo"}, ["name=value"]),
        ({"metric": "m", "labels": "{bad json"}, ["JSON"]),
        ({"metric": "m", "labels": "bad-name=x"}, ["label name"]),
        ({"metric": "m", "labels": ["a=1", "a=2"]}, ["twice"]),
        ({"metric": "m", "host": "bad host"}, ["host"]),
        ({"metric": "m", "end": "1e30"}, ["out of range"]),
    ],
)
async def test_bad_parameters_are_400(
    server: IngestServer, params: dict[str, Any], words: list[str]
) -> None:
    problem(await query(server, **params), *words)


async def test_auth(server: IngestServer) -> None:
    for path in ("/api/v1/query?metric=q.raw", "/api/v1/series", "/api/v1/hosts",
                 "/api/v1/metrics/names"):
        async with server.client(server.read_key) as client:
            assert (await client.get(path)).status_code == 200, path
        async with server.client(server.admin_key) as client:
            assert (await client.get(path)).status_code == 200, path
        async with server.client(server.ingest_key) as client:
            r = await client.get(path)
            assert r.status_code == 403, path
            assert r.headers["content-type"].startswith("application/problem+json")
        async with httpx.AsyncClient(base_url=server.url) as client:
            assert (await client.get(path)).status_code == 401, path


async def test_series_search_and_metric_names(server: IngestServer) -> None:
    t = time.time() - 30
    await insert_direct(server.database_url, [
        ("qt-search-1", "srch.cpu.user", {"cpu": "0"}, t, 1.0),
        ("qt-search-1", "srch.cpu.user", {"cpu": "1"}, t, 1.0),
        ("qt-search-1", "srch.cpu_system", {"cpu": "0"}, t, 1.0),
        ("qt-search-2", "srch.mem", {}, t, 1.0),
        ("qt-search-2", "srchXcpu.user", {}, t, 1.0),
    ])
    async with server.client(server.read_key) as client:
        async def search(**params: Any) -> dict[str, Any]:
            return ok(await client.get("/api/v1/series", params=params))

        body = await search(metric="srch.cpu.*")
        assert [(s["metric"], s["labels"]) for s in body["series"]] == [
            ("srch.cpu.user", {"cpu": "0"}), ("srch.cpu.user", {"cpu": "1"}),
        ]
        assert body["truncated"] is False
        first = body["series"][0]
        assert first["host"] == "qt-search-1" and isinstance(first["id"], int)
        assert datetime.fromisoformat(first["created_at"]).tzinfo is not None
        # "_" and "." are literal in patterns.
        assert [s["metric"] for s in (await search(metric="srch.cpu_*"))["series"]] == [
            "srch.cpu_system"]
        assert len((await search(metric="srch*"))["series"]) == 5
        assert len((await search(metric="srch.*", host="qt-search-2"))["series"]) == 1
        assert len((await search(metric="srch*", match="cpu=0"))["series"]) == 2
        body = await search(metric="srch*", limit=2)
        assert len(body["series"]) == 2 and body["truncated"] is True
        assert (await search(metric="srch.mem"))["series"][0]["host"] == "qt-search-2"
        problem(await client.get("/api/v1/series", params={"metric": "bad metric"}), "metric")
        problem(await client.get("/api/v1/series", params={"match": "nope"}), "name=value")

        r = await client.get("/api/v1/metrics/names", params={"host": "qt-search-1"})
        assert sorted(ok(r)["names"]) == ["srch.cpu.user", "srch.cpu_system"]
        names = ok(await client.get("/api/v1/metrics/names"))["names"]
        assert {"srch.cpu.user", "srch.cpu_system", "srch.mem", "srchXcpu.user"} <= set(names)
        assert len(names) == len(set(names))


async def test_hosts_with_rate_and_status(server: IngestServer) -> None:
    now = math.floor(time.time())
    # 2 series x 46 samples inside the 5 minutes that end at the rollup watermark.
    samples = [
        {"metric": m, "value": 1, "timestamp": now - 170 + i}
        for m in ("h.one", "h.two") for i in range(46)
    ]
    samples.append({"metric": "h.three", "value": 1, "timestamp": now})  # after the window
    async with server.client(server.ingest_key) as client:
        r = await client.post("/api/v1/metrics", json={
            "host": "qt-host-up", "labels": {"role": "db"}, "samples": samples})
    assert r.status_code == 202, r.text
    await insert_direct(server.database_url,
                        [("qt-host-stale", "h.one", {}, now - 3600, 1.0)])
    await refresh_rollups(server.database_url)

    async with server.client(server.read_key) as client:
        deadline = time.monotonic() + 15
        while True:  # hosts are recorded a moment after the samples
            body = ok(await client.get("/api/v1/hosts"))
            hosts = {h["host"]: h for h in body["hosts"]}
            if "qt-host-up" in hosts or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
        assert body["rate_window"]["source"] == "1m"
        up, stale = hosts["qt-host-up"], hosts["qt-host-stale"]
        assert up["status"] == "up" and stale["status"] == "stale"
        assert up["labels"] == {"role": "db"}
        assert up["series_count"] == 3 and stale["series_count"] == 1
        assert up["samples_per_second"] == round(92 / 300, 3)
        assert stale["samples_per_second"] == 0
        assert datetime.fromisoformat(up["last_sample"]).timestamp() == now
        for key in ("first_seen", "last_seen"):
            assert datetime.fromisoformat(up[key]).tzinfo is not None
        assert [h["host"] for h in body["hosts"]] == sorted(hosts)
        # A generous threshold makes the old host "up".
        body = ok(await client.get("/api/v1/hosts", params={"stale_after": "2h"}))
        assert {h["host"]: h["status"] for h in body["hosts"]}["qt-host-stale"] == "up"
        problem(await client.get("/api/v1/hosts", params={"stale_after": "soon"}), "stale_after")

        detail = ok(await client.get("/api/v1/hosts/qt-host-up"))
        assert detail["host"] == "qt-host-up" and detail["samples_per_second"] == round(
            92 / 300, 3)
        assert [(s["metric"], s["labels"]) for s in detail["series"]] == [
            ("h.one", {"role": "db"}), ("h.three", {"role": "db"}), ("h.two", {"role": "db"})]
        r = await client.get("/api/v1/hosts/qt-no-such-host")
        assert r.status_code == 404
        assert r.headers["content-type"].startswith("application/problem+json")

"""The endpoints the dashboard needs, against a real server: who a key is,
the fleet overview (filters, sorting, paging at 5,000 hosts, latest values
and sparklines from the rollup), metric-name search, label values, queries
over several hosts, alert filters and dead-letter replay."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aio_pika
import asyncpg
import httpx
import orjson
import pytest

from nazar_common.db.backends import PostgresBackend
from nazar_common.messaging.topology import ALERTS_EXCHANGE, NOTIFIER_ALERTS, declare_topology
from tests.conftest import (
    IngestServer,
    create_database,
    create_vhost,
    delete_vhost,
    drop_database,
    start_ingest,
)


@pytest.fixture(scope="module")
async def server(session_token: str) -> AsyncIterator[IngestServer]:
    name = f"nazar_test_{session_token}_dash"
    url = await create_database(name)
    vhost = f"nazar-test-{session_token}-dash"
    amqp = create_vhost(vhost)
    srv = await start_ingest(url, amqp, maintenance_interval=3600)
    yield srv
    srv.thread.stop()
    await drop_database(name)
    delete_vhost(vhost)


async def push(server: IngestServer, samples: list[dict[str, Any]], **batch: Any) -> None:
    async with server.client(server.ingest_key) as client:
        r = await client.post("/api/v1/metrics", json={**batch, "samples": samples},
                              headers={"Idempotency-Key": uuid.uuid4().hex})
        assert r.status_code == 202, r.text


async def refresh_rollups(database_url: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        await PostgresBackend().refresh_rollups(conn)
    finally:
        await conn.close()


async def overview(server: IngestServer, key: str | None = None, **params: Any) -> dict[str, Any]:
    async with server.client(key) as client:
        r = await client.get("/api/v1/overview", params=params)
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body


async def wait_hosts(server: IngestServer, q: str, count: int) -> None:
    """Hosts are recorded a few seconds after their samples."""
    deadline = time.monotonic() + 30
    while (await overview(server, q=q, limit=1))["total"] < count:
        assert time.monotonic() < deadline, f"hosts matching {q!r} did not appear"
        await asyncio.sleep(0.3)


# --------------------------------------------------------------------------- whoami


async def test_whoami_tells_every_key_its_scopes(server: IngestServer) -> None:
    expected = {
        server.admin_key: (["admin"], {"admin": True, "read": True, "ingest": True,
                                       "rules": True}),
        server.read_key: (["read"], {"admin": False, "read": True, "ingest": False,
                                     "rules": False}),
        server.ingest_key: (["ingest"], {"admin": False, "read": False, "ingest": True,
                                         "rules": False}),
    }
    for key, (scopes, grants) in expected.items():
        async with server.client(key) as client:
            body = (await client.get("/api/v1/auth/whoami")).json()
        assert body["scopes"] == scopes
        assert body["grants"] == grants
        assert key.split("_")[1] == body["key_id"]
    async with httpx.AsyncClient(base_url=server.url) as anonymous:
        r = await anonymous.get("/api/v1/auth/whoami")
        assert r.status_code == 401
        assert r.headers["content-type"].startswith("application/problem+json")
        r = await anonymous.get("/api/v1/auth/whoami",
                                headers={"Authorization": "Bearer nzr_nope_nope"})
        assert r.status_code == 401


# --------------------------------------------------------------------------- overview


async def test_overview_answers_status_alerts_latest_values_and_sparklines(
    server: IngestServer,
) -> None:
    now = time.time()
    samples = []
    for i in range(40):  # 40 minutes of history, one sample a minute
        t = now - 2400 + i * 60
        samples += [
            {"host": "ov-web-1", "metric": "cpu.usage_percent", "value": 10.0 + i, "timestamp": t,
             "labels": {"cpu": "total"}},
            {"host": "ov-web-1", "metric": "cpu.usage_percent", "value": 99.0, "timestamp": t,
             "labels": {"cpu": "0"}},  # a core: not the host total
            {"host": "ov-web-1", "metric": "mem.used_percent", "value": 50.0, "timestamp": t},
            {"host": "ov-web-1", "metric": "disk.used_percent", "value": 20.0, "timestamp": t,
             "labels": {"mount": "/"}},
            {"host": "ov-web-1", "metric": "disk.used_percent", "value": 70.0, "timestamp": t,
             "labels": {"mount": "/var"}},
            {"host": "ov-db-1", "metric": "cpu.usage_percent", "value": 5.0, "timestamp": t},
        ]
    await push(server, samples, labels={"role": "web"})
    await push(server, [{"host": "ov-old", "metric": "cpu.usage_percent", "value": 1.0,
                         "timestamp": now - 3 * 3600}], labels={"role": "db"})
    await wait_hosts(server, "ov-", 3)
    await refresh_rollups(server.database_url)
    conn = await asyncpg.connect(server.database_url)
    try:
        await conn.execute(
            "INSERT INTO alerts (fingerprint, rule_id, rule_name, kind, subject, host, severity, "
            "state, started_at, fired_at) VALUES ('f1', 1, 'r', 'threshold', 's:1', 'ov-web-1', "
            "'critical', 'firing', now(), now()), ('f2', 1, 'r', 'threshold', 's:2', 'ov-web-1', "
            "'warning', 'pending', now(), null), ('f3', 1, 'r', 'threshold', 's:3', 'ov-web-1', "
            "'warning', 'resolved', now(), now())"
        )
    finally:
        await conn.close()

    body = await overview(server, server.read_key, q="ov-")
    assert body["total"] == 3
    assert body["counts"] == {"up": 0, "stale": 2, "down": 1}  # older than 60 s / 600 s
    hosts = {h["host"]: h for h in body["hosts"]}
    assert [h["host"] for h in body["hosts"]] == ["ov-db-1", "ov-old", "ov-web-1"]
    web = hosts["ov-web-1"]
    assert web["status"] == "stale"
    assert web["open_alerts"] == 2 and web["firing_alerts"] == 1
    assert web["labels"] == {"role": "web"}
    # latest raw values: the total CPU (not the core), the fullest mount
    assert web["latest"] == {"cpu": 49.0, "mem": 50.0, "disk": 70.0}
    assert hosts["ov-old"]["latest"] == {"cpu": None, "mem": None, "disk": None}
    assert hosts["ov-old"]["status"] == "down"
    spark = web["spark"]["cpu"]
    assert body["spark"]["step"] == 60
    assert len(spark) >= 35
    assert [v for _, v in spark] == sorted(v for _, v in spark)  # 10, 11, 12, ... rising
    assert all(v < 60 for _, v in spark)  # the 99 % core is left out
    assert {v for _, v in web["spark"]["disk"]} == {70.0}

    # filters: search, label, status; sorting; paging
    assert [h["host"] for h in (await overview(server, q="OV-WEB"))["hosts"]] == ["ov-web-1"]
    assert [h["host"] for h in (await overview(server, q="ov-", label="role=db"))["hosts"]] \
        == ["ov-old"]
    down = await overview(server, q="ov-", status="down")
    assert [h["host"] for h in down["hosts"]] == ["ov-old"] and down["total"] == 1
    assert down["counts"] == {"up": 0, "stale": 2, "down": 1}
    by_cpu = await overview(server, q="ov-", sort="-cpu")
    assert [h["host"] for h in by_cpu["hosts"]] == ["ov-web-1", "ov-db-1", "ov-old"]
    by_alerts = await overview(server, q="ov-", sort="-alerts")
    assert by_alerts["hosts"][0]["host"] == "ov-web-1"
    page = await overview(server, q="ov-", sort="-host", limit=2, offset=2)
    assert [h["host"] for h in page["hosts"]] == ["ov-db-1"] and page["total"] == 3
    beyond = await overview(server, q="ov-", limit=2, offset=10)
    assert beyond["hosts"] == [] and beyond["total"] == 3
    # a longer sparkline range gets a coarser step
    assert (await overview(server, q="ov-web", spark="6h"))["spark"]["step"] == 360

    async with server.client(server.read_key) as client:
        for params in ({"sort": "cpuu"}, {"spark": "30d"}, {"status": "gone"},
                       {"label": "no pair"}, {"limit": 0}, {"stale_after": "10m",
                                                              "down_after": "5m"}):
            r = await client.get("/api/v1/overview", params=params)
            assert r.status_code == 400, (params, r.text)
            assert r.headers["content-type"].startswith("application/problem+json")
    async with server.client(server.ingest_key) as client:
        assert (await client.get("/api/v1/overview")).status_code == 403


async def test_overview_pages_through_5000_hosts(server: IngestServer) -> None:
    now = time.time()
    samples = [
        {"host": f"fleet-{i:05d}", "metric": "cpu.usage_percent", "value": float(i % 100),
         "timestamp": now - 30}
        for i in range(5000)
    ]
    await push(server, samples)
    await wait_hosts(server, "fleet-", 5000)
    started = time.perf_counter()
    page = await overview(server, q="fleet-", limit=100, offset=4900)
    took = time.perf_counter() - started
    assert page["total"] == 5000
    assert [h["host"] for h in page["hosts"]] == [f"fleet-{i:05d}" for i in range(4900, 5000)]
    assert page["hosts"][0]["latest"]["cpu"] == 0.0 and page["hosts"][-1]["latest"]["cpu"] == 99.0
    assert page["counts"]["up"] == 5000
    print(f"overview page 49 of 50 at 5,000 hosts: {took * 1000:.0f} ms")


# --------------------------------------------------------------------------- search


async def test_metric_search_finds_names_containing_every_word(server: IngestServer) -> None:
    names = ["srch.disk.used_bytes", "srch.disk.free_bytes", "srch.net.rx_bytes_per_sec",
             "srch_app.requests_total", "zz.srch.latency_seconds"]
    await push(server, [{"metric": m, "value": 1.0} for m in names], host="srch-1")
    await push(server, [{"metric": "srch.only_here", "value": 1.0}], host="srch-2")
    async with server.client(server.read_key) as client:
        async def search(**params: Any) -> dict[str, Any]:
            r = await client.get("/api/v1/metrics/search", params=params)
            assert r.status_code == 200, r.text
            body: dict[str, Any] = r.json()
            return body

        found = await search(q="srch bytes")
        assert found["names"] == ["srch.disk.free_bytes", "srch.disk.used_bytes",
                                  "srch.net.rx_bytes_per_sec"]
        assert found["truncated"] is False
        # names starting with the first word come first
        assert (await search(q="SRCH", limit=50))["names"][-1] == "zz.srch.latency_seconds"
        limited = await search(q="srch", limit=2)
        assert len(limited["names"]) == 2 and limited["truncated"] is True
        assert (await search(q="srch", host="srch-2"))["names"] == ["srch.only_here"]
        assert (await search(q="no-such-thing"))["names"] == []
        r = await client.get("/api/v1/metrics/search", params={"host": "bad host"})
        assert r.status_code == 400


async def test_label_values_of_a_metric(server: IngestServer) -> None:
    await push(server, [
        {"metric": "lbl.cpu", "value": 1.0, "labels": {"cpu": str(i), "mode": "user"}}
        for i in range(3)
    ], host="lbl-1")
    async with server.client(server.read_key) as client:
        r = await client.get("/api/v1/labels", params={"metric": "lbl.cpu"})
        assert r.status_code == 200, r.text
        assert r.json() == {"labels": {"cpu": ["0", "1", "2"], "mode": ["user"]}}
        assert (await client.get("/api/v1/labels")).status_code == 400
        assert (await client.get("/api/v1/labels", params={"metric": "bad name"})).status_code \
            == 400


async def test_query_over_several_hosts(server: IngestServer) -> None:
    for host in ("mh-1", "mh-2", "mh-3"):
        await push(server, [{"metric": "mh.load", "value": 1.0}], host=host)
    async with server.client(server.read_key) as client:
        r = await client.get("/api/v1/query", params=[("metric", "mh.load"), ("host", "mh-1"),
                                                      ("host", "mh-3"), ("start", "now-1h")])
        assert r.status_code == 200, r.text
        assert [s["host"] for s in r.json()["series"]] == ["mh-1", "mh-3"]
        r = await client.get("/api/v1/query", params=[("metric", "mh.load"), ("host", "mh-2")])
        assert [s["host"] for s in r.json()["series"]] == ["mh-2"]
        r = await client.get("/api/v1/query", params=[("metric", "mh.load"), ("host", "bad host")])
        assert r.status_code == 400


# --------------------------------------------------------------------------- alerts


async def test_alert_filters_by_label_severity_kind_and_acknowledgement(
    server: IngestServer,
) -> None:
    conn = await asyncpg.connect(server.database_url)
    try:
        ids = [
            await conn.fetchval(
                "INSERT INTO alerts (fingerprint, rule_id, rule_name, kind, subject, host, labels, "
                "severity, state, started_at, acked_at) VALUES ($1, 9, 'flt', $2, $1, 'flt-1', "
                "$3::jsonb, $4, 'firing', now(), $5) RETURNING id",
                f"flt-{i}", kind, orjson.dumps(labels).decode(), severity, acked,
            )
            for i, (kind, labels, severity, acked) in enumerate([
                ("threshold", {"mount": "/"}, "critical", None),
                ("baseline", {"mount": "/var"}, "warning", None),
                ("threshold", {"mount": "/var"}, "info", datetime.now(UTC)),
            ])
        ]
    finally:
        await conn.close()
    async with server.client(server.read_key) as client:
        async def found(*params: tuple[str, str]) -> list[int]:
            r = await client.get("/api/v1/alerts", params=[("rule", "flt"), *params])
            assert r.status_code == 200, r.text
            return sorted(a["id"] for a in r.json()["items"])

        assert await found() == ids
        assert await found(("label", "mount=/var")) == ids[1:]
        assert await found(("label", '{"mount": "/"}')) == ids[:1]
        assert await found(("severity", "critical"), ("severity", "info")) == [ids[0], ids[2]]
        assert await found(("kind", "baseline")) == [ids[1]]
        assert await found(("acked", "true")) == [ids[2]]
        assert await found(("acked", "false")) == ids[:2]
        r = await client.get("/api/v1/alerts", params={"label": "nope"})
        assert r.status_code == 400


# --------------------------------------------------------------------------- dead letters


async def test_dead_letters_are_counted_and_replayed_over_http(server: IngestServer) -> None:
    connection = await aio_pika.connect(server.amqp_url)
    try:
        channel = await connection.channel(publisher_confirms=True)
        await declare_topology(channel)
        await channel.default_exchange.publish(
            aio_pika.Message(b'{"x": 1}', message_id="dl-1", headers={
                "x-nazar-original-exchange": ALERTS_EXCHANGE,
                "x-nazar-original-routing-key": "alert.v1",
                "x-nazar-channel": "ops"}),
            routing_key=NOTIFIER_ALERTS.dlq,
        )
        # where the replayed message lands
        probe = await channel.declare_queue("", exclusive=True)
        await probe.bind(ALERTS_EXCHANGE, routing_key="alert.v1")
        async with server.client(server.read_key) as reader:
            r = await reader.get("/api/v1/dlq/queues")
            assert r.status_code == 200, r.text
            depths = {q["queue"]: q["messages"] for q in r.json()}
            assert depths[NOTIFIER_ALERTS.dlq] == 1
            assert set(depths) == {"nazar.analyzer.samples.dlq", "nazar.ingest.deferred.dlq",
                                   NOTIFIER_ALERTS.dlq}
            assert (await reader.post("/api/v1/dlq/replay")).status_code == 403
        async with server.client() as admin:
            r = await admin.post("/api/v1/dlq/replay", json={"queue": "elsewhere"})
            assert r.status_code == 400
            r = await admin.post("/api/v1/dlq/replay", json={"queue": NOTIFIER_ALERTS.dlq})
            assert r.status_code == 200, r.text
            assert r.json() == {"queue": NOTIFIER_ALERTS.dlq, "replayed": 1, "remaining": 0}
        message = await probe.get(timeout=10)
        assert message.message_id == "dl-1" and message.headers["x-nazar-replayed"] == 1
        await message.ack()
    finally:
        await connection.close()

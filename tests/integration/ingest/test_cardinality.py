"""Cardinality budgets against a real ingest server and database: what fits is
stored, the rest refused with the limit named (422, or counted as dropped for
remote write and OTLP), existing series keep flowing, other hosts are not
affected; and GET /api/v1/cardinality."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import cramjam
import httpx
import orjson
import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)

from nazar_ingest import samples as samples_module
from nazar_ingest.payloads.wire import WriteRequest
from tests.conftest import (
    IngestServer,
    create_database,
    create_vhost,
    delete_vhost,
    drop_database,
    start_ingest,
)

PER_HOST = 50
TOTAL = 400


@pytest.fixture(scope="module")
async def server() -> AsyncIterator[IngestServer]:
    token = secrets.token_hex(4)
    db, vhost = f"nazar_test_card_{token}", f"nazar-test-card-{token}"
    url = await create_database(db)
    amqp = create_vhost(vhost)
    srv = await start_ingest(url, amqp, series_limit_per_host=PER_HOST, series_limit=TOTAL)
    try:
        yield srv
    finally:
        srv.thread.stop()
        delete_vhost(vhost)
        await drop_database(db)


def samples(metric: str, ids: range, value: float = 1.0) -> list[dict[str, Any]]:
    return [{"metric": metric, "value": value, "labels": {"id": str(i)}} for i in ids]


async def post(server: IngestServer, host: str, body: list[dict[str, Any]],
               **extra: Any) -> httpx.Response:
    async with server.client(server.ingest_key) as client:
        return await client.post("/api/v1/metrics",
                                 json={"host": host, "labels": {"env": "t"}, "samples": body},
                                 **extra)


async def query(server: IngestServer, sql: str, *args: Any) -> Any:
    conn = await asyncpg.connect(server.database_url)
    try:
        return await conn.fetchval(sql, *args)
    finally:
        await conn.close()


async def metric_value(server: IngestServer, name: str, **labels: str) -> float:
    async with httpx.AsyncClient(base_url=server.url) as client:
        text = (await client.get("/metrics")).text
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith(f"{name}{{{want}}}" if want else f"{name} "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_what_fits_is_stored_the_rest_refused(server: IngestServer) -> None:
    r = await post(server, "card-a", samples("c.m", range(30)))
    assert r.status_code == 202, r.text
    # 10 existing + 40 new series: 20 new ones fit
    r = await post(server, "card-a", samples("c.m", range(20, 70), 2.0),
                   headers={"Idempotency-Key": "card-a-1"})
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    problem = r.json()
    assert problem["type"].endswith("/series-limit")
    assert problem["limit"] == "per_host" and problem["limit_value"] == PER_HOST
    assert problem["hosts"] == ["card-a"]
    assert (problem["accepted"], problem["rejected"], problem["rejected_series"]) == (30, 20, 20)
    assert "NAZAR_SERIES_LIMIT_PER_HOST" in problem["detail"]
    assert await query(server, "SELECT count(*) FROM series WHERE host = 'card-a'") == PER_HOST
    # the first series named in the request got the room; existing ones kept their samples
    stored = await query(
        server, "SELECT array_agg((x.labels->>'id')::int ORDER BY (x.labels->>'id')::int) "
        "FROM samples s JOIN series x ON x.id = s.series_id WHERE x.host = 'card-a' "
        "AND s.value = 2")
    assert stored == list(range(20, 50))
    # the same request again: a duplicate (its stored part stands)
    r = await post(server, "card-a", samples("c.m", range(20, 70), 2.0),
                   headers={"Idempotency-Key": "card-a-1"})
    assert r.status_code == 422 and r.json()["duplicate"] is True
    # a host at its limit: existing series still flow, new ones are refused
    r = await post(server, "card-a", samples("c.m", range(45, 55), 3.0))
    assert r.status_code == 422 and (r.json()["accepted"], r.json()["rejected"]) == (5, 5)
    r = await post(server, "card-a", samples("c.m", range(0, 50), 4.0))
    assert r.status_code == 202 and r.json()["accepted"] == 50
    # ... also when this process has forgotten them (caches cleared, another worker)
    state = server.thread.config.app.state.nazar  # type: ignore[attr-defined]
    state.accepter.resolver.forget()
    samples_module._KNOWN.clear()
    r = await post(server, "card-a", samples("c.m", range(0, 55), 6.0))
    assert r.status_code == 422 and (r.json()["accepted"], r.json()["rejected"]) == (50, 5)
    assert await query(
        server, "SELECT count(*) FROM samples s JOIN series x ON x.id = s.series_id "
        "WHERE x.host = 'card-a' AND s.value = 6") == 50
    r = await post(server, "card-a", samples("c.other", range(3)))
    assert r.status_code == 422 and r.json()["accepted"] == 0
    # another host is not affected
    r = await post(server, "card-b", samples("c.m", range(40)))
    assert r.status_code == 202 and r.json()["accepted"] == 40
    assert await metric_value(server, "nazar_ingest_series_refused_total",
                              limit="per_host") >= 28
    assert await metric_value(server, "nazar_ingest_series_limit_samples_total",
                              protocol="json", limit="per_host") >= 28


async def test_concurrent_requests_never_pass_the_host_limit(server: IngestServer) -> None:
    async def one(i: int) -> httpx.Response:
        return await post(server, "card-c", samples("c.par", range(i * 10, i * 10 + 10)))

    responses = await asyncio.gather(*(one(i) for i in range(12)))
    assert {r.status_code for r in responses} <= {202, 422}
    accepted = sum(r.json()["accepted"] for r in responses)
    assert accepted == PER_HOST
    assert await query(server, "SELECT count(*) FROM series WHERE host = 'card-c'") == PER_HOST


def _remote_write(host: str, n: int) -> bytes:
    request = WriteRequest()
    now_ms = int(time.time() * 1000)
    for i in range(n):
        ts = request.timeseries.add()
        for name, value in (("__name__", "c_rw"), ("instance", f"{host}:9100"), ("id", str(i))):
            ts.labels.add(name=name, value=value)
        ts.samples.add(value=float(i), timestamp=now_ms)
    return bytes(cramjam.snappy.compress_raw(request.SerializeToString()))


def _otlp(host: str, n: int) -> bytes:
    request = ExportMetricsServiceRequest()
    rm = request.resource_metrics.add()
    attr = rm.resource.attributes.add()
    attr.key, attr.value.string_value = "host.name", host
    metric = rm.scope_metrics.add().metrics.add()
    metric.name = "c.otlp"
    for i in range(n):
        point = metric.gauge.data_points.add()
        point.as_double = float(i)
        point.time_unix_nano = time.time_ns()
        kv = point.attributes.add()
        kv.key, kv.value.string_value = "id", str(i)
    return bytes(request.SerializeToString())


async def test_protocols_count_refused_samples_as_dropped(server: IngestServer) -> None:
    async with server.client(server.ingest_key) as client:
        r = await client.post("/api/v1/write", content=_remote_write("card-rw", 60), headers={
            "content-type": "application/x-protobuf", "content-encoding": "snappy"})
        assert r.status_code == 204, r.text
        assert "series_limit=10" in r.headers["x-nazar-skipped"]
        r = await client.post("/v1/metrics", content=_otlp("card-otlp", 70),
                              headers={"content-type": "application/x-protobuf"})
        assert r.status_code == 200, r.text
        response = ExportMetricsServiceResponse.FromString(r.content)
        assert response.partial_success.rejected_data_points == 20
        assert "limit of 50 series per host" in response.partial_success.error_message
        lines = "\n".join(f"c_lp,host=card-lp,id={i} v={i}" for i in range(55))
        r = await client.post("/api/v2/write", content=lines.encode())
        assert r.status_code == 422, r.text
        body = r.json()
        assert body["code"] == "unprocessable entity" and body["rejected"] == 5
        assert body["accepted"] == 50
    for host in ("card-rw", "card-otlp", "card-lp"):
        assert await query(server, "SELECT count(*) FROM series WHERE host = $1", host) == 50
    assert await metric_value(server, "nazar_ingest_skipped_samples_total",
                              protocol="remote_write", reason="series_limit") == 10
    assert await metric_value(server, "nazar_ingest_series_limit_samples_total",
                              protocol="otlp", limit="per_host") == 20


async def test_global_limit(server: IngestServer) -> None:
    used = await query(server, "SELECT count(*) FROM series")
    hosts = []
    for i in range((TOTAL - used) // PER_HOST + 1):
        host = f"card-g{i}"
        hosts.append(host)
        r = await post(server, host, samples("c.g", range(PER_HOST)))
        if r.status_code == 422:
            break
        assert r.status_code == 202, r.text
    problem = r.json()
    assert problem["limit"] == "global" and problem["limit_value"] == TOTAL
    assert "NAZAR_SERIES_LIMIT)" in problem["detail"]
    assert await query(server, "SELECT count(*) FROM series") == TOTAL
    r = await post(server, "card-new-host", samples("c.g", range(2)))
    assert r.status_code == 422 and r.json()["accepted"] == 0
    r = await post(server, "card-b", samples("c.m", range(40), 5.0))  # existing: stored
    assert r.status_code == 202


async def test_cardinality_report(server: IngestServer) -> None:
    async with server.client(server.read_key) as reader:
        r = await reader.get("/api/v1/cardinality", params={"limit": 3})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["series"] == await query(server, "SELECT count(*) FROM series")
        assert body["limits"] == {"per_host": PER_HOST, "global": TOTAL}
        assert len(body["hosts"]) == 3
        assert all(h["series"] == PER_HOST and h["used"] == 1.0 for h in body["hosts"])
        top = body["metrics"][0]
        assert top["series"] >= top["hosts"] >= 1
        labels = {row["label"]: row for row in body["labels"]}
        assert labels["env"]["values"] == 1 and labels["id"]["values"] >= PER_HOST
        assert body["labels"][0]["series"] >= body["labels"][-1]["series"]
        r = await reader.get("/api/v1/cardinality", params={"host": "card-a"})
        body = r.json()
        assert body["series"] == PER_HOST and [h["host"] for h in body["hosts"]] == ["card-a"]
        assert {m["metric"]: m["series"] for m in body["metrics"]} == {"c.m": PER_HOST}
        for params in ({"host": "bad host"}, {"limit": "0"}, {"limit": "1001"}):
            r = await reader.get("/api/v1/cardinality", params=params)
            assert r.status_code == 400, params
    async with httpx.AsyncClient(base_url=server.url) as anonymous:
        assert (await anonymous.get("/api/v1/cardinality")).status_code == 401
    assert orjson.loads(orjson.dumps(body))  # plain JSON

"""OTLP/HTTP metrics: the OpenTelemetry Python SDK exporter against a real ingest server."""

from __future__ import annotations

import asyncio
import secrets
import time

import httpx
import orjson
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource

from nazar_ingest.payloads.wire import Status
from tests.conftest import IngestServer
from tests.integration.protocols.helpers import series_count, stored


def _export_with_sdk(url: str, key: str, host: str) -> bool:
    exporter = OTLPMetricExporter(
        endpoint=f"{url}/v1/metrics",
        headers={"Authorization": f"Bearer {key}"},
        compression=Compression.Gzip,
        timeout=10,
    )
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
    provider = MeterProvider(
        resource=Resource.create({"host.name": host, "service.name": "itest-svc"}),
        metric_readers=[reader],
    )
    meter = provider.get_meter("nazar.itest")
    meter.create_gauge("itest.temperature", unit="Cel").set(21.5, {"room": "lab"})
    requests = meter.create_counter("itest.requests")
    requests.add(3, {"http.route": "/a"})
    requests.add(2, {"http.route": "/a"})
    latency = meter.create_histogram(
        "itest.latency", unit="s", explicit_bucket_boundaries_advisory=[0.1, 1.0]
    )
    for value in (0.05, 0.5, 0.7, 3.0):
        latency.record(value)
    ok = provider.force_flush(timeout_millis=15_000)
    provider.shutdown()
    return bool(ok)


async def test_sdk_exporter_gauge_counter_histogram(ingest_server: IngestServer) -> None:
    host = f"itest-otel-{secrets.token_hex(3)}"
    started = time.time()
    ok = await asyncio.to_thread(_export_with_sdk, ingest_server.url, ingest_server.ingest_key,
                                 host)
    assert ok
    rows = await stored(ingest_server.database_url, host)
    got = {
        (s["metric"], tuple(sorted(s["labels"].items()))): s["value"] for s in rows
    }
    svc = ("service_name", "itest-svc")
    assert got[("itest.temperature", (("room", "lab"), svc))] == 21.5
    assert got[("itest.requests", (("http_route", "/a"), svc))] == 5.0
    assert got[("itest.latency_count", (svc,))] == 4.0
    assert abs(got[("itest.latency_sum", (svc,))] - 4.25) < 1e-9
    assert got[("itest.latency_min", (svc,))] == 0.05
    assert got[("itest.latency_max", (svc,))] == 3.0
    assert got[("itest.latency_bucket", (("le", "0.1"), svc))] == 1.0
    assert got[("itest.latency_bucket", (("le", "1"), svc))] == 3.0
    assert got[("itest.latency_bucket", (("le", "+Inf"), svc))] == 4.0
    assert all(started - 5 < s["t"] < time.time() + 1 for s in rows)


async def test_json_partial_success_and_errors(ingest_server: IngestServer) -> None:
    host = f"itest-otlpj-{secrets.token_hex(3)}"
    nanos = str(time.time_ns())
    point = {"timeUnixNano": nanos, "asDouble": 1.5}
    doc = {"resourceMetrics": [
        {"resource": {"attributes": [{"key": "host.name", "value": {"stringValue": host}}]},
         "scopeMetrics": [{"metrics": [
             {"name": "j.gauge", "gauge": {"dataPoints": [
                 point, {"timeUnixNano": "1000", "asDouble": 2}]}},
         ]}]},
        {"resource": {"attributes": []},
         "scopeMetrics": [{"metrics": [{"name": "j.gauge", "gauge": {"dataPoints": [point]}}]}]},
    ]}
    headers = {"Authorization": f"Bearer {ingest_server.ingest_key}"}
    async with httpx.AsyncClient(base_url=ingest_server.url, headers=headers) as client:
        r = await client.post("/v1/metrics", content=orjson.dumps(doc),
                              headers={"Content-Type": "application/json"})
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "application/json"
        partial = r.json()["partialSuccess"]
        assert partial["rejectedDataPoints"] == "2"
        assert "too_old=1" in partial["errorMessage"] and "no_host=1" in partial["errorMessage"]

        # protobuf: success has an empty response; garbage gets a google.rpc.Status
        good = ExportMetricsServiceRequest()
        good.resource_metrics.add()
        r = await client.post("/v1/metrics", content=good.SerializeToString(),
                              headers={"Content-Type": "application/x-protobuf"})
        assert r.status_code == 200
        assert not ExportMetricsServiceResponse.FromString(r.content).HasField("partial_success")
        r = await client.post("/v1/metrics", content=b"\x0a\x80\x80\x80\x80\x01garbage",
                              headers={"Content-Type": "application/x-protobuf"})
        assert r.status_code == 400
        status = Status.FromString(r.content)
        assert status.code == 3 and "ExportMetricsServiceRequest" in status.message
        r = await client.post("/v1/metrics", content=b'{"resourceMetrics": [1]',
                              headers={"Content-Type": "application/json"})
        assert r.status_code == 400 and "JSON" in r.json()["message"]
        r = await client.post("/v1/metrics", content=b"x", headers={"Content-Type": "text/plain"})
        assert r.status_code == 415
    rows = await stored(ingest_server.database_url, host)
    assert [(s["metric"], s["value"]) for s in rows] == [("j.gauge", 1.5)]
    assert await series_count(ingest_server.database_url, "itest-otlpj-%") == 1

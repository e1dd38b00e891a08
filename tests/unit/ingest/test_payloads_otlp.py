"""OTLP metrics decoding and mapping (pure logic)."""

from __future__ import annotations

import time

import orjson
import pytest
from google.protobuf import json_format
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.metrics.v1 import metrics_pb2

from nazar_common.errors import InvalidInputError
from nazar_ingest.payloads.otlp import bound_text, decode, encode_response, parse_otlp
from nazar_ingest.samples import BatchBuilder, Limits

NOW = time.time()
NANOS = int(NOW * 1e9)


def builder() -> BatchBuilder:
    return BatchBuilder(Limits(max_samples=1000, oldest=NOW - 3600, newest=NOW + 600))


def request(resource: dict[str, str], *metrics: metrics_pb2.Metric) -> ExportMetricsServiceRequest:
    req = ExportMetricsServiceRequest()
    rm = req.resource_metrics.add()
    for k, v in resource.items():
        rm.resource.attributes.add(key=k).value.string_value = v
    rm.scope_metrics.add().metrics.extend(metrics)
    return req


def gauge(name: str, value: float, attrs: dict[str, object] | None = None,
          t: int = NANOS) -> metrics_pb2.Metric:
    m = metrics_pb2.Metric(name=name)
    p = m.gauge.data_points.add(time_unix_nano=t, as_double=value)
    for k, v in (attrs or {}).items():
        kv = p.attributes.add(key=k)
        if isinstance(v, bool):
            kv.value.bool_value = v
        elif isinstance(v, int):
            kv.value.int_value = v
        else:
            kv.value.string_value = str(v)
    return m


def rows(batch) -> list[tuple[str, str, dict[str, str], float]]:
    return [
        (batch.keys[i].metric, batch.keys[i].host, orjson.loads(batch.keys[i].labels), v)
        for i, v in zip(batch.series_index, batch.values, strict=True)
    ]


def test_gauge_host_and_attribute_labels() -> None:
    req = request(
        {"host.name": "web-1", "service.name": "api", "telemetry.sdk.name": "opentelemetry"},
        gauge("system.cpu.utilization", 0.25, {"cpu": "cpu0", "state": "idle", "x.y-z": 3,
                                               "ok": True}),
    )
    result = parse_otlp(req, builder(), NOW, aliases=False)
    assert rows(result.batch) == [(
        "system.cpu.utilization", "web-1",
        {"service_name": "api", "cpu": "cpu0", "state": "idle", "x_y_z": "3", "ok": "true"},
        0.25,
    )]
    assert result.rejected_points == 0 and result.message == "" and result.timestamped


@pytest.mark.parametrize(("attr", "host"), [
    ({"host.id": "i-123", "service.instance.id": "x"}, "i-123"),
    ({"service.instance.id": "pod-7"}, "pod-7"),
])
def test_host_fallbacks(attr: dict[str, str], host: str) -> None:
    result = parse_otlp(request(attr, gauge("g", 1)), builder(), NOW, aliases=False)
    assert rows(result.batch)[0][1] == host


def test_no_host_rejects_points_in_partial_success() -> None:
    req = request({"service.name": "x"}, gauge("g", 1), gauge("h", 2))
    result = parse_otlp(req, builder(), NOW, aliases=False)
    assert len(result.batch) == 0
    assert result.rejected_points == 2
    assert "no_host=2" in result.message and "host.name" in result.message


def test_sums_int_and_double_and_skips() -> None:
    m = metrics_pb2.Metric(name="requests")
    m.sum.is_monotonic = True
    m.sum.aggregation_temporality = metrics_pb2.AGGREGATION_TEMPORALITY_DELTA
    m.sum.data_points.add(time_unix_nano=NANOS, as_int=7)
    m.sum.data_points.add(time_unix_nano=NANOS, as_double=float("nan"))
    m.sum.data_points.add(time_unix_nano=NANOS - 86400 * 10**9, as_int=1)
    m.sum.data_points.add(time_unix_nano=NANOS, as_int=1, flags=1)  # no recorded value
    result = parse_otlp(request({"host.name": "h"}, m), builder(), NOW, aliases=False)
    assert rows(result.batch) == [("requests", "h", {}, 7.0)]
    assert result.rejected_points == 3
    assert result.message == "skipped samples: nan=1, no_value=1, too_old=1"


def test_histogram_buckets_are_cumulative() -> None:
    m = metrics_pb2.Metric(name="http.server.duration")
    p = m.histogram.data_points.add(time_unix_nano=NANOS, count=6, sum=3.5, min=0.1, max=2)
    p.explicit_bounds.extend([0.25, 1.0])
    p.bucket_counts.extend([1, 3, 2])
    result = parse_otlp(request({"host.name": "h"}, m), builder(), NOW, aliases=False)
    got = {(name, labels.get("le")): v for name, _, labels, v in rows(result.batch)}
    assert got == {
        ("http.server.duration_count", None): 6.0,
        ("http.server.duration_sum", None): 3.5,
        ("http.server.duration_min", None): 0.1,
        ("http.server.duration_max", None): 2.0,
        ("http.server.duration_bucket", "0.25"): 1.0,
        ("http.server.duration_bucket", "1"): 4.0,
        ("http.server.duration_bucket", "+Inf"): 6.0,
    }


def test_exponential_histogram_and_summary() -> None:
    e = metrics_pb2.Metric(name="lat")
    e.exponential_histogram.data_points.add(time_unix_nano=NANOS, count=4, sum=10, scale=1)
    s = metrics_pb2.Metric(name="rpc")
    sp = s.summary.data_points.add(time_unix_nano=NANOS, count=10, sum=55)
    sp.quantile_values.add(quantile=0.5, value=5)
    sp.quantile_values.add(quantile=0.99, value=9.9)
    result = parse_otlp(request({"host.name": "h"}, e, s), builder(), NOW, aliases=False)
    got = {(name, labels.get("quantile")): v for name, _, labels, v in rows(result.batch)}
    assert got == {
        ("lat_count", None): 4.0, ("lat_sum", None): 10.0,
        ("rpc_count", None): 10.0, ("rpc_sum", None): 55.0,
        ("rpc", "0.5"): 5.0, ("rpc", "0.99"): 9.9,
    }


def test_missing_time_means_now() -> None:
    result = parse_otlp(request({"host.name": "h"}, gauge("g", 1, t=0)), builder(), NOW,
                        aliases=False)
    assert result.batch.times == [NOW]
    assert not result.timestamped


def test_json_mapping_with_hex_ids_and_string_ints() -> None:
    doc = {"resourceMetrics": [{
        "resource": {"attributes": [{"key": "host.name", "value": {"stringValue": "j1"}}]},
        "scopeMetrics": [{"metrics": [{
            "name": "queue.depth",
            "sum": {"aggregationTemporality": 2, "isMonotonic": False, "dataPoints": [{
                "timeUnixNano": str(NANOS), "asInt": "42",
                "attributes": [{"key": "queue", "value": {"stringValue": "jobs"}}],
                "exemplars": [{"timeUnixNano": str(NANOS), "asDouble": 1,
                               "traceId": "5b8efff798038103d269b633813fc60c",
                               "spanId": "eee19b7ec3c1b174"}],
            }]},
        }]}],
    }]}
    req = decode(orjson.dumps(doc), "application/json")
    result = parse_otlp(req, builder(), NOW, aliases=False)
    assert rows(result.batch) == [("queue.depth", "j1", {"queue": "jobs"}, 42.0)]


def test_undecodable_bodies() -> None:
    good = request({"host.name": "h"}, gauge("g", 1)).SerializeToString()
    with pytest.raises(InvalidInputError, match="protobuf"):
        decode(good[:-3], "application/x-protobuf")
    with pytest.raises(InvalidInputError, match="JSON"):
        decode(b"{nope", "application/json")
    with pytest.raises(InvalidInputError, match="OTLP JSON"):
        decode(b'{"resourceMetrics": 5}', "application/json")


def test_response_encoding() -> None:
    assert encode_response(0, "", "application/x-protobuf") == b""
    parsed = ExportMetricsServiceResponse.FromString(
        encode_response(2, "nan=2", "application/x-protobuf")
    )
    assert parsed.partial_success.rejected_data_points == 2
    as_json = orjson.loads(encode_response(2, "nan=2", "application/json"))
    assert as_json == {"partialSuccess": {"rejectedDataPoints": "2", "errorMessage": "nan=2"}}
    json_format.ParseDict(as_json, ExportMetricsServiceResponse())


def test_bound_text() -> None:
    assert [bound_text(b) for b in (0.005, 1.0, 1000.0, float("inf"), -2.5)] == [
        "0.005", "1", "1000", "+Inf", "-2.5",
    ]


def test_hostmetrics_aliases() -> None:
    req = request(
        {"host.name": "h"},
        gauge("system.cpu.utilization", 0.75, {"cpu": "cpu2", "state": "idle"}),
        gauge("system.cpu.utilization", 0.2, {"cpu": "cpu2", "state": "user"}),
        gauge("system.cpu.load_average.1m", 1.5),
        gauge("system.filesystem.utilization", 0.4, {"mountpoint": "/data", "type": "xfs",
                                                     "device": "sdb"}),
    )
    result = parse_otlp(req, builder(), NOW, aliases=True)
    derived = {(m, tuple(sorted(labels.items())), v) for m, _, labels, v in rows(result.batch)}
    assert ("cpu.usage_percent", (("cpu", "2"),), 25.0) in derived
    assert ("system.load1", (), 1.5) in derived
    assert ("disk.used_percent", (("mount", "/data"),), 40.0) in derived
    assert len(result.batch) == 4 + 3

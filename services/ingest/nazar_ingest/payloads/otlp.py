"""OTLP/HTTP metrics: ``ExportMetricsServiceRequest`` as protobuf or OTLP JSON.

Mapping (see docs/ingestion.md):

* host = resource attribute ``host.name``, else ``host.id``, else
  ``service.instance.id``; resource attribute ``service.name`` becomes the
  label ``service_name``; other resource and scope attributes are dropped.
* data-point attributes become labels, their keys mapped to label names
  (``.`` and other characters -> ``_``); non-string values are rendered as
  text (arrays and maps as JSON).
* gauges and sums: the point value as sent (cumulative sums stay cumulative,
  delta sums are stored as deltas);
* histograms: ``<name>_count``, ``<name>_sum``, ``<name>_min``, ``<name>_max``
  and ``<name>_bucket{le="<upper bound>"}`` with cumulative counts, the last
  bucket ``le="+Inf"`` (the Prometheus convention);
* exponential histograms: ``_count``, ``_sum``, ``_min``, ``_max``;
* summaries: ``_count``, ``_sum`` and ``<name>{quantile="<q>"}``.

Points that cannot be stored are rejected individually and reported in the
response's ``partial_success``; only an undecodable body fails the request.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)

from nazar_common.errors import InvalidInputError
from nazar_ingest.jsonbody import load_json
from nazar_ingest.payloads import sink as reasons
from nazar_ingest.payloads.names import label_name, metric_name
from nazar_ingest.payloads.sink import SampleSink
from nazar_ingest.samples import BatchBuilder, NormalizedBatch

HOST_ATTRIBUTES = ("host.name", "host.id", "service.instance.id")
NO_RECORDED_VALUE = 1  # DataPointFlags.FLAG_NO_RECORDED_VALUE
NO_VALUE = "no_value"
NO_DATA = "unsupported_metric_type"


@dataclass
class OtlpResult:
    batch: NormalizedBatch
    rejected_points: int
    message: str
    #: Samples skipped, by reason.
    skipped: dict[str, int]
    #: Whether every point carried its own timestamp (none defaulted to now).
    timestamped: bool


def decode(body: bytes, content_type: str) -> Any:
    """``ExportMetricsServiceRequest`` from a protobuf or OTLP JSON body."""
    if content_type == "application/json":
        doc = load_json(body)
        if not isinstance(doc, dict):
            raise InvalidInputError("body must be a JSON ExportMetricsServiceRequest object")
        _drop_exemplars(doc)
        try:
            return json_format.ParseDict(
                doc, ExportMetricsServiceRequest(), ignore_unknown_fields=True
            )
        except (json_format.ParseError, ValueError, TypeError) as exc:
            raise InvalidInputError(f"not a valid OTLP JSON metrics request: {exc}") from exc
    try:
        return ExportMetricsServiceRequest.FromString(body)
    except DecodeError as exc:
        raise InvalidInputError(
            f"body is not a valid ExportMetricsServiceRequest protobuf: {exc}"
        ) from exc


def _drop_exemplars(node: Any) -> None:
    """Exemplars carry hex-encoded trace ids (not proto3 JSON's base64); unused here."""
    if isinstance(node, dict):
        node.pop("exemplars", None)
        for value in node.values():
            if isinstance(value, list | dict):
                _drop_exemplars(value)
    elif isinstance(node, list):
        for item in node:
            if isinstance(item, list | dict):
                _drop_exemplars(item)


def encode_response(rejected: int, message: str, content_type: str) -> bytes:
    response = ExportMetricsServiceResponse()
    if rejected or message:
        response.partial_success.rejected_data_points = rejected
        response.partial_success.error_message = message
    if content_type == "application/json":
        return str(json_format.MessageToJson(response, indent=None)).encode()
    return bytes(response.SerializeToString())


def any_value_text(value: Any) -> str:
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return str(value.string_value)
    if kind == "bool_value":
        return "true" if value.bool_value else "false"
    if kind == "int_value":
        return str(value.int_value)
    if kind == "double_value":
        return repr(value.double_value)
    if kind == "bytes_value":
        return bytes(value.bytes_value).hex()
    if kind in ("array_value", "kvlist_value"):
        return orjson.dumps(json_format.MessageToDict(value)).decode()
    return ""


def bound_text(bound: float) -> str:
    """Histogram bucket bound as a label value: ``0.005``, ``10``, ``+Inf``."""
    if bound == float("inf"):
        return "+Inf"
    if bound.is_integer() and abs(bound) < 1e15:
        return str(int(bound))
    return repr(bound)


class _Walker:
    def __init__(self, out: SampleSink, now: float) -> None:
        self.out = out
        self.now = now
        self.rejected = 0
        self.timestamped = True
        self._attr_cache: dict[bytes, dict[str, str] | None] = {}

    def labels(self, base: dict[str, str], attributes: Any, loc: str) -> dict[str, str] | None:
        if not attributes:
            return base
        labels = dict(base)
        for kv in attributes:
            name = label_name(kv.key)
            if name is None:
                self.out.skip(reasons.BAD_LABELS)
                return None
            text = any_value_text(kv.value)
            if text:
                labels[name] = text
        return self.out.labels(labels, loc)

    def time(self, point: Any) -> float:
        nanos = point.time_unix_nano
        if nanos:
            return float(nanos / 1e9)
        self.timestamped = False
        return self.now

    def point(self, name: str, host: str, base: dict[str, str], point: Any, kind: str,
              loc: str) -> None:
        before = self.out.skipped_total
        self._point(name, host, base, point, kind, loc)
        if self.out.skipped_total != before:
            self.rejected += 1

    def _point(self, name: str, host: str, base: dict[str, str], point: Any, kind: str,
               loc: str) -> None:
        out = self.out
        if point.flags & NO_RECORDED_VALUE:
            out.skip(NO_VALUE)
            return
        labels = self.labels(base, point.attributes, loc)
        if labels is None:
            return
        ts = self.time(point)
        if kind in ("gauge", "sum"):
            which = point.WhichOneof("value")
            if which == "as_double":
                out.add(name, host, labels, ts, point.as_double, loc)
            elif which == "as_int":
                out.add(name, host, labels, ts, float(point.as_int), loc)
            else:
                out.skip(NO_VALUE)
            return
        out.add(name + "_count", host, labels, ts, float(point.count), loc)
        if kind == "summary":
            out.add(name + "_sum", host, labels, ts, point.sum, loc)
            for q in point.quantile_values:
                out.add(name, host, {**labels, "quantile": repr(q.quantile)}, ts, q.value, loc)
            return
        if point.HasField("sum"):
            out.add(name + "_sum", host, labels, ts, point.sum, loc)
        if point.HasField("min"):
            out.add(name + "_min", host, labels, ts, point.min, loc)
        if point.HasField("max"):
            out.add(name + "_max", host, labels, ts, point.max, loc)
        if kind == "histogram" and point.bucket_counts:
            bounds = [*point.explicit_bounds, float("inf")]
            if len(bounds) != len(point.bucket_counts):
                out.skip("invalid_histogram")
                return
            total = 0
            bucket = name + "_bucket"
            for bound, n in zip(bounds, point.bucket_counts, strict=True):
                total += n
                out.add(bucket, host, {**labels, "le": bound_text(bound)}, ts, float(total), loc)


def _count_points(metric: Any) -> int:
    kind = metric.WhichOneof("data")
    return len(getattr(metric, kind).data_points) if kind else 0


def parse_otlp(request: Any, builder: BatchBuilder, now: float, *, aliases: bool) -> OtlpResult:
    """Map a decoded request into ``builder``; never raises for per-point problems."""
    out = SampleSink(builder, aliases=aliases, lenient=True)
    walker = _Walker(out, now)
    for r, resource_metrics in enumerate(request.resource_metrics):
        attrs = {kv.key: kv.value for kv in resource_metrics.resource.attributes}
        raw_host = next(
            (any_value_text(attrs[k]) for k in HOST_ATTRIBUTES if k in attrs), None
        )
        base: dict[str, str] = {}
        if "service.name" in attrs:
            base["service_name"] = any_value_text(attrs["service.name"])
        loc = f"resourceMetrics[{r}]"
        points = sum(
            _count_points(m) for sm in resource_metrics.scope_metrics for m in sm.metrics
        )
        host = out.host(raw_host, loc, points)
        if host is None:
            walker.rejected += points
            continue
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                kind = metric.WhichOneof("data")
                n = _count_points(metric)
                name = metric_name(metric.name)
                if kind is None or name is None:
                    out.skip(reasons.BAD_NAME if kind else NO_DATA, max(n, 1))
                    walker.rejected += n
                    continue
                for point in getattr(metric, kind).data_points:
                    walker.point(name, host, base, point, kind, loc)
    message = ""
    if out.skipped:
        message = "skipped samples: " + ", ".join(
            f"{reason}={count}" for reason, count in sorted(out.skipped.items())
        )
        if out.notes:
            message += "; " + "; ".join(out.notes)
        if reasons.NO_HOST in out.skipped:
            message += (
                "; set the resource attribute host.name (e.g. OTEL_RESOURCE_ATTRIBUTES="
                "host.name=web-1, or the collector's resourcedetection processor)"
            )
    return OtlpResult(
        out.build(), walker.rejected, message, dict(out.skipped), walker.timestamped
    )

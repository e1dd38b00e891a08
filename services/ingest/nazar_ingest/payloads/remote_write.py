"""Prometheus remote write 1.0: snappy-compressed ``prometheus.WriteRequest``.

Mapping (see docs/ingestion.md):

* metric = ``__name__``; host = the ``instance`` label without its port
  (``node1:9100`` -> ``node1``), or else a ``host`` label; ``instance`` and
  ``host`` are then dropped, every other label (``job`` included) is kept.
  Labels starting with ``__`` are dropped; empty values mean "absent".
* timestamps are milliseconds; values are stored as sent (counters stay
  cumulative).
* NaN values (staleness markers included), samples outside the accepted time
  window, series without a usable host and native histograms are skipped and
  counted; they never fail the request, so a Prometheus server that is
  catching up does not retry a batch forever.
"""

from __future__ import annotations

import math
import struct
from typing import NamedTuple

import cramjam
from google.protobuf.message import DecodeError

from nazar_common.errors import InvalidInputError, PayloadTooLargeError
from nazar_common.schemas.names import HOST_RE, label_values_problem
from nazar_ingest.payloads import sink as reasons
from nazar_ingest.payloads.names import label_name, metric_name, strip_port
from nazar_ingest.payloads.sink import SampleSink
from nazar_ingest.payloads.wire import Label, WriteRequestLabelBytes
from nazar_ingest.samples import BatchBuilder, NormalizedBatch

#: Prometheus' staleness marker: a NaN with this exact bit pattern.
STALE_NAN_BITS = 0x7FF0000000000002
NATIVE_HISTOGRAM = "native_histogram"

_DOUBLE = struct.Struct("<d")
_U64 = struct.Struct("<Q")


def _uvarint(data: bytes) -> int | None:
    """The leading unsigned varint of ``data`` (snappy's uncompressed length)."""
    result = shift = 0
    for i, byte in enumerate(data[:10]):
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result
        shift += 7
        if i == 9:
            break
    return None


def decompress(body: bytes, max_bytes: int) -> bytes:
    """Snappy block decompression, refusing bodies larger than ``max_bytes`` unpacked."""
    if not body:
        raise InvalidInputError("empty body; expected a snappy-compressed WriteRequest")
    size = _uvarint(body)
    if size is None:
        raise InvalidInputError("body is not snappy block-compressed (bad length header)")
    if size > max_bytes:
        raise PayloadTooLargeError(
            f"decompressed body of {size} bytes exceeds the limit of {max_bytes}"
        )
    try:
        return bytes(cramjam.snappy.decompress_raw(body))
    except cramjam.DecompressionError as exc:
        raise InvalidInputError(f"body is not valid snappy (block format): {exc}") from exc


def is_stale_marker(value: float) -> bool:
    return bool(_U64.unpack(_DOUBLE.pack(value))[0] == STALE_NAN_BITS)


class _Series(NamedTuple):
    """A decoded label set: the sample destination, or why its samples are skipped."""

    metric: str
    host: str | None
    labels: dict[str, str]
    skip: str | None


#: Label sets already decoded, keyed by their encoded label bytes. Bounded;
#: cleared when full. The label dicts are shared and never mutated.
_SERIES_CACHE: dict[tuple[bytes, ...], _Series] = {}
_SERIES_CACHE_LIMIT = 200_000


def _decode_series(raw_labels: tuple[bytes, ...]) -> _Series:
    name = instance = host_label = None
    labels: dict[str, str] = {}
    for raw in raw_labels:
        label = Label.FromString(raw)  # DecodeError (e.g. invalid UTF-8) -> 400
        key = label.name
        value = label.value
        if key == "__name__":
            name = value
        elif key == "instance":
            instance = value
        elif key == "host":
            host_label = value
        elif not value or key.startswith("__"):
            continue
        else:
            mapped = label_name(key)
            if mapped is None:
                return _Series("", None, {}, reasons.BAD_LABELS)
            labels[mapped] = value
    metric = metric_name(name) if name else None
    if metric is None:
        return _Series("", None, {}, reasons.BAD_NAME)
    raw_host = strip_port(instance) if instance else host_label
    if host_label and instance:
        labels["host"] = host_label
    if not raw_host or not HOST_RE.match(raw_host):
        return _Series(metric, None, labels, reasons.NO_HOST)
    if label_values_problem(labels) is not None:
        return _Series(metric, raw_host, labels, reasons.BAD_LABELS)
    return _Series(metric, raw_host, labels, None)


def _series(raw_labels: tuple[bytes, ...]) -> _Series:
    series = _SERIES_CACHE.get(raw_labels)
    if series is None:
        series = _decode_series(raw_labels)
        if len(_SERIES_CACHE) >= _SERIES_CACHE_LIMIT:
            _SERIES_CACHE.clear()
        _SERIES_CACHE[raw_labels] = series
    return series


def parse_remote_write(data: bytes, builder: BatchBuilder, *, aliases: bool) -> NormalizedBatch:
    """Decode an uncompressed WriteRequest into ``builder``."""
    out = SampleSink(builder, aliases=aliases, lenient=True)
    try:
        request = WriteRequestLabelBytes.FromString(data)
        for i, raw_series in enumerate(request.timeseries):
            samples = raw_series.samples
            if raw_series.histograms:
                out.skip(NATIVE_HISTOGRAM, len(raw_series.histograms))
            if not samples:
                continue
            series = _series(tuple(raw_series.labels))
            if series.skip is not None:
                out.skip(series.skip, len(samples))
                continue
            loc = f"timeseries[{i}]"
            host = out.host(series.host, loc)
            if host is None:
                continue
            metric = series.metric
            labels = series.labels
            for sample in samples:
                value = sample.value
                if value != value:
                    out.skip(reasons.STALE if is_stale_marker(value) else reasons.NAN)
                elif not math.isfinite(value):
                    out.skip(reasons.NOT_FINITE)
                else:
                    out.add(metric, host, labels, sample.timestamp / 1000.0, value, loc)
    except DecodeError as exc:
        raise InvalidInputError(
            f"body is not a valid prometheus.WriteRequest protobuf: {exc}"
        ) from exc
    return out.build()

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

import cramjam
from google.protobuf.message import DecodeError

from nazar_common.errors import InvalidInputError, PayloadTooLargeError
from nazar_ingest.payloads import sink as reasons
from nazar_ingest.payloads.names import label_name, metric_name, strip_port
from nazar_ingest.payloads.sink import SampleSink
from nazar_ingest.payloads.wire import WriteRequest
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


def parse_remote_write(data: bytes, builder: BatchBuilder, *, aliases: bool) -> NormalizedBatch:
    """Decode an uncompressed WriteRequest into ``builder``."""
    try:
        request = WriteRequest.FromString(data)
    except DecodeError as exc:
        raise InvalidInputError(
            f"body is not a valid prometheus.WriteRequest protobuf: {exc}"
        ) from exc
    out = SampleSink(builder, aliases=aliases, lenient=True)
    for i, series in enumerate(request.timeseries):
        samples = series.samples
        if series.histograms:
            out.skip(NATIVE_HISTOGRAM, len(series.histograms))
        if not samples:
            continue
        count = len(samples)
        name = instance = host_label = None
        labels: dict[str, str] = {}
        for label in series.labels:
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
                    out.skip(reasons.BAD_LABELS, count)
                    break
                labels[mapped] = value
        else:
            metric = metric_name(name) if name else None
            if metric is None:
                out.skip(reasons.BAD_NAME, count)
                continue
            raw_host = strip_port(instance) if instance else host_label
            if host_label and instance:
                labels["host"] = host_label
            loc = f"timeseries[{i}]"
            host = out.host(raw_host, loc, count)
            if host is None or out.labels(labels, loc, count) is None:
                continue
            for sample in samples:
                value = sample.value
                if value != value:
                    out.skip(reasons.STALE if is_stale_marker(value) else reasons.NAN)
                elif not math.isfinite(value):
                    out.skip(reasons.NOT_FINITE)
                else:
                    out.add(metric, host, labels, sample.timestamp / 1000.0, value, loc)
    return out.build()

"""Prometheus remote-write decoding (pure logic)."""

from __future__ import annotations

import math
import struct
import time

import cramjam
import orjson
import pytest

from nazar_common.errors import InvalidInputError, PayloadTooLargeError
from nazar_ingest.payloads.remote_write import (
    STALE_NAN_BITS,
    decompress,
    is_stale_marker,
    parse_remote_write,
)
from nazar_ingest.payloads.wire import WriteRequest
from nazar_ingest.samples import BatchBuilder, Limits

NOW = time.time()
STALE = struct.unpack("<d", struct.pack("<Q", STALE_NAN_BITS))[0]


def builder(max_samples: int = 1000) -> BatchBuilder:
    return BatchBuilder(Limits(max_samples=max_samples, oldest=NOW - 3600, newest=NOW + 600))


def write_request(*series: tuple[dict[str, str], list[tuple[float, float]]]) -> bytes:
    request = WriteRequest()
    for labels, samples in series:
        ts = request.timeseries.add()
        for name, value in labels.items():
            ts.labels.add(name=name, value=value)
        for t, v in samples:
            ts.samples.add(value=v, timestamp=int(t * 1000))
    return bytes(request.SerializeToString())


def rows(batch) -> list[tuple[str, str, dict[str, str], float, float]]:
    return [
        (batch.keys[i].metric, batch.keys[i].host, orjson.loads(batch.keys[i].labels), t, v)
        for i, t, v in zip(batch.series_index, batch.times, batch.values, strict=True)
    ]


def test_maps_instance_to_host_and_keeps_job() -> None:
    data = write_request(
        ({"__name__": "node_load1", "instance": "web-1:9100", "job": "node"},
         [(NOW - 2, 0.5), (NOW - 1, 0.75)]),
    )
    batch = parse_remote_write(data, builder(), aliases=False)
    assert rows(batch) == [
        ("node_load1", "web-1", {"job": "node"}, pytest.approx(NOW - 2, abs=1e-3), 0.5),
        ("node_load1", "web-1", {"job": "node"}, pytest.approx(NOW - 1, abs=1e-3), 0.75),
    ]
    assert batch.hosts == {"web-1": "{}"}


def test_host_label_fallback_and_reserved_labels_dropped() -> None:
    data = write_request(
        ({"__name__": "up", "host": "db-1", "__meta_x": "y", "empty": "", "dc": "eu"},
         [(NOW, 1)]),
        ({"__name__": "up", "instance": "[::1]:9100", "host": "other"}, [(NOW, 1)]),
    )
    b = builder()
    batch = parse_remote_write(data, b, aliases=False)
    assert [(m, h, labels) for m, h, labels, _, _ in rows(batch)] == [
        ("up", "db-1", {"dc": "eu"}),
    ]
    # "::1" is not a valid host name: that series is skipped, the request is not failed
    assert b.skipped == {"no_host": 1}


def test_nan_stale_old_and_future_samples_are_skipped_and_counted() -> None:
    data = write_request(
        ({"__name__": "m", "instance": "h1:1"},
         [(NOW, 1.0), (NOW + 1, STALE), (NOW + 2, math.nan), (NOW + 3, math.inf),
          (NOW - 86400, 2.0), (NOW + 86400, 3.0)]),
    )
    assert is_stale_marker(STALE) and not is_stale_marker(math.nan)
    b = builder()
    batch = parse_remote_write(data, b, aliases=False)
    assert batch.values == [1.0]
    assert b.skipped == {
        "staleness_marker": 1, "nan": 1, "not_finite": 1, "too_old": 1, "too_new": 1,
    }


def test_series_without_name_or_host_are_skipped() -> None:
    data = write_request(
        ({"instance": "h:1"}, [(NOW, 1)]),
        ({"__name__": "m"}, [(NOW, 1), (NOW + 1, 2)]),
        ({"__name__": "m", "instance": "h:1"}, [(NOW, 3)]),
    )
    b = builder()
    batch = parse_remote_write(data, b, aliases=False)
    assert batch.values == [3.0]
    assert b.skipped == {"invalid_metric_name": 1, "no_host": 2}


def test_utf8_names_are_mapped() -> None:
    data = write_request(({"__name__": "http.requests-total", "instance": "h:1",
                           "status code": "200"}, [(NOW, 1)]))
    batch = parse_remote_write(data, builder(), aliases=False)
    assert rows(batch)[0][:3] == ("http.requests_total", "h", {"status_code": "200"})


def test_gauge_aliases_are_added_when_enabled() -> None:
    data = write_request(
        ({"__name__": "node_memory_MemAvailable_bytes", "instance": "h:9100", "job": "node"},
         [(NOW, 1e9)]),
        ({"__name__": "node_filesystem_avail_bytes", "instance": "h:9100", "job": "node",
          "mountpoint": "/", "fstype": "ext4", "device": "/dev/sda1"}, [(NOW, 5e9)]),
        ({"__name__": "node_filesystem_avail_bytes", "instance": "h:9100",
          "mountpoint": "/run", "fstype": "tmpfs", "device": "tmpfs"}, [(NOW, 1e6)]),
    )
    off = parse_remote_write(data, builder(), aliases=False)
    assert len(off) == 3
    on = parse_remote_write(data, builder(), aliases=True)
    got = {(m, tuple(sorted(labels.items())), v) for m, _, labels, _, v in rows(on)}
    assert ("mem.available_bytes", (), 1e9) in got
    assert ("disk.free_bytes", (("mount", "/"),), 5e9) in got
    assert len(on) == 5  # no alias for the tmpfs mount


def test_garbage_and_truncated_bodies_are_rejected() -> None:
    good = write_request(({"__name__": "m", "instance": "h:1"}, [(NOW, 1)] * 3))
    with pytest.raises(InvalidInputError, match="WriteRequest"):
        parse_remote_write(good[:-4], builder(), aliases=False)
    with pytest.raises(InvalidInputError, match="WriteRequest"):
        parse_remote_write(b"\x0a\xff\xff\xff\x0f", builder(), aliases=False)
    with pytest.raises(InvalidInputError, match="snappy"):
        decompress(b"\x10garbage that is not snappy", 1 << 20)
    with pytest.raises(InvalidInputError, match="empty"):
        decompress(b"", 1 << 20)
    compressed = bytes(cramjam.snappy.compress_raw(good))
    assert decompress(compressed, 1 << 20) == good
    with pytest.raises(PayloadTooLargeError):
        decompress(bytes(cramjam.snappy.compress_raw(b"\0" * 5000)), 4096)


def test_too_many_samples_is_413() -> None:
    data = write_request(({"__name__": "m", "instance": "h:1"},
                          [(NOW - i, i) for i in range(11)]))
    with pytest.raises(PayloadTooLargeError):
        parse_remote_write(data, builder(max_samples=10), aliases=False)

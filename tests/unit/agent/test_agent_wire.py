from __future__ import annotations

import math
import uuid

from nazar_agent.samples import Sample, chunk
from nazar_agent.wire import decode_body, encode_batches


def samples(count: int) -> list[Sample]:
    return [
        Sample("cpu.usage_percent", float(i), 1764097200.123, {"cpu": str(i)}) for i in range(count)
    ]


def test_body_shape() -> None:
    [batch] = encode_batches("web-1", {"env": "prod"}, samples(2), max_samples=100)
    uuid.UUID(batch.batch_id)
    assert batch.sample_count == 2
    assert decode_body(batch.body) == {
        "host": "web-1",
        "labels": {"env": "prod"},
        "samples": [
            {
                "metric": "cpu.usage_percent",
                "value": 0.0,
                "timestamp": 1764097200.123,
                "labels": {"cpu": "0"},
            },
            {
                "metric": "cpu.usage_percent",
                "value": 1.0,
                "timestamp": 1764097200.123,
                "labels": {"cpu": "1"},
            },
        ],
    }


def test_split_at_max_samples() -> None:
    batches = encode_batches("h", {}, samples(25), max_samples=10)
    assert [b.sample_count for b in batches] == [10, 10, 5]
    assert len({b.batch_id for b in batches}) == 3
    values = [s["value"] for b in batches for s in decode_body(b.body)["samples"]]
    assert values == [float(i) for i in range(25)]


def test_empty_collection_gives_no_batch() -> None:
    assert encode_batches("h", {}, [], max_samples=10) == []


def test_invalid_samples_are_left_out() -> None:
    bad = [
        Sample("9starts.with.digit", 1.0, 1.0),
        Sample("has space", 1.0, 1.0),
        Sample("ok.metric", math.nan, 1.0),
        Sample("ok.metric", math.inf, 1.0),
        Sample("ok.metric", 1.0, 1.0, {"bad-label": "x"}),
    ]
    good = Sample("ok.metric:total", 1.0, 1.0, {"_label1": "x"})
    [batch] = encode_batches("h", {}, [*bad, good], max_samples=10)
    assert batch.sample_count == 1
    assert decode_body(batch.body)["samples"][0]["metric"] == "ok.metric:total"


def test_chunk() -> None:
    assert [list(c) for c in chunk([1, 2, 3], 2)] == [[1, 2], [3]]
    assert list(chunk([], 5)) == []

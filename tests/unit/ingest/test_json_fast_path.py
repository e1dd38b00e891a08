"""``parse_json``: the fast path for known series must give exactly what the
general path (``parse_json_payload``) gives, and step aside for anything it
does not handle, so that errors keep naming their fields."""

import orjson
import pytest

from nazar_common.errors import InvalidInputError
from nazar_ingest import samples
from nazar_ingest.samples import (
    BatchBuilder,
    Limits,
    NormalizedBatch,
    SeriesKeyList,
    parse_json,
    parse_json_payload,
)

NOW = 1_800_000_000.0
LIMITS = Limits(100, NOW - 3600, NOW + 600)


@pytest.fixture(autouse=True)
def _forget() -> None:
    samples._KNOWN.clear()


def body(host: str = "web-1", **changes: object) -> bytes:
    doc: dict[str, object] = {
        "host": host,
        "labels": {"env": "prod"},
        "samples": [
            {
                "metric": "cpu.usage_percent",
                "value": 12.5,
                "timestamp": NOW - 10,
                "labels": {"cpu": "total"},
            },
            {
                "metric": "cpu.usage_percent",
                "value": 3,
                "timestamp": NOW - 10,
                "labels": {"cpu": "0"},
            },
            {"metric": "mem.used_percent", "value": 40.0, "timestamp": NOW - 9.5},
        ],
    }
    doc.update(changes)
    return orjson.dumps(doc)


def general(raw: bytes) -> NormalizedBatch:
    return parse_json_payload(raw, BatchBuilder(LIMITS), NOW)


def per_sample(batch: NormalizedBatch) -> list[tuple[object, ...]]:
    return [
        (batch.keys[i], t, v)
        for i, t, v in zip(batch.series_index, batch.times, batch.values, strict=True)
    ]


def test_known_series_take_the_fast_path_with_the_same_result() -> None:
    first = parse_json(body(), LIMITS, NOW)  # general path; teaches the series
    assert not isinstance(first.keys, SeriesKeyList)
    second = parse_json(body(), LIMITS, NOW)
    assert isinstance(second.keys, SeriesKeyList)
    expected = general(body())
    assert per_sample(second) == per_sample(expected)
    assert second.hosts == expected.hosts
    assert all(type(v) is float for v in second.values)


def test_same_shape_shares_one_key_list() -> None:
    parse_json(body(), LIMITS, NOW)
    a = parse_json(body(), LIMITS, NOW)
    b = parse_json(body(), LIMITS, NOW)
    assert a.keys is b.keys


def test_reordered_samples_still_map_to_their_series() -> None:
    parse_json(body(), LIMITS, NOW)
    doc = orjson.loads(body())
    doc["samples"].reverse()
    raw = orjson.dumps(doc)
    batch = parse_json(raw, LIMITS, NOW)
    assert isinstance(batch.keys, SeriesKeyList)
    assert per_sample(batch) == per_sample(general(raw))


def test_other_hosts_and_labels_are_not_confused() -> None:
    parse_json(body(), LIMITS, NOW)
    raw = body(host="web-2")
    batch = parse_json(raw, LIMITS, NOW)
    assert {k.host for k in batch.keys} == {"web-2"}
    raw = body(labels={"env": "dev"})
    batch = parse_json(raw, LIMITS, NOW)
    assert per_sample(batch) == per_sample(general(raw))


@pytest.mark.parametrize(
    ("sample", "loc"),
    [
        (
            {"metric": "cpu.usage_percent", "value": "high", "labels": {"cpu": "total"}},
            "samples[0].value",
        ),
        (
            {"metric": "cpu.usage_percent", "value": True, "labels": {"cpu": "total"}},
            "samples[0].value",
        ),
        (
            {
                "metric": "cpu.usage_percent",
                "value": 1,
                "timestamp": NOW - 7200,
                "labels": {"cpu": "total"},
            },
            "samples[0].timestamp",
        ),
        (
            {
                "metric": "cpu.usage_percent",
                "value": 1,
                "timestamp": "yesterday",
                "labels": {"cpu": "total"},
            },
            "samples[0].timestamp",
        ),
        (
            {"metric": "cpu.usage_percent", "value": 1, "labels": {"cpu": 0}},
            "samples[0].labels.cpu",
        ),
        ({"metric": "cpu usage", "value": 1}, "samples[0].metric"),
    ],
)
def test_invalid_requests_of_known_series_keep_field_errors(
    sample: dict[str, object], loc: str
) -> None:
    parse_json(body(), LIMITS, NOW)
    with pytest.raises(InvalidInputError) as err:
        parse_json(body(samples=[sample]), LIMITS, NOW)
    assert [e["loc"] for e in err.value.extra["errors"]] == [loc]


def test_unusual_requests_take_the_general_path() -> None:
    parse_json(body(), LIMITS, NOW)
    doc = orjson.loads(body())
    doc["samples"][0]["host"] = "web-9"  # a sample with its own host
    del doc["samples"][1]["timestamp"]  # "now"
    doc["samples"][2]["timestamp"] = "2027-01-15T08:00:00Z"
    raw = orjson.dumps(doc)
    batch = parse_json(raw, LIMITS, NOW)
    assert not isinstance(batch.keys, SeriesKeyList)
    assert per_sample(batch) == per_sample(general(raw))


def test_a_rejected_request_teaches_nothing() -> None:
    with pytest.raises(InvalidInputError):
        parse_json(body(samples=[{"metric": "m", "value": "x"}]), LIMITS, NOW)
    assert samples._KNOWN == {}

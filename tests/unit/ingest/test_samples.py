import time

import orjson
import pytest

from nazar_common.errors import InvalidInputError, PayloadTooLargeError
from nazar_ingest.samples import BatchBuilder, Limits, parse_json_payload, parse_timestamp

NOW = 1_800_000_000.0


def parse(doc: object, max_samples: int = 100) -> object:
    builder = BatchBuilder(Limits(max_samples, NOW - 3600, NOW + 600))
    return parse_json_payload(orjson.dumps(doc), builder, NOW)


def test_defaults_and_overrides() -> None:
    batch = parse(
        {
            "host": "a",
            "labels": {"env": "prod", "dc": "x"},
            "samples": [
                {"metric": "m", "value": 1},
                {"metric": "m", "value": 2, "labels": {"env": "dev"}, "host": "b"},
                {"metric": "m", "value": 3, "timestamp": NOW - 5},
            ],
        }
    )
    assert len(batch) == 3
    assert [k.host for k in batch.keys] == ["a", "b"]
    assert orjson.loads(batch.keys[0].labels) == {"env": "prod", "dc": "x"}
    assert orjson.loads(batch.keys[1].labels) == {"env": "dev", "dc": "x"}
    assert batch.series_index == [0, 1, 0]
    assert batch.times == [NOW, NOW, NOW - 5]
    assert batch.hosts == {"a": '{"dc":"x","env":"prod"}', "b": '{"dc":"x","env":"prod"}'}


def test_label_order_does_not_split_series() -> None:
    batch = parse(
        {
            "host": "a",
            "samples": [
                {"metric": "m", "value": 1, "labels": {"x": "1", "y": "2"}},
                {"metric": "m", "value": 1, "labels": {"y": "2", "x": "1"}},
            ],
        }
    )
    assert len(batch.keys) == 1


@pytest.mark.parametrize(
    ("sample", "loc"),
    [
        ({"metric": "9lives", "value": 1}, "samples[0].metric"),
        ({"metric": "m", "value": "1"}, "samples[0].value"),
        ({"metric": "m", "value": True}, "samples[0].value"),
        ({"metric": "m", "value": 1, "timestamp": NOW - 7200}, "samples[0].timestamp"),
        ({"metric": "m", "value": 1, "timestamp": NOW + 3600}, "samples[0].timestamp"),
        ({"metric": "m", "value": 1, "timestamp": "yesterday"}, "samples[0].timestamp"),
        ({"metric": "m", "value": 1, "timestamp": "2026-01-01T00:00:00"}, "samples[0].timestamp"),
        ({"metric": "m", "value": 1, "labels": {"a-b": "x"}}, "samples[0].labels.a-b"),
        ({"metric": "m", "value": 1, "labels": {"a": 1}}, "samples[0].labels.a"),
        ({"metric": "m", "value": 1, "bogus": 1}, "samples[0]"),
        ({"metric": "m", "value": 1, "host": "bad host"}, "samples[0].host"),
    ],
)
def test_rejections_name_the_field(sample: dict[str, object], loc: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        parse({"host": "a", "samples": [sample]})
    assert [e["loc"] for e in info.value.extra["errors"]] == [loc]


def test_missing_host() -> None:
    with pytest.raises(InvalidInputError):
        parse({"samples": [{"metric": "m", "value": 1}]})


def test_limits() -> None:
    with pytest.raises(PayloadTooLargeError):
        parse({"host": "a", "samples": [{"metric": "m", "value": 1}] * 101})
    with pytest.raises(InvalidInputError):
        parse([1, 2])
    with pytest.raises(InvalidInputError):
        parse({"host": "a", "samples": "nope"})


def test_timestamps() -> None:
    assert parse_timestamp(None, 5.0) == 5.0
    assert parse_timestamp(12, 0) == 12.0
    assert parse_timestamp("1970-01-01T00:01:00Z", 0) == 60.0
    assert parse_timestamp("1970-01-01T01:00:00+01:00", 0) == 0.0
    assert parse_timestamp(float("nan"), 0) is None
    assert parse_timestamp(True, 0) is None
    assert abs(parse_timestamp(None, time.time()) - time.time()) < 5  # type: ignore[operator]

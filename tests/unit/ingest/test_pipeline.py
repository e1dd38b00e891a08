import uuid

from nazar_common.schemas.wire import SampleBatchV1
from nazar_ingest.pipeline import from_message, merge, to_message
from nazar_ingest.samples import BatchBuilder, Limits, parse_json_payload

NOW = 1_800_000_000.0


def batch(host: str, values: list[float]) -> object:
    import orjson

    doc = {
        "host": host,
        "labels": {"env": "t"},
        "samples": [
            {"metric": "m", "value": v, "timestamp": NOW - i} for i, v in enumerate(values)
        ],
    }
    return parse_json_payload(orjson.dumps(doc), BatchBuilder(Limits(100, 0, NOW + 1)), NOW)


def test_merge_deduplicates_series_and_keeps_samples() -> None:
    a, b, c = batch("a", [1, 2]), batch("b", [3]), batch("a", [4])
    m = merge([a, b, c])  # type: ignore[list-item]
    assert len(m) == 4
    assert [k.host for k in m.keys] == ["a", "b"]
    assert m.series_index == [0, 0, 1, 0]
    assert m.values == [1, 2, 3, 4]


def test_message_roundtrip_is_a_valid_model() -> None:
    m = merge([batch("a", [1, 2]), batch("b", [3])])  # type: ignore[list-item]
    mid = uuid.uuid4()
    body = to_message(m, [10, 11], mid)
    msg = SampleBatchV1.from_bytes(body)
    assert msg.id == mid
    assert [(s.host, s.id, s.labels) for s in msg.series] == [
        ("a", 10, {"env": "t"}),
        ("b", 11, {"env": "t"}),
    ]
    assert msg.hosts == {"a": {"env": "t"}, "b": {"env": "t"}}
    back = from_message(msg, "key-1")
    assert back.keys == m.keys
    assert back.values == m.values
    assert back.idempotency_key == "key-1"

import uuid

from nazar_common.schemas.wire import SampleBatchV1
from nazar_ingest.pipeline import (
    Columns,
    columns_message,
    from_message,
    series_json,
    to_message,
)
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


def test_columns_concatenate_batches() -> None:
    a, b = batch("a", [1, 2]), batch("b", [3])
    columns = Columns()
    columns.add(a, [7, 7])  # type: ignore[arg-type]
    columns.add(b, [8])  # type: ignore[arg-type]
    assert len(columns) == 3
    assert columns.series_ids == [7, 7, 8]
    assert columns.values == [1, 2, 3]
    assert columns.times == [NOW, NOW - 1, NOW]
    assert columns.hosts == {"a": '{"env":"t"}', "b": '{"env":"t"}'}


def test_message_of_columns_is_a_valid_model() -> None:
    a, b, c = batch("a", [1, 2]), batch("b", [3]), batch("a", [4])
    columns = Columns()
    for part, ids in ((a, [10, 10]), (b, [11]), (c, [10])):
        columns.add(part, ids)  # type: ignore[arg-type]
    series = {
        sid: series_json(key, sid)
        for sid, key in ((10, a.keys[0]), (11, b.keys[0]))  # type: ignore[attr-defined]
    }
    mid = uuid.uuid4()
    msg = SampleBatchV1.from_bytes(columns_message(columns, series, mid))
    assert msg.id == mid
    assert [(s.host, s.id, s.labels) for s in msg.series] == [
        ("a", 10, {"env": "t"}),
        ("b", 11, {"env": "t"}),
    ]
    assert msg.series_index == [0, 0, 1, 0]
    assert msg.values == [1, 2, 3, 4]
    assert msg.hosts == {"a": {"env": "t"}, "b": {"env": "t"}}


def test_unresolved_message_roundtrip() -> None:
    m = batch("a", [1, 2])
    mid = uuid.uuid4()
    msg = SampleBatchV1.from_bytes(to_message(m, mid))  # type: ignore[arg-type]
    assert [s.id for s in msg.series] == [None]
    back = from_message(msg, "key-1")
    assert back.keys == m.keys  # type: ignore[attr-defined]
    assert back.values == [1, 2]
    assert back.series_index == [0, 0]
    assert back.idempotency_key == "key-1"

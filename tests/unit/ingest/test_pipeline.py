import uuid

from nazar_common.messaging.topology import SAMPLES_EXCHANGE, partition_of, partition_routing_key
from nazar_common.schemas.wire import SampleBatchV1
from nazar_ingest.pipeline import (
    Columns,
    Parts,
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


def _hosts_in(partitions: int, count: int) -> list[str]:
    """``count`` host names in distinct partitions."""
    found: dict[int, str] = {}
    i = 0
    while len(found) < count:
        found.setdefault(partition_of(f"h{i}", partitions), f"h{i}")
        i += 1
    return list(found.values())


def test_parts_write_one_message_per_partition_naming_only_its_hosts() -> None:
    a, b = _hosts_in(8, 2)
    ba, bb, ba2 = batch(a, [1, 2]), batch(b, [3]), batch(a, [4])
    parts = Parts(8)
    for item, ids in ((ba, [10, 10]), (bb, [11]), (ba2, [10])):
        parts.add(item, ids)  # type: ignore[arg-type]
    merged = parts.merged()
    assert sorted(zip(merged.series_ids, merged.values, strict=True)) == [
        (10, 1),
        (10, 2),
        (10, 4),
        (11, 3),
    ]
    assert merged.hosts == {a: '{"env":"t"}', b: '{"env":"t"}'}
    series = {10: series_json(ba.keys[0], 10), 11: series_json(bb.keys[0], 11)}  # type: ignore[attr-defined]
    rows = parts.outbox(series)
    assert sorted(r[1] for r in rows) == sorted(
        partition_routing_key(partition_of(h, 8)) for h in (a, b)
    )
    for exchange, key, mid, body in rows:
        assert exchange == SAMPLES_EXCHANGE
        msg = SampleBatchV1.from_bytes(body)
        assert msg.id == mid
        hosts = {s.host for s in msg.series}
        assert len(hosts) == 1 and set(msg.hosts) == hosts
        assert key == partition_routing_key(partition_of(hosts.pop(), 8))
        if msg.series[0].host == a:
            assert (msg.values, msg.series_index) == ([1, 2, 4], [0, 0, 0])
        else:
            assert (msg.values, msg.series_index) == ([3], [0])


def test_parts_split_a_batch_of_several_hosts_sample_by_sample() -> None:
    a, b, c = _hosts_in(4, 3)
    doc = {
        "labels": {"env": "t"},
        "samples": [
            {"metric": "m", "host": h, "value": float(i), "timestamp": NOW - i}
            for i, h in enumerate([a, b, a, c, b])
        ],
    }
    import orjson

    mixed = parse_json_payload(orjson.dumps(doc), BatchBuilder(Limits(100, 0, NOW + 1)), NOW)
    assert len(mixed.hosts) == 3
    ids = {a: 1, b: 2, c: 3}
    series_ids = [ids[mixed.keys[i].host] for i in mixed.series_index]
    parts = Parts(4)
    parts.add(mixed, series_ids)
    rows = parts.outbox({ids[k.host]: series_json(k, ids[k.host]) for k in mixed.keys})
    assert len(rows) == 3
    got = {}
    for _, key, _, body in rows:
        msg = SampleBatchV1.from_bytes(body)
        [host] = {s.host for s in msg.series}
        assert key == partition_routing_key(partition_of(host, 4))
        assert set(msg.hosts) == {host}
        got[host] = msg.values
    assert got == {a: [0.0, 2.0], b: [1.0, 4.0], c: [3.0]}
    assert sorted(parts.merged().values) == [0.0, 1.0, 2.0, 3.0, 4.0]

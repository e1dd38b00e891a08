"""Influx line-protocol decoding (pure logic)."""

from __future__ import annotations

import time

import orjson
import pytest

from nazar_common.errors import InvalidInputError
from nazar_ingest.payloads.influx import (
    PRECISION_V1,
    PRECISION_V2,
    LineError,
    field_value,
    parse_line,
    parse_line_protocol,
)
from nazar_ingest.samples import BatchBuilder, Limits

NOW = time.time()
NS = int(NOW) * 1_000_000_000


def builder() -> BatchBuilder:
    return BatchBuilder(Limits(max_samples=1000, oldest=NOW - 3600, newest=NOW + 600))


def parse(body: str, unit: float = 1e-9, host: str | None = None, aliases: bool = False):
    b = builder()
    batch, timestamped = parse_line_protocol(
        body.encode(), b, unit=unit, now=NOW, default_host=host, aliases=aliases
    )
    got = [
        (batch.keys[i].metric, batch.keys[i].host, orjson.loads(batch.keys[i].labels), t, v)
        for i, t, v in zip(batch.series_index, batch.times, batch.values, strict=True)
    ]
    return got, b.skipped, timestamped


def test_telegraf_lines() -> None:
    body = (
        f"cpu,cpu=cpu-total,host=web-1 usage_idle=97.5,usage_user=1.5 {NS}\n"
        f"mem,host=web-1 used_percent=40.25,total=8000000000i,active=5u {NS}\n"
        "# a comment\n\n"
    )
    got, skipped, timestamped = parse(body)
    assert got == [
        ("cpu.usage_idle", "web-1", {"cpu": "cpu-total"}, NOW // 1, 97.5),
        ("cpu.usage_user", "web-1", {"cpu": "cpu-total"}, NOW // 1, 1.5),
        ("mem.used_percent", "web-1", {}, NOW // 1, 40.25),
        ("mem.total", "web-1", {}, NOW // 1, 8e9),
        ("mem.active", "web-1", {}, NOW // 1, 5.0),
    ]
    assert skipped == {} and timestamped


@pytest.mark.parametrize(("line", "expected"), [
    (r"my\ meas\,ure,t\ k\=1=v\,a\=l\ ue f\=k\ 1=1", ("my meas,ure", [("t k=1", "v,a=l ue")],
                                                    [("f=k 1", "1", False)], None)),
    (r'm,t=a f="say \"hi\" \\ back\slash",g=2 123', ("m", [("t", "a")],
     [("f", 'say "hi" \\ back\\slash', True), ("g", "2", False)], "123")),
    ('m f="a, b=c d",g=1i', ("m", [], [("f", "a, b=c d", True), ("g", "1i", False)], None)),
    (r"m\\x f=1", ("m\\x", [], [("f", "1", False)], None)),
    (r"m\=x f=1", ("m\\=x", [], [("f", "1", False)], None)),
    ("m,t=x f=1  42", ("m", [("t", "x")], [("f", "1", False)], "42")),
])
def test_escaping(line: str, expected: tuple[object, ...]) -> None:
    assert tuple(parse_line(line)) == expected


@pytest.mark.parametrize("line", [
    "m", "m f", "m f=", "m =1", "m,t f=1", "m,t= f=1", ",t=1 f=1", 'm f="unterminated',
    "m,t=a=b f=1", "m f=1 2 3",
])
def test_syntax_errors(line: str) -> None:
    with pytest.raises(LineError):
        parse_line(line)


def test_field_types() -> None:
    assert field_value("1.5", False) == 1.5
    assert field_value("-2e3", False) == -2000.0
    assert field_value(".5", False) == 0.5
    assert field_value("-7i", False) == -7.0
    assert field_value("7u", False) == 7.0
    for t in ("t", "T", "true", "True", "TRUE"):
        assert field_value(t, False) == 1.0
    for f in ("f", "F", "false", "False", "FALSE"):
        assert field_value(f, False) == 0.0
    assert field_value("anything", True) is None
    for bad in ("-7u", "1.5i", "nan", "inf", "yes", "1,5", "0x10"):
        with pytest.raises(LineError):
            field_value(bad, False)


def test_strings_skipped_booleans_stored() -> None:
    got, skipped, _ = parse(f'svc,host=h up=true,state="running",code=0i {NS}')
    assert [(m, v) for m, _, _, _, v in got] == [("svc.up", 1.0), ("svc.code", 0.0)]
    assert skipped == {"string_field": 1}


@pytest.mark.parametrize(("precision", "table", "ts"), [
    ("ns", PRECISION_V2, NS), ("us", PRECISION_V2, NS // 1000), ("ms", PRECISION_V2, NS // 10**6),
    ("s", PRECISION_V2, NS // 10**9), ("n", PRECISION_V1, NS), ("u", PRECISION_V1, NS // 1000),
    ("m", PRECISION_V1, NS // 60 // 10**9), ("h", PRECISION_V1, NS // 3600 // 10**9),
])
def test_precisions(precision: str, table: dict[str, float], ts: int) -> None:
    got, _, _ = parse(f"m,host=h f=1 {ts}", unit=table[precision])
    expected = ts * table[precision]
    assert got[0][3] == pytest.approx(expected, abs=1e-6)
    assert abs(got[0][3] - NOW) < 3601


def test_missing_timestamp_is_now_and_host_param_fallback() -> None:
    got, _, timestamped = parse("m f=1", host="from-param")
    assert got == [("m.f", "from-param", {}, NOW, 1.0)]
    assert not timestamped


def test_names_are_mapped() -> None:
    got, _, _ = parse(f"disk-io,host=h,dev.name=sda read-bytes=1 {NS}")
    assert got[0][:3] == ("disk_io.read_bytes", "h", {"dev_name": "sda"})


def test_garbage_rejects_whole_request_with_line_numbers() -> None:
    body = f"m,host=h f=1 {NS}\nthis is garbage\nm,host=h f=abc\nm f=1\nm,host=h f=1 12x"
    with pytest.raises(InvalidInputError) as info:
        parse(body)
    locs = [e["loc"] for e in info.value.extra["errors"]]
    assert locs == ["line 2", "line 3", "line 4", "line 5"]
    assert "no host" in info.value.extra["errors"][2]["msg"]


def test_old_timestamps_are_skipped_not_failed() -> None:
    got, skipped, _ = parse(f"m,host=h f=1 {NS - 10 * 86400 * 10**9}\nm,host=h f=2 {NS}")
    assert [v for *_, v in got] == [2.0]
    assert skipped == {"too_old": 1}


def test_telegraf_aliases() -> None:
    body = (
        f"cpu,cpu=cpu-total,host=h usage_idle=90 {NS}\n"
        f"cpu,cpu=cpu3,host=h usage_idle=75,usage_user=20 {NS}\n"
        f"disk,host=h,path=/,fstype=ext4,device=sda1 free=100i,used_percent=50 {NS}\n"
        f"disk,host=h,path=/dev/shm,fstype=tmpfs,device=tmpfs free=1i {NS}\n"
        f"mem,host=h used_percent=33,available=7i {NS}\n"
    )
    got, _, _ = parse(body, aliases=True)
    derived = {(m, tuple(sorted(labels.items())), v) for m, _, labels, _, v in got}
    assert ("cpu.usage_percent", (("cpu", "total"),), 10.0) in derived
    assert ("cpu.usage_percent", (("cpu", "3"),), 25.0) in derived
    assert ("cpu.user_percent", (("cpu", "3"),), 20.0) in derived
    assert ("disk.free_bytes", (("mount", "/"),), 100.0) in derived
    assert ("disk.used_percent", (("mount", "/"),), 50.0) in derived
    assert ("mem.available_bytes", (), 7.0) in derived
    assert not any(m == "disk.free_bytes" and dict(lbl).get("mount") == "/dev/shm"
                   for m, lbl, _ in derived)
    # mem.used_percent already has the agent's name: stored once, not twice
    assert sum(1 for m, *_ in got if m == "mem.used_percent") == 1

"""Property tests of every ingestion protocol's parser: arbitrary bytes and
structured but hostile payloads (NUL characters, lone surrogates, odd
numbers, deep nesting, huge counts) either give a batch PostgreSQL can
store or an ``InvalidInputError`` (a 4xx) — never another exception, which
would be a 500.

Generation is derandomised, so every run makes the same examples.
"""

from __future__ import annotations

import json
import math
import time
import uuid
from collections.abc import Callable
from typing import Any

import orjson
from google.protobuf import json_format
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)

from nazar_common.errors import InvalidInputError
from nazar_common.schemas.names import HOST_RE, LABEL_NAME_RE, METRIC_NAME_RE
from nazar_common.schemas.storable import text_problem
from nazar_ingest.payloads import otlp
from nazar_ingest.payloads.influx import parse_line_protocol
from nazar_ingest.payloads.remote_write import decompress, parse_remote_write
from nazar_ingest.payloads.wire import WriteRequest
from nazar_ingest.pipeline import to_message
from nazar_ingest.samples import BatchBuilder, Limits, NormalizedBatch, parse_json

NOW = time.time()
LIMITS = Limits(max_samples=500, oldest=NOW - 86400, newest=NOW + 600)

FUZZ = settings(
    max_examples=150,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)

#: Text with what PostgreSQL or the parsers may trip on.
HOSTILE = st.one_of(
    st.sampled_from(["a\x00b", "\x00", "\ud800", "x\udfffy", "\\", "\n"]),
    st.text(
        alphabet=st.one_of(
            st.sampled_from(["\x00", "\ud800", "\udfff", "\n", "\\", '"', ",", "=", " ", "{",
                             "é", "\u2028", "\ufeff", "a", "_", ".", ":", "-", "0"]),
            st.characters(),
        ),
        max_size=40,
    ),
)
NAMEISH = st.one_of(st.sampled_from(["cpu", "host", "le", "a.b", "x:y", "_", "9z"]), HOSTILE)
NUMBERS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([NOW, NOW - 1e6, NOW + 1e6, 0, -1, 1e308, -0.0]),
)


def mostly(valid: st.SearchStrategy[Any], hostile: st.SearchStrategy[Any]) -> Any:
    """``valid`` nine times in ten: a request gets a hostile part or two and
    is otherwise valid, so the hostile parts reach the code behind validation."""
    return st.integers(min_value=0, max_value=9).flatmap(lambda i: valid if i else hostile)


HOSTS = st.sampled_from(["web-1", "db-2", "10.0.0.1"])
METRICS = st.sampled_from(["cpu.usage", "mem.used", "m"])
LABEL_NAMES = st.sampled_from(["env", "cpu", "le", "quantile", "job"])
LABEL_VALUES = mostly(st.sampled_from(["prod", "0", "", "x" * 1024]), HOSTILE)
VALUES = mostly(st.floats(min_value=-1e12, max_value=1e12), NUMBERS)
TIMES = mostly(st.floats(min_value=NOW - 3600, max_value=NOW), NUMBERS)
LABEL_SETS = st.dictionaries(mostly(LABEL_NAMES, NAMEISH), LABEL_VALUES, max_size=4)


def check_batch(batch: NormalizedBatch) -> None:
    """A batch that reaches the group commit: consistent and storable."""
    n = len(batch.values)
    assert len(batch.times) == len(batch.series_index) == n
    assert all(0 <= i < len(batch.keys) for i in batch.series_index)
    assert all(math.isfinite(v) for v in batch.values)
    assert all(LIMITS.oldest <= t <= LIMITS.newest for t in batch.times)
    assert len(set(zip(batch.series_index, batch.times, strict=True))) == n
    for key in (batch.keys[i] for i in set(batch.series_index)):
        assert METRIC_NAME_RE.match(key.metric), key
        assert HOST_RE.match(key.host), key
        labels = orjson.loads(key.labels)
        assert all(LABEL_NAME_RE.match(k) for k in labels)
        assert all(text_problem(v) is None for v in labels.values()), labels
    for labels_text in batch.hosts.values():
        assert all(text_problem(v) is None for v in orjson.loads(labels_text).values())
    to_message(batch, uuid.uuid4())  # the broker fallback serialises it


def survives(parse: Callable[[], NormalizedBatch]) -> None:
    try:
        batch = parse()
    except InvalidInputError:
        return
    check_batch(batch)


# --- JSON ------------------------------------------------------------------------------


@FUZZ
@given(st.binary(max_size=300))
def test_json_arbitrary_bytes(body: bytes) -> None:
    survives(lambda: parse_json(body, LIMITS, NOW))


def _json_value(leaves: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.recursive(
        leaves,
        lambda inner: st.one_of(
            st.lists(inner, max_size=3), st.dictionaries(NAMEISH, inner, max_size=3)
        ),
        max_leaves=8,
    )


LEAVES = st.one_of(st.none(), st.booleans(), NUMBERS, HOSTILE)
SAMPLE = st.fixed_dictionaries(
    {"metric": mostly(METRICS, st.one_of(HOSTILE, LEAVES)), "value": mostly(VALUES, LEAVES)},
    optional={
        "timestamp": mostly(TIMES, st.one_of(
            st.sampled_from(["2026-01-01T00:00:00Z", "0001-01-01T00:00:00+14:00",
                             "9999-12-31T23:59:59-14:00", "now"]),
            LEAVES,
        )),
        "labels": mostly(LABEL_SETS, _json_value(LEAVES)),
        "host": mostly(st.one_of(HOSTS, st.none()), HOSTILE),
    },
)
DOCUMENT = st.fixed_dictionaries(
    {
        "samples": mostly(st.lists(SAMPLE, max_size=6), LEAVES),
        "host": mostly(HOSTS, st.one_of(st.none(), HOSTILE)),
    },
    optional={"labels": mostly(LABEL_SETS, LEAVES)},
)


@FUZZ
@given(DOCUMENT, st.sampled_from([0, 0, 0, 0, 3, 100, 1000, 5000]),
       st.one_of(st.none(), HOSTILE))
def test_json_hostile_documents(doc: dict[str, Any], depth: int, poison: str | None) -> None:
    samples = doc["samples"]
    if poison is not None and isinstance(samples, list) and samples:
        samples[-1]["labels"] = {"env": poison}  # in an otherwise valid request, often
    # Lone surrogates only exist as JSON escapes: the standard encoder writes them.
    body = json.dumps(doc, ensure_ascii=True).encode()
    if depth:  # sometimes, labels nested deep
        body = body[:-1] + b',"labels":' + b'{"a":' * depth + b"1" + b"}" * depth + b"}"
    for _ in range(2):  # the second parse may take the fast path
        survives(lambda: parse_json(body, LIMITS, NOW))


# --- Prometheus remote write -----------------------------------------------------------


@FUZZ
@given(st.binary(max_size=300))
def test_remote_write_arbitrary_bytes(data: bytes) -> None:
    survives(lambda: parse_remote_write(data, BatchBuilder(LIMITS), aliases=True))
    survives(lambda: parse_remote_write(decompress(data, 10_000), BatchBuilder(LIMITS),
                                        aliases=True))


def _utf8(text: str) -> str:
    return text.encode("utf-8", "replace").decode("utf-8")  # protobuf strings are UTF-8


LABEL_PAIRS = st.builds(
    lambda name, instance, rest: [("__name__", name), ("instance", instance), *rest],
    mostly(METRICS, NAMEISH),
    mostly(st.sampled_from(["web-1:9100", "db-2", "[::1]:9100"]), HOSTILE),
    st.lists(st.tuples(mostly(LABEL_NAMES, NAMEISH), LABEL_VALUES), max_size=40),
)


@FUZZ
@given(st.lists(st.tuples(LABEL_PAIRS, st.lists(st.tuples(
    mostly(VALUES, st.floats(allow_nan=True, allow_infinity=True)),
    mostly(TIMES.map(lambda t: int(t * 1000) if math.isfinite(t) and abs(t) < 1e15 else 0),
           st.integers(min_value=-(2**63), max_value=2**63 - 1))), max_size=4)), max_size=5))
def test_remote_write_hostile_requests(series: list[Any]) -> None:
    request = WriteRequest()
    for labels, samples in series:
        ts = request.timeseries.add()
        for name, value in labels:
            ts.labels.add(name=_utf8(name), value=_utf8(value))
        for value, stamp in samples:
            ts.samples.add(value=value, timestamp=stamp)
    data = request.SerializeToString()
    survives(lambda: parse_remote_write(data, BatchBuilder(LIMITS), aliases=True))


# --- OTLP --------------------------------------------------------------------------------


@FUZZ
@given(st.binary(max_size=300), st.sampled_from(["application/x-protobuf", "application/json"]))
def test_otlp_arbitrary_bytes(body: bytes, ctype: str) -> None:
    survives(lambda: otlp.parse_otlp(
        otlp.decode(body, ctype), BatchBuilder(LIMITS), NOW, aliases=True).batch)


ANY_VALUE = st.recursive(
    st.one_of(
        st.builds(lambda s: {"stringValue": s}, HOSTILE.map(_utf8)),
        st.builds(lambda i: {"intValue": str(i)},
                  st.integers(min_value=-(2**63), max_value=2**63 - 1)),
        st.builds(lambda f: {"doubleValue": f}, st.floats(allow_nan=False)),
        st.builds(lambda b: {"boolValue": b}, st.booleans()),
    ),
    lambda inner: st.one_of(
        st.builds(lambda vs: {"arrayValue": {"values": vs}}, st.lists(inner, max_size=3)),
        st.builds(lambda kvs: {"kvlistValue": {"values": [
            {"key": k, "value": v} for k, v in kvs]}},
            st.lists(st.tuples(NAMEISH.map(_utf8), inner), max_size=3)),
    ),
    max_leaves=6,
)
ATTRIBUTES = st.lists(
    st.builds(lambda k, v: {"key": k, "value": v},
              mostly(LABEL_NAMES, NAMEISH.map(_utf8)),
              mostly(st.builds(lambda s: {"stringValue": s}, LABEL_VALUES.map(_utf8)),
                     ANY_VALUE)),
    max_size=5,
)
RESOURCE = st.builds(
    lambda host, rest: [{"key": "host.name", "value": {"stringValue": host}}, *rest],
    mostly(HOSTS, HOSTILE.map(_utf8)),
    ATTRIBUTES,
)


def _otlp_double(value: float) -> float | str:
    if math.isfinite(value):
        return value
    return "NaN" if value != value else ("Infinity" if value > 0 else "-Infinity")


POINT = st.fixed_dictionaries(
    {"attributes": ATTRIBUTES,
     "timeUnixNano": mostly(
         TIMES.map(lambda t: str(int(t * 1e9)) if math.isfinite(t) and 0 <= t < 1e10 else "0"),
         st.integers(min_value=0, max_value=2**64 - 1).map(str)),
     "asDouble": mostly(VALUES, st.floats()).map(_otlp_double)},
)
METRIC = st.builds(
    lambda name, kind, points: {"name": name, kind: {"dataPoints": points}},
    mostly(METRICS, NAMEISH.map(_utf8)),
    st.sampled_from(["gauge", "sum"]),
    st.lists(POINT, max_size=3),
)
OTLP_DOC = st.builds(
    lambda resource, metrics: {"resourceMetrics": [
        {"resource": {"attributes": resource}, "scopeMetrics": [{"metrics": metrics}]}]},
    RESOURCE,
    st.lists(METRIC, max_size=3),
)


@FUZZ
@given(OTLP_DOC)
def test_otlp_hostile_requests(doc: dict[str, Any]) -> None:
    body = json.dumps(doc, ensure_ascii=True).encode()
    survives(lambda: otlp.parse_otlp(
        otlp.decode(body, "application/json"), BatchBuilder(LIMITS), NOW, aliases=True).batch)
    try:
        request = json_format.ParseDict(doc, ExportMetricsServiceRequest())
    except (json_format.ParseError, ValueError):
        return
    data = request.SerializeToString()
    survives(lambda: otlp.parse_otlp(
        otlp.decode(data, "application/x-protobuf"), BatchBuilder(LIMITS), NOW,
        aliases=True).batch)


# --- Influx line protocol -----------------------------------------------------------------


@FUZZ
@given(st.binary(max_size=300))
def test_influx_arbitrary_bytes(body: bytes) -> None:
    survives(lambda: parse_line_protocol(
        body, BatchBuilder(LIMITS), unit=1e-9, now=NOW, default_host="web-1", aliases=True)[0])


TOKEN = st.one_of(
    st.sampled_from(["cpu", "host=web-1", "host", "usage=1", "x=1i", "y=2u", 'z="s"', "t", "\\",
                     "\\ ", "\\,", "\\=", ",", "=", " ", '"', "#", str(int(NOW * 1e9)),
                     "99999999999999999999999", "-1", "1e400", "NaN", "inf"]),
    HOSTILE.map(_utf8),
)
LINE = st.lists(TOKEN, max_size=10).map("".join)
TAG_TEXT = mostly(st.sampled_from(["prod", "0", "a\\ b", "x" * 1030]), HOSTILE.map(_utf8))
STRUCTURED_LINE = st.builds(
    lambda m, host, tags, fields, stamp: f"{m},host={host}{tags} {fields} {stamp}".replace(
        ",host= ", " "),
    mostly(st.sampled_from(["cpu", "disk-io", "m"]), NAMEISH.map(_utf8)),
    mostly(st.sampled_from(["web-1", "db-2"]), HOSTILE.map(_utf8)),
    st.lists(st.tuples(mostly(LABEL_NAMES, NAMEISH.map(_utf8)), TAG_TEXT), max_size=40).map(
        lambda kv: "".join(f",{k}={v}" for k, v in kv)),
    st.lists(st.tuples(mostly(st.sampled_from(["usage", "idle"]), NAMEISH.map(_utf8)),
                       st.sampled_from(["1", "1i", "2.5", "t", '"s"', "1e400", "-0", "9u"])),
             min_size=1, max_size=3).map(lambda kv: ",".join(f"{k}={v}" for k, v in kv)),
    mostly(st.just(str(int(NOW * 1e9))),
           st.sampled_from(["", "x", "-9223372036854775809", "99999999999999999999"])),
)


@FUZZ
@given(st.lists(mostly(STRUCTURED_LINE, LINE), max_size=6))
def test_influx_hostile_bodies(lines: list[str]) -> None:
    body = "\n".join(lines).encode("utf-8", "surrogatepass")
    for unit in (1e-9, 3600.0):
        survives(lambda unit=unit: parse_line_protocol(  # type: ignore[misc]
            body, BatchBuilder(LIMITS), unit=unit, now=NOW, default_host=None,
            aliases=True)[0])

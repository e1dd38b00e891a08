"""Every ingestion endpoint, given arbitrary bytes and the hostile payloads
of the parsers' property tests, answers a documented status and never a
5xx, through the whole write path to a real PostgreSQL (a payload that
gets through is stored). Derandomised, so every run sends the same."""

from __future__ import annotations

import json
from typing import Any

import cramjam
import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nazar_ingest.payloads.wire import WriteRequest
from tests.conftest import IngestServer
from tests.unit.ingest import test_parsers_property as parsers

HTTP_FUZZ = settings(parsers.FUZZ, max_examples=40)


@pytest.fixture(scope="module")
def http(default_server: IngestServer) -> Any:
    with httpx.Client(
        base_url=default_server.url,
        headers={"Authorization": f"Bearer {default_server.ingest_key}"},
        timeout=30,
    ) as client:
        yield client


def post(http: httpx.Client, path: str, body: bytes, ctype: str, ok: int,
         **headers: str) -> httpx.Response:
    r = http.post(path, content=body, headers={"Content-Type": ctype, **headers})
    assert r.status_code in (ok, 400, 413), (r.status_code, r.text[:500], body[:300])
    if r.status_code != ok and ctype != "application/x-protobuf":
        assert r.headers["content-type"] == "application/problem+json"
    return r


def test_json(http: httpx.Client) -> None:
    @HTTP_FUZZ
    @given(st.one_of(st.binary(max_size=200), parsers.DOCUMENT.map(
        lambda doc: json.dumps(doc, ensure_ascii=True).encode())))
    def run(body: bytes) -> None:
        post(http, "/api/v1/metrics", body, "application/json", 202)

    run()


def test_remote_write(http: httpx.Client) -> None:
    @HTTP_FUZZ
    @given(st.one_of(st.binary(max_size=200), st.lists(
        st.tuples(parsers.LABEL_PAIRS, st.lists(st.tuples(
            parsers.VALUES, st.integers(min_value=0, max_value=2**62)), max_size=3)),
        max_size=4).map(_write_request)))
    def run(data: bytes) -> None:
        body = bytes(cramjam.snappy.compress_raw(data))
        post(http, "/api/v1/write", body, "application/x-protobuf", 204,
             **{"Content-Encoding": "snappy"})

    run()


def _write_request(series: list[Any]) -> bytes:
    request = WriteRequest()
    for labels, samples in series:
        ts = request.timeseries.add()
        for name, value in labels:
            ts.labels.add(name=parsers._utf8(name), value=parsers._utf8(value))
        for value, stamp in samples:
            ts.samples.add(value=value, timestamp=int(parsers.NOW * 1000) - stamp % 3_600_000)
    return bytes(request.SerializeToString())


def test_otlp(http: httpx.Client) -> None:
    @HTTP_FUZZ
    @given(st.one_of(st.binary(max_size=200), parsers.OTLP_DOC.map(
        lambda doc: json.dumps(doc, ensure_ascii=True).encode())),
        st.sampled_from(["application/json", "application/x-protobuf"]))
    def run(body: bytes, ctype: str) -> None:
        post(http, "/v1/metrics", body, ctype, 200)

    run()


def test_influx(http: httpx.Client) -> None:
    @HTTP_FUZZ
    @given(st.one_of(st.binary(max_size=200), st.lists(
        parsers.mostly(parsers.STRUCTURED_LINE, parsers.LINE), max_size=6).map(
        lambda lines: "\n".join(lines).encode("utf-8", "surrogatepass"))))
    def run(body: bytes) -> None:
        post(http, "/api/v2/write?precision=ns", body, "text/plain", 204)

    run()

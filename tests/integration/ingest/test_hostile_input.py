"""Strings PostgreSQL cannot store (a NUL character, a lone surrogate) are
refused where they enter, with a 400 naming the field, on every ingestion
protocol and every configuration endpoint; they never reach a group commit,
and a request the database refuses anyway fails alone.

Against a real server running with the default log settings (INFO)."""

from __future__ import annotations

import asyncio
import random
import secrets
import time
from collections import Counter
from typing import Any

import asyncpg
import cramjam
import httpx
import orjson
import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)

from nazar_ingest.payloads.wire import WriteRequest
from tests.conftest import IngestServer
from tests.integration.protocols.helpers import host_samples, stored

NUL = "\u0000"


def _host(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(3)}"


def _batch(host: str, i: int, bad: bool) -> bytes:
    return orjson.dumps(
        {
            "host": host,
            "labels": {"k": f"a{NUL}b" if bad else f"v{i}"},
            "samples": [{"metric": "hostile.x", "value": i, "timestamp": time.time()}],
        }
    )


async def _send_together(
    server: IngestServer, bodies: list[tuple[bool, bytes]], reason: str
) -> Counter[Any]:
    """Every body at once, each on a connection of its own; counts (bad?, status).
    The bad ones' problems must give ``reason``."""
    limits = httpx.Limits(max_connections=len(bodies), max_keepalive_connections=len(bodies))
    async with httpx.AsyncClient(
        base_url=server.url,
        headers={"Authorization": f"Bearer {server.ingest_key}",
                 "Content-Type": "application/json"},
        limits=limits,
        timeout=60,
    ) as client:

        async def one(bad: bool, body: bytes) -> tuple[bool, int | str]:
            try:
                r = await client.post("/api/v1/metrics", content=body)
            except httpx.HTTPError as exc:
                return bad, type(exc).__name__
            if bad and r.status_code == 400:
                problem = r.json()
                assert r.headers["content-type"] == "application/problem+json"
                assert reason in orjson.dumps(problem).decode(), problem
            return bad, r.status_code

        return Counter(await asyncio.gather(*(one(bad, body) for bad, body in bodies)))


async def test_nul_requests_among_valid_ones_fail_alone(default_server: IngestServer) -> None:
    """The measurement of the report: 80 requests with a NUL among 400 valid
    ones, sent together (before: 32-35 of the valid ones got 202)."""
    host = _host("nul-mix")
    bodies = [(False, _batch(host, i, False)) for i in range(400)]
    bodies += [(True, _batch(host, i, True)) for i in range(80)]
    random.Random(10).shuffle(bodies)
    outcome = await _send_together(default_server, bodies, "NUL character")
    print(f"\nNUL among valid requests, sent together: {dict(outcome)}")
    assert outcome == Counter({(False, 202): 400, (True, 400): 80})
    assert await host_samples(default_server.database_url, host) == 400


async def test_a_string_past_validation_fails_alone(
    default_server: IngestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Should a string get past validation, the database's refusal (here of
    the new series it names) costs only the request at fault, with a 400."""
    import nazar_common.schemas.names as names

    monkeypatch.setattr(names, "text_problem", lambda value: None)  # a validation gap
    host = _host("nul-gap")
    bodies = [(False, _batch(host, i, False)) for i in range(200)]
    bodies += [(True, _batch(host, i, True)) for i in range(40)]
    random.Random(11).shuffle(bodies)
    outcome = await _send_together(default_server, bodies, "the database refused")
    print(f"\nNUL past validation, sent together: {dict(outcome)}")
    assert outcome == Counter({(False, 202): 200, (True, 400): 40})
    assert await host_samples(default_server.database_url, host) == 200


REFUSED_VALUE = -7777.0


async def test_a_request_the_group_commit_refuses_fails_alone(
    default_server: IngestServer,
) -> None:
    """The group commit's statement refused for one request's data (a
    trigger makes the database refuse a sample value, SQLSTATE 22023): the
    group is written again without that request, which alone gets a 400."""
    conn = await asyncpg.connect(default_server.database_url)
    try:
        await conn.execute(f"""
            CREATE FUNCTION test_refuse_value() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF NEW.value = {REFUSED_VALUE} THEN
                    RAISE EXCEPTION 'value refused' USING ERRCODE = '22023';
                END IF;
                RETURN NEW;
            END $$;
            CREATE TRIGGER test_refuse_value BEFORE INSERT ON samples
                FOR EACH ROW EXECUTE FUNCTION test_refuse_value();
        """)
        host = _host("refused")

        def body(i: int, bad: bool) -> bytes:
            value = REFUSED_VALUE if bad else i
            return orjson.dumps({"host": host, "samples": [
                {"metric": "refused.x", "value": value, "timestamp": time.time()}]})

        async with default_server.client(default_server.ingest_key) as client:
            # The series exists first: the refusal comes from the group's statement.
            assert (await client.post("/api/v1/metrics", content=body(0, False))).status_code \
                == 202
        bodies = [(False, body(i, False)) for i in range(1, 201)]
        bodies += [(True, body(i, True)) for i in range(40)]
        random.Random(12).shuffle(bodies)
        outcome = await _send_together(default_server, bodies, "the database refused")
        print(f"\nrefused by the group's statement, sent together: {dict(outcome)}")
        assert outcome == Counter({(False, 202): 200, (True, 400): 40})
        assert await host_samples(default_server.database_url, host) == 201
    finally:
        await conn.execute(
            "DROP TRIGGER IF EXISTS test_refuse_value ON samples; "
            "DROP FUNCTION IF EXISTS test_refuse_value()"
        )
        await conn.close()
    async with default_server.client() as client:
        metrics = (await client.get("/metrics")).text
    assert 'nazar_ingest_commits_total{outcome="refused"}' in metrics


async def test_json_endpoint_names_the_field(default_server: IngestServer) -> None:
    host = _host("nul-json")
    now = time.time()
    good = {
        "host": host,
        "labels": {"env": "prod"},
        "samples": [{"metric": "m.a", "value": 1, "timestamp": now, "labels": {"k": "v"}}],
    }
    async with default_server.client(default_server.ingest_key) as client:
        # Learnt by the fast path first; the same series with a NUL is a new one.
        for _ in range(2):
            assert (await client.post("/api/v1/metrics", json=good)).status_code == 202
        cases: list[tuple[dict[str, Any], str]] = [
            ({**good, "labels": {"env": f"p{NUL}"}}, "labels.env"),
            ({**good, "samples": [{**good["samples"][0], "labels": {"k": NUL}}]},
             "samples[0].labels.k"),
        ]
        for body, loc in cases:
            r = await client.post("/api/v1/metrics", json=body)
            assert r.status_code == 400, r.text
            assert r.json()["errors"][0]["loc"] == loc
            assert "NUL" in r.json()["errors"][0]["msg"]
        # Lone surrogates: not valid JSON, escaped or as bytes.
        for raw in (b'"\\ud800"', b'"\xed\xa0\x80"'):
            body = b'{"host":"%s","labels":{"k":%s},"samples":[{"metric":"m.a","value":1}]}' % (
                host.encode(), raw)
            r = await client.post("/api/v1/metrics", content=body,
                                  headers={"Content-Type": "application/json"})
            assert r.status_code == 400, r.text
    assert len(await stored(default_server.database_url, host)) == 2


async def test_remote_write_skips_series_it_cannot_store(default_server: IngestServer) -> None:
    host = _host("nul-prw")
    request = WriteRequest()
    for value in ("ok", f"a{NUL}b"):
        series = request.timeseries.add()
        series.labels.add(name="__name__", value="up")
        series.labels.add(name="instance", value=f"{host}:9100")
        series.labels.add(name="job", value=value)
        series.samples.add(value=1.0, timestamp=int(time.time() * 1000))
    body = bytes(cramjam.snappy.compress_raw(request.SerializeToString()))
    async with default_server.client(default_server.ingest_key) as client:
        r = await client.post("/api/v1/write", content=body, headers={
            "Content-Type": "application/x-protobuf", "Content-Encoding": "snappy"})
    assert r.status_code == 204, r.text
    assert r.headers["X-Nazar-Skipped"] == "invalid_labels=1"
    rows = await stored(default_server.database_url, host)
    assert [row["labels"] for row in rows] == [{"job": "ok"}]


def _otlp_request(host: str) -> ExportMetricsServiceRequest:
    request = ExportMetricsServiceRequest()
    resource = request.resource_metrics.add()
    resource.resource.attributes.add(key="host.name").value.string_value = host
    metric = resource.scope_metrics.add().metrics.add(name="room.temp")
    for room in ("lab", f"a{NUL}b"):
        point = metric.gauge.data_points.add(as_double=21.5, time_unix_nano=time.time_ns())
        point.attributes.add(key="room").value.string_value = room
    return request


async def test_otlp_rejects_points_it_cannot_store(default_server: IngestServer) -> None:
    from google.protobuf import json_format

    for ctype in ("application/x-protobuf", "application/json"):
        host = _host("nul-otlp")
        request = _otlp_request(host)
        body = (
            request.SerializeToString()
            if ctype == "application/x-protobuf"
            else json_format.MessageToJson(request).encode()
        )
        async with default_server.client(default_server.ingest_key) as client:
            r = await client.post("/v1/metrics", content=body, headers={"Content-Type": ctype})
        assert r.status_code == 200, r.text
        if ctype == "application/json":
            response = json_format.Parse(r.content, ExportMetricsServiceResponse())
        else:
            response = ExportMetricsServiceResponse.FromString(r.content)
        assert response.partial_success.rejected_data_points == 1
        assert "room" in response.partial_success.error_message
        assert "NUL" in response.partial_success.error_message
        rows = await stored(default_server.database_url, host)
        assert [row["labels"] for row in rows] == [{"room": "lab"}]


async def test_influx_names_the_line_and_tag(default_server: IngestServer) -> None:
    host = _host("nul-lp")
    now = time.time_ns()
    body = f"cpu,host={host},core=0 usage=1 {now}\ncpu,host={host},core=a{NUL}b usage=2 {now}\n"
    async with default_server.client(default_server.ingest_key) as client:
        r = await client.post("/api/v2/write", content=body.encode())
    assert r.status_code == 400, r.text
    assert r.json()["errors"] == [
        {"loc": "line 2.core", "msg": r.json()["errors"][0]["msg"]}
    ]
    assert "NUL" in r.json()["message"]
    assert await stored(default_server.database_url, host) == []


CONFIG_CASES: list[tuple[str, str, dict[str, Any], str]] = [
    ("POST", "/api/v1/rules", {"name": "r-nul", "metric": "m", "description": NUL,
                               "params": {"kind": "threshold", "value": 1}}, "description"),
    ("POST", "/api/v1/rules", {"name": "r-nul", "metric": "m", "labels": {"team": NUL},
                               "params": {"kind": "threshold", "value": 1}}, "labels.team"),
    ("PUT", "/api/v1/rules/r-nul", {"metric": "m", "labels": {f"t{NUL}": "x"},
                                    "params": {"kind": "threshold", "value": 1}},
     "labels.t\\x00.[key]"),
    ("POST", "/api/v1/rules", {"name": "r-nul", "metric": "m", "annotations": {"a": NUL},
                               "params": {"kind": "threshold", "value": 1}}, "annotations.a"),
    ("POST", "/api/v1/rules", {"name": "r-nul", "metric": "m",
                               "selector": {"match_labels": {"env": NUL}},
                               "params": {"kind": "threshold", "value": 1}},
     "selector.match_labels.env"),
    ("POST", "/api/v1/channels", {"name": "c-nul", "config": {
        "type": "slack", "webhook_url": f"https://hooks.example/{NUL}"}}, "webhook_url"),
    ("PUT", "/api/v1/channels/c-nul", {"config": {
        "type": "webhook", "url": "https://example.com/hook", "headers": {"X-T": NUL}}},
     "headers.X-T"),
    ("POST", "/api/v1/channels", {"name": "c-nul", "config": {
        "type": "email", "to": [f"ops{NUL}@example.com"], "from": "n@example.com",
        "smtp_host": "smtp.example.com"}}, "to.0"),
    ("POST", "/api/v1/silences", {"matchers": [{"name": "host", "value": NUL}],
                                  "ends_at": "2099-01-01T00:00:00Z"}, "matchers.0.value"),
    ("POST", "/api/v1/silences", {"matchers": [{"name": "host", "value": "a"}],
                                  "ends_at": "2099-01-01T00:00:00Z", "comment": NUL},
     "comment"),
    ("POST", "/api/v1/mute-windows", {"name": "w-nul", "start": "22:00", "end": "23:00",
                                      "comment": NUL}, "comment"),
    ("PUT", "/api/v1/mute-windows/w-nul", {"start": "22:00", "end": "23:00",
                                           "timezone": NUL}, "timezone"),
    ("POST", "/api/v1/keys", {"name": f"k{NUL}", "scopes": ["read"]}, "name"),
    ("POST", "/api/v1/alerts/1/ack", {"comment": NUL}, "comment"),
]


@pytest.mark.parametrize(("method", "path", "body", "loc"), CONFIG_CASES)
async def test_configuration_endpoints_name_the_field(
    default_server: IngestServer, method: str, path: str, body: dict[str, Any], loc: str
) -> None:
    async with default_server.client() as client:
        r = await client.request(method, path, json=body)
        assert r.status_code == 400, r.text
        assert r.headers["content-type"] == "application/problem+json"
        errors = r.json()["errors"]
        assert any(e["loc"].endswith(loc) and "NUL" in e["msg"] for e in errors), errors
        # Lone surrogates are not valid JSON: refused before any model sees them.
        raw = orjson.dumps(body).replace(b"\\u0000", b"\\udc80")
        r = await client.request(method, path, content=raw,
                                 headers={"Content-Type": "application/json"})
        assert r.status_code == 400, r.text
        for listing in ("/api/v1/rules", "/api/v1/channels", "/api/v1/mute-windows"):
            assert (await client.get(listing)).json() == []


async def test_nul_in_parameters_is_refused(default_server: IngestServer) -> None:
    async with default_server.client() as client:
        r = await client.get("/api/v1/query", params={"metric": "m.a", "host": f"a{NUL}"})
        assert r.status_code == 400
        assert "'host'" in r.json()["detail"] and "NUL" in r.json()["detail"]
        r = await client.get("/api/v1/alerts", params={"rule": NUL})
        assert r.status_code == 400
        for path, param in (("/api/v1/query", "labels"), ("/api/v1/series", "match")):
            r = await client.get(path, params={"metric": "m.a", param: '{"env": "\\u0000"}'})
            assert r.status_code == 400, r.text
            assert "NUL" in r.json()["detail"]
        r = await client.delete("/api/v1/keys/a%00b")
        assert r.status_code == 400 and "path" in r.json()["detail"]

"""Influx line protocol against a real ingest server, database and broker."""

from __future__ import annotations

import base64
import gzip
import secrets
import time

import httpx

from tests.conftest import IngestServer
from tests.integration.protocols.helpers import series_count, stored


def _host() -> str:
    return f"itest-lp-{secrets.token_hex(3)}"


async def test_v2_write_as_telegraf_sends_it(ingest_server: IngestServer) -> None:
    host = _host()
    ns = time.time_ns()
    body = (
        f"cpu,cpu=cpu-total,host={host} usage_idle=97.5,usage_user=1.5 {ns}\n"
        f"disk,device=sda1,fstype=ext4,host={host},mode=rw,path=/ "
        f"free=100i,used_percent=42.5 {ns}\n"
        f'weird\\ meas,host={host},tag\\,key=va\\=l\\ ue str="a \\"q\\"",up=true,n=3u {ns}\n'
    )
    async with httpx.AsyncClient(base_url=ingest_server.url) as client:
        r = await client.post(
            "/api/v2/write", params={"org": "o", "bucket": "b", "precision": "ns"},
            content=gzip.compress(body.encode()),
            headers={"Authorization": f"Token {ingest_server.ingest_key}",
                     "Content-Encoding": "gzip", "Content-Type": "text/plain; charset=utf-8"},
        )
    assert r.status_code == 204, r.text
    assert r.headers["x-nazar-skipped"] == "string_field=1"
    rows = await stored(ingest_server.database_url, host)
    got = {(s["metric"], tuple(sorted(s["labels"].items()))): s["value"] for s in rows}
    assert got[("cpu.usage_idle", (("cpu", "cpu-total"),))] == 97.5
    assert got[("weird_meas.up", (("tag_key", "va=l ue"),))] == 1.0
    assert got[("weird_meas.n", (("tag_key", "va=l ue"),))] == 3.0
    disk_labels = (("device", "sda1"), ("fstype", "ext4"), ("mode", "rw"), ("path", "/"))
    assert got[("disk.free", disk_labels)] == 100.0
    # aliases (on by default): the agent's names, label-mapped, next to the originals
    assert got[("cpu.usage_percent", (("cpu", "total"),))] == 2.5
    assert got[("disk.free_bytes", (("mount", "/"),))] == 100.0
    assert all(abs(s["t"] - ns / 1e9) < 0.001 for s in rows)


async def test_v1_write_with_basic_auth_query_auth_and_precision(
    ingest_server: IngestServer,
) -> None:
    host = _host()
    now = int(time.time())
    basic = base64.b64encode(f"telegraf:{ingest_server.ingest_key}".encode()).decode()
    async with httpx.AsyncClient(base_url=ingest_server.url) as client:
        r = await client.post("/write", params={"db": "telegraf", "precision": "s"},
                              content=f"m,host={host} a=1 {now - 60}",
                              headers={"Authorization": f"Basic {basic}"})
        assert r.status_code == 204, r.text
        r = await client.post("/write", params={"db": "x", "u": "any", "precision": "ms",
                                                "p": ingest_server.ingest_key},
                              content=f"m,host={host} a=2 {(now - 30) * 1000}")
        assert r.status_code == 204, r.text
        r = await client.post("/write", params={"precision": "m", "host": host,
                                                "p": ingest_server.ingest_key},
                              content=f"m a=3 {now // 60}")
        assert r.status_code == 204, r.text
        # wrong keys and scopes
        r = await client.post("/write", params={"p": "nzr_bad_bad"}, content=f"m,host={host} a=9")
        assert r.status_code == 401
        r = await client.post("/api/v2/write", content=f"m,host={host} a=9",
                              headers={"Authorization": f"Token {ingest_server.read_key}"})
        assert r.status_code == 403
        r = await client.post("/write", params={"precision": "parsec",
                                                "p": ingest_server.ingest_key},
                              content=f"m,host={host} a=9")
        assert r.status_code == 400
        assert "precision" in r.json()["message"]
        r = await client.get("/ping")
        assert r.status_code == 204
    rows = await stored(ingest_server.database_url, host)
    assert sorted((s["metric"], s["value"], round(s["t"])) for s in rows) == [
        ("m.a", 1.0, now - 60), ("m.a", 2.0, now - 30), ("m.a", 3.0, now // 60 * 60),
    ]


async def test_retried_timestamped_body_is_stored_once(ingest_server: IngestServer) -> None:
    host = _host()
    body = f"m,host={host} a=1 {time.time_ns()}"
    headers = {"Authorization": f"Token {ingest_server.ingest_key}"}
    async with httpx.AsyncClient(base_url=ingest_server.url, headers=headers) as client:
        for _ in range(2):
            r = await client.post("/api/v2/write", content=body)
            assert r.status_code == 204
        # without a timestamp the same body is new data each time
        for _ in range(2):
            r = await client.post("/api/v2/write", content=f"n,host={host} a=1")
            assert r.status_code == 204
    rows = await stored(ingest_server.database_url, host)
    assert sorted(s["metric"] for s in rows) == ["m.a", "n.a", "n.a"]


async def test_garbage_lines_get_400_and_write_nothing(ingest_server: IngestServer) -> None:
    host = _host()
    body = f"m,host={host} a=1\nm,host={host} a=1 not-a-time\ngarbage\nm,host={host} a=1.2.3\n"
    async with httpx.AsyncClient(base_url=ingest_server.url) as client:
        r = await client.post("/api/v2/write", content=body,
                              headers={"Authorization": f"Token {ingest_server.ingest_key}"})
        assert r.status_code == 400
        assert r.headers["content-type"].startswith("application/problem+json")
        doc = r.json()
        assert doc["code"] == "invalid"
        assert "line 2" in doc["message"] and "line 3" in doc["message"]
        assert [e["loc"] for e in doc["errors"]] == ["line 2", "line 3", "line 4"]
        r = await client.post("/api/v2/write", content=b"\xff\xfe bad utf8",
                              headers={"Authorization": f"Token {ingest_server.ingest_key}"})
        assert r.status_code == 400 and "UTF-8" in r.json()["message"]
        r = await client.post("/api/v2/write", content=b"not gzip at all",
                              headers={"Authorization": f"Token {ingest_server.ingest_key}",
                                       "Content-Encoding": "gzip"})
        assert r.status_code == 400 and "gzip" in r.json()["message"]
    assert await series_count(ingest_server.database_url, host) == 0

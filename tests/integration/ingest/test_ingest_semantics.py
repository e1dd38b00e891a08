"""What ingest promises about odd but valid requests: samples it skips,
nulls, samples sharing a series and time, reused idempotency keys, and an
OpenAPI document that lists every status. Against a real server running
with the default log settings (INFO)."""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import sys
import time
from typing import Any

import asyncpg
import orjson

from tests.conftest import IngestServer
from tests.integration.protocols.helpers import stored


def _host(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(3)}"


async def test_influx_lines_with_too_many_tags_are_skipped(default_server: IngestServer) -> None:
    host = _host("sem-tags")
    now = time.time_ns()
    many = ",".join(f"t{i}=v" for i in range(33))
    long_value = "x" * 1025
    body = (
        f"cpu,host={host},core=0 usage=1,idle=2 {now}\n"
        f"cpu,host={host},{many} usage=3,idle=4 {now}\n"
        f"cpu,host={host},core={long_value} usage=5 {now}\n"
    )
    async with default_server.client(default_server.ingest_key) as client:
        r = await client.post("/api/v2/write", content=body.encode())
    assert r.status_code == 204, r.text
    assert r.headers["X-Nazar-Skipped"] == "invalid_labels=3"
    rows = await stored(default_server.database_url, host)
    assert sorted((row["metric"], row["value"]) for row in rows) == [
        ("cpu.idle", 2.0), ("cpu.usage", 1.0)]


async def test_null_means_absent(default_server: IngestServer) -> None:
    host = _host("sem-null")
    body = {
        "host": None,
        "labels": None,
        "samples": [
            {"metric": "m.a", "value": 1, "host": host, "labels": None, "timestamp": None},
        ],
    }
    other = {"host": host, "samples": [{"metric": "m.b", "value": 2, "host": None}]}
    async with default_server.client(default_server.ingest_key) as client:
        for payload in (body, other, other):  # the last one takes the fast path
            r = await client.post("/api/v1/metrics", json=payload)
            assert r.status_code == 202, r.text
        r = await client.post("/api/v1/metrics", json={"host": None, "samples": [
            {"metric": "m.a", "value": 1, "host": None}]})
        assert r.status_code == 400
        assert r.json()["errors"][0]["loc"] == "samples[0].host"
    assert sorted(row["metric"] for row in await stored(default_server.database_url, host)) == [
        "m.a", "m.b", "m.b"]
    schema = (await _openapi(default_server))["components"]["schemas"]["SampleIn"]
    assert {"type": "null"} in schema["properties"]["host"]["anyOf"]


async def test_last_sample_of_a_series_and_time_wins(default_server: IngestServer) -> None:
    host = _host("sem-merge")
    now = time.time()
    samples = [
        {"metric": "m.x", "value": 1, "timestamp": now},
        {"metric": "m.x", "value": 2, "timestamp": now},
        {"metric": "m.x", "value": 3, "timestamp": now, "labels": {"a": "b"}},
        {"metric": "m.x", "value": 4, "timestamp": now + 1},
        {"metric": "m.x", "value": 5, "timestamp": now},
    ]
    async with default_server.client(default_server.ingest_key) as client:
        for _ in range(2):  # the general path, then the fast path
            r = await client.post("/api/v1/metrics", json={"host": host, "samples": samples})
            assert r.status_code == 202, r.text
            assert r.json() == {"accepted": 3, "duplicate": False, "merged": 2}
        ts = int(now * 1e9)
        lines = f"lp,host={host} x=1 {ts}\nlp,host={host} x=2 {ts}\n"
        r = await client.post("/api/v2/write", content=lines.encode())
        assert r.status_code == 204
        assert r.headers["X-Nazar-Skipped"] == "duplicate_timestamp=1"
    rows = await stored(default_server.database_url, host)
    assert sorted(row["value"] for row in rows if row["metric"] == "m.x") == [3, 3, 4, 4, 5, 5]
    assert [row["value"] for row in rows if row["metric"] == "lp.x"] == [2]


async def test_idempotency_key_reused_for_another_body_is_refused(
    default_server: IngestServer,
) -> None:
    host = _host("sem-idem")
    first = {"host": host, "samples": [{"metric": "m", "value": 1}]}
    second = {"host": host, "samples": [{"metric": "m", "value": 2}]}
    async with default_server.client(default_server.ingest_key) as client:
        key = {"Idempotency-Key": f"k-{host}"}
        r = await client.post("/api/v1/metrics", json=first, headers=key)
        assert r.status_code == 202 and r.json()["duplicate"] is False
        r = await client.post("/api/v1/metrics", json=first, headers=key)
        assert r.status_code == 202 and r.json()["duplicate"] is True
        r = await client.post("/api/v1/metrics", json=second, headers=key)
        assert r.status_code == 422, r.text
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["type"].endswith("/idempotency-key-reused")
        # Two requests with one key in the same group commit: one is stored,
        # the other is a duplicate (same body) or refused (another body).
        for bodies, expected in (
            ((first, first), [202, 202]),
            ((first, second), [202, 422]),
        ):
            key = {"Idempotency-Key": f"k2-{secrets.token_hex(4)}"}
            answers = await asyncio.gather(
                *(client.post("/api/v1/metrics", json=b, headers=key) for b in bodies)
            )
            assert sorted(a.status_code for a in answers) == expected
    values = [row["value"] for row in await stored(default_server.database_url, host)]
    assert 2.0 not in values or values.count(2.0) == 1
    assert values.count(1.0) + values.count(2.0) == 3


async def _openapi(server: IngestServer) -> dict[str, Any]:
    async with server.client() as client:
        return dict((await client.get("/openapi.json")).json())


async def test_openapi_lists_every_error_status(default_server: IngestServer) -> None:
    document = await _openapi(default_server)
    ops = {
        (method.upper(), path): op
        for path, item in document["paths"].items()
        for method, op in item.items()
    }
    for (method, path), op in ops.items():
        for status, response in op["responses"].items():
            if status[0] in "45" and path != "/readyz":  # readiness answers its checks
                assert "application/problem+json" in response["content"], (method, path, status)
                # FastAPI's own 422 (validation) is a 400 here; a 422 is only
                # the series budget of ingest or a measurement past its time limit.
                assert status != "422" or path == "/api/v1/metrics" or (
                    "NAZAR_REPORT_TIMEOUT" in response["description"]
                ), (method, path)
        if path not in ("/healthz", "/readyz"):
            assert {"401", "403", "503"} <= set(op["responses"]), (method, path)
        if "requestBody" in op:
            assert {"400", "408", "413", "415"} <= set(op["responses"]), (method, path)
    assert "422" in ops[("POST", "/api/v1/metrics")]["responses"]
    assert "409" in ops[("DELETE", "/api/v1/keys/{key_id}")]["responses"]
    assert "409" in ops[("POST", "/api/v1/rules")]["responses"]
    assert "404" in ops[("GET", "/api/v1/rules/{name}")]["responses"]
    assert "HTTPValidationError" not in orjson.dumps(document).decode()


async def test_the_last_admin_key_cannot_be_revoked(default_server: IngestServer) -> None:
    conn = await asyncpg.connect(default_server.database_url)
    try:
        admins = [r["key_id"] for r in await conn.fetch(
            "SELECT key_id FROM api_keys WHERE 'admin' = ANY(scopes) AND revoked_at IS NULL")]
    finally:
        await conn.close()
    assert len(admins) == 1
    cli = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "nazar_cli.main", "keys", "revoke", admins[0]],
        env={**os.environ, "NAZAR_DATABASE_URL": default_server.database_url},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert cli.returncode == 1 and "last active admin key" in cli.stderr, cli.stderr
    async with default_server.client() as admin:
        r = await admin.delete(f"/api/v1/keys/{admins[0]}")
        assert r.status_code == 409, r.text
        assert "last active admin key" in r.json()["detail"]
        created = (await admin.post("/api/v1/keys", json={"name": "second", "scopes": ["admin"]}))
        assert created.status_code == 201
    async with default_server.client(created.json()["key"]) as second:
        # Now the first can go; then the second is the last one.
        assert (await second.delete(f"/api/v1/keys/{admins[0]}")).status_code == 204
        r = await second.delete(f"/api/v1/keys/{created.json()['key_id']}")
        assert r.status_code == 409
        assert (await second.get("/api/v1/keys")).status_code == 200
    default_server.admin_key = created.json()["key"]

"""Events (deploys...) through the API and the CLI, against a real server and database."""

from __future__ import annotations

import asyncio
import gzip
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import orjson
import pytest

from nazar_common.schemas.events import MAX_EVENT_BYTES
from tests.conftest import IngestServer, start_ingest

CONTRACT = {"id", "kind", "title", "service", "version", "hosts", "selector", "start", "end",
            "link", "labels", "created_at"}


def iso(t: datetime) -> str:
    return t.isoformat()


async def _labelled_host(server: IngestServer, host: str, labels: dict[str, str]) -> None:
    """A host with labels, as ingest records them (the hosts table)."""
    async with server.client(server.ingest_key) as client:
        r = await client.post("/api/v1/metrics", json={
            "host": host, "labels": labels, "samples": [{"metric": "ev.up", "value": 1}]})
        assert r.status_code == 202, r.text
    conn = await asyncpg.connect(server.database_url)
    try:
        for _ in range(100):
            if await conn.fetchval("SELECT labels FROM hosts WHERE host = $1", host):
                return
            await asyncio.sleep(0.1)
    finally:
        await conn.close()
    raise AssertionError(f"host {host} not recorded")


async def test_record_get_and_delete(ingest_server: IngestServer) -> None:
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    body = {"kind": "deploy", "service": "web", "version": "v1.2.3", "hosts": ["ev-web-1"],
            "selector": {"role": "web"}, "start": iso(start), "link": "https://ci.example/1",
            "labels": {"team": "shop"}}
    async with (
        ingest_server.client(ingest_server.ingest_key) as writer,
        ingest_server.client(ingest_server.read_key) as reader,
        ingest_server.client() as admin,
    ):
        r = await writer.post("/api/v1/events", json=body)
        assert r.status_code == 201, r.text
        event = r.json()
        assert set(event) == CONTRACT
        assert event["title"] == "deploy web v1.2.3"  # default title
        assert event["hosts"] == ["ev-web-1"] and event["selector"] == {"role": "web"}
        assert datetime.fromisoformat(event["start"]) == start and event["end"] is None
        assert datetime.fromisoformat(event["created_at"]).tzinfo is not None
        assert r.headers["location"] == f"/api/v1/events/{event['id']}"
        assert (await reader.get(r.headers["location"])).json() == event
        # read keys may not record, ingest keys may not delete
        assert (await reader.post("/api/v1/events", json=body)).status_code == 403
        assert (await writer.delete(r.headers["location"])).status_code == 403
        assert (await admin.delete(r.headers["location"])).status_code == 204
        r404 = await reader.get(r.headers["location"])
        assert r404.status_code == 404
        assert r404.headers["content-type"] == "application/problem+json"
        assert (await admin.delete(r.headers["location"])).status_code == 404
        assert (await reader.get("/api/v1/events/abc")).status_code == 400
        assert (await reader.get(f"/api/v1/events/{2**63}")).status_code == 400
        async with httpx.AsyncClient(base_url=ingest_server.url) as anonymous:
            assert (await anonymous.get("/api/v1/events")).status_code == 401


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"title": "a\u0000b"}, "title"),
        ({"service": "web\u0000"}, "service"),
        ({"labels": {"team": "x\u0000"}}, "labels.team"),
        ({"selector": {"bad key": "x"}}, "selector.bad key.[key]"),
        ({"kind": "Deploy!"}, "kind"),
        ({"hosts": ["not a host"]}, "hosts.0"),
        ({"start": "2026-01-02T00:00:00"}, "start"),
        ({"start": "2026-01-02T00:00:00Z", "end": "2026-01-01T00:00:00Z"}, "end"),
        ({"link": "javascript:alert(1)"}, "link"),
        ({"title": "x" * 501}, "title"),
        ({"hosts": [f"h{i}" for i in range(1001)]}, "hosts"),
        ({"surprise": 1}, "surprise"),
    ],
)
async def test_invalid_events_name_the_field(
    ingest_server: IngestServer, body: dict[str, Any], field: str
) -> None:
    async with ingest_server.client(ingest_server.ingest_key) as writer:
        r = await writer.post("/api/v1/events", json={"service": "web", **body})
    assert r.status_code == 400, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert field in [e["loc"] for e in r.json()["errors"]], r.json()


async def test_malformed_and_oversized_bodies(ingest_server: IngestServer) -> None:
    async with ingest_server.client(ingest_server.ingest_key) as writer:
        r = await writer.post("/api/v1/events", content=b'{"service": "web\x00"}',
                              headers={"content-type": "application/json"})
        assert r.status_code == 400 and "JSON" in r.json()["detail"]
        r = await writer.post("/api/v1/events", content=b"[1, 2]",
                              headers={"content-type": "application/json"})
        assert r.status_code == 400
        big = orjson.dumps({"title": "x", "labels": {"a": "y" * (MAX_EVENT_BYTES + 10)}})
        r = await writer.post("/api/v1/events", content=big,
                              headers={"content-type": "application/json"})
        assert r.status_code == 413
        # a gzip bomb is refused after MAX_EVENT_BYTES of decompressed body
        bomb = gzip.compress(b'{"title": "' + b"x" * (10 * MAX_EVENT_BYTES) + b'"}')
        r = await writer.post("/api/v1/events", content=bomb,
                              headers={"content-type": "application/json",
                                       "content-encoding": "gzip"})
        assert r.status_code == 413
        r = await writer.post("/api/v1/events", content=gzip.compress(b'{"title": "zipped"}'),
                              headers={"content-type": "application/json",
                                       "content-encoding": "gzip"})
        assert r.status_code == 201 and r.json()["kind"] == "deploy"


async def test_list_filters(ingest_server: IngestServer) -> None:
    await _labelled_host(ingest_server, "flt-web-1", {"role": "web", "dc": "a"})
    await _labelled_host(ingest_server, "flt-db-1", {"role": "db", "dc": "a"})
    base = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    made: dict[str, int] = {}
    specs = {
        "by-name": {"kind": "deploy", "service": "flt", "hosts": ["flt-web-1"],
                    "start": iso(base), "labels": {"suite": "flt", "team": "a"}},
        "by-selector": {"kind": "deploy", "service": "flt", "selector": {"role": "web"},
                        "start": iso(base + timedelta(minutes=30)),
                        "labels": {"suite": "flt", "team": "b"}},
        "fleet": {"kind": "config", "title": "flt: new resolver", "start":
                  iso(base + timedelta(minutes=60)), "labels": {"suite": "flt"}},
        "db": {"kind": "incident", "title": "flt: db down", "hosts": ["flt-db-1"],
               "start": iso(base - timedelta(hours=1)), "end": iso(base + timedelta(minutes=5)),
               "labels": {"suite": "flt"}},
    }
    async with (
        ingest_server.client(ingest_server.ingest_key) as writer,
        ingest_server.client(ingest_server.read_key) as reader,
    ):
        for name, spec in specs.items():
            r = await writer.post("/api/v1/events", json=spec)
            assert r.status_code == 201, r.text
            made[name] = r.json()["id"]
        by_id = {v: k for k, v in made.items()}

        async def names(**params: Any) -> list[str]:
            r = await reader.get("/api/v1/events", params={"label": "suite=flt", **params})
            assert r.status_code == 200, r.text
            return [by_id[e["id"]] for e in r.json() if e["id"] in by_id]

        # newest first; the incident that ended inside the range overlaps it
        assert await names(start="now-3h") == ["fleet", "by-selector", "by-name", "db"]
        assert await names(start=iso(base + timedelta(minutes=10)), end="now") == [
            "fleet", "by-selector"]
        assert await names(start="now-3h", end=iso(base + timedelta(minutes=1))) == [
            "by-name", "db"]
        assert await names(start="now-3h", kind="deploy") == ["by-selector", "by-name"]
        assert await names(start="now-3h", kind=["config", "incident"]) == ["fleet", "db"]
        # host: named, matched by its labels, or fleet-wide
        assert await names(start="now-3h", host="flt-web-1") == [
            "fleet", "by-selector", "by-name"]
        assert await names(start="now-3h", host="flt-db-1") == ["fleet", "db"]
        assert await names(start="now-3h", host="flt-unknown") == ["fleet"]
        r = await reader.get("/api/v1/events", params=[
            ("start", "now-3h"), ("label", "suite=flt"), ("label", "team=b")])
        assert [by_id[e["id"]] for e in r.json()] == ["by-selector"]
        assert await names(start="now-3h", limit=1) == ["fleet"]
        # default range: the last 7 days
        assert await names() == ["fleet", "by-selector", "by-name", "db"]
        for params, word in [
            ({"start": "yesterday"}, "start"),
            ({"start": "now", "end": "now-1h"}, "start"),
            ({"host": "bad host"}, "host"),
            ({"kind": "BAD"}, "kind"),
            ({"label": "novalue"}, "label"),
            ({"label": "k=a\u0000b"}, "label"),
            ({"limit": "0"}, "limit"),
        ]:
            r = await reader.get("/api/v1/events", params=params)
            assert r.status_code == 400, (params, r.text)
            assert r.headers["content-type"] == "application/problem+json"
            assert word in orjson.dumps(r.json()).decode(), r.json()


async def test_old_events_are_pruned(
    fresh_database_url: str, fresh_amqp_url: str
) -> None:
    server = await start_ingest(fresh_database_url, fresh_amqp_url,
                                events_retention=timedelta(days=1), maintenance_interval=0.2)
    try:
        now = datetime.now(UTC)
        async with server.client(server.ingest_key) as writer:
            old = await writer.post("/api/v1/events", json={
                "title": "old", "start": iso(now - timedelta(days=3))})
            lasting = await writer.post("/api/v1/events", json={
                "title": "long", "start": iso(now - timedelta(days=3)),
                "end": iso(now - timedelta(hours=2))})
            recent = await writer.post("/api/v1/events", json={"title": "recent"})
        ids = {r.json()["id"] for r in (old, lasting, recent)}
        conn = await asyncpg.connect(fresh_database_url)
        try:
            for _ in range(100):
                left = {r["id"] for r in await conn.fetch("SELECT id FROM events")}
                if left == ids - {old.json()["id"]}:
                    break
                await asyncio.sleep(0.1)
            assert left == {lasting.json()["id"], recent.json()["id"]}
        finally:
            await conn.close()
    finally:
        server.thread.stop()


async def test_cli_records_and_lists_deploys(ingest_server: IngestServer) -> None:
    from typer.testing import CliRunner

    from nazar_cli.main import app

    def invoke(args: list[str], key: str, url: str | None = None):  # type: ignore[no-untyped-def]
        envvars = {"NAZAR_API_URL": url or ingest_server.url, "NAZAR_API_KEY": key}
        return asyncio.to_thread(CliRunner().invoke, app, args, env=envvars)

    result = await invoke(
        ["events", "deploy", "--service", "cli-web", "--version", "3f2a9c1",
         "--hosts", "role=web", "--link", "https://ci.example/run/42",
         "--label", "pipeline=main"],
        ingest_server.ingest_key,
    )
    assert result.exit_code == 0, result.output
    assert "recorded event" in result.output and "deploy cli-web 3f2a9c1" in result.output
    event_id = int(result.output.split("recorded event ")[1].split(":")[0])
    async with ingest_server.client(ingest_server.read_key) as reader:
        event = (await reader.get(f"/api/v1/events/{event_id}")).json()
    assert event["selector"] == {"role": "web"} and event["hosts"] == []
    assert event["version"] == "3f2a9c1" and event["link"] == "https://ci.example/run/42"
    assert event["labels"] == {"pipeline": "main"}
    result = await invoke(["events", "deploy", "--service", "cli-web", "--hosts",
                           "cli-1,cli-2", "--output", "json"], ingest_server.ingest_key)
    assert result.exit_code == 0, result.output
    assert orjson.loads(result.output)["hosts"] == ["cli-1", "cli-2"]
    result = await invoke(["events", "add", "--kind", "config", "--title", "cli: tuned gc"],
                          ingest_server.ingest_key)
    assert result.exit_code == 0, result.output

    result = await invoke(["events", "list", "--since", "1h", "--kind", "deploy"],
                          ingest_server.read_key)
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if "cli-web" in line]
    assert lines[0].split("\t")[0] != str(event_id)  # newest first
    assert any(line.startswith(f"{event_id}\t") and "role=web" in line
               and "https://ci.example/run/42" in line for line in lines)
    assert "cli: tuned gc" not in result.output

    # refused (field named), unauthorised, unreachable: non-zero exits with the reason
    result = await invoke(["events", "deploy", "--service", "x" * 300], ingest_server.ingest_key)
    assert result.exit_code == 1 and "service" in result.output
    result = await invoke(["events", "deploy", "--service", "web"], ingest_server.read_key)
    assert result.exit_code == 1 and "403" in result.output
    result = await invoke(["events", "deploy", "--service", "web"], ingest_server.ingest_key,
                          url="http://127.0.0.1:9")
    assert result.exit_code == 2 and "cannot reach" in result.output
    result = await invoke(["events", "delete", str(event_id)], ingest_server.admin_key)
    assert result.exit_code == 0

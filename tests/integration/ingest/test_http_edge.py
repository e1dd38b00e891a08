"""The HTTP edge: slow bodies end with 408 and a closed connection, an error
response leaves the keep-alive connection usable, deeply nested JSON is a
400, and the JSON endpoints answer other media types with 415.

Raw sockets where the connection itself is under test. Against a real
server running with the default log settings (INFO)."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import httpx
import orjson
import pytest

from tests.conftest import IngestServer
from tests.integration.ingest.conftest import BODY_TIMEOUT


class Connection:
    """One HTTP/1.1 keep-alive connection, spoken by hand."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, server: IngestServer) -> Connection:
        port = int(server.url.rsplit(":", 1)[1])
        return cls(*await asyncio.open_connection("127.0.0.1", port))

    async def send(self, method: str, path: str, key: str, body: bytes = b"",
                   ctype: str = "application/json", length: int | None = None) -> None:
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: nazar\r\nAuthorization: Bearer {key}\r\n"
            f"Content-Type: {ctype}\r\nContent-Length: {len(body) if length is None else length}"
            "\r\n\r\n"
        )
        self.writer.write(head.encode() + body)
        await self.writer.drain()

    async def response(self, timeout: float = 20) -> tuple[int, dict[str, str], bytes]:
        async with asyncio.timeout(timeout):
            status_line = await self.reader.readline()
            assert status_line, "connection closed instead of a response"
            headers = {}
            while (line := await self.reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode("latin-1").partition(":")
                headers[name.strip().lower()] = value.strip()
            body = await self.reader.readexactly(int(headers.get("content-length", "0")))
        return int(status_line.split()[1]), headers, body

    async def closed(self, timeout: float = 5) -> bool:
        async with asyncio.timeout(timeout):
            return await self.reader.read(1) == b""

    async def close(self) -> None:
        self.writer.close()


def _batch(host: str) -> bytes:
    return orjson.dumps(
        {"host": host, "samples": [{"metric": "edge.ok", "value": 1, "timestamp": time.time()}]}
    )


@pytest.mark.parametrize(
    ("path", "ctype"),
    [
        ("/api/v1/metrics", "application/json"),
        ("/api/v1/rules", "application/json"),
        ("/api/v2/write", "text/plain"),
    ],
)
async def test_slow_body_gets_408_and_the_connection_is_closed(
    default_server: IngestServer, path: str, ctype: str
) -> None:
    """A client that declares 1,000 bytes and sends 10 holds nothing for long."""
    conn = await Connection.open(default_server)
    started = time.monotonic()
    await conn.send("POST", path, default_server.admin_key, b'{"host": "', ctype, length=1000)
    status, headers, body = await conn.response(timeout=BODY_TIMEOUT + 10)
    elapsed = time.monotonic() - started
    assert status == 408, body
    assert headers["content-type"] == "application/problem+json"
    assert headers["connection"] == "close"
    assert "did not arrive" in orjson.loads(body)["detail"]
    assert await conn.closed()
    assert BODY_TIMEOUT - 0.5 <= elapsed < BODY_TIMEOUT + 5
    await conn.close()


async def test_connection_stays_usable_after_an_internal_error(
    default_server: IngestServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A 500 (a bug, injected here) does not reset the client's next request
    on the same keep-alive connection, on the plain ingest route and on the
    FastAPI routes alike; the error is logged once."""
    import nazar_ingest.routes.ingest as ingest_route
    import nazar_ingest.routes.keys as keys_route

    real_parse = ingest_route.parse_json

    def buggy_parse(body: bytes, *args: Any) -> Any:
        if b"edge-bug" in body:
            raise RuntimeError("injected bug")
        return real_parse(body, *args)

    async def buggy_revoke(*args: Any) -> Any:
        raise RuntimeError("injected bug")

    monkeypatch.setattr(ingest_route, "parse_json", buggy_parse)
    monkeypatch.setattr(keys_route.keys, "revoke_key", buggy_revoke)
    key = default_server.admin_key
    conn = await Connection.open(default_server)
    caplog.set_level(logging.INFO)
    for _ in range(2):
        await conn.send("POST", "/api/v1/metrics", key, _batch("edge-bug"))
        status, headers, body = await conn.response()
        assert status == 500 and headers["content-type"] == "application/problem+json", body
        assert "connection" not in headers
        await conn.send("POST", "/api/v1/metrics", key, _batch("edge-ok"))
        status, _, body = await conn.response()
        assert status == 202, body
        await conn.send("DELETE", "/api/v1/keys/abc", key)
        status, _, body = await conn.response()
        assert status == 500, body
        await conn.send("GET", "/api/v1/rules", key)
        status, _, body = await conn.response()
        assert status == 200, body
    # Client errors keep the connection too.
    for body, expected in ((b"{", 400), (_batch("edge-ok"), 202)):
        await conn.send("POST", "/api/v1/metrics", key, body)
        assert (await conn.response())[0] == expected
    await conn.close()
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert [r.getMessage() for r in errors] == ["unhandled error"] * 4


def _deep(levels: int) -> str:
    return '{"a":' * levels + "1" + "}" * levels


DEEP = _deep(1000)
KVLIST = '{"kvlistValue":{"values":[{"key":"a","value":' * 300 + "{}" + "}]}}" * 300
DEEP_BODIES = [
    (path, template.replace("DEEP", DEEP).replace("KVLIST", KVLIST))
    for path, template in [
        ("/api/v1/metrics", '{"host":"edge-deep","labels":DEEP,"samples":[]}'),
        ("/api/v1/metrics",
         '{"host":"edge-deep","samples":[{"metric":"m","value":1,"labels":DEEP}]}'),
        ("/api/v1/metrics", '{"host":"edge-deep","samples":[DEEP]}'),
        ("/v1/metrics", '{"resourceMetrics":[DEEP]}'),
        ("/v1/metrics",
         '{"resourceMetrics":[{"resource":{"attributes":[{"key":"host.name","value":KVLIST}]}}]}'),
        ("/api/v1/rules", '{"name":"deep","labels":DEEP}'),
        ("/api/v1/rules/backtest", '{"rule":DEEP}'),
        ("/api/v1/channels", '{"name":"deep","config":DEEP}'),
        ("/api/v1/silences", '{"matchers":DEEP}'),
        ("/api/v1/mute-windows", '{"name":"deep","matchers":[DEEP]}'),
        ("/api/v1/keys", '{"name":DEEP}'),
        ("/api/v1/alerts/1/ack", '{"comment":DEEP}'),
    ]
]


async def test_deep_json_is_a_400_everywhere(default_server: IngestServer) -> None:
    async with default_server.client() as client:
        for path, body in DEEP_BODIES:
            r = await client.post(path, content=body, headers={"Content-Type": "application/json"})
            assert r.status_code == 400, (path, r.text)
            assert r.headers["content-type"].startswith("application/problem+json")
        # Nesting within the limit still works.
        r = await client.put("/api/v1/rules/deep-ok", json={
            "metric": "m", "params": {"kind": "threshold", "value": 1}})
        assert r.status_code == 201, r.text


@pytest.mark.parametrize("ctype", ["text/plain", "application/xml", "application/x-protobuf",
                                   "application/x-www-form-urlencoded"])
async def test_json_endpoints_refuse_other_media_types(
    default_server: IngestServer, ctype: str
) -> None:
    body = _batch("edge-415")
    async with default_server.client() as client:
        for path in ("/api/v1/metrics", "/api/v1/rules", "/api/v1/keys"):
            r = await client.post(path, content=body, headers={"Content-Type": ctype})
            assert r.status_code == 415, (path, r.text)
            assert r.headers["content-type"] == "application/problem+json"
        for ok in ("application/json; charset=utf-8", "application/vnd.nazar+json"):
            r = await client.post("/api/v1/metrics", content=body, headers={"Content-Type": ok})
            assert r.status_code == 202, r.text


async def test_unauthenticated_bodies_are_not_read(default_server: IngestServer) -> None:
    """The key is checked before the body is read: a client without one gets
    its 401 at once, whatever body it announces."""
    conn = await Connection.open(default_server)
    await conn.send("POST", "/api/v1/rules", "nzr_bad_key", b"{", length=100_000)
    status, _, _ = await conn.response(timeout=BODY_TIMEOUT / 2)
    assert status == 401
    await conn.close()
    async with httpx.AsyncClient(base_url=default_server.url) as client:
        assert (await client.post("/api/v1/keys", content=b"{}")).status_code == 401

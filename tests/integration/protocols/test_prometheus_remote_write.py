"""Prometheus remote write: a real Prometheus scraping a real node_exporter.

Needs the Debian packages ``prometheus`` and ``prometheus-node-exporter``
(binaries ``prometheus`` and ``prometheus-node-exporter``); skipped with that
reason when they are not installed.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import cramjam
import httpx
import pytest

from nazar_ingest.payloads.wire import WriteRequest
from tests.conftest import IngestServer, free_port
from tests.integration.protocols.helpers import series_count, stored

PROMETHEUS = shutil.which("prometheus")
NODE_EXPORTER = shutil.which("prometheus-node-exporter") or shutil.which("node_exporter")


@contextlib.contextmanager
def _process(args: list[str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


async def _wait_http(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient() as client:
        while True:
            try:
                if (await client.get(url)).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} did not come up")
            await asyncio.sleep(0.2)


@pytest.mark.skipif(
    PROMETHEUS is None or NODE_EXPORTER is None,
    reason="needs the prometheus and prometheus-node-exporter packages "
    "(apt-get install prometheus prometheus-node-exporter)",
)
async def test_prometheus_remote_writes_node_exporter_series(ingest_server: IngestServer) -> None:
    assert PROMETHEUS and NODE_EXPORTER
    host = f"itest-prom-{secrets.token_hex(3)}"
    exporter_port, prometheus_port = free_port(), free_port()
    with tempfile.TemporaryDirectory(prefix="nazar-prom-") as tmp:
        work = Path(tmp)
        config = work / "prometheus.yml"
        config.write_text(f"""
global:
  scrape_interval: 1s
  evaluation_interval: 10s
scrape_configs:
  - job_name: node
    static_configs:
      - targets: ["127.0.0.1:{exporter_port}"]
        labels: {{instance: "{host}:9100"}}
remote_write:
  - url: {ingest_server.url}/api/v1/write
    authorization:
      credentials: {ingest_server.ingest_key}
    queue_config:
      batch_send_deadline: 500ms
      max_samples_per_send: 2000
      min_backoff: 100ms
      max_backoff: 1s
""")
        exporter_args = [
            NODE_EXPORTER, f"--web.listen-address=127.0.0.1:{exporter_port}",
            "--collector.disable-defaults", "--collector.loadavg", "--collector.meminfo",
            "--collector.filesystem", "--collector.cpu", "--collector.netdev",
        ]
        prometheus_args = [
            PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={work / 'data'}",
            f"--web.listen-address=127.0.0.1:{prometheus_port}", "--log.level=warn",
        ]
        with (
            _process(exporter_args, work / "node_exporter.log"),
            _process(prometheus_args, work / "prometheus.log") as prometheus,
        ):
            await _wait_http(f"http://127.0.0.1:{exporter_port}/metrics")
            deadline = time.monotonic() + 90
            while True:
                rows = await stored(ingest_server.database_url, host)
                metrics = {r["metric"] for r in rows}
                wanted = {"node_load1", "node_memory_MemAvailable_bytes",
                          "node_memory_MemTotal_bytes", "node_cpu_seconds_total"}
                if wanted <= metrics and sum(r["metric"] == "node_load1" for r in rows) >= 2:
                    break
                if prometheus.poll() is not None or time.monotonic() > deadline:
                    log = (work / "prometheus.log").read_text()[-3000:]
                    pytest.fail(f"series did not arrive (have {sorted(metrics)[:20]}): {log}")
                await asyncio.sleep(0.5)

    def latest(metric: str, **labels: str) -> dict[str, object]:
        matching = [r for r in rows if r["metric"] == metric
                    and all(r["labels"].get(k) == v for k, v in labels.items())]
        assert matching, metric
        return matching[-1]

    available = latest("node_memory_MemAvailable_bytes")
    total = latest("node_memory_MemTotal_bytes")
    assert 0 < available["value"] < total["value"]  # type: ignore[operator]
    # host from instance (port stripped); instance dropped, job kept
    assert available["labels"] == {"job": "node"}
    assert latest("node_load1")["value"] >= 0  # type: ignore[operator]
    cpu = latest("node_cpu_seconds_total", mode="idle")
    assert set(cpu["labels"]) == {"job", "cpu", "mode"}  # type: ignore[arg-type]
    assert all(abs(r["t"] - time.time()) < 120 for r in rows)
    # direct gauge aliases are stored next to the originals
    assert any(
        r["metric"] == "mem.available_bytes" and r["labels"] == {}
        and r["t"] == available["t"] and r["value"] == available["value"]
        for r in rows
    )
    assert any(r["metric"] == "system.load1" for r in rows)


async def test_malformed_remote_write_is_400_and_writes_nothing(
    ingest_server: IngestServer,
) -> None:
    host = f"itest-prombad-{secrets.token_hex(3)}"
    request = WriteRequest()
    series = request.timeseries.add()
    series.labels.add(name="__name__", value="up")
    series.labels.add(name="instance", value=f"{host}:9100")
    series.samples.add(value=1, timestamp=int(time.time() * 1000))
    good = bytes(request.SerializeToString())
    headers = {
        "Authorization": f"Bearer {ingest_server.ingest_key}",
        "Content-Encoding": "snappy",
        "Content-Type": "application/x-protobuf",
        "X-Prometheus-Remote-Write-Version": "0.1.0",
    }
    cases = [
        (bytes(cramjam.snappy.compress_raw(good[:-5])), 400, "WriteRequest"),
        (b"\x20this is not snappy data at all", 400, "snappy"),
        (bytes(cramjam.snappy.compress_raw(b"\x0a\x05garbage-bytes")), 400, "WriteRequest"),
    ]
    async with httpx.AsyncClient(base_url=ingest_server.url, headers=headers) as client:
        for body, status, reason in cases:
            r = await client.post("/api/v1/write", content=body)
            assert r.status_code == status, r.text
            assert reason in r.json()["detail"]
        r = await client.post("/api/v1/write", content=good)  # not compressed
        assert r.status_code == 400
        r = await client.post("/api/v1/write", content=bytes(cramjam.snappy.compress_raw(good)),
                              headers={"Content-Encoding": "gzip"})
        assert r.status_code == 400 and "snappy" in r.json()["detail"]
        r = await client.post(
            "/api/v1/write", content=b"x",
            headers={"Content-Type": "application/x-protobuf;proto=io.prometheus.write.v2.Request"},
        )
        assert r.status_code == 415
        r = await client.post("/api/v1/write", content=bytes(cramjam.snappy.compress_raw(good)),
                              headers={"Authorization": "Bearer nzr_x_y"})
        assert r.status_code == 401
    assert await series_count(ingest_server.database_url, host) == 0
    # the well-formed request is accepted with 204 and stored once even if retried
    async with httpx.AsyncClient(base_url=ingest_server.url, headers=headers) as client:
        for _ in range(2):
            r = await client.post("/api/v1/write",
                                  content=bytes(cramjam.snappy.compress_raw(good)))
            assert r.status_code == 204 and r.content == b""
    assert len(await stored(ingest_server.database_url, host)) == 1

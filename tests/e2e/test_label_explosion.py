"""A label explosion against a real ingest process: one host sends 100,000
new series (a label per request id, from a process of its own) while 20
agent-shaped hosts keep sending 100 requests/s. The budget holds (exactly
NAZAR_SERIES_LIMIT_PER_HOST series for the exploding host, the rest refused
with 422 naming the limit), every agent request gets its 202 and is stored,
and the agents' latency with and without the explosion is printed (figures
are the benchmark's business: this test asserts what must hold)."""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import orjson
import pytest

from nazar_common.db.migrate import migrate
from nazar_ingest.settings import IngestSettings
from tests.conftest import create_key, free_port, wait_ready
from tests.integration.notifier.support import wait_http

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
HOSTS, SERIES_PER_HOST = 20, 100
AGENT_RATE = 100.0  # requests/s from the agents together (10,000 samples/s)
EXPLOSION, PER_REQUEST = 100_000, 1000
LIMIT = IngestSettings().series_limit_per_host  # the shipped default


@dataclass
class Load:
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    timeline: list[tuple[float, float]] = field(default_factory=list)

    def note(self, status: int, seconds: float) -> None:
        self.latencies.append(seconds)
        self.timeline.append((time.perf_counter() - seconds, seconds))
        self.statuses[status] = self.statuses.get(status, 0) + 1

    def pct(self, p: float) -> float:
        return statistics.quantiles(self.latencies, n=100)[int(p) - 1] * 1000

    def summary(self) -> str:
        return (f"{len(self.latencies)} requests, p50 {self.pct(50):.1f} ms, "
                f"p95 {self.pct(95):.1f} ms, statuses {self.statuses}")


def agent_bodies(now: float) -> list[bytes]:
    return [
        orjson.dumps({"host": f"agent-{h:02d}", "labels": {"role": "web"}, "samples": [
            {"metric": f"node.m{m:03d}", "value": float(m), "timestamp": now}
            for m in range(SERIES_PER_HOST)]})
        for h in range(HOSTS)
    ]


async def agents(session: aiohttp.ClientSession, url: str, bodies: list[bytes], load: Load,
                 until: asyncio.Event) -> None:
    """Agent-shaped requests at a steady AGENT_RATE per second (open loop: a
    slow answer does not slow the senders down), until ``until`` is set."""
    loop = asyncio.get_running_loop()
    started, sent, pending = loop.time(), 0, set()

    async def one(body: bytes) -> None:
        t = time.perf_counter()
        async with session.post(url, data=body) as r:
            await r.read()
            load.note(r.status, time.perf_counter() - t)

    while not until.is_set():
        delay = started + sent / AGENT_RATE - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(one(bodies[sent % len(bodies)]))
        pending.add(task)
        task.add_done_callback(pending.discard)
        sent += 1
    await asyncio.gather(*pending)


def report(result: dict[str, Any], before: Load, during: Load, load: float) -> None:
    print(f"\nlabel explosion: {EXPLOSION} new series from one host in "
          f"{result['seconds']:.1f} s ({PER_REQUEST} per request, 4 in flight), "
          f"{HOSTS} agent hosts x {SERIES_PER_HOST} series, "
          f"{AGENT_RATE:.0f} agent requests/s; per-host limit {LIMIT}; "
          f"load average {load:.1f} on {os.cpu_count()} CPUs")
    print(f"  agents without the explosion: {before.summary()}")
    print(f"  agents during the explosion:  {during.summary()}")


def spawn_exploder(url: str, key: str) -> subprocess.Popen[str]:
    args = [sys.executable, "-m", "tests.e2e.explode", url, key,
            str(EXPLOSION // PER_REQUEST), str(PER_REQUEST)]
    return subprocess.Popen(args, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)


def spawn_ingest(port: int, database_url: str, amqp_url: str) -> subprocess.Popen[bytes]:
    """``nazar-ingest`` as a process of its own (the load generator is this one)."""
    log = Path(tempfile.gettempdir()) / f"nazar-explosion-ingest-{port}.log"
    env = {**os.environ, "NAZAR_DATABASE_URL": database_url, "NAZAR_AMQP_URL": amqp_url,
           "NAZAR_LISTEN_PORT": str(port), "NAZAR_LOG_LEVEL": "WARNING"}
    with log.open("wb") as out:
        return subprocess.Popen([sys.executable, "-m", "nazar_ingest"], env=env, cwd=ROOT,
                                stdout=out, stderr=subprocess.STDOUT)


async def test_label_explosion_is_contained(
    fresh_database_url: str, fresh_amqp_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    conn = await asyncpg.connect(fresh_database_url)
    try:
        await migrate(conn, "postgres")
    finally:
        await conn.close()
    key = await create_key(fresh_database_url, "ingest")
    port = free_port()
    proc = spawn_ingest(port, fresh_database_url, fresh_amqp_url)
    exploder: subprocess.Popen[str] | None = None
    url = f"http://127.0.0.1:{port}"
    try:
        await wait_http(f"{url}/readyz", timeout=60, proc=proc)
        await wait_ready(url, timeout=30)
        now = time.time()
        normal = agent_bodies(now)
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        async with aiohttp.ClientSession(headers=headers) as session:
            ingest = f"{url}/api/v1/metrics"
            for body in normal:  # the agents' series exist, as in a running fleet
                async with session.post(ingest, data=body) as r:
                    assert r.status == 202, await r.text()

            # 1. the agents alone
            before, stop = Load(), asyncio.Event()
            task = asyncio.create_task(agents(session, ingest, normal, before, stop))
            await asyncio.sleep(5.0)
            stop.set()
            await task

            # 2. the same while another process sends one host's 100,000 new series
            exploder = spawn_exploder(ingest, key)
            assert exploder.stdout is not None and exploder.stdin is not None
            line = await asyncio.to_thread(exploder.stdout.readline)
            assert line.strip() == "ready", line
            during, stop = Load(), asyncio.Event()
            task = asyncio.create_task(agents(session, ingest, normal, during, stop))
            exploder.stdin.write("go\n")
            exploder.stdin.flush()
            result = orjson.loads(await asyncio.to_thread(exploder.stdout.readline))
            await asyncio.sleep(max(0.0, 5.0 - result["seconds"]))
            stop.set()
            await task

        load = os.getloadavg()
        with capsys.disabled():  # the figures, in every run
            report(result, before, during, load[0])

        # every agent request was stored, before and during
        assert set(before.statuses) == {202} and set(during.statuses) == {202}
        # the budget held: exactly the limit, the rest refused naming it
        assert (result["accepted"], result["rejected"]) == (LIMIT, EXPLOSION - LIMIT)
        assert result["statuses"] == [202, 422]
        assert result["limits"] == [["per_host", LIMIT]]
        conn = await asyncpg.connect(fresh_database_url)
        try:
            counts = dict(await conn.fetch(
                "SELECT host = 'exploding-1', count(*) FROM series GROUP BY 1"))
            assert counts == {True: LIMIT, False: HOSTS * SERIES_PER_HOST}
            stored = await conn.fetchval(
                "SELECT count(*) FROM samples s JOIN series x ON x.id = s.series_id "
                "WHERE x.host <> 'exploding-1'")
            agent_requests = HOSTS + len(before.latencies) + len(during.latencies)
            assert stored == agent_requests * SERIES_PER_HOST
        finally:
            await conn.close()
    finally:
        for process in (exploder, proc):
            if process is not None and process.poll() is None:
                process.terminate()
                try:
                    await asyncio.to_thread(process.wait, 20)
                except subprocess.TimeoutExpired:
                    process.kill()

"""The whole Nazar stack as real processes on private PostgreSQL and RabbitMQ
instances, for tests that restart and kill things.

Ingest, the analyzer and the notifier run from their console entry points
(``nazar-ingest``, ``nazar-analyzer``, ``nazar-notifier``), as ``make up``
starts them, with the default log level (INFO) and JSON logs, each in a
process group of its own so a test can SIGTERM or SIGKILL it. A webhook
receiver records every notification. Shared by the service-level regression
tests, ``tests/chaos`` and ``bench/chaos.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aio_pika
import asyncpg
import httpx

from nazar_common.messaging.topology import QUEUES, analyzer_partitions
from nazar_common.settings import CommonSettings
from tests.conftest import create_key, free_port
from tests.integration.notifier.support import Receiver
from tests.support.instances import PrivatePostgres, PrivateRabbitMQ

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[2]
COMPONENTS = ("ingest", "analyzer", "notifier")
#: The queue whose consumer each component must have.
CONSUMED = {
    "ingest": "nazar.ingest.deferred",
    "analyzer": "nazar.analyzer.samples.p0",
    "notifier": "nazar.notifier.alerts",
}


@contextlib.contextmanager
def private_servers() -> Iterator[tuple[PrivatePostgres, PrivateRabbitMQ]]:
    """A private PostgreSQL and RabbitMQ, started; stopped and removed after."""
    with PrivatePostgres() as pg, PrivateRabbitMQ() as mq:
        pg.start()
        mq.start()
        yield pg, mq


@contextlib.asynccontextmanager
async def running_stack() -> AsyncIterator[Stack]:
    """Private servers and the whole stack on them, started; all stopped after."""
    with private_servers() as (pg, mq):
        stack = Stack(pg, mq)
        try:
            await stack.start()
            yield stack
        finally:
            await stack.stop()


async def wait_for(predicate: Callable[[], Awaitable[bool]], timeout: float, what: str) -> float:
    """Await ``predicate()`` until true; returns the seconds it took."""
    started = time.monotonic()
    while not await predicate():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.1)
    return time.monotonic() - started


@dataclass
class Service:
    """One component as a child process."""

    name: str
    port: int
    env: dict[str, str]
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> None:
        assert not self.running, f"{self.name} is running"
        executable = BIN / f"nazar-{self.name}"
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [str(executable)], env=self.env, cwd=ROOT, stdin=subprocess.DEVNULL,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
        self.starts += 1

    def send(self, sig: signal.Signals) -> None:
        if self.running and self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, sig)

    async def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = 40.0) -> float:
        """Send ``sig`` and wait for the exit; returns the seconds it took."""
        started = time.monotonic()
        if not self.running or self.proc is None:
            return 0.0
        self.send(sig)
        try:
            await asyncio.to_thread(self.proc.wait, timeout)
        except subprocess.TimeoutExpired as exc:
            self.send(signal.SIGKILL)
            await asyncio.to_thread(self.proc.wait, 10)
            raise AssertionError(
                f"{self.name} did not exit within {timeout} s of {sig.name}") from exc
        return time.monotonic() - started

    async def readyz(self, client: httpx.AsyncClient) -> tuple[int, dict[str, Any]]:
        try:
            r = await client.get(self.url + "/readyz", timeout=2.0)
        except httpx.HTTPError:
            return 0, {}
        try:
            return r.status_code, r.json()
        except ValueError:
            return r.status_code, {}

    async def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient() as client:
            while True:
                status, body = await self.readyz(client)
                if status == 200 and body.get("status") == "ok":
                    return
                if self.proc is not None and self.proc.poll() is not None:
                    raise AssertionError(f"{self.name} exited: {self.tail()}")
                if time.monotonic() > deadline:
                    raise AssertionError(f"{self.name} not ready: {status} {body}\n{self.tail()}")
                await asyncio.sleep(0.1)

    def logs(self) -> list[dict[str, Any]]:
        """Every JSON log line written so far (other lines as ``{"raw": ...}``)."""
        out = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                record = {"raw": line, "level": "RAW"}
            out.append(record if isinstance(record, dict) else {"raw": line})
        return out

    def tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


@dataclass
class Stack:
    """PostgreSQL, RabbitMQ, the three services and a webhook receiver."""

    pg: PrivatePostgres
    mq: PrivateRabbitMQ
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="nazar-stack-")))
    services: dict[str, Service] = field(default_factory=dict)
    receiver: Receiver | None = None
    admin_key: str = ""
    ingest_key: str = ""

    @property
    def database_url(self) -> str:
        return self.pg.dsn("nazar")

    @property
    def amqp_url(self) -> str:
        return self.mq.url

    def _env(self, name: str, port: int, ports: Mapping[str, int]) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("NAZAR_")}
        env.update({
            "NAZAR_DATABASE_URL": self.database_url,
            "NAZAR_AMQP_URL": self.amqp_url,
            "NAZAR_DB_POOL_MIN": "1",
            "NAZAR_DB_POOL_MAX": "6",
            "NAZAR_RECONNECT_MAX_DELAY": "2",
            "NAZAR_SERVICE_INSTANCE": name,
        })
        if name == "ingest":
            env.update({
                "NAZAR_LISTEN_PORT": str(port),
                "NAZAR_ANALYZER_URL": f"http://127.0.0.1:{ports['analyzer']}",
                "NAZAR_NOTIFIER_URL": f"http://127.0.0.1:{ports['notifier']}",
                "NAZAR_DEPENDENCY_TIMEOUT": "2",
                "NAZAR_MAINTENANCE_INTERVAL": "5",
            })
        elif name == "analyzer":
            env.update({
                "NAZAR_ANALYZER_LISTEN_PORT": str(port),
                "NAZAR_ANALYZER_SWEEP_INTERVAL": "2",
                "NAZAR_ANALYZER_RELOAD_INTERVAL": "5",
            })
        else:
            env.update({
                "NAZAR_NOTIFIER_LISTEN_PORT": str(port),
                "NAZAR_NOTIFIER_POLL_INTERVAL": "0.2",
                "NAZAR_NOTIFIER_SEND_TIMEOUT": "3",
                "NAZAR_NOTIFIER_BACKOFF_BASE": "0.2",
                "NAZAR_NOTIFIER_BACKOFF_MAX": "1",
            })
        return env

    async def start(self, overrides: Mapping[str, Mapping[str, str]] | None = None) -> Stack:
        """Start everything (the servers must be running) and configure a
        webhook channel; returns once every service is ready."""
        self.pg.create_database("nazar")
        ports = {name: free_port() for name in COMPONENTS}
        for name in COMPONENTS:
            env = self._env(name, ports[name], ports)
            env.update((overrides or {}).get(name, {}))
            self.services[name] = Service(name, ports[name], env, self.workdir / f"{name}.log")
        self.services["ingest"].start()
        await self.wait_database_ready()
        self.admin_key = await create_key(self.database_url, "admin")
        self.ingest_key = await create_key(self.database_url, "ingest")
        for name in ("analyzer", "notifier"):
            self.services[name].start()
        await asyncio.gather(*(s.wait_ready() for s in self.services.values()))
        self.receiver = Receiver().start()
        return self

    async def wait_database_ready(self, timeout: float = 60.0) -> None:
        """Until ingest has migrated the database."""
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient() as client:
            while True:
                _, body = await self.services["ingest"].readyz(client)
                if body.get("checks", {}).get("database") == "ok":
                    return
                if time.monotonic() > deadline:
                    raise AssertionError(f"ingest never migrated: {body}")
                await asyncio.sleep(0.1)

    def api(self, key: str | None = None) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.services["ingest"].url,
            headers={"Authorization": f"Bearer {key or self.admin_key}"},
            timeout=10.0,
        )

    async def add_webhook_channel(self, name: str) -> None:
        assert self.receiver is not None
        channel = {"name": name, "group_wait": 0, "group_interval": 0,
                   "config": {"type": "webhook", "url": f"{self.receiver.url}/{name}"}}
        async with self.api() as admin:
            r = await admin.post("/api/v1/channels", json=channel)
            assert r.status_code == 201, r.text

    async def put_rule(self, rule: dict[str, Any]) -> None:
        async with self.api() as admin:
            r = await admin.put(f"/api/v1/rules/{rule['name']}", json=rule)
            assert r.status_code in (200, 201), r.text

    async def consumers(self) -> dict[str, int]:
        """Consumers of each work queue, as the broker counts them (0 while
        the broker is unreachable)."""
        specs = (*QUEUES, *analyzer_partitions(CommonSettings().analyzer_partitions))
        counts = {spec.name: 0 for spec in specs}
        try:
            connection = await asyncio.wait_for(aio_pika.connect(self.amqp_url), 3.0)
        except Exception:
            return counts
        try:
            channel = await connection.channel()
            for spec in specs:
                queue = await channel.declare_queue(spec.name, passive=True)
                counts[spec.name] = int(queue.declaration_result.consumer_count or 0)
        except Exception:
            pass
        finally:
            with contextlib.suppress(Exception):
                await connection.close()
        return counts

    async def all_consumers_attached(self) -> bool:
        counts = await self.consumers()
        return all(counts[q] >= 1 for q in CONSUMED.values())

    async def fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        conn = await asyncpg.connect(self.database_url)
        try:
            return list(await conn.fetch(sql, *args))
        finally:
            await conn.close()

    async def stop(self) -> None:
        await asyncio.gather(*(s.stop(signal.SIGTERM) for s in self.services.values()
                               if s.running), return_exceptions=True)
        for s in self.services.values():
            s.send(signal.SIGKILL)
        if self.receiver is not None:
            self.receiver.stop()


class ReadinessProbe:
    """Polls every service's ``/readyz`` in the background and keeps the
    history: ``(monotonic time, service, status code, checks)``."""

    def __init__(self, stack: Stack, interval: float = 0.2) -> None:
        self.stack = stack
        self.interval = interval
        self.history: list[tuple[float, str, int, dict[str, str]]] = []
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        async with httpx.AsyncClient() as client:
            while True:
                for name, service in self.stack.services.items():
                    status, body = await service.readyz(client)
                    self.history.append((time.monotonic(), name, status, body.get("checks", {})))
                await asyncio.sleep(self.interval)

    def start(self) -> ReadinessProbe:
        self._task = asyncio.create_task(self._run())
        return self

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def between(self, start: float, end: float, service: str) -> list[tuple[int, dict[str, str]]]:
        return [(s, c) for t, n, s, c in self.history if n == service and start <= t <= end]

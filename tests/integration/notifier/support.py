"""Helpers of the notifier integration tests: HTTP receivers standing in for
Slack and webhook consumers, an SMTP server, event publishing, and the
notifier itself (in-process or as a subprocess)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aio_pika
import asyncpg
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from nazar_common.db.migrate import migrate
from nazar_common.messaging.topology import ALERTS_EXCHANGE, ALERTS_ROUTING_KEY, declare_topology
from nazar_common.schemas.wire import AlertEventV1, ExpectedBand
from tests.conftest import ServerThread, free_port

ROOT = Path(__file__).resolve().parents[3]


@dataclass
class Answer:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: Any
    at: float


class Receiver:
    """A real HTTP server on 127.0.0.1 that records every POST and answers from a
    script (then 200)."""

    def __init__(self, port: int | None = None) -> None:
        self.requests: list[Received] = []
        self.script: list[Answer] = []
        self.default = Answer()
        self._lock = threading.Lock()
        self.thread = ServerThread(Starlette(routes=[
            Route("/{path:path}", self._handle, methods=["POST"])]), port=port)

    async def _handle(self, request: Request) -> Response:
        raw = await request.body()
        with self._lock:
            answer = self.script.pop(0) if self.script else self.default
            self.requests.append(Received(request.url.path, dict(request.headers),
                                          orjson.loads(raw) if raw else None, time.time()))
        if answer.delay:
            await asyncio.sleep(answer.delay)
        return JSONResponse({"ok": answer.status < 300}, status_code=answer.status,
                            headers=answer.headers)

    @property
    def url(self) -> str:
        return self.thread.url

    @property
    def port(self) -> int:
        return self.thread.port

    def start(self) -> Receiver:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.thread.stop()

    def ok(self) -> list[Received]:
        """Requests that were answered 2xx (the script is consumed in order)."""
        return list(self.requests)


def make_event(
    *,
    fingerprint: str = "fp-1",
    state: str = "firing",
    previous: str = "normal",
    rule: str = "cpu-high",
    host: str = "web-1",
    channels: list[str] | None = None,
    severity: str = "warning",
    labels: dict[str, str] | None = None,
    alert_id: int = 1,
    started_at: datetime | None = None,
    at: datetime | None = None,
) -> AlertEventV1:
    now = at or datetime.now(UTC)
    return AlertEventV1(
        alert_id=alert_id,
        fingerprint=fingerprint,
        rule_id=1,
        rule_name=rule,
        kind="threshold",
        state=state,  # type: ignore[arg-type]
        previous_state=previous,  # type: ignore[arg-type]
        severity=severity,  # type: ignore[arg-type]
        host=host,
        metric="cpu.usage",
        labels=labels or {"env": "prod"},
        annotations={"summary": f"CPU high on {host}"},
        value=97.5,
        expected=ExpectedBand(low=None, high=90.0),
        explanation="cpu.usage 97.5 > 90",
        contributors=[],
        channels=channels if channels is not None else [],
        started_at=started_at or now,
        resolved_at=now if state == "resolved" else None,
        at=now,
    )


class Publisher:
    def __init__(self, amqp_url: str) -> None:
        self.amqp_url = amqp_url
        self.connection: aio_pika.abc.AbstractRobustConnection | None = None
        self.exchanges: dict[str, aio_pika.abc.AbstractExchange] = {}

    async def __aenter__(self) -> Publisher:
        self.connection = await aio_pika.connect_robust(self.amqp_url)
        channel = await self.connection.channel(publisher_confirms=True)
        self.exchanges = await declare_topology(channel)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.connection is not None
        await self.connection.close()

    async def publish(self, event: AlertEventV1) -> None:
        await self.exchanges[ALERTS_EXCHANGE].publish(
            aio_pika.Message(event.to_bytes(), message_id=str(event.id),
                             delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
            routing_key=ALERTS_ROUTING_KEY,
        )

    async def publish_raw(self, body: bytes) -> None:
        await self.exchanges[ALERTS_EXCHANGE].publish(
            aio_pika.Message(body, message_id=str(uuid.uuid4())), routing_key=ALERTS_ROUTING_KEY
        )


async def prepare_db(database_url: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        await migrate(conn, "postgres")
    finally:
        await conn.close()


async def add_channel(database_url: str, spec: dict[str, Any]) -> None:
    """Store a channel as the API does (secrets in clear in the database)."""
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(
            "INSERT INTO channels (name, spec) VALUES ($1, $2::jsonb) ON CONFLICT (name) "
            "DO UPDATE SET spec = EXCLUDED.spec",
            spec["name"], orjson.dumps(spec).decode(),
        )
    finally:
        await conn.close()


def notifier_env(database_url: str, amqp_url: str, port: int, **extra: object) -> dict[str, str]:
    env = {
        "NAZAR_DATABASE_URL": database_url,
        "NAZAR_AMQP_URL": amqp_url,
        "NAZAR_NOTIFIER_LISTEN_PORT": str(port),
        "NAZAR_NOTIFIER_POLL_INTERVAL": "0.1",
        "NAZAR_NOTIFIER_BACKOFF_BASE": "0.1",
        "NAZAR_NOTIFIER_BACKOFF_MAX": "0.5",
        "NAZAR_NOTIFIER_SEND_TIMEOUT": "1.0",
        "NAZAR_NOTIFIER_BREAKER_FAILURES": "3",
        "NAZAR_NOTIFIER_BREAKER_RESET": "1.0",
        "NAZAR_NOTIFIER_RETRY_BUDGET": "4.0",
        "NAZAR_NOTIFIER_MAX_ATTEMPTS": "4",
        "NAZAR_DB_POOL_MIN": "1",
        "NAZAR_DB_POOL_MAX": "4",
        "NAZAR_LOG_LEVEL": "WARNING",
        "NAZAR_LOG_FORMAT": "text",
    }
    env.update({f"NAZAR_{k.upper()}": str(v) for k, v in extra.items()})
    return env


class InProcessNotifier:
    """The notifier's ``run()`` as a task of the test's event loop."""

    def __init__(self, database_url: str, amqp_url: str, **overrides: object) -> None:
        from nazar_notifier.settings import NotifierSettings

        self.port = free_port()
        env = notifier_env(database_url, amqp_url, self.port, **overrides)
        fields = {k.removeprefix("NAZAR_").lower(): v for k, v in env.items()}
        self.settings = NotifierSettings(**fields)
        self.stop_event = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> InProcessNotifier:
        from nazar_notifier.__main__ import run

        self.task = asyncio.create_task(run(self.settings, self.stop_event))
        await wait_http(self.url + "/readyz")
        return self

    async def stop(self) -> None:
        self.stop_event.set()
        if self.task is not None:
            await asyncio.wait_for(self.task, 30)


class SubprocessNotifier:
    """``python -m nazar_notifier`` in a child process (for crash / restart tests)."""

    def __init__(self, database_url: str, amqp_url: str, **overrides: object) -> None:
        self.port = free_port()
        self.env = {**os.environ, **notifier_env(database_url, amqp_url, self.port, **overrides)}
        self.proc: subprocess.Popen[bytes] | None = None
        self.log: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _spawn(self) -> subprocess.Popen[bytes]:
        self.log = Path(tempfile.mkstemp(prefix="nazar-notifier-", suffix=".log")[1])
        with self.log.open("wb") as handle:
            return subprocess.Popen([sys.executable, "-m", "nazar_notifier"], env=self.env,
                                    cwd=ROOT, stdout=handle, stderr=subprocess.STDOUT)

    async def start(self) -> SubprocessNotifier:
        self.proc = self._spawn()
        await wait_http(self.url + "/readyz", proc=self.proc)
        return self

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    async def terminate(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            await asyncio.to_thread(self.proc.wait, 30)

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log else ""


async def wait_http(url: str, timeout: float = 30.0, proc: subprocess.Popen[bytes] | None = None
                    ) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient() as client:
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(url)).status_code == 200:
                    return
            if proc is not None and proc.poll() is not None:
                raise RuntimeError(f"process exited with {proc.returncode}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} not ready")
            await asyncio.sleep(0.05)


async def wait_until(predicate: Callable[[], bool], timeout: float = 15.0,
                     what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def fetch(database_url: str, sql: str, *args: object) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(database_url)
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()


def slack_spec(name: str, url: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "config": {"type": "slack", "webhook_url": url},
            "group_wait": 0, "group_interval": 0.5, **extra}


def webhook_spec(name: str, url: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "config": {"type": "webhook", "url": url,
                                     "headers": {"Authorization": "Bearer hook-secret-123"}},
            "group_wait": 0, "group_interval": 0.5, **extra}

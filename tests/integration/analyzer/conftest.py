"""An ingest server, analyzer instances and an alert-event collector, all on
a database and RabbitMQ vhost private to this test module."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aio_pika
import asyncpg
import pytest

from nazar_analyzer.http import create_app
from nazar_analyzer.service import AnalyzerService
from nazar_analyzer.settings import AnalyzerSettings
from nazar_common.messaging.topology import ALERTS_EXCHANGE, ALERTS_ROUTING_KEY
from nazar_common.runtime.http import serve_http
from nazar_common.schemas.wire import AlertEventV1
from tests.conftest import (
    IngestServer,
    free_port,
    private_database,
    private_vhost,
    start_ingest,
)


async def wait_for(
    predicate: Callable[[], Awaitable[Any]], timeout: float = 20.0, what: str = "condition"
) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = await predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


async def started(service: AnalyzerService) -> AnalyzerService:
    """``service`` started, its consumer attached (start() returns before that)."""
    await service.start()

    async def consuming() -> bool:
        return service.consuming

    await wait_for(consuming, 20, "the analyzer's consumer")
    return service


@dataclass
class Collector:
    """Every AlertEventV1 published on the alerts exchange (a test queue)."""

    events: list[AlertEventV1] = field(default_factory=list)

    def of(self, rule: str) -> list[AlertEventV1]:
        return [e for e in self.events if e.rule_name == rule]

    async def wait(self, rule: str, states: list[str], timeout: float = 20.0) -> list[AlertEventV1]:
        async def ok() -> bool:
            return len(self.of(rule)) >= len(states)

        await wait_for(ok, timeout, f"{rule} events {states}")
        return self.of(rule)


@dataclass
class Env:
    database_url: str
    amqp_url: str
    ingest: IngestServer
    analyzer: AnalyzerService
    analyzer_port: int
    collector: Collector
    pool: asyncpg.Pool
    extra: list[AnalyzerService] = field(default_factory=list)
    partitions: int = 4

    def settings(self, **overrides: Any) -> AnalyzerSettings:
        values: dict[str, Any] = dict(
            database_url=self.database_url,
            amqp_url=self.amqp_url,
            log_format="text",
            log_level="WARNING",
            analyzer_sweep_interval=0.3,
            analyzer_burn_rate_interval=0.3,
            analyzer_reload_interval=1.0,
            analyzer_state_flush_interval=1.0,
            analyzer_checkpoint_interval=0.5,
            analyzer_rebalance_interval=0.5,
            analyzer_partitions=self.partitions,
            analyzer_listen_port=0,
            db_pool_max=4,
        )
        values.update(overrides)
        return AnalyzerSettings(**values)

    async def start_analyzer(self, **overrides: Any) -> AnalyzerService:
        service = await started(AnalyzerService(self.settings(**overrides)))
        self.extra.append(service)
        return service

    async def put_rule(self, rule: dict[str, Any]) -> int:
        async with self.ingest.client() as client:
            r = await client.put(f"/api/v1/rules/{rule['name']}", json=rule)
            assert r.status_code in (200, 201), r.text
            body = r.json()
        services = [self.analyzer, *[s for s in self.extra if s.consuming]]

        async def loaded() -> bool:
            return all(
                (rule_ := s.engine.rules.rules.get(body["id"])) is not None
                and rule_.version == body["version"]
                for s in services
            )

        await wait_for(loaded, 10, f"rule {rule['name']} loaded")
        return int(body["id"])

    async def post(self, host: str, samples: list[dict[str, Any]],
                   labels: dict[str, str] | None = None) -> None:
        async with self.ingest.client(self.ingest.ingest_key) as client:
            r = await client.post("/api/v1/metrics", json={
                "host": host, "labels": labels or {}, "samples": samples})
            assert r.status_code in (200, 202), r.text


async def collect_alerts(amqp_url: str) -> tuple[Collector, aio_pika.abc.AbstractConnection]:
    """Every alert event published from now on (a queue of the caller's)."""
    collector = Collector()
    connection = await aio_pika.connect_robust(amqp_url)
    channel = await connection.channel()
    exchange = await channel.get_exchange(ALERTS_EXCHANGE)
    queue = await channel.declare_queue("", exclusive=True)
    await queue.bind(exchange, routing_key=ALERTS_ROUTING_KEY)

    async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        async with message.process():
            collector.events.append(AlertEventV1.from_bytes(message.body))

    await queue.consume(on_message)
    return collector, connection


@pytest.fixture(scope="module")
async def env() -> AsyncIterator[Env]:
    token = f"an_{secrets.token_hex(4)}"
    async with private_database(token) as database_url:
        with private_vhost(token) as amqp_url:
            async with _env(database_url, amqp_url) as env:
                yield env


@contextlib.asynccontextmanager
async def _env(database_url: str, amqp_url: str) -> AsyncIterator[Env]:
    port = free_port()
    ingest = await start_ingest(database_url, amqp_url, analyzer_url=f"http://127.0.0.1:{port}",
                                analyzer_partitions=Env.partitions)
    collector, connection = await collect_alerts(amqp_url)
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=3)
    env = Env(database_url, amqp_url, ingest, None, port, collector, pool)  # type: ignore[arg-type]
    env.analyzer = await started(AnalyzerService(env.settings(analyzer_listen_port=port)))
    class Current:  # the HTTP endpoint follows restarts of env.analyzer
        def __getattr__(self, name: str) -> Any:
            return getattr(env.analyzer, name)

    http = await serve_http(create_app(Current()), "127.0.0.1", port)  # type: ignore[arg-type]
    try:
        yield env
    finally:
        await http.stop()
        for s in [env.analyzer, *env.extra]:
            if s.consuming or s.pool is not None:
                await s.stop()
        await pool.close()
        await connection.close()
        ingest.thread.stop()

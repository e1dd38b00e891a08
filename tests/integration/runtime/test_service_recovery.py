"""Issue: after a second RabbitMQ restart the consumers were gone, queues
grew, nothing was analysed, and every ``/readyz`` still said ``ok``.

Here the three services run as processes (their console entry points, the
default log level INFO) on private PostgreSQL and RabbitMQ instances, and
the broker is restarted twice, has its connections closed, and has its
queues deleted under them: every consumer is back within seconds, readiness
says ``503`` and names the consumer while one is missing, samples accepted
meanwhile are stored and analysed, and each incident is logged once."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import aio_pika
import httpx
import pytest

from tests.support.stack import CONSUMED, ReadinessProbe, Stack, running_stack, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

CHANNEL = "recovery-hook"
RULE = "recovery-cpu"
METRIC = "recovery.cpu"


@pytest.fixture(scope="module")
async def stack() -> AsyncIterator[Stack]:
    async with running_stack() as s:
        await s.add_webhook_channel(CHANNEL)
        await s.put_rule({"name": RULE, "metric": METRIC, "channels": [CHANNEL],
                          "params": {"kind": "threshold", "comparator": ">", "value": 90}})
        yield s


async def all_ready(stack: Stack) -> bool:
    async with httpx.AsyncClient() as client:
        for service in stack.services.values():
            status, _ = await service.readyz(client)
            if status != 200:
                return False
    return True


async def back(stack: Stack) -> bool:
    return await stack.all_consumers_attached() and await all_ready(stack)


async def post(stack: Stack, host: str, values: list[float]) -> int:
    """Posts one sample per value; returns how many were answered 202."""
    accepted = 0
    async with stack.api(stack.ingest_key) as agent:
        for i, value in enumerate(values):
            body = {"host": host, "samples": [
                {"metric": METRIC, "value": value, "timestamp": time.time() - 1 + i * 1e-3}]}
            r = await agent.post("/api/v1/metrics", json=body,
                                 headers={"Idempotency-Key": uuid.uuid4().hex})
            accepted += r.status_code == 202
    return accepted


async def firing_notified(stack: Stack, host: str, timeout: float = 30.0) -> None:
    assert stack.receiver is not None
    receiver = stack.receiver

    async def notified() -> bool:
        return any(r.body["alerts"][0]["labels"].get("host") == host
                   and r.body["nazar"]["kind"] == "firing" for r in receiver.requests)

    await wait_for(notified, timeout, f"a firing notification for {host}")


def incident_lines(stack: Stack, name: str, message: str) -> int:
    return sum(1 for r in stack.services[name].logs() if r.get("message") == message)


async def test_two_rabbitmq_restarts_every_consumer_back_within_10_s(stack: Stack) -> None:
    probe = ReadinessProbe(stack).start()
    try:
        for _ in range(2):
            await asyncio.to_thread(stack.mq.stop_app)
            down = time.monotonic()
            await asyncio.sleep(3.0)
            starting = time.monotonic()
            await asyncio.to_thread(stack.mq.start_app)
            took = await wait_for(lambda: back(stack), 10, "consumers and readiness")
            assert took < 10
            for name in ("analyzer", "notifier"):
                during = probe.between(down + 0.5, starting, name)
                assert during and all(status == 503 for status, _ in during), (name, during)
            # Ingest can still make data durable in PostgreSQL: degraded, not down.
            assert {s for s, _ in probe.between(down + 0.5, starting, "ingest")} == {200}
    finally:
        await probe.stop()
    assert await post(stack, "after-restarts", [50, 99]) == 2
    await firing_notified(stack, "after-restarts")
    for name in ("ingest", "analyzer", "notifier"):
        # One line when the connection went, one when it came back: per restart.
        assert incident_lines(stack, name, "broker connection down; reconnecting with backoff") == 2
        assert incident_lines(stack, name, "broker connection re-established") == 2
        logs = stack.services[name].logs()
        assert not [r for r in logs if str(r.get("logger", "")).startswith(("aiormq", "aio_pika"))]


async def test_samples_deferred_while_database_down_survive_two_broker_restarts(
    stack: Stack,
) -> None:
    """The issue's scenario: samples accepted while PostgreSQL was down wait in
    the deferred queue; two broker restarts later they must still be stored."""
    host = "deferred-" + uuid.uuid4().hex[:6]
    await asyncio.to_thread(stack.pg.stop, "fast")
    try:
        async with stack.api(stack.ingest_key) as agent:
            base = time.time() - 60
            statuses = []
            for i in range(50):
                body = {"host": host, "samples": [
                    {"metric": "recovery.seq", "value": i * 20 + j, "timestamp": base + i + j / 100}
                    for j in range(20)]}
                r = await agent.post("/api/v1/metrics", json=body)
                statuses.append(r.status_code)
        assert set(statuses) == {202}
        for _ in range(2):
            await asyncio.to_thread(stack.mq.stop_app)
            await asyncio.sleep(1.0)
            await asyncio.to_thread(stack.mq.start_app)
            await wait_for(stack.all_consumers_attached, 10, "consumers")
    finally:
        await asyncio.to_thread(stack.pg.start)

    async def stored() -> bool:
        try:
            rows = await stack.fetch(
                "SELECT count(*) AS n, count(DISTINCT s.value) AS d FROM samples s "
                "JOIN series x ON x.id = s.series_id WHERE x.host = $1", host)
        except OSError:
            return False
        return bool(rows[0]["n"] == 1000)

    await wait_for(stored, 60, "the 1,000 deferred samples stored")
    rows = await stack.fetch(
        "SELECT count(*) AS n, count(DISTINCT s.value) AS d FROM samples s "
        "JOIN series x ON x.id = s.series_id WHERE x.host = $1", host)
    assert (rows[0]["n"], rows[0]["d"]) == (1000, 1000)
    await wait_for(lambda: back(stack), 30, "everything ready again")


async def test_forced_close_of_every_connection(stack: Stack) -> None:
    for _ in range(2):
        closed = await asyncio.to_thread(stack.mq.close_connections, "nazar-")
        assert closed >= 3
        took = await wait_for(lambda: back(stack), 10, "consumers after close_connection")
        assert took < 10
    assert await post(stack, "after-close", [50, 99]) == 2
    await firing_notified(stack, "after-close")


async def test_deleted_queues_come_back_and_readiness_names_the_missing_consumer(
    stack: Stack,
) -> None:
    connection = await aio_pika.connect(stack.amqp_url)
    try:
        # Deleted: each consumer is cancelled by the broker, declares its queue
        # again and re-subscribes.
        channel = await connection.channel()
        for queue in CONSUMED.values():
            await channel.queue_delete(queue)
        await wait_for(lambda: back(stack), 10, "consumers after the queues were deleted")
        # Deleted and declared again by someone else, incompatibly (classic
        # queues): the consumers cannot subscribe, and readiness says which.
        for queue in CONSUMED.values():
            await channel.queue_delete(queue)
            await channel.declare_queue(queue, durable=True)

        async def all_missing() -> bool:
            async with httpx.AsyncClient() as client:
                for name, queue in CONSUMED.items():
                    status, body = await stack.services[name].readyz(client)
                    checks = body.get("checks", {})
                    if status != 503 or checks.get(f"consumer:{queue}") != "missing":
                        return False
                    if checks.get("broker") != "ok":
                        return False
            return True

        await wait_for(all_missing, 10, "every /readyz to name its missing consumer")
        channel = await connection.channel()
        for queue in CONSUMED.values():
            await channel.queue_delete(queue)
        took = await wait_for(lambda: back(stack), 10, "consumers after the queues were fixed")
        assert took < 10
    finally:
        await connection.close()
    assert await post(stack, "after-delete", [50, 99]) == 2
    await firing_notified(stack, "after-delete")

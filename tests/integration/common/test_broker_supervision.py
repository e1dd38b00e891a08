"""The supervised broker connection against a private RabbitMQ node that the
tests restart, close connections of, delete queues on and freeze: whatever
removes a channel or a consumer, it comes back, within seconds, logged once
per incident at the services' default level (INFO), and readiness says
"missing" meanwhile."""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import aio_pika
import pytest
from aio_pika.abc import AbstractIncomingMessage

from nazar_common.messaging.broker import Broker, ConsumerSpec
from nazar_common.messaging.topology import ALERTS_EXCHANGE, QueueSpec
from nazar_common.runtime.backoff import Backoff
from nazar_common.runtime.metrics import runtime_metrics
from nazar_common.runtime.worker import Runtime
from nazar_common.settings import CommonSettings
from tests.support.instances import PrivateRabbitMQ

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

BROKER_LOGGER = "nazar_common.messaging.broker"


@pytest.fixture(scope="module")
def mq() -> Iterator[PrivateRabbitMQ]:
    with PrivateRabbitMQ() as server:
        server.start()
        yield server


@pytest.fixture
def info_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Records at INFO, the level the services run with by default."""
    caplog.set_level(logging.INFO)
    return caplog


def _spec(tag: str) -> QueueSpec:
    return QueueSpec(f"test.{tag}.{secrets.token_hex(3)}", ALERTS_EXCHANGE, f"test.{tag}.rk")


class Seen:
    def __init__(self) -> None:
        self.bodies: list[str] = []

    async def handler(self, message: AbstractIncomingMessage) -> None:
        self.bodies.append(message.body.decode())


async def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> float:
    """Poll ``predicate``; returns the seconds it took."""
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.05)
    return time.monotonic() - started


async def publish_until_seen(broker: Broker, spec: QueueSpec, seen: Seen, body: str) -> None:
    await wait_until(lambda: broker.connected, 15, "the publisher")
    await broker.publish(ALERTS_EXCHANGE, spec.routing_key, body.encode(), message_id=body)
    await wait_until(lambda: body in seen.bodies, 15, f"{body} consumed")


def _records(caplog: pytest.LogCaptureFixture, level: int, text: str) -> list[logging.LogRecord]:
    return [
        r for r in caplog.records
        if r.name == BROKER_LOGGER and r.levelno == level and text in r.getMessage()
    ]


@pytest.fixture
async def broker(mq: PrivateRabbitMQ) -> AsyncIterator[Broker]:
    b = Broker(mq.url, component="test", heartbeat=5, backoff=Backoff(0.2, 2.0))
    yield b
    await b.close()


async def test_consumer_comes_back_after_two_stop_app_start_app(
    mq: PrivateRabbitMQ, broker: Broker, info_logs: pytest.LogCaptureFixture
) -> None:
    spec, seen = _spec("restart"), Seen()
    metrics = runtime_metrics("test")
    reconnects = metrics.broker_reconnects._value.get()
    broker.add_consumer(ConsumerSpec(spec, seen.handler, prefetch=5))
    broker.start()
    await wait_until(lambda: broker.consumers()[spec.name], 15, "the first attachment")
    await publish_until_seen(broker, spec, seen, "before")
    for round_ in (1, 2):
        await asyncio.to_thread(mq.stop_app)
        await wait_until(lambda: not broker.consumers()[spec.name], 10, "the consumer to go")
        assert broker.missing_consumers() == [spec.name]
        assert not broker.connected
        await asyncio.sleep(1.5)  # a few failed reconnection attempts
        await asyncio.to_thread(mq.start_app)
        took = await wait_until(lambda: broker.consumers()[spec.name], 10, "the consumer back")
        assert took < 10
        assert spec.name in mq.consumer_queues()
        await publish_until_seen(broker, spec, seen, f"after-restart-{round_}")
    assert metrics.broker_reconnects._value.get() - reconnects == 2
    # Once per incident: one warning when the connection went, one info line
    # when it came back -- not one per failed attempt.
    assert len(_records(info_logs, logging.WARNING, "broker connection down")) == 2
    assert len(_records(info_logs, logging.INFO, "broker connection re-established")) == 2
    assert not [r for r in info_logs.records if r.name == BROKER_LOGGER
                and r.levelno >= logging.WARNING and "broker connection down" not in r.getMessage()]


async def test_forced_connection_close(mq: PrivateRabbitMQ, broker: Broker) -> None:
    spec, seen = _spec("forced"), Seen()
    broker.add_consumer(ConsumerSpec(spec, seen.handler))
    broker.start()
    await wait_until(lambda: broker.consumers()[spec.name], 15, "attachment")
    for round_ in (1, 2):
        closed = await asyncio.to_thread(mq.close_connections, "nazar-test@")
        assert closed == 1
        took = await wait_until(
            lambda n=round_ + 1: broker.connections == n and broker.consumers()[spec.name],
            10, "reconnection")
        assert took < 10
        await publish_until_seen(broker, spec, seen, f"after-close-{round_}")


async def test_deleted_queue_is_declared_again_and_consumed(
    mq: PrivateRabbitMQ, broker: Broker, info_logs: pytest.LogCaptureFixture
) -> None:
    """Deleting a queue cancels its consumers (basic.cancel): the consumer
    declares the queue again and re-subscribes, on the same connection."""
    spec, seen = _spec("deleted"), Seen()
    broker.add_consumer(ConsumerSpec(spec, seen.handler))
    broker.start()
    await wait_until(lambda: broker.consumers()[spec.name], 15, "attachment")
    connections = broker.connections
    admin = await aio_pika.connect(mq.url)
    try:
        channel = await admin.channel()
        for round_ in (1, 2):
            await channel.queue_delete(spec.name)
            await wait_until(lambda: spec.name in mq.consumer_queues(), 10, "re-subscription")
            await publish_until_seen(broker, spec, seen, f"after-delete-{round_}")
    finally:
        await admin.close()
    assert broker.connections == connections  # the connection was not touched
    lost = _records(info_logs, logging.WARNING, f"consumer of {spec.name} lost")
    assert len(lost) == 2
    assert "cancelled by the broker" in str(lost[0].__dict__.get("error"))


async def test_queue_redeclared_incompatibly_shows_missing_until_fixed(mq: PrivateRabbitMQ) -> None:
    """Someone deletes the queue and declares it again as a classic queue: the
    consumer cannot subscribe (its declaration is refused), readiness says so
    by name, and the consumer is back as soon as the queue is fixed."""
    spec, seen = _spec("redeclared"), Seen()
    settings = CommonSettings(amqp_url=mq.url, reconnect_max_delay=1.0)
    runtime = Runtime("test", settings)
    runtime.consume(spec, seen.handler)
    runtime.start_broker()
    admin = await aio_pika.connect(mq.url)
    try:
        await wait_until(lambda: runtime.checks()[f"consumer:{spec.name}"] == "ok", 15, "ok")
        channel = await admin.channel()
        await channel.queue_delete(spec.name)
        await channel.declare_queue(spec.name, durable=True)  # classic, no dead-lettering
        await wait_until(
            lambda: runtime.checks()[f"consumer:{spec.name}"] == "missing", 10, "missing")
        await asyncio.sleep(2.0)  # several attempts, still missing, still connected
        assert runtime.checks() == {"broker": "ok", f"consumer:{spec.name}": "missing"}
        channel = await admin.channel()
        await channel.queue_delete(spec.name)
        took = await wait_until(
            lambda: runtime.checks()[f"consumer:{spec.name}"] == "ok", 10, "back")
        assert took < 5
        await publish_until_seen(runtime.broker, spec, seen, "after-fix")
    finally:
        await admin.close()
        await runtime.shutdown()


async def test_channel_error_reopens_the_consumer_channel(broker: Broker) -> None:
    """A channel error (here: acknowledging an unknown delivery tag) closes
    the consumer's channel; the consumer re-subscribes and the message, whose
    acknowledgement was lost with the channel, is delivered again."""
    spec = _spec("channel")
    deliveries: list[str] = []

    async def handler(message: AbstractIncomingMessage) -> None:
        deliveries.append(message.body.decode())
        if len(deliveries) == 1:  # PRECONDITION_FAILED closes the channel
            await message.channel.basic_ack(delivery_tag=(message.delivery_tag or 0) + 1000)
            await asyncio.sleep(0.5)

    broker.add_consumer(ConsumerSpec(spec, handler))
    broker.start()
    await wait_until(lambda: broker.consumers()[spec.name], 15, "attachment")
    await broker.publish(ALERTS_EXCHANGE, spec.routing_key, b"twice", message_id="twice")
    await wait_until(lambda: len(deliveries) >= 2, 10, "redelivery after the channel error")
    assert broker.consumers()[spec.name]
    assert broker.connections == 1


async def test_missed_heartbeats_drop_the_connection_and_it_comes_back(
    mq: PrivateRabbitMQ,
) -> None:
    """A broker that stops answering (SIGSTOP) is noticed by missed heartbeats;
    once it answers again the consumer is back."""
    spec, seen = _spec("heartbeat"), Seen()
    broker = Broker(mq.url, component="test", heartbeat=1, connect_timeout=2.0,
                    backoff=Backoff(0.2, 1.0))
    broker.add_consumer(ConsumerSpec(spec, seen.handler))
    broker.start()
    try:
        await wait_until(lambda: broker.consumers()[spec.name], 15, "attachment")
        mq.pause()
        try:
            took = await wait_until(lambda: not broker.connected, 20, "the loss to be noticed")
            assert took < 15
        finally:
            mq.resume()
        await wait_until(lambda: broker.consumers()[spec.name], 20, "the consumer back")
        await publish_until_seen(broker, spec, seen, "after-freeze")
    finally:
        await broker.close()


async def test_consumers_added_and_removed_at_run_time_with_state_hooks(broker: Broker) -> None:
    """Consumers come and go while connected; ``active`` runs once per
    attachment, before the first handler; removal lets the handler in flight
    finish and acknowledge (nothing is delivered twice)."""
    spec = _spec("dynamic")
    events: list[tuple[str, str]] = []
    handled: list[str] = []
    release = asyncio.Event()

    async def on_state(name: str, event: str) -> None:
        events.append((name, event))
        if event == "active":
            await asyncio.sleep(0.2)  # e.g. restoring a checkpoint

    async def handler(message: AbstractIncomingMessage) -> None:
        assert (spec.name, "active") in events
        handled.append(message.body.decode())
        if message.body == b"slow":
            await release.wait()

    broker.start()
    await wait_until(lambda: broker.connected, 15, "connection")
    broker.add_consumer(ConsumerSpec(spec, handler, on_state=on_state, drain_timeout=10))
    await wait_until(lambda: broker.consumers().get(spec.name, False), 10, "attachment")
    for body in ("a", "b", "c"):
        await broker.publish(ALERTS_EXCHANGE, spec.routing_key, body.encode(), message_id=body)
    await wait_until(lambda: len(handled) == 3, 10, "three messages")
    assert events == [(spec.name, "attached"), (spec.name, "active")]
    await broker.publish(ALERTS_EXCHANGE, spec.routing_key, b"slow", message_id="slow")
    await wait_until(lambda: "slow" in handled, 10, "the slow one started")
    removal = asyncio.create_task(broker.remove_consumer(spec.name))
    await asyncio.sleep(0.5)
    assert not removal.done()  # waits for the handler in flight
    release.set()
    await asyncio.wait_for(removal, 10)
    assert events[-1] == (spec.name, "detached")
    assert spec.name not in broker.consumers()
    # Added again: the slow message was acknowledged, so it does not come back.
    broker.add_consumer(ConsumerSpec(spec, handler, on_state=on_state))
    await wait_until(lambda: broker.consumers().get(spec.name, False), 10, "re-attachment")
    await broker.publish(ALERTS_EXCHANGE, spec.routing_key, b"d", message_id="d")
    await wait_until(lambda: "d" in handled, 10, "d")
    assert handled.count("slow") == 1
    assert [e for _, e in events].count("active") == 2


def _value(metric: Any, **labels: str) -> float:
    return float((metric.labels(**labels) if labels else metric)._value.get())

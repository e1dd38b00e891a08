"""Broker: confirms, trace propagation through AMQP headers, and the error
translation into ack / requeue / dead-letter, on a real RabbitMQ vhost."""

from __future__ import annotations

import asyncio
import time
import uuid

import aio_pika
import pytest
from aio_pika.abc import AbstractIncomingMessage
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from nazar_common.errors import PermanentError, TransientError
from nazar_common.messaging.broker import Broker
from nazar_common.messaging.topology import ALERTS_EXCHANGE, ALERTS_ROUTING_KEY, NOTIFIER_ALERTS

EXPORTER = InMemorySpanExporter()


@pytest.fixture(scope="module", autouse=True)
def tracing() -> None:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(EXPORTER))
    trace.set_tracer_provider(provider)


async def _dlq_count(url: str) -> int:
    connection = await aio_pika.connect(url)
    try:
        channel = await connection.channel()
        queue = await channel.declare_queue(NOTIFIER_ALERTS.dlq, passive=True)
        return int(queue.declaration_result.message_count or 0)
    finally:
        await connection.close()


async def _wait(predicate, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not await predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.1)


async def test_trace_context_travels_in_headers_and_errors_translate(
    fresh_amqp_url: str,
) -> None:
    broker = Broker(fresh_amqp_url)
    await broker.connect()
    seen: dict[str, int] = {}
    consumer_traces: dict[str, int] = {}

    async def handler(message: AbstractIncomingMessage) -> None:
        body = message.body.decode()
        seen[body] = seen.get(body, 0) + 1
        consumer_traces[body] = trace.get_current_span().get_span_context().trace_id
        if body == "poison":
            raise PermanentError("cannot handle this")
        if body == "flaky" and seen[body] < 3:
            raise TransientError("try again")
        if body == "always-failing":
            raise RuntimeError("bug")

    try:
        tracer = trace.get_tracer("test")
        with tracer.start_as_current_span("producer") as span:
            producer_trace = span.get_span_context().trace_id
            for body in ("ok", "poison", "flaky", "always-failing"):
                await broker.publish(
                    ALERTS_EXCHANGE, ALERTS_ROUTING_KEY, body.encode(), message_id=str(uuid.uuid4())
                )
        await broker.consume(NOTIFIER_ALERTS, handler, prefetch=4)

        async def settled() -> bool:
            return (
                seen.get("ok") == 1
                and seen.get("flaky") == 3
                and seen.get("always-failing", 0) > NOTIFIER_ALERTS.delivery_limit
                and await _dlq_count(fresh_amqp_url) == 2
            )

        await _wait(settled, timeout=60)
        # The consumer ran inside the producer's trace.
        assert producer_trace != 0
        assert consumer_traces["ok"] == producer_trace
        # Poison went to the dead-letter queue on the first try, not retried.
        assert seen["poison"] == 1
    finally:
        await broker.close()


async def test_publish_fails_fast_when_not_connected(fresh_amqp_url: str) -> None:
    broker = Broker(fresh_amqp_url)
    with pytest.raises(TransientError):
        await broker.publish(ALERTS_EXCHANGE, ALERTS_ROUTING_KEY, b"x", message_id="1")
    unreachable = Broker("amqp://guest:guest@127.0.0.1:1/")
    with pytest.raises(TransientError):
        await unreachable.connect(timeout=3)

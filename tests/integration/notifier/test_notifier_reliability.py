"""Retries, Retry-After, timeouts, the circuit breaker and the dead-letter path,
against receivers that misbehave for real."""

from __future__ import annotations

import asyncio

from nazar_cli.dlq import peek, replay
from tests.conftest import free_port
from tests.integration.notifier.support import (
    Answer,
    InProcessNotifier,
    Publisher,
    Receiver,
    add_channel,
    fetch,
    make_event,
    slack_spec,
    wait_until,
    webhook_spec,
)

DLQ = "nazar.notifier.alerts.dlq"


async def test_retries_5xx_and_429_honouring_retry_after(
    db: str, fresh_amqp_url: str, hook: Receiver
) -> None:
    hook.script = [Answer(503), Answer(429, {"Retry-After": "2"}), Answer(200)]
    await add_channel(db, webhook_spec("flaky", hook.url))
    notifier = await InProcessNotifier(db, fresh_amqp_url, notifier_retry_budget=30).start()
    try:
        async with Publisher(fresh_amqp_url) as pub:
            await pub.publish(make_event(channels=["flaky"]))
            await wait_until(lambda: len(hook.requests) == 3, timeout=20, what="3 attempts")
        # Retry-After: 2 was honoured although the backoff cap is 0.5 s.
        assert hook.requests[2].at - hook.requests[1].at >= 1.9
        await asyncio.sleep(0.5)
        rows = await fetch(db, "SELECT attempt, status, http_status FROM deliveries "
                               "ORDER BY id")
        assert [(r["attempt"], r["status"], r["http_status"]) for r in rows] == [
            (1, "retry", 503), (2, "retry", 429), (3, "sent", 200)]
        (n,) = await fetch(db, "SELECT status, attempts FROM notifications")
        assert (n["status"], n["attempts"]) == ("sent", 3)
    finally:
        await notifier.stop()


async def test_timeouts_are_retried(db: str, fresh_amqp_url: str, hook: Receiver) -> None:
    hook.script = [Answer(200, delay=3.0)]  # longer than the 1 s send timeout
    await add_channel(db, webhook_spec("slow", hook.url))
    notifier = await InProcessNotifier(db, fresh_amqp_url, notifier_retry_budget=30).start()
    try:
        async with Publisher(fresh_amqp_url) as pub:
            await pub.publish(make_event(channels=["slow"]))
            await wait_until(lambda: len(hook.requests) == 2, timeout=20, what="retry")
        await asyncio.sleep(0.5)
        rows = await fetch(db, "SELECT status, error FROM deliveries ORDER BY id")
        assert [r["status"] for r in rows] == ["retry", "sent"]
        assert "timeout" in rows[0]["error"].lower()
    finally:
        await notifier.stop()


async def test_dead_endpoint_goes_to_dlq_and_replay_delivers_once(
    db: str, fresh_amqp_url: str
) -> None:
    port = free_port()  # nothing listens here yet
    await add_channel(db, webhook_spec("down", f"http://127.0.0.1:{port}/hook"))
    notifier = await InProcessNotifier(db, fresh_amqp_url).start()
    receiver: Receiver | None = None
    try:
        async with Publisher(fresh_amqp_url) as pub:
            await pub.publish(make_event(channels=["down"]))

            async def failed() -> bool:
                rows = await fetch(db, "SELECT status FROM notifications")
                return bool(rows) and rows[0]["status"] == "failed"

            for _ in range(200):
                if await failed():
                    break
                await asyncio.sleep(0.1)
            assert await failed()
            rows = await fetch(db, "SELECT status, error FROM deliveries ORDER BY id")
            assert rows[-1]["status"] in ("failed", "short_circuited")
            assert all("connection failed" in (r["error"] or "") or r["status"] ==
                       "short_circuited" for r in rows)

            total = 0
            for _ in range(50):
                total, items = await peek(fresh_amqp_url, DLQ, 10)
                if total:
                    break
                await asyncio.sleep(0.1)
            assert total == 1
            assert items[0].headers["x-nazar-channel"] == "down"
            assert items[0].exchange == "nazar.alerts"
            # Peeking leaves the message in place.
            assert (await peek(fresh_amqp_url, DLQ, 10))[0] == 1

            receiver = Receiver(port=port).start()
            await asyncio.sleep(1.2)  # let the open breaker's reset pass
            assert await replay(fresh_amqp_url, DLQ, 100) == 1
            await wait_until(lambda: len(receiver.requests) == 1, timeout=15, what="replayed")
            await asyncio.sleep(1.0)
            assert len(receiver.requests) == 1
            assert (await peek(fresh_amqp_url, DLQ, 10))[0] == 0
            body = receiver.requests[0].body
            assert body["alerts"][0]["fingerprint"] == "fp-1"
    finally:
        await notifier.stop()
        if receiver is not None:
            receiver.stop()


async def test_breaker_keeps_a_dead_endpoint_from_stalling_others(
    db: str, fresh_amqp_url: str, slack: Receiver
) -> None:
    hang = Receiver()
    hang.default = Answer(200, delay=5.0)  # every request times out
    hang.start()
    try:
        await add_channel(db, webhook_spec("hanging", hang.url))
        await add_channel(db, slack_spec("healthy", slack.url))
        notifier = await InProcessNotifier(
            db, fresh_amqp_url, notifier_retry_budget=8, notifier_max_attempts=10,
            notifier_breaker_reset=5.0,
        ).start()
        try:
            async with Publisher(fresh_amqp_url) as pub:
                for i in range(12):
                    await pub.publish(make_event(fingerprint=f"fp-{i}", host=f"h{i}",
                                                 channels=["hanging", "healthy"]))
                await wait_until(lambda: len(slack.requests) == 12, timeout=10,
                                 what="healthy deliveries")
                await asyncio.sleep(2.0)
            rows = await fetch(db, "SELECT status, count(*) AS n FROM deliveries "
                                   "WHERE channel = 'hanging' GROUP BY status")
            by_status = {r["status"]: r["n"] for r in rows}
            # The breaker opened after 3 failures: most attempts never reached the endpoint.
            assert by_status.get("short_circuited", 0) > 0
            assert len(hang.requests) < 12 + 3
        finally:
            await notifier.stop()
    finally:
        hang.stop()


async def test_poison_message_is_dead_lettered(db: str, fresh_amqp_url: str) -> None:
    notifier = await InProcessNotifier(db, fresh_amqp_url).start()
    try:
        async with Publisher(fresh_amqp_url) as pub:
            await pub.publish_raw(b'{"not": "an alert"}')
        total = 0
        for _ in range(50):
            total, items = await peek(fresh_amqp_url, DLQ, 10)
            if total:
                break
            await asyncio.sleep(0.1)
        assert total == 1 and items[0].reason == "rejected"
    finally:
        await notifier.stop()

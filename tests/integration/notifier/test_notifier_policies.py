"""Silences, mute windows, flapping and restarts."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

import asyncpg
import orjson

from tests.integration.notifier.support import (
    InProcessNotifier,
    Publisher,
    Receiver,
    SubprocessNotifier,
    add_channel,
    fetch,
    make_event,
    slack_spec,
    wait_until,
    webhook_spec,
)


async def _execute(database_url: str, sql: str, *args: object) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(sql, *args)
    finally:
        await conn.close()


async def test_silenced_alerts_are_recorded_not_sent(
    db: str, fresh_amqp_url: str, slack: Receiver
) -> None:
    await add_channel(db, slack_spec("ops", slack.url))
    now = datetime.now(UTC)
    await _execute(
        db, "INSERT INTO silences (id, matchers, starts_at, ends_at, created_by, comment) "
            "VALUES ($1, $2::jsonb, $3, $4, 'alice', 'reboot')",
        uuid.uuid4(), orjson.dumps([{"name": "host", "op": "=~", "value": "web-[12]"}]).decode(),
        now - timedelta(minutes=1), now + timedelta(hours=1),
    )
    # Weekly patch night covering every day, all day long in its zone: "db-*" hosts only.
    await _execute(
        db, "INSERT INTO mute_windows (name, spec) VALUES ('patch-night', $1::jsonb)",
        orjson.dumps({"name": "patch-night", "days": ["mon", "tue", "wed", "thu", "fri", "sat",
                                                      "sun"],
                      "start": "00:00", "end": "23:59:59", "timezone": "Europe/Paris",
                      "matchers": [{"name": "host", "op": "=~", "value": "db-.*"}]}).decode(),
    )
    notifier = await InProcessNotifier(db, fresh_amqp_url).start()
    try:
        async with Publisher(fresh_amqp_url) as pub:
            for i, host in enumerate(["web-1", "web-2", "web-3", "db-1"]):
                await pub.publish(make_event(fingerprint=f"fp-{i}", host=host, channels=["ops"]))
            await wait_until(lambda: len(slack.requests) >= 1, what="unsilenced message")
            await asyncio.sleep(1.5)
        assert len(slack.requests) == 1 and "web-3" in slack.requests[0].body["text"]
        rows = await fetch(db, "SELECT d.status, d.error, n.payload::text AS payload "
                               "FROM deliveries d JOIN notifications n ON n.id = d.notification_id "
                               "WHERE d.status = 'silenced'")
        hosts = sorted(orjson.loads(r["payload"])["alerts"][0]["host"] for r in rows)
        assert hosts == ["db-1", "web-1", "web-2"]
        reasons = sorted(r["error"] for r in rows)
        assert reasons[0] == "mute-window:patch-night"
        assert all(r.startswith("silence:") for r in reasons[1:])
    finally:
        await notifier.stop()


async def test_expired_silence_lets_a_still_firing_alert_through(
    db: str, fresh_amqp_url: str, slack: Receiver
) -> None:
    await add_channel(db, slack_spec("ops", slack.url))
    silence_id = uuid.uuid4()
    now = datetime.now(UTC)
    await _execute(
        db, "INSERT INTO silences (id, matchers, starts_at, ends_at, created_by) "
            "VALUES ($1, $2::jsonb, $3, $4, 'bob')",
        silence_id, orjson.dumps([{"name": "alertname", "op": "=", "value": "cpu-high"}]).decode(),
        now - timedelta(minutes=1), now + timedelta(hours=1),
    )
    notifier = await InProcessNotifier(db, fresh_amqp_url).start()
    try:
        async with Publisher(fresh_amqp_url) as pub:
            await pub.publish(make_event(channels=["ops"]))
            await asyncio.sleep(1.5)
            assert slack.requests == []
            await _execute(db, "UPDATE silences SET ends_at = now() WHERE id = $1", silence_id)
            # Re-checked within SILENCE_RECHECK (30 s); nudge the group to avoid waiting.
            await _execute(db, "UPDATE notifier_groups SET next_flush_at = now()")
            await wait_until(lambda: len(slack.requests) == 1, what="message after expiry")
    finally:
        await notifier.stop()


async def test_flapping_alert_becomes_one_flapping_notification(
    db: str, fresh_amqp_url: str, hook: Receiver
) -> None:
    await add_channel(db, webhook_spec("ops", hook.url, group_wait=0.3, group_interval=0.3))
    notifier = await InProcessNotifier(db, fresh_amqp_url, notifier_flap_threshold=4,
                                       notifier_flap_window=60).start()
    try:
        async with Publisher(fresh_amqp_url) as pub:
            started = datetime.now(UTC)
            state = "firing"
            for i in range(12):
                previous = "resolved" if state == "firing" else "firing"
                await pub.publish(make_event(state=state, previous=previous, channels=["ops"],
                                             started_at=started,
                                             at=started + timedelta(milliseconds=100 * i)))
                state = previous
                await asyncio.sleep(0.15)
            await asyncio.sleep(1.5)
        kinds = [r.body["nazar"]["kind"] for r in hook.requests]
        assert kinds.count("flapping") == 1
        assert len(kinds) <= 4, kinds  # not one per transition (12)
        flapping = next(r.body for r in hook.requests if r.body["nazar"]["kind"] == "flapping")
        assert flapping["alerts"][0]["annotations"]["flapping"] == "true"
    finally:
        await notifier.stop()


async def _burst_and_restart(db: str, amqp_url: str, hook: Receiver, crash: bool) -> None:
    await add_channel(db, webhook_spec("ops", hook.url))
    notifier = await SubprocessNotifier(db, amqp_url).start()
    count = 40
    try:
        async with Publisher(amqp_url) as pub:
            for i in range(count):
                await pub.publish(make_event(fingerprint=f"fp-{i}", host=f"h-{i}",
                                             channels=["ops"]))
                if i == 10:
                    await wait_until(lambda: len(hook.requests) >= 3, what="first deliveries")
                    if crash:
                        notifier.kill()
                    else:
                        await notifier.terminate()
            notifier = await SubprocessNotifier(db, amqp_url).start()
            await wait_until(
                lambda: len({r.body["alerts"][0]["fingerprint"] for r in hook.requests})
                == count, timeout=30, what="every alert delivered")
            await asyncio.sleep(1.5)
    finally:
        notifier.kill()
    per_alert = Counter(r.body["alerts"][0]["fingerprint"] for r in hook.requests)
    keys_per_alert: dict[str, set[str]] = {}
    for r in hook.requests:
        keys_per_alert.setdefault(r.body["alerts"][0]["fingerprint"],
                                  set()).add(r.headers["idempotency-key"])
    assert set(per_alert) == {f"fp-{i}" for i in range(count)}
    # Never two different notifications for one alert transition.
    assert all(len(keys) == 1 for keys in keys_per_alert.values())
    if not crash:
        assert all(n == 1 for n in per_alert.values()), per_alert
    (row,) = await fetch(db, "SELECT count(*) AS n FROM notifier_events")
    assert row["n"] == count


async def test_graceful_restart_mid_burst_delivers_each_alert_once(
    db: str, fresh_amqp_url: str, hook: Receiver
) -> None:
    await _burst_and_restart(db, fresh_amqp_url, hook, crash=False)


async def test_crash_mid_burst_loses_nothing_and_never_duplicates_a_notification(
    db: str, fresh_amqp_url: str, hook: Receiver
) -> None:
    """SIGKILL: every alert arrives; a resend is possible only for a message the
    receiver accepted in the instant before the crash, and then it carries the
    same Idempotency-Key."""
    await _burst_and_restart(db, fresh_amqp_url, hook, crash=True)

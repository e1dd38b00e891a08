"""The notifier's moving parts: consume events, flush due groups, deliver.

* **consume**: an ``AlertEventV1`` is applied to the group state of every
  routed channel in one transaction together with its id; the message is
  acked only after that commit (a redelivery finds the id and changes
  nothing);
* **flush**: due groups are locked (``SKIP LOCKED``), planned by
  :func:`~nazar_notifier.grouping.plan_flush` and turned into notification
  rows in the same transaction that marks their alerts notified;
* **deliver**: due notifications are claimed with a lease, sent through the
  channel (behind the endpoint's circuit breaker), and every attempt is
  logged; transient failures retry with backoff until the attempt or time
  budget runs out, then the notification fails: its alerts become due again
  and their events go to ``nazar.notifier.alerts.dlq`` for replay.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import asyncpg
import httpx
from aio_pika.abc import AbstractIncomingMessage
from pydantic import ValidationError

from nazar_common.errors import NotFoundError, PermanentError, TransientError
from nazar_common.messaging.broker import Broker
from nazar_common.messaging.topology import (
    ALERTS_EXCHANGE,
    ALERTS_ROUTING_KEY,
    DEAD_LETTER_EXCHANGE,
    NOTIFIER_ALERTS,
)
from nazar_common.runtime.backoff import Backoff, Incident, is_transient, retry
from nazar_common.runtime.listener import PgListener
from nazar_common.runtime.tasks import Periodic
from nazar_common.runtime.worker import Runtime
from nazar_common.schemas.config import ChannelSpec
from nazar_common.schemas.wire import AlertEventV1
from nazar_notifier import metrics
from nazar_notifier.channels import build_channel
from nazar_notifier.grouping import Policy, plan_flush
from nazar_notifier.model import AlertItem, Notification
from nazar_notifier.reliability import Breakers, backoff_delay
from nazar_notifier.routing import route
from nazar_notifier.settings import NotifierSettings
from nazar_notifier.silencing import Silencer
from nazar_notifier.store import Claimed, NotifierStore, new_dead_letter_id, new_lease_owner

log = logging.getLogger(__name__)

#: AMQP header restricting an event to one channel (dead-lettered notifications).
CHANNEL_HEADER = "x-nazar-channel"
TEST_ATTEMPTS = 3

T = TypeVar("T")

#: Database errors worth retrying in place (besides connection errors).
_DB_RETRYABLE = (
    asyncpg.exceptions.DeadlockDetectedError,
    asyncpg.exceptions.SerializationError,
)


def utcnow() -> datetime:
    return datetime.now(UTC)


class ConfigCache:
    """Channels, silences and mute windows, re-read when ``nazar_config`` is
    notified (LISTEN) and at least every ``ttl`` seconds."""

    def __init__(self, store: NotifierStore, ttl: float) -> None:
        self._store = store
        self._ttl = ttl
        self._channels: dict[str, ChannelSpec] | None = None
        self._channels_at = 0.0
        self._silencer: Silencer | None = None
        self._silencer_at = 0.0

    def invalidate(self) -> None:
        self._channels = None
        self._silencer = None

    async def channels(self) -> dict[str, ChannelSpec]:
        if self._channels is None or time.monotonic() - self._channels_at > self._ttl:
            self._channels = await self._store.load_channels()
            self._channels_at = time.monotonic()
        return self._channels

    async def silencer(self, now: datetime) -> Silencer:
        if self._silencer is None or time.monotonic() - self._silencer_at > min(self._ttl, 5.0):
            self._silencer = await self._store.load_silencer(now)
            self._silencer_at = time.monotonic()
        return self._silencer


class Notifier:
    def __init__(
        self,
        settings: NotifierSettings,
        pool: asyncpg.Pool,
        broker: Broker,
        http: httpx.AsyncClient,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.settings = settings
        self.store = NotifierStore(pool)
        self.broker = broker
        self.http = http
        self.clock = clock
        self.cache = ConfigCache(self.store, settings.notifier_config_ttl)
        self.breakers = Breakers(
            settings.notifier_breaker_failures, settings.notifier_breaker_reset
        )
        self._flush: Periodic | None = None
        self._delivery_round: Periodic | None = None
        self._inflight: dict[asyncio.Task[None], Claimed] = {}
        self._sending: set[int] = set()
        self._db = Incident("notifier database", log)
        self._lease = settings.notifier_send_timeout + 10.0
        #: Key of this process's lease lock while it holds it (see :meth:`_take_lease_lock`).
        self._owner = new_lease_owner()
        self._listener: PgListener | None = None
        self._owner_held = False
        self.accepting = True

    # ------------------------------------------------------------ policy

    def policy_of(self, spec: ChannelSpec) -> Policy:
        s = self.settings
        return Policy.of(
            spec,
            send_resolved=s.notifier_send_resolved,
            cooldown=s.notifier_alert_cooldown,
            flap_window=s.notifier_flap_window,
            flap_threshold=s.notifier_flap_threshold,
        )

    # ------------------------------------------------------------ consume

    async def handle(self, message: AbstractIncomingMessage) -> None:
        """Broker handler: returns once the event is durably applied (then acked)."""
        try:
            event = AlertEventV1.from_bytes(message.body)
        except (ValueError, ValidationError) as exc:
            metrics.EVENTS.labels("invalid").inc()
            raise PermanentError(f"not an AlertEventV1: {str(exc)[:200]}") from exc
        only = (message.headers or {}).get(CHANNEL_HEADER)
        if isinstance(only, bytes):
            only = only.decode()
        recorded = await self._with_db_retry(lambda: self._record(event, only))
        metrics.EVENTS.labels("processed" if recorded else "duplicate").inc()
        if recorded:
            self._wake_flush()

    async def _record(self, event: AlertEventV1, only: Any) -> bool:
        channels = await self.cache.channels()
        routes, unknown = route(event, channels, str(only) if only else None)
        if unknown:
            metrics.UNKNOWN_CHANNELS.inc(len(unknown))
            log.warning("alert names unknown channels",
                        extra={"rule": event.rule_name, "channels": unknown})
        return await self.store.record_event(event, routes, self.policy_of, self.clock())

    async def _with_db_retry(self, op: Callable[[], Awaitable[T]], budget: float = 30.0) -> T:
        """Retry an operation through database outages and deadlocks, then give up
        as transient (the broker requeues)."""
        return await retry(
            op,
            what="notifier database",
            retryable=lambda exc: is_transient(exc) or isinstance(exc, _DB_RETRYABLE),
            backoff=Backoff(0.2, 5.0),
            budget=budget,
            incident=self._db,
        )

    def _wake_flush(self) -> None:
        if self._flush is not None:
            self._flush.wake()

    def _wake_deliver(self) -> None:
        if self._delivery_round is not None:
            self._delivery_round.wake()

    # ------------------------------------------------------------ flush

    async def flush_due(self) -> int:
        now = self.clock()
        channels = await self.cache.channels()
        silencer = await self.cache.silencer(now)
        queued = 0
        for channel, group_key in await self.store.due_groups(now):
            spec = channels.get(channel)
            if spec is None or not spec.enabled:
                await self.store.reschedule_group(channel, group_key, None)
                continue
            policy = self.policy_of(spec)

            def planner(group: Any, alerts: Any, policy: Policy = policy) -> Any:
                return plan_flush(group, alerts, policy, silencer, now,
                                  self.settings.dashboard_url)

            plan, notification_id = await self.store.flush_group(
                channel, group_key, now, planner, spec.config.type,
                now + timedelta(seconds=self.settings.notifier_retry_budget),
            )
            if plan is None:
                continue
            if plan.silenced is not None:
                metrics.NOTIFICATIONS.labels(spec.config.type, plan.silenced.kind,
                                             "silenced").inc()
            if notification_id is not None:
                queued += 1
        if queued:
            self._wake_deliver()
        return queued

    # ------------------------------------------------------------ deliver

    async def deliver_due(self) -> int:
        free = self.settings.notifier_concurrency - len(self._inflight)
        if free <= 0 or not self.accepting:
            return 0
        mine = [c.notification.id for c in self._inflight.values() if c.notification.id]
        claimed = await self.store.claim(self.clock(), free, self._lease, self.lease_owner, mine)
        for item in claimed:
            task = asyncio.create_task(self._deliver_logged(item))
            self._inflight[task] = item
            task.add_done_callback(self._delivery_done)
        return len(claimed)

    def _delivery_done(self, task: asyncio.Task[None]) -> None:
        self._inflight.pop(task, None)
        self._wake_deliver()

    async def _deliver_logged(self, item: Claimed) -> None:
        try:
            await self._deliver(item)
        except Exception:
            # The lease expires and the notification is claimed again.
            log.exception("delivery bookkeeping failed",
                          extra={"notification_id": item.notification.id})
        # Not reached when cancelled mid-send: drain() then knows it may have gone out.
        self._sending.discard(item.notification.id or 0)

    async def _deliver(self, item: Claimed) -> None:
        n = item.notification
        assert n.id is not None
        channels = await self.cache.channels()
        spec = channels.get(n.channel)
        if spec is None:
            await self._finish_failed(item, "", None, "channel no longer exists", None)
            return
        channel = build_channel(spec, self.http, timeout=self.settings.notifier_send_timeout,
                                smtp_ca_file=self.settings.notifier_smtp_ca_file)
        breaker = self.breakers.get(channel.endpoint)
        allowed, wait = breaker.allow()
        now = self.clock()
        if not allowed:
            metrics.ATTEMPTS.labels(item.channel_type, "short_circuited").inc()
            retry_at = now + timedelta(seconds=wait)
            if retry_at > item.deadline:
                await self._finish_failed(item, channel.endpoint, None,
                                          "circuit breaker open; retry budget exhausted", None,
                                          attempt_status="short_circuited")
            else:
                await self._record_outcome(lambda: self.store.record_attempt(
                    n.id, n.channel, item.channel_type, channel.endpoint, item.attempts,
                    "short_circuited", None, "circuit breaker open", None,
                    next_status="pending", next_attempt_at=retry_at, uncount=True,
                ))
            return
        started = time.perf_counter()
        self._sending.add(n.id)  # from here on the receiver may get it
        try:
            result = await asyncio.wait_for(channel.send(n),
                                            self.settings.notifier_send_timeout + 5)
        except PermanentError as exc:
            breaker.release()
            elapsed = (time.perf_counter() - started) * 1000
            metrics.ATTEMPTS.labels(item.channel_type, "failed").inc()
            await self._finish_failed(item, channel.endpoint, getattr(exc, "http_status", None),
                                      exc.detail, elapsed)
            return
        except (TransientError, TimeoutError, Exception) as exc:
            breaker.failure()
            metrics.BREAKER_OPEN.labels(channel.endpoint).set(breaker.state == "open")
            elapsed = (time.perf_counter() - started) * 1000
            detail = exc.detail if isinstance(exc, TransientError) else (
                f"unexpected error ({type(exc).__name__})")
            retry_after = exc.retry_after if isinstance(exc, TransientError) else None
            delay = backoff_delay(item.attempts, self.settings.notifier_backoff_base,
                                  self.settings.notifier_backoff_max, retry_after)
            retry_at = self.clock() + timedelta(seconds=delay)
            if item.attempts >= self.settings.notifier_max_attempts or retry_at > item.deadline:
                metrics.ATTEMPTS.labels(item.channel_type, "failed").inc()
                await self._finish_failed(item, channel.endpoint,
                                          getattr(exc, "http_status", None), detail, elapsed)
                return
            metrics.ATTEMPTS.labels(item.channel_type, "retry").inc()
            log.info("delivery failed; will retry", extra={
                "notification_id": n.id, "channel": n.channel, "attempt": item.attempts,
                "error": detail, "retry_in": round(delay, 3)})
            http_status = getattr(exc, "http_status", None)
            await self._record_outcome(lambda: self.store.record_attempt(
                n.id, n.channel, item.channel_type, channel.endpoint, item.attempts, "retry",
                http_status, detail, elapsed,
                next_status="pending", next_attempt_at=retry_at,
            ))
            return
        breaker.success()
        metrics.BREAKER_OPEN.labels(channel.endpoint).set(0)
        elapsed = (time.perf_counter() - started) * 1000
        metrics.ATTEMPTS.labels(item.channel_type, "sent").inc()
        metrics.DELIVERY_SECONDS.labels(item.channel_type).observe(elapsed / 1000)
        await self._record_outcome(lambda: self.store.record_attempt(
            n.id, n.channel, item.channel_type, result.endpoint, item.attempts, "sent",
            result.http_status, None, elapsed, next_status="sent",
        ))
        metrics.NOTIFICATIONS.labels(item.channel_type, n.kind, "sent").inc()
        if n.alerts and n.kind != "test":
            newest = max(a.ended_at or a.started_at for a in n.alerts)
            metrics.EVENT_TO_SEND_SECONDS.labels(item.channel_type).observe(
                max(0.0, (self.clock() - newest).total_seconds()))
        log.info("notification sent", extra={
            "notification_id": n.id, "channel": n.channel, "kind": n.kind,
            "alerts": len(n.alerts), "attempt": item.attempts})

    async def _finish_failed(
        self,
        item: Claimed,
        endpoint: str,
        http_status: int | None,
        error: str,
        elapsed: float | None,
        attempt_status: str = "failed",
    ) -> None:
        n = item.notification
        assert n.id is not None
        await self._record_outcome(lambda: self.store.record_attempt(
            n.id, n.channel, item.channel_type, endpoint, item.attempts, attempt_status,
            http_status, error, elapsed, next_status="failed",
        ))
        metrics.NOTIFICATIONS.labels(item.channel_type, n.kind, "failed").inc()
        log.error("notification failed", extra={
            "notification_id": n.id, "channel": n.channel, "attempts": item.attempts,
            "error": error})
        if n.kind != "test":
            await self._dead_letter(n, error)

    async def _dead_letter(self, n: Notification, error: str) -> None:
        """Make the failed alerts due again and park their events in the DLQ, where
        ``nazar dlq replay`` sends them back (to this channel only)."""
        assert n.id is not None
        events = await self.store.revert_failed(n.id, n.channel)
        for raw in events:
            raw["id"] = str(new_dead_letter_id(n.id, raw.get("fingerprint", "")))
            event = AlertEventV1.model_validate(raw)
            try:
                await self.broker.publish(
                    DEAD_LETTER_EXCHANGE,
                    NOTIFIER_ALERTS.name,
                    event.to_bytes(),
                    message_id=str(event.id),
                    headers={
                        CHANNEL_HEADER: n.channel,
                        "x-nazar-failed-notification": n.id,
                        "x-nazar-error": error[:500],
                        "x-nazar-original-exchange": ALERTS_EXCHANGE,
                        "x-nazar-original-routing-key": ALERTS_ROUTING_KEY,
                    },
                )
                metrics.DEAD_LETTERED.labels("delivery_failed").inc()
            except TransientError as exc:
                log.error("could not dead-letter a failed notification; it stays visible as "
                          "failed", extra={"notification_id": n.id, "error": exc.detail})

    # ------------------------------------------------------------ test notifications

    async def send_test(self, name: str) -> dict[str, Any]:
        """Send a test notification to channel ``name`` now (a few quick attempts)."""
        self.cache.invalidate()
        spec = (await self.cache.channels()).get(name)
        if spec is None:
            raise NotFoundError(f"no channel named {name!r}")
        now = self.clock()
        item = AlertItem(
            fingerprint="test", status="firing", alert_id=0, rule="nazar-test", host="nazar",
            severity="info", metric="nazar.test", labels={"alertname": "nazar-test"},
            annotations={"summary": "This is a test notification from Nazar."},
            value=1.0, expected_low=0.0, expected_high=0.5, score=None,
            explanation="Sent on request to check that the channel works.", contributors=[],
            started_at=now, ended_at=None,
        )
        n = Notification(
            channel=name, kind="test", group_key=f"{name}:test", group_labels={},
            alerts=[item], dedupe_key=f"test-{uuid.uuid4()}",
            dashboard_url=self.settings.dashboard_url,
        )
        channel = build_channel(spec, self.http, timeout=self.settings.notifier_send_timeout,
                                smtp_ca_file=self.settings.notifier_smtp_ca_file)
        n.id = await self.store.insert_test_notification(
            n, spec.config.type, now + timedelta(seconds=60), self._lease)
        attempt = 0
        while True:
            attempt += 1
            started = time.perf_counter()
            status, http_status, error, retry_after = "sent", None, None, None
            try:
                result = await asyncio.wait_for(channel.send(n),
                                                self.settings.notifier_send_timeout + 5)
                http_status = result.http_status
            except PermanentError as exc:
                status, error = "failed", exc.detail
                http_status = getattr(exc, "http_status", None)
            except (TransientError, TimeoutError, Exception) as exc:
                status = "retry"
                error = exc.detail if isinstance(exc, TransientError) else type(exc).__name__
                http_status = getattr(exc, "http_status", None)
                retry_after = exc.retry_after if isinstance(exc, TransientError) else None
            elapsed = (time.perf_counter() - started) * 1000
            if status == "retry" and (attempt >= TEST_ATTEMPTS or (retry_after or 0) > 5):
                status = "failed"
            final = {"sent": "sent", "failed": "failed"}.get(status, "sending")
            await self.store.record_attempt(
                n.id, name, spec.config.type, channel.endpoint, attempt, status, http_status,
                error, elapsed, next_status=final,
            )
            if status != "retry":
                break
            await asyncio.sleep(backoff_delay(attempt, 0.25, 2.0, retry_after))
        metrics.NOTIFICATIONS.labels(spec.config.type, "test", status).inc()
        return {
            "channel": name,
            "notification_id": n.id,
            "status": status,
            "attempts": attempt,
            "http_status": http_status,
            "error": error,
            "endpoint": channel.endpoint,
        }

    # ------------------------------------------------------------ leases

    @property
    def lease_owner(self) -> int | None:
        """The key claims are tagged with: only while this process holds its lease
        lock (otherwise a claim lasts until its time lease runs out)."""
        held = self._owner_held and self._listener is not None and self._listener.connected
        return self._owner if held else None

    async def _take_lease_lock(self, conn: asyncpg.Connection) -> None:
        """On the config listener's connection (kept for the process's life):
        a session-level advisory lock. A SIGKILLed process's session ends with
        it, and its claims can be taken over at once."""
        self._owner_held = False
        self._owner = await self.store.hold_lease_lock(conn, self._owner)
        self._owner_held = True

    async def _record_outcome(self, record: Callable[[], Awaitable[None]]) -> None:
        """Record a delivery's outcome through a database outage (bounded): a
        delivery that went out but was not recorded would be sent again."""
        await self._with_db_retry(record, budget=self._lease)

    # ------------------------------------------------------------ lifecycle

    async def _housekeeping(self) -> None:
        metrics.OUTSTANDING.set(await self.store.outstanding())
        await self.store.purge(timedelta(days=self.settings.notifier_event_retention_days))

    def start(self, runtime: Runtime) -> None:
        """Register the notifier's work with the runtime: the consumer, the
        flush and delivery rounds, housekeeping and the config listener."""
        poll = self.settings.notifier_poll_interval
        self._flush = runtime.every("flush", poll, self.flush_due, run_first=True)
        self._delivery_round = runtime.every("deliver", poll, self.deliver_due, run_first=True)
        runtime.every("housekeeping", 60.0, self._housekeeping, run_first=True)
        self._listener = runtime.listen(self.cache.invalidate, on_connect=self._take_lease_lock)
        runtime.consume(NOTIFIER_ALERTS, self.handle, prefetch=self.settings.notifier_prefetch)

    def stopping(self) -> None:
        """Claim nothing more; deliveries in flight go on."""
        self.accepting = False

    async def drain(self) -> None:
        """Let every delivery in flight finish and record its outcome (each is
        bounded by the send timeout), so nothing is sent twice. Deliveries that
        still have not ended by then are cancelled; those whose request had not
        been sent yet are handed back for another replica at once."""
        if not self._inflight:
            return
        grace = self.settings.notifier_send_timeout + 10.0
        await asyncio.wait(list(self._inflight), timeout=grace)
        left = dict(self._inflight)
        for task in left:
            task.cancel()
        await asyncio.gather(*left, return_exceptions=True)
        unsent = [item.notification.id for item in left.values()
                  if item.notification.id is not None
                  and item.notification.id not in self._sending]
        if unsent:
            await self.store.release(unsent)
        if len(unsent) < len(left):
            log.warning("deliveries cut short by the stop; they are sent again after their "
                        "lease", extra={"notifications": len(left) - len(unsent)})

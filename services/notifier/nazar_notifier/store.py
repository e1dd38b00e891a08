"""All SQL of the notifier (asyncpg). Pure decisions live in grouping.py."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import orjson

from nazar_common.schemas.config import ChannelSpec
from nazar_common.schemas.silences import Matcher, MuteWindowSpec, Silence
from nazar_common.schemas.wire import AlertEventV1
from nazar_notifier.grouping import (
    AlertRecord,
    FlushPlan,
    GroupRecord,
    Policy,
    note_transition,
    schedule_on_event,
)
from nazar_notifier.model import Notification
from nazar_notifier.routing import Route
from nazar_notifier.silencing import Silencer


def _json(value: Any) -> str:
    return orjson.dumps(value, default=str).decode()


@dataclass
class Claimed:
    """A notification claimed for one delivery attempt."""

    notification: Notification
    channel_type: str
    attempts: int
    deadline: datetime
    status: str


class NotifierStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    # ------------------------------------------------------------ configuration

    async def load_channels(self) -> dict[str, ChannelSpec]:
        rows = await self.pool.fetch("SELECT name, spec::text AS spec FROM channels")
        out = {}
        for row in rows:
            out[row["name"]] = ChannelSpec.model_validate(orjson.loads(row["spec"]))
        return out

    async def load_silencer(self, now: datetime) -> Silencer:
        silences = [
            Silence(
                id=str(r["id"]),
                matchers=[Matcher.model_validate(m) for m in orjson.loads(r["matchers"])],
                starts_at=r["starts_at"],
                ends_at=r["ends_at"],
                created_by=r["created_by"],
                comment=r["comment"],
            )
            for r in await self.pool.fetch(
                "SELECT id, matchers::text AS matchers, starts_at, ends_at, created_by, comment "
                "FROM silences WHERE ends_at > $1",
                now,
            )
        ]
        windows = [
            MuteWindowSpec.model_validate(orjson.loads(r["spec"]))
            for r in await self.pool.fetch("SELECT spec::text AS spec FROM mute_windows")
        ]
        return Silencer(silences, windows)

    # ------------------------------------------------------------ events

    async def record_event(
        self,
        event: AlertEventV1,
        routes: list[Route],
        policy_of: Callable[[ChannelSpec], Policy],
        now: datetime,
    ) -> bool:
        """Apply one event to every routed group, atomically with its id.

        Returns False (and changes nothing) when the event id was seen before."""
        async with self.pool.acquire() as conn, conn.transaction():
            inserted = await conn.fetchval(
                "INSERT INTO notifier_events (event_id, alert_id, fingerprint, rule_name, state, "
                "channels) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (event_id) DO NOTHING "
                "RETURNING true",
                event.id,
                event.alert_id,
                event.fingerprint,
                event.rule_name,
                event.state,
                [r.channel.name for r in routes],
            )
            if not inserted:
                return False
            snapshot = event.model_dump_json(by_alias=True)
            for route in routes:
                name = route.channel.name
                policy = policy_of(route.channel)
                # Lock order everywhere: group row, then alert rows (no deadlocks with flushes).
                await conn.execute(
                    "INSERT INTO notifier_groups (channel, group_key, group_labels) "
                    "VALUES ($1, $2, $3::jsonb) ON CONFLICT (channel, group_key) DO NOTHING",
                    name,
                    route.group_key,
                    _json(route.group_labels),
                )
                group = await conn.fetchrow(
                    "SELECT last_sent_at, next_flush_at FROM notifier_groups "
                    "WHERE channel = $1 AND group_key = $2 FOR UPDATE",
                    name,
                    route.group_key,
                )
                row = await conn.fetchrow(
                    "SELECT state, event_at, transitions, flapping FROM notifier_alerts "
                    "WHERE channel = $1 AND fingerprint = $2 FOR UPDATE",
                    name,
                    event.fingerprint,
                )
                if row is None:
                    transitions, flapping = note_transition([], False, None, event.state,
                                                            event.at, policy)
                    await conn.execute(
                        "INSERT INTO notifier_alerts (channel, fingerprint, group_key, event, "
                        "state, event_at, transitions, flapping) "
                        "VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7, $8)",
                        name, event.fingerprint, route.group_key, snapshot, event.state,
                        event.at, transitions, flapping,
                    )
                elif event.at >= row["event_at"]:
                    transitions, flapping = note_transition(
                        list(row["transitions"]), row["flapping"], row["state"], event.state,
                        event.at, policy,
                    )
                    await conn.execute(
                        "UPDATE notifier_alerts SET group_key = $3, event = $4::jsonb, "
                        "state = $5, event_at = $6, transitions = $7, flapping = $8, "
                        "updated_at = now() WHERE channel = $1 AND fingerprint = $2",
                        name, event.fingerprint, route.group_key, snapshot, event.state,
                        event.at, transitions, flapping,
                    )
                # else: an older event than the one held; the group is still re-evaluated.
                record = GroupRecord(name, route.group_key, route.group_labels,
                                     group["last_sent_at"], group["next_flush_at"])
                await conn.execute(
                    "UPDATE notifier_groups SET next_flush_at = $3 "
                    "WHERE channel = $1 AND group_key = $2",
                    name,
                    route.group_key,
                    schedule_on_event(record, policy, now),
                )
            return True

    # ------------------------------------------------------------ groups

    async def due_groups(self, now: datetime, limit: int = 100) -> list[tuple[str, str]]:
        rows = await self.pool.fetch(
            "SELECT channel, group_key FROM notifier_groups WHERE next_flush_at <= $1 "
            "ORDER BY next_flush_at LIMIT $2",
            now,
            limit,
        )
        return [(r["channel"], r["group_key"]) for r in rows]

    async def next_due(self) -> datetime | None:
        value: datetime | None = await self.pool.fetchval(
            "SELECT min(t) FROM (SELECT min(next_flush_at) AS t FROM notifier_groups "
            "UNION ALL SELECT min(next_attempt_at) FROM notifications "
            "WHERE status IN ('pending', 'sending')) AS due"
        )
        return value

    async def flush_group(
        self,
        channel: str,
        group_key: str,
        now: datetime,
        planner: Callable[[GroupRecord, list[AlertRecord]], FlushPlan],
        channel_type: str,
        deadline: datetime,
    ) -> tuple[FlushPlan | None, int | None]:
        """Lock a due group, plan it and apply the plan in one transaction.

        Returns the plan and the id of the notification queued (if any)."""
        async with self.pool.acquire() as conn, conn.transaction():
            group = await conn.fetchrow(
                "SELECT group_labels::text AS labels, last_sent_at, next_flush_at "
                "FROM notifier_groups WHERE channel = $1 AND group_key = $2 "
                "AND next_flush_at <= $3 FOR UPDATE SKIP LOCKED",
                channel,
                group_key,
                now,
            )
            if group is None:
                return None, None
            record = GroupRecord(channel, group_key, orjson.loads(group["labels"]),
                                 group["last_sent_at"], group["next_flush_at"])
            rows = await conn.fetch(
                "SELECT fingerprint, event::text AS event, state, transitions, flapping, "
                "notified_state, notified_at, silenced_state FROM notifier_alerts "
                "WHERE channel = $1 AND group_key = $2 ORDER BY fingerprint FOR UPDATE",
                channel,
                group_key,
            )
            alerts = [
                AlertRecord(
                    fingerprint=r["fingerprint"],
                    event=AlertEventV1.model_validate_json(r["event"]),
                    state=r["state"],
                    transitions=list(r["transitions"]),
                    flapping=r["flapping"],
                    notified_state=r["notified_state"],
                    notified_at=r["notified_at"],
                    silenced_state=r["silenced_state"],
                )
                for r in rows
            ]
            plan = planner(record, alerts)
            notification_id = None
            if plan.notification is not None:
                notification_id = await self._insert_notification(
                    conn, plan.notification, channel_type, "pending", plan.prior_states, deadline
                )
                plan.notification.id = notification_id
            if plan.silenced is not None:
                silenced_id = await self._insert_notification(
                    conn, plan.silenced, channel_type, "silenced", {}, now
                )
                if silenced_id is not None:
                    await conn.execute(
                        "INSERT INTO deliveries (notification_id, channel, channel_type, "
                        "attempt, status, error) VALUES ($1, $2, $3, 0, 'silenced', $4)",
                        silenced_id,
                        channel,
                        channel_type,
                        ", ".join(plan.silenced.extra.get("silenced_by", [])),
                    )
            for fingerprint, update in plan.updates.items():
                if fingerprint in plan.deletes:
                    continue
                await conn.execute(
                    "UPDATE notifier_alerts SET notified_state = $3, notified_at = $4, "
                    "silenced_state = $5, flapping = $6, "
                    "notified_by = CASE WHEN $7 THEN $8 ELSE notified_by END "
                    "WHERE channel = $1 AND fingerprint = $2",
                    channel, fingerprint, update.notified_state, update.notified_at,
                    update.silenced_state, update.flapping, update.notified, notification_id,
                )
            if plan.deletes:
                await conn.execute(
                    "DELETE FROM notifier_alerts WHERE channel = $1 AND fingerprint = ANY($2)",
                    channel,
                    plan.deletes,
                )
            if plan.delete_group:
                await conn.execute(
                    "DELETE FROM notifier_groups WHERE channel = $1 AND group_key = $2",
                    channel,
                    group_key,
                )
            else:
                await conn.execute(
                    "UPDATE notifier_groups SET next_flush_at = $3, last_flush_at = $4, "
                    "last_sent_at = coalesce($5, last_sent_at) "
                    "WHERE channel = $1 AND group_key = $2",
                    channel, group_key, plan.next_flush_at, now, plan.last_sent_at,
                )
            return plan, notification_id

    async def reschedule_group(
        self, channel: str, group_key: str, when: datetime | None
    ) -> None:
        await self.pool.execute(
            "UPDATE notifier_groups SET next_flush_at = $3 WHERE channel = $1 AND group_key = $2",
            channel,
            group_key,
            when,
        )

    # ------------------------------------------------------------ notifications

    async def _insert_notification(
        self,
        conn: asyncpg.Connection,
        n: Notification,
        channel_type: str,
        status: str,
        prior_states: dict[str, Any],
        deadline: datetime,
    ) -> int | None:
        kind = n.kind
        value: int | None = await conn.fetchval(
            "INSERT INTO notifications (dedupe_key, channel, channel_type, group_key, kind, "
            "status, payload, prior_states, deadline, finished_at) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8::jsonb, $9, "
            "CASE WHEN $6 = 'silenced' THEN now() END) "
            "ON CONFLICT (dedupe_key) DO NOTHING RETURNING id",
            n.dedupe_key, n.channel, channel_type, n.group_key, kind, status,
            _json(n.to_json()), _json(prior_states), deadline,
        )
        return value

    async def insert_test_notification(
        self, n: Notification, channel_type: str, deadline: datetime, lease: float
    ) -> int:
        async with self.pool.acquire() as conn:
            value = await conn.fetchval(
                "INSERT INTO notifications (dedupe_key, channel, channel_type, group_key, kind, "
                "status, payload, deadline, attempts, lease_until) "
                "VALUES ($1, $2, $3, $4, 'test', 'sending', $5::jsonb, $6, 1, "
                "now() + make_interval(secs => $7)) RETURNING id",
                n.dedupe_key, n.channel, channel_type, n.group_key, _json(n.to_json()),
                deadline, lease,
            )
        assert value is not None
        return int(value)

    async def hold_lease_lock(self, conn: asyncpg.Connection, owner: int) -> int:
        """Take this process's lease lock on ``conn`` (a connection kept for the
        process's life): ``owner`` if free, else a fresh key. Returns the key held."""
        while not await conn.fetchval(
            "SELECT pg_try_advisory_lock($1, $2)", LEASE_LOCK_CLASS, owner
        ):
            owner = new_lease_owner()
        return owner

    async def claim(
        self,
        now: datetime,
        limit: int,
        lease: float,
        owner: int | None = None,
        in_flight: list[int] | None = None,
    ) -> list[Claimed]:
        """Claim due notifications for one attempt each (``FOR UPDATE SKIP LOCKED``:
        replicas never take the same one). A claim is held until ``lease`` runs
        out or, sooner, until its owner's lease lock is gone (the process died;
        not when the server restarted since, which ends every lock). Never one
        of ``in_flight`` (this process's own deliveries)."""
        rows = await self.pool.fetch(
            "WITH live AS (SELECT objid FROM pg_locks WHERE locktype = 'advisory' "
            "AND classid = $5::oid AND objsubid = 2 AND granted AND database = "
            "(SELECT oid FROM pg_database WHERE datname = current_database())) "
            "UPDATE notifications n SET status = 'sending', attempts = n.attempts + 1, "
            "lease_until = $1 + make_interval(secs => $3), lease_owner = $4, "
            "claimed_at = now() "
            "FROM (SELECT id FROM notifications WHERE next_attempt_at <= $1 AND "
            "id <> ALL($6::bigint[]) AND "
            "(status = 'pending' OR (status = 'sending' AND (lease_until < $1 OR "
            "(lease_owner IS NOT NULL AND claimed_at > pg_postmaster_start_time() "
            "AND lease_owner::oid NOT IN (SELECT objid FROM live))))) "
            "ORDER BY next_attempt_at LIMIT $2 FOR UPDATE SKIP LOCKED) due "
            "WHERE n.id = due.id RETURNING n.id, n.dedupe_key, n.channel_type, n.payload::text "
            "AS payload, n.attempts, n.deadline, n.created_at, n.status",
            now,
            limit,
            lease,
            owner,
            LEASE_LOCK_CLASS,
            in_flight or [],
        )
        return [
            Claimed(
                notification=Notification.from_json(
                    orjson.loads(r["payload"]), id=r["id"], dedupe_key=r["dedupe_key"],
                    created_at=r["created_at"],
                ),
                channel_type=r["channel_type"],
                attempts=r["attempts"],
                deadline=r["deadline"],
                status=r["status"],
            )
            for r in rows
        ]

    async def release(self, notification_ids: list[int]) -> None:
        """Hand claimed notifications back, unsent (this attempt does not count)."""
        await self.pool.execute(
            "UPDATE notifications SET status = 'pending', lease_until = NULL, lease_owner = NULL, "
            "attempts = attempts - 1 WHERE id = ANY($1::bigint[]) AND status = 'sending'",
            notification_ids,
        )

    async def record_attempt(
        self,
        notification_id: int,
        channel: str,
        channel_type: str,
        endpoint: str,
        attempt: int,
        status: str,
        http_status: int | None,
        error: str | None,
        duration_ms: float | None,
        *,
        next_status: str,
        next_attempt_at: datetime | None = None,
        uncount: bool = False,
    ) -> None:
        """Log one attempt and move the notification on, in one transaction."""
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO deliveries (notification_id, channel, channel_type, endpoint, "
                "attempt, status, http_status, error, duration_ms) "
                "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                notification_id, channel, channel_type, endpoint, attempt, status, http_status,
                error, duration_ms,
            )
            await conn.execute(
                "UPDATE notifications SET status = $2, lease_until = NULL, lease_owner = NULL, "
                "next_attempt_at = coalesce($3, next_attempt_at), last_error = $4, "
                "attempts = attempts - CASE WHEN $5 THEN 1 ELSE 0 END, "
                "sent_at = CASE WHEN $2 = 'sent' THEN now() ELSE sent_at END, "
                "finished_at = CASE WHEN $2 IN ('sent', 'failed') THEN now() END "
                "WHERE id = $1",
                notification_id, next_status, next_attempt_at, error, uncount,
            )

    async def revert_failed(self, notification_id: int, channel: str) -> list[dict[str, Any]]:
        """Make the alerts of a failed notification due again (unless a later notification
        covered them) and return their latest events, for the dead-letter queue."""
        async with self.pool.acquire() as conn, conn.transaction():
            prior = await conn.fetchval(
                "SELECT prior_states::text FROM notifications WHERE id = $1", notification_id
            )
            states: dict[str, list[str | None]] = orjson.loads(prior or "{}")
            events = []
            for fingerprint, (state, at) in states.items():
                row = await conn.fetchrow(
                    "UPDATE notifier_alerts SET notified_state = $3, "
                    "notified_at = $4::timestamptz, notified_by = NULL "
                    "WHERE channel = $1 AND fingerprint = $2 AND notified_by = $5 "
                    "RETURNING event::text AS event",
                    channel, fingerprint, state, datetime.fromisoformat(at) if at else None,
                    notification_id,
                )
                if row is not None:
                    events.append(orjson.loads(row["event"]))
            return events

    async def outstanding(self) -> int:
        value = await self.pool.fetchval(
            "SELECT count(*) FROM notifications WHERE status IN ('pending', 'sending')"
        )
        return int(value or 0)

    async def purge(self, older_than: timedelta) -> None:
        await self.pool.execute(
            "DELETE FROM notifier_events WHERE received_at < now() - $1::interval", older_than
        )
        await self.pool.execute(
            "DELETE FROM notifications WHERE finished_at < now() - $1::interval", older_than
        )


#: ``pg_advisory_lock(LEASE_LOCK_CLASS, owner)``: held by each notifier process.
LEASE_LOCK_CLASS = 0x4E5A  # "NZ"


def new_lease_owner() -> int:
    return secrets.randbelow(2**31 - 1) + 1


def new_dead_letter_id(notification_id: int, fingerprint: str) -> uuid.UUID:
    return uuid.uuid5(uuid.NAMESPACE_URL, f"nazar:dead-letter:{notification_id}:{fingerprint}")

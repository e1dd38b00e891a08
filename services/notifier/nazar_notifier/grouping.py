"""Grouping, throttling, flapping and silencing decisions (pure).

An alert event updates the alert's row in each routed channel's group and
schedules the group; :func:`plan_flush` then decides, when the group is due,
what (if anything) to send:

* a new group waits ``group_wait``; a group that already notified waits until
  ``group_interval`` after its last message;
* an alert is *due* when its effective state differs from what was last
  notified (``firing``/``nodata``/``flapping`` are active; ``resolved`` is due
  only if ``firing`` was announced, and only with ``send_resolved``);
* nothing changed but alerts still active → the whole group again after
  ``repeat_interval``;
* an alert that changes state ``flap_threshold`` times within ``flap_window``
  becomes ``flapping``: one notification, then silence about it until it has
  been stable for a whole window, then its current state;
* a due alert matched by a silence or mute window is left out and recorded
  once as silenced; it is re-evaluated while active, so it is announced if
  still firing when the silence ends;
* ``cooldown``: at most one notification per alert per cooldown.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from nazar_common.schemas.config import ChannelSpec
from nazar_common.schemas.wire import AlertEventV1
from nazar_notifier.model import (
    ACTIVE_STATES,
    AlertItem,
    ItemStatus,
    Kind,
    Notification,
    notification_labels,
)
from nazar_notifier.silencing import Silencer

#: How often a silenced but active alert is re-checked.
SILENCE_RECHECK = timedelta(seconds=30)


@dataclass(frozen=True)
class Policy:
    group_wait: float
    group_interval: float
    repeat_interval: float
    send_resolved: bool = True
    cooldown: float = 0.0
    flap_window: float = 600.0
    flap_threshold: int = 6

    @classmethod
    def of(cls, spec: ChannelSpec, **service_wide: object) -> Policy:
        return cls(
            group_wait=spec.group_wait,
            group_interval=spec.group_interval,
            repeat_interval=spec.repeat_interval,
            **service_wide,  # type: ignore[arg-type]
        )


@dataclass
class AlertRecord:
    fingerprint: str
    event: AlertEventV1
    state: str
    transitions: list[datetime] = field(default_factory=list)
    flapping: bool = False
    notified_state: str | None = None
    notified_at: datetime | None = None
    silenced_state: str | None = None


@dataclass
class GroupRecord:
    channel: str
    group_key: str
    group_labels: dict[str, str]
    last_sent_at: datetime | None = None
    next_flush_at: datetime | None = None


@dataclass
class AlertUpdate:
    notified_state: str | None
    notified_at: datetime | None
    silenced_state: str | None
    flapping: bool
    notified: bool = False


@dataclass
class FlushPlan:
    notification: Notification | None = None
    prior_states: dict[str, list[str | None]] = field(default_factory=dict)
    silenced: Notification | None = None
    updates: dict[str, AlertUpdate] = field(default_factory=dict)
    deletes: list[str] = field(default_factory=list)
    next_flush_at: datetime | None = None
    last_sent_at: datetime | None = None
    delete_group: bool = False


def note_transition(
    transitions: list[datetime],
    flapping: bool,
    old_state: str | None,
    new_state: str,
    at: datetime,
    policy: Policy,
) -> tuple[list[datetime], bool]:
    """Record a state change for flap detection; returns (transitions, flapping)."""
    horizon = at - timedelta(seconds=policy.flap_window)
    kept = [t for t in transitions if t >= horizon]
    counted = new_state in ("firing", "resolved", "nodata", "normal")
    if old_state is not None and old_state != new_state and counted:
        kept.append(at)
    return kept, flapping or len(kept) >= policy.flap_threshold


def schedule_on_event(group: GroupRecord | None, policy: Policy, now: datetime) -> datetime:
    """When a group that just received an event should be flushed."""
    if group is None or group.last_sent_at is None:
        candidate = now + timedelta(seconds=policy.group_wait)
    else:
        candidate = max(now, group.last_sent_at + timedelta(seconds=policy.group_interval))
    if group is not None and group.next_flush_at is not None:
        return min(group.next_flush_at, candidate)
    return candidate


def dedupe_key(channel: str, group_key: str, kind: str, parts: list[str]) -> str:
    digest = hashlib.sha256("\n".join([channel, group_key, kind, *sorted(parts)]).encode())
    return digest.hexdigest()


def plan_flush(
    group: GroupRecord,
    alerts: list[AlertRecord],
    policy: Policy,
    silencer: Silencer,
    now: datetime,
    dashboard_url: str = "",
) -> FlushPlan:
    plan = FlushPlan()
    window = timedelta(seconds=policy.flap_window)
    wake: list[datetime] = []
    due: list[tuple[AlertRecord, ItemStatus]] = []
    context: list[tuple[AlertRecord, ItemStatus]] = []
    silenced: list[tuple[AlertRecord, ItemStatus, str]] = []

    for rec in alerts:
        update = AlertUpdate(rec.notified_state, rec.notified_at, rec.silenced_state, rec.flapping)
        plan.updates[rec.fingerprint] = update
        last_change = max(rec.transitions) if rec.transitions else rec.event.at
        if update.flapping:
            if now - last_change >= window:
                update.flapping = False
            else:
                wake.append(last_change + window)
        effective = "flapping" if update.flapping else rec.state
        notified = rec.notified_state
        labels = notification_labels(rec.event)

        if effective == "pending":
            continue
        if effective in ACTIVE_STATES:
            if effective == notified:
                if silencer.silenced_by(labels, now) is None:
                    context.append((rec, effective))  # type: ignore[arg-type]
                continue
            status: ItemStatus = effective  # type: ignore[assignment]
        else:
            if notified not in ACTIVE_STATES or not policy.send_resolved:
                update.notified_state = "resolved" if notified in ACTIVE_STATES else notified
                if now - last_change >= window:
                    plan.deletes.append(rec.fingerprint)
                else:
                    wake.append(last_change + window)
                continue
            status = "resolved"

        reason = silencer.silenced_by(labels, now)
        if reason is not None:
            if rec.silenced_state != status:
                silenced.append((rec, status, reason))
                update.silenced_state = status
            if status == "resolved":
                update.notified_state = "resolved"
                wake.append(last_change + window)
            else:
                wake.append(now + SILENCE_RECHECK)
            continue
        if (
            policy.cooldown > 0
            and rec.notified_at is not None
            and now < rec.notified_at + timedelta(seconds=policy.cooldown)
        ):
            wake.append(rec.notified_at + timedelta(seconds=policy.cooldown))
            continue
        due.append((rec, status))

    kind: Kind | None = None
    items: list[tuple[AlertRecord, ItemStatus]] = []
    if due:
        statuses = {s for _, s in due}
        if "flapping" in statuses:
            kind = "flapping"
        elif statuses & ACTIVE_STATES:
            kind = "firing"
        else:
            kind = "resolved"
        items = due + context
    elif (
        context
        and policy.repeat_interval > 0
        and group.last_sent_at is not None
        and now >= group.last_sent_at + timedelta(seconds=policy.repeat_interval)
    ):
        kind = "repeat"
        items = context

    if kind is not None:
        parts = [f"{r.fingerprint}:{s}:{r.event.id}" for r, s in (due or items)]
        if kind == "repeat":
            parts.append(f"repeat:{now.timestamp():.3f}")
        plan.notification = Notification(
            channel=group.channel,
            kind=kind,
            group_key=group.group_key,
            group_labels=group.group_labels,
            alerts=[AlertItem.from_event(r.event, s) for r, s in items],
            dedupe_key=dedupe_key(group.channel, group.group_key, kind, parts),
            dashboard_url=dashboard_url,
        )
        for rec, status in due:
            plan.prior_states[rec.fingerprint] = [
                rec.notified_state,
                rec.notified_at.isoformat() if rec.notified_at else None,
            ]
            update = plan.updates[rec.fingerprint]
            update.notified_state = status
            update.notified_at = now
            update.silenced_state = None
            update.notified = True
            if status == "resolved":
                wake.append(now + window)
        plan.last_sent_at = now

    if silenced:
        parts = [f"{r.fingerprint}:{s}:{r.event.id}" for r, s, _ in silenced]
        plan.silenced = Notification(
            channel=group.channel,
            kind="resolved" if all(s == "resolved" for _, s, _ in silenced) else "firing",
            group_key=group.group_key,
            group_labels=group.group_labels,
            alerts=[AlertItem.from_event(r.event, s) for r, s, _ in silenced],
            dedupe_key=dedupe_key(group.channel, group.group_key, "silenced", parts),
            dashboard_url=dashboard_url,
            extra={"silenced_by": sorted({reason for _, _, reason in silenced})},
        )

    last_sent = plan.last_sent_at or group.last_sent_at
    still_active = any(
        u.notified_state in ACTIVE_STATES
        for fp, u in plan.updates.items()
        if fp not in plan.deletes
    )
    if still_active and policy.repeat_interval > 0 and last_sent is not None:
        wake.append(last_sent + timedelta(seconds=policy.repeat_interval))
    plan.next_flush_at = min(wake) if wake else None
    plan.delete_group = len(plan.deletes) == len(alerts)
    return plan

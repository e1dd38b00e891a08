"""Pure logic of the notifier: grouping decisions, routing, silences, retries,
the breaker and the message formats."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from nazar_common.schemas.config import ChannelSpec
from nazar_common.schemas.silences import Matcher, MuteWindowSpec, Silence, SilenceSpec
from nazar_common.schemas.wire import AlertEventV1, ExpectedBand
from nazar_notifier.channels import slack, webhook
from nazar_notifier.channels.base import parse_retry_after
from nazar_notifier.grouping import (
    AlertRecord,
    GroupRecord,
    Policy,
    note_transition,
    plan_flush,
    schedule_on_event,
)
from nazar_notifier.model import AlertItem, Notification
from nazar_notifier.reliability import CircuitBreaker, backoff_delay
from nazar_notifier.routing import route
from nazar_notifier.silencing import Silencer

T0 = datetime(2026, 3, 3, 12, 0, tzinfo=UTC)  # a Tuesday
POLICY = Policy(group_wait=10, group_interval=300, repeat_interval=3600, flap_window=600,
                flap_threshold=4)


def event(state: str = "firing", fp: str = "a", host: str = "web-1", at: datetime = T0,
          **kw: object) -> AlertEventV1:
    return AlertEventV1(alert_id=7, fingerprint=fp, rule_id=1, rule_name="cpu", kind="threshold",
                        state=state, previous_state="normal", severity="warning", host=host,
                        metric="cpu.usage", value=95.0, expected=ExpectedBand(high=90.0),
                        started_at=T0, at=at, resolved_at=at if state == "resolved" else None,
                        **kw)  # type: ignore[arg-type]


def group(last_sent: datetime | None = None) -> GroupRecord:
    return GroupRecord("ops", "ops:{}", {"rule": "cpu"}, last_sent)


def test_new_group_waits_group_wait_then_group_interval() -> None:
    assert schedule_on_event(None, POLICY, T0) == T0 + timedelta(seconds=10)
    sent = group(last_sent=T0)
    assert schedule_on_event(sent, POLICY, T0 + timedelta(seconds=5)) == T0 + timedelta(
        seconds=300)
    assert schedule_on_event(sent, POLICY, T0 + timedelta(hours=1)) == T0 + timedelta(hours=1)


def test_firing_is_due_once_then_resolved() -> None:
    rec = AlertRecord("a", event(), "firing")
    plan = plan_flush(group(), [rec], POLICY, Silencer(), T0)
    assert plan.notification is not None and plan.notification.kind == "firing"
    assert plan.updates["a"].notified_state == "firing"
    assert plan.next_flush_at == T0 + timedelta(seconds=3600)  # repeat

    rec.notified_state, rec.notified_at = "firing", T0
    again = plan_flush(group(T0), [rec], POLICY, Silencer(), T0 + timedelta(seconds=1))
    assert again.notification is None

    resolved = AlertRecord("a", event("resolved", at=T0 + timedelta(minutes=1)), "resolved",
                           notified_state="firing", notified_at=T0)
    plan = plan_flush(group(T0), [resolved], POLICY, Silencer(), T0 + timedelta(minutes=1))
    assert plan.notification is not None and plan.notification.kind == "resolved"
    assert plan.notification.alerts[0].status == "resolved"


def test_resolved_never_announced_is_dropped_and_repeat_after_interval() -> None:
    rec = AlertRecord("a", event("resolved"), "resolved")
    plan = plan_flush(group(), [rec], POLICY, Silencer(), T0 + timedelta(hours=1))
    assert plan.notification is None and plan.deletes == ["a"] and plan.delete_group

    firing = AlertRecord("b", event(fp="b"), "firing", notified_state="firing", notified_at=T0)
    later = T0 + timedelta(seconds=3601)
    plan = plan_flush(group(T0), [firing], POLICY, Silencer(), later)
    assert plan.notification is not None and plan.notification.kind == "repeat"


def test_send_resolved_off_and_cooldown() -> None:
    quiet = Policy(**{**POLICY.__dict__, "send_resolved": False, "cooldown": 120})
    rec = AlertRecord("a", event("resolved"), "resolved", notified_state="firing",
                      notified_at=T0)
    assert plan_flush(group(T0), [rec], quiet, Silencer(), T0).notification is None
    refire = AlertRecord("a", event(), "firing", notified_state="resolved", notified_at=T0)
    plan = plan_flush(group(T0), [refire], quiet, Silencer(), T0 + timedelta(seconds=30))
    assert plan.notification is None
    assert plan.next_flush_at == T0 + timedelta(seconds=120)


def test_flapping_detection_and_single_notification() -> None:
    transitions: list[datetime] = []
    flapping = False
    state = "firing"
    for i in range(4):
        new = "resolved" if state == "firing" else "firing"
        transitions, flapping = note_transition(transitions, flapping, state, new,
                                                T0 + timedelta(seconds=i), POLICY)
        state = new
    assert flapping and len(transitions) == 4
    rec = AlertRecord("a", event(state), state, transitions, True, notified_state="firing")
    plan = plan_flush(group(T0), [rec], POLICY, Silencer(), T0 + timedelta(seconds=5))
    assert plan.notification is not None and plan.notification.kind == "flapping"
    rec.notified_state = "flapping"
    assert plan_flush(group(T0), [rec], POLICY, Silencer(),
                      T0 + timedelta(seconds=6)).notification is None
    # Stable for a whole window: flapping clears and the current state is notified.
    rec.state, rec.event = "firing", event("firing")
    plan = plan_flush(group(T0), [rec], POLICY, Silencer(), T0 + timedelta(seconds=700))
    assert not plan.updates["a"].flapping
    assert plan.notification is not None and plan.notification.alerts[0].status == "firing"


def test_silenced_alert_recorded_once_and_left_due() -> None:
    silence = Silence(id="s1", matchers=[Matcher(name="host", op="=", value="web-1")],
                      starts_at=T0 - timedelta(hours=1), ends_at=T0 + timedelta(hours=1),
                      created_by="me")
    rec = AlertRecord("a", event(), "firing")
    plan = plan_flush(group(), [rec], POLICY, Silencer([silence]), T0)
    assert plan.notification is None and plan.silenced is not None
    assert plan.silenced.extra["silenced_by"] == ["silence:s1"]
    assert plan.updates["a"].notified_state is None
    rec.silenced_state = "firing"
    plan = plan_flush(group(), [rec], POLICY, Silencer([silence]), T0 + timedelta(minutes=1))
    assert plan.silenced is None
    after = plan_flush(group(), [rec], POLICY, Silencer([silence]), T0 + timedelta(hours=2))
    assert after.notification is not None


def test_matchers() -> None:
    labels = {"host": "web-12", "env": "prod"}
    assert Matcher.parse("host=~web-\\d+").matches(labels)
    assert not Matcher.parse("host=~web").matches(labels)  # anchored
    assert Matcher.parse('env!="dev"').matches(labels)
    assert Matcher.parse("team!~.+").matches(labels)  # absent label is ""
    with pytest.raises(ValueError):
        Matcher(name="x", op="=~", value="(")
    with pytest.raises(ValueError):
        SilenceSpec(matchers=[Matcher(name="a", value="b")], starts_at=T0, ends_at=T0)


def test_mute_window_crossing_midnight_in_its_zone() -> None:
    window = MuteWindowSpec(name="patch", days=["tue"], start="22:00", end="02:00",
                            timezone="Europe/Paris")
    paris_tue_2300 = datetime(2026, 3, 3, 22, 0, tzinfo=UTC)  # 23:00 in Paris (UTC+1)
    assert window.active_at(paris_tue_2300)
    assert window.active_at(datetime(2026, 3, 4, 0, 30, tzinfo=UTC))  # Wed 01:30 Paris
    assert not window.active_at(datetime(2026, 3, 4, 1, 30, tzinfo=UTC))  # Wed 02:30 Paris
    assert not window.active_at(datetime(2026, 3, 4, 22, 0, tzinfo=UTC))  # Wednesday night
    with pytest.raises(ValueError):
        MuteWindowSpec(name="x", start="01:00", end="02:00", timezone="Nowhere/Land")


def test_routing_by_rule_and_by_match() -> None:
    channels = {
        "named": ChannelSpec.model_validate({"name": "named", "config": {
            "type": "webhook", "url": "http://h/x"}}),
        "crit": ChannelSpec.model_validate({"name": "crit", "match": {
            "labels": {"env": "prod"}, "min_severity": "critical"},
            "config": {"type": "webhook", "url": "http://h/y"}}),
    }
    routes, unknown = route(event(channels=["named", "ghost"]), channels)
    assert [r.channel.name for r in routes] == ["named"] and unknown == ["ghost"]
    assert routes[0].group_labels == {"rule": "cpu", "host": "web-1"}
    crit = event(labels={"env": "prod"})
    crit.severity = "critical"
    assert {r.channel.name for r in route(crit, channels)[0]} == {"crit"}
    assert [r.channel.name for r in route(crit, channels, only="named")[0]] == []


def test_backoff_and_breaker() -> None:
    assert backoff_delay(1, 1.0, 60, rand=lambda: 0.0) == 0.5
    assert backoff_delay(3, 1.0, 60, rand=lambda: 1.0) == 4.0
    assert backoff_delay(10, 1.0, 60, rand=lambda: 1.0) == 60
    assert backoff_delay(1, 1.0, 60, retry_after=30, rand=lambda: 1.0) == 30
    now = [0.0]
    breaker = CircuitBreaker(failures=2, reset=10, clock=lambda: now[0])
    breaker.failure()
    assert breaker.allow()[0]
    breaker.failure()
    allowed, wait = breaker.allow()
    assert not allowed and wait == 10
    now[0] = 11
    assert breaker.allow()[0] and breaker.state == "half_open"
    assert not breaker.allow()[0]  # one trial at a time
    breaker.failure()
    assert breaker.state == "open"
    now[0] = 22
    assert breaker.allow()[0]
    breaker.success()
    assert breaker.state == "closed" and breaker.allow()[0]


def test_retry_after_parsing() -> None:
    assert parse_retry_after("7") == 7
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:10 GMT", now=1445412480.0) == 10
    assert parse_retry_after("soon") is None


def test_renderers() -> None:
    item = AlertItem.from_event(event(explanation="95 > 90"), "firing")
    n = Notification("ops", "firing", "ops:{}", {"rule": "cpu"}, [item], "k" * 64,
                     dashboard_url="https://d.example")
    body = webhook.render(n)
    assert body["version"] == "4" and body["status"] == "firing"
    assert body["alerts"][0]["annotations"]["expected"] == "≤ 90"
    assert body["alerts"][0]["generatorURL"] == "https://d.example/#/alerts/7"
    blocks = slack.render(n, "#ops")
    assert blocks["channel"] == "#ops" and "95 vs ≤ 90" in str(blocks["blocks"])

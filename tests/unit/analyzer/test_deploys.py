"""Deploy annotation and hold decisions (pure)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from nazar_analyzer.deploys import DeployIndex, Deploys, ago
from nazar_analyzer.machine import Machine, Observation, Status, Transition
from nazar_common.schemas.config import RuleSpec
from nazar_common.schemas.events import Event

T = 1_800_000_000.0


def event(id_: int, start: float, end: float | None = None, **kw: Any) -> Event:
    return Event(id=id_, kind=kw.pop("kind", "deploy"), title=kw.pop("title", "t"),
                 start=datetime.fromtimestamp(start, UTC),
                 end=None if end is None else datetime.fromtimestamp(end, UTC),
                 created_at=datetime.fromtimestamp(start, UTC), **kw)


def rule(kind: str = "baseline", **deploys: Any) -> RuleSpec:
    params = {"kind": kind, "value": 1} if kind == "threshold" else {"kind": kind}
    return RuleSpec.model_validate({"name": "r", "metric": "m", "params": params,
                                    "deploys": deploys})


def test_events_touch_hosts_by_name_selector_or_fleet() -> None:
    named = event(1, T, hosts=("web-1",))
    selected = event(2, T, selector={"role": "web", "dc": "a"})
    fleet = event(3, T)
    assert named.touches("web-1", {}) and not named.touches("web-2", {"role": "web"})
    assert selected.touches("x", {"role": "web", "dc": "a", "extra": "1"})
    assert not selected.touches("x", {"role": "web"})
    assert fleet.touches("anything", {})
    idx = DeployIndex([named, selected, fleet, event(4, T, kind="config")])
    marks, _, _ = idx.touching("web-1", {"role": "web"}, ["deploy"])
    assert [m.id for m in marks] == [1, 3]
    marks, _, _ = idx.touching("web-9", {"role": "web", "dc": "a"}, ["deploy", "config"])
    assert [m.id for m in marks] == [2, 3, 4]


def test_annotation_names_the_deploy_and_the_delay() -> None:
    idx = DeployIndex([event(7, T, service="web", version="v1.2.3", link="https://ci/7"),
                       event(8, T - 3600, service="web", version="v1.2.2")])
    d = Deploys.of(rule("threshold", annotate_within="15m"), idx, "h", {})
    assert d is not None and not d.holds
    obs = Observation(T + 240, True, 9.0, explanation="m 9 > 5")
    [tr] = d.annotate([Transition("normal", "firing", T + 240, T + 240, obs, new_alert=True)])
    assert dict(tr.annotations) == {"deploy": "started 4 min after deploy web v1.2.3",
                                    "deploy_event_id": "7", "deploy_link": "https://ci/7"}
    assert tr.observation is not None
    assert tr.observation.explanation == (
        "m 9 > 5; started 4 min after deploy web v1.2.3 (event 7)")
    # the resolution keeps the annotations but not the explanation note
    [res] = d.annotate([Transition("firing", "resolved", T + 900, T + 240,
                                   Observation(T + 900, False, 1.0, explanation="ok"))])
    assert dict(res.annotations)["deploy_event_id"] == "7"
    assert res.observation is not None and res.observation.explanation == "ok"
    # too late, or before any deploy: untouched
    late = Transition("normal", "firing", T + 901, T + 901, obs, new_alert=True)
    assert d.annotate([late]) == [late]
    early = Transition("normal", "firing", T - 7200, T - 7200, obs, new_alert=True)
    assert d.annotate([early]) == [early]


def test_annotation_of_a_rollout_and_at_the_same_microsecond() -> None:
    idx = DeployIndex([event(1, T, T + 600, service="api")])
    d = Deploys.of(rule("threshold", annotate_within=60), idx, "h", {})
    assert d is not None and d.near(T - 5e-7) is not None  # stored to the microsecond
    assert d.near(T + 300) is not None and d.near(T + 660) is not None
    assert d.near(T + 661) is None
    obs = Observation(T + 300, True)
    [tr] = d.annotate([Transition("normal", "pending", T + 300, T + 300, obs, new_alert=True)])
    assert dict(tr.annotations)["deploy"] == "started during deploy api, 5 min after it began"


def test_hold_window_and_reset_points() -> None:
    idx = DeployIndex([event(1, T, service="web"), event(2, T + 7200, T + 7500, service="web")])
    d = Deploys.of(rule("anomaly", hold_for="10m"), idx, "h", {})
    assert d is not None and d.holds
    assert d.holding(T - 1) is None
    assert d.holding(T) is not None and d.holding(T + 599) is not None
    assert d.holding(T + 600) is None
    # a rollout is held from its start until hold_for after its end; it resets at its end
    assert d.holding(T + 7300) is not None and d.holding(T + 8099) is not None
    assert d.holding(T + 8100) is None
    assert d.last_reset(T - 1) is None and d.last_reset(T + 10) == T
    assert d.last_reset(T + 7400) == T and d.last_reset(T + 7500) == T + 7500
    assert d.needs_reset(None, T + 5) == T
    assert d.needs_reset(T - 3600, T + 5) == T
    assert d.needs_reset(T, T + 5) is None  # already re-learnt from it
    assert d.needs_reset(T, T + 7500) == T + 7500


def test_hold_keeps_an_alert_from_opening_only() -> None:
    idx = DeployIndex([event(3, T, service="web", version="v2")])
    d = Deploys.of(rule("baseline", hold_for=600), idx, "h", {})
    assert d is not None
    mark = d.holding(T + 120)
    assert mark is not None
    held = d.hold(Observation(T + 120, True, 300.0, explanation="value 300 is above"), mark)
    assert not held.breach and held.value == 300.0
    assert held.explanation == ("value 300 is above — held: 2 min after deploy web v2 "
                                "(event 3); the detector re-learns, no alert opens for 8 min more")
    status = Status()
    assert Machine().step(status, held) == [] and status.state == "normal"


def test_threshold_rules_are_never_held() -> None:
    with pytest.raises(ValidationError, match="baseline and anomaly rules only"):
        rule("threshold", hold_for="10m")
    with pytest.raises(ValidationError, match="baseline and anomaly rules only"):
        RuleSpec.model_validate({"name": "r", "params": {"kind": "absence"},
                                 "deploys": {"hold_for": 60}})
    spec = rule("threshold", annotate_within="5m")
    assert spec.deploys is not None and spec.deploys.annotate_within == 300.0


def test_rules_without_deploys_or_events_cost_nothing() -> None:
    idx = DeployIndex([event(1, T, hosts=("other",))])
    plain = RuleSpec.model_validate({"name": "r", "metric": "m", "params": {"kind": "baseline"}})
    assert Deploys.of(plain, idx, "h", {}) is None
    assert Deploys.of(rule("baseline", hold_for=60), idx, "h", {}) is None


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0 s"), (59.4, "59 s"), (240, "4 min"), (3569, "59 min"), (3599, "1 h"), (3600, "1 h"),
     (3900, "1 h 5 min"), (86400, "1 d"), (97200, "1 d 3 h")],
)
def test_ago(seconds: float, text: str) -> None:
    assert ago(seconds) == text

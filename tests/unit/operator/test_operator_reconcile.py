"""Pure reconciliation: names, rule bodies, plans and conditions."""

from __future__ import annotations

import pytest

from nazar_common.errors import InvalidInputError
from nazar_operator.reconcile import (
    MAX_RULE_NAME,
    NAME_RE,
    RuleBody,
    alert_rule_body,
    condition,
    failed_status,
    monitored_host_bodies,
    owned_rules,
    ready_status,
    rule_name,
    sync_plan,
)

THRESHOLD = {"metric": "cpu.usage_percent", "params": {"kind": "threshold", "value": 90}}


def test_rule_name_joins_namespace_and_name() -> None:
    assert rule_name("monitoring", "high-cpu") == "monitoring-high-cpu"
    assert rule_name("team-a", "web.example.com") == "team-a-web-example-com"
    assert rule_name("ns", "host", "cpu.usage_percent") == "ns-host-cpu-usage-percent"


def test_long_names_are_cut_with_a_distinguishing_hash() -> None:
    ns, stem = "a-rather-long-namespace-name", "an-even-longer-resource-name-"
    a = rule_name(ns, stem + "x" * 40)
    b = rule_name(ns, stem + "x" * 41)
    assert len(a) <= MAX_RULE_NAME and len(b) <= MAX_RULE_NAME
    assert NAME_RE.match(a) and NAME_RE.match(b)
    assert a != b
    assert a == rule_name(ns, stem + "x" * 40)


def test_alert_rule_body_is_the_spec_named_after_the_resource() -> None:
    body = alert_rule_body("mon", "high-cpu", {**THRESHOLD, "for": 60})
    assert body == RuleBody("mon-high-cpu", {"name": "mon-high-cpu", **THRESHOLD, "for": 60})


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"params": {"kind": "threshold", "value": 1}}, "needs a metric"),
        ({**THRESHOLD, "severity": "fatal"}, "severity"),
        ({**THRESHOLD, "surprise": 1}, "surprise"),
        ({**THRESHOLD, "name": "other"}, "spec.name"),
        ({"metric": "m", "params": {"kind": "baseline", "band": -1}}, "band"),
    ],
)
def test_invalid_alert_rules_are_refused(spec: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        alert_rule_body("mon", "bad", spec)


def test_monitored_host_becomes_host_and_metric_absence_rules() -> None:
    bodies = monitored_host_bodies(
        "mon", "db-1",
        {"hostname": "db-1.example.com", "labels": {"env": "prod"},
         "expectedMetrics": ["cpu.usage_percent", "cpu_usage_percent"], "absenceTimeout": 120,
         "severity": "critical", "channels": ["ops"]},
    )
    assert bodies[0].name == "mon-db-1"
    assert len({b.name for b in bodies}) == 3  # similar metric names do not collide
    host, *metrics = (b.body for b in bodies)
    assert "metric" not in host
    assert [m["metric"] for m in metrics] == ["cpu.usage_percent", "cpu_usage_percent"]
    for body in (host, *metrics):
        assert body["params"] == {"kind": "absence", "after": 120.0}
        assert body["selector"] == {"hosts": ["db-1.example.com"]}
        assert body["labels"] == {"env": "prod", "host": "db-1.example.com"}
        assert body["severity"] == "critical" and body["channels"] == ["ops"]
    # Idempotent: the same resource always maps to the same rules.
    assert bodies == monitored_host_bodies(
        "mon", "db-1",
        {"hostname": "db-1.example.com", "labels": {"env": "prod"},
         "expectedMetrics": ["cpu.usage_percent", "cpu_usage_percent"], "absenceTimeout": 120,
         "severity": "critical", "channels": ["ops"]},
    )


@pytest.mark.parametrize(
    "spec",
    [
        {"hostname": "bad host"},
        {"hostname": "h", "expectedMetrics": ["m", "m"]},
        {"hostname": "h", "expectedMetrics": ["not a metric"]},
        {"hostname": "h", "absenceTimeout": 0},
    ],
)
def test_invalid_monitored_hosts_are_refused(spec: dict[str, object]) -> None:
    with pytest.raises(InvalidInputError):
        monitored_host_bodies("mon", "h", spec)


def test_sync_plan_deletes_only_rules_no_longer_wanted() -> None:
    desired = (RuleBody("a", {}), RuleBody("b", {}))
    plan = sync_plan(desired, ["a", "c", "d"])
    assert plan.put == desired
    assert plan.delete == ("c", "d")
    assert sync_plan(desired, []).delete == ()


def test_owned_rules_merge_status_and_fallback() -> None:
    assert owned_rules({"ruleName": "x"}, ["y"]) == ("x", "y")
    assert owned_rules({"rules": ["a", "b"]}, ["a"]) == ("a", "b")
    assert owned_rules({}, ["z"]) == ("z",)


def test_transition_time_moves_only_when_status_changes() -> None:
    first = condition(None, "Ready", True, "Applied", "ok", "T1")
    assert first["lastTransitionTime"] == "T1"
    same = condition([first], "Ready", True, "Applied", "ok again", "T2")
    assert same["lastTransitionTime"] == "T1"
    flipped = condition([same], "Ready", False, "Invalid", "bad", "T3")
    assert flipped == {"type": "Ready", "status": "False", "reason": "Invalid",
                       "message": "bad", "lastTransitionTime": "T3"}


def test_status_shapes() -> None:
    ok = ready_status(4, None, "T", "applied", ruleName="n", ruleVersion=2)
    assert ok["observedGeneration"] == 4 and ok["ruleVersion"] == 2
    assert ok["conditions"][0]["status"] == "True"
    bad = failed_status(5, ok["conditions"], "T2", "Invalid", "nope")
    assert bad == {"observedGeneration": 5, "conditions": [
        {"type": "Ready", "status": "False", "reason": "Invalid", "message": "nope",
         "lastTransitionTime": "T2"}]}

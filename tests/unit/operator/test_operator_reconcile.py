"""Pure reconciliation: names, rule bodies, plans and conditions."""

from __future__ import annotations

import re

import pytest

from nazar_common.errors import InvalidInputError
from nazar_operator.reconcile import (
    MAX_RULE_NAME,
    NAME_RE,
    Outcome,
    RuleBody,
    alert_rule_body,
    condition,
    drifted,
    failed_status,
    monitored_host_bodies,
    owned_rules,
    ready_status,
    rule_name,
    status_of,
    sync_plan,
)

THRESHOLD = {"metric": "cpu.usage_percent", "params": {"kind": "threshold", "value": 90}}


def test_rule_name_joins_namespace_and_name() -> None:
    assert rule_name("monitoring", "high-cpu") == "monitoring-high-cpu"
    assert re.fullmatch(r"team-a-web-example-com-[0-9a-f]{6}",
                        rule_name("team-a", "web.example.com"))
    assert re.fullmatch(r"ns-host-cpu-usage-percent-[0-9a-f]{6}",
                        rule_name("ns", "host", "cpu.usage_percent", kind="MonitoredHost"))


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (("mon", "cpu.high"), ("mon", "cpu-high")),
        (("a-b", "c"), ("a", "b-c")),
        (("a", "b-c-0a1b2c"), ("a-b", "c")),
        (("mon", "x.y.z"), ("mon", "x-y.z")),
    ],
)
def test_resources_whose_names_sanitise_alike_get_distinct_rules(
    a: tuple[str, str], b: tuple[str, str]
) -> None:
    assert rule_name(*a) != rule_name(*b)
    assert rule_name(*a) == rule_name(*a)  # stable
    for name in (rule_name(*a), rule_name(*b)):
        assert NAME_RE.match(name) and len(name) <= MAX_RULE_NAME


def test_kinds_never_share_a_rule() -> None:
    assert rule_name("mon", "db-1") != rule_name("mon", "db-1", kind="MonitoredHost")
    host = monitored_host_bodies("mon", "db-1", {"hostname": "db-1"})[0].name
    assert host != alert_rule_body("mon", "db-1", THRESHOLD).name


def test_rule_names_are_injective_over_many_resources() -> None:
    """No two of a few thousand lookalike resources map to one rule."""
    parts = ["a", "b", "a-b", "b-a", "a.b", "a-b-c", "a.b.c", "x" * 60, "a--b"]
    seen: dict[str, tuple[str, str, str]] = {}
    for ns in ["a", "b", "a-b", "team-a", "x" * 50]:
        for name in parts:
            for kind in ("AlertRule", "MonitoredHost"):
                key = rule_name(ns, name, kind=kind)
                assert key not in seen, (seen[key], (kind, ns, name))
                seen[key] = (kind, ns, name)


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
    assert bodies[0].name.startswith("mon-db-1-")
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


def test_drift_is_a_recreated_or_re_versioned_rule_while_the_spec_stood_still() -> None:
    recorded = {"r": 3}
    assert not drifted(recorded, "r", 3, False, True)
    assert drifted(recorded, "r", 5, False, True)  # edited by hand, put back
    assert drifted(recorded, "r", 1, True, True)  # deleted by hand, recreated
    assert not drifted(recorded, "r", 4, False, False)  # the spec changed
    assert not drifted(recorded, "new", 1, True, True)  # first apply


def test_outcomes_set_ready_synced_and_conflict_with_generation() -> None:
    ok = status_of(Outcome(True, "Applied", "fine"), 7, None, "T")
    kinds = {c["type"]: c for c in ok["conditions"]}
    assert set(kinds) == {"Ready", "Synced", "Conflict"}
    assert all(c["observedGeneration"] == 7 for c in kinds.values())
    assert kinds["Conflict"]["status"] == "False"
    clash = status_of(Outcome(False, "RuleOwnedElsewhere", "x", conflict="owned by u"), 8,
                      ok["conditions"], "T2")
    kinds = {c["type"]: c for c in clash["conditions"]}
    assert (kinds["Conflict"]["status"], kinds["Conflict"]["message"]) == ("True", "owned by u")
    assert kinds["Ready"]["status"] == "False" and kinds["Ready"]["lastTransitionTime"] == "T2"


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
    assert bad["observedGeneration"] == 5
    assert bad["conditions"][0] == {
        "type": "Ready", "status": "False", "reason": "Invalid", "message": "nope",
        "lastTransitionTime": "T2", "observedGeneration": 5}

"""AlertRule and MonitoredHost resources end up as rules in a real Nazar API."""

from __future__ import annotations

from typing import Any

import kmock

from tests.integration.operator.conftest import (
    ALERT_RULES_RES,
    MONITORED_HOSTS_RES,
    NAMESPACE,
    eventually,
)

BASE = f"/apis/nazar.dev/v1alpha1/namespaces/{NAMESPACE}"


def alert_rule(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "nazar.dev/v1alpha1",
        "kind": "AlertRule",
        "metadata": {"name": name, "namespace": NAMESPACE, "generation": 1, "resourceVersion": "1"},
        "spec": spec,
    }


def status_of(k8s: kmock.KubernetesEmulator, resource: str, name: str) -> dict[str, Any]:
    obj = k8s.objects[kmock.resource(resource), NAMESPACE, name]
    if obj.deleted:
        return {}
    return dict(obj.raw.get("status") or {})


def ready(status: dict[str, Any]) -> dict[str, Any] | None:
    for cond in status.get("conditions") or ():
        if cond["type"] == "Ready":
            return dict(cond)
    return None


async def test_alert_rule_is_applied_then_deleted(operator: Any, ingest_server: Any) -> None:
    spec = {
        "metric": "cpu.usage_percent",
        "params": {"kind": "threshold", "comparator": ">", "value": 90},
        "for": 120,
        "severity": "critical",
        "labels": {"team": "platform"},
    }
    resp = await operator.post(f"{BASE}/alertrules", json=alert_rule("high-cpu", spec))
    assert resp.status == 200, await resp.text()

    async with ingest_server.client() as api:

        async def stored() -> dict[str, Any] | None:
            r = await api.get(f"/api/v1/rules/{rule_name}")
            return r.json() if r.status_code == 200 else None

        async def applied() -> dict[str, Any] | None:
            status = status_of(operator, ALERT_RULES_RES, "high-cpu")
            cond = ready(status)
            return status if cond and cond["status"] == "True" else None

        status = await eventually(applied)
        rule_name = status["ruleName"]
        rule = await eventually(stored)
        assert rule["spec"]["metric"] == "cpu.usage_percent"
        assert rule["spec"]["params"]["value"] == 90
        assert rule["spec"]["for"] == 120
        assert rule["spec"]["severity"] == "critical"
        obj = operator.objects[ALERT_RULES_RES, NAMESPACE, "high-cpu"]
        assert rule["owner"] == obj["metadata"]["uid"]
        assert status["observedGeneration"] == 1
        assert rule_name.startswith(f"{NAMESPACE}-high-cpu-")
        assert status["ruleVersion"] == rule["version"]
        assert ready(status)["reason"] == "Applied"
        obj = operator.objects[ALERT_RULES_RES, NAMESPACE, "high-cpu"]
        assert "nazar.dev/finalizer" in obj["metadata"]["finalizers"]
        # The status reached kmock through a PATCH of the status subresource or the object.
        patches = [
            r for r in operator
            if r.method.value == "PATCH" and r.name == "high-cpu"
            and "status" in (r.data or {})
        ]
        assert patches

        # A spec change is applied as a new version of the same rule.
        resp = await operator.patch(
            f"{BASE}/alertrules/high-cpu",
            json={"metadata": {"generation": 2}, "spec": {"params": {"value": 95}}},
            headers={"Content-Type": "application/merge-patch+json"},
        )
        assert resp.status == 200, await resp.text()

        async def updated() -> dict[str, Any] | None:
            r = await api.get(f"/api/v1/rules/{rule_name}")
            body = r.json()
            return body if body["spec"]["params"]["value"] == 95 else None

        rule2 = await eventually(updated)
        assert rule2["version"] == rule["version"] + 1

        async def observed_gen2() -> bool:
            return status_of(operator, ALERT_RULES_RES, "high-cpu").get("observedGeneration") == 2

        await eventually(observed_gen2)

        # Deleting the resource deletes the rule, then releases the finalizer.
        resp = await operator.delete(f"{BASE}/alertrules/high-cpu")
        assert resp.status == 200, await resp.text()

        async def gone() -> bool:
            r = await api.get(f"/api/v1/rules/{rule_name}")
            return r.status_code == 404

        await eventually(gone)

        async def released() -> bool:
            return operator.objects[ALERT_RULES_RES, NAMESPACE, "high-cpu"].deleted

        await eventually(released)


async def test_invalid_alert_rule_is_reported_and_not_retried(
    operator: Any, ingest_server: Any
) -> None:
    # A threshold rule needs a metric: the API would refuse it, the operator refuses first.
    spec = {"params": {"kind": "threshold", "value": 1}}
    resp = await operator.post(f"{BASE}/alertrules", json=alert_rule("no-metric", spec))
    assert resp.status == 200

    async def failed() -> dict[str, Any] | None:
        cond = ready(status_of(operator, ALERT_RULES_RES, "no-metric"))
        return cond if cond and cond["status"] == "False" else None

    cond = await eventually(failed)
    assert cond["reason"] == "Invalid"
    assert "metric" in cond["message"]
    async with ingest_server.client() as api:
        names = [r["name"] for r in (await api.get("/api/v1/rules")).json()]
        assert not [n for n in names if n.startswith(f"{NAMESPACE}-no-metric")]


async def test_monitored_host_becomes_absence_rules(operator: Any, ingest_server: Any) -> None:
    body = {
        "apiVersion": "nazar.dev/v1alpha1",
        "kind": "MonitoredHost",
        "metadata": {
            "name": "db-1", "namespace": NAMESPACE, "generation": 1, "resourceVersion": "1",
        },
        "spec": {
            "hostname": "db-1.example.com",
            "labels": {"env": "prod"},
            "expectedMetrics": ["cpu.usage_percent", "disk.used_percent"],
            "absenceTimeout": 600,
            "severity": "critical",
        },
    }
    resp = await operator.post(f"{BASE}/monitoredhosts", json=body)
    assert resp.status == 200

    async def applied() -> list[str] | None:
        status = status_of(operator, MONITORED_HOSTS_RES, "db-1")
        cond = ready(status)
        return status["rules"] if cond and cond["status"] == "True" else None

    names = await eventually(applied)
    assert len(names) == 3
    assert all(n.startswith(f"{NAMESPACE}-db-1-") for n in names)
    async with ingest_server.client() as api:
        rules = [(await api.get(f"/api/v1/rules/{n}")).json() for n in names]
        assert all(r["spec"]["params"] == {"kind": "absence", "after": 600.0} for r in rules)
        assert all(r["spec"]["selector"]["hosts"] == ["db-1.example.com"] for r in rules)
        assert all(r["spec"]["labels"]["env"] == "prod" for r in rules)
        assert {r["spec"]["metric"] for r in rules} == {None, "cpu.usage_percent",
                                                         "disk.used_percent"}

        # Dropping an expected metric deletes its rule.
        resp = await operator.patch(
            f"{BASE}/monitoredhosts/db-1",
            json={"metadata": {"generation": 2},
                  "spec": {"expectedMetrics": ["cpu.usage_percent"]}},
            headers={"Content-Type": "application/merge-patch+json"},
        )
        assert resp.status == 200

        async def shrunk() -> list[str] | None:
            status = status_of(operator, MONITORED_HOSTS_RES, "db-1")
            rules = status.get("rules") or []
            return rules if status.get("observedGeneration") == 2 and len(rules) == 2 else None

        remaining = await eventually(shrunk)
        dropped = (set(names) - set(remaining)).pop()
        assert (await api.get(f"/api/v1/rules/{dropped}")).status_code == 404

        resp = await operator.delete(f"{BASE}/monitoredhosts/db-1")
        assert resp.status == 200

        async def all_gone() -> bool:
            codes = [(await api.get(f"/api/v1/rules/{n}")).status_code for n in names]
            return codes == [404, 404, 404]

        await eventually(all_gone)

"""The ``nazar-operator`` process as it runs in a cluster — its console entry
point, JSON logs at INFO (the chart's default), leader election on — against
kmock's Kubernetes emulator and a real Nazar API.

Each step changes resources the way ``kubectl apply`` or a GitOps tool does
and then checks the conditions, ``observedGeneration`` and the rules in
Nazar."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path
from typing import Any

import asyncpg
import kmock
import pytest

from nazar_operator.reconcile import rule_name
from tests.conftest import IngestServer, create_key, free_port
from tests.integration.operator.conftest import eventually
from tests.integration.operator.test_operator_scaler import publish, purge

NS = "team-p"
BASE = f"/apis/nazar.dev/v1alpha1/namespaces/{NS}"
AR = "nazar.dev/v1alpha1/alertrules"
MH = "nazar.dev/v1alpha1/monitoredhosts"
MERGE = {"Content-Type": "application/merge-patch+json"}
BIN = Path(sys.executable).parent


class OperatorProcess:
    def __init__(self, proc: asyncio.subprocess.Process, log: Path) -> None:
        self.proc = proc
        self.log = log

    def lines(self) -> list[dict[str, Any]]:
        out = []
        for line in self.log.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                out.append({"message": line, "level": "RAW"})
        return out

    def applied(self, rule: str) -> int:
        return sum(1 for x in self.lines() if x.get("message") == "rule applied"
                   and x.get("rule") == rule)

    async def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc.returncode is None:
            self.proc.send_signal(sig)
            try:
                await asyncio.wait_for(self.proc.wait(), 20)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()


@pytest.fixture
async def cluster(k8s: kmock.KubernetesEmulator, tmp_path: Path) -> Path:
    """kmock with the namespace, the peering resource and a kubeconfig pointing at it."""
    k8s.resources["v1/namespaces"] = kmock.ResourceInfo(
        kind="Namespace", namespaced=False, verbs={"list", "watch", "get", "create"}
    )
    r = await k8s.post("/api/v1/namespaces", json={"apiVersion": "v1", "kind": "Namespace",
                                                   "metadata": {"name": NS}})
    assert r.status == 200, await r.text()
    k8s.resources["kopf.dev/v1/kopfpeerings"] = kmock.ResourceInfo(
        kind="KopfPeering", singular="kopfpeering", namespaced=True,
        verbs={"list", "watch", "get", "patch", "create", "delete"},
    )
    config = tmp_path / "kubeconfig"
    config.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "kmock",
        "clusters": [{"name": "kmock", "cluster": {"server": str(k8s.url).rstrip("/")}}],
        "users": [{"name": "kmock", "user": {"token": "kmock"}}],
        "contexts": [{"name": "kmock", "context": {"cluster": "kmock", "user": "kmock",
                                                   "namespace": NS}}],
    }))
    return config


@pytest.fixture
async def start(
    cluster: Path, ingest_server: IngestServer, tmp_path: Path
) -> AsyncIterator[Any]:
    procs: list[OperatorProcess] = []
    key = await create_key(ingest_server.database_url, "rules")  # the operator's scope

    async def run(level: str = "INFO", **extra: str) -> OperatorProcess:
        log = tmp_path / f"operator-{len(procs)}.log"
        env = {
            **os.environ,
            "KUBECONFIG": str(cluster),
            "NAZAR_API_URL": ingest_server.url,
            "NAZAR_API_KEY": key,
            "NAZAR_OPERATOR_NAMESPACES": NS,
            "NAZAR_OPERATOR_LISTEN_PORT": str(free_port()),
            "NAZAR_OPERATOR_RETRY_DELAY": "1",
            "NAZAR_OPERATOR_RESYNC_INTERVAL": "2",
            "NAZAR_OPERATOR_STATUS_INTERVAL": "1",
            "NAZAR_LOG_LEVEL": level,
            "NAZAR_LOG_FORMAT": "json",
            **extra,
        }
        with log.open("wb") as fh:
            proc = await asyncio.create_subprocess_exec(
                str(BIN / "nazar-operator"), env=env, stdout=fh, stderr=fh,
            )
        procs.append(OperatorProcess(proc, log))
        return procs[-1]

    yield run
    for p in procs:
        await p.stop()
        # Shown by pytest when the test failed.
        print(f"--- {p.log.name}", *p.log.read_text().splitlines()[-60:], sep="\n")


def obj(k8s: kmock.KubernetesEmulator, res: str, name: str) -> dict[str, Any]:
    key = (kmock.resource(res), NS, name)
    if key not in k8s.objects or k8s.objects[key].deleted:
        return {}
    return dict(k8s.objects[key].raw)


def events(k8s: kmock.KubernetesEmulator, name: str, reason: str) -> list[dict[str, Any]]:
    """Kubernetes events the operator posted about resource ``name``."""
    return [
        r.data for r in k8s
        if r.method.value == "POST" and str(r.url.path).endswith("/events")
        and isinstance(r.data, dict) and r.data.get("reason") == reason
        and (r.data.get("involvedObject") or {}).get("name") == name
    ]


def status_patches(k8s: kmock.KubernetesEmulator, name: str) -> list[Any]:
    return [r for r in k8s if r.method.value == "PATCH" and r.name == name
            and isinstance(r.data, dict) and "status" in r.data]


def rule_versions(stored: dict[str, Any] | None) -> int:
    assert stored is not None
    return int(stored["version"])


def conditions(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in (body.get("status") or {}).get("conditions") or ()}


async def settled(
    k8s: kmock.KubernetesEmulator, res: str, name: str, ready: str, reason: str | None = None,
    timeout: float = 20.0,
) -> dict[str, Any]:
    """The resource once its conditions describe its current generation as expected."""

    async def check() -> dict[str, Any] | None:
        body = obj(k8s, res, name)
        conds = conditions(body)
        gen = body.get("metadata", {}).get("generation")
        if not conds or conds["Ready"]["status"] != ready:
            return None
        if reason and conds["Ready"]["reason"] != reason:
            return None
        if any(c.get("observedGeneration") != gen for c in conds.values()):
            return None
        return body if body["status"].get("observedGeneration") == gen else None

    return await eventually(check, timeout)  # type: ignore[no-any-return]


def alert_rule(name: str, value: float, metric: str = "cpu.usage_percent") -> dict[str, Any]:
    return {
        "apiVersion": "nazar.dev/v1alpha1", "kind": "AlertRule",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"metric": metric, "params": {"kind": "threshold", "comparator": ">",
                                              "value": value}},
    }


async def test_operator_process_end_to_end(
    start: Any, k8s: kmock.KubernetesEmulator, ingest_server: IngestServer
) -> None:
    op = await start()
    async with ingest_server.client() as api:

        async def rule(name: str) -> dict[str, Any] | None:
            r = await api.get(f"/api/v1/rules/{name}")
            return r.json() if r.status_code == 200 else None

        # Apply: two names that sanitise alike map to two rules, each owned by its resource.
        for name, value in (("cpu.high", 90), ("cpu-high", 80)):
            r = await k8s.post(f"{BASE}/alertrules", json=alert_rule(name, value))
            assert r.status == 200
        dotted = await settled(k8s, AR, "cpu.high", "True", "Applied")
        dashed = await settled(k8s, AR, "cpu-high", "True", "Applied")
        assert dotted["status"]["ruleName"] != dashed["status"]["ruleName"]
        for body, value in ((dotted, 90), (dashed, 80)):
            stored = await rule(body["status"]["ruleName"])
            assert stored and stored["spec"]["params"]["value"] == value
            assert stored["owner"] == body["metadata"]["uid"]
            assert stored["source"] == "kubernetes"
            assert conditions(body)["Conflict"]["status"] == "False"
            assert conditions(body)["Synced"]["status"] == "True"
        name = dashed["status"]["ruleName"]
        # In step: the resync timer (every 2 s here) finds nothing to write.
        await eventually(lambda: _async("firing" in obj(k8s, AR, "cpu.high")["status"]))
        before = len(status_patches(k8s, "cpu.high"))
        await asyncio.sleep(4.5)
        assert len(status_patches(k8s, "cpu.high")) == before
        assert rule_versions(await rule(dotted["status"]["ruleName"])) == 1
        # A status refreshed on a timer: no alert fires yet; then one does.
        await eventually(lambda: _async(obj(k8s, AR, "cpu-high")["status"].get("firing") == 0))
        conn = await asyncpg.connect(ingest_server.database_url)
        try:
            await conn.execute(
                "INSERT INTO alerts (fingerprint, rule_id, rule_name, kind, subject, host, "
                "severity, state, started_at, fired_at) VALUES ($1, $2, $3, 'threshold', "
                "'cpu.usage_percent', 'web-1', 'warning', 'firing', now(), now())",
                f"fp-{name}", stored["id"], name,
            )
        finally:
            await conn.close()

        async def firing() -> dict[str, Any] | None:
            status = obj(k8s, AR, "cpu-high")["status"]
            return status if status.get("firing") == 1 and status.get("lastFiredAt") else None

        assert (await eventually(firing))["lastFiredAt"].startswith(str(date.today().year))

        # Update: a new generation, applied as a new version of the same rule.
        r = await k8s.patch(f"{BASE}/alertrules/cpu-high", headers=MERGE,
                            json={"spec": {"params": {"value": 85}}})
        assert r.status == 200
        body = await settled(k8s, AR, "cpu-high", "True", "Applied")
        assert body["metadata"]["generation"] == 2
        stored = await rule(name)
        assert stored and stored["spec"]["params"]["value"] == 85 and stored["version"] == 2

        # Break (a threshold without its metric): reported, the last good rule stays.
        r = await k8s.patch(f"{BASE}/alertrules/cpu-high", headers=MERGE,
                            json={"spec": {"metric": None}})
        body = await settled(k8s, AR, "cpu-high", "False", "Invalid")
        assert "metric" in conditions(body)["Ready"]["message"]
        assert conditions(body)["Synced"]["status"] == "False"
        assert (await rule(name))["spec"]["params"]["value"] == 85  # type: ignore[index]
        # Fix.
        r = await k8s.patch(f"{BASE}/alertrules/cpu-high", headers=MERGE,
                            json={"spec": {"metric": "cpu.system_percent"}})
        body = await settled(k8s, AR, "cpu-high", "True", "Applied")
        assert body["metadata"]["generation"] == 4
        assert (await rule(name))["spec"]["metric"] == "cpu.system_percent"  # type: ignore[index]

        # Drift: a hand edit and a hand delete are put back by the resync timer.
        hand = {**stored["spec"], "name": name, "metric": "cpu.system_percent",
                "params": {"kind": "threshold", "comparator": ">", "value": 1}}
        assert (await api.put(f"/api/v1/rules/{name}", json=hand)).status_code == 200

        async def reverted() -> bool:
            body = obj(k8s, AR, "cpu-high")
            current = await rule(name)
            return bool(current and current["spec"]["params"]["value"] == 85
                        and conditions(body)["Synced"]["reason"] == "DriftReverted")

        await eventually(reverted, 20)
        drift = await eventually(lambda: _async(events(k8s, "cpu-high", "DriftReverted")), 10)
        assert name in drift[0]["message"] and drift[0]["type"] == "Warning"
        assert (await api.delete(f"/api/v1/rules/{name}")).status_code == 204
        await eventually(lambda: rule(name), 20)

        # A hand-made rule in the way is neither adopted nor changed nor deleted.
        taken = rule_name(NS, "by-hand")
        mine = {"name": taken, "metric": "m", "params": {"kind": "threshold", "value": 5}}
        assert (await api.post("/api/v1/rules", json=mine)).status_code == 201
        await k8s.post(f"{BASE}/alertrules", json=alert_rule("by-hand", 50))
        body = await settled(k8s, AR, "by-hand", "False", "RuleOwnedElsewhere")
        assert conditions(body)["Conflict"]["status"] == "True"
        assert "made by hand" in conditions(body)["Conflict"]["message"]
        await eventually(lambda: _async(events(k8s, "by-hand", "RuleOwnedElsewhere")), 10)
        await k8s.delete(f"{BASE}/alertrules/by-hand")
        await eventually(lambda: _async(not obj(k8s, AR, "by-hand")))
        kept = await rule(taken)
        assert kept and kept["owner"] is None and kept["spec"]["params"]["value"] == 5

        # A MonitoredHost records its rules; an expected metric dropped drops its rule.
        host = {
            "apiVersion": "nazar.dev/v1alpha1", "kind": "MonitoredHost",
            "metadata": {"name": "db-1", "namespace": NS},
            "spec": {"hostname": "db-1.example.com",
                     "expectedMetrics": ["cpu.usage_percent", "disk.used_percent"]},
        }
        assert (await k8s.post(f"{BASE}/monitoredhosts", json=host)).status == 200
        body = await settled(k8s, MH, "db-1", "True", "Applied")
        names = body["status"]["rules"]
        assert len(names) == 3 and set(body["status"]["ruleVersions"]) == set(names)
        for n in names:
            assert (await rule(n))["owner"] == body["metadata"]["uid"]  # type: ignore[index]
        await k8s.patch(f"{BASE}/monitoredhosts/db-1", headers=MERGE,
                        json={"spec": {"expectedMetrics": ["cpu.usage_percent"]}})
        body = await settled(k8s, MH, "db-1", "True", "Applied")
        assert len(body["status"]["rules"]) == 2
        (dropped,) = set(names) - set(body["status"]["rules"])
        assert await rule(dropped) is None

        # A delete that fails keeps the finalizer and says so; it succeeds once it can.
        conn = await asyncpg.connect(ingest_server.database_url)
        try:
            await conn.execute(
                "CREATE FUNCTION test_refuse_delete() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN RAISE EXCEPTION 'refused for the test'; END $$")
            await conn.execute(
                "CREATE TRIGGER test_refuse_delete BEFORE DELETE ON rules "
                "FOR EACH ROW EXECUTE FUNCTION test_refuse_delete()")
            await k8s.delete(f"{BASE}/monitoredhosts/db-1")
            body = await settled(k8s, MH, "db-1", "False", "DeleteFailed")
            assert "nazar.dev/finalizer" in body["metadata"]["finalizers"]
            assert all([await rule(n) for n in body["status"]["rules"]])
        finally:
            await conn.execute("DROP TRIGGER IF EXISTS test_refuse_delete ON rules")
            await conn.execute("DROP FUNCTION IF EXISTS test_refuse_delete()")
            await conn.close()
        await eventually(lambda: _async(not obj(k8s, MH, "db-1")), 20)
        assert [await rule(n) for n in body["status"]["rules"]] == [None, None]

        # Deleting the AlertRules deletes their rules.
        for res_name in ("cpu.high", "cpu-high"):
            await k8s.delete(f"{BASE}/alertrules/{res_name}")
        await eventually(lambda: _async(not obj(k8s, AR, "cpu-high") and
                                        not obj(k8s, AR, "cpu.high")))
        assert await rule(name) is None
        assert await rule(dotted["status"]["ruleName"]) is None
    # Every line is JSON: none was lost to a logging error.
    assert not [x for x in op.lines() if x["level"] == "RAW"]
    assert not [x for x in op.lines() if x["level"] == "CRITICAL"]
    await op.stop()
    assert op.proc.returncode == 0


async def _async(value: Any) -> Any:
    return value


async def test_two_operator_processes_elect_one(
    start: Any, k8s: kmock.KubernetesEmulator, ingest_server: IngestServer, fresh_amqp_url: str
) -> None:
    """Two replicas (one at DEBUG): one applies rules and scales the analyzer,
    the other waits; when the active one is killed (SIGKILL: no goodbye in
    the peering object), the other takes over once its heartbeat expires."""
    deployments = "apps/v1/deployments"
    k8s.resources[deployments] = kmock.ResourceInfo(
        kind="Deployment", namespaced=True, subresources={"scale"}, verbs={"get", "patch", "list"},
    )
    k8s.objects[deployments, NS, "nazar-analyzer"] = {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "nazar-analyzer", "namespace": NS}, "spec": {"replicas": 1},
    }
    scaler = {
        "NAZAR_SCALER_ENABLED": "true", "NAZAR_AMQP_URL": fresh_amqp_url,
        "NAZAR_SCALER_NAMESPACE": NS, "NAZAR_SCALER_INTERVAL": "0.5",
        "NAZAR_SCALER_MESSAGES_PER_REPLICA": "10", "NAZAR_OPERATOR_PEERING_LIFETIME": "6",
    }
    first, second = await start("INFO", **scaler), await start("DEBUG", **scaler)

    def replicas() -> int:
        return int(k8s.objects[kmock.resource(deployments), NS, "nazar-analyzer"]
                   ["spec"]["replicas"])

    def scaled(op: OperatorProcess) -> list[dict[str, Any]]:
        return [x for x in op.lines() if x.get("message") == "analyzer scaled"]

    async def peers() -> dict[str, Any] | None:
        peering = obj(k8s, "kopf.dev/v1/kopfpeerings", "nazar-operator")
        live = {k: v for k, v in (peering.get("status") or {}).items() if v}
        return live if len(live) == 2 else None

    await eventually(peers, 30)
    await publish(fresh_amqp_url, 35)  # 4 replicas' worth at 10 each
    await k8s.post(f"{BASE}/alertrules", json=alert_rule("one", 70))
    body = await settled(k8s, AR, "one", "True", "Applied", timeout=30)
    name = body["status"]["ruleName"]
    await asyncio.sleep(3)  # a resync or two
    counts = [first.applied(name), second.applied(name)]
    assert sorted(counts)[0] == 0 and sorted(counts)[1] >= 1, counts
    active, standby = (first, second) if counts[0] else (second, first)
    await eventually(lambda: _async(replicas() == 4 and scaled(active)), 20)
    await asyncio.sleep(1)  # two more scaling intervals
    assert [x["to"] for x in scaled(active)] == [4] and scaled(standby) == []

    await active.stop(signal.SIGKILL)
    killed = time.monotonic()
    await k8s.post(f"{BASE}/alertrules", json=alert_rule("two", 60))
    body = await settled(k8s, AR, "two", "True", "Applied", timeout=30)
    assert time.monotonic() - killed < 20  # lifetime 6 s, heartbeats every second
    assert standby.applied(body["status"]["ruleName"]) >= 1
    await purge(fresh_amqp_url)
    await eventually(lambda: _async(replicas() == 1 and scaled(standby)), 20)
    assert [x["to"] for x in scaled(standby)] == [1]
    async with ingest_server.client() as api:
        stored = (await api.get(f"/api/v1/rules/{body['status']['ruleName']}")).json()
        assert stored["owner"] == body["metadata"]["uid"]
    for op in (first, second):
        assert not [x for x in op.lines() if x["level"] == "RAW"]

"""Rules, channels and keys through the API; the CLI against the same database."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import asyncpg
import httpx
import orjson

from tests.conftest import IngestServer

RULE = {
    "name": "cpu-high",
    "metric": "cpu.usage_percent",
    "match_series_labels": {"cpu": "total"},
    "selector": {"match_labels": {"env": "prod"}},
    "params": {"kind": "threshold", "comparator": ">", "value": 90, "recovery_value": 80},
    "for": 60,
    "severity": "critical",
    "annotations": {"summary": "CPU high on {{ host }}"},
    "channels": ["ops-slack"],
}
CHANNEL = {
    "name": "ops-slack",
    "config": {"type": "slack", "webhook_url": "https://hooks.example.invalid/T000/B000/XXXX"},
}


async def test_rule_crud(ingest_server: IngestServer) -> None:
    async with (
        ingest_server.client() as admin,
        ingest_server.client(ingest_server.read_key) as reader,
    ):
        r = await admin.post("/api/v1/rules", json=RULE)
        assert r.status_code == 201, r.text
        assert r.json()["spec"]["params"]["value"] == 90
        assert (await admin.post("/api/v1/rules", json=RULE)).status_code == 409
        r = await reader.get("/api/v1/rules/cpu-high")
        assert r.status_code == 200 and r.json()["version"] == 1
        assert (await reader.post("/api/v1/rules", json=RULE)).status_code == 403
        changed = {**RULE, "params": {**RULE["params"], "value": 95}}
        r = await admin.put("/api/v1/rules/cpu-high", json=changed)
        assert r.status_code == 200 and r.json()["version"] == 2
        r = await admin.put("/api/v1/rules/cpu-high", json=changed)  # unchanged: same version
        assert r.json()["version"] == 2
        names = [x["name"] for x in (await reader.get("/api/v1/rules")).json()]
        assert "cpu-high" in names
        assert (await admin.delete("/api/v1/rules/cpu-high")).status_code == 204
        assert (await reader.get("/api/v1/rules/cpu-high")).status_code == 404


async def test_owned_rules_are_neither_adopted_nor_taken_over(ingest_server: IngestServer) -> None:
    """``?owner=`` is stored on creation; another owner (or a hand-made rule,
    which has none) gets 409 and the rule stays as it was; requests without
    an owner (people) may edit and keep the owner."""
    rule = {**RULE, "name": "owned-cpu", "channels": []}
    async with ingest_server.client() as admin:
        r = await admin.put("/api/v1/rules/owned-cpu", json=rule,
                            params={"source": "kubernetes", "owner": "uid-1"})
        assert r.status_code == 201, r.text
        assert r.json()["owner"] == "uid-1" and r.json()["source"] == "kubernetes"
        other = {**rule, "params": {**rule["params"], "value": 50, "recovery_value": 40}}
        r = await admin.put("/api/v1/rules/owned-cpu", json=other, params={"owner": "uid-2"})
        assert r.status_code == 409, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        assert "uid-1" in r.json()["detail"]
        r = await admin.delete("/api/v1/rules/owned-cpu", params={"owner": "uid-2"})
        assert r.status_code == 409
        stored = (await admin.get("/api/v1/rules/owned-cpu")).json()
        assert stored["version"] == 1 and stored["spec"]["params"]["value"] == 90
        # A person's edit (no owner) is allowed and keeps the owner.
        r = await admin.put("/api/v1/rules/owned-cpu", json=other)
        assert r.status_code == 200 and r.json()["owner"] == "uid-1"
        assert r.json()["version"] == 2
        r = await admin.put("/api/v1/rules/owned-cpu", json=rule, params={"owner": "uid-1"})
        assert r.status_code == 200 and r.json()["version"] == 3
        assert (await admin.delete("/api/v1/rules/owned-cpu",
                                   params={"owner": "uid-1"})).status_code == 204
        # A hand-made rule is not adopted.
        hand = {**rule, "name": "hand-cpu"}
        assert (await admin.post("/api/v1/rules", json=hand)).status_code == 201
        r = await admin.put("/api/v1/rules/hand-cpu", json=hand, params={"owner": "uid-1"})
        assert r.status_code == 409 and "made by hand" in r.json()["detail"]
        assert (await admin.get("/api/v1/rules/hand-cpu")).json()["owner"] is None
        r = await admin.delete("/api/v1/rules/hand-cpu", params={"owner": "uid-1"})
        assert r.status_code == 409
        r = await admin.put("/api/v1/rules/hand-cpu", json=hand, params={"owner": "bad owner"})
        assert r.status_code in (400, 422)
        assert (await admin.delete("/api/v1/rules/hand-cpu")).status_code == 204
        r = await admin.delete("/api/v1/rules/hand-cpu", params={"owner": "uid-1"})
        assert r.status_code == 404
        # A rule the operator stored before owners existed goes to the first claim.
        old = {**rule, "name": "legacy-cpu"}
        r = await admin.put("/api/v1/rules/legacy-cpu", json=old, params={"source": "kubernetes"})
        assert r.status_code == 201 and r.json()["owner"] is None
        r = await admin.put("/api/v1/rules/legacy-cpu", json=old,
                            params={"source": "kubernetes", "owner": "uid-7"})
        assert r.status_code == 200 and r.json()["owner"] == "uid-7"
        assert r.json()["version"] == 1  # same spec: claimed, not changed
        r = await admin.put("/api/v1/rules/legacy-cpu", json=old, params={"owner": "uid-8"})
        assert r.status_code == 409
        r = await admin.delete("/api/v1/rules/legacy-cpu", params={"owner": "uid-7"})
        assert r.status_code == 204


async def test_a_rules_key_writes_rules_and_nothing_else(ingest_server: IngestServer) -> None:
    """The operator's scope: rules (and reading), but no channels, keys or silences."""
    async with ingest_server.client() as admin:
        r = await admin.post("/api/v1/keys", json={"name": "operator", "scopes": ["rules"]})
        assert r.status_code == 201, r.text
        key = r.json()["key"]
    rule = {**RULE, "name": "scoped-cpu", "channels": []}
    async with ingest_server.client(key) as rules:
        me = (await rules.get("/api/v1/auth/whoami")).json()
        assert me["grants"] == {"ingest": False, "read": True, "admin": False, "rules": True}
        r = await rules.put("/api/v1/rules/scoped-cpu", json=rule, params={"owner": "u"})
        assert r.status_code == 201, r.text
        assert (await rules.get("/api/v1/alerts", params={"rule": "scoped-cpu"})).status_code == 200
        assert (await rules.put("/api/v1/channels/ops-x", json=CHANNEL)).status_code == 403
        assert (await rules.post("/api/v1/keys", json={"name": "x", "scopes": ["admin"]})
                ).status_code == 403
        r = await rules.delete("/api/v1/rules/scoped-cpu", params={"owner": "u"})
        assert r.status_code == 204


async def test_invalid_rules_are_explained(ingest_server: IngestServer) -> None:
    async with ingest_server.client() as admin:
        bad = {**RULE, "name": "Bad Name", "params": {"kind": "threshold"}}
        r = await admin.post("/api/v1/rules", json=bad)
        assert r.status_code == 400
        locs = {e["loc"] for e in r.json()["errors"]}
        assert "name" in locs and any("value" in loc for loc in locs)
        r = await admin.post("/api/v1/rules", json={**RULE, "name": "x", "metric": None})
        assert r.status_code == 400
        r = await admin.put("/api/v1/rules/other", json=RULE)
        assert r.status_code == 400  # name in body and URL differ
        # The checks the AlertRule CRD makes in CEL hold for the API as well.
        never_fires = {**RULE, "name": "slow", "params": {
            "kind": "baseline", "min_history": 7200, "window": 3600}}
        r = await admin.post("/api/v1/rules", json=never_fires)
        assert r.status_code == 400
        assert "must not exceed window" in r.text
        backwards = {**RULE, "name": "hyst", "params": {
            "kind": "threshold", "comparator": ">", "value": 90, "recovery_value": 95}}
        r = await admin.put("/api/v1/rules/hyst", json=backwards)
        assert r.status_code == 400
        assert "recovery_value" in r.text
        assert (await admin.get("/api/v1/rules/hyst")).status_code == 404


async def test_channel_secrets_are_write_only(ingest_server: IngestServer) -> None:
    async with ingest_server.client() as admin:
        r = await admin.put("/api/v1/channels/ops-slack", json=CHANNEL)
        assert r.status_code == 201, r.text
        shown = r.json()["spec"]["config"]["webhook_url"]
        assert "XXXX" not in shown
        # Sending the masked value back keeps the stored secret.
        spec = r.json()["spec"]
        spec["group_wait"] = 30
        r = await admin.put("/api/v1/channels/ops-slack", json=spec)
        assert r.status_code == 200
        assert "XXXX" not in r.text
    conn = await asyncpg.connect(ingest_server.database_url)
    try:
        stored = await conn.fetchval("SELECT spec FROM channels WHERE name = 'ops-slack'")
    finally:
        await conn.close()
    assert "hooks.example.invalid/T000/B000/XXXX" in stored
    assert '"group_wait": 30' in stored.replace('"group_wait":30', '"group_wait": 30')


async def test_keys_api(ingest_server: IngestServer) -> None:
    async with ingest_server.client() as admin:
        r = await admin.post("/api/v1/keys", json={"name": "ci", "scopes": ["read"]})
        assert r.status_code == 201
        created = r.json()
        assert created["key"].startswith("nzr_")
        listed = (await admin.get("/api/v1/keys")).json()
        assert created["key_id"] in {k["key_id"] for k in listed}
        assert all("key" not in k and "secret_hash" not in k for k in listed)
    async with ingest_server.client(created["key"]) as reader:
        assert (await reader.get("/api/v1/rules")).status_code == 200
        assert (await reader.get("/api/v1/keys")).status_code == 403
    async with ingest_server.client() as admin:
        assert (await admin.delete(f"/api/v1/keys/{created['key_id']}")).status_code == 204
        assert (await admin.delete(f"/api/v1/keys/{created['key_id']}")).status_code == 404
    async with ingest_server.client(created["key"]) as reader:
        assert (await reader.get("/api/v1/rules")).status_code == 401


async def test_health_metrics_and_openapi(ingest_server: IngestServer) -> None:
    async with httpx.AsyncClient(base_url=ingest_server.url) as anonymous:
        assert (await anonymous.get("/healthz")).json() == {"status": "ok"}
        ready = (await anonymous.get("/readyz")).json()
        assert ready["checks"] == {
            "database": "ok", "broker": "ok", "consumer:nazar.ingest.deferred": "ok"}
        metrics = (await anonymous.get("/metrics")).text
        assert "nazar_ingest_http_requests_total" in metrics
        assert "nazar_ingest_consumers " in metrics
        assert "nazar_ingest_broker_reconnects_total" in metrics
        spec = (await anonymous.get("/openapi.json")).json()
        ingest = spec["paths"]["/api/v1/metrics"]["post"]
        assert ingest["operationId"] == "ingest_metrics"
        # Every reference in the document resolves (bodies read by hand
        # have their schemas added to the generated document).
        refs = re.findall(r'"\$ref":\s*"([^"]+)"', orjson.dumps(spec).decode())
        schemas = spec["components"]["schemas"]
        assert {"MetricsIn", "SampleIn", "RuleSpec", "SilenceSpec"} <= set(schemas)
        assert {r.removeprefix("#/components/schemas/") for r in refs} <= set(schemas)
        assert (await anonymous.get("/docs")).status_code == 200
        assert (await anonymous.get("/api/v1/rules")).status_code == 401


def test_cli_keys(ingest_server: IngestServer) -> None:
    env = {**os.environ, "NAZAR_DATABASE_URL": ingest_server.database_url}

    def nazar(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "nazar_cli.main", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    created = nazar("keys", "create", "--scope", "ingest", "--scope", "read", "--name", "cli")
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip().splitlines()[-1]
    assert key.startswith("nzr_") and " " not in key
    key_id = key.split("_")[1]
    listed = nazar("keys", "list")
    assert key_id in listed.stdout and key not in listed.stdout
    assert nazar("keys", "revoke", key_id).returncode == 0
    assert nazar("keys", "revoke", key_id).returncode == 1
    assert nazar("keys", "create", "--scope", "root").returncode != 0

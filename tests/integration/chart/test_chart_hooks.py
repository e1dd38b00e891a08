"""The chart's scripts, run as their pods run them (a separate Python process,
standard library only): the key Secrets hook and the CRD upgrade hook against
a Kubernetes API emulator (kmock), and the `helm test` smoke test against a
real ingest server."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import sys
from typing import Any

import asyncpg
import httpx
import kmock
import pytest
import yaml

from nazar_common.auth import generate_key, split_key
from tests.conftest import ServerThread, wait_ready
from tests.integration.chart.test_chart import CHART, ROOT

BOOTSTRAP = CHART / "files" / "bootstrap.py"
SMOKE_TEST = CHART / "files" / "smoke-test.py"
SECRETS = "v1/secrets"
CRDS = "apiextensions.k8s.io/v1/customresourcedefinitions"


async def run_script(*args: str, env: dict[str, str]) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-I", *args, env={"PATH": os.environ.get("PATH", ""), **env},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode is not None
    return process.returncode, out.decode()


@pytest.fixture
def k8s(kmock: kmock.KubernetesEmulator) -> kmock.KubernetesEmulator:
    kmock.resources[SECRETS] = kmock.ResourceInfo(
        kind="Secret", namespaced=True, verbs={"get", "create", "patch"})
    kmock.resources[CRDS] = kmock.ResourceInfo(
        kind="CustomResourceDefinition", namespaced=False, verbs={"get", "create", "update"})
    return kmock


def api_env(k8s: kmock.KubernetesEmulator) -> dict[str, str]:
    return {"KUBERNETES_API_URL": str(k8s.url).rstrip("/"), "NAMESPACE": "nazar",
            "LABELS": '{"app.kubernetes.io/part-of": "nazar"}'}


def key_in(k8s: kmock.KubernetesEmulator, name: str, key: str) -> str:
    secret = k8s.objects[kmock.resource(SECRETS), "nazar", name]
    return base64.b64decode(secret["data"][key]).decode()


async def test_key_secrets_hook_creates_each_key_once(k8s: kmock.KubernetesEmulator) -> None:
    args = (str(BOOTSTRAP), "secrets", "nazar-admin:admin-key", "nazar-operator-key:api-key")
    code, out = await run_script(*args, env=api_env(k8s))
    assert code == 0, out
    admin, operator = key_in(k8s, "nazar-admin", "admin-key"), key_in(
        k8s, "nazar-operator-key", "api-key")
    assert split_key(admin) and split_key(operator) and admin != operator
    secret = k8s.objects[kmock.resource(SECRETS), "nazar", "nazar-admin"]
    assert secret["metadata"]["labels"] == {"app.kubernetes.io/part-of": "nazar"}
    # Every later install, upgrade or GitOps sync runs it again: nothing changes.
    code, out = await run_script(*args, env=api_env(k8s))
    assert code == 0, out
    assert "nazar-admin: exists, kept" in out
    assert key_in(k8s, "nazar-admin", "admin-key") == admin
    assert key_in(k8s, "nazar-operator-key", "api-key") == operator
    # A Secret without the key (made by hand) gets the key added, other data kept.
    k8s.objects[kmock.resource(SECRETS), "nazar", "mine"] = {
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "mine", "namespace": "nazar"}, "data": {"other": "eA=="}}
    code, out = await run_script(str(BOOTSTRAP), "secrets", "mine:admin-key", env=api_env(k8s))
    assert code == 0, out
    assert split_key(key_in(k8s, "mine", "admin-key"))
    assert k8s.objects[kmock.resource(SECRETS), "nazar", "mine"]["data"]["other"] == "eA=="


async def test_key_secrets_hook_fails_clearly(k8s: kmock.KubernetesEmulator) -> None:
    # The API unreachable, or refusing: the Job fails and says why (no traceback).
    env = {**api_env(k8s), "KUBERNETES_API_URL": "http://127.0.0.1:9"}
    code, out = await run_script(str(BOOTSTRAP), "secrets", "nazar-admin:admin-key", env=env)
    assert code != 0
    assert out.startswith("GET http://127.0.0.1:9/api/v1/namespaces/nazar/secrets/nazar-admin")
    assert "Traceback" not in out
    code, out = await run_script(str(BOOTSTRAP), "crds", "/dev/null", env=api_env(k8s))
    assert code != 0


async def test_crd_upgrade_hook_creates_then_replaces(
    k8s: kmock.KubernetesEmulator, tmp_path: Any
) -> None:
    files = []
    for path in sorted((ROOT / "crds").glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        target = tmp_path / f"{crd['metadata']['name']}.json"
        target.write_text(json.dumps(crd))
        files.append(str(target))
    code, out = await run_script(str(BOOTSTRAP), "crds", *files, env=api_env(k8s))
    assert code == 0, out
    assert out.count(": created") == len(files)
    stored = k8s.objects[kmock.resource(CRDS), None, "alertrules.nazar.dev"]
    assert stored["spec"]["names"]["kind"] == "AlertRule"
    # A newer chart: the CRD's spec becomes exactly its copy, including what it
    # no longer has (a plain merge would leave that behind).
    stored = k8s.objects[kmock.resource(CRDS), None, "alertrules.nazar.dev"]
    stored.patch({"spec": {"names": {"shortNames": ["old"], "singular_old": "x"}}})
    assert k8s.objects[kmock.resource(CRDS), None, "alertrules.nazar.dev"]["spec"]["names"][
        "singular_old"] == "x"
    crd = json.loads((tmp_path / "alertrules.nazar.dev.json").read_text())
    crd["spec"]["versions"][0]["additionalPrinterColumns"] = [
        {"name": "Marker", "type": "string", "jsonPath": ".spec.metric"}]
    (tmp_path / "alertrules.nazar.dev.json").write_text(json.dumps(crd))
    code, out = await run_script(str(BOOTSTRAP), "crds", *files, env=api_env(k8s))
    assert code == 0, out
    assert out.count(": updated") == len(files)
    stored = k8s.objects[kmock.resource(CRDS), None, "alertrules.nazar.dev"]
    assert stored["spec"]["names"] == crd["spec"]["names"]
    columns = stored["spec"]["versions"][0]["additionalPrinterColumns"]
    assert columns == [{"name": "Marker", "type": "string", "jsonPath": ".spec.metric"}]


async def test_helm_test_smoke_test_against_a_real_ingest(ingest_server: Any) -> None:
    env = {"NAZAR_URL": ingest_server.url, "NAZAR_API_KEY": ingest_server.admin_key,
           "NAZAR_TEST_TIMEOUT": "30"}
    code, out = await run_script(str(SMOKE_TEST), env=env)
    assert code == 0, out
    assert "ok   /readyz" in out and "the sample came back" in out
    # A key that may not write fails the test, with the reason.
    code, out = await run_script(str(SMOKE_TEST), env={**env,
                                                       "NAZAR_API_KEY": ingest_server.read_key})
    assert code != 0
    assert "FAIL POST /api/v1/metrics: 403" in out
    # Nothing listening: /readyz fails within the timeout.
    code, out = await run_script(str(SMOKE_TEST), env={
        **env, "NAZAR_URL": "http://127.0.0.1:9", "NAZAR_TEST_TIMEOUT": "1"})
    assert code != 0 and "FAIL /readyz" in out


async def start_bare_ingest(database_url: str, amqp_url: str, **keys: str) -> ServerThread:
    """Ingest as the chart runs it: no key but those it is given, INFO logs."""
    from nazar_ingest.app import create_app
    from nazar_ingest.settings import IngestSettings

    settings = IngestSettings(database_url=database_url, amqp_url=amqp_url,
                              log_level="INFO", **keys)  # type: ignore[arg-type]
    thread = ServerThread(create_app(settings))
    thread.start()
    await wait_ready(thread.url)
    return thread


async def test_ingest_creates_the_keys_the_chart_generates(
    fresh_database_url: str, amqp_url: str
) -> None:
    admin, operator, agent = (generate_key().plaintext for _ in range(3))
    keys = {"bootstrap_admin_key": admin, "bootstrap_operator_key": operator,
            "bootstrap_agent_key": agent}
    rule = {"metric": "cpu.usage_percent",
            "params": {"kind": "threshold", "comparator": ">", "value": 90}}
    thread = await start_bare_ingest(fresh_database_url, amqp_url, **keys)
    try:
        for key in (admin, operator):
            async with httpx.AsyncClient(base_url=thread.url, timeout=30,
                                         headers={"Authorization": f"Bearer {key}"}) as client:
                r = await client.put("/api/v1/rules/chart-key-check", json=rule)
                assert r.status_code in (200, 201), r.text
        # The operator's key writes rules, not channels.
        async with httpx.AsyncClient(base_url=thread.url, timeout=30,
                                     headers={"Authorization": f"Bearer {operator}"}) as client:
            r = await client.put("/api/v1/channels/chart-key-check", json={
                "config": {"type": "webhook", "url": "https://hooks.example.invalid/x"}})
            assert r.status_code == 403, r.text
        # The agent's key writes samples and nothing else.
        async with httpx.AsyncClient(base_url=thread.url, timeout=30,
                                     headers={"Authorization": f"Bearer {agent}"}) as client:
            r = await client.post("/api/v1/metrics", json={
                "host": "node-1", "samples": [{"metric": "cpu.usage_percent", "value": 1}]})
            assert r.status_code == 202, r.text
            assert (await client.get("/api/v1/rules")).status_code == 403
    finally:
        thread.stop()
    conn = await asyncpg.connect(fresh_database_url)
    try:
        scopes = {r["name"]: r["scopes"] for r in await conn.fetch(
            "SELECT name, scopes FROM api_keys")}
        assert scopes == {"bootstrap": ["admin"], "operator": ["rules"], "agent": ["ingest"]}
        # The operator's key can be revoked alone, and a restart does not bring it back.
        await conn.execute("UPDATE api_keys SET revoked_at = now() WHERE name = 'operator'")
    finally:
        await conn.close()
    thread = await start_bare_ingest(fresh_database_url, amqp_url, **keys)
    try:
        for key, status in ((operator, 401), (admin, 200)):
            async with httpx.AsyncClient(base_url=thread.url, timeout=30,
                                         headers={"Authorization": f"Bearer {key}"}) as client:
                assert (await client.get("/api/v1/rules")).status_code == status
    finally:
        thread.stop()

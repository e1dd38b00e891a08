import asyncio, logging
logging.getLogger("kopf").setLevel(logging.DEBUG)
logging.basicConfig(level=logging.DEBUG)
from tests.integration.operator.test_operator_rules import BASE, alert_rule
from tests.integration.operator.conftest import *

async def test_dbg(operator, ingest_server):
    logging.getLogger("kopf").setLevel(logging.DEBUG)
    resp = await operator.post(f"{BASE}/alertrules", json=alert_rule("high-cpu", {"metric": "cpu", "params": {"kind": "threshold", "value": 1}}))
    print(resp.status, await resp.text())
    await asyncio.sleep(3)
    for r in operator:
        print(r.method, r.url, r.params, str(r.data)[:200])
    print(dict(operator.objects[ALERT_RULES_RES, NAMESPACE, "high-cpu"]))

async def test_disc(k8s):
    for u in ["/apis", "/apis/nazar.dev/v1alpha1", "/api/v1"]:
        r = await k8s.get(u); print(u, r.status, (await r.text())[:800])

async def test_ns(k8s):
    r = await k8s.get("/api/v1/namespaces"); print("NS", r.status, (await r.json()).get("details", {}).get("traceback", "")[-1500:])

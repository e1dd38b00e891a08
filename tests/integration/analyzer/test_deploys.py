"""Rules that know about deploys, against the real analyzer, PostgreSQL and
RabbitMQ: alerts that start after a deploy are annotated with it; baseline and
anomaly alerts are held in the grace period while the detector re-learns;
threshold alerts are never held."""

from __future__ import annotations

import asyncio
import math
import time
from typing import Any

import pytest
from prometheus_client import REGISTRY

from tests.integration.analyzer.conftest import Env, wait_for

pytestmark = pytest.mark.timeout(240)

STEP = 10.0


async def _deploy(env: Env, body: dict[str, Any]) -> dict[str, Any]:
    async with env.ingest.client(env.ingest.ingest_key) as client:
        r = await client.post("/api/v1/events", json=body)
        assert r.status_code == 201, r.text
        event: dict[str, Any] = r.json()

    async def known() -> bool:  # NOTIFY nazar_events -> reloaded
        return any(e.id == event["id"] for e in env.analyzer.engine.deploys.events)

    await wait_for(known, 10, "event loaded by the analyzer")
    return event


def _counter(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


async def test_alert_after_deploy_is_annotated(env: Env) -> None:
    t0 = time.time() - 1800
    roles = {"an-web-1": {"role": "web"}, "an-db-1": {"role": "db"}}
    for host, labels in roles.items():  # as agents do, every request carries the host labels
        await env.post(host, [{"metric": "dp.err", "value": 0, "timestamp": t0}], labels=labels)
    await env.put_rule({
        "name": "dp-annotate", "metric": "dp.err",
        "params": {"kind": "threshold", "comparator": ">", "value": 5},
        "deploys": {"annotate_within": "15m"},
        "annotations": {"summary": "errors on {{ host }} ({{ deploy or 'no deploy' }})"}})
    event = await _deploy(env, {"service": "web", "version": "v1.2.3",
                                "selector": {"role": "web"}, "start": t0 + 60,
                                "link": "https://ci.example/run/7"})
    # 4 minutes after the deploy: annotated; the untouched db host is not
    for host, labels in roles.items():
        await env.post(host, [{"metric": "dp.err", "value": v, "timestamp": t0 + 300 + i * STEP}
                              for i, v in enumerate([9, 9, 0])], labels=labels)
    events = await env.collector.wait("dp-annotate", ["firing", "resolved"] * 2)
    by_host = {(e.host, e.state): e for e in events}
    firing = by_host[("an-web-1", "firing")]
    assert firing.annotations["deploy"] == "started 4 min after deploy web v1.2.3"
    assert firing.annotations["deploy_event_id"] == str(event["id"])
    assert firing.annotations["deploy_link"] == "https://ci.example/run/7"
    assert firing.annotations["summary"] == (
        "errors on an-web-1 (started 4 min after deploy web v1.2.3)")
    assert firing.explanation and firing.explanation.endswith(
        f"started 4 min after deploy web v1.2.3 (event {event['id']})")
    # the alert keeps its annotation when it resolves, and in the alerts table
    assert by_host[("an-web-1", "resolved")].annotations["deploy_event_id"] == str(event["id"])
    row = await env.pool.fetchrow(
        "SELECT annotations->>'deploy' AS deploy FROM alerts WHERE id = $1", firing.alert_id)
    assert row["deploy"] == "started 4 min after deploy web v1.2.3"
    other = by_host[("an-db-1", "firing")]
    assert "deploy" not in other.annotations
    assert other.annotations["summary"] == "errors on an-db-1 (no deploy)"
    # beyond the window: not annotated
    await env.post("an-web-1", [{"metric": "dp.err", "value": 9, "timestamp": t0 + 1500}],
                   labels=roles["an-web-1"])
    events = await env.collector.wait("dp-annotate", ["x"] * 5)
    late = [e for e in events if e.host == "an-web-1" and e.state == "firing"][-1]
    assert late.alert_id != firing.alert_id and "deploy" not in late.annotations


def _noise(i: int) -> float:
    return 5 * math.sin(i / 6) + ((i * 7919) % 13) / 13


async def test_deploy_holds_learning_rules_and_the_detector_relearns(env: Env) -> None:
    """A rolling deploy (5 minutes) moves the level from 100 to 300. On the
    deployed host the baseline and anomaly rules stay quiet: held while the
    old detector sees the rollout, then re-learnt from the deploy's end; on a
    host without the deploy the same shift alerts; a threshold rule alerts on
    the deployed host at once; after re-learning, a real spike still alerts."""
    now = time.time()
    t_hist = now - 3 * 3600
    hist = [(t_hist + i * STEP, 100 + _noise(i)) for i in range(360)]
    hosts = {"hold-web-1": {"role": "web"}, "hold-web-2": {"role": "canary"}}
    for host, labels in hosts.items():
        await env.post(host, [{"metric": "dp.lat", "value": v, "timestamp": t}
                              for t, v in hist], labels=labels)
    deploys = {"hold_for": "10m", "annotate_within": "30m"}
    await env.put_rule({
        "name": "dp-base", "metric": "dp.lat", "deploys": deploys,
        "params": {"kind": "baseline", "window": 3600, "min_history": 600,
                   "seasonality": "none", "direction": "above"}})
    await env.put_rule({
        "name": "dp-anomaly", "metric": "dp.lat", "deploys": deploys,
        "params": {"kind": "anomaly", "algorithm": "ensemble", "training_window": 3600,
                   "retrain_every": 3600, "recent_points": 1, "min_fraction": 1.0}})
    await env.put_rule({
        "name": "dp-thresh", "metric": "dp.lat", "deploys": {"annotate_within": "30m"},
        "params": {"kind": "threshold", "comparator": ">", "value": 250}})
    # hold_for on a rule that does not learn is refused
    async with env.ingest.client() as admin:
        r = await admin.put("/api/v1/rules/dp-bad", json={
            "name": "dp-bad", "metric": "dp.lat", "deploys": {"hold_for": "10m"},
            "params": {"kind": "threshold", "value": 1}})
        assert r.status_code == 400 and r.json()["errors"][0]["loc"] == "deploys"
        assert "baseline and anomaly rules only" in r.json()["errors"][0]["msg"]
    t_deploy = hist[-1][0] + STEP
    event = await _deploy(env, {"service": "web", "version": "v2", "selector": {"role": "web"},
                                "start": t_deploy, "end": t_deploy + 300})
    held_before = _counter("nazar_analyzer_deploy_holds_total")
    relearn_before = _counter("nazar_analyzer_detector_relearns_total")
    # 25 minutes at the new level (5 rolling out, 10 re-learning, 10 after), then a spike
    after = [(t_deploy + i * STEP, 300 + _noise(i)) for i in range(150)]
    spike_t = t_deploy + 150 * STEP
    for host, labels in hosts.items():
        await env.post(host, [{"metric": "dp.lat", "value": v, "timestamp": t}
                              for t, v in after], labels=labels)
    # the threshold rule is never held: it fires on the deployed host at once, annotated
    thresh = await env.collector.wait("dp-thresh", ["firing", "firing"])
    web = next(e for e in thresh if e.host == "hold-web-1")
    assert web.at.timestamp() == pytest.approx(t_deploy, abs=1e-3)
    assert web.annotations["deploy_event_id"] == str(event["id"])
    assert web.annotations["deploy"] == "started during deploy web v2, 0 s after it began"
    # the host without the deploy: the shift is an anomaly for both learning rules
    await env.collector.wait("dp-base", ["firing"])
    await env.collector.wait("dp-anomaly", ["firing"])

    async def evaluated() -> bool:
        last = await env.pool.fetchval(
            "SELECT min(a.last_ts) FROM analyzer_state a JOIN rules r ON r.id = a.rule_id "
            "WHERE r.name IN ('dp-base', 'dp-anomaly') AND a.host = 'hold-web-1'")
        return last is not None and last >= after[-1][0] - 1e-3

    await wait_for(evaluated, 30, "deployed host evaluated")
    for rule in ("dp-base", "dp-anomaly"):
        assert {e.host for e in env.collector.of(rule)} == {"hold-web-2"}, rule
    assert _counter("nazar_analyzer_deploy_holds_total") > held_before
    assert _counter("nazar_analyzer_detector_relearns_total") >= relearn_before + 2
    # re-learnt, not blind: a spike on the new level alerts on the deployed host
    await env.post("hold-web-1", [{"metric": "dp.lat", "value": 900.0, "timestamp": spike_t}],
                   labels=hosts["hold-web-1"])
    for rule in ("dp-base", "dp-anomaly"):
        def spiked(rule: str = rule) -> list[Any]:
            return [e for e in env.collector.of(rule)
                    if e.host == "hold-web-1" and e.state == "firing"]

        async def fired(rule: str = rule) -> bool:
            return bool(spiked(rule))

        await wait_for(fired, 20, f"{rule} fires on the spike")
        [spike] = spiked()
        assert spike.value == 900.0 and spike.at.timestamp() == pytest.approx(spike_t, abs=1e-3)
        assert spike.expected is not None and spike.expected.high is not None
        assert 250 < spike.expected.high < 900  # the band of the new level, not the old one
        assert spike.annotations["deploy"] == "started 25 min after deploy web v2"
    # the detector re-learnt from the deploy's end; its snapshot keeps that origin
    await wait_for(lambda: env.pool.fetchval(
        "SELECT count(*) = 2 FROM analyzer_models m JOIN rules r ON r.id = m.rule_id "
        "JOIN series s ON s.id = m.series_id WHERE r.name IN ('dp-base', 'dp-anomaly') "
        "AND s.host = 'hold-web-1' AND abs(m.origin - $1) < 1e-3", t_deploy + 300), 10,
        "snapshot origin")
    await asyncio.sleep(0.5)


async def test_restart_after_deploy_rebuilds_from_the_deploy(env: Env) -> None:
    """A replica that starts after a deploy (no snapshot taken after it) warms
    the detector up from the deploy on, not from the old level."""
    now = time.time()
    t_hist = now - 3600 - 600  # recent: the alert must not go to nodata meanwhile
    hist = [(t_hist + i * STEP, 50 + _noise(i)) for i in range(360)]
    await env.post("rs-web-1", [{"metric": "dp.rs", "value": v, "timestamp": t}
                                for t, v in hist], labels={"role": "rsweb"})
    await env.put_rule({
        "name": "dp-rs", "metric": "dp.rs", "deploys": {"hold_for": "5m"},
        "params": {"kind": "baseline", "window": 3600, "min_history": 600,
                   "seasonality": "none", "direction": "both"}})
    t_deploy = hist[-1][0] + STEP
    # points after the deploy are stored before anyone knows about it ...
    after = [(t_deploy + i * STEP, 20 + _noise(i)) for i in range(60)]
    await env.post("rs-web-1", [{"metric": "dp.rs", "value": v, "timestamp": t}
                                for t, v in after[:1]], labels={"role": "rsweb"})
    await env.collector.wait("dp-rs", ["firing"])  # the drop alerts: no deploy known yet
    # ... then the deploy is recorded (late, as a slow pipeline would) and the
    # analyzer restarts: the rebuilt detector learns from the deploy on
    await _deploy(env, {"service": "rs", "selector": {"role": "rsweb"}, "start": t_deploy})
    await env.analyzer.stop()
    env.analyzer = await env.start_analyzer()
    await env.post("rs-web-1", [{"metric": "dp.rs", "value": v, "timestamp": t}
                                for t, v in after[1:]], labels={"role": "rsweb"})
    events = await env.collector.wait("dp-rs", ["firing", "resolved"])
    assert [e.state for e in events] == ["firing", "resolved"]
    assert "still learning" in (events[1].explanation or "")
    await wait_for(lambda: env.pool.fetchval(
        "SELECT abs(m.origin - $1) < 1e-3 FROM analyzer_models m JOIN rules r "
        "ON r.id = m.rule_id WHERE r.name = 'dp-rs'", t_deploy), 10,
        "snapshot re-learnt from the deploy")
    state = await env.pool.fetchval(
        "SELECT a.state FROM analyzer_state a JOIN rules r ON r.id = a.rule_id "
        "WHERE r.name = 'dp-rs'")
    assert state == "normal"

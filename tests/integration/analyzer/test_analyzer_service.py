"""The analyzer against real PostgreSQL and RabbitMQ: threshold, hysteresis,
idempotency, two replicas, restart, absence, baseline / anomaly, backtest and
the alerts API."""

from __future__ import annotations

import asyncio
import math
import time
import uuid

import aio_pika
import pytest

from nazar_common.messaging.partitioning import split_batch
from nazar_common.messaging.topology import SAMPLES_EXCHANGE, partition_routing_key
from nazar_common.schemas.wire import SampleBatchV1, SeriesRef
from tests.conftest import free_port, start_ingest
from tests.integration.analyzer.conftest import Env, wait_for

pytestmark = pytest.mark.timeout(240)


async def _series_id(env: Env, metric: str, host: str) -> int:
    async def found() -> int | None:
        return await env.pool.fetchval(
            "SELECT id FROM series WHERE metric = $1 AND host = $2", metric, host)
    return int(await wait_for(found, 10, f"series {metric}@{host}"))


async def _publish(env: Env, batches: list[SampleBatchV1]) -> None:
    connection = await aio_pika.connect(env.amqp_url)
    try:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(SAMPLES_EXCHANGE)
        for b in batches:  # as ingest's outbox relay does: one message per partition
            for part, message_id, body in split_batch(b.to_bytes(), env.partitions):
                await exchange.publish(
                    aio_pika.Message(body, message_id=message_id,
                                     delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
                    routing_key=partition_routing_key(part),
                )
    finally:
        await connection.close()


async def test_threshold_fires_after_for_and_resolves_with_hysteresis(env: Env) -> None:
    await env.put_rule({
        "name": "t-cpu", "metric": "it.cpu", "selector": {"hosts": ["th-1"]},
        "params": {"kind": "threshold", "comparator": ">", "value": 90, "recovery_value": 70},
        "for": 20, "severity": "critical", "labels": {"team": "ops"},
        "annotations": {"summary": "{{ host }} cpu {{ value | round(1) }} (>{{ expected.high }})"},
    })
    t0 = time.time() - 300
    values = [50, 95, 96, 97, 99, 85, 75, 60, 55]  # pending at +10, firing at +30, resolved at +70
    # One request: the points reach the analyzer in order. (Separate requests
    # posted back to back may be analysed out of order, and points older than
    # a series' last evaluated point are not evaluated: see docs/alerts.md.)
    await env.post(
        "th-1",
        [{"metric": "it.cpu", "value": v, "timestamp": t0 + 10 * i} for i, v in enumerate(values)],
    )
    events = await env.collector.wait("t-cpu", ["pending", "firing", "resolved"])
    await asyncio.sleep(1.0)  # nothing more may arrive
    events = env.collector.of("t-cpu")
    assert [(e.previous_state, e.state) for e in events] == [
        ("normal", "pending"), ("pending", "firing"), ("firing", "resolved")]
    _, firing, resolved = events
    assert firing.at.timestamp() == pytest.approx(t0 + 30, abs=1e-3)
    assert resolved.at.timestamp() == pytest.approx(t0 + 70, abs=1e-3)  # 75 is not below 70
    assert firing.value == 97 and firing.expected and firing.expected.high == 90
    assert firing.annotations["summary"] == "th-1 cpu 97.0 (>90.0)"
    assert firing.labels["team"] == "ops" and firing.severity == "critical"
    assert len({e.id for e in events}) == 3 and len({e.alert_id for e in events}) == 1
    row = await env.pool.fetchrow("SELECT state, seq FROM alerts WHERE id = $1", firing.alert_id)
    assert (row["state"], row["seq"]) == ("resolved", 3)


async def test_redelivered_batch_changes_nothing(env: Env) -> None:
    await env.put_rule({"name": "t-dup", "metric": "it.dup",
                        "params": {"kind": "threshold", "value": 10}})
    await env.post("dup-1", [{"metric": "it.dup", "value": 1}])
    sid = await _series_id(env, "it.dup", "dup-1")
    now = time.time()
    batch = SampleBatchV1(series=[SeriesRef(metric="it.dup", host="dup-1", id=sid)],
                          series_index=[0, 0], times=[now + 1, now + 2], values=[50, 60])
    await _publish(env, [batch, batch, batch])
    await env.collector.wait("t-dup", ["firing"])
    await asyncio.sleep(1.5)
    assert [e.state for e in env.collector.of("t-dup")] == ["firing"]
    assert await env.pool.fetchval("SELECT count(*) FROM alerts WHERE rule_name = 't-dup'") == 1


async def test_two_instances_do_not_duplicate(env: Env) -> None:
    second = await env.start_analyzer(analyzer_prefetch=4)

    async def balanced() -> bool:  # ticks make owners known; each takes half
        return len(env.analyzer.owned) == len(second.owned) == env.partitions // 2

    await wait_for(balanced, 20, "the partitions shared by the two replicas")
    await env.put_rule({"name": "t-ha", "metric": "it.ha",
                        "params": {"kind": "threshold", "value": 10}})
    hosts = [f"ha-{i}" for i in range(12)]
    for h in hosts:
        await env.post(h, [{"metric": "it.ha", "value": 0}])
    ids = {h: await _series_id(env, "it.ha", h) for h in hosts}
    now = time.time()
    before = (env.analyzer.batches_done, second.batches_done)
    batches = []
    for k in range(10):  # every batch breaches, for every series: one alert each
        refs = [SeriesRef(metric="it.ha", host=h, id=ids[h]) for h in hosts]
        batches.append(SampleBatchV1(
            series=refs, series_index=list(range(len(hosts))),
            times=[now + 10 + k] * len(hosts), values=[100.0 + k] * len(hosts)))
    await _publish(env, batches)
    events = await env.collector.wait("t-ha", ["firing"] * len(hosts))
    await asyncio.sleep(1.0)
    events = env.collector.of("t-ha")
    assert sorted(e.host for e in events) == sorted(hosts)
    assert all(e.state == "firing" for e in events)
    assert env.analyzer.batches_done > before[0] and second.batches_done > before[1]
    # resolution: one later batch of normal values
    refs = [SeriesRef(metric="it.ha", host=h, id=ids[h]) for h in hosts]
    await _publish(env, [SampleBatchV1(series=refs, series_index=list(range(len(hosts))),
                                       times=[now + 100] * len(hosts), values=[0.0] * len(hosts))])
    await env.collector.wait("t-ha", ["x"] * (2 * len(hosts)))
    await asyncio.sleep(0.5)
    events = env.collector.of("t-ha")
    assert sorted(e.state for e in events) == ["firing"] * 12 + ["resolved"] * 12
    assert len({e.id for e in events}) == 24
    await second.stop()


async def test_restart_keeps_state(env: Env) -> None:
    await env.put_rule({"name": "t-restart", "metric": "it.rs",
                        "params": {"kind": "threshold", "value": 10}, "keep_firing_for": 0})
    t0 = time.time() - 100
    await env.post("rs-1", [{"metric": "it.rs", "value": 50, "timestamp": t0}])
    fired = (await env.collector.wait("t-restart", ["firing"]))[0]
    await env.analyzer.stop()
    env.analyzer = await env.start_analyzer()
    await env.post("rs-1", [{"metric": "it.rs", "value": 60, "timestamp": t0 + 10}])
    await env.post("rs-1", [{"metric": "it.rs", "value": 1, "timestamp": t0 + 20}])
    events = await env.collector.wait("t-restart", ["firing", "resolved"])
    await asyncio.sleep(0.5)
    events = env.collector.of("t-restart")
    assert [e.state for e in events] == ["firing", "resolved"]
    assert events[1].alert_id == fired.alert_id


async def test_absence_fires_when_host_stops(env: Env) -> None:
    await env.put_rule({"name": "t-gone", "selector": {"hosts": ["gone-1"]},
                        "params": {"kind": "absence", "after": 3}})
    await env.post("gone-1", [{"metric": "it.any", "value": 1}])
    events = await env.collector.wait("t-gone", ["firing"], timeout=30)
    assert events[0].host == "gone-1" and "not reported" in (events[0].explanation or "")
    await env.post("gone-1", [{"metric": "it.any", "value": 1}])
    events = await env.collector.wait("t-gone", ["firing", "resolved"], timeout=30)
    assert [e.state for e in events][:2] == ["firing", "resolved"]


def _synthetic(t0: float, n: int, step: float) -> list[tuple[float, float]]:
    return [(t0 + i * step, 100 + 5 * math.sin(i / 6) + ((i * 7919) % 13) / 13)
            for i in range(n)]


async def test_baseline_and_anomaly_fire_on_spike(env: Env) -> None:
    now = time.time()
    points = _synthetic(now - 3600, 355, 10.0)
    await env.post("sp-1", [{"metric": "it.lat", "value": v, "timestamp": t} for t, v in points])
    await _series_id(env, "it.lat", "sp-1")
    await env.put_rule({
        "name": "t-base", "metric": "it.lat",
        "params": {"kind": "baseline", "window": 3600, "min_history": 600, "seasonality": "none",
                   "direction": "above"},
        "annotations": {"summary": "{{ explanation }}"}})
    await env.put_rule({
        "name": "t-iforest", "metric": "it.lat",
        # ensemble = isolation forest + robust baseline (the forest alone, trained
        # on a few hundred points, does not yet separate this spike reliably)
        "params": {"kind": "anomaly", "algorithm": "ensemble", "training_window": 3600,
                   "retrain_every": 3600,
                   "recent_points": 1, "min_fraction": 1.0, "score_threshold": 0.5}})
    normal_t = points[-1][0] + 10
    await env.post("sp-1", [{"metric": "it.lat", "value": 101.0, "timestamp": normal_t}])
    await asyncio.sleep(1.0)
    assert env.collector.of("t-base") == [] and env.collector.of("t-iforest") == []
    await env.post("sp-1", [{"metric": "it.lat", "value": 400.0, "timestamp": normal_t + 10}])
    base = (await env.collector.wait("t-base", ["firing"]))[0]
    forest = (await env.collector.wait("t-iforest", ["firing"]))[0]
    for e in (base, forest):
        assert e.state == "firing" and e.value == 400.0
        assert e.expected is not None and e.expected.high is not None and e.expected.high < 400
        assert e.score is not None and e.score >= 0.5
        assert e.explanation and "above the expected band" in e.explanation
        assert e.contributors
    assert "forest" in (forest.explanation or "")
    # the detectors were warmed up from stored history and are snapshotted
    await wait_for(lambda: env.pool.fetchval(
        "SELECT count(*) = 2 FROM analyzer_models m JOIN rules r ON r.id = m.rule_id "
        "WHERE r.name IN ('t-base', 't-iforest') AND m.points >= 356"), 10, "snapshots")


async def test_a_new_series_detector_is_rebuilt_on_its_measured_interval(env: Env) -> None:
    """A rule's detector for a series that appears after it (a new host) is
    made on the series' first sample, when no interval can be measured; it
    is not stored with the default interval it had to assume, and once three
    points are stored it is rebuilt on the measured one (10 s here)."""
    await env.put_rule({
        "name": "t-newhost", "metric": "it.new",
        "params": {"kind": "baseline", "window": 3600, "min_history": 600,
                   "seasonality": "none"}})
    await asyncio.sleep(2.0)  # the analyzer has the rule before the host's first sample
    t0 = time.time() - 300
    for k in range(8):  # one sample a batch, as an agent pushes them
        await env.post("nh-1", [{"metric": "it.new", "value": 50.0 + k % 3,
                                 "timestamp": t0 + 10.0 * k}])
        await asyncio.sleep(0.3)
    sid = await _series_id(env, "it.new", "nh-1")

    async def stored() -> float | None:
        return await env.pool.fetchval(
            "SELECT m.interval_s FROM analyzer_models m JOIN rules r ON r.id = m.rule_id "
            "WHERE r.name = 't-newhost' AND m.series_id = $1 AND m.points >= 8", sid)

    assert await wait_for(stored, 15, "snapshot of the new series' detector") == 10.0
    blob = await env.pool.fetchval(
        "SELECT m.state FROM analyzer_models m JOIN rules r ON r.id = m.rule_id "
        "WHERE r.name = 't-newhost' AND m.series_id = $1", sid)
    from nazar_analyzer.detection.composite import split_detector_bytes

    parts = split_detector_bytes(bytes(blob))
    assert parts is not None and parts[0].interval_s == 10.0


async def test_backtest_via_api(env: Env) -> None:
    rule = {"name": "bt", "metric": "it.cpu", "selector": {"hosts": ["th-1"]},
            "params": {"kind": "threshold", "comparator": ">", "value": 90,
                       "recovery_value": 70}, "for": 20}
    async with env.ingest.client(env.ingest.read_key) as client:
        r = await client.post("/api/v1/rules/backtest", json={
            "rule": rule, "start": time.time() - 3600, "end": time.time()})
        assert r.status_code == 200, r.text
        body = r.json()
        assert [(t["from"], t["to"]) for t in body["transitions"]] == [
            ("normal", "pending"), ("pending", "firing"), ("firing", "resolved")]
        assert body["transitions"][1]["value"] == 97
        assert body["counts"] == {"pending": 1, "firing": 1, "resolved": 1}
        assert body["resolution"] == "raw" and body["series"] == 1
        # nothing was stored
        assert await env.pool.fetchval("SELECT count(*) FROM alerts WHERE rule_name = 'bt'") == 0
        r = await client.post("/api/v1/rules/backtest", json={"rule": {"name": "bad"}})
        assert r.status_code == 400
        assert r.headers["content-type"].startswith("application/problem+json")
    lonely = await start_ingest(env.database_url, env.amqp_url,
                                analyzer_url=f"http://127.0.0.1:{free_port()}")
    try:
        async with lonely.client(lonely.read_key) as client:
            r = await client.post("/api/v1/rules/backtest", json={"rule": rule})
            assert r.status_code == 503
            assert r.json()["type"].endswith("/unavailable")
    finally:
        lonely.thread.stop()


async def test_alerts_api_filters_and_ack(env: Env) -> None:
    async with env.ingest.client(env.ingest.read_key) as client:
        r = await client.get("/api/v1/alerts", params={"rule": "t-cpu"})
        assert r.status_code == 200
        items = r.json()["items"]
        assert len(items) == 1 and items[0]["state"] == "resolved" and items[0]["host"] == "th-1"
        alert_id = items[0]["id"]
        r = await client.get("/api/v1/alerts", params={"state": "open", "rule": "t-cpu"})
        assert r.json()["items"] == []
        r = await client.get("/api/v1/alerts", params={"host": "ha-3"})
        assert [a["rule_name"] for a in r.json()["items"]] == ["t-ha"]
        r = await client.get("/api/v1/alerts", params={"limit": 2})
        assert len(r.json()["items"]) == 2 and r.json()["next_before_id"] is not None
        r = await client.get("/api/v1/alerts",
                             params={"until": "2000-01-01T00:00:00Z", "rule": "t-cpu"})
        assert r.json()["items"] == []
        r = await client.get(f"/api/v1/alerts/{alert_id}")
        body = r.json()
        assert [(t["from"], t["to"]) for t in body["transitions"]] == [
            ("normal", "pending"), ("pending", "firing"), ("firing", "resolved")]
        assert (await client.get("/api/v1/alerts/999999")).status_code == 404
        r = await client.post(f"/api/v1/alerts/{alert_id}/ack", json={"comment": "seen"})
        assert r.status_code == 403
    async with env.ingest.client(env.ingest.admin_key) as client:
        r = await client.post(f"/api/v1/alerts/{alert_id}/ack", json={"comment": "seen"})
        assert r.status_code == 200
        assert r.json()["acked_at"] and r.json()["ack_comment"] == "seen"


async def test_deleted_rule_resolves_its_alerts(env: Env) -> None:
    await env.put_rule({"name": "t-del", "metric": "it.del",
                        "params": {"kind": "threshold", "value": 10}})
    await env.post("del-1", [{"metric": "it.del", "value": 50}])
    await env.collector.wait("t-del", ["firing"])
    async with env.ingest.client() as client:
        assert (await client.delete("/api/v1/rules/t-del")).status_code == 204
    events = await env.collector.wait("t-del", ["firing", "resolved"])
    assert events[1].state == "resolved" and "deleted" in (events[1].explanation or "")
    assert uuid.UUID(str(events[1].id))


async def test_cli_rules_test_prints_transitions(env: Env, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from typer.testing import CliRunner

    from nazar_cli.main import app

    def invoke(args: list[str], envvars: dict[str, str]):  # type: ignore[no-untyped-def]
        # in a thread: the analyzer answering the backtest runs on this event loop
        return asyncio.to_thread(CliRunner().invoke, app, args, env=dict(envvars))

    path = tmp_path / "rule.yaml"
    path.write_text(
        "name: cli-bt\nmetric: it.cpu\nselector:\n  hosts: [th-1]\n"
        "params:\n  kind: threshold\n  value: 90\n  recovery_value: 70\nfor: 20\n"
    )
    envvars = {"NAZAR_API_URL": env.ingest.url, "NAZAR_API_KEY": env.ingest.read_key}
    result = await invoke(["rules", "test", str(path), "--start", "2h"], envvars)
    assert result.exit_code == 0, result.output
    assert "pending -> firing" in result.output and "firing -> resolved" in result.output
    assert "would have fired 1 time(s), resolved 1 time(s)" in result.output
    result = await invoke(["rules", "apply", str(path)], envvars)
    assert result.exit_code == 1 and "403" in result.output
    envvars["NAZAR_API_KEY"] = env.ingest.admin_key
    result = await invoke(["rules", "apply", str(path)], envvars)
    assert result.exit_code == 0 and "created rule cli-bt" in result.output
    result = await invoke(["rules", "list"], envvars)
    assert "cli-bt\tthreshold\tit.cpu" in result.output

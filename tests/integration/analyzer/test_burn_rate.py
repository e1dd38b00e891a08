"""burn_rate rules against the real analyzer, ingest, PostgreSQL and RabbitMQ:
multi-window, multi-burn-rate alerts fire on constructed error ratios (the
fast 1h/5m pair at 14.4x, the slow 6h/30m pair at 6x) and resolve once the
short window stops burning."""

from __future__ import annotations

import math
import time
from typing import Any

import pytest

from tests.integration.analyzer.conftest import Env

pytestmark = pytest.mark.timeout(240)

STEP = 60.0


async def _slo(env: Env, name: str, good: str, total: str) -> None:
    async with env.ingest.client() as admin:
        r = await admin.put(f"/api/v1/slos/{name}", json={
            "name": name, "objective": 99.9, "window": "30d",
            "selector": {"match_labels": {"role": "api"}},
            "indicator": {"kind": "ratio", "good": {"metric": good},
                          "total": {"metric": total}}})
        assert r.status_code in (200, 201), r.text


def _counts(good: str, total: str, t: float, n_total: float, n_bad: float) -> list[dict[str, Any]]:
    return [{"metric": total, "value": n_total, "timestamp": t},
            {"metric": good, "value": n_total - n_bad, "timestamp": t}]


async def test_fast_burn_fires_and_resolves(env: Env) -> None:
    """Seven hours of 1000 requests a minute; in the last 50 minutes 2 % fail.
    The 1-hour window burns 16.7x and the 5-minute one 20x: the fast pair
    fires (the 6-hour window burns 2.8x: the slow pair does not). Then many
    good requests in the last minutes: the 5-minute window drops to 0.3x and
    the alert resolves while the 1-hour window still burns."""
    now = math.floor(time.time()) - 5 + 0.5
    samples: list[dict[str, Any]] = []
    for i in range(7 * 60):
        t = now - (7 * 60 - 1 - i) * STEP
        samples += _counts("br.ok", "br.requests", t, 1000, 20 if now - t < 50 * 60 else 0)
    await env.post("br-api-1", samples, labels={"role": "api"})
    await _slo(env, "br-api", "br.ok", "br.requests")
    await env.put_rule({"name": "br-fast", "severity": "critical",
                        "params": {"kind": "burn_rate", "slo": "br-api"},
                        "annotations": {"summary": "{{ explanation }}"}})
    (firing,) = await env.collector.wait("br-fast", ["firing"], timeout=30)
    assert firing.state == "firing" and firing.severity == "critical"
    assert firing.host == "" and firing.labels["slo"] == "br-api"
    assert firing.explanation is not None
    assert "burns its error budget 16.67x over 1h and 20x over 5m (alert at 14.4x)" in (
        firing.explanation), firing.explanation
    assert firing.annotations["summary"] == firing.explanation
    assert firing.value == pytest.approx(1000 / 60000 / 0.001, rel=0.02)

    recover = []
    for k in range(3):
        recover += _counts("br.ok", "br.requests", now - 90 - 30 * k, 100_000, 0)
    await env.post("br-api-1", recover, labels={"role": "api"})
    events = await env.collector.wait("br-fast", ["firing", "resolved"], timeout=30)
    resolved = events[-1]
    assert resolved.state == "resolved" and resolved.alert_id == firing.alert_id
    assert resolved.explanation and "over 5m (alert at 14.4x)" in resolved.explanation
    row = await env.pool.fetchrow("SELECT kind, state, host FROM alerts WHERE id = $1",
                                  firing.alert_id)
    assert dict(row) == {"kind": "burn_rate", "state": "resolved", "host": ""}


async def test_slow_burn_fires_on_the_slow_pair_only(env: Env) -> None:
    """A steady 0.7 % error ratio: 7x in every window, so the slow pair (6x)
    fires and the fast one (14.4x) does not; a rule with only the fast pair
    stays quiet on the same SLO."""
    now = math.floor(time.time()) - 5 + 0.5
    samples: list[dict[str, Any]] = []
    for i in range(7 * 60):
        t = now - (7 * 60 - 1 - i) * STEP
        samples += _counts("br.ok2", "br.requests2", t, 1000, 7)
    await env.post("br-api-2", samples, labels={"role": "api"})
    await _slo(env, "br-batch", "br.ok2", "br.requests2")
    await env.put_rule({"name": "br-fast-only",
                        "params": {"kind": "burn_rate", "slo": "br-batch",
                                   "windows": [{"long": "1h", "short": "5m", "factor": 14.4}]}})
    await env.put_rule({"name": "br-slow", "params": {"kind": "burn_rate", "slo": "br-batch"}})
    (firing,) = await env.collector.wait("br-slow", ["firing"], timeout=30)
    assert firing.explanation and "7x over 6h and 7x over 30m (alert at 6x)" in (
        firing.explanation), firing.explanation
    st = await env.pool.fetchval(
        "SELECT state FROM analyzer_state s JOIN rules r ON r.id = s.rule_id "
        "WHERE r.name = 'br-fast-only'")
    assert st == "normal"  # evaluated, and quiet
    assert env.collector.of("br-fast-only") == []


async def test_burn_rate_rule_validation(env: Env) -> None:
    async with env.ingest.client() as admin:
        r = await admin.put("/api/v1/rules/br-bad", json={
            "name": "br-bad", "metric": "x", "params": {"kind": "burn_rate", "slo": "a"}})
        assert r.status_code == 400 and "no metric" in r.text
        r = await admin.put("/api/v1/rules/br-bad", json={
            "name": "br-bad", "params": {"kind": "burn_rate", "slo": "a", "windows": [
                {"long": "5m", "short": "1h", "factor": 2}]}})
        assert r.status_code == 400 and "short window" in r.text


async def test_deleting_the_slo_resolves_its_alert(env: Env) -> None:
    now = math.floor(time.time()) - 5 + 0.5
    samples: list[dict[str, Any]] = []
    for i in range(60):
        samples += _counts("br.ok3", "br.requests3", now - (59 - i) * STEP, 1000, 50)
    await env.post("br-api-3", samples, labels={"role": "api"})
    await _slo(env, "br-gone", "br.ok3", "br.requests3")
    await env.put_rule({"name": "br-gone-burn", "params": {"kind": "burn_rate", "slo": "br-gone"}})
    await env.collector.wait("br-gone-burn", ["firing"], timeout=30)
    async with env.ingest.client() as admin:
        assert (await admin.delete("/api/v1/slos/br-gone")).status_code == 204
    events = await env.collector.wait("br-gone-burn", ["firing", "resolved"], timeout=30)
    assert events[-1].state == "resolved"
    assert events[-1].explanation == "SLO br-gone does not exist (deleted?)"


async def test_deleting_or_disabling_the_rule_resolves_its_alert(env: Env) -> None:
    """burn_rate (and forecast) states live outside the partitions: the owner
    of partition 0 resolves the alerts of their deleted or disabled rules."""
    now = math.floor(time.time()) - 5 + 0.5
    samples: list[dict[str, Any]] = []
    for i in range(60):
        samples += _counts("br.ok4", "br.requests4", now - (59 - i) * STEP, 1000, 50)
    await env.post("br-api-4", samples, labels={"role": "api"})
    await _slo(env, "br-kept", "br.ok4", "br.requests4")
    for name in ("br-deleted", "br-disabled"):
        await env.put_rule({"name": name, "params": {"kind": "burn_rate", "slo": "br-kept"}})
        await env.collector.wait(name, ["firing"], timeout=30)
    ids = [r["id"] for r in await env.pool.fetch(
        "SELECT id FROM rules WHERE name IN ('br-deleted', 'br-disabled')")]
    assert len(ids) == 2
    async with env.ingest.client() as admin:
        assert (await admin.delete("/api/v1/rules/br-deleted")).status_code == 204
        r = await admin.put("/api/v1/rules/br-disabled", json={
            "name": "br-disabled", "enabled": False,
            "params": {"kind": "burn_rate", "slo": "br-kept"}})
        assert r.status_code == 200, r.text
    for name in ("br-deleted", "br-disabled"):
        events = await env.collector.wait(name, ["firing", "resolved"], timeout=30)
        assert events[-1].explanation == "the rule was deleted or disabled"
    states = await env.pool.fetchval(
        "SELECT count(*) FROM analyzer_state WHERE rule_id = ANY($1::bigint[])", ids)
    assert states == 0  # forgotten

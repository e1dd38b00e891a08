"""Partitioned analysis with real analyzer processes: replicas join, one is
SIGKILLed and one SIGTERMed while samples stream in; every expected alert
opens exactly once, none is missed, none is duplicated, and the alerts equal
those of one uninterrupted in-memory run over the same samples."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from nazar_analyzer.engine import Engine, _Pair
from nazar_analyzer.rules import Rule, RuleSet, series_subject
from nazar_analyzer.settings import AnalyzerSettings
from nazar_analyzer.state import PartitionState, Subject
from nazar_common.schemas.config import RuleSpec
from tests.conftest import (
    create_database,
    create_vhost,
    delete_vhost,
    drop_database,
    free_port,
    start_ingest,
)
from tests.integration.analyzer.conftest import collect_alerts, wait_for
from tests.support.stack import Service

pytestmark = pytest.mark.timeout(300)

PARTITIONS = 6
HOSTS = [f"pt-{i}" for i in range(12)]
STEPS = 48
STEP = 10.0
RULES = [
    {"name": "pt-fast", "metric": "pt.v", "params": {"kind": "threshold", "value": 90}},
    {"name": "pt-slow", "metric": "pt.v", "for": 20, "keep_firing_for": 10,
     "params": {"kind": "threshold", "value": 80}},
]


def value(host: int, k: int) -> float:
    """Breaches of 2-4 points at host-dependent times (some above 90, some 80-90)."""
    phase = (k + 3 * host) % 12
    if phase in (4, 5):
        return 95.0
    if phase == 6 and host % 2:
        return 85.0 + host % 5
    if phase == 9 and host % 3 == 0:
        return 92.0
    return 10.0 + host + (k % 7)


def reference(t0: float) -> dict[tuple[str, str], list[tuple[str, str, float]]]:
    """Transitions of one uninterrupted in-memory run: (rule, host) -> [(from, to, at)]."""
    engine = Engine(AnalyzerSettings())
    rules = [Rule(i + 1, r["name"], 1, RuleSpec.model_validate(r))  # type: ignore[arg-type]
             for i, r in enumerate(RULES)]
    engine.rules = RuleSet.build(rules)
    part = PartitionState(0)
    out: dict[tuple[str, str], list[tuple[str, str, float]]] = {}
    for k in range(STEPS):
        pairs = []
        for i, host in enumerate(HOSTS):
            subject = Subject(series_subject(i + 1), host, i + 1, "pt.v")
            pairs += [_Pair(rule, subject, [t0 + k * STEP], [value(i, k)]) for rule in rules]
        for change in engine.evaluate(part, pairs).changes:
            out.setdefault((change.rule.name, change.subject.host), []).extend(
                (tr.previous, tr.state, tr.at) for tr in change.transitions)
    return out


class Replicas:
    def __init__(self, database_url: str, amqp_url: str, logs: Path) -> None:
        self.env = {
            **os.environ,
            "NAZAR_DATABASE_URL": database_url,
            "NAZAR_AMQP_URL": amqp_url,
            "NAZAR_ANALYZER_PARTITIONS": str(PARTITIONS),
            "NAZAR_ANALYZER_CHECKPOINT_INTERVAL": "1.5",
            "NAZAR_ANALYZER_REBALANCE_INTERVAL": "0.5",
            "NAZAR_ANALYZER_SWEEP_INTERVAL": "1",
            "NAZAR_ANALYZER_RELOAD_INTERVAL": "2",
            "NAZAR_ANALYZER_NODATA_AFTER": "86400",
            "NAZAR_LOG_LEVEL": "INFO",
            "NAZAR_DB_POOL_MAX": "4",
        }
        self.logs = logs
        self.all: list[Service] = []

    async def start(self) -> Service:
        n = len(self.all)
        port = free_port()
        service = Service("analyzer", port, {**self.env, "NAZAR_ANALYZER_LISTEN_PORT": str(port)},
                          self.logs / f"analyzer-{n}.log")
        service.start()
        self.all.append(service)
        await service.wait_ready(60)
        return service


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[tuple[str, str, asyncpg.Pool, Replicas]]:
    token = secrets.token_hex(4)
    db_name, vhost = f"nazar_test_pt_{token}", f"nazar-test-pt-{token}"
    database_url = await create_database(db_name)
    amqp_url = create_vhost(vhost)
    ingest = await start_ingest(database_url, amqp_url, analyzer_partitions=PARTITIONS)
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=3)
    replicas = Replicas(database_url, amqp_url, tmp_path)
    try:
        yield ingest, amqp_url, pool, replicas  # type: ignore[misc]
    finally:
        for r in replicas.all:
            if r.running:
                await r.stop(signal.SIGKILL)
        await pool.close()
        ingest.thread.stop()
        delete_vhost(vhost)
        await drop_database(db_name)


async def test_rebalancing_mid_stream_opens_every_alert_exactly_once(stack) -> None:  # type: ignore[no-untyped-def]
    ingest, amqp_url, pool, replicas = stack
    collector, connection = await collect_alerts(amqp_url)
    events = collector.events
    async with ingest.client() as client:
        for rule in RULES:
            r = await client.put(f"/api/v1/rules/{rule['name']}", json=rule)
            assert r.status_code in (200, 201), r.text

    t0 = time.time() - STEPS * STEP - 60

    async def post(k: int) -> None:
        async with ingest.client(ingest.ingest_key) as client:
            for i, host in enumerate(HOSTS):  # one agent push per host and step
                r = await client.post("/api/v1/metrics", json={
                    "host": host, "samples": [{"metric": "pt.v", "value": value(i, k),
                                               "timestamp": t0 + k * STEP}]})
                assert r.status_code == 202, r.text
            await asyncio.sleep(0.1)

    a = await replicas.start()
    b = await replicas.start()
    for k in range(0, 12):
        await post(k)
    c = await replicas.start()  # a third replica joins: partitions move to it
    for k in range(12, 24):
        await post(k)
    await b.stop(signal.SIGKILL)  # crash: its partitions are restored and replayed elsewhere
    for k in range(24, 36):
        await post(k)
    await c.stop(signal.SIGTERM)  # graceful: checkpoint, hand over
    for k in range(36, STEPS):
        await post(k)
    assert a.running

    expected = reference(t0)
    n_expected = sum(len(v) for v in expected.values())
    assert n_expected > 50  # the scenario does open and close alerts

    async def complete() -> bool:
        return len({e.id for e in events}) >= n_expected

    with contextlib.suppress(AssertionError):  # (what is missing is shown below)
        await wait_for(complete, 120, f"{n_expected} alert events")
    await asyncio.sleep(3.0)  # anything more would be a duplicate
    await connection.close()

    # exactly once: no event twice (by id or by content), none missed
    assert len(events) == len({e.id for e in events})
    got: dict[tuple[str, str], list[tuple[str, str, float]]] = {}
    for e in sorted(events, key=lambda e: e.at):
        got.setdefault((e.rule_name, e.host), []).append(
            (e.previous_state, e.state, round(e.at.timestamp(), 3)))
    want = {k: [(f, s, round(at - t0, 3)) for f, s, at in v] for k, v in expected.items()}
    got = {k: [(f, s, round(at - t0, 3)) for f, s, at in v] for k, v in got.items()}
    diff = {k: ([t for t in want.get(k, []) if t not in got.get(k, [])],  # missing
                [t for t in got.get(k, []) if t not in want.get(k, [])])  # unexpected
            for k in sorted(set(want) | set(got)) if want.get(k) != got.get(k)}
    assert not diff, diff
    # the alert rows: one per opening, none duplicated
    opened = sum(1 for v in expected.values() for f, _, _ in v if f == "normal")
    assert await pool.fetchval(
        "SELECT count(*) FROM alerts WHERE rule_name LIKE 'pt-%'") == opened
    # the partitions changed owners (a claim per takeover) and were checkpointed
    rows = await pool.fetch("SELECT part, epoch, checkpoints FROM analyzer_partitions")
    assert len(rows) == PARTITIONS
    assert sum(r["epoch"] for r in rows) > PARTITIONS
    assert all(r["checkpoints"] > 0 for r in rows)

"""Analyzer throughput: samples evaluated per second on one core.

1. Pure evaluation (no database, no broker): a realistic rule mix over
   thousands of series, through the same evaluators and state machine the
   service uses (``Engine._evaluate``).
2. Optionally (``--database-url``), the transactional path without the
   broker, as the service runs it: batches decoded, evaluated over the
   partition's in-memory state, alert transitions recorded as they happen,
   each partition checkpointed every N seconds / M samples.

    python bench/analyzer.py --series 5000 --points 20
    python bench/analyzer.py --series 10 --database-url postgresql://postgres@127.0.0.1/nazar_bench

Prints what it measured and on what machine.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import platform
import random
import time

from nazar_analyzer import detectors
from nazar_analyzer.engine import Engine, _Pair
from nazar_analyzer.evaluators import DetectorEvaluator, new_detector_evaluator, warm_many
from nazar_analyzer.machine import Status
from nazar_analyzer.rules import Rule, RuleSet, series_subject
from nazar_analyzer.settings import AnalyzerSettings
from nazar_analyzer.state import Subject
from nazar_common.schemas.config import RuleSpec
from nazar_common.schemas.wire import SampleBatchV1, SeriesRef

STEP = 10.0


def rule_mix() -> list[Rule]:
    specs = [
        {"name": "cpu-high", "metric": "cpu", "for": 60,
         "params": {"kind": "threshold", "value": 90, "recovery_value": 80}},
        {"name": "mem-high", "metric": "mem", "params": {"kind": "threshold", "value": 95}},
        {"name": "disk-low", "metric": "disk", "params": {"kind": "threshold", "comparator": "<",
                                                          "value": 5}},
        {"name": "lat-baseline", "metric": "lat",
         "params": {"kind": "baseline", "window": 7200, "min_history": 1800,
                    "seasonality": "none"}},
        {"name": "req-anomaly", "metric": "req",
         "params": {"kind": "anomaly", "training_window": 7200, "retrain_every": 3600}},
    ]
    return [Rule(i + 1, s["name"], 1, RuleSpec.model_validate(s)) for i, s in enumerate(specs)]


#: share of series per metric: thresholds dominate real fleets
MIX = {"cpu": 0.3, "mem": 0.25, "disk": 0.25, "lat": 0.15, "req": 0.05}


def value(metric: str, i: int, k: int) -> float:
    base = {"cpu": 40, "mem": 60, "disk": 50, "lat": 100, "req": 1000}[metric]
    return base * (1 + 0.1 * math.sin((k + i) / 30)) + random.random()


def series_plan(n: int) -> list[tuple[int, str, str]]:
    out = []
    sid = 1
    for metric, share in MIX.items():
        for _ in range(max(1, int(n * share))):
            out.append((sid, metric, f"host-{sid % 1000}"))
            sid += 1
    return out


def pure(n_series: int, points: int, history: int) -> None:
    settings = AnalyzerSettings(analyzer_max_history_points=history)
    engine = Engine(settings)
    rules = rule_mix()
    engine.rules = RuleSet.build(rules)
    plan = series_plan(n_series)
    by_metric = {r.spec.metric: r for r in rules}
    # cold start: detectors learn the history window, all series in one batch per bank
    t_warm, c_warm = time.perf_counter(), time.process_time()
    cold = []
    for sid, metric, _ in plan:
        rule = by_metric[metric]
        if rule.kind in ("baseline", "anomaly"):
            ev = new_detector_evaluator(rule, sid, STEP, engine.limits, engine.banks)
            cold.append((ev, [(k * STEP, value(metric, sid, k)) for k in range(history)]))
            engine._detectors[(rule.id, sid)] = ev
    warm_many(cold)
    warm, warm_cpu = time.perf_counter() - t_warm, time.process_time() - c_warm
    n_det = len(engine._detectors)
    # restart: every detector restored from its persisted state (no replay)
    blobs = [(key, ev, detectors.dump(ev.detector)) for key, ev in engine._detectors.items()]
    state_bytes = sum(len(b) for _, _, b in blobs) / max(len(blobs), 1)
    restored = Engine(settings)
    t_restore, c_restore = time.perf_counter(), time.process_time()
    for key, ev, blob in blobs:
        restored._detectors[key] = DetectorEvaluator(
            ev.rule_id, ev.rule_version, ev.series_id, ev.metric,
            detectors.load(blob, restored.banks), ev.interval, ev.last_ts, ev.points,
        )
    restore, restore_cpu = time.perf_counter() - t_restore, time.process_time() - c_restore
    states: dict[tuple[int, str], Status] = {}
    results: dict[str, list[float]] = {}
    for kind in ("threshold", "baseline", "anomaly"):
        pairs = []
        for sid, metric, host in plan:
            rule = by_metric[metric]
            if rule.kind != kind:
                continue
            subject = Subject(series_subject(sid), host, sid, metric)
            times = [(history + k) * STEP for k in range(points)]
            pairs.append(_Pair(rule, subject, times, [value(metric, sid, history + k)
                                                      for k in range(points)]))
            states[(rule.id, subject.key)] = Status(last_ts=(history - 1) * STEP)
        t, c = time.perf_counter(), time.process_time()
        engine._evaluate(pairs, states)
        results[kind] = [len(pairs) * points, time.perf_counter() - t, time.process_time() - c]
    total = sum(r[0] for r in results.values())
    total_t = sum(r[1] for r in results.values())
    total_c = sum(r[2] for r in results.values())
    print(f"pure evaluation: {len(plan)} series ({n_det} with detectors, {history}-point "
          f"history), {points} new points each")
    per = max(n_det, 1)
    print("  (cpu = CPU time of this process, the figure for one core; wall = elapsed time, "
          "inflated by other work on a busy machine)")
    print(f"  cold start : {n_det} detectors learnt {history} points each: cpu "
          f"{1000 * warm_cpu / per:.2f} ms, wall {1000 * warm / per:.2f} ms per series "
          "(batched per detector bank)")
    print(f"  restore    : {n_det} detectors from persisted state ({state_bytes:,.0f} bytes each): "
          f"cpu {1000 * restore_cpu / per:.3f} ms, wall {1000 * restore / per:.3f} ms per series, "
          "no replay")
    for kind, (n, dt, dc) in results.items():
        print(f"  {kind:<10} {n:>9} samples: cpu {dc:7.3f}s = {n / dc:>9,.0f} samples/s; "
              f"wall {dt:7.3f}s = {n / dt:>9,.0f} samples/s")
    print(f"  {'mix':<10} {total:>9} samples: cpu {total_c:7.3f}s = {total / total_c:>9,.0f} "
          f"samples/s; wall {total_t:7.3f}s = {total / total_t:>9,.0f} samples/s (one core)")


#: What an agent pushes (one series each, per host), as nazar-agent names them.
AGENT_METRICS = (
    "cpu.usage_percent", "cpu.user_percent", "cpu.system_percent", "cpu.iowait_percent",
    "mem.used_percent", "mem.used_bytes", "mem.available_bytes", "swap.used_percent",
    "swap.used_bytes", "disk.used_percent", "disk.used_bytes", "disk.free_bytes",
    "disk.read_bytes_per_sec", "disk.write_bytes_per_sec", "disk.read_ops_per_sec",
    "disk.write_ops_per_sec", "net.rx_bytes_per_sec", "net.tx_bytes_per_sec",
    "net.rx_errors_per_sec", "net.tx_errors_per_sec", "net.rx_drops_per_sec",
    "net.tx_drops_per_sec", "load.1m", "load.5m", "load.15m", "system.processes",
    "system.uptime_seconds",
)
LEARNED = ("cpu.usage_percent", "mem.used_percent", "disk.used_percent")


def _rss() -> int:
    import psutil

    return int(psutil.Process().memory_info().rss)


def _slug(metric: str) -> str:
    return metric.replace(".", "-").replace("_", "-")


def agent_rules() -> list[dict[str, object]]:
    """Threshold on every agent metric; baseline and anomaly on CPU, memory, disk."""
    rules: list[dict[str, object]] = [
        {"name": f"bench-th-{_slug(m)}", "metric": m, "for": 30,
         "params": {"kind": "threshold", "value": 1e12 if "bytes" in m else 97}}
        for m in AGENT_METRICS
    ]
    for m in LEARNED:
        rules.append({"name": f"bench-base-{_slug(m)}", "metric": m,
                      "params": {"kind": "baseline", "window": 3600, "min_history": 600,
                                 "seasonality": "none"}})
        rules.append({"name": f"bench-anom-{_slug(m)}", "metric": m,
                      "params": {"kind": "anomaly", "training_window": 3600,
                                 "retrain_every": 1800}})
    return rules


def agent_value(metric: str, host: int, k: int) -> float:
    if metric in LEARNED:
        return 40 + 5 * math.sin((k + host) / 20) + random.random()
    if random.random() < 0.0005:
        return 99.0  # a rare breach: alerts open and close now and then
    return 30 + 10 * random.random()


async def transactional(
    database_url: str, hosts: int, per_batch: int, rounds: int, partitions: int
) -> None:
    """The service's path minus the broker: decode each batch, bring detectors
    up to date, evaluate in memory, record alert transitions (alerts, outbox)
    as they happen and checkpoint each partition every N seconds or M samples."""
    import asyncpg
    import orjson

    from nazar_analyzer import store
    from nazar_analyzer.service import tune_gc
    from nazar_analyzer.state import PartitionState
    from nazar_common.db.migrate import migrate
    from nazar_common.messaging.topology import partition_of

    conn = await asyncpg.connect(database_url)
    try:
        await migrate(conn, "postgres")
        await conn.execute("TRUNCATE analyzer_state, analyzer_models, analyzer_partitions, "
                           "alerts, outbox CASCADE")
        await conn.execute("DELETE FROM rules WHERE name LIKE 'bench-%'")
        for spec in agent_rules():
            await conn.execute("INSERT INTO rules (name, spec) VALUES ($1, $2::jsonb)",
                               spec["name"], orjson.dumps(spec).decode())
        await conn.execute(
            "INSERT INTO series (metric, host, labels) SELECT m, 'bh-' || h, '{}' "
            "FROM unnest($1::text[]) m, generate_series(1, $2) h ON CONFLICT DO NOTHING",
            list(AGENT_METRICS), hosts)
        rows = await conn.fetch(
            "SELECT id, metric, host FROM series WHERE host LIKE 'bh-%' AND metric = ANY($1) "
            "ORDER BY host, metric", list(AGENT_METRICS))
    finally:
        await conn.close()
    tune_gc()  # as the service does
    rss0 = _rss()
    settings = AnalyzerSettings(database_url=database_url)
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=4)
    engine = Engine(settings, store.PgHistory(pool))
    engine.configure(await store.load_rules(pool), await store.load_hosts(pool))
    by_host: dict[str, list[SeriesRef]] = {}
    for r in rows:
        by_host.setdefault(r["host"], []).append(
            SeriesRef(metric=r["metric"], host=r["host"], id=r["id"]))
    # batches as ingest's relay publishes them: group commits split by partition
    parts: dict[int, list[str]] = {}
    for host in by_host:
        parts.setdefault(partition_of(host, partitions), []).append(host)
    states = {p: PartitionState(p, await store.claim_partition(pool, p, "bench"))
              for p in parts}
    t0 = time.time() - rounds * STEP
    checkpoint_every, checkpoint_samples = settings.analyzer_checkpoint_interval, \
        settings.analyzer_checkpoint_samples

    def bodies(k: int) -> list[tuple[int, bytes]]:
        out = []
        for p, names in parts.items():
            for i in range(0, len(names), per_batch):
                refs = [ref for h in names[i:i + per_batch] for ref in by_host[h]]
                batch = SampleBatchV1(
                    series=refs, series_index=list(range(len(refs))),
                    times=[t0 + k * STEP] * len(refs),
                    values=[agent_value(r.metric, hash(r.host) % 1000, k) for r in refs])
                out.append((p, batch.to_bytes()))
        return out

    last_models: dict[int, float] = {}

    async def checkpoint(p: int) -> None:
        state = states[p]
        rows_ = [(k[0], state.subjects[k[1]], state.states[k]) for k in state.dirty]
        due = time.monotonic() - last_models.get(p, 0.0) >= settings.analyzer_state_flush_interval
        models = engine.dump_models(state) if state.models_dirty and due else []
        if models:
            last_models[p] = time.monotonic()
        assert await store.checkpoint(pool, p, state.epoch, rows_, [], models,
                                      state.samples_since_checkpoint)
        state.dirty.clear()
        state.samples_since_checkpoint = 0

    samples = evaluated = changes = checkpoints = 0
    parts_cpu = dict.fromkeys(("decode", "route", "detector sync", "evaluate"), 0.0)
    wall = cpu = 0.0
    last_checkpoint = time.monotonic()
    for k in range(rounds + 1):
        work = bodies(k)  # (the producer's work, not timed)
        t, c = time.perf_counter(), time.process_time()
        for p, body in work:
            c0 = time.process_time()
            batch = SampleBatchV1.from_bytes(body)
            c1 = time.process_time()
            pairs = engine.pairs_of(batch)
            c2 = time.process_time()
            await engine.prepare(states[p], pairs)
            c3 = time.process_time()
            outcome = engine.evaluate(states[p], pairs)
            c4 = time.process_time()
            if k:
                for step, dt in zip(parts_cpu, (c1 - c0, c2 - c1, c3 - c2, c4 - c3), strict=True):
                    parts_cpu[step] += dt
            if outcome.changes:
                async with pool.acquire() as conn, conn.transaction():
                    for ch in outcome.changes:
                        await store.record_transitions(conn, ch.rule, ch.subject, ch.status,
                                                       ch.transitions, ch.start)
                changes += len(outcome.changes)
            if k:
                samples += len(batch)
                evaluated += outcome.evaluated
            if (states[p].samples_since_checkpoint >= checkpoint_samples
                    or time.monotonic() - last_checkpoint >= checkpoint_every):
                for q in states:
                    await checkpoint(q)
                    checkpoints += 1
                last_checkpoint = time.monotonic()
        if k:  # round 0 creates the detectors (warm-up from an empty history)
            wall += time.perf_counter() - t
            cpu += time.process_time() - c
    for q in states:
        await checkpoint(q)
    held = _rss() - rss0
    # a takeover: claim and restore each partition from its checkpoint
    t_restore = time.perf_counter()
    restored = 0
    for q in states:
        fresh = PartitionState(q, await store.claim_partition(pool, q, "bench-2"))
        Engine(settings).restore(fresh, await store.load_partition(pool, q))
        restored += len(fresh.states)
    restore_ms = 1000 * (time.perf_counter() - t_restore) / len(states)
    alerts = await pool.fetchval("SELECT count(*) FROM alerts")
    await pool.close()
    n_rules = len(agent_rules())
    print(f"transactional path (PostgreSQL, no broker): {hosts} agent-shaped hosts x "
          f"{len(AGENT_METRICS)} metrics, {n_rules} rules (threshold on every metric, baseline "
          f"and anomaly on {', '.join(LEARNED)}), {partitions} partitions, batches of "
          f"{per_batch} hosts")
    print(f"  {rounds} rounds: {samples:,} samples ({evaluated:,} rule evaluations) in cpu "
          f"{cpu:.2f}s = {samples / cpu:,.0f} samples/s on one core (wall {wall:.2f}s = "
          f"{samples / wall:,.0f} samples/s); {checkpoints} partition checkpoints, "
          f"{changes} alert changes recorded, {alerts} alerts")
    print(f"  memory: {held / 2**20:,.0f} MiB resident for {hosts} hosts' states and detectors "
          f"= {held / hosts / 1024:.1f} KiB per host, {2**30 / max(held / hosts, 1):,.0f} hosts "
          "per GiB")
    print(f"  takeover: {len(states)} partitions claimed and restored ({restored:,} checkpointed "
          f"states), {restore_ms:.1f} ms per partition (wall)")
    print("  cpu per step: " + ", ".join(
        f"{step} {dt:.2f}s ({samples / dt:,.0f}/s)" for step, dt in parts_cpu.items())
        + f", the rest (alerts, checkpoints) {cpu - sum(parts_cpu.values()):.2f}s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--series", type=int, default=3000)
    ap.add_argument("--repeat", type=int, default=1, help="repeat the pure evaluation run")
    ap.add_argument("--points", type=int, default=10, help="new points per series")
    ap.add_argument("--history", type=int, default=360, help="detector history points")
    ap.add_argument("--database-url", default=None)
    ap.add_argument("--hosts", type=int, default=2000, help="transactional path: hosts")
    ap.add_argument("--per-batch", type=int, default=50,
                    help="transactional path: hosts per batch (an ingest group commit's part)")
    ap.add_argument("--rounds", type=int, default=10, help="transactional path: pushes per host")
    ap.add_argument("--partitions", type=int, default=8)
    args = ap.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()} on {platform.system()}, "
          f"load average {os.getloadavg()[0]:.2f}")
    random.seed(1)
    for _ in range(args.repeat):
        pure(args.series, args.points, args.history)
    if args.database_url:
        asyncio.run(transactional(args.database_url, args.hosts, args.per_batch, args.rounds,
                                  args.partitions))


if __name__ == "__main__":
    main()

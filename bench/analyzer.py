"""Analyzer throughput: samples evaluated per second on one core.

1. Pure evaluation (no database, no broker): a realistic rule mix over
   thousands of series, through the same evaluators and state machine the
   service uses (``Engine._evaluate``).
2. Optionally (``--database-url``), the transactional path without the
   broker: ``Engine.handle_batch`` commits state rows, idempotency ids and
   alerts in PostgreSQL for each batch, as the service does per message.

    python bench/analyzer.py --series 5000 --points 20
    python bench/analyzer.py --database-url postgresql://postgres@127.0.0.1/nazar_bench

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
import uuid

from nazar_analyzer import detectors
from nazar_analyzer.engine import Engine, _Pair
from nazar_analyzer.evaluators import DetectorEvaluator, new_detector_evaluator, warm_many
from nazar_analyzer.machine import Status
from nazar_analyzer.rules import Rule, RuleSet, series_subject
from nazar_analyzer.settings import AnalyzerSettings
from nazar_analyzer.store import Subject
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
    engine = Engine(None, settings)
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
    restored = Engine(None, settings)
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


async def transactional(database_url: str, n_series: int, batches: int) -> None:
    import asyncpg

    from nazar_common.db.migrate import migrate

    conn = await asyncpg.connect(database_url)
    try:
        await migrate(conn, "postgres")
        await conn.execute("TRUNCATE analyzer_state, analyzer_processed, alerts CASCADE")
        await conn.execute("DELETE FROM rules WHERE name LIKE 'bench-%'")
        rows = []
        for i, m in enumerate(("cpu", "mem", "disk")):
            spec = {"name": f"bench-{m}", "metric": f"bench.{m}",
                    "params": {"kind": "threshold", "value": 90 + i}}
            rows.append(await conn.fetchval(
                "INSERT INTO rules (name, spec) VALUES ($1, $2::jsonb) RETURNING id",
                spec["name"], __import__("orjson").dumps(spec).decode()))
        await conn.execute(
            "INSERT INTO series (metric, host, labels) SELECT 'bench.' || m, 'bh-' || h, '{}' "
            "FROM unnest(ARRAY['cpu','mem','disk']) m, generate_series(1, $1) h "
            "ON CONFLICT DO NOTHING", n_series // 3)
        series = await conn.fetch(
            "SELECT id, metric, host FROM series WHERE metric LIKE 'bench.%' ORDER BY id")
    finally:
        await conn.close()
    settings = AnalyzerSettings(database_url=database_url)
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=4)
    engine = Engine(pool, settings)
    await engine.reload()
    refs = [SeriesRef(metric=r["metric"], host=r["host"], id=r["id"]) for r in series]
    t0 = time.time()
    total = 0
    start = time.perf_counter()
    for b in range(batches):
        ts = t0 + b * STEP
        batch = SampleBatchV1(id=uuid.uuid4(), series=refs, series_index=list(range(len(refs))),
                              times=[ts] * len(refs),
                              values=[99.0 if random.random() < 0.002 else random.random() * 85
                                      for _ in refs])
        out = await engine.handle_batch(batch)
        total += out.evaluated
    dt = time.perf_counter() - start
    alerts = await pool.fetchval("SELECT count(*) FROM alerts")
    await pool.close()
    print(f"transactional path (PostgreSQL, no broker): {batches} batches x {len(refs)} series "
          f"(threshold rules, ~0.2% breaching points), {total} samples in {dt:.2f}s = "
          f"{total / dt:,.0f} samples/s, "
          f"{dt / batches * 1000:.0f} ms per batch; {alerts} alerts opened/closed")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--series", type=int, default=3000)
    ap.add_argument("--repeat", type=int, default=1, help="repeat the pure evaluation run")
    ap.add_argument("--points", type=int, default=10, help="new points per series")
    ap.add_argument("--history", type=int, default=360, help="detector history points")
    ap.add_argument("--database-url", default=None)
    ap.add_argument("--batches", type=int, default=20)
    args = ap.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()} on {platform.system()}, "
          f"load average {os.getloadavg()[0]:.2f}")
    random.seed(1)
    for _ in range(args.repeat):
        pure(args.series, args.points, args.history)
    if args.database_url:
        asyncio.run(transactional(args.database_url, args.series, args.batches))


if __name__ == "__main__":
    main()

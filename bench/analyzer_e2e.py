#!/usr/bin/env python3
"""End-to-end analysis at fleet scale: agent-shaped hosts through ingest to the analyzer.

Starts a private database and RabbitMQ vhost (on the running servers), ingest
and ``--analyzers`` analyzer replicas as processes, the rule mix of
``bench/analyzer.py`` (a threshold on every agent metric, baseline and
anomaly on CPU, memory and disk), then ``--hosts`` simulated agents that each
push their 27 metrics every ``--interval`` seconds for ``--duration``
seconds. Some hosts get a CPU spike (an injected anomaly) in the second half.
Prints the analysis lag (sample time → evaluated, from the analyzers'
``nazar_analyzer_lag_seconds``), the partition queues' depth over time, the
CPU of each party, whether every injected spike was alerted, and the machine
load it ran under.

Example::

    nice -n 10 .venv/bin/python bench/analyzer_e2e.py --hosts 2000 --duration 150
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import re
import secrets
import signal
import sys
import time
from pathlib import Path

import aio_pika
import asyncpg
import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from analyzer import AGENT_METRICS, agent_rules

from nazar_common.messaging.topology import analyzer_partitions
from tests.conftest import (
    create_database,
    create_key,
    create_vhost,
    delete_vhost,
    drop_database,
    free_port,
)
from tests.support.stack import Service

SPIKE_RULE = {"name": "e2e-cpu-spike", "metric": "cpu.usage_percent",
              "params": {"kind": "threshold", "value": 97}}


def histogram_quantile(buckets: list[tuple[float, float]], q: float) -> float:
    """Prometheus-style quantile of cumulative (upper bound, count) buckets."""
    total = buckets[-1][1]
    if total == 0:
        return float("nan")
    rank = q * total
    prev_bound, prev_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if bound == float("inf"):
                return prev_bound
            return prev_bound + (bound - prev_bound) * (rank - prev_count) / max(
                count - prev_count, 1e-9)
        prev_bound, prev_count = bound, count
    return prev_bound


async def lag_buckets(urls: list[str]) -> list[tuple[float, float]]:
    summed: dict[float, float] = {}
    async with httpx.AsyncClient(timeout=5) as client:
        for url in urls:
            text = (await client.get(url + "/metrics")).text
            for m in re.finditer(r'nazar_analyzer_lag_seconds_bucket\{le="([^"]+)"\} (\S+)', text):
                bound = float("inf") if m.group(1) == "+Inf" else float(m.group(1))
                summed[bound] = summed.get(bound, 0.0) + float(m.group(2))
    return sorted(summed.items())


async def depths(amqp_url: str, partitions: int) -> list[int]:
    connection = await aio_pika.connect(amqp_url)
    try:
        channel = await connection.channel()
        out = []
        for spec in analyzer_partitions(partitions):
            q = await channel.declare_queue(spec.name, passive=True)
            out.append(int(q.declaration_result.message_count or 0))
        return out
    finally:
        await connection.close()


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process (and, for a service, its children)."""
    try:
        proc = psutil.Process(pid)
        total = sum(proc.cpu_times()[:2])
        if pid != os.getpid():  # (the services are this process's children)
            for child in proc.children(recursive=True):
                total += sum(child.cpu_times()[:2])
        return total
    except psutil.Error:
        return 0.0


async def main(args: argparse.Namespace) -> int:
    token = secrets.token_hex(4)
    db_name, vhost = f"nazar_bench_e2e_{token}", f"nazar-bench-e2e-{token}"
    database_url = await create_database(db_name)
    amqp_url = create_vhost(vhost)
    workdir = Path(f"/tmp/{vhost}") if args.keep_logs else Path(os.environ.get("TMPDIR", "/tmp"))
    workdir.mkdir(parents=True, exist_ok=True)
    base = {k: v for k, v in os.environ.items() if not k.startswith("NAZAR_")}
    base.update({"NAZAR_DATABASE_URL": database_url, "NAZAR_AMQP_URL": amqp_url,
                 "NAZAR_ANALYZER_PARTITIONS": str(args.partitions), "NAZAR_LOG_LEVEL": "WARNING"})
    ingest_port = free_port()
    ingest = Service("ingest", ingest_port, {**base, "NAZAR_LISTEN_PORT": str(ingest_port)},
                     workdir / f"{vhost}-ingest.log")
    analyzers = []
    for i in range(args.analyzers):
        port = free_port()
        env = {**base, "NAZAR_ANALYZER_LISTEN_PORT": str(port)}
        analyzers.append(Service("analyzer", port, env, workdir / f"{vhost}-analyzer-{i}.log"))
    load_start = os.getloadavg()
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python "
          f"{platform.python_version()}, load average {load_start[0]:.2f} (shared with other "
          f"work: figures are upper bounds of what the parties need)")
    try:
        ingest.start()
        await ingest.wait_ready(90)
        admin = await create_key(database_url, "admin")
        key = await create_key(database_url, "ingest")
        async with httpx.AsyncClient(base_url=ingest.url, timeout=30,
                                     headers={"Authorization": f"Bearer {admin}"}) as client:
            for rule in [*agent_rules(), SPIKE_RULE]:
                r = await client.put(f"/api/v1/rules/{rule['name']}", json=rule)
                assert r.status_code in (200, 201), r.text
        for a in analyzers:
            a.start()
        await asyncio.gather(*(a.wait_ready(90) for a in analyzers))
        pids = {"ingest": ingest.proc.pid,  # type: ignore[union-attr]
                **{f"analyzer-{i}": a.proc.pid for i, a in enumerate(analyzers)}}  # type: ignore[union-attr]
        pids["load generator (this process)"] = os.getpid()
        cpu0 = {name: cpu_seconds(pid) for name, pid in pids.items()}
        hosts = [f"e2e-{i:05d}" for i in range(args.hosts)]
        spiked = set(random.Random(1).sample(hosts, min(args.spikes, len(hosts))))
        spike_from = time.time() + args.duration / 2
        sent = failed = 0
        limit = asyncio.Semaphore(args.concurrency)
        started = time.monotonic()
        depth_log: list[tuple[float, int, int, int]] = []

        async def push(client: httpx.AsyncClient, i: int, host: str) -> None:
            nonlocal sent, failed
            async with limit:  # an agent stamps its samples when it sends them
                now = time.time()
                samples = [{"metric": m, "value": (99.0 if host in spiked and now >= spike_from
                                                   and m == "cpu.usage_percent" else
                                                   40 + 10 * random.random()),
                            "timestamp": now} for m in AGENT_METRICS]
                try:
                    r = await client.post("/api/v1/metrics", json={
                        "host": host, "labels": {"role": f"r{i % 5}"}, "samples": samples})
                    if r.status_code == 202:
                        sent += len(samples)
                    else:
                        failed += 1
                except httpx.HTTPError:
                    failed += 1

        async def agents() -> None:
            async with httpx.AsyncClient(base_url=ingest.url, timeout=30, headers={
                    "Authorization": f"Bearer {key}"}) as client:
                tasks: set[asyncio.Task[None]] = set()
                while time.monotonic() - started < args.duration:
                    round_start = time.monotonic()
                    for i, host in enumerate(hosts):  # spread over the interval
                        due = round_start + args.interval * i / len(hosts)
                        await asyncio.sleep(max(0.0, due - time.monotonic()))
                        task = asyncio.create_task(push(client, i, host))
                        tasks.add(task)
                        task.add_done_callback(tasks.discard)
                    await asyncio.sleep(max(0.0, round_start + args.interval - time.monotonic()))
                await asyncio.gather(*tasks)

        async def watch() -> None:
            conn = await asyncpg.connect(database_url)
            try:
                while time.monotonic() - started < args.duration + 30:
                    d = await depths(amqp_url, args.partitions)
                    backlog = await conn.fetchval("SELECT count(*) FROM outbox")
                    depth_log.append((time.monotonic() - started, sum(d), max(d), backlog))
                    await asyncio.sleep(10)
            finally:
                await conn.close()

        watcher = asyncio.create_task(watch())
        await agents()
        # drain: until the queues are empty (at most 60 s)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # (polling the broker)
            if not sum(await depths(amqp_url, args.partitions)):
                break
            await asyncio.sleep(1)
        await asyncio.sleep(3)
        watcher.cancel()
        elapsed = time.monotonic() - started
        cpu1 = {name: cpu_seconds(pid) for name, pid in pids.items()}
        buckets = await lag_buckets([a.url for a in analyzers])
        conn = await asyncpg.connect(database_url)
        try:
            alerted = {r["host"] for r in await conn.fetch(
                "SELECT DISTINCT host FROM alerts WHERE rule_name = $1", SPIKE_RULE["name"])}
            evaluated = await conn.fetchval(
                "SELECT coalesce(sum(samples), 0) FROM analyzer_partitions")
        finally:
            await conn.close()
        print(f"{args.hosts} hosts x {len(AGENT_METRICS)} metrics every {args.interval:.0f} s for "
              f"{args.duration:.0f} s through ingest, {args.analyzers} analyzer(s), "
              f"{args.partitions} partitions, {len(agent_rules()) + 1} rules: {sent:,} samples "
              f"accepted ({sent / args.duration:,.0f}/s), {failed} pushes failed; "
              f"{evaluated:,} rule evaluations checkpointed")
        n = buckets[-1][1] if buckets else 0
        print("analysis lag (newest sample time of a batch -> evaluated), "
              f"{n:.0f} batches: " + ", ".join(
                  f"p{int(q * 100)} {histogram_quantile(buckets, q):.2f} s"
                  for q in (0.5, 0.9, 0.95, 0.99)) + " (interpolated in histogram buckets)")
        print("queues over time (s: partition queues' ready messages, total / deepest; "
              "ingest's outbox rows not yet relayed): " + ", ".join(
                  f"{t:.0f}: {total}/{deepest}/{backlog}"
                  for t, total, deepest, backlog in depth_log))
        used = {name: cpu1[name] - cpu0[name] for name in pids}
        print("CPU per party over the run (user+system seconds, % of one core): " + ", ".join(
            f"{name} {used[name]:.1f} s ({100 * used[name] / elapsed:.0f}%)" for name in pids)
            + "; PostgreSQL and RabbitMQ are shared with other work here and not attributed")
        missed = sorted(spiked - alerted)
        print(f"injected CPU spikes: {len(spiked)}, alerted {len(spiked & alerted)}, "
              f"missed {len(missed)} {missed[:5]}")
        load_end = os.getloadavg()
        print(f"load average at the end {load_end[0]:.2f} (1 min), {load_end[1]:.2f} (5 min)")
        return 1 if missed else 0
    finally:
        for s in [*analyzers, ingest]:
            if s.running:
                await s.stop(signal.SIGTERM)
        await drop_database(db_name)
        delete_vhost(vhost)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hosts", type=int, default=2000)
    parser.add_argument("--interval", type=float, default=10.0, help="seconds between pushes")
    parser.add_argument("--duration", type=float, default=150.0, help="seconds of load")
    parser.add_argument("--analyzers", type=int, default=1)
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--spikes", type=int, default=20, help="hosts with an injected spike")
    parser.add_argument("--concurrency", type=int, default=32, help="pushes in flight")
    parser.add_argument("--keep-logs", action="store_true")
    sys.exit(asyncio.run(main(parser.parse_args())))

#!/usr/bin/env python3
"""Ingest throughput benchmark.

Simulates many agents pushing JSON batches to a real ingest server (started
here against a database and RabbitMQ vhost of its own), then reports accepted
samples/s, request latency percentiles, the samples that landed in the
database, and — in the same run, on the same database — the raw ceiling: a
direct COPY of the same samples in 1,000-row batches. Prints the ratio.
With --protocols it also measures Prometheus remote_write, OTLP and the
Influx line protocol against the same server.

    python bench/ingest.py --duration 20 --concurrency 64 --batch-size 100
    python bench/ingest.py --protocols all
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import platform
import random
import resource
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
from datetime import UTC, datetime

import aiohttp
import asyncpg
import orjson

from nazar_common.auth import generate_key
from nazar_common.db.backends import PostgresBackend, Retention
from nazar_common.db.migrate import migrate

PG_ADMIN = os.environ.get("NAZAR_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
AMQP = os.environ.get("NAZAR_BENCH_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def db_url(name: str) -> str:
    parts = urllib.parse.urlsplit(PG_ADMIN)
    return urllib.parse.urlunsplit(parts._replace(path="/" + name))


def make_bodies(hosts: int, metrics: int, batch: int, count: int) -> list[bytes]:
    """Pre-serialised request bodies, round-robin over hosts and metrics."""
    bodies = []
    now = time.time()
    rng = random.Random(42)
    for i in range(count):
        host = f"bench-{i % hosts:05d}"
        samples = []
        for j in range(batch):
            m = (i * batch + j) % metrics
            samples.append(
                {
                    "metric": f"bench.metric_{m:03d}",
                    "value": rng.random() * 100,
                    "timestamp": now - rng.random() * 60,
                    "labels": {"shard": str(m % 4)},
                }
            )
        bodies.append(orjson.dumps({"host": host, "labels": {"env": "bench"}, "samples": samples}))
    return bodies


async def _load(
    url: str, key: str, bodies: list[bytes], duration: float, concurrency: int, gzip_bodies: bool
) -> tuple[list[float], int, int, dict[int, int]]:
    import gzip

    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    if gzip_bodies:
        bodies = [gzip.compress(b, 1) for b in bodies]
        headers["Content-Encoding"] = "gzip"
    latencies: list[float] = []
    accepted = 0
    errors = 0
    statuses: dict[int, int] = {}
    deadline = time.monotonic() + duration
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker(w: int) -> None:
            nonlocal accepted, errors
            i = w
            while time.monotonic() < deadline:
                body = bodies[i % len(bodies)]
                i += concurrency
                t0 = time.perf_counter()
                try:
                    async with session.post(url, data=body, headers=headers) as r:
                        payload = await r.read()
                        statuses[r.status] = statuses.get(r.status, 0) + 1
                        if r.status == 202:
                            accepted += orjson.loads(payload)["accepted"]
                            latencies.append(time.perf_counter() - t0)
                        else:
                            errors += 1
                except aiohttp.ClientError:
                    errors += 1

        await asyncio.gather(*(worker(w) for w in range(concurrency)))
    return latencies, accepted, errors, statuses


def _wrk(
    url: str, key: str, bodies: list[bytes], duration: float, concurrency: int, threads: int
) -> tuple[int, float, int, tuple[float, float, float]]:
    """Load with wrk (C, cheap on the client side). Returns requests, seconds,
    errors and the p50/p95/p99 latency in seconds."""
    import re
    import shutil
    import tempfile

    path = os.path.join(tempfile.mkdtemp(prefix="nazar-bench-"), "bodies.jsonl")
    with open(path, "wb") as fh:
        fh.write(b"\n".join(bodies) + b"\n")
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "wrk_post.lua")
    out = subprocess.run(
        [
            shutil.which("wrk") or "wrk",
            "-t",
            str(threads),
            "-c",
            str(concurrency),
            "-d",
            f"{int(duration)}s",
            "--timeout",
            "10s",
            "-s",
            script,
            url,
            "--",
            path,
            key,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    shutil.rmtree(os.path.dirname(path), ignore_errors=True)
    fields = dict(
        re.findall(
            r"(\w+)=(\d+)", " ".join(line for line in out.splitlines() if line.startswith("WRK"))
        )
    )
    requests = int(fields["requests"])
    errors = int(fields["errors_status"]) + int(fields["errors_socket"])
    lat = tuple(int(fields[k]) / 1e6 for k in ("p50_us", "p95_us", "p99_us"))
    return requests, int(fields["duration_us"]) / 1e6, errors, lat  # type: ignore[return-value]


def cpu_seconds(server_pid: int) -> dict[str, float]:
    """CPU seconds used so far by each party of the benchmark: the ingest
    server (with its workers), PostgreSQL, RabbitMQ and the load generator.
    Differences of two readings show where a run's CPU went."""
    import psutil

    totals = {"ingest": 0.0, "PostgreSQL": 0.0, "RabbitMQ": 0.0}
    try:
        server = psutil.Process(server_pid)
        tree = [server, *server.children(recursive=True)]
    except psutil.NoSuchProcess:
        tree = []
    ingest_pids = {p.pid for p in tree}
    for proc in psutil.process_iter(["name", "cpu_times"]):
        name, times = proc.info["name"] or "", proc.info["cpu_times"]
        if times is None:
            continue
        used = times.user + times.system
        if proc.pid in ingest_pids:
            totals["ingest"] += used
        elif name.startswith("postgres"):
            totals["PostgreSQL"] += used
        elif name.startswith("beam"):
            totals["RabbitMQ"] += used
    # The load generator: this process and its finished children (wrk, or
    # the Python load processes).
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    totals["load generator"] = own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime
    return totals


async def _warm_up(url: str, key: str, bodies: list[bytes], concurrency: int) -> int:
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    queue = list(bodies)
    accepted = 0
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as s:

        async def worker() -> None:
            nonlocal accepted
            while queue:
                body = queue.pop()
                async with s.post(url, data=body, headers=headers) as r:
                    if r.status != 202:
                        raise RuntimeError(f"warm-up request failed: {r.status} {await r.text()}")
                    accepted += orjson.loads(await r.read())["accepted"]

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return accepted


def _load_process(args: tuple) -> tuple[list[float], int, int, dict[int, int]]:
    return asyncio.run(_load(*args))


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    k = min(len(values) - 1, max(0, round(p / 100 * (len(values) - 1))))
    return values[k]


async def raw_copy_ceiling(url: str, rows: int, series: int, connections: int) -> float:
    """Direct COPY of ``rows`` samples, 1,000-row batches, into the same table."""
    conns = [await asyncpg.connect(url) for _ in range(connections)]
    try:
        ids = [r["id"] for r in await conns[0].fetch("SELECT id FROM series LIMIT $1", series)]
        now = datetime.now(UTC)
        rng = random.Random(7)
        batches = []
        for b in range(rows // 1000):
            batches.append(
                [(now, ids[(b * 1000 + k) % len(ids)], rng.random()) for k in range(1000)]
            )
        queue: asyncio.Queue[list[tuple[datetime, int, float]]] = asyncio.Queue()
        for b in batches:
            queue.put_nowait(b)

        async def copier(conn: asyncpg.Connection) -> None:
            while not queue.empty():
                batch = queue.get_nowait()
                await conn.copy_records_to_table(
                    "samples", records=batch, columns=("time", "series_id", "value")
                )

        t0 = time.perf_counter()
        await asyncio.gather(*(copier(c) for c in conns))
        return len(batches) * 1000 / (time.perf_counter() - t0)
    finally:
        for c in conns:
            await c.close()


async def prepare(name: str) -> tuple[str, str]:
    admin = await asyncpg.connect(PG_ADMIN)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = db_url(name)
    conn = await asyncpg.connect(url)
    try:
        await migrate(conn, "postgres")
        await PostgresBackend().maintain(
            conn, Retention(*(__import__("datetime").timedelta(days=d) for d in (7, 30, 400)))
        )
        new = generate_key()
        await conn.execute(
            "INSERT INTO api_keys (key_id, secret_hash, name, scopes) VALUES ($1,$2,'bench',$3)",
            new.key_id,
            new.secret_hash,
            ["ingest"],
        )
    finally:
        await conn.close()
    return url, new.plaintext


def vhost(action: str, name: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", action, name], check=False, capture_output=True)
    if action == "add_vhost":
        subprocess.run(
            ["rabbitmqctl", "-q", "set_permissions", "-p", name, "guest", ".*", ".*", ".*"],
            check=False,
            capture_output=True,
        )


async def wait_ready(base: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as s:
        while time.monotonic() < deadline:
            try:
                async with s.get(base + "/readyz") as r:
                    if r.status == 200 and (await r.json())["status"] == "ok":
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError("ingest did not become ready")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--hosts", type=int, default=500, help="simulated agents (hosts)")
    ap.add_argument("--metrics", type=int, default=100, help="metrics per host")
    ap.add_argument("--batch-size", type=int, default=100, help="samples per request")
    ap.add_argument("--duration", type=float, default=20.0, help="seconds of load")
    ap.add_argument(
        "--concurrency",
        type=int,
        default=64,
        help="requests in flight (a closed loop offers at most this many divided by the "
        "latency: 64 at 25 ms is 2,560 requests/s)",
    )
    ap.add_argument("--clients", type=int, default=1, help="load-generator processes (python)")
    ap.add_argument(
        "--client",
        choices=["auto", "wrk", "python"],
        default="auto",
        help="load generator: wrk when installed (auto), or Python/aiohttp",
    )
    ap.add_argument("--wrk-threads", type=int, default=1, help="wrk threads")
    ap.add_argument("--workers", type=int, default=1, help="ingest server processes")
    ap.add_argument("--gzip", action="store_true", help="gzip request bodies")
    ap.add_argument("--insert-mode", default="unnest", choices=["copy", "unnest"])
    ap.add_argument("--raw-connections", type=int, default=2, help="connections for raw COPY")
    ap.add_argument("--keep", action="store_true", help="keep the bench database")
    ap.add_argument(
        "--protocols",
        default="",
        help="also measure these drop-in protocols against the same server, comma-separated "
        "(json,remote_write,otlp,influx or all; Python client, see bench/protocols.py)",
    )
    ap.add_argument("--protocol-requests", type=int, default=300, help="requests per protocol")
    args = ap.parse_args()

    token = secrets.token_hex(3)
    dbname, vh = f"nazar_bench_{token}", f"nazar-bench-{token}"
    url, key = asyncio.run(prepare(dbname))
    vhost("add_vhost", vh)
    port = free_port()
    env = {
        **os.environ,
        "NAZAR_DATABASE_URL": url,
        "NAZAR_AMQP_URL": AMQP.rstrip("/") + "/" + vh,
        "NAZAR_LISTEN_PORT": str(port),
        "NAZAR_WORKERS": str(args.workers),
        "NAZAR_LOG_LEVEL": "WARNING",
        "NAZAR_INSERT_MODE": args.insert_mode,
        "NAZAR_DB_POOL_MAX": "8",
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "nazar_ingest"], env=env, start_new_session=True
    )
    base = f"http://127.0.0.1:{port}"
    try:
        asyncio.run(wait_ready(base))
        bodies = make_bodies(args.hosts, args.metrics, args.batch_size, max(args.hosts, 2000))
        # Warm-up: every body once, so all series exist and the run measures
        # the steady state of agents that report the same series again.
        warm = asyncio.run(_warm_up(base + "/api/v1/metrics", key, bodies, args.concurrency))
        use_wrk = args.client == "wrk" or (
            args.client == "auto" and __import__("shutil").which("wrk") is not None
        )
        statuses: dict[int, int] = {}
        cpu_before = cpu_seconds(server.pid)
        if use_wrk:
            requests, elapsed, errors, (p50, p95, p99) = _wrk(
                base + "/api/v1/metrics",
                key,
                bodies,
                args.duration,
                args.concurrency,
                args.wrk_threads,
            )
            accepted = (requests - errors) * args.batch_size
            client_desc = f"wrk ({args.wrk_threads} thread)"
        else:
            per_client = max(1, args.concurrency // args.clients)
            jobs = [
                (
                    base + "/api/v1/metrics",
                    key,
                    bodies[c :: args.clients],
                    args.duration,
                    per_client,
                    args.gzip,
                )
                for c in range(args.clients)
            ]
            t0 = time.perf_counter()
            if args.clients == 1:
                results = [_load_process(jobs[0])]
            else:
                with multiprocessing.get_context("spawn").Pool(args.clients) as pool:
                    results = pool.map(_load_process, jobs)
            elapsed = time.perf_counter() - t0
            latencies = [x for r in results for x in r[0]]
            accepted = sum(r[1] for r in results)
            errors = sum(r[2] for r in results)
            for r in results:
                for k, v in r[3].items():
                    statuses[k] = statuses.get(k, 0) + v
            requests = len(latencies)
            p50, p95, p99 = (percentile(latencies, p) for p in (50, 95, 99))
            client_desc = f"Python aiohttp ({args.clients} process(es))"
        cpu_after = cpu_seconds(server.pid)
        cpu_used = {k: cpu_after[k] - cpu_before[k] for k in cpu_before}

        protocol_rows = []
        names = (
            ["json", "remote_write", "otlp", "influx"]
            if args.protocols == "all"
            else [p for p in args.protocols.split(",") if p]
        )
        if names:
            import httpx
            import protocols  # bench/protocols.py, beside this script

            async def run_protocols() -> None:
                async with httpx.AsyncClient(
                    base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=60
                ) as client:
                    for name in names:
                        result = await protocols.run_protocol(
                            client, name, args.protocol_requests, 8, args.batch_size
                        )
                        protocol_rows.append((name, result))

            asyncio.run(run_protocols())

        async def landed() -> int:
            conn = await asyncpg.connect(url)
            try:
                return int(await conn.fetchval("SELECT count(*) FROM samples"))
            finally:
                await conn.close()

        in_db = asyncio.run(landed())
        expected_in_db = warm + accepted
        expected_in_db += sum(
            (args.protocol_requests - int(r["errors"])) * args.batch_size for _, r in protocol_rows
        )
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    rows = min(max(accepted // 2, 200_000), 2_000_000)
    ceiling = asyncio.run(
        raw_copy_ceiling(url, rows, args.hosts * args.metrics, args.raw_connections)
    )
    if not args.keep:

        async def drop() -> None:
            admin = await asyncpg.connect(PG_ADMIN)
            await admin.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
            await admin.close()

        asyncio.run(drop())
    vhost("delete_vhost", vh)

    rate = accepted / elapsed
    print("Nazar ingest benchmark")
    print(
        f"  machine: {platform.machine()} {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}, PostgreSQL and RabbitMQ on the same machine"
    )
    print(
        f"  load: {args.hosts} hosts x {args.metrics} metrics, {args.batch_size} samples/request, "
        f"JSON{' gzip' if args.gzip and not use_wrk else ''}, {args.concurrency} in flight, "
        f"client {client_desc}, {args.workers} server worker(s), insert mode "
        f"{args.insert_mode}, {args.duration:.0f} s"
    )
    print(f"  requests/s:            {requests / elapsed:10.0f}")
    print(f"  accepted samples/s:    {rate:10.0f}")
    print(f"  latency p50/p95/p99:   {p50 * 1000:.1f} / {p95 * 1000:.1f} / {p99 * 1000:.1f} ms")
    print(f"  errors:                {errors} {dict(sorted(statuses.items())) if statuses else ''}")
    print(
        f"  samples in database:   {in_db} of {expected_in_db} accepted (run and warm-up)"
        + ("" if in_db >= expected_in_db else "  << MISSING SAMPLES")
    )
    print(
        f"  raw COPY ceiling:      {ceiling:10.0f} samples/s ({args.raw_connections} "
        "connections, 1,000-row batches, same table)"
    )
    print(f"  ratio accepted/raw:    {rate / ceiling:10.2f}")
    print(
        "  CPU per request (ms):  "
        + ", ".join(f"{k} {used / max(requests, 1) * 1000:.3f}" for k, used in cpu_used.items())
        + f"; machine busy {sum(cpu_used.values()) / elapsed / (os.cpu_count() or 1) * 100:.0f} %"
    )
    if protocol_rows:
        json_rate = next((r["samples_per_s"] for n, r in protocol_rows if n == "json"), None)
        print(
            f"  protocols ({args.protocol_requests} requests of {args.batch_size} samples each, "
            "8 in flight, Python client):"
        )
        for name, r in protocol_rows:
            rel = f"  {r['samples_per_s'] / json_rate:4.2f}x JSON" if json_rate else ""
            print(
                f"    {name:13s} {r['samples_per_s']:9.0f} samples/s  p50 {r['p50_ms']:6.1f}  "
                f"p95 {r['p95_ms']:6.1f}  p99 {r['p99_ms']:6.1f} ms  errors {int(r['errors'])}{rel}"
            )


if __name__ == "__main__":
    main()

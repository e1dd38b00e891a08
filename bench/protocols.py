"""Throughput and latency of the ingestion protocols against a running ingest server.

Starts nothing: point it at a running ingest API and an ingest-scoped key.
For each protocol (native JSON, Prometheus remote write, OTLP/HTTP protobuf,
Influx line protocol) it builds N request bodies of S samples each
beforehand (so client-side encoding is not measured), sends them with C
requests in flight, and prints samples/s and request latency p50/p95/p99.

Each run writes to fresh host names with distinct timestamps, so nothing is
deduplicated. Example::

    python bench/protocols.py --url http://127.0.0.1:8080 --key nzr_... \\
        --requests 200 --concurrency 8 --samples 1000
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import secrets
import statistics
import time
from collections.abc import Callable

import cramjam
import httpx
import orjson
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)

from nazar_ingest.payloads.wire import WriteRequest

Body = tuple[str, dict[str, str], dict[str, str], bytes]  # path, params, headers, content


def _series(samples: int) -> list[tuple[str, dict[str, str]]]:
    """``samples`` distinct series: 10 metrics x N label values."""
    per_metric = max(samples // 10, 1)
    return [
        (f"bench.metric_{m}", {"core": str(c), "env": "bench"})
        for m in range(10)
        for c in range(per_metric)
    ][:samples]


def json_body(host: str, series: list[tuple[str, dict[str, str]]], t: float) -> Body:
    doc = {
        "host": host,
        "samples": [
            {"metric": m, "labels": labels, "value": i * 0.5, "timestamp": t}
            for i, (m, labels) in enumerate(series)
        ],
    }
    return ("/api/v1/metrics", {}, {"Content-Type": "application/json"}, orjson.dumps(doc))


def remote_write_body(host: str, series: list[tuple[str, dict[str, str]]], t: float) -> Body:
    request = WriteRequest()
    for i, (m, labels) in enumerate(series):
        ts = request.timeseries.add()
        ts.labels.add(name="__name__", value=m.replace(".", "_"))
        ts.labels.add(name="instance", value=f"{host}:9100")
        ts.labels.add(name="job", value="bench")
        for k, v in labels.items():
            ts.labels.add(name=k, value=v)
        ts.samples.add(value=i * 0.5, timestamp=int(t * 1000))
    headers = {
        "Content-Type": "application/x-protobuf",
        "Content-Encoding": "snappy",
        "X-Prometheus-Remote-Write-Version": "0.1.0",
    }
    body = bytes(cramjam.snappy.compress_raw(request.SerializeToString()))
    return ("/api/v1/write", {}, headers, body)


def otlp_body(host: str, series: list[tuple[str, dict[str, str]]], t: float) -> Body:
    request = ExportMetricsServiceRequest()
    rm = request.resource_metrics.add()
    rm.resource.attributes.add(key="host.name").value.string_value = host
    metrics = rm.scope_metrics.add().metrics
    by_metric: dict[str, list[tuple[int, dict[str, str]]]] = {}
    for i, (m, labels) in enumerate(series):
        by_metric.setdefault(m, []).append((i, labels))
    for m, points in by_metric.items():
        metric = metrics.add(name=m)
        for i, labels in points:
            p = metric.gauge.data_points.add(time_unix_nano=int(t * 1e9), as_double=i * 0.5)
            for k, v in labels.items():
                p.attributes.add(key=k).value.string_value = v
    return ("/v1/metrics", {}, {"Content-Type": "application/x-protobuf"},
            request.SerializeToString())


def influx_body(host: str, series: list[tuple[str, dict[str, str]]], t: float) -> Body:
    # Telegraf style: one line per tag set, several fields per line.
    lines: dict[str, list[str]] = {}
    for i, (m, labels) in enumerate(series):
        measurement, field = m.split(".", 1)
        tags = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
        key = f"{measurement},host={host},{tags}"
        lines.setdefault(key, []).append(f"{field}={i * 0.5}")
    ns = int(t * 1e9)
    text = "\n".join(f"{key} {','.join(fields)} {ns}" for key, fields in lines.items())
    return ("/api/v2/write", {"precision": "ns"}, {"Content-Type": "text/plain"}, text.encode())


PROTOCOLS: dict[str, Callable[[str, list[tuple[str, dict[str, str]]], float], Body]] = {
    "json": json_body,
    "remote_write": remote_write_body,
    "otlp": otlp_body,
    "influx": influx_body,
}


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def run_protocol(
    client: httpx.AsyncClient, name: str, requests: int, concurrency: int, samples: int,
) -> dict[str, float]:
    host = f"bench-{name.replace('_', '-')}-{secrets.token_hex(3)}"
    series = _series(samples)
    start = time.time() - requests * 0.001 - 60
    bodies = [PROTOCOLS[name](host, series, start + i * 0.001) for i in range(requests)]
    latencies: list[float] = []
    errors: dict[int, int] = {}
    queue: asyncio.Queue[Body] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)

    async def worker() -> None:
        while not queue.empty():
            path, params, headers, content = queue.get_nowait()
            t0 = time.perf_counter()
            r = await client.post(path, params=params, headers=headers, content=content)
            latencies.append(time.perf_counter() - t0)
            if r.status_code >= 300:
                errors[r.status_code] = errors.get(r.status_code, 0) + 1

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall = time.perf_counter() - t0
    ok = requests - sum(errors.values())
    return {
        "samples_per_s": ok * samples / wall,
        "p50_ms": _percentile(latencies, 0.50) * 1000,
        "p95_ms": _percentile(latencies, 0.95) * 1000,
        "p99_ms": _percentile(latencies, 0.99) * 1000,
        "mean_ms": statistics.fmean(latencies) * 1000,
        "wall_s": wall,
        "errors": float(sum(errors.values())),
        "body_bytes": float(statistics.fmean(len(b[3]) for b in bodies)),
    }


def machine() -> str:
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            model = next((line.split(":", 1)[1].strip() for line in f
                          if line.startswith("model name")), "")
    except OSError:
        pass
    return (f"{platform.node()}: {platform.system()} {platform.release()}, "
            f"{os.cpu_count()} CPU(s) {model}, Python {platform.python_version()}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="Base URL of a running ingest API")
    parser.add_argument("--key", required=True, help="An ingest-scoped API key")
    parser.add_argument("--requests", "-n", type=int, default=200, help="Requests per protocol")
    parser.add_argument("--concurrency", "-c", type=int, default=8, help="Requests in flight")
    parser.add_argument("--samples", "-s", type=int, default=1000, help="Samples per request")
    parser.add_argument("--protocols", default=",".join(PROTOCOLS),
                        help=f"Comma-separated subset of {', '.join(PROTOCOLS)}")
    args = parser.parse_args()
    names = [p.strip() for p in args.protocols.split(",") if p.strip()]
    unknown = set(names) - set(PROTOCOLS)
    if unknown:
        parser.error(f"unknown protocol(s): {', '.join(sorted(unknown))}")
    print(f"machine: {machine()}")
    print(f"target: {args.url}  requests/protocol={args.requests} "
          f"concurrency={args.concurrency} samples/request={args.samples}")
    headers = {"Authorization": f"Bearer {args.key}"}
    limits = httpx.Limits(max_connections=args.concurrency)
    async with httpx.AsyncClient(base_url=args.url, headers=headers, limits=limits,
                                 timeout=60) as client:
        print(f"{'protocol':<13}{'samples/s':>11}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}"
              f"{'body B':>9}{'errors':>8}")
        for name in names:
            r = await run_protocol(client, name, args.requests, args.concurrency, args.samples)
            print(f"{name:<13}{r['samples_per_s']:>11.0f}{r['p50_ms']:>9.1f}{r['p95_ms']:>9.1f}"
                  f"{r['p99_ms']:>9.1f}{r['body_bytes']:>9.0f}{r['errors']:>8.0f}")


if __name__ == "__main__":
    asyncio.run(main())

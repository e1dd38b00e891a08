#!/usr/bin/env python3
"""End-to-end alert latency: from a CPU spike's first sample to the Slack message.

Starts a private database and RabbitMQ vhost, a real ingest server, the
analyzer and the notifier as processes, and a Slack stand-in; then, for each
of ``--spikes`` hosts: normal samples, a spike above a threshold rule (no
pending period), normal again. Prints each latency and p50 / p95 of the
spike → firing message and recovery → resolved message times (target: p95
under 5 s for threshold rules).

Example::

    .venv/bin/python bench/e2e.py --spikes 20
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.conftest import create_database, create_vhost, delete_vhost, drop_database
from tests.e2e.pipeline import Pipeline


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    pos = (len(ordered) - 1) * q
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


async def main(args: argparse.Namespace) -> int:
    token = secrets.token_hex(4)
    db_name, vhost = f"nazar_bench_{token}", f"nazar-bench-{token}"
    database_url = await create_database(db_name)
    amqp_url = create_vhost(vhost)
    pipeline = Pipeline(database_url, amqp_url)
    firing: list[float] = []
    resolved: list[float] = []
    missed = 0
    try:
        await pipeline.start()
        for i in range(args.spikes):
            spike = await pipeline.spike(f"bench-host-{i}", normal_s=args.normal,
                                         spike_s=args.duration, interval=args.interval)
            f, r = spike.firing_latency, spike.resolved_latency
            print(f"spike {i + 1:>3}/{args.spikes}: firing "
                  f"{'missed' if f is None else f'{f:.3f} s'}, resolved "
                  f"{'missed' if r is None else f'{r:.3f} s'}", flush=True)
            if f is None or r is None:
                missed += 1
            if f is not None:
                firing.append(f)
            if r is not None:
                resolved.append(r)
    finally:
        await pipeline.stop()
        await drop_database(db_name)
        delete_vhost(vhost)
    for name, values in (("spike → firing message", firing),
                         ("recovery → resolved message", resolved)):
        if values:
            print(f"{name}: n={len(values)} p50={percentile(values, 0.5):.3f} s "
                  f"p95={percentile(values, 0.95):.3f} s max={max(values):.3f} s "
                  f"mean={statistics.fmean(values):.3f} s")
    print(f"spikes missing a message: {missed}")
    return 1 if missed else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--spikes", type=int, default=10, help="number of spikes (hosts)")
    parser.add_argument("--normal", type=float, default=2.0, help="seconds of normal load first")
    parser.add_argument("--duration", type=float, default=3.0, help="seconds the spike lasts")
    parser.add_argument("--interval", type=float, default=0.25, help="seconds between samples")
    sys.exit(asyncio.run(main(parser.parse_args())))

#!/usr/bin/env python3
"""Chaos benchmark: what each fault costs, under more load and for longer
than the chaos suite (``tests/chaos``), with the same scenarios.

Starts private PostgreSQL and RabbitMQ instances (never the shared ones),
the three services as processes, a slow webhook receiver, and for each
scenario: ``--hosts`` agents posting every ``--interval`` s, a warm-up, the
fault held ``--hold`` times its usual length, the load stopped, then the
checks (every 202 sample stored exactly once, the alert opened once, the
notification delivered, repeats, consumers back, readiness 503). Prints one
row per scenario and the machine it ran on; exits 1 if any check failed.

Example::

    nice -n 10 .venv/bin/python bench/chaos.py --hosts 40 --interval 0.5 --hold 3
    nice -n 10 .venv/bin/python bench/chaos.py --only notifier --rounds 3
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support import chaos
from tests.support.stack import running_stack


async def main(args: argparse.Namespace) -> int:
    scenarios = [s for s in chaos.SCENARIOS if args.only in s.name] * args.rounds
    if not scenarios:
        print(f"no scenario matches {args.only!r}", file=sys.stderr)
        return 2
    results: list[chaos.Result] = []
    started = time.monotonic()
    async with running_stack() as stack:
        pg_version = stack.pg.version
        await chaos.prepare(stack)
        for scenario in scenarios:
            result = await chaos.run(stack, scenario, hosts=args.hosts,
                                     interval=args.interval, warmup=args.warmup,
                                     settle=args.settle, hold=args.hold)
            results.append(result)
            status = "ok" if not result.problems else "; ".join(result.problems)
            print(f"{scenario.name}: {status}", flush=True)
    print()
    print(chaos.table(results))
    print()
    print(f"load: {args.hosts} agents x {len(chaos.METRICS)} samples every {args.interval} s "
          f"({args.hosts * len(chaos.METRICS) / args.interval:.0f} samples/s), warm-up "
          f"{args.warmup} s, faults held x{args.hold}, webhook receiver "
          f"{chaos.RECEIVER_DELAY} s per message")
    print(f"machine: {os.cpu_count()} CPUs, Python {platform.python_version()} "
          f"({platform.machine()}), load average {os.getloadavg()[0]:.2f}; "
          f"private PostgreSQL {pg_version}, private RabbitMQ; "
          f"{time.monotonic() - started:.0f} s in all")
    return 0 if all(not r.problems for r in results) else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", type=int, default=30, help="agents posting at once")
    parser.add_argument("--interval", type=float, default=0.5, help="seconds between batches")
    parser.add_argument("--warmup", type=float, default=5.0, help="load before the fault (s)")
    parser.add_argument("--settle", type=float, default=5.0, help="load after the fault (s)")
    parser.add_argument("--hold", type=float, default=3.0, help="fault length multiplier")
    parser.add_argument("--rounds", type=int, default=1, help="times to run each scenario")
    parser.add_argument("--only", default="", help="run the scenarios whose name contains this")
    sys.exit(asyncio.run(main(parser.parse_args())))

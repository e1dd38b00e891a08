"""A sender with a label explosion, as a process of its own (so that its CPU
is not the measuring client's): ``python -m tests.e2e.explode URL KEY
REQUESTS SERIES_PER_REQUEST``. It builds its request bodies, prints
``ready``, waits for a line on stdin, sends them 4 at a time and prints one
JSON line: seconds taken, samples accepted and rejected, statuses and
limits named."""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

import aiohttp
import orjson

HOST = "exploding-1"
IN_FLIGHT = 4


def bodies(requests: int, per_request: int, now: float) -> list[bytes]:
    return [
        orjson.dumps({"host": HOST, "labels": {"role": "app"}, "samples": [
            {"metric": "app.request_seconds", "value": 0.01, "timestamp": now,
             "labels": {"request_id": f"{r:04d}-{i:05d}"}}
            for i in range(per_request)]})
        for r in range(requests)
    ]


async def explode(url: str, key: str, queue: list[bytes]) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    answers: list[tuple[int, dict[str, Any]]] = []
    async with aiohttp.ClientSession(headers=headers) as session:

        async def sender() -> None:
            while queue:
                async with session.post(url, data=queue.pop()) as r:
                    answers.append((r.status, orjson.loads(await r.read())))

        await asyncio.to_thread(sys.stdin.readline)
        started = time.perf_counter()
        await asyncio.gather(*(sender() for _ in range(IN_FLIGHT)))
        seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "accepted": sum(a.get("accepted", 0) for _, a in answers),
        "rejected": sum(a.get("rejected", 0) for _, a in answers),
        "statuses": sorted({s for s, _ in answers}),
        "limits": sorted({(a["limit"], a["limit_value"]) for s, a in answers if s == 422}),
    }


def main() -> None:
    url, key, requests, per_request = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:5])
    queue = bodies(requests, per_request, time.time())
    print("ready", flush=True)
    print(orjson.dumps(asyncio.run(explode(url, key, queue))).decode(), flush=True)


if __name__ == "__main__":
    main()

"""A worker's small HTTP endpoint (health, readiness, metrics), served by
uvicorn inside the worker's event loop."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Any

import uvicorn


class HttpServer(uvicorn.Server):
    """uvicorn without its own signal handling: the worker's lifecycle stops
    it last, after consumers are drained."""

    task: asyncio.Task[None] | None = None

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    @property
    def port(self) -> int:
        """The port it listens on (useful with port 0)."""
        for server in self.servers:
            for sock in server.sockets:
                return int(sock.getsockname()[1])
        return int(self.config.port)

    async def stop(self, timeout: float = 10.0) -> None:
        self.should_exit = True
        if self.task is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.task, timeout)


async def serve_http(app: Any, host: str, port: int) -> HttpServer:
    """Start serving ``app``; returns once it listens."""
    config = uvicorn.Config(
        app, host=host, port=port, log_config=None, access_log=False, lifespan="off"
    )
    server = HttpServer(config)
    task = asyncio.create_task(server.serve(), name="http")
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError(f"HTTP server on {host}:{port} did not start")
        await asyncio.sleep(0.01)
    server.task = task
    return server


def readiness(checks: dict[str, str]) -> tuple[int, dict[str, object]]:
    """``/readyz``: 200 when every check is ``ok``, else 503; the body names
    each check and its state."""
    ok = all(v == "ok" for v in checks.values())
    return (200 if ok else 503), {"status": "ok" if ok else "down", "checks": checks}

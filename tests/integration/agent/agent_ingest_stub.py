"""A real HTTP ingest stand-in on 127.0.0.1 that records what the agent sends."""

from __future__ import annotations

import asyncio
import gzip
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


@dataclass
class Recorded:
    headers: dict[str, str]
    raw_body: bytes
    status: int
    received_at: float

    @property
    def idempotency_key(self) -> str:
        return self.headers["idempotency-key"]

    @property
    def payload(self) -> Any:
        return orjson.loads(gzip.decompress(self.raw_body))


@dataclass
class Answer:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] | None = None


class IngestStub:
    """Answers POST /api/v1/metrics with the scripted answers, then 202 for ever."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.requests: list[Recorded] = []
        self.script: list[Answer] = []
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None
        self._arrived = asyncio.Condition()

    def app(self) -> Starlette:
        async def ingest(request: Request) -> Response:
            body = await request.body()
            answer = self.script.pop(0) if self.script else None
            if answer is None:
                samples = orjson.loads(gzip.decompress(body))["samples"]
                answer = Answer(202, body={"accepted": len(samples)})
            self.requests.append(
                Recorded(dict(request.headers), body, answer.status, time.monotonic())
            )
            async with self._arrived:
                self._arrived.notify_all()
            media = "application/problem+json" if answer.status >= 400 else "application/json"
            return JSONResponse(
                answer.body or {"status": answer.status},
                status_code=answer.status,
                headers=answer.headers,
                media_type=media,
            )

        return Starlette(routes=[Route("/api/v1/metrics", ingest, methods=["POST"])])

    async def start(self) -> None:
        config = uvicorn.Config(
            self.app(), host="127.0.0.1", port=self.port, log_level="warning", lifespan="off"
        )
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve())
        while not self._server.started:
            if self._task.done():
                self._task.result()
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await self._task
            self._server = self._task = None

    def accepted(self) -> list[Recorded]:
        return [r for r in self.requests if r.status == 202]

    async def wait_for(self, predicate: Callable[[IngestStub], bool], within: float = 10) -> None:
        """Wait until ``predicate(self)`` holds, re-checking at every request."""

        async def check() -> None:
            async with self._arrived:
                await self._arrived.wait_for(lambda: predicate(self))

        await asyncio.wait_for(check(), within)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])

"""The agent against a real HTTP server on 127.0.0.1 (uvicorn + starlette)."""

from __future__ import annotations

import asyncio
import os
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from nazar_agent.agent import Agent
from nazar_agent.buffer import BatchBuffer
from nazar_agent.settings import AgentSettings
from tests.integration.agent.agent_ingest_stub import Answer, IngestStub

METRIC_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_.:]*$")
LABEL_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("NAZAR_AGENT_"):
            monkeypatch.delenv(name)


def make_settings(url: str, buffer_dir: Path, **overrides: Any) -> AgentSettings:
    values: dict[str, Any] = {
        "url": url,
        "api_key": "test-api-key",
        "interval": 3600,  # one collection at start-up: deterministic batch count
        "hostname": "web-1",
        "labels": {"env": "test"},
        "buffer_dir": buffer_dir,
        "timeout": 2,
        "backoff_base": 0.05,
        "backoff_cap": 0.2,
    }
    values.update(overrides)
    return AgentSettings(**values)


@asynccontextmanager
async def running(agent: Agent) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(agent.run())
    try:
        yield task
    finally:
        agent.stop()
        await asyncio.wait_for(task, 10)


async def eventually(condition: Callable[[], bool], within: float = 10) -> None:
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


def buffered_ids(buffer_dir: Path) -> list[str]:
    buffer = BatchBuffer(buffer_dir, max_bytes=1 << 30)
    try:
        rows = buffer._conn.execute("SELECT batch_id FROM batches ORDER BY seq").fetchall()
        return [row[0] for row in rows]
    finally:
        buffer.close()


async def test_gzip_headers_and_body_shape(ingest: IngestStub, tmp_path: Path) -> None:
    agent = Agent(make_settings(ingest.url, tmp_path))
    async with running(agent):
        await ingest.wait_for(lambda s: len(s.requests) >= 1)
    [request] = ingest.requests
    headers = request.headers
    assert headers["content-type"] == "application/json"
    assert headers["content-encoding"] == "gzip"
    assert headers["authorization"] == "Bearer test-api-key"
    assert str(uuid.UUID(request.idempotency_key)) == request.idempotency_key
    assert request.raw_body[:2] == b"\x1f\x8b"  # gzip magic

    payload = request.payload
    assert set(payload) == {"host", "labels", "samples"}
    assert payload["host"] == "web-1"
    assert payload["labels"] == {"env": "test"}
    assert payload["samples"]
    for sample in payload["samples"]:
        assert set(sample) == {"metric", "value", "timestamp", "labels"}
        assert METRIC_RE.match(sample["metric"])
        assert isinstance(sample["value"], float | int)
        assert abs(sample["timestamp"] - time.time()) < 60
        assert all(LABEL_RE.match(k) and isinstance(v, str) for k, v in sample["labels"].items())
    assert {"mem.used_percent", "system.load1"} <= {s["metric"] for s in payload["samples"]}
    assert buffered_ids(tmp_path) == []  # deleted after the 202


async def test_retry_after_503_keeps_the_idempotency_key(
    ingest: IngestStub, tmp_path: Path
) -> None:
    ingest.script = [Answer(503), Answer(503)]
    agent = Agent(make_settings(ingest.url, tmp_path))
    async with running(agent):
        await ingest.wait_for(lambda s: len(s.accepted()) >= 1)
    statuses = [r.status for r in ingest.requests]
    assert statuses == [503, 503, 202]
    assert len({r.idempotency_key for r in ingest.requests}) == 1
    assert len({r.raw_body for r in ingest.requests}) == 1  # byte-identical retries
    assert buffered_ids(tmp_path) == []


async def test_429_retry_after_is_honoured(ingest: IngestStub, tmp_path: Path) -> None:
    ingest.script = [Answer(429, headers={"Retry-After": "1"})]
    agent = Agent(make_settings(ingest.url, tmp_path))
    async with running(agent):
        await ingest.wait_for(lambda s: len(s.accepted()) >= 1)
    first, second = ingest.requests
    assert first.idempotency_key == second.idempotency_key
    assert (
        second.received_at - first.received_at >= 0.9
    )  # the backoff alone (cap 0.2 s) would have retried much sooner


async def test_batches_buffered_while_ingest_is_down_are_delivered_later(
    ingest_down: IngestStub, tmp_path: Path
) -> None:
    agent = Agent(make_settings(ingest_down.url, tmp_path, interval=0.3))
    async with running(agent):
        await eventually(lambda: len(buffered_ids(tmp_path)) >= 3)
        waiting = buffered_ids(tmp_path)
        await ingest_down.start()
        await ingest_down.wait_for(
            lambda s: set(waiting) <= {r.idempotency_key for r in s.accepted()}
        )
    keys = [r.idempotency_key for r in ingest_down.accepted()]
    assert keys[: len(waiting)] == waiting  # oldest first
    assert len(keys) == len(set(keys))


async def test_restart_with_non_empty_buffer_delivers_leftovers(
    ingest_down: IngestStub, tmp_path: Path
) -> None:
    first_run = Agent(make_settings(ingest_down.url, tmp_path))
    async with running(first_run):
        await eventually(lambda: len(buffered_ids(tmp_path)) >= 1)
    leftovers = buffered_ids(tmp_path)
    assert len(leftovers) == 1

    await ingest_down.start()
    second_run = Agent(make_settings(ingest_down.url, tmp_path))
    async with running(second_run):
        await ingest_down.wait_for(lambda s: len(s.accepted()) >= 2)
    keys = [r.idempotency_key for r in ingest_down.accepted()]
    assert keys[0] == leftovers[0]
    assert len(set(keys)) == 2
    assert buffered_ids(tmp_path) == []


async def test_400_drops_the_batch(ingest: IngestStub, tmp_path: Path) -> None:
    ingest.script = [Answer(400, body={"title": "Bad Request", "detail": "bad sample"})]
    agent = Agent(make_settings(ingest.url, tmp_path, max_batch_samples=10))
    async with running(agent):
        await eventually(lambda: buffered_ids(tmp_path) == [] and len(ingest.requests) >= 2)
        await asyncio.sleep(0.3)  # a dropped batch must not come back
    rejected = ingest.requests[0]
    assert rejected.status == 400
    keys = [r.idempotency_key for r in ingest.requests]
    assert keys.count(rejected.idempotency_key) == 1
    assert all(r.status == 202 for r in ingest.requests[1:])


async def test_large_collections_are_split(ingest: IngestStub, tmp_path: Path) -> None:
    agent = Agent(make_settings(ingest.url, tmp_path, max_batch_samples=5))
    async with running(agent):
        await eventually(lambda: len(ingest.requests) >= 2 and buffered_ids(tmp_path) == [])
    sizes = [len(r.payload["samples"]) for r in ingest.requests]
    assert max(sizes) <= 5
    assert len({r.idempotency_key for r in ingest.requests}) == len(ingest.requests)
    assert all(r.payload["host"] == "web-1" for r in ingest.requests)


async def test_stop_is_prompt_while_backing_off(ingest_down: IngestStub, tmp_path: Path) -> None:
    agent = Agent(make_settings(ingest_down.url, tmp_path, backoff_base=30, backoff_cap=30))
    task = asyncio.create_task(agent.run())
    await eventually(lambda: len(buffered_ids(tmp_path)) >= 1)
    await asyncio.sleep(0.2)
    started = time.monotonic()
    agent.stop()
    await asyncio.wait_for(task, 5)
    assert time.monotonic() - started < 2
    assert len(buffered_ids(tmp_path)) == 1  # kept for the next run
